/* SPDX-License-Identifier: MIT */
/*
 * ring_bias.c — the queue's biased producer: puts without an atomic
 * read-modify-write while one producer has the queue to itself, revoked
 * with membarrier(2) when a second one appears. See the essay below and
 * docs/design.md, "The biased (fast) producer".
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
 *   owner:    busy = 1; compiler barrier; if (revoke) -> slow path;
 *             write the record; publish q_tail; busy = 0 (release)
 *   revoker:  (another producer, holding q_pmutex) revoke = 1;
 *             membarrier (a full barrier on the owner's CPU);
 *             wait until busy == 0 or the owner is dead, or the
 *             revoker's deadline passes; state = OFF
 *
 * The membarrier makes the owner's compiler barrier a real one exactly when
 * a revoker needs it (Dekker's pattern, made asymmetric): either the owner
 * sees revoke and takes the locked path, or the revoker sees busy and waits
 * for that put to finish. From then on every producer takes q_pmutex. The
 * owner holds q_bias_reg while it owns, so a dead owner is seen by the
 * kernel (EOWNERDEAD) and the revoker does not wait for it; whatever a dead
 * owner wrote past q_tail is unpublished, exactly as for a locked put.
 *
 * Without membarrier(2) support, no producer is ever biased.
 *
 * Waking without a fence. After publishing, the owner reads q_get_seq to
 * see whether a getter armed it (ring_wait.c), and x86 may perform that
 * read before the publishing store is visible: then a getter that armed
 * meanwhile and read the old tail sleeps beside a message nobody wakes it
 * for (Dekker's pattern, against the sleeper's arm). A fence per put would
 * close that, but a locked instruction on every put makes the owner wait
 * for each record's stores to cross to the consumer, which costs a 64-byte
 * stream most of its speed. A membarrier before every consumer sleep closes
 * it too, but is a system call per sleep. Instead, the getter runs the
 * membarrier only when the owner may be running right now:
 *
 *   owner:   cpu = my CPU; if (q_bias_cpu != cpu) exchange q_bias_cpu, cpu
 *            (a full barrier: rare, only when it moved);
 *            put; read q_get_seq, wake if armed;
 *            if (my CPU != cpu) fence, read q_get_seq again, wake if armed
 *   getter:  arm q_get_seq; if (q_bias_cpu != my CPU) membarrier;
 *            read the tail
 *
 * Why no wake is lost. Take a put whose read of q_get_seq missed the arm,
 * so it was performed before the arm. If it ran on the getter's CPU X,
 * the owner was switched out of X before the getter ran there, and a
 * context switch drains the store buffer: its tail is visible to the
 * getter's read. If it ran on another CPU Y and began there, it exchanged
 * q_bias_cpu to Y before that read, so a getter that read X afterwards
 * read before the exchange, which precedes the put's read of q_get_seq —
 * after the arm, a contradiction. If it moved during the put, its second,
 * fenced read comes after its store is visible: before the getter's read
 * of the tail (which sees the message) or after the arm (which it sees).
 * On one CPU, or with the owner asleep or descheduled, no membarrier runs
 * at all; a getter and a running owner on different CPUs pay one per
 * sleep, as before. A damaged q_bias_cpu can only cost a wake-up until the
 * sleeper's next re-check (IPC__RECHECK_MS), never a message.
 */

/* Become the owner (q_pmutex held, state NONE). */
void ipc__ring_bias_take(struct ring *r)
{
	struct ring_shm *q = r->shm;
	int rc;

	if (ipc__membarrier_register() != 0) {
		atomic_store(&q->q_bias_state, BIAS_OFF);
		return;
	}
	rc = ipc__mutex_trylock_sane(&q->q_bias_reg);
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&q->q_bias_reg);
	else if (rc != 0)
		return;
	atomic_store(&q->q_bias_revoke, 0);
	atomic_store(&q->q_bias_busy, 0);
	atomic_store(&q->q_bias_cpu, -1); /* the first put sets it */
	r->bias_head = atomic_load(&q->q_head);
	r->bias_free = atomic_load(&q->q_free);
	r->bias_owner = true;
	r->bias_gen = ipc__fork_gen();
	r->bias_thread = ipc__thread_self();
	atomic_store(&q->q_bias_state, BIAS_OWNED);
}

/* Is the owner dead? Frees its registration if so. */
static bool ring_bias_owner_dead(struct ring_shm *q)
{
	int rc = ipc__mutex_trylock_sane(&q->q_bias_reg);

	if (rc == EBUSY || rc == EDEADLK)
		return false;
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&q->q_bias_reg);
	if (rc == 0 || rc == EOWNERDEAD)
		ipc__mutex_unlock(&q->q_bias_reg);
	return true;
}

