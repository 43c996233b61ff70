/* SPDX-License-Identifier: MIT */
/*
 * ring_bias.c — the queue's biased producer: puts without an atomic
 * read-modify-write or a system call while one producer has the queue to
 * itself, revoked by a handshake (or, if the owner is idle, membarrier(2))
 * when a second one appears. See the essay below and docs/design.md, "The
 * biased (fast) producer".
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "libipc/queue/ring.h"

/*
 * A lock costs a producer more than its two atomic instructions: each one
 * waits until the previous message's stores have crossed to the consumer's
 * core. So the first producer of a queue becomes its *owner* and puts
 * without any atomic read-modify-write:
 *
 *   owner:    busy = 1; compiler barrier; note its CPU (below);
 *             if (revoke) -> give up its b_reg,
 *             slow path; write the record; publish q_tail; busy = 0
 *             (release)
 *   revoker:  (another producer, holding q_pmutex) revoke = 1 (a full
 *             barrier); then either the handshake: b_reg becomes
 *             free (the owner saw revoke and gave it up) or its owner
 *             died; or, if the owner does not put again soon, the
 *             barrier: membarrier (MEMBARRIER_CMD_GLOBAL: every thread
 *             of the system has run a full barrier or a context switch),
 *             then wait until busy == 0 or the owner is dead, or the
 *             revoker's deadline passes; state = OFF
 *
 * The handshake is a release (the owner's unlock, after its busy = 0) read
 * by an acquire (our lock): all that put's stores are visible, and it will
 * not put fast again. It answers within one put of a running owner, and
 * costs no system call. An owner that is alive but not putting never
 * answers; the barrier makes its compiler barrier a real one exactly when
 * a revoker needs it (Dekker's pattern, made asymmetric): either the owner
 * saw revoke and takes the locked path, or the revoker sees busy and waits
 * for that put to finish. The barrier needs no registration by the owner,
 * so the owner never makes a system call, but it is slow (an RCU grace
 * period: 10 to 30 ms here): it runs once per queue at most, when a second
 * producer appears beside an idle first one, and it runs even when the
 * revoker's deadline passed during the handshake, or a caller that never
 * waits long could never revoke an idle owner. From then on every producer
 * takes q_pmutex, unless one takes the fast path back (ipc__ring_bias_take
 * with expedite): an owner that is one of several producers expects to be
 * revoked often, so it registers first (MEMBARRIER_CMD_REGISTER_GLOBAL_
 * EXPEDITED, one call per process; b_exp), and its revoker runs
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED at once, which costs microseconds. A
 * queue's first producer never registers. The owner holds its
 * registration's robust mutex (b_reg) while it owns, so a dead owner is
 * seen by the kernel (EOWNERDEAD) and the revoker does not wait for it;
 * whatever a dead owner wrote past q_tail is unpublished, exactly as for a
 * locked put.
 *
 * Revoking on the owner's CPU. When producers outnumber CPUs they mostly
 * take turns on one: the owner is preempted, and the next producer to run
 * finds it owning. The owner's last put began on a CPU it recorded
 * (b_cpu, below); a revoker that runs on that very CPU knows the owner is
 * not running now, and a thread that is not running has no store in
 * flight: the context switch drained them. So after posting its request
 * (a full barrier) it needs neither the handshake nor a barrier: busy
 * tells whether a put is in progress, and every later put sees the
 * request. A later put on another CPU first exchanges b_cpu (a full
 * barrier), after our read of b_cpu, so it too sees the request: it is
 * Dekker's pattern with a fence on both sides. An owner preempted mid-put
 * is waited for asleep (spinning would keep it off this CPU).
 *
 * That rests on where the owner reads its CPU: after its store of busy
 * and before its look at the request. If no context switch falls between
 * that store and that look, both ran on the CPU it read, and a revoker
 * that reads that CPU as its own ran there before the put (its request,
 * visible before it read its CPU, is seen by the look) or after the owner
 * was switched out (which drained the store of busy). If a switch falls
 * between them, it drained the store of busy before the look, so a
 * revoker that read busy as 0 posted its request before the look too.
 * Read before the store of busy, the CPU may be stale by the store: an
 * owner moved from X to Y between the two stores busy and looks on Y,
 * fenced by nothing, while b_cpu still says X, and a revoker on X skips
 * every barrier (Dekker's pattern with no fence on either side: both miss
 * each other, and the two write one record).
 *
 * Registrations. A revoked owner gives its registration up only when it
 * runs again, and a preempted one may not run for many milliseconds: with
 * one registration, the producer running meanwhile could not take the
 * fast path back. So there are RING_BIAS_SLOTS, each a cache line of its
 * own (struct ring_bias); q_bias_slot says which one the owner uses, and
 * a new owner takes any free one (or one it still holds itself: revoked,
 * and not noticed yet). With all of them held by revoked owners not run
 * since, the queue stays on the locked path until one answers.
 *
 * Without membarrier(2) support, no producer is ever biased. The queue's
 * creator probes it (RING_F_BIAS), so producers and consumers never make
 * a membarrier call of their own unless they revoke. Should the barrier
 * fail after all (a damaged flag), the revoker waits for the handshake
 * alone.
 *
 * Waking without a fence. After publishing, the owner reads q_get_seq to
 * see whether a getter armed it (ring_wait.c), and x86 may perform that
 * read before the publishing store is visible: then a getter that armed
 * meanwhile and read the old tail sleeps beside a message nobody wakes it
 * for (Dekker's pattern, against the sleeper's arm). A fence per put would
 * close that, but a locked instruction on every put makes the owner wait
 * for each record's stores to cross to the consumer, which costs a 64-byte
 * stream most of its speed. The window is the owner's store buffer: a
 * store waits there only until its cache line arrives (well under a
 * microsecond), and a context switch drains it. So the getter, after its
 * arm and before its final look at the tail, lets any such store arrive,
 * but only when the owner may be running right now on another CPU:
 *
 *   owner:   busy = 1; cpu = my CPU; if (b_cpu != cpu) exchange
 *            b_cpu, cpu (a full barrier: rare, only when it moved);
 *            put; read q_get_seq, wake if armed;
 *            if (my CPU != cpu) fence, read q_get_seq again, wake if armed
 *   getter:  arm q_get_seq; if (b_cpu != my CPU) spin RING_DRAIN_NS
 *            (10 us, re-reading the tail: a message ends it at once);
 *            read the tail
 *
 * Why no wake is lost. Take a put whose read of q_get_seq missed the arm,
 * so it was performed before the arm. If it ran on the getter's CPU X,
 * the owner was switched out of X before the getter ran there, and a
 * context switch drains the store buffer: its tail is visible to the
 * getter's read. If it ran on another CPU Y and began there, it exchanged
 * b_cpu to Y before that read, so a getter that read X afterwards
 * read before the exchange, which precedes the put's read of q_get_seq —
 * after the arm, a contradiction; so the getter read Y and waited out the
 * drain, after which the put's tail store (issued before the arm) has
 * long been visible. If it moved during the put, its second, fenced read
 * comes after its store is visible: before the getter's read of the tail
 * (which sees the message) or after the arm (which it sees). That wait is
 * the one place a timing bound stands in for a barrier, and only a
 * wake-up rides on it: should a store ever take longer, the sleeper finds
 * the message at its next re-check (IPC__RECHECK_MS; a watcher of such a
 * queue is asked to re-check as often), never loses it. On one CPU, or
 * with the owner asleep or descheduled, no wait runs at all; no system
 * call is made for it anywhere. A damaged b_cpu can likewise only
 * cost a wake-up until the next re-check, never a message.
 */

