/* SPDX-License-Identifier: MIT */
/*
 * ring.h — the shared-memory queue backend's segment layout and the
 * internal interfaces between its files.
 *
 * Layering. The files form layers, and every call points down (a file
 * calls only its own layer or the layers below; no file calls up):
 *
 *   ring_ops.c       the operations table queue.c calls: ties the rest
 *      |             together; qsize, full, shutdown, close
 *   ring_put.c   ring_get.c      the put and get loops (attempt, spin,
 *      |           |             sleep); get's lock-free Queue take
 *   ring_bias.c  ring_joinable.c the biased producer; the JoinableQueue
 *      |           |             consumer (slots, take, task_done, join)
 *   ---------------- the core ----------------
 *   ring_wait.c      sleeping: readiness tests, spin, futex sleep (which
 *      |             reaps dead consumers every slice)
 *   ring_reap.c      the consumers' lock and its repair, freeing done
 *      |             records, reaping dead consumers' tasks
 *   ring.c           layout, open and geometry, records (read, write,
 *                    walk, room), the producers' lock, waking, "broken"
 *
 * ring_batch.c (put_many, get_many: above ring_put.c and ring_get.c, whose
 * loops it uses), ring_zc.c (zero copy: above ring_batch.c and
 * ring_get.c), ring_watch.c (waiting on many) and ring_shutdown.c
 * (shutdown_immediate) sit on the core and ring_bias.c.
 * ring_dup.c (a second handle) and ring_stat.c (ipc_stat's view) use only
 * the layout. New operations go above the core and use its interfaces
 * below; each is documented where it is declared here.
 */
#ifndef LIBIPC_RING_H
#define LIBIPC_RING_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "libipc/queue/queue.h"

#define REC_HDR 8u
#define MIN_CAPACITY 4096u
#define DEFAULT_CAPACITY (1u << 20)
/* Waiting without sleeping (ipc__ring_wait_briefly): at most this many
 * pauses of spinning (about 25 ns each here), adapted per handle to how
 * often spinning succeeds, then this many yields of the CPU. */
#define GET_SPINS 4000
#define PUT_SPINS 1000
#define RING_YIELDS 8
#define RING_NOWAIT_LOCK_MS 1 /* see ipc__ring_lock */
#define REVOKE_SPINS 4096     /* see ring_bias_nap */
/* How long a revoker waits for the biased producer to answer before it
 * runs the (slow) barrier instead; see ring_bias.c. */
#define RING_HANDSHAKE_MS 2
/* How long a getter about to sleep lets a biased producer's pending store
 * arrive; see "Waking without a fence" in ring_bias.c. */
#define RING_DRAIN_NS 10000
/* Locked puts in a row by one producer after which it takes the biased
 * (fast) path back (see ring_put.c, "Taking the fast path back"). */
#define RING_REBIAS_PUTS 256
/* How long a JoinableQueue consumer that lost its claim's race naps
 * (ipc__ring_give_way_long); the kernel's timer slack adds up to 50 us
 * for a thread of normal priority. */
#define RING_NAP_NS 20000L
/* A Queue consumer that caught up with a producer still putting lets it
 * get ahead (ring_slip, ring_get.c): it reads q_tail again every
 * RING_SLIP_RELAX pauses (about 200 ns on this project's x86 machine),
 * at most RING_SLIP_POLLS times, until RING_SLIP_BYTES are queued or the
 * tail stops moving. x86 only: elsewhere a pause is no fixed wait (or
 * none at all), and the slip would only read the producer's line. */
#define RING_SLIP_BYTES 1024u
#define RING_SLIP_POLLS 16
#define RING_SLIP_RELAX 8
#if defined(__x86_64__) || defined(__i386__)
#define RING_CAN_SLIP 1
#else
#define RING_CAN_SLIP 0
#endif
/* Registrations of the biased producer (struct ring_bias): how many
 * revoked owners may still hold theirs while a new owner takes one. */
#define RING_BIAS_SLOTS 8
/* Waiting for room (ipc__ring_wait_room): a sleeping producer first waits
 * for an eighth of the ring to be free (RING_ROOM_BATCH_DIV), for at most
 * RING_ROOM_BATCH_MS, before it waits for room for its own record alone.
 */
#define RING_ROOM_BATCH_DIV 8
#define RING_ROOM_BATCH_MS 2
/* What one watcher (ipc__queue_watch, ring_watch.c) adds to q_get_waiters:
 * a waker that sees a count this high wakes every sleeper on q_get_seq,
 * so that no watcher takes the one wake-up a blocked getter needed. */
#define RING_WATCHER (1u << 16)

/* Record states (JoinableQueue; a plain Queue leaves them READY). A READY
 * state carries a tag of the record's item number (ring_ready_tag): a
 * JoinableQueue get that moved head past a record marks it by a
 * compare-and-swap from that item's tag, and so does the repair that
 * finishes a dead claimer's claim (ring_reap.c), so a claim noted long
 * ago finds another record's tag there, not READY. */
enum {
	REC_REQUEUED = 1,    /* behind head: its consumer died, get it again */
	REC_DONE = 2,	     /* behind head: task_done'd, space to free */
	REC_DROPPED = 3,     /* dropped by shutdown_immediate: counted done */
	REC_TAKEN = 0x10000, /* | slot (below 2^16): got by it, not done yet */
};
/* READY: neither TAKEN nor any of the small states (low bits 0). */
#define REC_READY_MASK (REC_TAKEN | 3u)

static inline bool rec_ready(uint32_t state)
{
	return (state & REC_READY_MASK) == 0;
}

/* The READY state of the record with item number items: 29 bits of it, in
 * the bits a READY state may use (2..15 and 17..31). */
