/* SPDX-License-Identifier: MIT */
/*
 * ring_joinable.c — the consumer side of a JoinableQueue: consumer slots
 * (a robust mutex each, held by the consumer thread for its lifetime),
 * taking records without freeing them (without the lock for a registered
 * consumer), task_done (without the lock for one task outstanding) with
 * its intent records, and join. The claim at head, the repair after a
 * consumer died holding q_cmutex and the reaping that requeues a dead
 * consumer's tasks are in ring_reap.c. See the "JoinableQueue" part of
 * the essay at the top of ring.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "libipc/queue/ring.h"

/*
 * Consumer identity. A consumer is one thread using one handle, so that
 * threads sharing a handle never complete, requeue or free each other's
 * tasks. Each thread remembers its slots in a small thread-local cache
 * keyed by handle id; a miss searches the slots for the thread's own (the
 * robust mutex it holds proves it: trylock says EDEADLK), and only then
 * registers a new one. A thread that exits leaves its mutex to the kernel,
 * which marks it dead: the next reaper requeues exactly that thread's
 * tasks. The cache holds no resource and needs no cleanup.
 *
 * Where task_done starts looking. task_done completes the thread's oldest
 * TAKEN record, and a walk from q_free to it crosses every record still
 * held by other consumers: with several consumers time-sliced on few CPUs,
 * q_free waits for a descheduled one and the walks grow long (25 records
 * a call was measured with 4 consumers on 2 CPUs). So an entry that saw
 * its slot registered (no task before it) also counts its outstanding
 * tasks and remembers where the oldest one starts, or a record boundary
 * before it: that is process memory, written only from positions this
 * thread took or walked to, so it is a trusted boundary while a task is
 * outstanding (a live consumer's TAKEN records are never requeued, so
 * q_free cannot pass them). task_done walks from there, and from q_free
 * only if that finds nothing. An entry found by searching the slots may
 * have older tasks it never saw: it does not track, and always walks from
 * q_free.
 *
 * Take order. "Oldest" is the task got first, which is the first in the
 * ring only while every take lies past the consumer's earlier ones. A
 * requeued task need not: got after A, a dead consumer's task that lies
 * before A would be completed by the task_done meant for A (a borrower
 * giving back in order then lost the bytes it still read, and a consumer
 * killed next had A queued again and that task lost). So a TAKEN state
 * carries a generation (REC_GEN_SHIFT), and the slot the generation of its
 * newest task (s_gen, written only by its consumer, under q_cmutex, reset
 * when it registers): a take that lies before one of ours of the newest
 * generation starts a new one. Within a generation, ring order is take
 * order; the oldest task is the first of the lowest generation. While
 * s_gen is 0 (no requeued task ever got out of order, the common case)
 * that is the first TAKEN | slot record, found as above; otherwise a walk
 * from q_free finds it, and the last task done resets s_gen. Generations
 * stop at REC_GEN_MAX (32 767 such takes while never idle): past it, ring
 * order again.
 *
 * Get and task_done without the lock. Taken twice per message (get, then
 * task_done), q_cmutex was where several consumers spent their time: at 4
 * consumers on 2 CPUs, about half of all CPU went to acquiring and
 * releasing it. A registered consumer's get now claims the record at head
 * by compare-and-swap ("Claiming the record at head" in ring_reap.c) when
 * no requeued task waits (those, and the first get that registers, take
 * the lock) and the queue is not shut down (a drop, or the repair of one
 * whose dropper died, runs under the lock and must be seen first). And the
 * common task_done touches nothing another consumer writes: a consumer with one
 * task outstanding (the usual get, work, task_done) knows where it is and what
 * state its take stored, and while the consumer lives, nobody but itself
 * changes that record or its slot (the reaper touches only a dead consumer's
 * slot; close is not called beside other calls on its handle; a drop claims
 * only READY records and marks only REQUEUED ones). So such a task_done, with
 * its slot's s_gen 0, writes without the lock: an intent record in its slot's
 * own line, the record DONE, its slot's s_done one higher (a locked exchange,
 * the full barrier the wakes below need), the intent cleared. A consumer killed
 * after the intent and before its clearing is rolled forward when its slot is
 * released (ipc__ring_release_slot): the task is never handed out again; one
 * killed before its intent has the task queued again, as any dead consumer.
 *
 * Then it frees (ipc__ring_advance_free, by compare-and-swap, no lock):
 * at once when its record is the oldest not freed, otherwise nothing, and
 * the task_done of the older one frees both. Any other task_done (more
 * than one task outstanding, a requeued task got out of order, an entry
 * that did not track, more handles than SLOT_CACHE) takes the lock as
 * before.
 */
