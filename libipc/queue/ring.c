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
 * lock while it is the only one (see "Fast producer" below). A Queue's
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
 * record. Counts are never kept apart from what they count, so qsize cannot
 * lie: it is tail items minus head items (plus requeued tasks).
 *
 * JoinableQueue. A got record is not freed: get marks it TAKEN by the
 * consumer's slot and moves q_head past it, and the record stays in the
 * ring (between q_free and q_head) until its task_done marks it DONE; q_free
 * then advances over DONE records. Each consumer thread registers a slot by
 * locking the slot's robust mutex and holding it for its lifetime, so the
 * kernel tells everybody else when it dies: a trylock returns EOWNERDEAD.
 * Sleepers (getters, putters, joiners) look every IPC__RECHECK_MS and turn
 * a dead consumer's TAKEN records into REQUEUED ones, which the next get
 * takes before anything at the head. Unfinished tasks are tail items minus
 * q_done, so join() waits exactly until every put task is done, and a
 * dead consumer's tasks are done by someone else instead of never.
 *
 * Sleeping. Sleepers count themselves in a waiter word and futex-wait on a
 * sequence word; a side that makes progress bumps the other side's sequence
 * and wakes only if that count is non-zero, so a busy queue makes no system
 * calls. Before sleeping, a getter spins briefly, so a ping-pong between
 * two awake processes never enters the kernel. A waker killed between its
 * store and its wake costs at most one re-check period.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/queue/queue.h"

#define REC_HDR 8u
#define MIN_CAPACITY 4096u
#define DEFAULT_CAPACITY (1u << 20)
#define GET_SPINS 4000
#define PUT_SPINS 1000

/* Record states (JoinableQueue; a plain Queue leaves them READY). */
enum {
	REC_READY = 0,	   /* in [head, tail): waiting to be got */
	REC_REQUEUED = 1,  /* behind head: its consumer died, get it again */
	REC_DONE = 2,	   /* behind head: task_done'd, space to free */
	REC_TAKEN = 0x100, /* | slot: got by that consumer, not done yet */
};

enum { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
enum { BIAS_NONE = 0, BIAS_OWNED = 1, BIAS_OFF = 2 };
enum { INTENT_NONE = 0, INTENT_TASK_DONE = 1 };

struct rec_hdr {
	uint32_t r_len;
	_Atomic uint32_t r_state;
};

struct ring_slot {
	pthread_mutex_t s_reg;	  /* held by the registered consumer thread */
	_Atomic uint32_t s_state; /* SLOT_*, under q_cmutex */
	int32_t s_pid;		  /* informational */
} IPC__ALIGNED;

struct ring_shm {
	struct ipc__seg_hdr hdr;

	/* Geometry: written once at creation, validated by openers. */
	uint32_t q_capacity;
	uint32_t q_max_msg;
	uint32_t q_maxsize; /* 0: no item limit */
	uint32_t q_joinable;
	uint32_t q_nslots;
	uint32_t q_pad0;
	uint64_t q_slots_off;
	uint64_t q_data_off;

	/* Producer side, under q_pmutex. The caches hold earlier values of
	 * q_head and q_free: always behind the truth, so at worst they make
	 * a producer re-read. */
	pthread_mutex_t q_pmutex IPC__ALIGNED;
	uint64_t q_pc_head;
	uint32_t q_pc_free;

	/* Written by producers (release), read by everyone (acquire). */
	_Atomic uint64_t q_tail IPC__ALIGNED;

	/* The biased producer (see "Fast producer"). q_bias_state changes
	 * under q_pmutex; q_bias_busy is the owner's, q_bias_revoke a
	 * revoker's; q_bias_reg is held by the owner thread while it owns. */
	_Atomic uint32_t q_bias_state IPC__ALIGNED;
	_Atomic uint32_t q_bias_busy;
	_Atomic uint32_t q_bias_revoke;
	pthread_mutex_t q_bias_reg IPC__ALIGNED;

	/* Consumer side, under q_cmutex. */
	pthread_mutex_t q_cmutex IPC__ALIGNED;
	uint64_t q_cc_tail; /* an earlier value of q_tail */
	uint32_t q_intent;  /* INTENT_*: the task_done in progress */
	uint32_t q_intent_pos;
	uint32_t q_intent_done;
	_Atomic uint32_t q_requeued; /* REQUEUED records behind head */
	_Atomic uint32_t q_done;     /* tasks done, ever (mod 2^32) */

