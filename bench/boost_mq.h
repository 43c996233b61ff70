/* SPDX-License-Identifier: MIT */
/*
 * The Boost.Interprocess message_queue peer, from C (boost_mq.cc). Every
 * call catches Boost's exceptions and returns a negative value instead.
 */
#ifndef IPC_BENCH_BOOST_MQ_H
#define IPC_BENCH_BOOST_MQ_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_boost_mq;

/* Make the named queue (removing a stale one first): 0, or -1 and the
 * exception's text in note[0..cap). */
int bench_boost_create(const char *name, size_t maxmsg, size_t msgsize,
		       char *note, size_t cap);
struct bench_boost_mq *bench_boost_open(const char *name); /* NULL: failed */
int bench_boost_send(struct bench_boost_mq *q, const void *buf, size_t len);
/* The length received, or -1. */
long bench_boost_recv(struct bench_boost_mq *q, void *buf, size_t cap);
void bench_boost_close(struct bench_boost_mq *q);
void bench_boost_remove(const char *name);

#ifdef __cplusplus
}
#endif

#endif