#define SLOT_CACHE 4

struct me_entry {
	uint64_t handle;
	uint32_t slot;
	bool tracked;	      /* hint and outstanding are right (see above) */
	bool only;	      /* outstanding is 1, and that task is `last` */
	uint32_t outstanding; /* tasks got and not yet done */
	uint32_t hint;	      /* a boundary at or before the oldest one */
	uint32_t last;	      /* where the newest take was */
	uint32_t last_state;  /* and the state it stored there */
};

static _Thread_local struct {
	unsigned gen; /* fork generation the entries belong to */
	int32_t tid;
	unsigned next;
	struct me_entry e[SLOT_CACHE];
} me IPC__TLS_FAST;

static void me_refresh(void)
{
	if (me.tid != 0 && me.gen == ipc__fork_gen())
		return;
	memset(&me, 0, sizeof(me));
	me.gen = ipc__fork_gen();
	me.tid = ipc__tid();
}

static void me_remember(struct ring *r, uint32_t slot, bool tracked)
{
	me.e[me.next] = (struct me_entry){ .handle = r->id,
					   .slot = slot,
					   .tracked = tracked };
	me.next = (me.next + 1) % SLOT_CACHE;
}

/* This handle's entry (after ring_consumer_slot or ring_register_locked
 * found or made it), or NULL. */
static struct me_entry *me_entry(struct ring *r)
{
	for (int k = 0; k < SLOT_CACHE; k++)
		if (me.e[k].handle == r->id)
			return &me.e[k];
	return NULL;
}

/* Is slot i registered to this thread and handle? The fields first (cheap,
 * and a mismatch is final), then the mutex, which only a live owner holds:
 * a dead thread's slot may carry a reused thread id. Such a slot is freed
 * here, its tasks requeued, as a reaper would. */
static bool slot_is_mine(struct ring *r, uint32_t i, int32_t pid)
{
	struct ring_slot *s = &r->slots[i];
	int rc;

	if (atomic_load_explicit(&s->s_state, memory_order_relaxed) !=
		    SLOT_ACTIVE ||
	    s->s_handle != r->id || s->s_tid != me.tid || s->s_pid != pid)
		return false;
	rc = ipc__mutex_trylock_sane(&s->s_reg);
	if (rc == EDEADLK)
		return true;
	if (rc == 0 || rc == EOWNERDEAD) {
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		if (ipc__ring_release_slot(r, i) > 0)
			ipc__ring_wake(&r->shm->q_get_seq, INT_MAX);
		ipc__mutex_unlock(&s->s_reg);
	}
	return false;
}

/* The calling thread's slot on this handle, or -1 (q_cmutex held). */
static int ring_consumer_slot(struct ring *r)
{
	int32_t pid;

	me_refresh();
	for (int k = 0; k < SLOT_CACHE; k++) {
		uint32_t i = me.e[k].slot;
		if (me.e[k].handle != r->id)
			continue;
		if (i < r->nslots && r->slots[i].s_handle == r->id &&
		    r->slots[i].s_tid == me.tid &&
		    atomic_load_explicit(&r->slots[i].s_state,
					 memory_order_relaxed) == SLOT_ACTIVE)
			return (int)i;
		me.e[k].handle = 0; /* closed and reused: forget it */
	}
	pid = (int32_t)getpid();
	for (uint32_t i = 0; i < r->nslots; i++) {
		if (slot_is_mine(r, i, pid)) {
			me_remember(r, i, false);
			return (int)i;
		}
	}
	return -1;
}

