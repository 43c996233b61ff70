/* SPDX-License-Identifier: MIT */
/*
 * ring.c — the shared-memory queue backend: a crash-consistent ring of
 * variable-length byte messages for many producers and many consumers.
 *
 * Layout. One segment holds the geometry, a producer side, a consumer side,
 * the sleeping words, (JoinableQueue only) the consumer slots, and the data
 * ring: `capacity` bytes, a power of two, of 8-aligned records
 *
 *     [u32 length][u32 state][payload, padded to 8]
 *
 * that may wrap around the end (the 8-byte header never does). Positions
 * are byte offsets modulo 2^32 (capacity divides 2^32), and the two
 * published words pack an item count with a position so that one 64-bit
 * store moves both:
 *
 *     q_tail = items put   << 32 | next byte to write     (producers)
 *     q_head = items taken << 32 | next record to take    (consumers)
 *     q_free = first byte still in use    (JoinableQueue consumers; a
 *              Queue frees a record as soon as q_head passes it)
 *
 * Who serialises whom. Producers serialise on q_pmutex (robust,
 * process-shared) — except the queue's biased producer, which needs no
 * lock while it is the only one (ring_bias.c). A Queue's
 * consumers take no lock at all: each claims the record at head with one
 * compare-and-swap on q_head. A JoinableQueue's consumers serialise on
 * q_cmutex, since a get there also marks the record and a task_done
 * updates several words. The two sides meet only through q_tail, q_head
 * and q_free, and each caches the other side's word, re-reading it only
 * when the cache says "full" or "empty", as fast single-producer rings do.
 *
 * Crash consistency. Every operation makes its effect visible with one
 * atomic store of a packed word, after all the bytes it publishes are in
 * place:
 *   - put writes the record past q_tail, where nobody looks, then stores
 *     q_tail. A producer killed before that store leaves garbage beyond the
 *     tail that the next put overwrites; after it, the message is whole.
 *   - get (Queue) copies the record out, then moves q_head past it with a
 *     CAS. Killed before, the message stays queued; after, it is gone with
 *     the dead consumer (the one loss the contract allows a plain Queue).
 * Whoever next takes a dead process's mutex gets EOWNERDEAD and runs the
 * side's repair: the producer side has nothing to repair; the consumer side
 * recomputes the words derived from the records (q_free, q_requeued) and
 * rolls forward the one multi-word operation, task_done, from its intent
 * record (a task_done made without the lock keeps its intent record in
 * its consumer's slot, rolled forward when that slot is released). Counts are
 * never kept apart from what they count, so qsize cannot lie: it is tail items
 * minus head items (plus requeued tasks).
 *
 * JoinableQueue. A got record is not freed: get claims it, moving q_head
 * past it by compare-and-swap and then marking it TAKEN by the consumer's
 * slot (a compare-and-swap from its READY state, which carries a tag of
 * its item number: see "Claiming the record at head" in ring_reap.c), and
 * the record stays in the ring (between q_free and q_head) until its task_done
 * marks it DONE; q_free then advances over DONE records (at once under the
 * lock, or at the next get or room-starved put after a task_done that needed no
 * lock). A consumer is one thread on one handle (ring_joinable.c): it registers
 * a slot by locking the slot's robust mutex and holding it for its lifetime, so
 * the kernel tells everybody else when it dies: a trylock returns EOWNERDEAD.
 * Sleepers (getters, putters, joiners) look every IPC__RECHECK_MS and turn a
 * dead consumer's TAKEN records into REQUEUED ones, which the next get takes
 * before anything at the head. Unfinished tasks are tail items minus the tasks
 * done (q_done and each slot's own count, s_done), so join() waits exactly
 * until every put task is done, and a dead consumer's tasks are done by someone
 * else instead of never.
 *
 * Damage. A peer may write anything into the segment, so nothing read
 * from it is trusted as an index or a length: the geometry is validated
 * and copied into the handle at open, every record length is read once
 * and checked against max_msg and the published bytes before it sizes a
 * copy, every walk checks its range first. A value that nothing
 * legitimate explains marks the queue broken (ipc__ring_broken): every
 * later call returns IPC_ENOTRECOVERABLE instead of trusting it.
 *
 * Sleeping (ring_wait.c). A waiter first waits without the kernel: it
 * spins while spinning has been paying off (an adaptive budget per handle,
 * none where the process has one CPU), then yields the CPU a few times,
 * because a peer that shares our CPU can only fill or drain the ring while
 * we do not run; on one core a producer and a consumer thus take turns a
 * time slice at a time and never sleep. Only then does it sleep: it counts
 * itself in a waiter word, sets the low bit of the side's sequence word
 * (SEQ_ARMED) with an atomic OR, re-checks, and futex-waits on the word. A
 * side that makes progress reads that word after its publishing store and
 * makes a system call only if the bit is set; its compare-and-swap clears
 * the bit as it wakes, so a sleeper costs one wake however many messages
 * arrive before it runs, and a busy queue makes no system calls at all. A
 * leaving sleeper re-arms for the sleepers still counted. A waker killed
 * between its CAS and its wake costs at most one re-check period.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/queue/ring.h"

void ipc__ring_wake(_Atomic uint32_t *seq, int n)
{
	atomic_thread_fence(memory_order_seq_cst);
	ipc__ring_wake_unlocked(seq, n);
}

/* A new handle's spin budgets: full, or none when this process may run
 * on one CPU only (spinning then only delays the peer it waits for). */
