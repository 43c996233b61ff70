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

/* Is f->pos a record boundary (a walk's visit)? */
static void find_start(struct ring *r, uint32_t pos, struct rec_hdr *h,
		       void *arg)
{
	struct find_arg *f = arg;

	(void)r;
	(void)h;
	if (pos == f->pos)
		f->found = true;
}

/* Advance q_free over DONE (and DROPPED) records, with or without
 * q_cmutex. True if it moved; a length that does not fit [free, head)
 * while the free word stays put marks the queue broken.
 *
 * Freeing without the lock. A lock-free task_done marks its record DONE
 * and then frees; so do gets, reaps and producers short of room. Each
 * walks from the free word it read over DONE records and moves the word by
 * a compare-and-swap from that value. No record from that position on can
 * be reused while the word holds it (producers write only within the room
 * it leaves), so a walk whose CAS succeeds read real records; one whose
 * CAS fails starts again from the new word (its walk may have read reused
 * bytes). The count in the word rules out ABA. After each move the walk
 * looks again at the record at the new position: a task_done that marked
 * it just after our walk read it then reads the word (its exchange is a
 * full barrier, as our CAS is), so either it sees the new position and
 * frees, or we see its mark. So a DONE record never waits at the free
 * position with nobody on the way to free it. The acquire loads of the
 * states pair with the release of each DONE store: a consumer's reads of
 * its payload happen before a producer reuses the bytes.
 *
 * Walks and frees. Every walk under q_cmutex that starts at the free
 * position (looking for requeued tasks, a consumer's oldest task, a dead
 * consumer's tasks, the repair's checks) must read records no producer
 * can reuse meanwhile, and a free made beside it could let one: a walk
 * over reused bytes could take a payload for a header (and requeue, or
 * mark done, bytes of a message). So such a walk first sets FREE_FROZEN
 * in the word (ipc__ring_freeze_free): freeing backs off while it is set,
 * and the walk's CAS-free reads are safe. Its thaw clears the bit (a
 * locked RMW, a full barrier) and frees what the task_done calls that
 * backed off left: each of them stored its DONE before reading the word,
 * so the thaw's walk sees it. Only q_cmutex holders freeze, so a bit left
 * by a holder that died is cleared by the next, whose repair walks. A
 * holder stopped mid-walk holds frees up meanwhile, as it holds up every
 * operation that takes q_cmutex. */
bool ipc__ring_advance_free(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint64_t free = atomic_load_explicit(&q->q_free, memory_order_acquire);
	bool moved = false;

	for (;;) {
		uint32_t head = w_pos(
			atomic_load_explicit(&q->q_head, memory_order_acquire));
		uint32_t pos = w_pos(free), n = 0;
		bool bad = head - pos > r->cap;
		uint64_t now;

		if (free & FREE_FROZEN)
			return moved; /* a walk reads from it: its thaw frees */
		while (!bad && pos != head) {
			struct rec_hdr *h = rec_at(r, pos);
			uint32_t len =
				__atomic_load_n(&h->r_len, __ATOMIC_RELAXED);
			uint32_t state = atomic_load_explicit(
				&h->r_state, memory_order_acquire);
			if (state != REC_DONE && state != REC_DROPPED)
				break;
			bad = len > r->max_msg || rec_size(len) > head - pos;
			if (!bad) {
				pos += rec_size(len);
				n++;
			}
		}
		if (n > 0) {
			now = w_make((w_items(free) + n) & FREE_COUNT_MASK,
				     pos);
			if (atomic_compare_exchange_strong(&q->q_free, &free,
							   now)) {
				moved = true;
				free = now;
			}
			continue; /* look again, from the word as it is */
		}
		if (!bad)
			return moved; /* at a record not done, or at head */
		/* Words that cannot be: damage, unless the word moved (the
		 * walk may then have read reused bytes). */
		now = atomic_load_explicit(&q->q_free, memory_order_acquire);
		if (now == free) {
			ipc__ring_broken(r);
			return moved;
		}
		free = now;
	}
}