	/* Written by consumers (release), read by everyone (acquire). */
	_Atomic uint64_t q_head IPC__ALIGNED;
	_Atomic uint32_t q_free;

	/* Sleeping: sequence words and waiter counts (see "Sleeping"). The
	 * sequences only ever need to differ from what a sleeper saw. */
	_Atomic uint32_t q_get_seq IPC__ALIGNED;
	_Atomic uint32_t q_get_waiters;
	_Atomic uint32_t q_put_seq IPC__ALIGNED;
	_Atomic uint32_t q_put_waiters;
	_Atomic uint32_t q_join_seq IPC__ALIGNED;
	_Atomic uint32_t q_join_waiters;
	_Atomic uint32_t q_closed;
};

/* A process's handle. */
struct ring {
	struct ipc__seg seg;
	struct ring_shm *shm;
	uint8_t *data;
	struct ring_slot *slots;
	uint32_t mask;
	bool bias_owner;   /* we are the queue's biased producer */
	unsigned bias_gen; /* fork generation we became it in */
	pthread_t bias_thread;
	uint64_t bias_head; /* the owner's earlier q_head and q_free */
	uint32_t bias_free;
	int slot;	   /* our consumer slot, -1 if none */
	unsigned slot_gen; /* fork generation it was registered in */
};

static inline uint32_t w_pos(uint64_t w)
{
	return (uint32_t)w;
}

static inline uint32_t w_items(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static inline uint64_t w_make(uint32_t items, uint32_t pos)
{
	return (uint64_t)items << 32 | pos;
}

static inline uint32_t rec_size(uint32_t len)
{
	return REC_HDR + ((len + 7u) & ~7u);
}

static inline struct rec_hdr *rec_at(struct ring *r, uint32_t pos)
{
	return (struct rec_hdr *)(r->data + (pos & r->mask));
}

/* Copy len bytes into / out of the ring at pos, wrapping at the end. */
static void ring_write(struct ring *r, uint32_t pos, const void *src,
		       size_t len)
{
	size_t off = pos & r->mask, first = r->mask + 1 - off;

	if (len <= first) {
		memcpy(r->data + off, src, len);
	} else {
		memcpy(r->data + off, src, first);
		memcpy(r->data, (const uint8_t *)src + first, len - first);
	}
}

static void ring_read(struct ring *r, uint32_t pos, void *dst, size_t len)
{
	size_t off = pos & r->mask, first = r->mask + 1 - off;

	if (len <= first) {
		memcpy(dst, r->data + off, len);
	} else {
		memcpy(dst, r->data + off, first);
		memcpy((uint8_t *)dst + first, r->data, len - first);
	}
}

/* Bump a sequence word and wake sleepers if any are counted. The caller's
 * publishing store must be ordered before the read of the waiter count (a
 * sleeper counts itself before re-reading the state: see ring_sleep).
 * ring_wake_unlocked is for callers that released a robust mutex since the
 * store, which orders it on x86 without a fence (ipc__fence_after_unlock);
 * ring_wake fences itself. */
static void ring_wake_unlocked(_Atomic uint32_t *seq, _Atomic uint32_t *waiters,
			       int n)
{
	ipc__fence_after_unlock();
	if (atomic_load_explicit(waiters, memory_order_relaxed) != 0)
		ipc__futex_add_wake(seq, 1, n);
}

static void ring_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, int n)
{
	atomic_thread_fence(memory_order_seq_cst);
	ring_wake_unlocked(seq, waiters, n);
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
	ring_seg_size(g, &q->q_slots_off, &q->q_data_off);
	(void)size;
	rc = ipc__mutex_init(&q->q_pmutex, false);
	if (rc == 0)
		rc = ipc__mutex_init(&q->q_cmutex, false);
	if (rc == 0)
		rc = ipc__mutex_init(&q->q_bias_reg, false);
	slots = (struct ring_slot *)((uint8_t *)base + q->q_slots_off);
	for (uint32_t i = 0; rc == 0 && i < g->nslots; i++)
		rc = ipc__mutex_init(&slots[i].s_reg, false);
	return rc;
}

static int ring_check(const void *base, size_t size, const void *arg)
{
	const struct ring_geometry *want = arg;
	const struct ring_shm *q = base;
	struct ring_geometry g = { q->q_capacity, q->q_max_msg, q->q_maxsize,
				   q->q_joinable, q->q_nslots,	false };
	uint64_t slots_off, data_off;

	if (g.capacity < MIN_CAPACITY || g.capacity > IPC_QUEUE_MAX_CAPACITY ||
	    (g.capacity & (g.capacity - 1)) != 0 ||
	    rec_size(g.max_msg) > g.capacity || g.joinable > 1 ||
	    g.nslots != (g.joinable ? IPC_QUEUE_MAX_CONSUMERS : 0) ||
	    ring_seg_size(&g, &slots_off, &data_off) > size ||
	    slots_off != q->q_slots_off || data_off != q->q_data_off)
		return -EPROTO;
	if (want->check_joinable && want->joinable != g.joinable)
		return -EINVAL;
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
	r->shm = r->seg.base;
	r->slots = (struct ring_slot *)((uint8_t *)r->seg.base +
					r->shm->q_slots_off);
	r->data = (uint8_t *)r->seg.base + r->shm->q_data_off;
	r->mask = r->shm->q_capacity - 1;
	r->slot = -1;
	*impl = r;
	return 0;
}

/* ---- Repair ------------------------------------------------------------ */

/* Walk the records in [from, to). Returns false if they do not tile the
 * range exactly (the segment is corrupt). */
typedef void (*rec_visit)(struct ring *r, uint32_t pos, struct rec_hdr *h,
			  void *arg);

static bool ring_walk(struct ring *r, uint32_t from, uint32_t to,
		      rec_visit visit, void *arg)
{
	uint32_t pos = from;

	while (pos != to) {
		struct rec_hdr *h = rec_at(r, pos);
		if (h->r_len > r->shm->q_max_msg ||
		    rec_size(h->r_len) > to - pos)
			return false;
		if (visit != NULL)
			visit(r, pos, h, arg);
		pos += rec_size(h->r_len);
	}
	return true;
}

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

/* A producer died holding q_pmutex: everything it wrote lies beyond
 * q_tail, unpublished. Only check that the published words still make
 * sense. */
static int ring_repair_producer(void *arg)
{
	struct ring *r = arg;
	struct ring_shm *q = r->shm;
	uint32_t tail = w_pos(atomic_load(&q->q_tail));
	uint32_t free = q->q_joinable ? atomic_load(&q->q_free)
				      : w_pos(atomic_load(&q->q_head));

	return tail - free <= q->q_capacity ? 0 : -EPROTO;
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
	if (!ring_walk(r, atomic_load(&q->q_free), w_pos(head), count_requeued,
		       &requeued))
		return -EPROTO;
	atomic_store(&q->q_requeued, requeued);
	ring_advance_free(r);
	return 0;
}

static int ring_lock_producers(struct ring *r)
{
	static const struct ipc__deadline forever = { .kind = IPC__DL_FOREVER };

	return ipc__mutex_lock(&r->shm->q_pmutex, &forever,
			       ring_repair_producer, r);
}

static int ring_lock_consumers(struct ring *r)
{
	static const struct ipc__deadline forever = { .kind = IPC__DL_FOREVER };

	return ipc__mutex_lock(&r->shm->q_cmutex, &forever,
			       ring_repair_consumer, r);
}

/* ---- Consumers of a JoinableQueue -------------------------------------- */

struct requeue_arg {
	uint32_t taken; /* REC_TAKEN | slot */
	uint32_t count;
};

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