/* A registration this thread took through this handle and still holds
 * (revoked, and not noticed yet: we are not mid-put, since we are here),
 * or NULL. */
static struct ring_bias *ring_bias_held(struct ring *r, int32_t me)
{
	for (uint32_t s = 0; s < RING_BIAS_SLOTS; s++)
		if (atomic_load_explicit(&r->bias_holder[s],
					 memory_order_relaxed) == me &&
		    ipc__mutex_owner(&r->shm->q_bias[s].b_reg) == me)
			return &r->shm->q_bias[s];
	return NULL;
}

/* Become the owner (q_pmutex held, state NONE). */
void ipc__ring_bias_take(struct ring *r, bool expedite)
{
	struct ring_shm *q = r->shm;
	int32_t me = ipc__tid_self();
	struct ring_bias *b;
	uint32_t s;
	int rc;

	if ((q->q_flags & RING_F_BIAS) == 0) { /* no membarrier(2) */
		atomic_store(&q->q_bias_state, BIAS_OFF);
		return;
	}
	if (atomic_load_explicit(&r->bias_gen, memory_order_relaxed) !=
	    ipc__fork_gen()) /* what the handle remembers is the parent's */
		for (s = 0; s < RING_BIAS_SLOTS; s++)
			atomic_store_explicit(&r->bias_holder[s], 0,
					      memory_order_relaxed);
	b = ring_bias_held(r, me);
	for (uint32_t i = 0; b == NULL && i < RING_BIAS_SLOTS; i++) {
		s = (atomic_load(&q->q_bias_slot) + 1 + i) % RING_BIAS_SLOTS;
		rc = ipc__mutex_trylock_sane(&q->q_bias[s].b_reg);
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&q->q_bias[s].b_reg);
		if (rc == 0 || rc == EOWNERDEAD)
			b = &q->q_bias[s];
	}
	if (b == NULL) /* every one held by a revoked owner not run since */
		return;
	s = (uint32_t)(b - q->q_bias);
	atomic_store(&b->b_exp, expedite && ipc__membarrier_register() == 0);
	atomic_store(&b->b_revoke, REVOKE_NONE);
	atomic_store(&b->b_busy, 0);
	atomic_store(&b->b_cpu, -1); /* the first put sets it */
	r->bias_head = atomic_load(&q->q_head);
	r->bias_free = w_pos(atomic_load(&q->q_free));
	atomic_store_explicit(&r->bias_gen, ipc__fork_gen(),
			      memory_order_relaxed);
	atomic_store_explicit(&r->bias_thread, ipc__thread_self(),
			      memory_order_relaxed);
	atomic_store_explicit(&r->bias_holder[s], me, memory_order_relaxed);
	atomic_store_explicit(&r->bias_key, s + 1, memory_order_relaxed);
	atomic_store(&q->q_bias_slot, s);
	atomic_store(&q->q_bias_state, BIAS_OWNED);
}