uint32_t ipc__ring_freeze_free(struct ring *r)
{
	return w_pos(atomic_fetch_or(&r->shm->q_free, FREE_FROZEN));
}

void ipc__ring_thaw_free(struct ring *r)
{
	atomic_fetch_and(&r->shm->q_free, ~FREE_FROZEN);
	ipc__ring_free_done(r);
}

/* Free what lock-free task_done calls left (JoinableQueue), and wake the
 * producers waiting for room if that made some. */
bool ipc__ring_free_done(struct ring *r)
{
	bool moved = ipc__ring_advance_free(r);

	/* The CAS that moved it orders it before the arm's read. */
	if (moved)
		ipc__ring_wake_room(r);
	return moved;
}

/* A word held frozen with q_cmutex free was left by a walker that died
 * (or a peer wrote it): only q_cmutex holders freeze, so a trylock tells.
 * Dead: the repair the lock runs thaws it; free, or damaged: thaw it here.
 * A live walker's own thaw frees (the lock waits for it 1 ms at most, as
 * IPC_NOWAIT does). Only producers short of room ask: a task_done that
 * finds the word frozen leaves its record to the thaw, and never waits. */
bool ipc__ring_free_stale(struct ring *r)
{
	static const struct ipc__deadline nowait = { .kind = IPC__DL_NOWAIT };
	struct ring_shm *q = r->shm;
	bool moved = ipc__ring_free_done(r);
	uint64_t before = atomic_load(&q->q_free);

	if (moved || !(before & FREE_FROZEN) ||
	    ipc__ring_lock_consumers(r, &nowait) != 0)
		return moved;
	if (atomic_load(&q->q_free) & FREE_FROZEN)
		ipc__ring_thaw_free(r); /* frees, and wakes */
	if (ipc__mutex_unlock(&q->q_cmutex) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	/* Moved by the thaw, or by the repair the lock ran. */
	return ipc__ring_free_done(r) ||
	       w_pos(atomic_load(&q->q_free)) != w_pos(before);
}

/* ---- Claiming the record at head ---------------------------------------
 *
 * A JoinableQueue get takes the record at head without a lock, in two
 * steps. First a compare-and-swap moves q_head past it, as a plain
 * Queue's get does: the packed item count and position make that word
 * unique for 2^32 gets (no ABA), and whoever wins that CAS owns the
 * record. Nothing read before it is trusted: a head read stale may point
 * into another record's payload, whatever bytes it finds there, and its
 * CAS fails. Then the winner marks the record TAKEN by a compare-and-swap
 * of its state from its READY tag (ring_ready_tag).
 *
 * Between the two steps the record lies behind head, still READY, and
 * nobody else takes it: advance_free stops there, and only a repair (a
 * release, the drop's repair, the settle below) looks for READY records
 * behind head, under q_cmutex, to requeue or drop one whose claimer is
 * dead. Before its first CAS the getter notes the head it claims
 * (head | 1) in a word of its own (its slot's s_claim; the drop's
 * q_intent_head), which its caller clears once the claim is recorded. A getter
 * killed between the two leaves the note, and the release of its slot requeues
 * the record (ipc__ring_release_slot) with a CAS from the same READY tag,
 * after a walk has found the position to be a record in [free, head). The
 * note may be that of a loser killed after its failed CAS, whose winner is
 * still on its way to mark: so it is left while a live slot notes the
 * same head (ring_claim_noted_elsewhere), and the dead slot is kept, note
 * and all, for the next reap to look at again. That live slot may as well
 * be a loser that has not cleared its note yet (a loser clears it at once,
 * before it gives way), so the next look comes: the record is then marked
 * by its winner, or requeued by that release once no live slot notes it.
 * A dropper (shutdown_immediate) killed between the two steps is repaired
 * the same way, except that its repair runs once: an undecided claim is
 * flagged in q_orphan_head and settled by the reaps (ring_settle_orphan).
 * Nothing is lost, nothing handed out twice.
 */

/* This thread's remembered tail for JoinableQueue claims (see struct
 * ring_tail_cache). */
static _Thread_local struct ring_tail_cache claim_tail IPC__TLS_FAST;

ssize_t ipc__ring_claim_head(struct ring *r, uint32_t claim, struct get_req *g,
			     void **dst, uint32_t *pos, _Atomic uint64_t *note,
			     const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_acquire);

	for (;;) {
		uint64_t tail;
		uint32_t avail, len, ready;
		struct rec_hdr *h = rec_at(r, w_pos(head));
		int rc;

		IPC__CRASHPOINT("queue.get.head_read");
		tail = ipc__ring_tail_for(r, &claim_tail, head);
		avail = w_pos(tail) - w_pos(head);

		if (avail == 0) {
			claim_tail.id = 0; /* read the tail afresh: empty? */
			tail = ipc__ring_tail_for(r, &claim_tail, head);
			avail = w_pos(tail) - w_pos(head);
			if (avail == 0)
				return -EAGAIN;
		}
		len = __atomic_load_n(&h->r_len, __ATOMIC_RELAXED);
		if (avail > r->cap || len > r->max_msg ||
		    rec_size(len) > avail || !ring_aligned(w_pos(head))) {
			rc = ipc__ring_head_recheck(r, &head, &claim_tail);
			if (rc < 0)
				return rc;
			continue;
		}
		if (g != NULL) {
			rc = ipc__ring_get_dest(g, len, dst);
			if (rc != 0) {
				uint64_t now = atomic_load(&q->q_head);
				if (now == head)
					return rc; /* the task stays queued */
				head = now;
				continue;
			}
		}
		atomic_store_explicit(note, head | 1, memory_order_relaxed);
		/* seq_cst: the note is stored before head moves. */
		if (!atomic_compare_exchange_strong(
			    &q->q_head, &head,
			    w_make(w_items(head) + 1,
				   w_pos(head) + rec_size(len)))) {
			if (g != NULL && g->alloc != NULL) {
				free(*g->alloc);
				*g->alloc = NULL;
			}
			IPC__CRASHPOINT("queue.get.lost");
			/* Lost: the note names nobody's claim now. Cleared
			 * before the nap, so that a release that finds the
			 * same note here does not wait for the nap (see
			 * ring_claim_noted_elsewhere). */
			atomic_store_explicit(note, 0, memory_order_relaxed);
			if (ipc__ring_give_way_long(dl))
				return ipc__deadline_error(dl);
			continue; /* head is the new one */
		}
		IPC__CRASHPOINT("queue.get.taken");
		ready = ring_ready_tag(w_items(head));
		if (atomic_compare_exchange_strong(&h->r_state, &ready,
						   claim)) {
			/* The note stays until the caller has recorded the
			 * claim (a getter: at once; the drop: its count). */
			*pos = w_pos(head);
			return (ssize_t)len;
		}
		atomic_store_explicit(note, 0, memory_order_release);
		if (g != NULL && g->alloc != NULL) {
			free(*g->alloc);
			*g->alloc = NULL;
		}
		/* The repair of a dead claimer's note took it first (see
		 * above): it is requeued (counted before that CAS) or dropped
		 * (the queue shut down first); get again. Any other state at
		 * a record head had just passed is damage. */
		if (!(ready == REC_REQUEUED &&
		      atomic_load(&q->q_requeued) > 0) &&
		    !(ready == REC_DROPPED && atomic_load(&q->q_closed)))
			return ipc__ring_broken(r);
		head = atomic_load_explicit(&q->q_head, memory_order_acquire);
	}
}