/* Make the calling thread a consumer of this handle (q_cmutex held): its
 * slot, or -EBUSY when every slot is taken by a live consumer. A free slot
 * whose mutex this thread still holds (from a handle it used and closed)
 * is as good as an unlocked one. */
static int ring_register_locked(struct ring *r)
{
	me_refresh();
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < r->nslots; i++) {
			struct ring_slot *s = &r->slots[i];
			int rc;
			if (atomic_load(&s->s_state) != SLOT_FREE)
				continue;
			rc = ipc__mutex_trylock_sane(&s->s_reg);
			if (rc == EOWNERDEAD) /* died registering */
				pthread_mutex_consistent(&s->s_reg);
			else if (rc != 0 && rc != EDEADLK)
				continue;
			IPC__CRASHPOINT("queue.register.locked");
			if (atomic_load(&r->shm->q_slots_hw) < i + 1)
				atomic_store(&r->shm->q_slots_hw, i + 1);
			s->s_pid = (int32_t)getpid();
			s->s_tid = me.tid;
			s->s_handle = r->id;
			s->s_gen = 0;
			atomic_store(&s->s_state, SLOT_ACTIVE);
			me_remember(r, i, true);
			return (int)i;
		}
		ipc__ring_reap_locked(r);
	}
	return -EBUSY;
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

/* The slot's take generation (q_cmutex held), bounded: the slot is
 * shared memory, which a peer may have damaged. */
static uint32_t ring_slot_gen(struct ring *r, uint32_t slot)
{
	uint32_t gen = r->slots[slot].s_gen;

	return gen > REC_GEN_MAX ? REC_GEN_MAX : gen;
}

/* What the walk for the oldest task of a slot with generations finds:
 * the first record of the lowest generation, and how many are ours. */
struct oldest_arg {
	uint32_t owner; /* REC_TAKEN | slot */
	uint32_t gen, pos, count;
};

static void find_oldest_gen(struct ring *r, uint32_t pos, struct rec_hdr *h,
			    void *arg)
{
	struct oldest_arg *o = arg;
	uint32_t state =
		atomic_load_explicit(&h->r_state, memory_order_relaxed);

	(void)r;
	if (REC_OWNER(state) != o->owner)
		return;
	if (o->count++ == 0 || state >> REC_GEN_SHIFT < o->gen) {
		o->gen = state >> REC_GEN_SHIFT;
		o->pos = pos;
	}
}

/* ring_find_oldest for a slot whose s_gen is not 0: walk from q_free for
 * the first task of the lowest generation; the last one resets s_gen. The
 * entry's hint goes back to q_free, a boundary before all of them. */
static int ring_find_oldest_gen(struct ring *r, uint32_t slot,
				struct me_entry *e, struct find_arg *f,
				uint32_t free, uint32_t head)
{
	struct oldest_arg o = { REC_TAKEN | slot, 0, 0, 0 };

	if (!ipc__ring_walk(r, free, head, find_oldest_gen, &o))
		return ipc__ring_broken(r);
	if (o.count <= 1)
		r->slots[slot].s_gen = 0;
	if (o.count == 0)
		return -EINVAL;
	*f = (struct find_arg){ REC_TAKEN | slot | o.gen << REC_GEN_SHIFT,
				o.pos, true };
	if (e != NULL && e->tracked) {
		e->hint = free;
		if (e->outstanding > 0)
			e->outstanding--;
		e->only = false;
	}
	return 0;
}

/* JoinableQueue: mark a record TAKEN by our slot — a requeued one first,
 * else the one at head, moving head past it — and report where it is
 * (q_cmutex held). The record stays in the ring until task_done. */