/* Has the owner let go of registration b? True when its b_reg is free
 * (the owner gave it up: it saw revoke, and its unlock publishes that its
 * last put is finished) or its owner died (*dead; the registration is
 * freed), or when the calling thread holds it itself (another handle of
 * this thread owns: not mid-put, since we are here) or it is damaged. */
static bool ring_bias_answered(struct ring_bias *b, bool *dead)
{
	int rc = ipc__mutex_trylock_sane(&b->b_reg);

	if (rc == EBUSY)
		return false;
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&b->b_reg);
	if (rc == 0 || rc == EOWNERDEAD)
		ipc__mutex_unlock(&b->b_reg);
	*dead = rc == EOWNERDEAD || rc == ENOTRECOVERABLE;
	return true;
}

/* Nap before looking again: a short spin first (an owner running
 * elsewhere answers within microseconds), then sleeps growing from 20 us
 * to 1 ms, since an owner that cannot run (stopped, preempted, paging) may
 * take any time. The callers look at the registration between every two
 * sleeps, so that an owner killed meanwhile is seen within one. */
static void ring_bias_nap(unsigned spins, long *nap_ns)
{
	if (spins < REVOKE_SPINS) {
		ipc__cpu_relax();
		return;
	}
	nanosleep(&(struct timespec){ 0, *nap_ns }, NULL);
	if (*nap_ns < 1000000)
		*nap_ns *= 2;
}

/* The handshake: true once the owner answered (or died: *dead); false when
 * it did not by dl, or (brief) within about RING_HANDSHAKE_MS. */
