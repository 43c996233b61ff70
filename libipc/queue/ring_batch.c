/* SPDX-License-Identifier: MIT */
/*
 * ring_batch.c — put_many and get_many on the shared-memory queue: many
 * messages per lock, per published store and per wake-up.
 *
 * put_many writes, under q_pmutex, as many records as fit past the tail
 * and then publishes them all with one store of q_tail, followed by one
 * wake-up. A producer killed before that store leaves the whole chunk
 * unpublished garbage beyond the tail, exactly like a single put killed
 * before its store: none of those messages was put (put_many had not
 * returned), none is torn; after it, all of them are whole. When nothing
 * fits, the next message goes through the ordinary put, which spins and
 * sleeps for room; then chunks resume. A batch caller that is not the
 * queue's biased producer revokes it, as any second producer does.
 *
 * get_many on a Queue copies out up to BATCH_TAKE records from head and
 * claims them all with one compare-and-swap of q_head, the single get's
 * publishing step made wider: killed before it, the consumer took none;
 * after it, all. If the CAS fails another consumer moved head, and the
 * copies are simply made again. The lengths are kept aside until the CAS
 * succeeds, since the caller's iov_len is the capacity until then. When
 * nothing can be taken, the first message goes through the ordinary get
 * (which waits, and reports IPC_EMSGSIZE for a message too long for its
 * buffer), and the rest are taken without waiting.
 *
 * A JoinableQueue's get_many is a loop of single gets: each task is taken
 * under the consumers' lock anyway.
 */
#include <errno.h>
#include <limits.h>

#include "libipc/queue/ring.h"

#define BATCH_TAKE 64 /* records claimed per compare-and-swap */

static const struct ipc__deadline nowait = { .kind = IPC__DL_NOWAIT };

/* ---- put_many ------------------------------------------------------------ */

int ipc__ring_room_locked(struct ring *r, uint64_t tail, uint64_t end,
			  uint32_t need)
{
	struct ring_shm *q = r->shm;

	if (ipc__ring_has_room(r, end, q->q_pc_head, q->q_pc_free, need))
		return 1;
	q->q_pc_free =
		w_pos(atomic_load_explicit(&q->q_free, memory_order_acquire));
	q->q_pc_head = atomic_load_explicit(&q->q_head, memory_order_acquire);
	if (!ring_words_sane(r, tail, q->q_pc_head, q->q_pc_free))
		return ipc__ring_broken(r);
	return ipc__ring_has_room(r, end, q->q_pc_head, q->q_pc_free, need);
}

int ipc__ring_lock_to_put(struct ring *r, const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint32_t closed;
	int rc;

	rc = ipc__ring_lock_producers(r, dl);
	if (rc != 0)
		return rc;
	ipc__ring_bias_drop_stale(r);
	if (atomic_load(&q->q_bias_state) == BIAS_OWNED &&
	    !ipc__ring_bias_current(r)) {
		rc = ipc__ring_bias_revoke(r, dl);
		if (rc != 0)
			goto fail;
	}
	closed = atomic_load_explicit(&q->q_closed, memory_order_relaxed);
	if (closed == 0)
		return 0;
	rc = ring_closed_error(closed);
fail:
	ipc__mutex_unlock(&q->q_pmutex);
	return rc;
}

/* One chunk under q_pmutex: how many of msgs[0..n) were written and
 * published (0: no room for the first), or an error (closed, broken, the
 * lock or the biased producer not free before dl). */
static ssize_t ring_put_chunk(struct ring *r, const struct iovec *msgs,
			      size_t n, const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint64_t tail, end;
	ssize_t k = 0;
	int rc;

	rc = ipc__ring_lock_to_put(r, dl);
	if (rc != 0)
		return rc;
	tail = end = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	for (; (size_t)k < n; k++) {
		uint32_t len = (uint32_t)msgs[k].iov_len, need = rec_size(len);
		rc = ipc__ring_room_locked(r, tail, end, need);
		if (rc < 0)
			goto out;
		if (rc == 0)
			break;
		ipc__ring_put_record(r, end, msgs[k].iov_base, len);
		end = w_make(w_items(end) + 1, w_pos(end) + need);
	}
	rc = 0;
	if (k > 0) {
		IPC__CRASHPOINT("queue.put_many.written");
		atomic_store_explicit(&q->q_tail, end, memory_order_release);
	}
out:
	ipc__mutex_unlock(&q->q_pmutex);
	if (rc < 0)
		return rc;
	if (k > 0) {
		IPC__CRASHPOINT("queue.put_many.published");
		ipc__ring_wake_unlocked(&q->q_get_seq,
					k > INT_MAX ? INT_MAX : (int)k);
	}
	return k;
}