static ssize_t ring_take_joinable(struct ring *r, struct get_req *g,
				  uint32_t slot, uint32_t *pos, uint32_t *state,
				  void **dst)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	uint32_t gen = ring_slot_gen(r, slot), len;
	uint32_t taken = REC_TAKEN | slot | gen << REC_GEN_SHIFT;
	struct rec_hdr *h;
	ssize_t n;
	int rc;

	if (atomic_load_explicit(&q->q_requeued, memory_order_relaxed) > 0) {
		struct find_arg later = { taken, 0, false };
		struct find_arg f = { REC_REQUEUED, 0, false };
		/* A count with no such record is damage too: trusting it
		 * would make every get find "work" that is not there. The
		 * walk from the free position holds it (see "Walks and
		 * frees" in ring_reap.c); the one after starts at a requeued
		 * record, which no free passes. */
		uint32_t free = ipc__ring_freeze_free(r);
		bool ok;
		IPC__CRASHPOINT("queue.get.requeued_walk");
		ok = ipc__ring_walk(r, free, w_pos(head), find_first, &f);
		ipc__ring_thaw_free(r);
		if (!ok || !f.found)
			return ipc__ring_broken(r);
		h = rec_at(r, f.pos);
		len = h->r_len; /* read once: the walk bounded what it saw */
		if (len > r->max_msg)
			return ipc__ring_broken(r);
		/* One of ours of the newest generation after it? Then this
		 * take starts a new one (see "Take order"). */
		if (!ipc__ring_walk(r, f.pos, w_pos(head), find_first, &later))
			return ipc__ring_broken(r);
		rc = ipc__ring_get_dest(g, len, dst);
		if (rc != 0)
			return rc;
		if (later.found && gen < REC_GEN_MAX) {
			gen++;
			taken = REC_TAKEN | slot | gen << REC_GEN_SHIFT;
			r->slots[slot].s_gen = gen;
		}
		atomic_store(&h->r_state, taken);
		atomic_fetch_sub(&q->q_requeued, 1);
		*pos = f.pos;
		*state = taken;
		return len;
	}
	/* NULL: no giving way while holding q_cmutex. */
	n = ipc__ring_claim_head(r, taken, g, dst, pos, &r->slots[slot].s_claim,
				 NULL);
	atomic_store_explicit(&r->slots[slot].s_claim, 0, memory_order_relaxed);
	if (n >= 0)
		*state = taken;
	return n;
}

/* Find the slot's oldest TAKEN record into f (q_cmutex held): 0,
 * -EINVAL (none: more task_done calls than gets) or -ENOTRECOVERABLE. A
 * tracked entry's walk starts at its hint (see "Where task_done starts
 * looking"); the walk from q_free decides whenever that one does not find
 * the record. The entry then remembers the boundary after it. */
static int ring_find_oldest(struct ring *r, uint32_t slot, struct me_entry *e,
			    struct find_arg *f, uint32_t free)
{
	struct ring_shm *q = r->shm;
	uint32_t head = w_pos(atomic_load(&q->q_head));