void ipc__ring_spin_init(struct ring *r)
{
	cpu_set_t cpus;
	bool one = sysconf(_SC_NPROCESSORS_ONLN) <= 1 ||
		   (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
		    CPU_COUNT(&cpus) <= 1);

	r->spin_max[SPIN_GET] = one ? 0 : GET_SPINS;
	r->spin_max[SPIN_PUT] = one ? 0 : PUT_SPINS;
	atomic_store(&r->spin[SPIN_GET], r->spin_max[SPIN_GET]);
	atomic_store(&r->spin[SPIN_PUT], r->spin_max[SPIN_PUT]);
}

/* The segment holds something no libipc operation writes: a peer damaged
 * it. Mark the queue broken for every process, so that nobody trusts it
 * again, wake every sleeper to see that, and return what the caller
 * returns: -ENOTRECOVERABLE. */
int ipc__ring_broken(struct ring *r)
{
	struct ring_shm *q = r->shm;

	atomic_fetch_or(&q->q_closed, CLOSED_BROKEN);
	ipc__futex_add_wake(&q->q_get_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_put_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_join_seq, SEQ_STEP, INT_MAX);
	return -ENOTRECOVERABLE;
}

/* ---- Creation and opening --------------------------------------------- */

struct ring_geometry {
	uint32_t capacity, max_msg, maxsize, joinable, nslots;
	bool check_joinable; /* opener: joinable must match */
};

static size_t ring_seg_size(const struct ring_geometry *g, uint64_t *slots_off,
			    uint64_t *data_off)
{
	size_t off = sizeof(struct ring_shm);

	*slots_off = off;
	off += (size_t)g->nslots * sizeof(struct ring_slot);
	off = (off + 4095) & ~(size_t)4095;
	*data_off = off;
	return off + g->capacity;
}

static int ring_init(void *base, size_t size, const void *arg)
{
	const struct ring_geometry *g = arg;
	struct ring_shm *q = base;
	struct ring_slot *slots;
	int rc;

	q->q_capacity = g->capacity;
	q->q_max_msg = g->max_msg;
	q->q_maxsize = g->maxsize;
	q->q_joinable = g->joinable;
	q->q_nslots = g->nslots;
	q->q_flags = ipc__membarrier_available() ? RING_F_BIAS : 0;
	ring_seg_size(g, &q->q_slots_off, &q->q_data_off);
	(void)size;
	rc = ipc__mutex_init(&q->q_pmutex, false);
	if (rc == 0)
		rc = ipc__mutex_init(&q->q_cmutex, false);
	for (uint32_t i = 0; rc == 0 && i < RING_BIAS_SLOTS; i++)
		rc = ipc__mutex_init(&q->q_bias[i].b_reg, false);
	slots = (struct ring_slot *)((uint8_t *)base + q->q_slots_off);
	for (uint32_t i = 0; rc == 0 && i < g->nslots; i++)
		rc = ipc__mutex_init(&slots[i].s_reg, false);
	return rc;
}

