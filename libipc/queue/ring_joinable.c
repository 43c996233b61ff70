/*
 * ring_joinable.c — the consumer side of a JoinableQueue: consumer slots
 * (a robust mutex each, held by the consumer thread for its lifetime),
 * taking records without freeing them, task_done with its intent record,
 * the repair after a consumer died holding q_cmutex, and the reaping that
 * requeues a dead consumer's tasks. See the "JoinableQueue" part of the
 * essay at the top of ring.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "libipc/queue/ring.h"

struct requeue_arg {
	uint32_t taken; /* REC_TAKEN | slot */
	uint32_t count;
};

struct find_arg {
	uint32_t state;
	uint32_t pos;
	bool found;
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

/* Advance q_free over DONE records (q_cmutex held). True if it moved. */
static bool ring_advance_free(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t head =
		w_pos(atomic_load_explicit(&q->q_head, memory_order_relaxed));
	uint32_t start = atomic_load_explicit(&q->q_free, memory_order_relaxed);
	uint32_t free = start;

	while (free != head) {
		struct rec_hdr *h = rec_at(r, free);
		if (atomic_load_explicit(&h->r_state, memory_order_relaxed) !=
		    REC_DONE)
			break;
		free += rec_size(h->r_len);
	}
	if (free == start)
		return false;
	atomic_store_explicit(&q->q_free, free, memory_order_release);
	return true;
}

/* A consumer died holding q_cmutex. Roll its operation forward and
 * recompute every word that is derived from the records. */
static int ring_repair_consumer(void *arg)
{
	struct ring *r = arg;
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load(&q->q_head);
	uint64_t tail = atomic_load(&q->q_tail);
	uint32_t requeued = 0;

	if (w_pos(tail) - w_pos(head) > q->q_capacity)
		return -EPROTO;
	if (!q->q_joinable)
		return 0; /* Queue consumers take no lock */
	if (q->q_intent == INTENT_TASK_DONE) {
		/* task_done marks the record DONE, then counts it. */
		atomic_store(&rec_at(r, q->q_intent_pos)->r_state, REC_DONE);
		atomic_store(&q->q_done, q->q_intent_done + 1);
		q->q_intent = INTENT_NONE;
	}
	/* get marks the record at head TAKEN, then moves head past it. A
	 * record in [head, tail) is otherwise always READY. */
	if (w_pos(head) != w_pos(tail) &&
	    atomic_load(&rec_at(r, w_pos(head))->r_state) != REC_READY) {
		uint32_t size = rec_size(rec_at(r, w_pos(head))->r_len);
		head = w_make(w_items(head) + 1, w_pos(head) + size);
		atomic_store(&q->q_head, head);
	}
	if (!ipc__ring_walk(r, atomic_load(&q->q_free), w_pos(head),
			    count_requeued, &requeued))
		return -EPROTO;
	atomic_store(&q->q_requeued, requeued);
	ring_advance_free(r);
	return 0;
}

static int ring_lock_consumers(struct ring *r, const struct ipc__deadline *dl)
{
	return ipc__ring_lock(&r->shm->q_cmutex, dl, ring_repair_consumer, r);
}

static void requeue_one(struct ring *r, uint32_t pos, struct rec_hdr *h,
			void *arg)
{
	struct requeue_arg *a = arg;

	(void)pos;
	if (atomic_load_explicit(&h->r_state, memory_order_relaxed) != a->taken)
		return;
	atomic_store_explicit(&h->r_state, REC_REQUEUED, memory_order_relaxed);
	atomic_fetch_add(&r->shm->q_requeued, 1);
	a->count++;
	IPC__CRASHPOINT("queue.reap.requeued");
}

/* Give slot's unfinished tasks back to the queue and free the slot
 * (q_cmutex held). Idempotent: a repeat after a crash finds nothing left
 * to requeue. */
static uint32_t ring_release_slot(struct ring *r, uint32_t slot)
{
	struct ring_shm *q = r->shm;
	struct requeue_arg a = { REC_TAKEN | slot, 0 };

	ipc__ring_walk(r, atomic_load(&q->q_free),
		       w_pos(atomic_load(&q->q_head)), requeue_one, &a);
	atomic_store(&r->slots[slot].s_state, SLOT_FREE);
	return a.count;
}

/* Find consumers that died and requeue their tasks (q_cmutex held). A
 * registered consumer holds its slot's robust mutex: EBUSY means alive,
 * EOWNERDEAD means the kernel saw it die. */
static void ring_reap_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t requeued = 0;