static inline uint32_t ring_ready_tag(uint32_t items)
{
	return (items & 0x3fffu) << 2 | (items >> 14) << 17;
}
/* A TAKEN record's state also carries, above REC_TAKEN, the generation
 * of its take (see "Take order" in ring_joinable.c): REC_TAKEN | slot |
 * gen << REC_GEN_SHIFT. REC_OWNER(state) is REC_TAKEN | slot for it. */
#define REC_GEN_SHIFT 17
#define REC_GEN_MAX ((1u << (32 - REC_GEN_SHIFT)) - 1u)
#define REC_OWNER(state) ((state) & ((1u << REC_GEN_SHIFT) - 1u))

enum { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
/* In q_free: a walk under q_cmutex is reading from it (ring_reap.c). */
#define FREE_FROZEN ((uint64_t)1 << 63)
#define FREE_COUNT_MASK 0x7fffffffu
/* q_closed: shut down, or found damaged (see ipc__ring_broken). */
/* CLOSED_DROP: with CLOSED_SHUTDOWN, by shutdown_immediate (its queued
 * tasks are dropped, not drained). */
enum { CLOSED_SHUTDOWN = 1, CLOSED_BROKEN = 2, CLOSED_DROP = 4 };
enum { BIAS_NONE = 0, BIAS_OWNED = 1, BIAS_OFF = 2 };
/* q_flags. RING_F_BIAS: the creator's kernel has membarrier(2), so a
 * producer may be biased (ring_bias.c). Probed by the creator, so that
 * neither producer nor consumer makes the probe's system call. */
enum { RING_F_BIAS = 1u };
/* b_revoke: none, posted, or posted and followed by a barrier. */
enum { REVOKE_NONE = 0, REVOKE_POSTED = 1, REVOKE_FENCED = 2 };
/* q_intent: the multi-word consumer operation in progress, rolled forward
 * by the repair: a task_done, or the drop of ipc_queue_shutdown_immediate
 * (ipc__ring_drop_locked). */
enum {
	INTENT_NONE = 0,
	INTENT_TASK_DONE = 1,
	INTENT_DROP = 2,      /* dropping the requeued tasks */
	INTENT_DROP_HEAD = 3, /* dropping the task at q_intent_pos */
};
/* A sequence word (q_get_seq, q_put_seq, q_join_seq): bit 0 says a sleeper
 * waits for a wake (see "Sleeping"), the rest count changes. SEQ_STEP
 * changes the count and keeps the bit. */
enum { SEQ_ARMED = 1u, SEQ_STEP = 2u };
/* Which side's spin budget (struct ring.spin). */
enum { SPIN_GET = 0, SPIN_PUT = 1 };

struct rec_hdr {
	uint32_t r_len;
	_Atomic uint32_t r_state;
};

/* A JoinableQueue consumer: one thread of one process using one handle.
 * All fields of the first line but s_reg change under q_cmutex. s_pid,
 * s_tid and s_handle say whose it is; only the robust mutex says whether
 * that thread is alive, so they are never trusted alone.
 *
 * The second line is the consumer's own: the task_done that needs no lock
 * (see "Get and task_done without the lock" in ring_joinable.c) writes it, and
 * nobody else does while the consumer lives. s_done counts the tasks done
 * that way through this slot, ever (mod 2^32): it is never reset, not even
 * when the slot is freed and registered again, so that no count ever moves
 * from one word to another (a reader summing them could see it twice).
 * Tasks done are q_done plus every slot's s_done (ring_done). s_intent,
 * s_intent_pos and s_intent_done are that task_done's intent record, which
 * the release of a dead consumer's slot rolls forward
 * (ipc__ring_release_slot). */
struct ring_slot {
	pthread_mutex_t s_reg;	  /* held by the registered consumer thread */
	_Atomic uint32_t s_state; /* SLOT_* */
	int32_t s_pid;		  /* the consumer's process */
	int32_t s_tid;		  /* and thread (kernel id) */
	uint32_t s_gen;		  /* its newest task's take generation */
	uint64_t s_handle; /* and handle (struct ring.id in that process) */
	_Atomic uint32_t s_done IPC__ALIGNED;
	_Atomic uint32_t s_intent; /* INTENT_NONE or INTENT_TASK_DONE */
	_Atomic uint32_t s_intent_pos;
	_Atomic uint32_t s_intent_done;
	/* The claim at head in progress (head | 1), or 0: see "Claiming the
	 * record at head" in ring_reap.c. */
	_Atomic uint64_t s_claim;
} IPC__ALIGNED;
_Static_assert(sizeof(struct ring_slot) == 2 * IPC__CACHELINE,
	       "a consumer slot is two cache lines");
_Static_assert(IPC_QUEUE_MAX_CONSUMERS <= REC_TAKEN,
	       "a slot number fits below the TAKEN bit of a record state");

/* A registration of the biased producer (ring_bias.c). b_reg is held by
 * the owner thread while it owns through this registration, and until it
 * notices a revocation; b_busy and b_cpu are the owner's, b_revoke a
 * revoker's. b_cpu: the CPU the owner last put on, or -1 (see "Waking
 * without a fence" in ring_bias.c). b_exp: the owner's process registered
 * for the expedited barrier (set under q_pmutex when it took this slot).
 * Several exist so that a new owner need not wait for a revoked one that
 * has not run since (its registration stays held until it does). */
struct ring_bias {
	pthread_mutex_t b_reg;
	_Atomic uint32_t b_busy;
	_Atomic uint32_t b_revoke;
	_Atomic int32_t b_cpu;
	_Atomic uint32_t b_exp;
} IPC__ALIGNED;
_Static_assert(sizeof(struct ring_bias) == IPC__CACHELINE,
	       "a registration is one cache line");

struct ring_shm {
	struct ipc__seg_hdr hdr;