static bool ring_bias_handshake(struct ring_bias *b, bool *dead, bool brief,
				const struct ipc__deadline *dl)
{
	struct ipc__deadline limit = *dl;
	long nap_ns = 20000;

	if (brief)
		ipc__deadline_capped(&limit, dl, RING_HANDSHAKE_MS);
	for (unsigned spins = 0;; spins++) {
		if (((spins & 63) == 0 || spins >= REVOKE_SPINS) &&
		    ring_bias_answered(b, dead))
			return true;
		if (spins >= REVOKE_SPINS && ipc__deadline_passed(&limit))
			return false;
		ring_bias_nap(spins, &nap_ns);
	}
}

/* After the barrier: wait until the owner's put in progress, if any,
 * finished (or the owner answered or died: *dead); false if dl passed
 * first. here: the owner cannot be running (see "Revoking on the owner's
 * CPU"), so spinning would only keep it off this CPU: sleep at once. */
static bool ring_bias_wait_idle(struct ring_bias *b, bool *dead, bool here,
				const struct ipc__deadline *dl)
{
	long nap_ns = 20000;

	for (unsigned spins = here ? REVOKE_SPINS : 0;
	     atomic_load_explicit(&b->b_busy, memory_order_acquire); spins++) {
		if (((spins & 1023) == 0 || spins >= REVOKE_SPINS) &&
		    ring_bias_answered(b, dead))
			return true;
		if (spins >= REVOKE_SPINS && ipc__deadline_passed(dl))
			return false;
		ring_bias_nap(spins, &nap_ns);
	}
	return true;
}

/* Take the fast path away from the owner (q_pmutex held, state OWNED):
 * 0, or the deadline's error if the owner stays mid-put past dl. Then the
 * request stays posted (b_revoke): the owner's next put sees it and
 * takes the locked path, and the next revoker finds it answered. */
int ipc__ring_bias_revoke(struct ring *r, const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	uint32_t slot = atomic_load(&q->q_bias_slot);
	struct ring_bias *b;
	bool dead = false, idle;
	int cpu;

	if (slot >= RING_BIAS_SLOTS) /* only we write it, under q_pmutex */
		return ipc__ring_broken(r);
	b = &q->q_bias[slot];
	/* REVOKE_FENCED: an earlier revoker's barrier ran after the request
	 * was posted, so a put of the owner's either saw the request or is
	 * visible as busy, and no second barrier is needed (a stopped owner
	 * must not cost every later put one). */
	if (atomic_load(&b->b_revoke) == REVOKE_FENCED) {
		idle = ring_bias_wait_idle(b, &dead, false, dl);
	} else {
		atomic_store(&b->b_revoke, REVOKE_POSTED); /* a full barrier */
		cpu = ipc__cpu_now();
		if (cpu >= 0 &&
		    atomic_load_explicit(&b->b_cpu, memory_order_relaxed) ==
			    cpu) {
			/* Its last put began on the CPU we run on: it is not
			 * running, and no barrier is needed. */
			atomic_store(&b->b_revoke, REVOKE_FENCED);
			idle = ring_bias_wait_idle(b, &dead, true, dl);
		} else if (atomic_load(&b->b_exp) &&
			   ipc__membarrier_expedited()) {
			/* A registered owner: the fast barrier, at once. */
			atomic_store(&b->b_revoke, REVOKE_FENCED);
			idle = ring_bias_wait_idle(b, &dead, false, dl);
		} else if (ring_bias_handshake(b, &dead, true, dl)) {
			idle = true;
		} else if (ipc__membarrier()) {
			/* Alive and not putting, or stopped mid-put: the
			 * barrier tells which. */
			atomic_store(&b->b_revoke, REVOKE_FENCED);
			idle = ring_bias_wait_idle(b, &dead, false, dl);
		} else { /* no barrier after all: the handshake alone */
			idle = ring_bias_handshake(b, &dead, false, dl);
		}
	}
	if (!idle)
		return ipc__deadline_error(dl);
	if (!dead) /* idle, but perhaps dead since */
		ring_bias_answered(b, &dead);
	IPC__CRASHPOINT("queue.bias.revoked");
	/* The owner moved q_tail without these caches following: refresh
	 * them, so that they are within a lap of the tail again. */
	q->q_pc_head = atomic_load(&q->q_head);
	q->q_pc_free = w_pos(atomic_load(&q->q_free));
	/* A dead owner leaves the queue free for a new one; a live one was
	 * contended, and the queue stays on the locked path. */
	atomic_store(&q->q_bias_state, dead ? BIAS_NONE : BIAS_OFF);
	return 0;
}

