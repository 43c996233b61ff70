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
#include <sched.h>
#include <time.h>

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

/* A getter has armed q_get_seq and is about to read the state. A biased
 * producer checks the arm without a fence, so its last put's tail may
 * still be on its way from its store buffer: when the owner may be running
 * right now on another CPU (q_bias_cpu is not ours), let it arrive by
 * spinning RING_DRAIN_NS, which a message ends at once. True if it waited.
 * The argument is "Waking without a fence" in ring_bias.c. */
static bool ring_sleep_drain(struct ring *r)
{
	struct ring_shm *q = r->shm;
	struct timespec t0, t;
	int cpu;

	if (atomic_load(&q->q_bias_state) != BIAS_OWNED)
		return false;
	cpu = ipc__cpu_now();
	if (cpu >= 0 &&
	    atomic_load_explicit(&q->q_bias_cpu, memory_order_relaxed) == cpu)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (ipc__ring_ready_to_get(r, 0))
			break;
		for (int i = 0; i < 16; i++)
			ipc__cpu_relax();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec <
		 RING_DRAIN_NS);
	return true;
}

uint32_t ipc__ring_arm(struct ring *r, _Atomic uint32_t *seq, bool *drained)
{
	uint32_t s = atomic_fetch_or(seq, SEQ_ARMED) | SEQ_ARMED;
	bool d = seq == &r->shm->q_get_seq && ring_sleep_drain(r);

	if (drained != NULL)
		*drained = d;
	return s;
}

void ipc__ring_leave(_Atomic uint32_t *seq, _Atomic uint32_t *waiters,
		     uint32_t add)
{
	if (atomic_fetch_sub(waiters, add) > add)
		atomic_fetch_or(seq, SEQ_ARMED);
}

/* Sleep until ready(r) or dl. Arms seq (SEQ_ARMED, with a locked RMW,
 * which is a full barrier) before reading the state, so a waker that
 * changed the state either is seen here or sees the arm and wakes us
 * (ipc__ring_wake). The waker clears the arm as it wakes, so every pass
 * arms again; a sleeper that leaves while others still sleep arms for
 * them, so the next change wakes one of them too. A sleeper killed while
 * armed leaves the bit set: it costs the next waker one system call.
 * Every slice, a JoinableQueue sleeper reaps dead consumers: that is what
 * turns their tasks into work again. */
int ipc__ring_sleep(struct ring *r, _Atomic uint32_t *seq,
		    _Atomic uint32_t *waiters, ring_ready_fn ready,
		    uint32_t need, const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	int rc = 0;

	atomic_fetch_add(waiters, 1);
	for (;;) {
		uint32_t s = ipc__ring_arm(r, seq, NULL);
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
		else
			IPC__CRASHPOINT("queue.sleep.woken");
	}
	ipc__ring_leave(seq, waiters, 1);
	return rc;
}

/* Before sleeping, wait a little without the kernel. A peer running on
 * another CPU answers within microseconds: spinning catches that, far
 * sooner than a sleep and a wake-up. A peer that cannot run — it shares
 * our CPU, or every CPU is busy — never answers a spin: then spinning
 * only burns the time it needs. So the spin is adaptive: its budget is
 * halved each time spinning fails (down to a floor of 1/64 of the
 * maximum) and doubled (up to the maximum) each time it succeeds, and is
 * 0 where only one CPU is ours. Then the CPU is
 * yielded a few times: a peer waiting for our CPU runs a whole time slice
 * (filling or draining the ring) and neither side sleeps or wakes. Only if
 * that does not help either does the caller sleep. Every yield checks dl,
 * so a stopped peer never makes a timed call late. */
bool ipc__ring_wait_briefly(struct ring *r, int side, ring_ready_fn ready,
			    uint32_t need, const struct ipc__deadline *dl)
{
	int budget = atomic_load_explicit(&r->spin[side], memory_order_relaxed);

	for (int i = 0; i < budget; i++) {
		if (ready(r, need)) {
			int grown = budget * 2 > r->spin_max[side]
					    ? r->spin_max[side]
					    : budget * 2;
			atomic_store_explicit(&r->spin[side], grown,
					      memory_order_relaxed);
			return true;
		}
		ipc__cpu_relax();
	}
	/* Never below a floor (1/64 of the maximum, 0 with one CPU): a budget
	 * of 0 could never see a spin succeed, and so never grow again. */
	atomic_store_explicit(&r->spin[side],
			      budget / 2 > r->spin_max[side] / 64
				      ? budget / 2
				      : r->spin_max[side] / 64,
			      memory_order_relaxed);
	for (int i = 0; i < RING_YIELDS; i++) {
		if (ready(r, need))
			return true;
		if (dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl))
			return false;
		sched_yield();
	}
	return ready(r, need);
}

int ipc__ring_wait_room(struct ring *r, uint32_t need,
			const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;

	/* Every pass checks the deadline, so that no disagreement between
	 * the readiness test and the attempt can spin past it (IPC_FOREVER
	 * has none: no call). */
	if (dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl))
		return ipc__deadline_error(dl);
	if (ipc__ring_wait_briefly(r, SPIN_PUT, ipc__ring_ready_to_put, need,
				   dl))
		return 0;
	return ipc__ring_sleep(r, &q->q_put_seq, &q->q_put_waiters,
			       ipc__ring_ready_to_put, need, dl);
}