	/* Geometry: written once at creation, validated by openers. */
	uint32_t q_capacity;
	uint32_t q_max_msg;
	uint32_t q_maxsize; /* 0: no item limit */
	uint32_t q_joinable;
	uint32_t q_nslots;
	uint32_t q_flags; /* RING_F_*, set by the creator */
	uint64_t q_slots_off;
	uint64_t q_data_off;

	/* Producer side, under q_pmutex. The caches hold earlier values of
	 * q_head and q_free: always behind the truth, so at worst they make
	 * a producer re-read. */
	pthread_mutex_t q_pmutex IPC__ALIGNED;
	uint64_t q_pc_head;
	uint32_t q_pc_free;
	/* The last locked put's producer (its thread id << 32 | its handle
	 * id) and how many locked puts it made in a row: when one producer
	 * is alone again, it takes the fast path back. A hint only: a damaged
	 * value costs a revocation at worst. */
	uint32_t q_pc_streak;
	uint64_t q_pc_putter;

	/* Written by producers (release), read by everyone (acquire). */
	_Atomic uint64_t q_tail IPC__ALIGNED;

	/* The biased producer (see "Fast producer" and ring_bias.c).
	 * q_bias_state and q_bias_slot (the owner's registration while
	 * OWNED) change under q_pmutex. */
	_Atomic uint32_t q_bias_state IPC__ALIGNED;
	_Atomic uint32_t q_bias_slot;
	struct ring_bias q_bias[RING_BIAS_SLOTS];

	/* Consumer side, under q_cmutex. */
	pthread_mutex_t q_cmutex IPC__ALIGNED;
	uint32_t q_intent; /* INTENT_*: the task_done in progress */
	uint32_t q_intent_pos;
	uint32_t q_intent_done;
	_Atomic uint32_t q_requeued; /* REQUEUED records behind head */
	_Atomic uint32_t q_done;     /* tasks done, ever (mod 2^32) */

	/* Written by consumers (release), read by everyone (acquire). */
	_Atomic uint64_t q_head IPC__ALIGNED;
	/* JoinableQueue: where the records not yet freed begin, with a count
	 * of records freed (w_make(count, pos), as q_head; the count's top
	 * bit is FREE_FROZEN): moved by a compare-and-swap, with or without
	 * q_cmutex (ipc__ring_advance_free), and the count makes that word
	 * unique for 2^31 frees. */
	_Atomic uint64_t q_free;