	ring_walk(r, atomic_load(&q->q_free), w_pos(atomic_load(&q->q_head)),
		  requeue_one, &a);
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
		ring_wake(&q->q_get_seq, &q->q_get_waiters, (int)requeued);
}

static void ring_reap(struct ring *r)
{
	if (!r->shm->q_joinable || ring_lock_consumers(r) != 0)
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

/* ---- Waiting ----------------------------------------------------------- */

typedef bool (*ring_ready_fn)(struct ring *r);

static bool ready_to_get(struct ring *r)
{
	struct ring_shm *q = r->shm;

	return w_pos(atomic_load_explicit(&q->q_tail, memory_order_acquire)) !=
		       w_pos(atomic_load_explicit(&q->q_head,
						  memory_order_acquire)) ||
	       (q->q_joinable &&
		atomic_load_explicit(&q->q_requeued, memory_order_relaxed)) ||
	       atomic_load_explicit(&q->q_closed, memory_order_relaxed);
}

/* Room for a record of `need` bytes, and under the item limit? Requeued
 * tasks count as items; q_requeued lives on the consumers' busy line, so it
 * is read only when an item limit makes it matter. */
static bool ring_has_room(struct ring *r, uint64_t tail, uint64_t head,
			  uint32_t free, uint32_t need)
{
	struct ring_shm *q = r->shm;
	uint32_t items, used;

	/* A Queue frees a record as its get moves head; a JoinableQueue
	 * only at task_done, tracked by q_free. */
	if (!q->q_joinable)
		free = w_pos(head);
	/* A cached free position can be more than a lap behind the tail
	 * (another path put meanwhile): then the distance wraps past the
	 * capacity. That says "stale", not "room": the caller re-reads. */
	used = w_pos(tail) - free;
	if (used > q->q_capacity || q->q_capacity - used < need)
		return false;
	if (q->q_maxsize == 0)
		return true;
	items = w_items(tail) - w_items(head);
	if (q->q_joinable)
		items += atomic_load_explicit(&q->q_requeued,
					      memory_order_relaxed);
	return items < q->q_maxsize;
}

/* Room for the smallest record: what a blocked put re-checks before it
 * retries under the lock with its real size. */
static bool ready_to_put(struct ring *r)
{
	struct ring_shm *q = r->shm;

	return atomic_load_explicit(&q->q_closed, memory_order_relaxed) ||
	       ring_has_room(r, atomic_load(&q->q_tail),
			     atomic_load(&q->q_head), atomic_load(&q->q_free),
			     REC_HDR);
}

static uint32_t ring_unfinished(struct ring *r)
{
	return w_items(atomic_load(&r->shm->q_tail)) -
	       atomic_load(&r->shm->q_done);
}

static bool ready_to_join(struct ring *r)
{
	return ring_unfinished(r) == 0;
}

/* Sleep until ready(r) or dl. Counts itself in *waiters before reading
 * the state, so a waker that changed the state either is seen here or sees
 * us (ring_wake). Every slice, a JoinableQueue sleeper reaps dead
 * consumers: that is what turns their tasks into work again. */
static int ring_sleep(struct ring *r, _Atomic uint32_t *seq,
		      _Atomic uint32_t *waiters, ring_ready_fn ready,
		      const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	int rc = 0;

	atomic_fetch_add(waiters, 1);
	/* A biased producer reads the waiter count with no fence after its
	 * publishing store: make that barrier happen now (see "Fast
	 * producer"). Later loads of the count on its side then see ours. */
	if (waiters == &r->shm->q_get_waiters &&
	    atomic_load(&r->shm->q_bias_state) == BIAS_OWNED)
		ipc__membarrier();
	for (;;) {
		uint32_t s = atomic_load(seq);
		atomic_thread_fence(memory_order_seq_cst);
		if (ready(r))
			break;
		if (ipc__deadline_passed(dl)) {
			rc = ipc__deadline_error(dl);
			break;
		}
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		if (ipc__futex_wait(seq, s, &slice) == -ETIMEDOUT)
			ring_reap(r);
	}
	atomic_fetch_sub(waiters, 1);
	return rc;
}

/* Spin briefly for ready(r): a peer that is awake answers within
 * microseconds, far sooner than a sleep and a wake-up. */
static bool ring_spin(struct ring *r, ring_ready_fn ready, int spins)
{
	for (int i = 0; i < spins; i++) {
		if (ready(r))
			return true;
		ipc__cpu_relax();
	}
	return false;
}

/* Write a record past tail, where no consumer looks yet. */
static void ring_put_record(struct ring *r, uint64_t tail, const void *msg,
			    uint32_t len)
{
	struct rec_hdr *h = rec_at(r, w_pos(tail));

	h->r_len = len;
	atomic_store_explicit(&h->r_state, REC_READY, memory_order_relaxed);
	ring_write(r, w_pos(tail) + REC_HDR, msg, len);
}

/* ---- Fast producer ------------------------------------------------------

 * A lock costs a producer more than its two atomic instructions: each one
 * waits until the previous message's stores have crossed to the consumer's
 * core. So the first producer of a queue becomes its *owner* and puts
 * without any atomic read-modify-write:
 *
 *   owner:    busy = 1; compiler barrier; if (revoke) -> slow path;
 *             write the record; publish q_tail; busy = 0 (release)
 *   revoker:  (another producer, holding q_pmutex) revoke = 1;
 *             membarrier (a full barrier on the owner's CPU);
 *             wait until busy == 0 or the owner is dead; state = OFF
 *
 * The membarrier makes the owner's compiler barrier a real one exactly when
 * a revoker needs it (Dekker's pattern, made asymmetric): either the owner
 * sees revoke and takes the locked path, or the revoker sees busy and waits
 * for that put to finish. From then on every producer takes q_pmutex. The
 * owner holds q_bias_reg while it owns, so a dead owner is seen by the
 * kernel (EOWNERDEAD) and the revoker does not wait for it; whatever a dead
 * owner wrote past q_tail is unpublished, exactly as for a locked put.
 *
 * The owner also checks for sleeping consumers after publishing without a
 * fence; a consumer about to sleep runs the membarrier instead (ring_sleep).
 * Without membarrier(2) support, no producer is ever biased.
 */

static bool ring_bias_mine(struct ring *r)
{
	return r->bias_owner && r->bias_gen == ipc__fork_gen() &&
	       pthread_equal(r->bias_thread, pthread_self());
}

/* Become the owner (q_pmutex held, state NONE). */
static void ring_bias_take(struct ring *r)
{
	struct ring_shm *q = r->shm;
	int rc;

	if (ipc__membarrier_register() != 0) {
		atomic_store(&q->q_bias_state, BIAS_OFF);
		return;
	}
	rc = pthread_mutex_trylock(&q->q_bias_reg);
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&q->q_bias_reg);
	else if (rc != 0)
		return;
	atomic_store(&q->q_bias_revoke, 0);
	atomic_store(&q->q_bias_busy, 0);
	r->bias_head = atomic_load(&q->q_head);
	r->bias_free = atomic_load(&q->q_free);
	r->bias_owner = true;
	r->bias_gen = ipc__fork_gen();
	r->bias_thread = pthread_self();
	atomic_store(&q->q_bias_state, BIAS_OWNED);
}