/* Wait for the owner's put in progress to finish: true once it did (or
 * the owner died: *dead), false if dl passed first. An owner mid-put that
 * is running finishes within a microsecond; one that cannot run (stopped,
 * preempted, paging) may take any time, so after a short spin this sleeps
 * in growing steps up to 1 ms and checks the deadline at every step. */
static bool ring_bias_wait_idle(struct ring_shm *q, bool *dead,
				const struct ipc__deadline *dl)
{
	long nap_ns = 20000;

	for (unsigned spins = 0;
	     atomic_load_explicit(&q->q_bias_busy, memory_order_acquire);
	     spins++) {
		if (spins < REVOKE_SPINS && (spins & 1023) != 0) {
			ipc__cpu_relax();
			continue;
		}
		if (ring_bias_owner_dead(q)) {
			*dead = true;
			return true;
		}
		if (spins < REVOKE_SPINS)
			continue;
		if (ipc__deadline_passed(dl))
			return false;
		nanosleep(&(struct timespec){ 0, nap_ns }, NULL);
		if (nap_ns < 1000000)
			nap_ns *= 2;
	}
	return true;
}

/* Take the fast path away from the owner (q_pmutex held, state OWNED):
 * 0, or the deadline's error if the owner stays mid-put past dl. Then the
 * request stays posted (q_bias_revoke): the owner's next put sees it and
 * takes the locked path, and the next revoker finds it idle. */
int ipc__ring_bias_revoke(struct ring *r, const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	bool dead = false;

	atomic_store(&q->q_bias_revoke, 1);
	ipc__membarrier();
	if (!ring_bias_wait_idle(q, &dead, dl))
		return ipc__deadline_error(dl);
	IPC__CRASHPOINT("queue.bias.revoked");
	/* A dead owner leaves the queue free for a new one; a live one was
	 * contended, and the queue stays on the locked path. */
	if (!dead)
		dead = ring_bias_owner_dead(q);
	/* The owner moved q_tail without these caches following: refresh
	 * them, so that they are within a lap of the tail again. */
	q->q_pc_head = atomic_load(&q->q_head);
	q->q_pc_free = atomic_load(&q->q_free);
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

/* The owner's put found q_bias_revoke set: give the registration up now
 * and let the caller take the locked path. A robust mutex left held stays
 * on this thread's robust list, and once the segment is unmapped the
 * thread's next robust lock writes into the unmapped page. */
static IPC__COLD int ring_bias_revoked(struct ring *r)
{
	struct ring_shm *q = r->shm;

	atomic_store_explicit(&q->q_bias_busy, 0, memory_order_release);
	r->bias_owner = false;
	ipc__mutex_unlock(&q->q_bias_reg);
	return -ESTALE;
}

/* The owner's earlier q_head and q_free say no room for need bytes at
 * tail: read them afresh. 0 (room now), -EAGAIN, or -ENOTRECOVERABLE. */
static IPC__COLD int ring_bias_refresh(struct ring *r, uint64_t tail,
				       uint32_t need)
{
	struct ring_shm *q = r->shm;

	r->bias_free = atomic_load_explicit(&q->q_free, memory_order_acquire);
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
int ipc__ring_put_fast(struct ring *r, const void *msg, uint32_t len)
{
	struct ring_shm *q = r->shm;
	uint32_t need = rec_size(len), closed;
	uint64_t tail;
	int rc = 0, cpu;

	cpu = ipc__cpu_now();
	if (atomic_load_explicit(&q->q_bias_cpu, memory_order_relaxed) != cpu)
		atomic_exchange(&q->q_bias_cpu, cpu); /* a full barrier */
	atomic_store_explicit(&q->q_bias_busy, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst); /* see the essay above */
	if (atomic_load_explicit(&q->q_bias_revoke, memory_order_relaxed))
		return ring_bias_revoked(r);
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
	atomic_store_explicit(&q->q_bias_busy, 0, memory_order_release);
	if (rc == 0) {
		IPC__CRASHPOINT("queue.put.published");
		ring_bias_wake(r, cpu);
	}
	return rc;
}

/* The owner closes its handle: give the fast path up, so that the next
 * producer may take it. */
void ipc__ring_bias_release(struct ring *r)
{
	/* The repairing lock: a producer that died holding q_pmutex must not
	 * leave it held by us once we return. */
	if (!ipc__ring_bias_mine(r) ||
	    ipc__ring_lock_producers(r, &ipc__forever) != 0)
		return;
	if (atomic_load(&r->shm->q_bias_state) == BIAS_OWNED)
		atomic_store(&r->shm->q_bias_state, BIAS_NONE);
	/* Ours whatever the state: a revoker turns the state OFF but leaves
	 * the registration with us (see ring_put_fast on a leaked one). */
	r->bias_owner = false;
	ipc__mutex_unlock(&r->shm->q_bias_reg);
	ipc__mutex_unlock(&r->shm->q_pmutex);
}
