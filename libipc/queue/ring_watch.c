/* SPDX-License-Identifier: MIT */
/*
 * ring_watch.c — waiting on many objects (ipc_wait): the shared-memory
 * queue's watch and unwatch operations.
 *
 * A watcher sleeps on the getters' own sequence word, q_get_seq, which
 * every change that can make a get succeed bumps: a put, a requeue of a
 * dead consumer's tasks, shutdown, "broken". It arms the word exactly as a
 * getter about to sleep does (ipc__ring_arm: the SEQ_ARMED bit, and the
 * biased producer's drain rule), so a waker that changes the state after
 * the watcher's readiness test sees the arm, changes the word and wakes.
 * Producers that find nobody armed still make no system call.
 *
 * A waker wakes one sleeper per put, which a watcher must never take from
 * a blocked getter: so a watcher counts itself in q_get_waiters with
 * RING_WATCHER instead of 1, and a waker that sees such a count (it reads
 * it only on its way to the system call) wakes every sleeper instead.
 * A dead watcher's count stays behind, as a dead getter's arm does: it
 * costs later wakers a wider wake, never a lost one.
 *
 * On a JoinableQueue the tasks of a consumer that died are requeued only
 * when some process looks (sleepers reap every IPC__RECHECK_MS); a
 * watcher looks here, so the watch asks its caller to re-arm that often.
 */
#include "libipc/queue/ring.h"

int ipc__ring_watch(void *impl, struct ipc__watch *w)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	bool drained;

	atomic_fetch_add(&q->q_get_waiters, RING_WATCHER);
	ipc__ring_reap(r); /* nothing on a plain Queue */
	w->word = &q->q_get_seq;
	w->shared = true; /* every segment is MAP_SHARED, anonymous too */
	w->fd = -1;
	w->events = 0;
	w->val = ipc__ring_arm(r, &q->q_get_seq, &drained);
	/* A drained arm rests its wake-up on a timing bound (ring_bias.c):
	 * look again that often, in case it ever failed. */
	w->recheck_ms = r->joinable || drained ? IPC__RECHECK_MS : 0;
	return ipc__ring_ready_to_get(r, 0) ? 1 : 0;
}

void ipc__ring_unwatch(void *impl, struct ipc__watch *w)
{
	struct ring *r = impl;

	(void)w;
	ipc__ring_leave(&r->shm->q_get_seq, &r->shm->q_get_waiters,
			RING_WATCHER);
}
