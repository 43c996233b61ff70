/* SPDX-License-Identifier: MIT */
/*
 * ring_wait.c — sleeping and waking, part of the queue's core: the
 * readiness tests a sleeper waits for, the brief spin before a sleep, the
 * futex sleep itself (reaping dead JoinableQueue consumers every slice),
 * and the producers' wait for room with the wake that ends it. The wake
 * that follows every other publishing store is in ring.c, below the
 * reaping that uses it. See "Sleeping" at the top of ring.c.
 *
 * Waiting for room, in batches and in turn. When the ring is full, the
 * getters free it one record at a time. A producer that took each record
 * as it was freed would make its peers starve and everyone pay: the one
 * producer that happens to be running (spinning beside the consumer) gets
 * every freed record, while the producers asleep are woken for each one,
 * run, find it taken and sleep again, each pass a wake and a sleep
 * (measured: with 4 producers and 1 consumer on 2 CPUs one producer put
 * 61 times as much as another), and the spinning and yielding producers
 * keep the CPU from the consumer, which is what the ring is waiting for.
 * So a producer that finds no room
 *
 *   - does not spin or yield when others already sleep for room (it would
 *     only take the room they wait for): it sleeps beside them;
 *   - spins, and then sleeps, until a batch of room is free
 *     (RING_ROOM_BATCH_DIV, an eighth of the ring), which the getters see
 *     before they wake it (ipc__ring_wake_room): one wake then lets all the
 *     sleepers in, with room for many messages each, while the consumer
 *     ran undisturbed. The spin waits for a batch too: one spinning for
 *     its own record alone moves in lockstep with the consumer, each put
 *     pulling back the cache line of q_head (or q_free) the get has just
 *     written, which measured 2.5 to 3 times slower for a JoinableQueue
 *     with one producer and one consumer;
 *   - but only for RING_ROOM_BATCH_MS: then it waits for room for its own
 *     record alone, counted in q_put_urgent, which makes every freeing
 *     call wake as before. A batch that never comes (the consumers
 *     stopped with a little room free) thus delays a put by that much at
 *     most, and a put never fails for want of a batch: at its deadline it
 *     takes whatever room there is.
 *
 * No wake-up is lost: a batch sleeper re-checks on its own after its
 * slice, and an urgent sleeper counts itself (an atomic add) before it
 * arms, so a waker that sees the arm sees the count too. A sleeper killed
 * after counting itself leaves the count high: wakers then wake for every
 * freed record, as they did before batching. One killed asleep also stays
 * counted in q_put_waiters: then producers that find the ring full always
 * sleep at once instead of spinning first, slower but losing nothing.
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
				  w_pos(atomic_load(&q->q_free)), need);
}

/* The room a batch sleeper waits for: an eighth of the ring, or its own
 * record if that is larger. */
static uint32_t ring_room_batch(struct ring *r, uint32_t need)
{
	uint32_t batch = r->cap / RING_ROOM_BATCH_DIV;

	return need > batch ? need : batch;
}

static bool ring_ready_to_put_batch(struct ring *r, uint32_t need)
{
	return ipc__ring_ready_to_put(r, ring_room_batch(r, need));
}

void ipc__ring_wake_room(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t s;

	ipc__fence_after_unlock();
	/* Acquire: an urgent sleeper counts itself before it arms, so the
	 * arm seen here brings its count with it. */
	s = atomic_load_explicit(&q->q_put_seq, memory_order_acquire);
	if (!(s & SEQ_ARMED))
		return;
	if (atomic_load_explicit(&q->q_put_urgent, memory_order_relaxed) == 0 &&
	    !ring_ready_to_put_batch(r, 0))
		return; /* stays armed: a later freeing call wakes */
	if (atomic_compare_exchange_strong_explicit(&q->q_put_seq, &s, s + 1,
						    memory_order_relaxed,
						    memory_order_relaxed))
		ipc__futex_wake(&q->q_put_seq,
				ring_wake_count(&q->q_put_seq, INT_MAX));
}

bool ipc__ring_ready_to_join(struct ring *r, uint32_t need)
{
	(void)need;
	return ring_unfinished(r) == 0;
}

/* A getter has armed q_get_seq and is about to read the state. A biased
 * producer checks the arm without a fence, so its last put's tail may
 * still be on its way from its store buffer: when the owner may be running
 * right now on another CPU (its registration's b_cpu is not ours), let it
 * arrive by spinning RING_DRAIN_NS, which a message ends at once. True if it
 * waited. The argument is "Waking without a fence" in ring_bias.c. */
static bool ring_sleep_drain(struct ring *r)
{
	struct ring_shm *q = r->shm;
	struct timespec t0, t;
	uint32_t slot;
	int cpu;

	if (atomic_load(&q->q_bias_state) != BIAS_OWNED)
		return false;
	cpu = ipc__cpu_now();
	slot = atomic_load_explicit(&q->q_bias_slot, memory_order_relaxed);
	if (cpu >= 0 && slot < RING_BIAS_SLOTS &&
	    atomic_load_explicit(&q->q_bias[slot].b_cpu,
				 memory_order_relaxed) == cpu)
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
		/* A JoinableQueue's done records may wait to be freed (one
		 * whose task_done was killed before it freed): free them,
		 * after arming, so that their room is seen. */
		if (seq == &r->shm->q_put_seq && r->joinable)
			ipc__ring_free_stale(r);
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

/* The batch sleep (see "Waiting for room" above): 0 if there is room for
 * need bytes when it ends, -EAGAIN if not (then wait for that alone), the
 * deadline's error, or -ENOTRECOVERABLE. */
static int ring_sleep_for_batch(struct ring *r, uint32_t need,
				const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	struct ipc__deadline batch;
	int rc;

	ipc__deadline_capped(&batch, dl, RING_ROOM_BATCH_MS);
	rc = ipc__ring_sleep(r, &q->q_put_seq, &q->q_put_waiters,
			     ring_ready_to_put_batch, need, &batch);
	if (rc == 0 || rc == -ENOTRECOVERABLE)
		return rc;
	if (ipc__ring_ready_to_put(r, need))
		return 0;
	if (dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl))
		return ipc__deadline_error(dl);
	return -EAGAIN;
}

bool ipc__ring_room_freed(struct ring *r, uint32_t need)
{
	return r->joinable && ipc__ring_free_stale(r) &&
	       ipc__ring_ready_to_put(r, need);
}

int ipc__ring_wait_room(struct ring *r, uint32_t need,
			const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	int rc;

	IPC__CRASHPOINT("queue.room.waiting");
	/* Every pass checks the deadline, so that no disagreement between
	 * the readiness test and the attempt can spin past it (IPC_FOREVER
	 * has none: no call). */
	if (dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl))
		return ipc__deadline_error(dl);
	/* Others sleep for room already: spinning would only take theirs. */
	if (atomic_load_explicit(&q->q_put_waiters, memory_order_relaxed) ==
		    0 &&
	    ipc__ring_wait_briefly(r, SPIN_PUT, ring_ready_to_put_batch, need,
				   dl))
		return 0;
	rc = ring_sleep_for_batch(r, need, dl);
	if (rc != -EAGAIN)
		return rc;
	/* Counted before ipc__ring_sleep arms (see ipc__ring_wake_room). */
	atomic_fetch_add(&q->q_put_urgent, 1);
	rc = ipc__ring_sleep(r, &q->q_put_seq, &q->q_put_waiters,
			     ipc__ring_ready_to_put, need, dl);
	atomic_fetch_sub(&q->q_put_urgent, 1);
	return rc;
}