	for (uint32_t i = 0; i < q->q_nslots; i++) {
		struct ring_slot *s = &r->slots[i];
		int rc;
		if (atomic_load(&s->s_state) != SLOT_ACTIVE ||
		    (int)i == r->slot)
			continue;
		rc = pthread_mutex_trylock(&s->s_reg);
		if (rc != 0 && rc != EOWNERDEAD)
			continue; /* alive (EBUSY), or our own */
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		requeued += ring_release_slot(r, i);
		pthread_mutex_unlock(&s->s_reg);
	}
	if (requeued > 0)
		ipc__ring_wake(&q->q_get_seq, &q->q_get_waiters, (int)requeued);
}

/* Reaping is opportunistic: sleepers call it on every slice, so it only
 * tries the lock (a holder that cannot run must not hold up a sleeper's
 * deadline), and a dead holder's repair runs on the way in. */
void ipc__ring_reap(struct ring *r)
{
	static const struct ipc__deadline nowait = { .kind = IPC__DL_NOWAIT };

	if (!r->shm->q_joinable || ring_lock_consumers(r, &nowait) != 0)
		return;
	ring_reap_locked(r);
	ipc__mutex_unlock(&r->shm->q_cmutex);
}

/* Make the calling thread a registered consumer (q_cmutex held). */
static int ring_register_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < q->q_nslots; i++) {
			struct ring_slot *s = &r->slots[i];
			int rc;
			if (atomic_load(&s->s_state) != SLOT_FREE)
				continue;
			rc = pthread_mutex_trylock(&s->s_reg);
			if (rc == EOWNERDEAD) /* died registering */
				pthread_mutex_consistent(&s->s_reg);
			else if (rc != 0)
				continue;
			IPC__CRASHPOINT("queue.register.locked");
			s->s_pid = (int32_t)getpid();
			atomic_store(&s->s_state, SLOT_ACTIVE);
			r->slot = (int)i;
			r->slot_gen = ipc__fork_gen();
			return 0;
		}
		ring_reap_locked(r);
	}
	return -EBUSY;
}

/* True if this handle's registration is this process's own. */
static bool ring_registered(struct ring *r)
{
	return r->slot >= 0 && r->slot_gen == ipc__fork_gen();
}

/* Is there a record at head? Refreshes the consumers' tail cache. */
static bool ring_head_ready(struct ring *r, uint64_t head)
{
	struct ring_shm *q = r->shm;

	if (w_pos(head) != w_pos(q->q_cc_tail))
		return true;
	q->q_cc_tail = atomic_load_explicit(&q->q_tail, memory_order_acquire);
	return w_pos(head) != w_pos(q->q_cc_tail);
}

static void find_first(struct ring *r, uint32_t pos, struct rec_hdr *h,
		       void *arg)
{
	struct find_arg *f = arg;

	(void)r;
	if (!f->found &&
	    atomic_load_explicit(&h->r_state, memory_order_relaxed) ==
		    f->state) {
		f->found = true;
		f->pos = pos;
	}
}

/* JoinableQueue: mark a record TAKEN by our slot — a requeued one first,
 * else the one at head, moving head past it — and report where it is
 * (q_cmutex held). The record stays in the ring until task_done. */
