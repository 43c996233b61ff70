/* SPDX-License-Identifier: MIT */
/*
 * ring_watch.c — waiting on many objects (ipc_wait): the shared-memory
 * queue's watch and unwatch operations.
 *
 * A watcher sleeps on the getters' own sequence word, q_get_seq, which
 * every change that can make a get succeed bumps: a put, a requeue of a
 * dead consumer's tasks, shutdown, "broken". It counts itself in
 * q_get_waiters, as a getter about to sleep does, but with RING_WATCHER
 * instead of 1, so that producers keep making no system call while nobody
 * sleeps (they already read that word) and a waker that sees a watcher
 * wakes every sleeper instead of one: a watcher can never take the single
 * wake-up that a blocked getter needed. Like a getter, a watcher counts
 * itself before it snapshots the word and tests readiness, so a change
 * after the test always finds it counted and bumps the word.
 *
 * A dead watcher's count stays behind, as a dead getter's does: it costs
 * later wakers a system call each, never a lost wake-up.
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

	ipc__ring_count_sleeper(r, &q->q_get_waiters, RING_WATCHER);
	ipc__ring_reap(r); /* nothing on a plain Queue */
	w->word = &q->q_get_seq;
	w->shared = true; /* every segment is MAP_SHARED, anonymous too */
	w->fd = -1;
	w->events = 0;
	w->recheck_ms = r->joinable ? IPC__RECHECK_MS : 0;
	w->val = atomic_load(&q->q_get_seq);
	atomic_thread_fence(memory_order_seq_cst);
	return ipc__ring_ready_to_get(r, 0) ? 1 : 0;
}

void ipc__ring_unwatch(void *impl, struct ipc__watch *w)
{
	struct ring *r = impl;

	(void)w;
	atomic_fetch_sub(&r->shm->q_get_waiters, RING_WATCHER);
}