/* Is slot i's consumer alive (q_cmutex held)? A live consumer holds its
 * slot's s_reg. A dead one's mutex is made consistent and left unlocked:
 * the reap that comes to that slot then releases it as it would have. A
 * damaged mutex counts as alive: its note is then trusted, which can hold
 * a task up, never hand it out twice. */
static bool ring_slot_alive(struct ring *r, uint32_t i)
{
	pthread_mutex_t *m = &r->slots[i].s_reg;
	int rc = ipc__mutex_trylock_sane(m);

	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(m);
	if (rc != 0 && rc != EOWNERDEAD)
		return true; /* held (EBUSY, EDEADLK), or damaged */
	ipc__mutex_unlock(m);
	return false;
}

/* Does a live slot other than `slot` note the same claim (q_cmutex held)?
 * Then that one may be the winner, about to mark, and requeueing the
 * record could hand it out twice: a getter that takes it requeued, is done
 * with it and sees it freed and reused, while the winner's mark, when it
 * comes, finds those bytes. It may as well be a loser between its failed
 * CAS and the clearing of its note, or a claimer that noted the head and
 * has not tried its CAS yet (it will fail): so the caller must not
 * conclude either way, and looks again later (ipc__ring_release_slot
 * keeps its slot for the next reap). A dead slot's note is not counted:
 * with every noter dead nobody will mark, and the first release requeues
 * the record by its CAS from READY, once. */