	/* Sleeping: sequence words (SEQ_ARMED and a count) and waiter counts
	 * (see "Sleeping"). The counts only tell a leaving sleeper whether
	 * others remain, and ipc_stat how many sleep. */
	_Atomic uint32_t q_get_seq IPC__ALIGNED;
	_Atomic uint32_t q_get_waiters; /* getters + RING_WATCHER * watchers */
	_Atomic uint32_t q_put_seq IPC__ALIGNED;
	_Atomic uint32_t q_put_waiters;
	/* Producers asleep waiting for room for their own record, not for a
	 * batch of room (see ipc__ring_wake_room). A stale count from a dead
	 * one only makes wakers wake for every freed record, as they would
	 * without batching. */
	_Atomic uint32_t q_put_urgent;
	_Atomic uint32_t q_join_seq IPC__ALIGNED;
	_Atomic uint32_t q_join_waiters;
	_Atomic uint32_t q_closed; /* CLOSED_* bits */
	/* JoinableQueue: one past the highest slot ever registered (raised
	 * under q_cmutex before the slot is used), so that summing the
	 * slots' s_done stops there. Bounded by q_nslots when read. */
	_Atomic uint32_t q_slots_hw;
	/* The claim in progress under INTENT_DROP_HEAD, as s_claim: the drop's
	 * (ring_drop_queued) or a settle's (ring_settle_orphan). */
	_Atomic uint64_t q_intent_head;
	/* Not 0: a dead dropper's claim (or several) that its repair could
	 * not decide, a live getter noting the same head, waits behind head
	 * for a reap to settle it (ring_settle_orphan). The value is only a
	 * flag: the settle finds the claims itself. */
	_Atomic uint64_t q_orphan_head;
};

_Static_assert(offsetof(struct ring_shm, q_tail) ==
		       offsetof(struct ring_shm, q_pmutex) + IPC__CACHELINE,
	       "the producers' lock and the fields it guards fill one line");

/* A process's handle. */
struct ring {
	struct ipc__seg seg;
	struct ring_shm *shm;
	uint8_t *data;
	struct ring_slot *slots;
	/* The geometry, copied at open after validation: a peer may rewrite
	 * the segment's copy, never these. */
	uint32_t cap, mask, max_msg, maxsize, nslots;
	bool joinable;
	/* The bias_ fields are written by the holder of a registration
	 * taken through this handle and read by every thread that puts
	 * through it: atomics, relaxed (ipc__ring_bias_mine says why that is
	 * enough). bias_key: the registration (slot + 1) this handle's owner
	 * thread put through, 0 for none. bias_holder[s]: the thread of ours
	 * that took registration s through this handle, or 0 (at close, the
	 * registrations still held, see ipc__ring_bias_release). */
	_Atomic uint32_t bias_key;
	_Atomic unsigned bias_gen;	 /* fork generation we became it in */
	const void *_Atomic bias_thread; /* ipc__thread_self() of the owner */
	_Atomic int32_t bias_holder[RING_BIAS_SLOTS];
	uint64_t bias_head; /* the owner's earlier q_head and q_free */
	uint32_t bias_free;
	uint64_t id; /* unique among this process's handles, ever */
	/* How long this handle spins before yielding (SPIN_GET, SPIN_PUT):
	 * halved when a spin fails (to at least spin_max / 64), doubled when
	 * one succeeds, 0 on a machine
	 * or affinity with one CPU. Threads sharing the handle race on it
	 * harmlessly: it is a hint, never a bound on anything. */
	_Atomic int spin[2];
	int spin_max[2];
	/* Zero-copy state (ring_zc.c), NULL until used; published whole
	 * with one CAS, since threads sharing the handle may race to make it.
	 */
	struct ring_zc *_Atomic zc;
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

/* The record header at pos. Positions are multiples of 8 (REC_HDR and
 * every record size are); one read from a damaged segment may not be, and
 * is rounded down here so that the header's atomic fields stay aligned
 * (ring_words_sane also refuses it). */
static inline struct rec_hdr *rec_at(struct ring *r, uint32_t pos)
{
	return (struct rec_hdr *)(r->data + (pos & r->mask & ~(REC_HDR - 1)));
}

/* The tail a consumer may use against the head it read, without reading
 * the producers' hot q_tail line on every get (ipc__ring_tail_for). Each
 * thread remembers, for the last handle it got from (by its id, unique in
 * the process for ever, so a handle closed and another opened at the same
 * address never match), a head it saw there and a tail it read *after*
 * seeing that head: every record in between was published. Head only
 * moves forward, so while the head read lies in [that head, that tail) by
 * item count (other consumers may have moved it since), that tail is
 * still past it with every record in between published. A head read stale
 * may find reused bytes there, as it may with any tail: the
 * compare-and-swap on q_head that claims the record then fails. Anything
 * else reads the real tail. One per thread (thread-local, in each file
 * that uses one), so threads never race on it; it holds no resource. id 0
 * is never a handle's (ipc__ring_new_id), so the empty entry matches none.
 */
struct ring_tail_cache {
	uint64_t id;
	uint64_t head, tail;
};

static inline bool ipc__ring_tail_cached(struct ring *r,
					 const struct ring_tail_cache *c,
					 uint64_t head)
{
	return c->id == r->id && w_items(head) - w_items(c->head) <
					 w_items(c->tail) - w_items(c->head);
}

/* Read the real tail against head, and remember both. */
static inline uint64_t
ipc__ring_tail_fresh(struct ring *r, struct ring_tail_cache *c, uint64_t head)
{
	c->id = r->id;
	c->head = head;
	c->tail = atomic_load_explicit(&r->shm->q_tail, memory_order_acquire);
	return c->tail;
}

static inline uint64_t
ipc__ring_tail_for(struct ring *r, struct ring_tail_cache *c, uint64_t head)
{
	return ipc__ring_tail_cached(r, c, head)
		       ? c->tail
		       : ipc__ring_tail_fresh(r, c, head);
}

struct get_req {
	void *buf;
	size_t cap;
	void **alloc;
	/* Not NULL: lend instead of copying (ring_zc.c): the taken record's
	 * position goes here, and nothing is copied. */
	uint32_t *lend;
};

/* Called for each record by ipc__ring_walk. */
typedef void (*rec_visit)(struct ring *r, uint32_t pos, struct rec_hdr *h,
			  void *arg);

/* What a closed queue's put (or drained get) returns. */
static inline int ring_closed_error(uint32_t closed)
{
	return (closed & CLOSED_BROKEN) ? -ENOTRECOVERABLE : IPC_ECLOSED;
}

/* Can these published words be true? They are multiples of 8, head and
 * free never pass the tail, nor free the head, and each item takes at
 * least REC_HDR bytes. Read
 * them free, head, tail, in that order (or under the lock that stops
 * them moving): a torn snapshot then still passes. */
static inline bool ring_words_sane(struct ring *r, uint64_t tail, uint64_t head,
				   uint32_t free)
{
	uint32_t used = w_pos(tail) - (r->joinable ? free : w_pos(head));

	return ((w_pos(tail) | w_pos(head) | (r->joinable ? free : 0)) &
		(REC_HDR - 1)) == 0 &&
	       used <= r->cap && w_pos(tail) - w_pos(head) <= used &&
	       w_items(tail) - w_items(head) <= r->cap / REC_HDR;
}

/* Is pos a record boundary's alignment? */
static inline bool ring_aligned(uint32_t pos)
{
	return (pos & (REC_HDR - 1)) == 0;
}

/* Tasks done, ever (mod 2^32): q_done plus every slot's s_done (see
 * struct ring_slot). Each word only grows, so a sum read word by word is
 * at most the count at its end. */
static inline uint32_t ring_done(struct ring *r)
{
	struct ring_shm *q = r->shm;
	uint32_t done = atomic_load(&q->q_done);
	uint32_t hw =
		atomic_load_explicit(&q->q_slots_hw, memory_order_relaxed);

	if (hw > r->nslots)
		hw = r->nslots;
	for (uint32_t i = 0; i < hw; i++)
		done += atomic_load(&r->slots[i].s_done);
	return done;
}

/* Tasks put and not yet done (JoinableQueue). The count of tasks done is
 * read first, then the tail: read the other way round, a task put and
 * done in between would make up for an older one still undone, and join
 * could return early. */
static inline uint32_t ring_unfinished(struct ring *r)
{
	uint32_t done = ring_done(r);

	return w_items(atomic_load(&r->shm->q_tail)) - done;
}

/* ---- Hot-path helpers, inline: every put and get uses them ----------- */

/* memcpy(dst, src, len) for 1 <= len, dst and src apart. Most messages
 * are small, and for them the call into the C library's memcpy costs more
 * than the copy: up to 64 bytes move as two fixed-size copies that overlap
 * in the middle (the compiler makes each a few loads and stores); the
 * rest goes to memcpy. */
static inline void ring_copy(void *dst, const void *src, size_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (len > 64) {
		memcpy(d, s, len);
	} else if (len >= 32) {
		memcpy(d, s, 32);
		memcpy(d + len - 32, s + len - 32, 32);
	} else if (len >= 16) {
		memcpy(d, s, 16);
		memcpy(d + len - 16, s + len - 16, 16);
	} else if (len >= 8) {
		memcpy(d, s, 8);
		memcpy(d + len - 8, s + len - 8, 8);
	} else if (len >= 4) {
		memcpy(d, s, 4);
		memcpy(d + len - 4, s + len - 4, 4);
	} else {
		d[0] = s[0];
		d[len - 1] = s[len - 1];
		d[len / 2] = s[len / 2];
	}
}

/* Copy len bytes into / out of the ring at pos, wrapping at the end. A
 * 0-byte message may come from NULL or go into NULL (ipc.h allows both),
 * and memcpy may not be given NULL even for 0 bytes: no copy then. */
static inline void ring_write(struct ring *r, uint32_t pos, const void *src,
			      size_t len)
{
	size_t off = pos & r->mask, first = r->mask + 1 - off;

	if (len == 0)
		return;
	if (len <= first) {
		ring_copy(r->data + off, src, len);
	} else {
		memcpy(r->data + off, src, first);
		memcpy(r->data, (const uint8_t *)src + first, len - first);
	}
}

static inline void ipc__ring_read(struct ring *r, uint32_t pos, void *dst,
				  size_t len)
{
	size_t off = pos & r->mask, first = r->mask + 1 - off;

	if (len == 0)
		return;
	if (len <= first) {
		ring_copy(dst, r->data + off, len);
	} else {
		memcpy(dst, r->data + off, first);
		memcpy((uint8_t *)dst + first, r->data, len - first);
	}
}

/* Room for a record of `need` bytes, and under the item limit? Requeued
 * tasks count as items; q_requeued lives on the consumers' busy line, so it
 * is read only when an item limit makes it matter. */
static inline bool ipc__ring_has_room(struct ring *r, uint64_t tail,
				      uint64_t head, uint32_t free,
				      uint32_t need)
{
	struct ring_shm *q = r->shm;
	uint32_t items, used;

	/* A Queue frees a record as its get moves head; a JoinableQueue
	 * only at task_done, tracked by q_free. */
	if (!r->joinable)
		free = w_pos(head);
	/* A cached free position can be more than a lap behind the tail
	 * (another path put meanwhile): then the distance wraps past the
	 * capacity. That says "stale", not "room": the caller re-reads. */
	used = w_pos(tail) - free;
	if (used > r->cap || r->cap - used < need || !ring_aligned(w_pos(tail)))
		return false; /* stale, full, or damaged: the caller re-reads */
	if (r->maxsize == 0)
		return true;
	items = w_items(tail) - w_items(head);
	if (r->joinable)
		items += atomic_load_explicit(&q->q_requeued,
					      memory_order_relaxed);
	return items < r->maxsize;
}

/* Write a record past tail, where no consumer looks yet. The state is
 * stored last, with release: a JoinableQueue getter whose claim succeeds
 * on it (even one with a stale head, see ring_ready_tag) finds the record
 * whole. */
static inline void ipc__ring_put_record(struct ring *r, uint64_t tail,
					const void *msg, uint32_t len)
{
	struct rec_hdr *h = rec_at(r, w_pos(tail));

	h->r_len = len;
	ring_write(r, w_pos(tail) + REC_HDR, msg, len);
	atomic_store_explicit(&h->r_state, ring_ready_tag(w_items(tail)),
			      memory_order_release);
}

/* Where the caller's copy goes: buf, or a new malloc'd buffer. */
static inline int ipc__ring_get_dest(struct get_req *g, uint32_t len,
				     void **dst)
{
	if (g->lend != NULL) { /* lent in place (ring_zc.c): no copy */
		*dst = NULL;
		return 0;
	}
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

/* Wake up to n sleepers on seq if one asked for it (SEQ_ARMED, see
 * "Sleeping"). The caller's publishing store must be ordered before the
 * read of seq (a sleeper arms before re-reading the state: see
 * ipc__ring_sleep). ipc__ring_wake_unlocked is for callers that made a
 * locked read-modify-write since the store (a robust mutex unlock, a CAS,
 * a seq_cst store), which orders it on x86 without a fence
 * (ipc__fence_after_unlock); ipc__ring_wake fences itself.
 *
 * Only the waker whose compare-and-swap clears the arm makes the system
 * call: one wake per sleep, however many messages follow before the
 * sleeper runs. A failed CAS means seq changed since we read it armed:
 * another waker cleared it (and wakes), or a sleeper armed it again after
 * our load, and a sleeper that arms re-reads the state after it, which our
 * store precedes. */
/* How many to wake on seq: n, or every sleeper when a watcher sleeps
 * there too (ring_watch.c), so that a watcher never takes the one wake-up
 * a blocked getter needed. Watchers count RING_WATCHER each in the waiter
 * count that follows each sequence word. Read only on the way to a system
 * call: no cost to a waker that finds nobody armed. */
_Static_assert(offsetof(struct ring_shm, q_get_waiters) ==
			       offsetof(struct ring_shm, q_get_seq) + 4 &&
		       offsetof(struct ring_shm, q_put_waiters) ==
			       offsetof(struct ring_shm, q_put_seq) + 4 &&
		       offsetof(struct ring_shm, q_join_waiters) ==
			       offsetof(struct ring_shm, q_join_seq) + 4,
	       "each waiter count follows its sequence word");
static inline int ring_wake_count(_Atomic uint32_t *seq, int n)
{
	_Atomic uint32_t *waiters = seq + 1;

	return atomic_load_explicit(waiters, memory_order_relaxed) >=
			       RING_WATCHER
		       ? INT_MAX
		       : n;
}

static inline void ipc__ring_wake_unlocked(_Atomic uint32_t *seq, int n)
{
	uint32_t s;

	ipc__fence_after_unlock();
	s = atomic_load_explicit(seq, memory_order_relaxed);
	if ((s & SEQ_ARMED) &&
	    atomic_compare_exchange_strong_explicit(
		    seq, &s, s + 1, memory_order_relaxed, memory_order_relaxed))
		ipc__futex_wake(seq, ring_wake_count(seq, n));
}

/* The registration through which the calling thread is this handle's
 * biased producer, or NULL. A thread that exits while it owns leaves
 * r->bias_key set, and a later thread of the process may get its
 * thread-local storage; but the kernel cleared the id in b_reg's lock
 * word at that exit (a revoker may then have freed it and a new owner
 * taken it), so the word must name our own thread's id. Our own id, not
 * one the handle remembers: threads sharing the handle read the bias_
 * fields while a new owner's ipc__ring_bias_take rewrites them, and a
 * thread that read its own stale bias_thread and then the new owner's id,
 * equal to the word, put fast beside that owner (a lost message). The
 * registration returned is the one the word was checked in: re-reading
 * bias_key could name a newer owner's. Only the holder of a registration
 * writes the fields of that ownership, so once the word names us, the
 * registration is ours until we give it up; it may be a revoked one
 * (whose b_revoke says so: ipc__ring_put_fast gives it up), so a caller
 * that holds q_pmutex compares it with q_bias_slot
 * (ipc__ring_bias_current). */
static inline struct ring_bias *ipc__ring_bias_mine(struct ring *r)
{
	uint32_t key = atomic_load_explicit(&r->bias_key, memory_order_relaxed);
	struct ring_bias *b;

	if (key == 0 ||
	    atomic_load_explicit(&r->bias_gen, memory_order_relaxed) !=
		    ipc__fork_gen() ||
	    atomic_load_explicit(&r->bias_thread, memory_order_relaxed) !=
		    ipc__thread_self())
		return NULL;
	b = &r->shm->q_bias[(key - 1) % RING_BIAS_SLOTS];
	return ipc__mutex_owner(&b->b_reg) == ipc__tid_self() ? b : NULL;
}

/* q_pmutex held, state BIAS_OWNED: is the calling thread the owner, through
 * the queue's current registration? */
static inline bool ipc__ring_bias_current(struct ring *r)
{
	struct ring_bias *b = ipc__ring_bias_mine(r);

	return b != NULL &&
	       b == &r->shm->q_bias[atomic_load(&r->shm->q_bias_slot) %
				    RING_BIAS_SLOTS];
}

/* What a sleeper waits for (ring_wait.c). `need` is the record size a
 * put waits room for; the other tests ignore it. Each test must be exactly
 * what the operation's next attempt needs: a test that says "ready" while
 * the attempt still fails turns the wait into a busy loop. */
typedef bool (*ring_ready_fn)(struct ring *r, uint32_t need);

/* What a record search looks for and finds (a rec_visit's argument). */
struct find_arg {
	uint32_t state;
	uint32_t pos;
	bool found;
};

/* ---- ring.c: the core's bottom: layout, records, producers' lock, wake - */

/* Mark the queue broken for every process (a peer damaged the segment),
 * wake every sleeper, and return -ENOTRECOVERABLE. */
int ipc__ring_broken(struct ring *r);
/* Lock one of the queue's robust mutexes before dl, running repair after
 * a dead holder: 0 or a negative errno. IPC_NOWAIT still waits briefly
 * (RING_NOWAIT_LOCK_MS) for a running holder, then returns -EAGAIN. */
int ipc__ring_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		   ipc__repair_fn repair, void *arg);
/* q_pmutex, with the producer side's repair (a sanity check). */
int ipc__ring_lock_producers(struct ring *r, const struct ipc__deadline *dl);

/* A consumer gives way (docs/design.md, "Consumers that give way"). A
 * get whose compare-and-swap of q_head failed lost its race to another
 * consumer running on another CPU right now. Retrying at once has two
 * CPUs fight over q_head and the records while the producers, when
 * processes outnumber CPUs, wait for one; so it yields this CPU first, to
 * a producer if one is runnable here. With nothing else to run,
 * sched_yield returns at once and the get retries as before. Never under
 * IPC_NOWAIT (a caller that asked not to wait is not descheduled for
 * others) nor with dl NULL (a claim under q_cmutex, or the drop of
 * shutdown_immediate). True if dl passed meanwhile: the yield is a wait,
 * and a get that keeps losing its race stops at its deadline. */
static inline bool ipc__ring_give_way(const struct ipc__deadline *dl)
{
	if (dl == NULL || dl->kind == IPC__DL_NOWAIT)
		return false;
	sched_yield();
	return dl->kind != IPC__DL_FOREVER && ipc__deadline_passed(dl);
}

/* A JoinableQueue's claim gives way for longer: it naps RING_NAP_NS (or
 * until dl) instead of yielding. Its producers are mostly asleep waiting
 * for room (the consumers' get and task_done cost far more than a put),
 * so a yield hands the CPU to another consumer, which then races the
 * same winner; a nap takes the loser off the CPU for a while, and the
 * winner runs its claims and task_dones without its lines being pulled
 * away (docs/design.md, "Consumers that give way"). The same rules as
 * ipc__ring_give_way otherwise. */
static inline bool ipc__ring_give_way_long(const struct ipc__deadline *dl)
{
	if (dl == NULL || dl->kind == IPC__DL_NOWAIT)
		return false;
	return ipc__deadline_nap(dl, RING_NAP_NS);
}

/* A record at *head that cannot be (its length against the tail c gave):
 * 0 if another consumer moved q_head on since it was read (*head is the
 * new one) or a fresh look finds it sound (c was stale), both meaning
 * "retry"; else the words or the record are damaged: the queue is broken.
 * With q_head unchanged, [head, tail) holds only published records, each
 * written whole before the tail passed it, so a fresh tail and length
 * that still disagree prove damage. */
int ipc__ring_head_recheck(struct ring *r, uint64_t *head,
			   struct ring_tail_cache *c);
/* Visit every record in [from, to); false if they do not tile the range
 * exactly (the segment is damaged). */
bool ipc__ring_walk(struct ring *r, uint32_t from, uint32_t to, rec_visit visit,
		    void *arg);
/* Wake up to n sleepers on seq if one armed it (one system call per
 * arming, none when nobody sleeps). The caller's publishing store must be
 * ordered before this reads seq: ipc__ring_wake fences itself;
 * ipc__ring_wake_unlocked relies on a locked RMW since the store (a robust
 * mutex unlock, a CAS, a seq_cst store: ipc__fence_after_unlock). */
void ipc__ring_wake(_Atomic uint32_t *seq, int n);
/* Room was freed (a get moved q_head, a task_done moved q_free): wake the
 * producers sleeping for room if one armed q_put_seq and either one of
 * them waits for its own record alone (q_put_urgent) or a batch of room is
 * free (an eighth of the ring: see ipc__ring_wait_room). Otherwise the arm
 * stays set for the next freeing call. The caller's publishing store must
 * be ordered as for ipc__ring_wake_unlocked (a locked RMW since it). */
void ipc__ring_wake_room(struct ring *r);
/* Set a new handle's spin budgets (ring.c, at open and dup). */
void ipc__ring_spin_init(struct ring *r);
/* A handle id never used before in this process (struct ring.id). */
uint64_t ipc__ring_new_id(void);

/* ---- ring_reap.c: the consumers' lock, freeing, reaping ---------------- */

/* q_cmutex, with the consumer side's repair after a dead holder. */
int ipc__ring_lock_consumers(struct ring *r, const struct ipc__deadline *dl);
/* Advance q_free over DONE (and DROPPED) records: true if it moved. No
 * lock needed, but nothing moves while a walk holds it frozen (see "Walks
 * and frees" in ring_reap.c). */
bool ipc__ring_advance_free(struct ring *r);
/* q_cmutex held: keep q_free where it is while walking from it, and the
 * position it holds (ipc__ring_freeze_free); let it move again and free
 * what was left meanwhile (ipc__ring_thaw_free). */
uint32_t ipc__ring_freeze_free(struct ring *r);
void ipc__ring_thaw_free(struct ring *r);
/* The same, then wake the producers waiting for room if it moved
 * (JoinableQueue): for whoever may find done records left unfreed. */
bool ipc__ring_free_done(struct ring *r);
/* The same, for a producer short of room (never with q_cmutex held): a
 * word left frozen by a walker that died, or damaged, is thawed too, so
 * that its room does not wait until someone takes q_cmutex. */
bool ipc__ring_free_stale(struct ring *r);
/* Roll the slot's lock-free task_done forward from its intent record
 * (the consumer is dead or gone), requeue the slot's TAKEN records and
 * free the slot (q_cmutex held): how many were requeued. The caller wakes
 * getters; joiners are woken here if a task_done was rolled forward. */
uint32_t ipc__ring_release_slot(struct ring *r, uint32_t slot);
/* Claim the record at q_head (JoinableQueue, no lock needed; see
 * "Claiming the record at head" in ring_reap.c): move head past it, then
 * set its state from its READY tag to `claim`, with the claim noted in
 * *note meanwhile. With g, its destination comes first
 * (ipc__ring_get_dest: an error leaves the task queued). The length (the
 * record at *pos), -EAGAIN (empty) or an error. A claim lost to another
 * consumer gives way (ipc__ring_give_way_long, with dl) before it retries. */
ssize_t ipc__ring_claim_head(struct ring *r, uint32_t claim, struct get_req *g,
			     void **dst, uint32_t *pos, _Atomic uint64_t *note,
			     const struct ipc__deadline *dl);
/* Requeue every dead consumer's tasks, waking getters (q_cmutex held). */
void ipc__ring_reap_locked(struct ring *r);
/* The same if q_cmutex is free right now; nothing for a plain Queue. */
void ipc__ring_reap(struct ring *r);
/* JoinableQueue, q_cmutex held, the queue shut down and its tail final
 * (no producer can publish): drop every queued and requeued task, each
 * counted done, under an intent record the repair rolls forward. */
void ipc__ring_drop_locked(struct ring *r);

/* ---- ring_wait.c: sleeping --------------------------------------------- */

/* The readiness tests: a get would find a record (or the queue closed),
 * a put would find room for need bytes (or closed), a join would return. */
bool ipc__ring_ready_to_get(struct ring *r, uint32_t need);
bool ipc__ring_ready_to_put(struct ring *r, uint32_t need);
bool ipc__ring_ready_to_join(struct ring *r, uint32_t need);
/* Wait for ready(r, need) without sleeping: spin on side's budget, then
 * yield the CPU up to RING_YIELDS times (the peer may need this CPU), as
 * long as dl allows. True if it became ready. */
bool ipc__ring_wait_briefly(struct ring *r, int side, ring_ready_fn ready,
			    uint32_t need, const struct ipc__deadline *dl);
/* Arm seq before reading the state a sleep (or a watch) waits on: the
 * armed value to futex-wait on. Any waker that changes that state later
 * sees the arm and wakes (see ipc__ring_sleep). On q_get_seq with a biased
 * producer running elsewhere, that rests on a short wait for its pending
 * store (RING_DRAIN_NS; *drained, if not NULL, says whether it ran). */
uint32_t ipc__ring_arm(struct ring *r, _Atomic uint32_t *seq, bool *drained);
/* A sleeper or watcher counted with `add` in waiters leaves: re-arm seq
 * for those still counted, so that the next change wakes them too. */
void ipc__ring_leave(_Atomic uint32_t *seq, _Atomic uint32_t *waiters,
		     uint32_t add);
/* A put of need bytes found no room: on a JoinableQueue, were done
 * records nobody freed (a task_done killed before it freed) in the way,
 * and is there room now that they are freed? A put's loop asks once,
 * before it waits, so that even a put that cannot wait uses that room;
 * once only, since its attempt may fail for another reason (its lock). */
bool ipc__ring_room_freed(struct ring *r, uint32_t need);
/* A put of need bytes found no room: wait (briefly, then asleep) until
 * there may be some, to try again. 0, or the deadline's error, or
 * -ENOTRECOVERABLE. */
int ipc__ring_wait_room(struct ring *r, uint32_t need,
			const struct ipc__deadline *dl);
/* Sleep on seq, counted in waiters, until ready(r, need) or dl: 0, the
 * deadline's error, or -ENOTRECOVERABLE (broken). Reaps every slice. */
int ipc__ring_sleep(struct ring *r, _Atomic uint32_t *seq,
		    _Atomic uint32_t *waiters, ring_ready_fn ready,
		    uint32_t need, const struct ipc__deadline *dl);

/* ---- ring_bias.c: the biased producer ----------------------------------- */

/* Become the biased producer (q_pmutex held, state BIAS_NONE) through a
 * free registration, or one this thread still holds through this handle;
 * with none, the state stays NONE. expedite: this queue has more than one
 * producer, so revocations will be frequent: register for the fast barrier
 * first (one system call), so that revoking us costs microseconds, not a
 * grace period. */
void ipc__ring_bias_take(struct ring *r, bool expedite);
/* q_pmutex held, on the locked path: give up a registration the calling
 * thread still holds through this handle if it is not the current one
 * (revoked, and not noticed since: it has not put fast). A thread that
 * puts only on the locked path from then on (batches, zero copy, a queue
 * that stays contended) would otherwise keep it until it closes or exits,
 * and eight such would keep every producer off the fast path. */
void ipc__ring_bias_drop_stale(struct ring *r);
/* Take the fast path away from the owner (q_pmutex held, BIAS_OWNED):
 * 0, or the deadline's error if the owner stays mid-put past dl. */
int ipc__ring_bias_revoke(struct ring *r, const struct ipc__deadline *dl);
/* The owner's lock-free put through its registration b (from
 * ipc__ring_bias_mine): 0, -EAGAIN (no room), a closed error, or
 * -ESTALE (revoked: use the locked path). After a put, it wakes a
 * sleeping getter if one armed q_get_seq, without a fence in the common
 * case (see ring_bias.c). */
int ipc__ring_put_fast(struct ring *r, struct ring_bias *b, const void *msg,
		       uint32_t len);
/* Give the fast path up at close (every registration the calling thread
 * took through this handle): true if another thread of ours still holds
 * one taken through it, and the segment must then stay mapped. */
bool ipc__ring_bias_release(struct ring *r);

/* ---- ring_joinable.c: the JoinableQueue consumer ----------------------- */

/* A JoinableQueue get attempt (registers the thread as a consumer): a
 * length, -EAGAIN (empty), -EBUSY (no slot) or an error. */
ssize_t ipc__ring_get_joinable(struct ring *r, struct get_req *g,
			       const struct ipc__deadline *dl);
int ipc__ring_task_done(void *impl);
int ipc__ring_join(void *impl, const struct ipc__deadline *dl);
/* Requeue the tasks of every consumer thread of this handle (at close):
 * true if another thread of ours still holds a slot mutex in the segment,
 * which must then stay mapped. */
bool ipc__ring_close_consumer(struct ring *r);

/* ---- ring_put.c, ring_get.c: the loops (ops put and get) --------------- */

int ipc__ring_put(void *impl, const void *msg, size_t len,
		  const struct ipc__deadline *dl);
ssize_t ipc__ring_get(void *impl, void *buf, size_t cap, void **alloc,
		      const struct ipc__deadline *dl);
/* The same for a prepared request (a JoinableQueue lend: ring_zc.c). */
ssize_t ipc__ring_get_req(struct ring *r, struct get_req *g,
			  const struct ipc__deadline *dl);

/* ---- ring_batch.c: ops put_many and get_many ---------------------------- */

/* Take the producer side for a locked put of the caller's own: q_pmutex,
 * the biased producer revoked unless it is the caller, the queue not shut
 * down. 0 with q_pmutex held, or an error without it. */
int ipc__ring_lock_to_put(struct ring *r, const struct ipc__deadline *dl);
/* Room for one more record of `need` bytes at end, with the tail at tail
 * (q_pmutex held)? The producers' caches of head and free first, then
 * fresh words. 1, 0, or -ENOTRECOVERABLE when the words cannot be true. */
int ipc__ring_room_locked(struct ring *r, uint64_t tail, uint64_t end,
			  uint32_t need);

ssize_t ipc__ring_put_many(void *impl, const struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl);
ssize_t ipc__ring_get_many(void *impl, struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl);

/* ---- ring_zc.c: zero copy (ops reserve ... give_back) -------------------- */

int ipc__ring_reserve(void *impl, size_t len, void **buf,
		      const struct ipc__deadline *dl);
int ipc__ring_commit(void *impl, size_t len);
void ipc__ring_cancel(void *impl);
ssize_t ipc__ring_borrow(void *impl, const void **msg,
			 const struct ipc__deadline *dl);
int ipc__ring_give_back(void *impl);
/* Unmap the handle's zero-copy view (at close). */
void ipc__ring_zc_close(struct ring *r);

/* ---- ring_shutdown.c: ops shutdown_immediate ---------------------------- */

int ipc__ring_shutdown_immediate(void *impl);

/* ---- ring_watch.c: waiting on many (ops watch and unwatch) -------------- */

int ipc__ring_watch(void *impl, struct ipc__watch *w);
void ipc__ring_unwatch(void *impl, struct ipc__watch *w);

#endif /* LIBIPC_RING_H */
