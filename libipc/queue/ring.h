/* SPDX-License-Identifier: MIT */
/*
 * ring.h — the shared-memory queue backend's segment layout and the
 * functions its three files share, internal. ring.c is the ring itself
 * (creation, put, get, sleeping); ring_bias.c the biased producer;
 * ring_joinable.c the JoinableQueue consumer side.
 */
#ifndef LIBIPC_RING_H
#define LIBIPC_RING_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "libipc/queue/queue.h"

#define REC_HDR 8u
#define MIN_CAPACITY 4096u
#define DEFAULT_CAPACITY (1u << 20)
#define GET_SPINS 4000
#define PUT_SPINS 1000
#define RING_NOWAIT_LOCK_MS 1 /* see ipc__ring_lock */
#define REVOKE_SPINS 4096     /* see ring_bias_wait_idle */

/* Record states (JoinableQueue; a plain Queue leaves them READY). */
enum {
	REC_READY = 0,	     /* in [head, tail): waiting to be got */
	REC_REQUEUED = 1,    /* behind head: its consumer died, get it again */
	REC_DONE = 2,	     /* behind head: task_done'd, space to free */
	REC_TAKEN = 0x10000, /* | slot (below 2^16): got by it, not done yet */
};

enum { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
/* q_closed: shut down, or found damaged (see ipc__ring_broken). */
enum { CLOSED_SHUTDOWN = 1, CLOSED_BROKEN = 2 };
enum { BIAS_NONE = 0, BIAS_OWNED = 1, BIAS_OFF = 2 };
enum { INTENT_NONE = 0, INTENT_TASK_DONE = 1 };

struct rec_hdr {
	uint32_t r_len;
	_Atomic uint32_t r_state;
};

/* A JoinableQueue consumer: one thread of one process using one handle.
 * All fields but s_reg change under q_cmutex. s_pid, s_tid and s_handle
 * say whose it is; only the robust mutex says whether that thread is
 * alive, so they are never trusted alone. */
struct ring_slot {
	pthread_mutex_t s_reg;	  /* held by the registered consumer thread */
	_Atomic uint32_t s_state; /* SLOT_* */
	int32_t s_pid;		  /* the consumer's process */
	int32_t s_tid;		  /* and thread (kernel id) */
	uint32_t s_pad;
	uint64_t s_handle; /* and handle (struct ring.id in that process) */
} IPC__ALIGNED;
_Static_assert(sizeof(struct ring_slot) == IPC__CACHELINE,
	       "a consumer slot is one cache line");
_Static_assert(IPC_QUEUE_MAX_CONSUMERS <= REC_TAKEN,
	       "a slot number fits below the TAKEN bit of a record state");

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
	_Atomic uint32_t q_closed; /* CLOSED_* bits */
};

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
	bool bias_owner;   /* we are the queue's biased producer */
	unsigned bias_gen; /* fork generation we became it in */
	pthread_t bias_thread;
	uint64_t bias_head; /* the owner's earlier q_head and q_free */
	uint32_t bias_free;
	uint64_t id; /* unique among this process's handles, ever */
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

struct get_req {
	void *buf;
	size_t cap;
	void **alloc;
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

/* Tasks put and not yet done (JoinableQueue). */
static inline uint32_t ring_unfinished(struct ring *r)
{
	return w_items(atomic_load(&r->shm->q_tail)) -
	       atomic_load(&r->shm->q_done);
}

/* ring.c */
int ipc__ring_broken(struct ring *r);
int ipc__ring_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		   ipc__repair_fn repair, void *arg);
int ipc__ring_lock_producers(struct ring *r, const struct ipc__deadline *dl);
void ipc__ring_read(struct ring *r, uint32_t pos, void *dst, size_t len);
void ipc__ring_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, int n);
bool ipc__ring_walk(struct ring *r, uint32_t from, uint32_t to, rec_visit visit,
		    void *arg);
bool ipc__ring_has_room(struct ring *r, uint64_t tail, uint64_t head,
			uint32_t free, uint32_t need);
void ipc__ring_put_record(struct ring *r, uint64_t tail, const void *msg,
			  uint32_t len);
int ipc__ring_get_dest(struct get_req *g, uint32_t len, void **dst);

/* ring_bias.c */
bool ipc__ring_bias_mine(struct ring *r);
void ipc__ring_bias_take(struct ring *r);
int ipc__ring_bias_revoke(struct ring *r, const struct ipc__deadline *dl);
int ipc__ring_put_fast(struct ring *r, const void *msg, uint32_t len);
void ipc__ring_bias_release(struct ring *r);

/* ring_joinable.c */
void ipc__ring_reap(struct ring *r);
ssize_t ipc__ring_get_joinable(struct ring *r, struct get_req *g,
			       const struct ipc__deadline *dl);
int ipc__ring_task_done(void *impl);
void ipc__ring_close_consumer(struct ring *r);

/* ring.c: a handle id never used before in this process (struct ring.id). */
uint64_t ipc__ring_new_id(void);

#endif /* LIBIPC_RING_H */