/* Is the owner dead? Frees its registration if so. */
static bool ring_bias_owner_dead(struct ring_shm *q)
{
	int rc = pthread_mutex_trylock(&q->q_bias_reg);

	if (rc == EBUSY || rc == EDEADLK)
		return false;
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&q->q_bias_reg);
	if (rc == 0 || rc == EOWNERDEAD)
		pthread_mutex_unlock(&q->q_bias_reg);
	return true;
}

/* Take the fast path away from the owner (q_pmutex held, state OWNED). */
static void ring_bias_revoke(struct ring *r)
{
	struct ring_shm *q = r->shm;
	bool dead = false;

	atomic_store(&q->q_bias_revoke, 1);
	ipc__membarrier();
	for (unsigned spins = 0;
	     atomic_load_explicit(&q->q_bias_busy, memory_order_acquire);
	     spins++) {
		if ((spins & 1023) == 0 && ring_bias_owner_dead(q)) {
			dead = true;
			break;
		}
		if (spins < 1u << 16)
			ipc__cpu_relax();
		else
			sched_yield(); /* the owner was preempted mid-put */
	}
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
}

/* The owner's put: 0, -EAGAIN (no room), -ECLOSED, or -ESTALE (revoked:
 * use the locked path). */
static int ring_put_fast(struct ring *r, const void *msg, uint32_t len)
{
	struct ring_shm *q = r->shm;
	uint32_t need = rec_size(len);
	uint64_t tail;
	int rc = 0;

	atomic_store_explicit(&q->q_bias_busy, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst); /* see "Fast producer" */
	if (atomic_load_explicit(&q->q_bias_revoke, memory_order_relaxed)) {
		atomic_store_explicit(&q->q_bias_busy, 0, memory_order_release);
		r->bias_owner = false;
		return -ESTALE;
	}
	tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	if (atomic_load_explicit(&q->q_closed, memory_order_relaxed)) {
		rc = IPC_ECLOSED;
	} else if (!ring_has_room(r, tail, r->bias_head, r->bias_free, need)) {
		r->bias_head =
			atomic_load_explicit(&q->q_head, memory_order_acquire);
		r->bias_free =
			atomic_load_explicit(&q->q_free, memory_order_acquire);
		if (!ring_has_room(r, tail, r->bias_head, r->bias_free, need))
			rc = -EAGAIN;
	}
	if (rc == 0) {
		ring_put_record(r, tail, msg, len);
		IPC__CRASHPOINT("queue.put.fast_written");
		atomic_store_explicit(
			&q->q_tail,
			w_make(w_items(tail) + 1, w_pos(tail) + need),
			memory_order_release);
	}
	atomic_store_explicit(&q->q_bias_busy, 0, memory_order_release);
	return rc;
}

