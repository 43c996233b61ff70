/* SPDX-License-Identifier: MIT */
/*
 * ipc__ring_put.c — put: the locked attempt under q_pmutex (which also makes
 * the first producer the biased one, or revokes a biased producer for a
 * second), and the put loop that tries the biased fast path first, then
 * the locked one, spinning and sleeping while the ring is full.
 *
 * Taking the fast path back. A second producer revokes the biased one
 * (ring_bias.c) and from then on every put takes q_pmutex, whose lock and
 * unlock each wait for the previous record's stores to reach the
 * consumer: with 4 producers that was a third of all CPU time (perf: the
 * exchange in pthread_mutex_unlock and the CAS in trylock). Yet producers
 * sharing few CPUs mostly run one at a time, a time slice each. So the
 * locked path counts how many locked puts in a row one producer (thread
 * and handle) made; after RING_REBIAS_PUTS it makes the queue biased-free
 * (BIAS_NONE) and takes the fast path itself, exactly as the first
 * producer of a queue does, except that it registers for the expedited
 * barrier first, so that the next other producer's revocation costs one
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED (microseconds), not a grace period, or
 * none at all on the owner's CPU (ring_bias.c). The revoked owner may
 * still hold its registration (it has not put since, so it has not seen
 * the revocation): the take uses another of the RING_BIAS_SLOTS, and
 * fails, leaving the queue on the locked path until the next streak, only
 * when every one is held so. A producer killed between the two steps
 * leaves BIAS_NONE under a repaired q_pmutex: the next put takes the fast
 * path, as on a new queue.
 */
#include <errno.h>

#include "libipc/queue/ring.h"

/* ---- put --------------------------------------------------------------- */

/* q_pmutex held, the fast path revoked (BIAS_OFF): count this put in
 * its producer's streak and take the fast path back after
 * RING_REBIAS_PUTS. The lock word holds our thread id while we hold it, so
 * the identity costs no system call. */
static void ring_count_streak(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint64_t me = (uint64_t)(uint32_t)ipc__mutex_owner(&q->q_pmutex) << 32 |
		      (uint32_t)r->id;

	if (q->q_pc_putter != me) {
		q->q_pc_putter = me;
		q->q_pc_streak = 0;
		return;
	}
	if (++q->q_pc_streak < RING_REBIAS_PUTS)
		return;
	q->q_pc_streak = 0;
	atomic_store(&q->q_bias_state, BIAS_NONE);
	IPC__CRASHPOINT("queue.put.rebias");
	ipc__ring_bias_take(r, true); /* expect to be revoked: register */
	if (atomic_load(&q->q_bias_state) == BIAS_NONE)
		atomic_store(&q->q_bias_state, BIAS_OFF); /* not free yet */
}

/* One attempt under q_pmutex: 0, -EAGAIN (no room, or IPC_NOWAIT and a
 * peer holds the lock), -ETIMEDOUT (dl passed waiting for the lock or the
 * biased producer) or -ECLOSED. */
static int ring_try_put(struct ring *r, const void *msg, uint32_t len,
			const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint32_t need = rec_size(len), closed;
	uint64_t tail;
	int rc;

	rc = ipc__ring_lock_producers(r, dl);
	if (rc != 0)
		return rc;
	ipc__ring_bias_drop_stale(r);
	switch (atomic_load(&q->q_bias_state)) {
	case BIAS_OWNED:
		if (!ipc__ring_bias_current(r)) {
			rc = ipc__ring_bias_revoke(r, dl);
			if (rc != 0)
				goto out;
		}
		break;
	case BIAS_NONE:
		ipc__ring_bias_take(r, false); /* fast from the next put on */
		break;
	case BIAS_OFF:
		ring_count_streak(r);
		break;
	}
	closed = atomic_load_explicit(&q->q_closed, memory_order_relaxed);
	if (closed) {
		rc = ring_closed_error(closed);
		goto out;
	}
	tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	if (!ipc__ring_has_room(r, tail, q->q_pc_head, q->q_pc_free, need)) {
		q->q_pc_free = w_pos(
			atomic_load_explicit(&q->q_free, memory_order_acquire));
		q->q_pc_head =
			atomic_load_explicit(&q->q_head, memory_order_acquire);
		/* Only producers move the tail, and we hold their lock. */
		if (!ring_words_sane(r, tail, q->q_pc_head, q->q_pc_free)) {
			rc = ipc__ring_broken(r);
			goto out;
		}
		if (!ipc__ring_has_room(r, tail, q->q_pc_head, q->q_pc_free,
					need)) {
			rc = -EAGAIN;
			goto out;
		}
	}
	ipc__ring_put_record(r, tail, msg, len);
	IPC__CRASHPOINT("queue.put.written");
	atomic_store_explicit(&q->q_tail,
			      w_make(w_items(tail) + 1, w_pos(tail) + need),
			      memory_order_release);
out:
	ipc__mutex_unlock(&q->q_pmutex);
	return rc;
}

/* The put loop after a first attempt that returned rc (not 0): the locked
 * path, waiting for room, and the attempts after each. Out of line, so
 * that the biased producer's put that succeeds at once runs a short
 * path. */
static IPC__NOINLINE int ring_put_loop(struct ring *r, const void *msg,
				       uint32_t len,
				       const struct ipc__deadline *dl, int rc)
{
	struct ring_bias *b;
	bool freed = false;

	for (;;) {
		if (rc == -ESTALE) {
			rc = ring_try_put(r, msg, len, dl);
			if (rc == 0) {
				IPC__CRASHPOINT("queue.put.published");
				/* The unlock of q_pmutex orders the store of
				 * the tail before the read of the arm. */
				ipc__ring_wake_unlocked(&r->shm->q_get_seq, 1);
			}
		}
		if (rc != -EAGAIN)
			return rc;
		if (!freed && ipc__ring_room_freed(r, rec_size(len))) {
			freed = true;
			rc = -ESTALE;
			continue;
		}
		rc = ipc__ring_wait_room(r, rec_size(len), dl);
		if (rc != 0)
			return rc;
		rc = -ESTALE;
		b = ipc__ring_bias_mine(r);
		if (b != NULL) /* it wakes a getter itself */
			rc = ipc__ring_put_fast(r, b, msg, len);
		if (rc == 0)
			return 0;
	}
}

int ipc__ring_put(void *impl, const void *msg, size_t len,
		  const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_bias *b = ipc__ring_bias_mine(r);
	int rc = -ESTALE;

	if (b != NULL) { /* it wakes a getter itself */
		rc = ipc__ring_put_fast(r, b, msg, (uint32_t)len);
		if (rc == 0)
			return 0;
	}
	return ring_put_loop(r, msg, (uint32_t)len, dl, rc);
}