	if (head - free > r->cap)
		return ipc__ring_broken(r); /* as the walk from q_free says */
	if (r->slots[slot].s_gen != 0)
		return ring_find_oldest_gen(r, slot, e, f, free, head);
	*f = (struct find_arg){ REC_TAKEN | slot, 0, false };
	if (e != NULL && e->tracked && e->outstanding > 0 &&
	    e->hint - free < head - free) {
		/* From the hint, stop at the first record of ours: each
		 * length is checked against the range before it is used. */
		uint32_t pos = e->hint;
		while (pos != head) {
			struct rec_hdr *h = rec_at(r, pos);
			uint32_t len = h->r_len;
			if (len > r->max_msg || rec_size(len) > head - pos)
				break; /* the walk from q_free decides */
			if (atomic_load_explicit(&h->r_state,
						 memory_order_relaxed) ==
			    f->state) {
				f->found = true;
				f->pos = pos;
				break;
			}
			pos += rec_size(len);
		}
	}
	if (!f->found) {
		*f = (struct find_arg){ REC_TAKEN | slot, 0, false };
		if (!ipc__ring_walk(r, free, head, find_first, f))
			return ipc__ring_broken(r);
		if (!f->found)
			return -EINVAL;
	}
	if (e != NULL && e->tracked) {
		/* The boundary after it, if its length (read again: a peer
		 * may have changed it since the walk) still fits the range;
		 * else the record's own start, a boundary too. */
		uint32_t len = rec_at(r, f->pos)->r_len;
		e->hint = f->pos;
		if (len <= r->max_msg && rec_size(len) <= head - f->pos)
			e->hint += rec_size(len);
		if (e->outstanding > 0)
			e->outstanding--;
		e->only = false;
	}
	return 0;
}

/* A get took the record at pos, storing state there, for a tracked entry
 * (q_cmutex held): count it, and move the hint back to it if it lies
 * before the hint (a requeued record can). */
static void me_took(struct ring *r, uint32_t pos, uint32_t state)
{
	struct me_entry *e = me_entry(r);
	uint32_t free = w_pos(atomic_load(&r->shm->q_free));

	if (e == NULL || !e->tracked)
		return;
	if (e->outstanding == 0 || pos - free < e->hint - free)
		e->hint = pos;
	e->only = e->outstanding == 0;
	e->last = pos;
	e->last_state = state;
	e->outstanding++;
}

/* This thread's entry for the handle, if its slot is still registered to
 * it, read without the lock: only this thread changes its own registered
 * slot (see "Get and task_done without the lock"). NULL otherwise: the locked
 * path then finds out what happened. */
static struct me_entry *me_registered(struct ring *r)
{
	struct me_entry *e;
	struct ring_slot *s;

	me_refresh();
	e = me_entry(r);
	if (e == NULL || e->slot >= r->nslots)
		return NULL;
	s = &r->slots[e->slot];
	if (atomic_load_explicit(&s->s_state, memory_order_relaxed) !=
		    SLOT_ACTIVE ||
	    s->s_handle != r->id || s->s_tid != me.tid)
		return NULL;
	return e;
}

/* task_done without the lock, for an entry with one task outstanding (see
 * "Get and task_done without the lock" above): 0, or -EAGAIN when the locked
 * path must decide (the slot or the record is not as this entry left it: a
 * damaged segment, which the locked path's checks then find). */
static int ring_task_done_fast(struct ring *r, struct me_entry *e)
{
	struct ring_shm *q = r->shm;
	struct ring_slot *s;
	struct rec_hdr *h;
	uint32_t done;

	s = &r->slots[e->slot];
	h = rec_at(r, e->last);
	if (s->s_gen != 0 ||
	    atomic_load_explicit(&h->r_state, memory_order_relaxed) !=
		    e->last_state)
		return -EAGAIN;
	/* Program order is all the repair needs, as for the locked path's
	 * intent: it runs after the kernel found us dead. */
	done = atomic_load_explicit(&s->s_done, memory_order_relaxed);
	atomic_store_explicit(&s->s_intent_pos, e->last, memory_order_relaxed);
	atomic_store_explicit(&s->s_intent_done, done, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&s->s_intent, INTENT_TASK_DONE,
			      memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&h->r_state, REC_DONE, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	IPC__CRASHPOINT("queue.task_done.marked");
	/* A locked read-modify-write: it orders the stores of the state and
	 * the count before the reads below (the arms, the free word). */
	atomic_exchange(&s->s_done, done + 1);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&s->s_intent, INTENT_NONE, memory_order_relaxed);
	IPC__CRASHPOINT("queue.task_done.counted");
	e->outstanding = 0;
	e->only = false;
	ipc__fence_after_unlock();
	if ((atomic_load_explicit(&q->q_join_seq, memory_order_relaxed) &
	     SEQ_ARMED) &&
	    ring_unfinished(r) == 0)
		ipc__ring_wake_unlocked(&q->q_join_seq, INT_MAX);
	/* Free: usually at once (ours is the oldest record), else nothing
	 * (an older one is not done: its task_done frees ours too). */
	ipc__ring_free_done(r);
	return 0;
}

