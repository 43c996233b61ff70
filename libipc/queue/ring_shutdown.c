/* SPDX-License-Identifier: MIT */
/*
 * ring_shutdown.c — ipc_queue_shutdown_immediate on the shared-memory
 * queue: shut down, then drop every queued message.
 *
 * First the shutdown flag, so that no put starting later can publish.
 * Then the producers' lock, and the biased producer's fast path revoked:
 * once both are held, no put that passed its shutdown check is still in
 * flight, so the tail is final and everything queued is in [head, tail).
 * Then the drop:
 *   - Queue: one compare-and-swap moves q_head to the tail (the packed
 *     words then hold the same item count and position): every message is
 *     gone at once, and a consumer that copied one out fails its own CAS
 *     and finds the queue empty and closed. Killed before the CAS, nothing
 *     was dropped; after, everything was.
 *   - JoinableQueue: under the consumers' lock, every requeued task is
 *     marked done and counted, then every queued one is claimed at head as
 *     a get would and counted, each step under an intent record that the
 *     repair rolls forward if the dropper dies (ring_reap.c), so a drop is
 *     never half counted. Tasks consumers hold stay theirs, and so does
 *     one a getter that started before the shutdown claims first. Gets
 *     after the shutdown take the lock, so the repair of a dropper that
 *     died runs before them.
 * Last, every sleeper is woken: getters to return IPC_ECLOSED, joiners to
 * see the count.
 */
#include <limits.h>

#include <unistd.h>

#include "libipc/queue/ring.h"

/* Wait until no put can still publish: 0 or an error of the lock. */
static int ring_quiesce_producers(struct ring *r)
{
	struct ring_shm *q = r->shm;
	int rc = ipc__ring_lock_producers(r, &ipc__forever);

	if (rc != 0)
		return rc;
	if (atomic_load(&q->q_bias_state) == BIAS_OWNED)
		rc = ipc__ring_bias_revoke(r, &ipc__forever);
	ipc__mutex_unlock(&q->q_pmutex);
	return rc;
}

/* Queue: move head to the tail, whatever consumers do meanwhile. */
static int ring_drop_plain(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint64_t tail = atomic_load(&q->q_tail);
	uint64_t head = atomic_load(&q->q_head);

	do {
		if (!ring_words_sane(r, tail, head, w_pos(head)))
			return ipc__ring_broken(r);
		if (head == tail)
			return 0;
	} while (!atomic_compare_exchange_weak(&q->q_head, &head, tail));
	IPC__CRASHPOINT("queue.drop.dropped");
	return 0;
}

int ipc__ring_shutdown_immediate(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	int rc;

	if (atomic_load(&q->q_closed) & CLOSED_BROKEN)
		return -ENOTRECOVERABLE;
	/* A reservation this thread made through another handle holds the
	 * producers' lock, which the drop waits for: refuse before anything
	 * changes (the owner field is exact for our own id). */
	if (ipc__mutex_owner(&q->q_pmutex) == (int32_t)gettid())
		return -EBUSY;
	atomic_fetch_or(&q->q_closed, CLOSED_SHUTDOWN | CLOSED_DROP);
	IPC__CRASHPOINT("queue.drop.flagged");
	rc = ring_quiesce_producers(r);
	if (rc == 0 && !r->joinable)
		rc = ring_drop_plain(r);
	if (rc == 0 && r->joinable) {
		rc = ipc__ring_lock_consumers(r, &ipc__forever);
		if (rc == 0) {
			ipc__ring_drop_locked(r);
			ipc__mutex_unlock(&q->q_cmutex);
		}
	}
	ipc__futex_add_wake(&q->q_get_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_put_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_join_seq, SEQ_STEP, INT_MAX);
	if (rc == 0 && (atomic_load(&q->q_closed) & CLOSED_BROKEN))
		rc = -ENOTRECOVERABLE;
	return rc;
}