ssize_t ipc__ring_put_many(void *impl, const struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	size_t i = 0;

	while (i < n) {
		ssize_t k = ring_put_chunk(r, msgs + i, n - i, dl);
		if (k == 0) { /* full: wait for room as a single put does */
			int rc = ipc__ring_put(r, msgs[i].iov_base,
					       msgs[i].iov_len, dl);
			k = rc == 0 ? 1 : rc;
		}
		if (k < 0)
			return i > 0 ? (ssize_t)i : k;
		i += (size_t)k;
	}
	return (ssize_t)n;
}

/* ---- get_many ------------------------------------------------------------ */

/* A Queue: claim up to n (at most BATCH_TAKE) records from head with one
 * CAS, copying each into its buffer first. How many (0: empty, or the
 * first does not fit its buffer), -ENOTRECOVERABLE, or the deadline's
 * error: a lost race gives way before the retry (ipc__ring_give_way, as a
 * single get's), and stops if dl passed meanwhile. */
static ssize_t ring_take_chunk(struct ring *r, struct iovec *msgs, size_t n,
			       const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_acquire);
	uint32_t lens[BATCH_TAKE];

	if (n > BATCH_TAKE)
		n = BATCH_TAKE;
	for (;;) {
		/* Read after head, so at or past it: [head, tail) is
		 * published, while q_head still equals head. */
		uint64_t tail =
			atomic_load_explicit(&q->q_tail, memory_order_acquire);
		uint32_t pos = w_pos(head), end = w_pos(tail);
		bool damaged = end - pos > r->cap;
		size_t k = 0;

		while (!damaged && k < n && pos != end) {
			uint32_t len = __atomic_load_n(&rec_at(r, pos)->r_len,
						       __ATOMIC_RELAXED);
			if (len > r->max_msg || rec_size(len) > end - pos ||
			    !ring_aligned(pos)) {
				damaged = true;
				break;
			}
			if (len > msgs[k].iov_len)
				break; /* stays queued, for the next call */
			ipc__ring_read(r, pos + REC_HDR, msgs[k].iov_base, len);
			lens[k++] = len;
			pos += rec_size(len);
		}
		if (k == 0 && damaged) {
			uint64_t now = atomic_load_explicit(
				&q->q_head, memory_order_acquire);
			if (now == head)
				return ipc__ring_broken(r);
			head = now; /* another consumer moved on: again */
			continue;
		}
		if (k == 0)
			return 0;
		IPC__CRASHPOINT("queue.get_many.copied");
		if (atomic_compare_exchange_strong_explicit(
			    &q->q_head, &head,
			    w_make(w_items(head) + (uint32_t)k, pos),
			    memory_order_acq_rel, memory_order_acquire)) {
			for (size_t i = 0; i < k; i++)
				msgs[i].iov_len = lens[i];
			return (ssize_t)k;
		}
		if (ipc__ring_give_way(dl))
			return ipc__deadline_error(dl);
	}
}

/* Take what is queued now, chunk by chunk: how many, or an error when
 * none was taken. The wake for the room freed comes after the last chunk,
 * including when a later chunk failed (damage, or its deadline passed as
 * it gave way) after earlier ones took records. */
static ssize_t ring_take_many(struct ring *r, struct iovec *msgs, size_t n,
			      const struct ipc__deadline *dl)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = ring_take_chunk(r, msgs + got, n - got, dl);
		if (k < 0 && got == 0)
			return k;
		if (k < 0)
			break;
		got += (size_t)k;
		if (k < BATCH_TAKE)
			break;
	}
	if (got > 0) /* the CAS ordered the take, as for a single get */
		ipc__ring_wake_room(r);
	return (ssize_t)got;
}

/* Single gets: the first waits until dl, the rest take what is there. */
static ssize_t ring_get_each(struct ring *r, struct iovec *msgs, size_t n,
			     const struct ipc__deadline *dl)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t len =
			ipc__ring_get(r, msgs[i].iov_base, msgs[i].iov_len,
				      NULL, i == 0 ? dl : &nowait);
		if (len < 0)
			return i > 0 ? (ssize_t)i : len;
		msgs[i].iov_len = (size_t)len;
	}
	return (ssize_t)n;
}

ssize_t ipc__ring_get_many(void *impl, struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	ssize_t got, more;

	if (r->joinable)
		return ring_get_each(r, msgs, n, dl);
	if (atomic_load(&r->shm->q_closed) & CLOSED_BROKEN)
		return -ENOTRECOVERABLE;
	got = ring_take_many(r, msgs, n, dl);
	if (got != 0)
		return got;
	/* Nothing to take now (or the first is too long for its buffer):
	 * the single get waits, or says why not. */
	got = ring_get_each(r, msgs, 1, dl);
	if (got < 0 || n == 1)
		return got;
	more = ring_take_many(r, msgs + 1, n - 1, &nowait);
	return more > 0 ? 1 + more : 1;
}