/* See "Waking without a fence" above. */
static inline void ring_bias_wake(struct ring *r, int cpu)
{
	struct ring_shm *q = r->shm;

	ipc__ring_wake_unlocked(&q->q_get_seq, 1); /* no fence: see above */
	if (cpu < 0 || ipc__cpu_now() != cpu)
		ipc__ring_wake(&q->q_get_seq, 1); /* moved: fenced */
}

/* The owner's put found b_revoke set: give the registration up now and
 * let the caller take the locked path. A robust mutex left held stays on
 * this thread's robust list, and once the segment is unmapped the
 * thread's next robust lock writes into the unmapped page. The handle
 * forgets the ownership only if it is still this one (another thread of
 * ours may own through a newer registration). */
static IPC__COLD int ring_bias_revoked(struct ring *r, struct ring_bias *b)
{
	uint32_t key = (uint32_t)(b - r->shm->q_bias) + 1;

	atomic_store_explicit(&b->b_busy, 0, memory_order_release);
	atomic_store_explicit(&r->bias_holder[key - 1], 0,
			      memory_order_relaxed);
	atomic_compare_exchange_strong_explicit(&r->bias_key, &key, 0,
						memory_order_relaxed,
						memory_order_relaxed);
	ipc__mutex_unlock(&b->b_reg);
	return -ESTALE;
}

void ipc__ring_bias_drop_stale(struct ring *r)
{
	struct ring_shm *q = r->shm;
	struct ring_bias *b = ipc__ring_bias_mine(r);

	if (b == NULL ||
	    (atomic_load(&q->q_bias_state) == BIAS_OWNED &&
	     b == &q->q_bias[atomic_load(&q->q_bias_slot) % RING_BIAS_SLOTS]))
		return; /* none, or the current one */
	(void)ring_bias_revoked(r, b);
}

/* The owner's earlier q_head and q_free say no room for need bytes at
 * tail: read them afresh. 0 (room now), -EAGAIN, or -ENOTRECOVERABLE. */
static IPC__COLD int ring_bias_refresh(struct ring *r, uint64_t tail,
				       uint32_t need)
{
	struct ring_shm *q = r->shm;

	r->bias_free =
		w_pos(atomic_load_explicit(&q->q_free, memory_order_acquire));
	r->bias_head = atomic_load_explicit(&q->q_head, memory_order_acquire);
	/* The owner alone moves the tail while it owns. */
	if (!ring_words_sane(r, tail, r->bias_head, r->bias_free))
		return ipc__ring_broken(r);
	if (!ipc__ring_has_room(r, tail, r->bias_head, r->bias_free, need))
		return -EAGAIN;
	return 0;
}

/* The owner's put, and on success the wake of a sleeping getter: 0,
 * -EAGAIN (no room), -ECLOSED, or -ESTALE (revoked: use the locked
 * path). The rare cases are out of line, so that the common one stays
 * short. */
