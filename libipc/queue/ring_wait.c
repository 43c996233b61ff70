/* SPDX-License-Identifier: MIT */
/*
 * ring_wait.c — sleeping and waking, part of the queue's core: the
 * readiness tests a sleeper waits for, the brief spin before a sleep, the
 * futex sleep itself (reaping dead JoinableQueue consumers every slice).
 * The wake that follows every publishing store is in ring.c, below the
 * reaping that uses it. See "Sleeping" at the top of ring.c.
 */
#include <errno.h>
#include <limits.h>

#include "libipc/queue/ring.h"

bool ipc__ring_ready_to_get(struct ring *r, uint32_t need)
{
	struct ring_shm *q = r->shm;

	(void)need;
	return w_pos(atomic_load_explicit(&q->q_tail, memory_order_acquire)) !=
		       w_pos(atomic_load_explicit(&q->q_head,
						  memory_order_acquire)) ||
	       (r->joinable &&
		atomic_load_explicit(&q->q_requeued, memory_order_relaxed)) ||
	       atomic_load_explicit(&q->q_closed, memory_order_relaxed);
}

/* Room for a record of `need` bytes (and under the item limit): the very
 * test ring_try_put makes with fresh words. */
bool ipc__ring_ready_to_put(struct ring *r, uint32_t need)
{
	struct ring_shm *q = r->shm;

	return atomic_load_explicit(&q->q_closed, memory_order_relaxed) ||
	       ipc__ring_has_room(r, atomic_load(&q->q_tail),
				  atomic_load(&q->q_head),
				  atomic_load(&q->q_free), need);
}

bool ipc__ring_ready_to_join(struct ring *r, uint32_t need)
{
	(void)need;
	return ring_unfinished(r) == 0;
}

/* Sleep until ready(r) or dl. Counts itself in *waiters before reading
 * the state, so a waker that changed the state either is seen here or sees
 * us (ipc__ring_wake). Every slice, a JoinableQueue sleeper reaps dead
 * consumers: that is what turns their tasks into work again. */
int ipc__ring_sleep(struct ring *r, _Atomic uint32_t *seq,
		    _Atomic uint32_t *waiters, ring_ready_fn ready,
		    uint32_t need, const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	int rc = 0;

	atomic_fetch_add(waiters, 1);
	/* A biased producer reads the waiter count with no fence after its
	 * publishing store: make that barrier happen now (see ring_bias.c).
	 * Later loads of the count on its side then see ours. */
	if (waiters == &r->shm->q_get_waiters &&
	    atomic_load(&r->shm->q_bias_state) == BIAS_OWNED)
		ipc__membarrier();
	for (;;) {
		uint32_t s = atomic_load(seq);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&r->shm->q_closed,
					 memory_order_relaxed) &
		    CLOSED_BROKEN) {
			rc = -ENOTRECOVERABLE;
			break;
		}
		if (ready(r, need))
			break;
		if (ipc__deadline_passed(dl)) {
			rc = ipc__deadline_error(dl);
			break;
		}
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		if (ipc__futex_wait(seq, s, &slice) == -ETIMEDOUT)
			ipc__ring_reap(r);
	}
	atomic_fetch_sub(waiters, 1);
	return rc;
}

/* Spin briefly for ready(r): a peer that is awake answers within
 * microseconds, far sooner than a sleep and a wake-up. */
bool ipc__ring_spin(struct ring *r, ring_ready_fn ready, uint32_t need,
		    int spins)
{
	for (int i = 0; i < spins; i++) {
		if (ready(r, need))
			return true;
		ipc__cpu_relax();
	}
	return false;
}