int ipc__ring_task_done(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	struct me_entry *e;
	struct find_arg f;
	uint32_t free;
	int rc, slot;

	if (atomic_load(&q->q_closed) & CLOSED_BROKEN)
		return -ENOTRECOVERABLE;
	e = me_registered(r);
	if (e != NULL && e->tracked && e->only && e->outstanding == 1 &&
	    ring_task_done_fast(r, e) == 0)
		return 0;
	rc = ipc__ring_lock_consumers(r, &ipc__forever);
	if (rc != 0)
		return rc;
	slot = ring_consumer_slot(r);
	if (slot < 0) {
		ipc__mutex_unlock(&q->q_cmutex);
		return -EINVAL; /* this consumer never got a task */
	}
	/* The free position is held from the walk to the count (see "Walks
	 * and frees" in ring_reap.c): the record found, and the intent's
	 * position the repair looks for, stay records until then. */
	free = ipc__ring_freeze_free(r);
	rc = ring_find_oldest(r, (uint32_t)slot, me_entry(r), &f, free);
	if (rc != 0) {
		ipc__ring_thaw_free(r);
		ipc__mutex_unlock(&q->q_cmutex);
		return rc;
	}
	/* Two stores (the record's state, the count) under an intent record,
	 * which the repair rolls forward. Only their program order matters:
	 * the repair runs after the kernel found us dead, when every store we
	 * made is visible, so release stores (plain moves on x86) behind
	 * compiler barriers do; a fence each cost a JoinableQueue consumer
	 * two of its eight full barriers per message. Joiners read q_done
	 * without the lock: release publishes it. */
	q->q_intent_pos = f.pos;
	q->q_intent_done = atomic_load(&q->q_done);
	q->q_intent = INTENT_TASK_DONE;
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&rec_at(r, f.pos)->r_state, REC_DONE,
			      memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	IPC__CRASHPOINT("queue.task_done.marked");
	atomic_store_explicit(&q->q_done, q->q_intent_done + 1,
			      memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	q->q_intent = INTENT_NONE;
	IPC__CRASHPOINT("queue.task_done.counted");
	ipc__ring_thaw_free(r); /* frees, and wakes producers for room */
	/* The unlock is a locked read-modify-write after the store of
	 * q_done, which orders it before the joiners' arm is read below; a
	 * damaged mutex is not unlocked, so fence then. */
	if (ipc__mutex_unlock(&q->q_cmutex) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	/* Read the joiners' arm (a line nobody writes while nobody joins)
	 * before q_tail (the producers' busiest line): the unlock above
	 * orders our q_done store before this load, as for the wake. */
	ipc__fence_after_unlock();
	if ((atomic_load_explicit(&q->q_join_seq, memory_order_relaxed) &
	     SEQ_ARMED) &&
	    ring_unfinished(r) == 0)
		ipc__ring_wake_unlocked(&q->q_join_seq, INT_MAX);
	return 0;
}

/* A JoinableQueue get: register the calling thread as a consumer if it is
 * not one yet, take a record under q_cmutex, and copy it out after the
 * lock is released — a taken record stays put until our task_done. */
ssize_t ipc__ring_get_joinable(struct ring *r, struct get_req *g,
			       const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint32_t pos = 0, state = 0;
	struct me_entry *e;
	void *dst = NULL;
	bool freed;
	ssize_t n;
	int rc, slot;

	/* Without the lock: a registered consumer, no requeued task to take
	 * first, and not shut down (a drop in progress, or one whose dropper
	 * died, is finished under the lock: see ring_reap.c). */
	e = atomic_load_explicit(&q->q_closed, memory_order_acquire) == 0 &&
			    atomic_load_explicit(&q->q_requeued,
						 memory_order_relaxed) == 0
		    ? me_registered(r)
		    : NULL;
	if (e != NULL) {
		state = REC_TAKEN | e->slot |
			ring_slot_gen(r, e->slot) << REC_GEN_SHIFT;
		n = ipc__ring_claim_head(r, state, g, &dst, &pos,
					 &r->slots[e->slot].s_claim, dl);
		atomic_store_explicit(&r->slots[e->slot].s_claim, 0,
				      memory_order_relaxed);
		if (n < 0)
			return n;
		me_took(r, pos, state);
		goto copy;
	}
	rc = ipc__ring_lock_consumers(r, dl);
	if (rc != 0)
		return rc;
	/* Free what task_done left without the lock (see above). */
	freed = ipc__ring_advance_free(r);
	slot = ring_consumer_slot(r);
	if (slot < 0)
		slot = ring_register_locked(r);
	n = slot < 0 ? slot
		     : ring_take_joinable(r, g, (uint32_t)slot, &pos, &state,
					  &dst);
	if (n >= 0)
		me_took(r, pos, state);
	if (ipc__mutex_unlock(&r->shm->q_cmutex) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	if (freed)
		ipc__ring_wake_room(r);
copy:
	if (n >= 0 && g->lend != NULL)
		*g->lend = pos;
	else if (n > 0)
		ipc__ring_read(r, pos + REC_HDR, dst, (size_t)n);
	return n;
}

/* A handle is closed: the unfinished tasks of every consumer thread of
 * it go back to the queue, as if they had died. The calling thread unlocks
 * its own slot's mutex; another thread's stays locked by that thread
 * until it exits or registers again (ring_register_locked), since only the
 * owner may unlock it. True if one does: that mutex is on the other
 * thread's robust list, which glibc follows into the mutex's memory at
 * that thread's next robust lock, so the caller must leave the segment
 * mapped. True also when the consumers' lock cannot be had (broken):
 * then nobody knows. */
bool ipc__ring_close_consumer(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t requeued = 0;
	int32_t pid = (int32_t)getpid();
	bool held = false;

	if (!r->joinable)
		return false;
	if (ipc__ring_lock_consumers(r, &ipc__forever) != 0)
		return true;
	me_refresh();
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct ring_slot *s = &r->slots[i];
		int rc;
		if (atomic_load(&s->s_state) != SLOT_ACTIVE ||
		    s->s_handle != r->id || s->s_pid != pid)
			continue;
		requeued += ipc__ring_release_slot(r, i);
		rc = ipc__mutex_trylock_sane(&s->s_reg);
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&s->s_reg);
		if (rc == 0 || rc == EOWNERDEAD || rc == EDEADLK)
			ipc__mutex_unlock(&s->s_reg);
		else
			held = true; /* EBUSY: another thread of ours */
	}
	ipc__mutex_unlock(&q->q_cmutex);
	if (requeued > 0)
		ipc__ring_wake(&q->q_get_seq, (int)requeued);
	return held;
}

/* ---- task_done and join ------------------------------------------------ */

int ipc__ring_join(void *impl, const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;

	if (atomic_load(&q->q_closed) & CLOSED_BROKEN)
		return -ENOTRECOVERABLE;
	if (ipc__ring_ready_to_join(r, 0))
		return 0;
	/* A consumer that died inside a task_done made without the lock is
	 * rolled forward when its slot is reaped: look once now, so that a
	 * join that comes after it does not wait for the first re-check. */
	ipc__ring_reap(r);
	if (ipc__ring_ready_to_join(r, 0))
		return 0;
	IPC__CRASHPOINT("queue.join.waiting");
	return ipc__ring_sleep(r, &q->q_join_seq, &q->q_join_waiters,
			       ipc__ring_ready_to_join, 0, dl);
}
