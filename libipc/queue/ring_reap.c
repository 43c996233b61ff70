/* SPDX-License-Identifier: MIT */
/*
 * ring_reap.c — the consumers' lock and its repair, part of the queue's
 * core: q_cmutex with the repair that runs after a consumer died holding
 * it (rolling task_done forward from its intent record and recomputing
 * q_free and q_requeued), freeing q_free over done records, and the
 * reaping that requeues a dead JoinableQueue consumer's tasks. See the
 * "JoinableQueue" part of the essay at the top of ring.c.
 */
#include <errno.h>
#include <limits.h>

#include "libipc/queue/ring.h"

struct requeue_arg {
	uint32_t taken; /* REC_TAKEN | slot */
	uint32_t count;
};

static void count_requeued(struct ring *r, uint32_t pos, struct rec_hdr *h,
			   void *arg)
{
	(void)r;
	(void)pos;
	if (atomic_load_explicit(&h->r_state, memory_order_relaxed) ==
	    REC_REQUEUED)
		++*(uint32_t *)arg;
}

/* Advance q_free over DONE records (q_cmutex held). True if it moved;
 * a length that does not fit [free, head) marks the queue broken. */
bool ipc__ring_advance_free(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t head =
		w_pos(atomic_load_explicit(&q->q_head, memory_order_relaxed));
	uint32_t start = atomic_load_explicit(&q->q_free, memory_order_relaxed);
	uint32_t free = start;

	if (head - start > r->cap) {
		ipc__ring_broken(r);
		return false;
	}
	while (free != head) {
		struct rec_hdr *h = rec_at(r, free);
		uint32_t len = h->r_len;
		if (atomic_load_explicit(&h->r_state, memory_order_relaxed) !=
		    REC_DONE)
			break;
		if (len > r->max_msg || rec_size(len) > head - free) {
			ipc__ring_broken(r);
			return false;
		}
		free += rec_size(len);
	}
	if (free == start)
		return false;
	atomic_store_explicit(&q->q_free, free, memory_order_release);
	return true;
}

bool ipc__ring_free_done(struct ring *r, const struct ipc__deadline *dl)
{
	bool moved;

	if (ipc__ring_lock_consumers(r, dl) != 0)
		return false;
	moved = ipc__ring_advance_free(r);
	/* The unlock orders the store of q_free before the arm's read (see
	 * ipc__ring_wake_room); a damaged mutex is not unlocked: fence. */
	if (ipc__mutex_unlock(&r->shm->q_cmutex) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	if (moved)
		ipc__ring_wake_room(r);
	return moved;
}

static void drop_one(struct ring *r, uint32_t pos, struct rec_hdr *h, void *arg)
{
	uint32_t state =
		atomic_load_explicit(&h->r_state, memory_order_relaxed);

	(void)r;
	(void)pos;
	(void)arg;
	if (state == REC_READY || state == REC_REQUEUED) {
		atomic_store_explicit(&h->r_state, REC_DONE,
				      memory_order_relaxed);
		IPC__CRASHPOINT("queue.drop.marked");
	}
}

/* The drop, from its intent record on (q_cmutex held): mark every queued
 * (READY, in [head, tail)) and requeued (behind head) record DONE, move
 * head to the tail, then store the count the intent computed. Every step
 * is idempotent, so the repair simply runs it again. The tail does not
 * move meanwhile: the queue is shut down and no put is in progress. */
static void ring_drop_forward(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint64_t tail = atomic_load(&q->q_tail);

	if (!ipc__ring_walk(r, atomic_load(&q->q_free), w_pos(tail), drop_one,
			    NULL)) {
		ipc__ring_broken(r);
		return;
	}
	atomic_store(&q->q_head, tail);
	atomic_store(&q->q_requeued, 0);
	atomic_store(&q->q_done, q->q_intent_done);
	q->q_intent = INTENT_NONE;
	ipc__ring_advance_free(r);
}

void ipc__ring_drop_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint64_t tail = atomic_load(&q->q_tail);
	uint64_t head = atomic_load(&q->q_head);
	uint32_t requeued = 0;

	if (!ring_words_sane(r, tail, head, atomic_load(&q->q_free)) ||
	    !ipc__ring_walk(r, atomic_load(&q->q_free), w_pos(head),
			    count_requeued, &requeued)) {
		ipc__ring_broken(r);
		return;
	}
	if (w_items(tail) == w_items(head) && requeued == 0)
		return; /* nothing queued */
	q->q_intent_done = atomic_load(&q->q_done) + requeued +
			   (w_items(tail) - w_items(head));
	q->q_intent = INTENT_DROP;
	IPC__CRASHPOINT("queue.drop.intent");
	ring_drop_forward(r);
}

