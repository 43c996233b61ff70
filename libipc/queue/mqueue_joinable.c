/* SPDX-License-Identifier: MIT */
/*
 * mqueue_joinable.c — the JoinableQueue side of the POSIX mqueue backend.
 *
 * unfinished = messages in the mq + tasks that consumers got and have not
 * task_done'd. Counting what is in the mq, rather than what
 * was put, keeps the count true when plain mq_send producers or mq_receive
 * consumers share the queue (a message taken by a plain mq_receive is done
 * once taken). A consumer holds a slot: a robust mutex locked by its thread
 * for as long as it is a consumer, so its death is seen by the kernel, plus
 * s_taken, its unfinished tasks. The kernel removes a message at the
 * receive, before s_taken can count it; so that join never sees the task in
 * neither place, a consumer raises s_busy around the receive (seq_cst
 * stores, the receive's own kernel lock between them) and a joiner reads
 * the mq's depth first, then s_busy, then s_taken. A consumer that dies
 * holding tasks cannot give them back — their bytes were in its memory —
 * so its tasks are counted as lost (m_lost) and dropped from the count:
 * join never waits for a dead consumer, but the tasks are not redone.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "libipc/queue/mqueue.h"

static int mq_repair_consumers(void *arg)
{
	(void)arg; /* every step under m_cmutex is redone by the next reap */
	return 0;
}

/* Free a dead consumer's slot; the caller holds its s_reg (just made
 * consistent) and m_cmutex. */
static void mq_reap_slot(struct mq *m, struct mq_slot *s)
{
	atomic_fetch_add(&m->shm->m_lost, atomic_load(&s->s_taken));
	atomic_store(&s->s_taken, 0);
	atomic_store(&s->s_busy, 0);
	atomic_store(&s->s_state, SLOT_FREE);
}

/* Reap every dead consumer (m_cmutex held). True if any was reaped. */
static bool mq_reap(struct mq *m)
{
	bool reaped = false;

	for (int i = 0; i < NSLOTS; i++) {
		struct mq_slot *s = &m->shm->m_slots[i];
		int rc;

		if (atomic_load(&s->s_state) != SLOT_ACTIVE ||
		    (i == m->slot && m->slot_gen == ipc__fork_gen()))
			continue;
		rc = ipc__mutex_trylock_sane(&s->s_reg);
		if (rc == EBUSY)
			continue; /* its thread is alive */
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		if (rc == EOWNERDEAD || rc == 0) {
			mq_reap_slot(m, s);
			ipc__mutex_unlock(&s->s_reg);
			reaped = true;
		}
	}
	return reaped;
}

static int mq_lock_consumers(struct mq *m)
{
	return ipc__mutex_lock(&m->shm->m_cmutex, &ipc__forever,
			       mq_repair_consumers, m);
}

void ipc__mq_wake_joiners(struct mq *m)
{
	atomic_fetch_add(&m->shm->m_join_seq, 1);
	if (atomic_load(&m->shm->m_join_waiters) > 0)
		ipc__futex_wake(&m->shm->m_join_seq, INT_MAX);
}

/* Make the calling thread this handle's consumer, once per fork
 * generation: 0 | -EBUSY (every slot taken by a live consumer). */
int ipc__mq_register(struct mq *m)
{
	int rc;

	if (m->slot >= 0 && m->slot_gen == ipc__fork_gen())
		return 0;
	rc = mq_lock_consumers(m);
	if (rc != 0)
		return rc;
	if (mq_reap(m))
		ipc__mq_wake_joiners(m);
	rc = -EBUSY;
	for (int i = 0; i < NSLOTS && rc == -EBUSY; i++) {
		struct mq_slot *s = &m->shm->m_slots[i];
		int lr;

		if (atomic_load(&s->s_state) != SLOT_FREE)
			continue;
		lr = ipc__mutex_trylock_sane(&s->s_reg);
		if (lr == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		else if (lr != 0)
			continue;
		atomic_store(&s->s_taken, 0);
		atomic_store(&s->s_busy, 0);
		s->s_pid = (int32_t)getpid();
		atomic_store(&s->s_state, SLOT_ACTIVE);
		m->slot = i;
		m->slot_gen = ipc__fork_gen();
		rc = 0;
	}
	ipc__mutex_unlock(&m->shm->m_cmutex);
	return rc;
}

struct mq_slot *ipc__mq_my_slot(struct mq *m)
{
	if (m->slot < 0 || m->slot_gen != ipc__fork_gen())
		return NULL;
	return &m->shm->m_slots[m->slot];
}

int ipc__mq_task_done(void *impl)
{
	struct mq *m = impl;
	struct mq_slot *s = ipc__mq_my_slot(m);
	uint32_t taken;

	if (s == NULL)
		return -EINVAL;
	taken = atomic_load(&s->s_taken);
	do {
		if (taken == 0)
			return -EINVAL;
	} while (!atomic_compare_exchange_weak(&s->s_taken, &taken, taken - 1));
	ipc__mq_wake_joiners(m);
	return 0;
}

/* Reap, then count: the mq's depth first, then each consumer's receives
 * in progress, then its tasks (the order the essay explains). */
long ipc__mq_unfinished(void *impl)
{
	struct mq *m = impl;
	long n;
	int rc;

	rc = mq_lock_consumers(m);
	if (rc != 0)
		return rc;
	if (mq_reap(m))
		ipc__mq_wake_joiners(m);
	ipc__mutex_unlock(&m->shm->m_cmutex);
	n = ipc__mq_depth(m);
	for (int i = 0; n >= 0 && i < NSLOTS; i++) {
		struct mq_slot *s = &m->shm->m_slots[i];
		if (atomic_load(&s->s_state) != SLOT_ACTIVE)
			continue;
		n += atomic_load(&s->s_busy);
		n += atomic_load(&s->s_taken);
	}
	return n;
}

int ipc__mq_join(void *impl, const struct ipc__deadline *dl)
{
	struct mq *m = impl;
	struct mq_shm *q = m->shm;

	for (;;) {
		struct ipc__deadline slice;
		uint32_t seq = atomic_load(&q->m_join_seq);
		long n;

		ipc__mq_dropping(m); /* a stray message is not a task */
		n = ipc__mq_unfinished(m);

		if (n <= 0)
			return n < 0 ? (int)n : 0;
		if (ipc__deadline_passed(dl))
			return ipc__deadline_error(dl);
		/* A plain mq_receive empties the queue without telling
		 * anyone: look again every IPC__RECHECK_MS. */
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		atomic_fetch_add(&q->m_join_waiters, 1);
		ipc__futex_wait(&q->m_join_seq, seq, &slice);
		atomic_fetch_sub(&q->m_join_waiters, 1);
	}
}

/* This handle's consumer leaves (ipc_queue_close). Its unfinished tasks
 * cannot be queued again (their bytes are gone from the mq): they are
 * counted as lost, so that join does not wait for them. */
void ipc__mq_leave(struct mq *m)
{
	struct mq_slot *s = ipc__mq_my_slot(m);

	if (s == NULL || mq_lock_consumers(m) != 0)
		return;
	mq_reap_slot(m, s);
	/* Only the registering thread can unlock s_reg; from another thread
	 * the slot stays locked until that thread ends. */
	ipc__mutex_unlock(&s->s_reg);
	ipc__mutex_unlock(&m->shm->m_cmutex);
	ipc__mq_wake_joiners(m);
}