/* ---- put --------------------------------------------------------------- */

/* One attempt under q_pmutex: 0, -EAGAIN (no room) or -ECLOSED. */
static int ring_try_put(struct ring *r, const void *msg, uint32_t len)
{
	struct ring_shm *q = r->shm;
	uint32_t need = rec_size(len);
	uint64_t tail;
	int rc;

	rc = ring_lock_producers(r);
	if (rc != 0)
		return rc;
	switch (atomic_load(&q->q_bias_state)) {
	case BIAS_OWNED:
		if (!ring_bias_mine(r))
			ring_bias_revoke(r);
		break;
	case BIAS_NONE:
		ring_bias_take(r); /* fast from the next put on */
		break;
	}
	if (atomic_load_explicit(&q->q_closed, memory_order_relaxed)) {
		rc = IPC_ECLOSED;
		goto out;
	}
	tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	if (!ring_has_room(r, tail, q->q_pc_head, q->q_pc_free, need)) {
		q->q_pc_head =
			atomic_load_explicit(&q->q_head, memory_order_acquire);
		q->q_pc_free =
			atomic_load_explicit(&q->q_free, memory_order_acquire);
		if (!ring_has_room(r, tail, q->q_pc_head, q->q_pc_free, need)) {
			rc = -EAGAIN;
			goto out;
		}
	}
	ring_put_record(r, tail, msg, len);
	IPC__CRASHPOINT("queue.put.written");
	atomic_store_explicit(&q->q_tail,
			      w_make(w_items(tail) + 1, w_pos(tail) + need),
			      memory_order_release);
out:
	ipc__mutex_unlock(&q->q_pmutex);
	return rc;
}