static ssize_t ring_take_joinable(struct ring *r, struct get_req *g,
				  uint32_t *pos, void **dst)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	uint32_t taken = REC_TAKEN | (uint32_t)r->slot;
	struct rec_hdr *h;
	int rc;

	if (atomic_load_explicit(&q->q_requeued, memory_order_relaxed) > 0) {
		struct find_arg f = { REC_REQUEUED, 0, false };
		ipc__ring_walk(r, atomic_load(&q->q_free), w_pos(head),
			       find_first, &f);
		if (f.found) {
			h = rec_at(r, f.pos);
			rc = ipc__ring_get_dest(g, h->r_len, dst);
			if (rc != 0)
				return rc;
			atomic_store(&h->r_state, taken);
			atomic_fetch_sub(&q->q_requeued, 1);
			*pos = f.pos;
			return h->r_len;
		}
	}
	if (!ring_head_ready(r, head))
		return -EAGAIN;
	h = rec_at(r, w_pos(head));
	rc = ipc__ring_get_dest(g, h->r_len, dst);
	if (rc != 0)
		return rc;
	atomic_store_explicit(&h->r_state, taken, memory_order_relaxed);
	IPC__CRASHPOINT("queue.get.taken");
	atomic_store_explicit(
		&q->q_head,
		w_make(w_items(head) + 1, w_pos(head) + rec_size(h->r_len)),
		memory_order_release);
	*pos = w_pos(head);
	return h->r_len;
}

int ipc__ring_task_done(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	struct find_arg f;
	bool freed;
	int rc;

	if (!ring_registered(r))
		return -EINVAL; /* this consumer never got a task */
	rc = ring_lock_consumers(r, &ipc__forever);
	if (rc != 0)
		return rc;
	f = (struct find_arg){ REC_TAKEN | (uint32_t)r->slot, 0, false };
	ipc__ring_walk(r, atomic_load(&q->q_free),
		       w_pos(atomic_load(&q->q_head)), find_first, &f);
	if (!f.found) {
		ipc__mutex_unlock(&q->q_cmutex);
		return -EINVAL; /* more task_done calls than gets */
	}
	/* Two stores (the record's state, the count) under an intent record,
	 * which the repair rolls forward. */
	q->q_intent_pos = f.pos;
	q->q_intent_done = atomic_load(&q->q_done);
	q->q_intent = INTENT_TASK_DONE;
	atomic_store(&rec_at(r, f.pos)->r_state, REC_DONE);
	IPC__CRASHPOINT("queue.task_done.marked");
	atomic_store(&q->q_done, q->q_intent_done + 1);
	q->q_intent = INTENT_NONE;
	IPC__CRASHPOINT("queue.task_done.counted");
	freed = ring_advance_free(r);
	ipc__mutex_unlock(&q->q_cmutex);
	if (freed)
		ipc__ring_wake(&q->q_put_seq, &q->q_put_waiters, INT_MAX);
	if (ring_unfinished(r) == 0)
		ipc__ring_wake(&q->q_join_seq, &q->q_join_waiters, INT_MAX);
	return 0;
}

/* A JoinableQueue get: register the calling thread as a consumer if it is
 * not one yet, take a record under q_cmutex, and copy it out after the
 * lock is released — a taken record stays put until our task_done. */
ssize_t ipc__ring_get_joinable(struct ring *r, struct get_req *g,
			       const struct ipc__deadline *dl)
{
	uint32_t pos = 0;
	void *dst = NULL;
	ssize_t n;
	int rc;

	rc = ring_lock_consumers(r, dl);
	if (rc != 0)
		return rc;
	n = ring_registered(r) ? 0 : ring_register_locked(r);
	if (n == 0)
		n = ring_take_joinable(r, g, &pos, &dst);
	ipc__mutex_unlock(&r->shm->q_cmutex);
	if (n > 0)
		ipc__ring_read(r, pos + REC_HDR, dst, (size_t)n);
	return n;
}

/* A consumer closes its handle: its unfinished tasks go back to the queue,
 * as if it had died. */
void ipc__ring_close_consumer(struct ring *r)
{
	if (!ring_registered(r) || ring_lock_consumers(r, &ipc__forever) != 0)
		return;
	{
		uint32_t requeued = ring_release_slot(r, (uint32_t)r->slot);
		/* Only the registering thread can unlock; from another thread
		 * this fails and the kernel frees the slot when it exits. */
		pthread_mutex_unlock(&r->slots[r->slot].s_reg);
		ipc__mutex_unlock(&r->shm->q_cmutex);
		if (requeued > 0)
			ipc__ring_wake(&r->shm->q_get_seq,
				       &r->shm->q_get_waiters, (int)requeued);
	}
}
