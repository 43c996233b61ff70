/* SPDX-License-Identifier: MIT */
/*
 * queue_helpers.h — what the queue call tests share: one queue per test
 * (tq, named tq_name when the backend needs a name), opened per backend
 * kind, checked messages, and crash-point children. Parent side only:
 * these call cr_assert.
 */
#ifndef LIBIPC_TESTS_QUEUE_HELPERS_H
#define LIBIPC_TESTS_QUEUE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "libipc/ipc.h"

enum tq_kind { TQ_SHM, TQ_SHM_JOINABLE, TQ_MQUEUE, TQ_MQUEUE_JOINABLE };

extern ipc_queue *tq;
extern char tq_name[128];

/* Suite .init and .fini: no queue yet; close and unlink it, then check
 * that no segment, mq or zombie child is left. */
void tq_setup(void);
void tq_teardown(void);

bool tq_joinable(enum tq_kind k);

/* Open tq of kind k (mqueue ones named, from tag; maxsize 0 there: 8;
 * max_msg 0: the backend's default, 128 for an mq). */
void tq_open(enum tq_kind k, size_t maxsize, size_t max_msg, const char *tag);

/* Message n: "m<n>:" and a pattern derived from n (under 96 bytes), so a
 * torn, mixed or invented message fails tq_expect. */
size_t tq_msg(char *buf, int n);

/* Get one message from tq within 1 s: it must be message `want`, whole. */
void tq_expect(int want);
/* The next get (1 s) returns IPC_ECLOSED. */
void tq_expect_closed(void);

/* Run fn(arg) in a child that must die by SIGKILL at point (its skip-th
 * pass, skip NULL: the first). */
void tq_die_at(const char *point, const char *skip, int (*fn)(void *),
	       void *arg);

/* Poll (10 s at most) until pid is asleep (state S in /proc) in the system
 * call a queue sleeps in: a futex wait, or mq_timedreceive / mq_timedsend
 * (the mqueue backend). */
bool tq_asleep(pid_t pid);

#endif