/* A consumer died holding q_cmutex. Roll its operation forward and
 * recompute every word that is derived from the records. */
static void find_start(struct ring *r, uint32_t pos, struct rec_hdr *h,
		       void *arg)
{
	struct find_arg *f = arg;

	(void)r;
	(void)h;
	if (pos == f->pos)
		f->found = true;
}

/* The repair's checks: the words, the intent record (it must name a
 * record in [free, head)), and the record at head (the one a get may have
 * marked). False if the segment is damaged. */
static bool ring_repair_sane(struct ring *r, uint32_t free, uint64_t head,
			     uint64_t tail)
{
	struct ring_shm *q = r->shm;
	uint32_t len = rec_at(r, w_pos(head))->r_len;

	if (!ring_words_sane(r, tail, head, free) ||
	    (q->q_intent != INTENT_NONE && q->q_intent != INTENT_TASK_DONE &&
	     q->q_intent != INTENT_DROP))
		return false;
	/* A drop counts at most every task not yet done as done. */
	if (q->q_intent == INTENT_DROP)
		return q->q_intent_done - atomic_load(&q->q_done) <=
		       w_items(tail) - atomic_load(&q->q_done);
	if (q->q_intent == INTENT_TASK_DONE) {
		struct find_arg f = { 0, q->q_intent_pos, false };
		if (!ipc__ring_walk(r, free, w_pos(head), find_start, &f) ||
		    !f.found)
			return false;
	}
	return w_pos(head) == w_pos(tail) ||
	       (len <= r->max_msg &&
		rec_size(len) <= w_pos(tail) - w_pos(head));
}

/* A consumer died holding q_cmutex. Roll its operation forward and
 * recompute every word that is derived from the records. A damaged
 * segment fails the repair, which leaves the lock not recoverable (and
 * the queue marked broken) instead of trusting it. */
static int ring_repair_consumer(void *arg)
{
	struct ring *r = arg;
	struct ring_shm *q = r->shm;
	uint32_t free = atomic_load(&q->q_free);
	uint64_t head = atomic_load(&q->q_head);
	uint64_t tail = atomic_load(&q->q_tail);
	uint32_t requeued = 0;

	if (!r->joinable)
		return ring_words_sane(r, tail, head, free) ? 0 : -EPROTO;
	if (!ring_repair_sane(r, free, head, tail)) {
		ipc__ring_broken(r);
		return -EPROTO;
	}
	if (q->q_intent == INTENT_TASK_DONE) {
		/* task_done marks the record DONE, then counts it. */
		atomic_store(&rec_at(r, q->q_intent_pos)->r_state, REC_DONE);
		atomic_store(&q->q_done, q->q_intent_done + 1);
		q->q_intent = INTENT_NONE;
	}
	if (q->q_intent == INTENT_DROP) {
		ring_drop_forward(r);
		head = atomic_load(&q->q_head);
	}
	/* get marks the record at head TAKEN, then moves head past it. A
	 * record in [head, tail) is otherwise always READY. */
	if (w_pos(head) != w_pos(tail) &&
	    atomic_load(&rec_at(r, w_pos(head))->r_state) != REC_READY) {
		uint32_t size = rec_size(rec_at(r, w_pos(head))->r_len);
		head = w_make(w_items(head) + 1, w_pos(head) + size);
		atomic_store(&q->q_head, head);
	}
	if (!ipc__ring_walk(r, free, w_pos(head), count_requeued, &requeued)) {
		ipc__ring_broken(r);
		return -EPROTO;
	}
	atomic_store(&q->q_requeued, requeued);
	ipc__ring_advance_free(r);
	/* The operation rolled forward may have finished the last task or
	 * freed room, and its dead owner woke no one: wake here (fenced),
	 * or joiners and producers would wait for their next re-check. */
	atomic_thread_fence(memory_order_seq_cst);
	if (ring_unfinished(r) == 0)
		ipc__ring_wake(&q->q_join_seq, INT_MAX);
	ipc__ring_wake_room(r);
	return 0;
}

int ipc__ring_lock_consumers(struct ring *r, const struct ipc__deadline *dl)
{
	return ipc__ring_lock(&r->shm->q_cmutex, dl, ring_repair_consumer, r);
}

