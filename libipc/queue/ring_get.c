/* SPDX-License-Identifier: MIT */
/*
 * ipc__ring_get.c — get: a Queue consumer's lock-free take (one compare-and-
 * swap on q_head, with a per-thread cache of the producers' tail), and the
 * get loop shared with the JoinableQueue, spinning and sleeping while the
 * ring is empty.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "libipc/queue/ring.h"

/* ---- get --------------------------------------------------------------- */

/* This thread's remembered tail for Queue gets (see struct
 * ring_tail_cache). IPC__TLS_FAST: every get reads it. */
static _Thread_local struct ring_tail_cache tail_cache IPC__TLS_FAST;
/* The last handle (struct ring.id) on which this thread's get found
 * nothing (ring_get_wait), until a single Queue get through it takes a
 * message: while it names the handle, a take never slips (ring_slip). One
 * per thread: a wait on another handle takes its place. */
static _Thread_local uint64_t waited_id IPC__TLS_FAST;

/* Slipping behind a producer. A consumer that keeps up with its producer
 * reads each record while the producer writes the next into the same
 * cache line, and q_tail every few records: each message then moves
 * lines between the CPUs both ways, each side's misses slow the other as
 * much, and a 64 B 1-producer stream that usually runs at 25-35 M msg/s
 * here (the producer ahead) runs at 9-15 M, for as long as the run lasts
 * (docs/design.md, "A consumer that slips behind its producer"). So a
 * take whose fresh read of q_tail finds under RING_SLIP_BYTES queued lets
 * the producer get ahead first: it reads q_tail again every
 * RING_SLIP_RELAX pauses until that much is queued, the tail stands
 * still (the producer paused: take what is there), or RING_SLIP_POLLS
 * reads went by (a few microseconds). Once or not at all in a get. Only
 * on x86, where a pause is a fixed wait (RING_CAN_SLIP); never under
 * IPC_NOWAIT; never where this process may run on one CPU only (a
 * producer sharing it could not move meanwhile; one pinned to another
 * CPU is not told apart: no slip either); never for a message the get
 * cannot take (too long for its buffer); and never in a get that found
 * the queue empty (it takes what it waited for at once), nor in the
 * next get through that handle after one that gave up empty-handed, if
 * that is the last handle the thread waited on: a message that arrives
 * alone (a request, a ping-pong) is taken at once.
 * Nothing is claimed or changed meanwhile, so a consumer that dies or
 * stops in it holds nothing. It leaves the tail it read last in the
 * cache, checked as any other when it is used. */
static IPC__NOINLINE void ring_slip(struct ring *r, uint64_t head,
				    uint64_t tail)
{
	IPC__CRASHPOINT("queue.get.slip");
	for (int i = 0; i < RING_SLIP_POLLS; i++) {
		uint64_t now;

		for (int k = 0; k < RING_SLIP_RELAX; k++)
			ipc__cpu_relax();
		now = atomic_load_explicit(&r->shm->q_tail,
					   memory_order_acquire);
		if (now == tail)
			break;
		tail = now;
		if (w_pos(tail) - w_pos(head) >= RING_SLIP_BYTES)
			break;
	}
	/* A tail read after seeing head, as the cache requires. */
	tail_cache.tail = tail;
}

/* May this take slip? (See ring_slip.) avail: queued past head by the
 * tail just read (not the cache's); len: the length of the record at
 * head, already checked against the limits. */
static inline bool ring_may_slip(struct ring *r, const struct get_req *g,
				 uint32_t avail, uint32_t len,
				 const struct ipc__deadline *dl)
{
	return RING_CAN_SLIP && avail < RING_SLIP_BYTES && waited_id != r->id &&
	       dl != NULL && dl->kind != IPC__DL_NOWAIT &&
	       r->spin_max[SPIN_GET] != 0 &&
	       (g->alloc != NULL || g->lend != NULL || len <= g->cap);
}

/* Queue: take the record at head without a lock. Copy it out first, then
 * claim it by moving q_head with one compare-and-swap: that CAS is the
 * atomic publishing step. If it fails, another consumer took the record
 * (and a producer may even be reusing its bytes), so the copy is dropped
 * and we retry; the bytes at head cannot be reused while q_head still
 * points at them, so a successful CAS proves the copy whole. A consumer
 * killed before its CAS took nothing; after it, the message is its.
 * q_head's item count makes the packed word unique for 2^32 gets, which
 * rules out ABA within one attempt. A lost race gives way before the
 * retry (ipc__ring_give_way): the winner runs on another CPU. A fresh
 * tail that shows little queued may first slip (ring_slip), once. */