static bool ring_claim_noted_elsewhere(struct ring *r, uint32_t slot,
				       uint64_t note)
{
	uint32_t hw = atomic_load(&r->shm->q_slots_hw);

	if (hw > r->nslots)
		hw = r->nslots;
	for (uint32_t i = 0; i < hw; i++)
		if (i != slot && atomic_load(&r->slots[i].s_claim) == note &&
		    ring_slot_alive(r, i))
			return true;
	return false;
}

/* Is the claim noted as note (head | 1, or 0) a READY record behind head
 * that its claimer may not have marked? Then its position is a record
 * boundary in [free, head) (walked: nothing else there is trusted), and
 * its state still the READY tag of the claimed item. q_cmutex held. */
static bool ring_claim_open(struct ring *r, uint64_t note, uint32_t *pos)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load(&q->q_head);
	struct find_arg f = { 0, w_pos(note & ~(uint64_t)1), false };

	if (!(note & 1) ||
	    w_items(head) - w_items(note) - 1 >= r->cap / REC_HDR)
		return false; /* none, or head not past it */
	if (!ipc__ring_walk(r, w_pos(atomic_load(&q->q_free)), w_pos(head),
			    find_start, &f)) {
		ipc__ring_broken(r);
		return false;
	}
	*pos = f.pos;
	return f.found && atomic_load(&rec_at(r, f.pos)->r_state) ==
				  ring_ready_tag(w_items(note));
}

/* ---- The drop of shutdown_immediate ---------------------------------- */

static void drop_requeued_one(struct ring *r, uint32_t pos, struct rec_hdr *h,
			      void *arg)
{
	(void)r;
	(void)pos;
	(void)arg;
	if (atomic_load_explicit(&h->r_state, memory_order_relaxed) ==
	    REC_REQUEUED) {
		atomic_store_explicit(&h->r_state, REC_DONE,
				      memory_order_relaxed);
		IPC__CRASHPOINT("queue.drop.marked");
	}
}

/* The drop's first part, from its intent record (INTENT_DROP, q_cmutex
 * held): mark every requeued record DONE, then store the count the intent
 * computed. Only holders of q_cmutex take requeued tasks, so nobody races
 * it. Idempotent: the repair runs it again. */
static void ring_drop_requeued(struct ring *r)
{
	struct ring_shm *q = r->shm;

	if (!ipc__ring_walk(r, w_pos(atomic_load(&q->q_free)),
			    w_pos(atomic_load(&q->q_head)), drop_requeued_one,
			    NULL)) {
		ipc__ring_broken(r);
		return;
	}
	atomic_store(&q->q_requeued, 0);
	atomic_store(&q->q_done, q->q_intent_done);
	q->q_intent = INTENT_NONE;
}

/* The drop's second part (q_cmutex held): claim every queued task at head
 * as DROPPED, as a get would (a getter that started before the shutdown
 * may still win one, which is then its task), each counted done under an
 * INTENT_DROP_HEAD record naming the count before it, with the claim's
 * note in q_intent_head: the repair finishes that claim and counts it
 * (ring_repair_consumer). The tail is final: the queue is shut down and no
 * put is in flight. */