/* Read a segment's geometry once into g and validate it: 0 or -EPROTO.
 * The arithmetic is 64-bit, so that no huge field wraps into a valid-
 * looking size (a max_msg near 2^32 once did, in 32 bits). */
static int ring_read_geometry(const struct ring_shm *q, size_t size,
			      struct ring_geometry *g)
{
	uint64_t slots_off = q->q_slots_off, data_off = q->q_data_off;
	uint64_t want_slots, want_data;

	*g = (struct ring_geometry){ q->q_capacity, q->q_max_msg, q->q_maxsize,
				     q->q_joinable, q->q_nslots,  false };
	if (g->capacity < MIN_CAPACITY ||
	    g->capacity > IPC_QUEUE_MAX_CAPACITY ||
	    (g->capacity & (g->capacity - 1)) != 0 ||
	    REC_HDR + (((uint64_t)g->max_msg + 7) & ~(uint64_t)7) >
		    g->capacity ||
	    g->maxsize > INT32_MAX || g->joinable > 1 ||
	    g->nslots != (g->joinable ? IPC_QUEUE_MAX_CONSUMERS : 0) ||
	    ring_seg_size(g, &want_slots, &want_data) > size ||
	    slots_off != want_slots || data_off != want_data)
		return -EPROTO;
	return 0;
}

static int ring_check(const void *base, size_t size, const void *arg)
{
	const struct ring_geometry *want = arg;
	struct ring_geometry g;

	if (ring_read_geometry(base, size, &g) != 0)
		return -EPROTO;
	/* A Queue opened as a JoinableQueue or the other way round: the
	 * segment is sound but of the other kind. */
	if (want->check_joinable && want->joinable != g.joinable)
		return -EPROTO;
	return 0;
}

static const struct ipc__seg_type ring_type = {
	.kind = IPC__KIND_QUEUE,
	.min_size = sizeof(struct ring_shm) + MIN_CAPACITY,
	.init = ring_init,
	.check = ring_check,
};

static int ring_geometry(struct ring_geometry *g, const ipc_queue_attr *attr)
{
	size_t cap = attr->capacity ? attr->capacity : DEFAULT_CAPACITY;
	size_t pow = MIN_CAPACITY;

	if (cap > IPC_QUEUE_MAX_CAPACITY || attr->maxsize > INT32_MAX)
		return -EINVAL;
	while (pow < cap)
		pow <<= 1;
	g->capacity = (uint32_t)pow;
	if (attr->max_msg_size > pow - 2 * REC_HDR)
		return -EINVAL;
	g->max_msg = attr->max_msg_size ? (uint32_t)attr->max_msg_size
					: (uint32_t)pow / 4;
	g->maxsize = (uint32_t)attr->maxsize;
	g->joinable = attr->joinable;
	g->nslots = attr->joinable ? IPC_QUEUE_MAX_CONSUMERS : 0;
	return 0;
}

/* Handle ids: what a JoinableQueue consumer slot records as its handle, so
 * that a handle opened later at the same address is never taken for a
 * closed one. */
static _Atomic uint64_t ring_handle_ids;

int ipc__ring_open(void **impl, const char *name, int flags,
		   const ipc_queue_attr *attr)
{
	struct ring_geometry g;
	struct ring *r;
	uint64_t slots_off, data_off;
	int rc;

	rc = ring_geometry(&g, attr);
	if (rc != 0)
		return rc;
	g.check_joinable = attr->joinable || attr->capacity ||
			   attr->max_msg_size || attr->maxsize;
	if (attr->mode != 0)
		flags = (flags & ~IPC_MODE_MASK) | (int)(attr->mode & 0777);
	rc = ipc__handle_new((void **)&r, sizeof(*r), &ring_type, name, flags,
			     ring_seg_size(&g, &slots_off, &data_off), &g);
	if (rc != 0)
		return rc;
	/* The geometry is read once more, validated and copied: what this
	 * handle uses is exactly what it checked, and nothing a peer writes
	 * into the segment later can move a bound it checks against. */
	r->shm = r->seg.base;
	if (ring_read_geometry(r->shm, r->seg.size, &g) != 0) {
		ipc__handle_free(r);
		return -EPROTO;
	}
	ring_seg_size(&g, &slots_off, &data_off);
	r->slots = (struct ring_slot *)((uint8_t *)r->seg.base + slots_off);
	r->data = (uint8_t *)r->seg.base + data_off;
	r->cap = g.capacity;
	r->mask = g.capacity - 1;
	r->max_msg = g.max_msg;
	r->maxsize = g.maxsize;
	r->joinable = g.joinable != 0;
	r->nslots = g.nslots;
	r->id = ipc__ring_new_id();
	ipc__ring_spin_init(r);
	*impl = r;
	return 0;
}

