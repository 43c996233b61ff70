/* SPDX-License-Identifier: MIT */
/*
 * mqueue.h — the POSIX mqueue backend's companion segment and handle, and
 * what its two files share, internal. mqueue.c is the queue itself
 * (creation, put, get, waiting, ipc_stat's view); mqueue_joinable.c the
 * JoinableQueue side (consumer slots, task_done, join).
 */
#ifndef LIBIPC_MQUEUE_H
#define LIBIPC_MQUEUE_H

#include <mqueue.h>

#include "libipc/queue/queue.h"

#define NSLOTS IPC_QUEUE_MAX_CONSUMERS
#define MQ_MAX_MAXSIZE ((size_t)1 << 31)

enum { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
/* m_closed bits: shut down; and its messages dropped (immediate). */
enum { MQ_CLOSED = 1, MQ_CLOSED_IMMEDIATE = 2 };

struct mq_slot {
	pthread_mutex_t s_reg;	  /* held by the consumer thread */
	_Atomic uint32_t s_state; /* SLOT_*, changed under m_cmutex */
	_Atomic uint32_t s_busy;  /* receives in progress (see above) */
	_Atomic uint32_t s_taken; /* tasks got, not done */
	int32_t s_pid;		  /* informational */
} IPC__ALIGNED;

struct mq_shm {
	struct ipc__seg_hdr hdr;
	/* Written once at creation (the mq's real attributes). */
	uint32_t m_maxmsg;
	uint32_t m_msgsize;
	uint32_t m_joinable;
	uint32_t m_nslots;
	/* Consumer registration and reaping. */
	pthread_mutex_t m_cmutex IPC__ALIGNED;
	_Atomic uint32_t m_closed IPC__ALIGNED;
	_Atomic uint32_t m_join_seq;
	_Atomic uint32_t m_join_waiters;
	_Atomic uint32_t m_lost; /* tasks dropped with dead consumers */
	struct mq_slot m_slots[NSLOTS];
};
_Static_assert(sizeof(struct mq_shm) % IPC__CACHELINE == 0, "layout");

struct mq {
	struct ipc__seg seg;
	struct mq_shm *shm;
	mqd_t mqd;
	/* The mq's sizes from the kernel (mq_getattr at open), never from
	 * shared memory: they bound what a receive writes into our buffers. */
	size_t msgsize, maxmsg;
	bool joinable;	   /* validated at open */
	int slot;	   /* our consumer slot, -1 if none */
	unsigned slot_gen; /* fork generation it was taken in */
};

/* mqueue.c */
long ipc__mq_depth(struct mq *m);    /* messages in the mq, or -errno */
bool ipc__mq_dropping(struct mq *m); /* shut down immediate: drops strays */

/* mqueue_joinable.c */
int ipc__mq_register(struct mq *m);
struct mq_slot *ipc__mq_my_slot(struct mq *m);
void ipc__mq_wake_joiners(struct mq *m);
void ipc__mq_leave(struct mq *m);
int ipc__mq_task_done(void *impl);
long ipc__mq_unfinished(void *impl);
int ipc__mq_join(void *impl, const struct ipc__deadline *dl);

#endif /* LIBIPC_MQUEUE_H */