static void ring_drop_queued(struct ring *r)
{
	struct ring_shm *q = r->shm;

	for (;;) {
		uint32_t pos;
		ssize_t n;
		atomic_store_explicit(&q->q_intent_head, 0,
				      memory_order_relaxed);
		q->q_intent_done = atomic_load(&q->q_done);
		atomic_signal_fence(memory_order_seq_cst);
		q->q_intent = INTENT_DROP_HEAD;
		atomic_signal_fence(memory_order_seq_cst);
		IPC__CRASHPOINT("queue.drop.intent");
		n = ipc__ring_claim_head(r, REC_DROPPED, NULL, NULL, &pos,
					 &q->q_intent_head, NULL);
		if (n >= 0) {
			IPC__CRASHPOINT("queue.drop.marked");
			atomic_store(&q->q_done, q->q_intent_done + 1);
		}
		atomic_signal_fence(memory_order_seq_cst);
		q->q_intent = INTENT_NONE;
		if (n < 0)
			return; /* empty (or broken) */
	}
}

void ipc__ring_drop_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t free, requeued = 0;
	uint64_t tail, head;

	/* Consumers already dead hold tasks that are the queue's: give them
	 * back first, so that they are dropped with the rest. */
	ipc__ring_reap_locked(r);
	free = ipc__ring_freeze_free(r);
	tail = atomic_load(&q->q_tail);
	head = atomic_load(&q->q_head);

	if (!ring_words_sane(r, tail, head, free) ||
	    !ipc__ring_walk(r, free, w_pos(head), count_requeued, &requeued)) {
		ipc__ring_broken(r);
		ipc__ring_thaw_free(r);
		return;
	}
	if (requeued > 0) {
		q->q_intent_done = atomic_load(&q->q_done) + requeued;
		q->q_intent = INTENT_DROP;
		IPC__CRASHPOINT("queue.drop.intent");
		ring_drop_requeued(r);
	}
	/* Still held: a record this drop claims must stay where the repair
	 * of a dropper that died will look for it. */
	ring_drop_queued(r);
	ipc__ring_thaw_free(r); /* and frees what was dropped */
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
	     q->q_intent != INTENT_DROP && q->q_intent != INTENT_DROP_HEAD))
		return false;
	/* A drop counts at most every task not yet done as done. */
	if (q->q_intent == INTENT_DROP)
		return q->q_intent_done - atomic_load(&q->q_done) <=
		       w_items(tail) - atomic_load(&q->q_done);
	/* One task at a time: the count is the one before it, or after. */
	if (q->q_intent == INTENT_DROP_HEAD &&
	    atomic_load(&q->q_done) - q->q_intent_done > 1)
		return false;
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
	uint32_t free, requeued = 0;
	uint64_t head, tail;

	if (!r->joinable) {
		free = w_pos(atomic_load(&q->q_head));
		return ring_words_sane(r, atomic_load(&q->q_tail),
				       atomic_load(&q->q_head), free)
			       ? 0
			       : -EPROTO;
	}
	/* Held for every walk below, and until the end: a dead holder may
	 * have left it held too (see "Walks and frees"). */
	free = ipc__ring_freeze_free(r);
	head = atomic_load(&q->q_head);
	tail = atomic_load(&q->q_tail);
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
	if (q->q_intent == INTENT_DROP_HEAD) {
		/* The claim noted: still READY behind head, finish it; then
		 * a DROPPED record there is this step's (earlier steps'
		 * lie before it), counted. Then the drop goes on. */
		uint64_t note = atomic_load(&q->q_intent_head);
		uint32_t pos = 0;
		uint32_t ready = ring_ready_tag(w_items(note));
		struct find_arg f = { 0, w_pos(note & ~(uint64_t)1), false };
		/* A live getter that notes the same head may be its winner,
		 * or a loser (before its CAS, or between its failed CAS and
		 * the clearing of its note): undecided, so q_orphan_head
		 * flags it for the reaps to settle (ring_settle_orphan), as
		 * a slot's release keeps its slot. */
		if (ring_claim_open(r, note, &pos)) {
			if (!ring_claim_noted_elsewhere(r, UINT32_MAX, note))
				atomic_compare_exchange_strong(
					&rec_at(r, pos)->r_state, &ready,
					REC_DROPPED);
			else
				atomic_store(&q->q_orphan_head, note);
		}
		if (note != 0 &&
		    !ipc__ring_walk(r, free, w_pos(atomic_load(&q->q_head)),
				    find_start, &f)) {
			ipc__ring_broken(r);
			return -EPROTO;
		}
		if (note != 0 && f.found &&
		    atomic_load(&rec_at(r, f.pos)->r_state) == REC_DROPPED)
			atomic_store(&q->q_done, q->q_intent_done + 1);
		q->q_intent = INTENT_NONE;
		ring_drop_queued(r);
	}
	if (q->q_intent == INTENT_DROP) {
		ring_drop_requeued(r);
		ring_drop_queued(r);
	}
	head = atomic_load(&q->q_head);
	if (!ipc__ring_walk(r, free, w_pos(head), count_requeued, &requeued)) {
		ipc__ring_broken(r);
		return -EPROTO;
	}
	atomic_store(&q->q_requeued, requeued);
	ipc__ring_thaw_free(r);
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
 * intent record in the slot's own line (see "Get and task_done without the
 * lock" in ring_joinable.c). A record still TAKEN by the slot at the intent's
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
	/* The count before it, or (counted) after it: else damage. */
	if (atomic_load(&s->s_done) - atomic_load(&s->s_intent_done) > 1) {
		ipc__ring_broken(r);
		return false;
	}
	f.pos = atomic_load(&s->s_intent_pos);
	if (!ipc__ring_walk(r, w_pos(atomic_load(&q->q_free)),
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
 * to requeue. A claim it noted that a live slot notes too is left open,
 * and the slot with it (still SLOT_ACTIVE, its note kept, its s_reg left
 * unlocked by the caller): the next reap releases it again and decides
 * then. */
uint32_t ipc__ring_release_slot(struct ring *r, uint32_t slot)
{
	struct ring_shm *q = r->shm;
	struct ring_slot *s = &r->slots[slot];
	struct requeue_arg a = { REC_TAKEN | slot, 0 };
	uint64_t note = atomic_load(&s->s_claim);
	uint32_t ready = ring_ready_tag(w_items(note)), pos = 0;
	bool counted, open, keep;

	/* The walks below read from the free position: hold it. */
	ipc__ring_freeze_free(r);
	/* A claim it made and may not have marked (see "Claiming the record
	 * at head"): queue it again, unless its winner may mark it. */
	open = ring_claim_open(r, note, &pos);
	keep = open && ring_claim_noted_elsewhere(r, slot, note);
	if (open && !keep) {
		/* Counted first: a winner whose CAS finds REQUEUED checks the
		 * count (see ipc__ring_claim_head). */
		atomic_fetch_add(&q->q_requeued, 1);
		if (atomic_compare_exchange_strong(&rec_at(r, pos)->r_state,
						   &ready, REC_REQUEUED))
			a.count++;
		else
			atomic_fetch_sub(&q->q_requeued, 1);
	}
	if (!keep)
		atomic_store(&s->s_claim, 0);
	else if (atomic_load(&q->q_closed) & CLOSED_DROP)
		/* Dropped, not requeued, once no live slot notes it: the
		 * settle of a later reap decides (ring_settle_orphan). */
		atomic_store(&q->q_orphan_head, note);
	counted = ring_slot_roll_forward(r, slot);

	if (!ipc__ring_walk(r, w_pos(atomic_load(&q->q_free)),
			    w_pos(atomic_load(&q->q_head)), requeue_one, &a))
		ipc__ring_broken(r);
	ipc__ring_thaw_free(r);
	if (!keep)
		atomic_store(&r->slots[slot].s_state, SLOT_FREE);
	/* The dead consumer woke no joiner for the task rolled forward. */
	if (counted && ring_unfinished(r) == 0)
		ipc__ring_wake(&q->q_join_seq, INT_MAX);
	return a.count;
}

/* Settling undecided claims (q_cmutex held, q_orphan_head set). Several
 * dead droppers, each beside a live loser, can leave one each before any
 * reap, so the word is only a flag and the settle finds them itself: on a
 * queue shut down by shutdown_immediate, a READY record behind head is a
 * claim in progress, and with no live slot noting it its claimer is dead
 * (a live dropper holds q_cmutex, which we hold). Each is dropped and
 * counted under the drop's intent record, which the repair rolls forward
 * if the settler dies in between. A dead getter's claim found so (its
 * getter died after the drop, its slot not released yet) is dropped too,
 * where its release would have queued it again: counted done once either
 * way, and the settle does not wait for the release to tell them. The flag
 * stays while a live slot still notes one (its winner marks it, or its
 * loser moves on and the next reap drops it). On a queue not shut down
 * so, the flag is damage and is cleared. */
struct orphan_arg {
	uint32_t base, idx; /* item number of [free, head)'s first record */
	bool found, undecided;
	uint32_t pos;
	uint64_t note;
};

static void count_recs(struct ring *r, uint32_t pos, struct rec_hdr *h,
		       void *arg)
{
	(void)r;
	(void)pos;
	(void)h;
	++*(uint32_t *)arg;
}

static void find_orphan(struct ring *r, uint32_t pos, struct rec_hdr *h,
			void *arg)
{
	struct orphan_arg *a = arg;
	uint32_t items = a->base + a->idx++;
	uint64_t note = w_make(items, pos) | 1;

	if (a->found || atomic_load(&h->r_state) != ring_ready_tag(items))
		return;
	if (ring_claim_noted_elsewhere(r, UINT32_MAX, note)) {
		a->undecided = true;
		return;
	}
	a->found = true;
	a->pos = pos;
	a->note = note;
}

static void ring_settle_orphan(struct ring *r)
{
	struct ring_shm *q = r->shm;
	bool undecided = false;

	if (!(atomic_load(&q->q_closed) & CLOSED_DROP)) {
		atomic_store(&q->q_orphan_head, 0);
		return;
	}
	ipc__ring_freeze_free(r);
	for (;;) {
		uint32_t free = w_pos(atomic_load(&q->q_free)), n = 0;
		uint64_t head = atomic_load(&q->q_head);
		struct orphan_arg a = { 0, 0, false, false, 0, 0 };
		uint32_t ready;

		if (!ipc__ring_walk(r, free, w_pos(head), count_recs, &n)) {
			ipc__ring_broken(r);
			break;
		}
		a.base = w_items(head) - n;
		if (!ipc__ring_walk(r, free, w_pos(head), find_orphan, &a)) {
			ipc__ring_broken(r);
			break;
		}
		undecided = a.undecided;
		if (!a.found)
			break;
		ready = ring_ready_tag(w_items(a.note));
		atomic_store(&q->q_intent_head, a.note);
		q->q_intent_done = atomic_load(&q->q_done);
		atomic_signal_fence(memory_order_seq_cst);
		q->q_intent = INTENT_DROP_HEAD;
		atomic_signal_fence(memory_order_seq_cst);
		IPC__CRASHPOINT("queue.settle.intent");
		if (atomic_compare_exchange_strong(&rec_at(r, a.pos)->r_state,
						   &ready, REC_DROPPED))
			atomic_store(&q->q_done, q->q_intent_done + 1);
		IPC__CRASHPOINT("queue.settle.counted");
		atomic_signal_fence(memory_order_seq_cst);
		q->q_intent = INTENT_NONE;
	}
	if (!undecided)
		atomic_store(&q->q_orphan_head, 0);
	ipc__ring_thaw_free(r);
	if (ring_unfinished(r) == 0)
		ipc__ring_wake(&q->q_join_seq, INT_MAX);
}

/* Find consumers that died and requeue their tasks (q_cmutex held). A
 * registered consumer holds its slot's robust mutex: EBUSY means alive,
 * EOWNERDEAD means the kernel saw it die. A dead dropper's undecided
 * claim is settled first. */
void ipc__ring_reap_locked(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t requeued = 0;

	if (atomic_load(&q->q_orphan_head) != 0)
		ring_settle_orphan(r);

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