/* A number no other handle of this process has had: what ties a consumer
 * slot to its handle (ring_joinable.c). */
uint64_t ipc__ring_new_id(void)
{
	return atomic_fetch_add(&ring_handle_ids, 1) + 1;
}

/* ---- Repair ------------------------------------------------------------ */

/* Walk the records in [from, to). Returns false if they do not tile the
 * range exactly (the segment is corrupt). */

int ipc__ring_head_recheck(struct ring *r, uint64_t *head,
			   struct ring_tail_cache *c)
{
	struct ring_shm *q = r->shm;
	uint64_t now = atomic_load_explicit(&q->q_head, memory_order_acquire);
	uint64_t tail;
	uint32_t len, avail;

	c->id = 0; /* the remembered tail may be the stale word */
	if (now != *head) {
		*head = now;
		return 0;
	}
	tail = atomic_load_explicit(&q->q_tail, memory_order_acquire);
	avail = w_pos(tail) - w_pos(now);
	len = __atomic_load_n(&rec_at(r, w_pos(now))->r_len, __ATOMIC_ACQUIRE);
	if (atomic_load_explicit(&q->q_head, memory_order_acquire) != now)
		return 0; /* moved meanwhile: retry */
	if (avail == 0 || (avail <= r->cap && len <= r->max_msg &&
			   rec_size(len) <= avail && ring_aligned(w_pos(now))))
		return 0;
	return ipc__ring_broken(r);
}

bool ipc__ring_walk(struct ring *r, uint32_t from, uint32_t to, rec_visit visit,
		    void *arg)
{
	uint32_t pos = from;

	if (to - from > r->cap)
		return false;
	while (pos != to) {
		struct rec_hdr *h = rec_at(r, pos);
		uint32_t len = h->r_len; /* once: checked is used */
		if (len > r->max_msg || rec_size(len) > to - pos)
			return false;
		if (visit != NULL)
			visit(r, pos, h, arg);
		pos += rec_size(len);
	}
	return true;
}

/* A producer died holding q_pmutex: everything it wrote lies beyond
 * q_tail, unpublished. Only check that the published words still make
 * sense. */
static int ring_repair_producer(void *arg)
{
	struct ring *r = arg;
	struct ring_shm *q = r->shm;
	uint32_t free = w_pos(atomic_load(&q->q_free));
	uint64_t head = atomic_load(&q->q_head);

	return ring_words_sane(r, atomic_load(&q->q_tail), head, free)
		       ? 0
		       : -EPROTO;
}

/* Lock one of the queue's mutexes before the caller's deadline. A holder
 * that is running releases within microseconds, so IPC_NOWAIT still waits
 * for it, but at most RING_NOWAIT_LOCK_MS: a holder that cannot run
 * (stopped, traced, swapped out) then costs that, not for ever. */
int ipc__ring_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		   ipc__repair_fn repair, void *arg)
{
	struct ipc__deadline brief;
	int rc = ipc__mutex_lock(m, dl, repair, arg);

	if (rc != -EAGAIN || dl->kind != IPC__DL_NOWAIT)
		return rc;
	ipc__deadline_init(&brief, RING_NOWAIT_LOCK_MS);
	rc = ipc__mutex_lock(m, &brief, repair, arg);
	return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

int ipc__ring_lock_producers(struct ring *r, const struct ipc__deadline *dl)
{
	int rc = ipc__ring_lock(&r->shm->q_pmutex, dl, ring_repair_producer, r);

	/* The calling thread holds it already: a zero-copy reservation made
	 * through another handle of this queue (ring_zc.c) is open. */
	return rc == -EDEADLK ? -EBUSY : rc;
}