static int ring_put(void *impl, const void *msg, size_t len,
		    const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	int rc;

	for (;;) {
		rc = -ESTALE;
		if (ring_bias_mine(r))
			rc = ring_put_fast(r, msg, (uint32_t)len);
		if (rc == -ESTALE)
			rc = ring_try_put(r, msg, (uint32_t)len);
		if (rc == 0) {
			IPC__CRASHPOINT("queue.put.published");
			ring_wake_unlocked(&q->q_get_seq, &q->q_get_waiters, 1);
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
		if (dl->kind == IPC__DL_NOWAIT)
			return -EAGAIN;
		if (ring_spin(r, ready_to_put, PUT_SPINS))
			continue;
		rc = ring_sleep(r, &q->q_put_seq, &q->q_put_waiters,
				ready_to_put, dl);
		if (rc != 0)
			return rc;
	}
}

/* ---- get --------------------------------------------------------------- */

struct get_req {
	void *buf;
	size_t cap;
	void **alloc;
};

/* Where the caller's copy goes: buf, or a new malloc'd buffer. */
static int get_dest(struct get_req *g, uint32_t len, void **dst)
{
	if (g->alloc == NULL) {
		if (len > g->cap)
			return -EMSGSIZE;
		*dst = g->buf;
		return 0;
	}
	*dst = malloc(len ? len : 1);
	if (*dst == NULL)
		return -ENOMEM;
	*g->alloc = *dst;
	return 0;
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

/* The tail a Queue consumer may use against `head`, without reading the
 * producers' hot q_tail line on every get. Each thread remembers the last
 * queue it got from, a head it saw there and a tail it read *after* seeing
 * that head — so that tail was at or past that head. While q_head still
 * equals that head (the whole packed 64-bit word: no other consumer moved
 * it; the same no-ABA assumption the CAS below makes), the remembered tail
 * is at or past it too, and every record in between is published. After
 * our own CAS the new head is ours to remember. Anything else reads the
 * real tail. The entry is per thread, so threads sharing a handle never
 * race on it; it holds no resource. */
static _Thread_local struct {
	const void *queue;
	uint64_t created;
	uint64_t head, tail;
} tail_cache;

static uint64_t ring_tail_for(struct ring *r, uint64_t head)
{
	struct ring_shm *q = r->shm;

	if (tail_cache.queue == q &&
	    tail_cache.created == q->hdr.h_created_ns &&
	    tail_cache.head == head && w_pos(tail_cache.tail) != w_pos(head))
		return tail_cache.tail;
	tail_cache.queue = q;
	tail_cache.created = q->hdr.h_created_ns;
	tail_cache.head = head;
	tail_cache.tail =
		atomic_load_explicit(&q->q_tail, memory_order_acquire);
	return tail_cache.tail;
}

/* Queue: take the record at head without a lock. Copy it out first, then
 * claim it by moving q_head with one compare-and-swap: that CAS is the
 * atomic publishing step. If it fails, another consumer took the record
 * (and a producer may even be reusing its bytes), so the copy is dropped
 * and we retry; the bytes at head cannot be reused while q_head still
 * points at them, so a successful CAS proves the copy whole. A consumer
 * killed before its CAS took nothing; after it, the message is its.
 * q_head's item count makes the packed word unique for 2^32 gets, which
 * rules out ABA within one attempt. */
static ssize_t ring_take_plain(struct ring *r, struct get_req *g)
{
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load_explicit(&q->q_head, memory_order_acquire);

	for (;;) {
		uint64_t tail = ring_tail_for(r, head);
		uint32_t avail = w_pos(tail) - w_pos(head);
		uint32_t len;
		void *dst;
		int rc;

		if (avail == 0)
			return -EAGAIN;
		len = __atomic_load_n(&rec_at(r, w_pos(head))->r_len,
				      __ATOMIC_RELAXED);
		if (avail > q->q_capacity || len > q->q_max_msg ||
		    rec_size(len) > avail) {
			/* A stale head: another consumer moved it on. */
			head = atomic_load_explicit(&q->q_head,
						    memory_order_acquire);
			continue;
		}
		rc = get_dest(g, len, &dst);
		if (rc != 0) {
			uint64_t now = atomic_load_explicit(
				&q->q_head, memory_order_acquire);
			if (now == head)
				return rc; /* the message stays queued */
			head = now;
			continue;
		}
		ring_read(r, w_pos(head) + REC_HDR, dst, len);
		IPC__CRASHPOINT("queue.get.copied");
		if (atomic_compare_exchange_strong_explicit(
			    &q->q_head, &head,
			    w_make(w_items(head) + 1,
				   w_pos(head) + rec_size(len)),
			    memory_order_acq_rel, memory_order_acquire)) {
			tail_cache.head = w_make(w_items(head) + 1,
						 w_pos(head) + rec_size(len));
			return len;
		}
		if (g->alloc != NULL) {
			free(*g->alloc);
			*g->alloc = NULL;
		}
	}
}

struct find_arg {
	uint32_t state;
	uint32_t pos;
	bool found;
};

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
		ring_walk(r, atomic_load(&q->q_free), w_pos(head), find_first,
			  &f);
		if (f.found) {
			h = rec_at(r, f.pos);
			rc = get_dest(g, h->r_len, dst);
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
	rc = get_dest(g, h->r_len, dst);
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

/* One attempt: a length, -EAGAIN (empty), -ECLOSED, or an error. */
static ssize_t ring_try_get(struct ring *r, struct get_req *g)
{
	struct ring_shm *q = r->shm;
	uint32_t pos = 0;
	void *dst = NULL;
	ssize_t n;
	int rc;

	if (!q->q_joinable) {
		n = ring_take_plain(r, g);
	} else {
		rc = ring_lock_consumers(r);
		if (rc != 0)
			return rc;
		n = ring_registered(r) ? 0 : ring_register_locked(r);
		if (n == 0)
			n = ring_take_joinable(r, g, &pos, &dst);
		ipc__mutex_unlock(&q->q_cmutex);
		/* A taken record stays put until our task_done, so it is
		 * copied out after the lock is released. */
		if (n > 0)
			ring_read(r, pos + REC_HDR, dst, (size_t)n);
	}
	if (n == -EAGAIN &&
	    atomic_load_explicit(&q->q_closed, memory_order_relaxed))
		n = IPC_ECLOSED;
	return n;
}

static ssize_t ring_get(void *impl, void *buf, size_t cap, void **alloc,
			const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	struct get_req g = { buf, cap, alloc };
	ssize_t n;
	int rc;

	for (;;) {
		n = ring_try_get(r, &g);
		if (n >= 0) {
			IPC__CRASHPOINT("queue.get.published");
			/* The CAS that took it is a locked RMW, ordered on x86
			 * like an unlock (ipc__fence_after_unlock). */
			if (!q->q_joinable)
				ring_wake_unlocked(&q->q_put_seq,
						   &q->q_put_waiters, INT_MAX);
			return n;
		}
		if (n != -EAGAIN)
			return n;
		if (dl->kind == IPC__DL_NOWAIT)
			return -EAGAIN;
		if (ring_spin(r, ready_to_get, GET_SPINS))
			continue;
		rc = ring_sleep(r, &q->q_get_seq, &q->q_get_waiters,
				ready_to_get, dl);
		if (rc != 0)
			return rc;
	}
}

/* ---- task_done and join ------------------------------------------------ */

static int ring_task_done(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	struct find_arg f;
	bool freed;
	int rc;

	if (!ring_registered(r))
		return -EINVAL; /* this consumer never got a task */
	rc = ring_lock_consumers(r);
	if (rc != 0)
		return rc;
	f = (struct find_arg){ REC_TAKEN | (uint32_t)r->slot, 0, false };
	ring_walk(r, atomic_load(&q->q_free), w_pos(atomic_load(&q->q_head)),
		  find_first, &f);
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
		ring_wake(&q->q_put_seq, &q->q_put_waiters, INT_MAX);
	if (ring_unfinished(r) == 0)
		ring_wake(&q->q_join_seq, &q->q_join_waiters, INT_MAX);
	return 0;
}

static int ring_join(void *impl, const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;

	if (ready_to_join(r))
		return 0;
	IPC__CRASHPOINT("queue.join.waiting");
	return ring_sleep(r, &q->q_join_seq, &q->q_join_waiters, ready_to_join,
			  dl);
}

/* ---- The rest ------------------------------------------------------------ */

static long ring_qsize(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load(&q->q_head);
	uint64_t tail = atomic_load(&q->q_tail);
	uint32_t n =
		w_items(tail) - w_items(head) + atomic_load(&q->q_requeued);

	return n > INT32_MAX ? 0 : (long)n; /* a torn snapshot reads as 0 */
}

static long ring_unfinished_count(void *impl)
{
	uint32_t n = ring_unfinished(impl);

	return n > INT32_MAX ? 0 : (long)n;
}

static bool ring_full(void *impl)
{
	return !ready_to_put(impl) &&
	       !atomic_load(&((struct ring *)impl)->shm->q_closed);
}

static int ring_shutdown(void *impl)
{
	struct ring_shm *q = ((struct ring *)impl)->shm;

	atomic_store(&q->q_closed, 1);
	IPC__CRASHPOINT("queue.shutdown.flagged");
	ipc__futex_add_wake(&q->q_get_seq, 1, INT_MAX);
	ipc__futex_add_wake(&q->q_put_seq, 1, INT_MAX);
	ipc__futex_add_wake(&q->q_join_seq, 1, INT_MAX);
	return 0;
}

static void ring_close(void *impl)
{
	struct ring *r = impl;

	if (ring_bias_mine(r) && ring_lock_producers(r) == 0) {
		if (atomic_load(&r->shm->q_bias_state) == BIAS_OWNED) {
			atomic_store(&r->shm->q_bias_state, BIAS_NONE);
			pthread_mutex_unlock(&r->shm->q_bias_reg);
		}
		ipc__mutex_unlock(&r->shm->q_pmutex);
	}

	if (ring_registered(r) && ring_lock_consumers(r) == 0) {
		uint32_t requeued = ring_release_slot(r, (uint32_t)r->slot);
		/* Only the registering thread can unlock; from another thread
		 * this fails and the kernel frees the slot when it exits. */
		pthread_mutex_unlock(&r->slots[r->slot].s_reg);
		ipc__mutex_unlock(&r->shm->q_cmutex);
		if (requeued > 0)
			ring_wake(&r->shm->q_get_seq, &r->shm->q_get_waiters,
				  (int)requeued);
	}
	ipc__handle_free(r);
}

static bool ring_joinable(void *impl)
{
	return ((struct ring *)impl)->shm->q_joinable != 0;
}

static size_t ring_max_msg(void *impl)
{
	return ((struct ring *)impl)->shm->q_max_msg;
}

const struct ipc__queue_ops ipc__ring_ops = {
	.name = "shm",
	.put = ring_put,
	.get = ring_get,
	.task_done = ring_task_done,
	.join = ring_join,
	.qsize = ring_qsize,
	.unfinished = ring_unfinished_count,
	.full = ring_full,
	.shutdown = ring_shutdown,
	.close = ring_close,
	.joinable = ring_joinable,
	.max_msg_size = ring_max_msg,
};