static void requeue_one(struct ring *r, uint32_t pos, struct rec_hdr *h,
			void *arg)
{
	struct requeue_arg *a = arg;

	(void)pos;
	if (REC_OWNER(atomic_load_explicit(&h->r_state,
					   memory_order_relaxed)) != a->taken)
		return;
	atomic_store_explicit(&h->r_state, REC_REQUEUED, memory_order_relaxed);
	atomic_fetch_add(&r->shm->q_requeued, 1);
	a->count++;
	IPC__CRASHPOINT("queue.reap.requeued");
}

/* The consumer of slot is dead or gone: roll forward the task_done it
 * made without the lock, if it died inside one (q_cmutex held). That
 * task_done marks its record DONE, then counts it in s_done, under the
 * intent record in the slot's own line (see "task_done without the lock"
 * in ring_joinable.c). A record still TAKEN by the slot at the intent's
 * position was not marked: mark it. Any other state there means it was
 * (the record may since have been freed, and its bytes reused): count it
 * only. The position is looked for as a record boundary in [free, head)
 * before its record is touched. Idempotent. True if a task was counted. */
static bool ring_slot_roll_forward(struct ring *r, uint32_t slot)
{
	struct ring_shm *q = r->shm;
	struct ring_slot *s = &r->slots[slot];
	struct find_arg f = { 0, 0, false };
	struct rec_hdr *h;

	if (atomic_load(&s->s_intent) != INTENT_TASK_DONE)
		return false;
	f.pos = atomic_load(&s->s_intent_pos);
	if (!ipc__ring_walk(r, atomic_load(&q->q_free),
			    w_pos(atomic_load(&q->q_head)), find_start, &f)) {
		ipc__ring_broken(r);
		return false;
	}
	if (f.found) {
		h = rec_at(r, f.pos);
		if (REC_OWNER(atomic_load(&h->r_state)) == (REC_TAKEN | slot))
			atomic_store(&h->r_state, REC_DONE);
	}
	atomic_store(&s->s_done, atomic_load(&s->s_intent_done) + 1);
	atomic_store(&s->s_intent, INTENT_NONE);
	return true;
}

/* Give slot's unfinished tasks back to the queue and free the slot
 * (q_cmutex held). Idempotent: a repeat after a crash finds nothing left
 * to requeue. */
uint32_t ipc__ring_release_slot(struct ring *r, uint32_t slot)
{
	struct ring_shm *q = r->shm;
	struct requeue_arg a = { REC_TAKEN | slot, 0 };
	bool counted = ring_slot_roll_forward(r, slot);

	if (!ipc__ring_walk(r, atomic_load(&q->q_free),
			    w_pos(atomic_load(&q->q_head)), requeue_one, &a))
		ipc__ring_broken(r);
	atomic_store(&r->slots[slot].s_state, SLOT_FREE);
	/* The dead consumer woke no joiner for the task rolled forward. */
	if (counted && ring_unfinished(r) == 0)
		ipc__ring_wake(&q->q_join_seq, INT_MAX);
	return a.count;
}

/* Find consumers that died and requeue their tasks (q_cmutex held). A
 * registered consumer holds its slot's robust mutex: EBUSY means alive,
 * EOWNERDEAD means the kernel saw it die. */
void ipc__ring_reap_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t requeued = 0;

	for (uint32_t i = 0; i < r->nslots; i++) {
		struct ring_slot *s = &r->slots[i];
		int rc;
		if (atomic_load(&s->s_state) != SLOT_ACTIVE)
			continue;
		rc = ipc__mutex_trylock_sane(&s->s_reg);
		if (rc != 0 && rc != EOWNERDEAD)
			continue; /* alive (EBUSY), or ours (EDEADLK) */
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		requeued += ipc__ring_release_slot(r, i);
		ipc__mutex_unlock(&s->s_reg);
	}
	if (requeued > 0)
		ipc__ring_wake(&q->q_get_seq, (int)requeued);
}

/* Reaping is opportunistic: sleepers call it on every slice, so it only
 * tries the lock (a holder that cannot run must not hold up a sleeper's
 * deadline), and a dead holder's repair runs on the way in. */
void ipc__ring_reap(struct ring *r)
{
	static const struct ipc__deadline nowait = { .kind = IPC__DL_NOWAIT };

	bool moved;

	if (!r->joinable || ipc__ring_lock_consumers(r, &nowait) != 0)
		return;
	ipc__ring_reap_locked(r);
	/* Records done without the lock wait for someone to free them: a
	 * sleeper waiting for room may be the only one left who would. */
	moved = ipc__ring_advance_free(r);
	if (ipc__mutex_unlock(&r->shm->q_cmutex) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	if (moved)
		ipc__ring_wake_room(r);
}