int ipc__ring_put_fast(struct ring *r, struct ring_bias *b, const void *msg,
		       uint32_t len)
{
	struct ring_shm *q = r->shm;
	uint32_t need = rec_size(len), closed;
	uint64_t tail;
	int rc = 0, cpu;

	atomic_store_explicit(&b->b_busy, 1, memory_order_relaxed);
	/* The CPU is read between the store of busy and the look at the
	 * request, never before the store: see "Revoking on the owner's
	 * CPU" above. */
	atomic_signal_fence(memory_order_seq_cst);
	cpu = ipc__cpu_now();
	if (atomic_load_explicit(&b->b_cpu, memory_order_relaxed) != cpu)
		atomic_exchange(&b->b_cpu, cpu);   /* a full barrier */
	atomic_signal_fence(memory_order_seq_cst); /* see the essay above */
	if (atomic_load_explicit(&b->b_revoke, memory_order_relaxed))
		return ring_bias_revoked(r, b);
	tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	closed = atomic_load_explicit(&q->q_closed, memory_order_relaxed);
	if (closed)
		rc = ring_closed_error(closed);
	else if (!ipc__ring_has_room(r, tail, r->bias_head, r->bias_free, need))
		rc = ring_bias_refresh(r, tail, need);
	if (rc == 0) {
		ipc__ring_put_record(r, tail, msg, len);
		IPC__CRASHPOINT("queue.put.fast_written");
		atomic_store_explicit(
			&q->q_tail,
			w_make(w_items(tail) + 1, w_pos(tail) + need),
			memory_order_release);
	}
	atomic_store_explicit(&b->b_busy, 0, memory_order_release);
	if (rc == 0) {
		IPC__CRASHPOINT("queue.put.published");
		ring_bias_wake(r, cpu);
	}
	return rc;
}

/* The handle closes: give up every registration the calling thread took
 * through it, so that the next producer may take one. Another live thread
 * of ours may hold one taken through this handle (the current one, or a
 * revoked one it has not noticed): its robust list runs through that
 * mutex, so the segment must stay mapped (true). Its state is left as it
 * is, for the next producer to revoke (with the barrier, since it will not
 * answer): a thread id in bias_holder names the thread that took it only
 * while that thread lives, and one of ours that exited holding it left it
 * free to a later thread with the same id (the kernel reuses ids), which
 * may own it now through another handle; turning the fast path off
 * without revoking it would leave that owner putting fast beside the
 * locked path, both writing one record. Registrations are given up even
 * when q_pmutex is damaged or held by a stopped peer: a robust mutex left
 * held in pages about to be unmapped is worse than a state a revoker then
 * finds answered. */
bool ipc__ring_bias_release(struct ring *r)
{
	struct ring_shm *q = r->shm;
	int32_t me = ipc__tid_self(), h;
	bool other = false, mine = false, locked;
	uint32_t cur;

	if (atomic_load_explicit(&r->bias_gen, memory_order_relaxed) !=
	    ipc__fork_gen())
		return false; /* whatever it remembers is the parent's */
	for (uint32_t s = 0; s < RING_BIAS_SLOTS; s++) {
		h = atomic_load_explicit(&r->bias_holder[s],
					 memory_order_relaxed);
		if (h == 0 || ipc__mutex_owner(&q->q_bias[s].b_reg) != h)
			continue; /* given up, or its thread exited */
		if (h == me)
			mine = true;
		else
			other = true; /* left to the next revoker: see above */
	}
	if (!mine)
		return other;
	/* q_pmutex only to mark the queue owner-free (BIAS_NONE), so that the
	 * next producer takes the fast path without revoking: a courtesy,
	 * not a need (a revoker finds a given-up registration answered). So
	 * the lock is waited for as by IPC_NOWAIT, briefly: a peer stopped
	 * holding it must not stall a close. */
	locked =
		ipc__ring_lock_producers(
			r, &(struct ipc__deadline){ .kind = IPC__DL_NOWAIT }) ==
		0;
	cur = atomic_load(&q->q_bias_slot);
	for (uint32_t s = 0; s < RING_BIAS_SLOTS; s++) {
		if (atomic_load_explicit(&r->bias_holder[s],
					 memory_order_relaxed) != me ||
		    ipc__mutex_owner(&q->q_bias[s].b_reg) != me)
			continue;
		if (locked && s == cur &&
		    atomic_load(&q->q_bias_state) == BIAS_OWNED)
			atomic_store(&q->q_bias_state, BIAS_NONE);
		atomic_store_explicit(&r->bias_holder[s], 0,
				      memory_order_relaxed);
		ipc__mutex_unlock(&q->q_bias[s].b_reg);
	}
	atomic_store_explicit(&r->bias_key, 0, memory_order_relaxed);
	if (locked)
		ipc__mutex_unlock(&q->q_pmutex);
	return other;
}