static ssize_t ring_take_plain(struct ring *r, struct get_req *g,
			       const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_acquire);
	bool slipped = false;

	for (;;) {
		bool cached = ipc__ring_tail_cached(r, &tail_cache, head);
		uint64_t tail =
			cached ? tail_cache.tail
			       : ipc__ring_tail_fresh(r, &tail_cache, head);
		uint32_t avail = w_pos(tail) - w_pos(head);
		uint32_t len;
		void *dst;
		int rc;

		if (avail == 0)
			return -EAGAIN;
		len = __atomic_load_n(&rec_at(r, w_pos(head))->r_len,
				      __ATOMIC_RELAXED);
		if (avail > r->cap || len > r->max_msg ||
		    rec_size(len) > avail || !ring_aligned(w_pos(head))) {
			rc = ipc__ring_head_recheck(r, &head, &tail_cache);
			if (rc < 0)
				return rc;
			continue;
		}
		if (!cached && !slipped &&
		    ring_may_slip(r, g, avail, len, dl)) {
			uint64_t now;

			slipped = true;
			ring_slip(r, head, tail);
			/* Others may have taken it meanwhile: a copy from
			 * this head would only lose the race. */
			now = atomic_load_explicit(&q->q_head,
						   memory_order_acquire);
			if (now != head) {
				head = now;
				continue;
			}
		}
		rc = ipc__ring_get_dest(g, len, &dst);
		if (rc != 0) {
			uint64_t now = atomic_load_explicit(
				&q->q_head, memory_order_acquire);
			if (now == head)
				return rc; /* the message stays queued */
			head = now;
			continue;
		}
		ipc__ring_read(r, w_pos(head) + REC_HDR, dst, len);
		IPC__CRASHPOINT("queue.get.copied");
		if (atomic_compare_exchange_strong_explicit(
			    &q->q_head, &head,
			    w_make(w_items(head) + 1,
				   w_pos(head) + rec_size(len)),
			    memory_order_acq_rel, memory_order_acquire)) {
			tail_cache.head = w_make(w_items(head) + 1,
						 w_pos(head) + rec_size(len));
			if (waited_id == r->id)
				waited_id = 0; /* no handle has id 0 */
			return len;
		}
		if (g->alloc != NULL) {
			free(*g->alloc);
			*g->alloc = NULL;
		}
		if (ipc__ring_give_way(dl))
			return ipc__deadline_error(dl);
	}
}

/* One attempt: a length, -EAGAIN (empty), -ECLOSED, or an error. */
static ssize_t ring_try_get(struct ring *r, struct get_req *g,
			    const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint32_t closed =
		atomic_load_explicit(&q->q_closed, memory_order_relaxed);
	ssize_t n;

	if (closed & CLOSED_BROKEN)
		return -ENOTRECOVERABLE;
	n = r->joinable ? ipc__ring_get_joinable(r, g, dl)
			: ring_take_plain(r, g, dl);
	if (n == -EAGAIN) {
		closed = atomic_load_explicit(&q->q_closed,
					      memory_order_relaxed);
		if (closed)
			n = ring_closed_error(closed);
	}
	return n;
}

/* A getter woken from a sleep leaves: if a message is still there, pass
 * the wake on. A waker clears the arm as it wakes one sleeper, so a put
 * that comes before the woken one re-arms finds nobody armed and makes
 * no call: without this, a second sleeper would sleep beside its message
 * until its re-check (IPC__RECHECK_MS). The leaving sleeper re-armed for
 * those still counted (ipc__ring_leave), so this wakes one of them. */
static void ring_pass_wake(struct ring *r)
{
	if (ipc__ring_ready_to_get(r, 0))
		ipc__ring_wake(&r->shm->q_get_seq, 1);
}

/* A get took a message (n >= 0). A Queue's get frees the record's bytes,
 * and every get frees one item under an item limit (a JoinableQueue's
 * bytes wait for task_done): wake a sleeping putter. The CAS that took it,
 * or the unlock of q_cmutex, is a locked RMW, ordered on x86 like an
 * unlock (ipc__fence_after_unlock). */
static inline ssize_t ring_got(struct ring *r, ssize_t n)
{
	IPC__CRASHPOINT("queue.get.published");
	if (!r->joinable || r->maxsize != 0) {
		/* The call only when a producer sleeps (armed): it then
		 * decides whether the room is worth a wake (ring_wait.c). */
		ipc__fence_after_unlock();
		if (atomic_load_explicit(&r->shm->q_put_seq,
					 memory_order_relaxed) &
		    SEQ_ARMED)
			ipc__ring_wake_room(r);
	}
	return n;
}

/* The rest of a get whose first attempt returned n < 0: the deadline,
 * spinning, sleeping and the attempts after each. Out of line, so that a
 * get that finds a message at once runs a short path. */
static IPC__NOINLINE ssize_t ring_get_wait(struct ring *r, struct get_req *g,
					   const struct ipc__deadline *dl,
					   ssize_t n)
{
	struct ring_shm *q = r->shm;
	bool slept = false;
	int rc;

	if (n == -EAGAIN) { /* found nothing: not an error */
		waited_id = r->id;
		IPC__CRASHPOINT("queue.get.waiting");
	}
	for (;;) {
		if (n >= 0) {
			n = ring_got(r, n);
			break;
		}
		if (n != -EAGAIN)
			break;
		if (dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl)) {
			n = ipc__deadline_error(dl);
			break;
		}
		if (!ipc__ring_wait_briefly(r, SPIN_GET, ipc__ring_ready_to_get,
					    0, dl)) {
			rc = ipc__ring_sleep(r, &q->q_get_seq,
					     &q->q_get_waiters,
					     ipc__ring_ready_to_get, 0, dl);
			if (rc != 0)
				return rc;
			slept = true;
		}
		n = ring_try_get(r, g, dl);
	}
	if (slept &&
	    atomic_load_explicit(&q->q_get_waiters, memory_order_relaxed) != 0)
		ring_pass_wake(r);
	return n;
}

/* A get: one attempt, and the slow path only if it found nothing. */
static inline ssize_t ring_get_loop(struct ring *r, struct get_req *g,
				    const struct ipc__deadline *dl)
{
	ssize_t n = ring_try_get(r, g, dl);

	return n >= 0 ? ring_got(r, n) : ring_get_wait(r, g, dl, n);
}

ssize_t ipc__ring_get_req(struct ring *r, struct get_req *g,
			  const struct ipc__deadline *dl)
{
	return ring_get_loop(r, g, dl);
}

ssize_t ipc__ring_get(void *impl, void *buf, size_t cap, void **alloc,
		      const struct ipc__deadline *dl)
{
	struct get_req g = { buf, cap, alloc, NULL };

	return ring_get_loop(impl, &g, dl);
}
