/* SPDX-License-Identifier: MIT */
/*
 * pqueue.c — PriorityQueue: byte messages with a priority; get returns the
 * lowest priority value first, in put order among equal priorities.
 *
 * The segment holds maxsize fixed-size slots, a binary min-heap of slot
 * indices ordered by (priority, sequence number), and a stack of free slot
 * indices, all under one robust mutex. What is true is the slots: each is
 * FREE or USED, and a USED slot holds one whole message. The heap and the
 * free stack are only indexes over them, so a process killed anywhere —
 * mid-copy, mid-sift — cannot lose, tear or duplicate a message: the next
 * locker gets EOWNERDEAD and rebuilds both indexes from the slots
 * (pq_rebuild), and the sequence numbers keep FIFO order among equals.
 *
 * The commit point of a put is the store that marks its slot USED (after
 * the message is written); of a get, the store that marks it FREE (after
 * the message is copied out). A putter killed before its commit leaves no
 * trace, after it the message is queued whole; a getter killed before its
 * commit leaves the message queued, after it the message is gone with it.
 *
 * Damage. Every index and length read from the segment is checked before
 * use: the geometry is the handle's own copy, a slot index (in the heap or
 * the free stack) must be below maxsize and name a slot in the right
 * state, and a length must fit its slot. A failed check rebuilds the
 * indexes from the slots, as after a death; a slot whose own header is
 * damaged counts as free, so its message is lost, and nothing else is.
 *
 * Sleeping: getters wait on p_put_seq, putters on p_get_seq, futex words
 * bumped after every put / get (see DESIGN.md §3); the waiter reads the
 * word under the mutex, so a bump it missed cannot exist. A waiter also
 * looks again every IPC__RECHECK_MS, which bounds what a waker killed
 * between its commit and its wake can cost.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/core/core.h"

#define SLOT_FREE 0u
#define SLOT_USED 0x55534544u /* "USED" */
#define SLOT_HDR 24

struct pq_shm {
	struct ipc__seg_hdr hdr;
	/* Constants, written by the creator. */
	uint32_t p_maxsize;   /* slots */
	uint32_t p_max_msg;   /* largest message */
	uint64_t p_slot_size; /* SLOT_HDR + p_max_msg, rounded up to 8 */
	uint64_t p_heap_off;  /* uint32_t[p_maxsize] */
	uint64_t p_free_off;  /* uint32_t[p_maxsize] */
	uint64_t p_slots_off;
	uint8_t p_reserved[24];
	pthread_mutex_t p_mutex IPC__ALIGNED;
	/* Under p_mutex. */
	uint32_t p_count IPC__ALIGNED; /* heap length = USED slots */
	uint32_t p_free_top;	       /* free stack length */
	uint64_t p_next_seq;
	uint32_t p_closed;
	/* Futex words and waiter counts: any process, atomically. */
	_Atomic uint32_t p_put_seq IPC__ALIGNED; /* bumped after each put */
	_Atomic uint32_t p_get_seq;		 /* bumped after each get */
	_Atomic uint32_t p_getters;		 /* asleep on p_put_seq */
	_Atomic uint32_t p_putters;		 /* asleep on p_get_seq */
};
_Static_assert(offsetof(struct pq_shm, p_mutex) == 2 * IPC__CACHELINE,
	       "mutex on its own line");
_Static_assert(sizeof(struct pq_shm) == 5 * IPC__CACHELINE, "five lines");

struct pq_slot {
	uint32_t s_state; /* SLOT_FREE or SLOT_USED: the commit word */
	uint32_t s_len;
	int64_t s_prio;
	uint64_t s_seq;
	uint8_t s_data[];
};
_Static_assert(sizeof(struct pq_slot) == SLOT_HDR, "slot header");

/* A process's handle. The geometry is copied at open, after pq_check: a
 * peer may rewrite the segment's copy later, never these. */
struct ipc_pqueue {
	struct ipc__seg seg;
	struct pq_shm *q;
	uint32_t *heap, *free;
	uint8_t *slots;
	uint32_t maxsize, max_msg;
	size_t slot_size;
	bool damaged; /* a sift met an index out of range (mutex held) */
};

struct pq_spec {
	uint32_t maxsize, max_msg; /* 0 from an opener: accept */
};

static size_t slot_size(uint32_t max_msg)
{
	return (SLOT_HDR + (size_t)max_msg + 7) & ~(size_t)7;
}

/* Where the slots start: after the heap and the free stack. */
static size_t slots_off(uint32_t maxsize)
{
	return sizeof(struct pq_shm) +
	       (((size_t)maxsize * 8 + 63) & ~(size_t)63);
}

static size_t pq_size(uint32_t maxsize, uint32_t max_msg)
{
	return slots_off(maxsize) + (size_t)maxsize * slot_size(max_msg);
}

static int pq_init(void *base, size_t size, const void *arg)
{
	struct pq_shm *q = base;
	const struct pq_spec *sp = arg;
	uint32_t *freel;

	(void)size;
	q->p_maxsize = sp->maxsize;
	q->p_max_msg = sp->max_msg;
	q->p_slot_size = slot_size(sp->max_msg);
	q->p_heap_off = sizeof(struct pq_shm);
	q->p_free_off = q->p_heap_off + (uint64_t)sp->maxsize * 4;
	q->p_slots_off = slots_off(sp->maxsize);
	freel = (uint32_t *)((uint8_t *)base + q->p_free_off);
	for (uint32_t i = 0; i < sp->maxsize; i++)
		freel[i] = sp->maxsize - 1 - i; /* slot 0 first */
	q->p_free_top = sp->maxsize;
	return ipc__mutex_init(&q->p_mutex, false);
}

/* An opener trusts the constants only once they describe this layout. */
static int pq_check(const void *base, size_t size, const void *arg)
{
	const struct pq_shm *q = base;
	const struct pq_spec *sp = arg;

	if (q->p_maxsize == 0 || q->p_maxsize > IPC_PQUEUE_MAX_ITEMS ||
	    q->p_max_msg > IPC_PQUEUE_MAX_MSG ||
	    q->p_slot_size != slot_size(q->p_max_msg) ||
	    q->p_heap_off != sizeof(struct pq_shm) ||
	    q->p_free_off != q->p_heap_off + (uint64_t)q->p_maxsize * 4 ||
	    q->p_slots_off != slots_off(q->p_maxsize) ||
	    pq_size(q->p_maxsize, q->p_max_msg) > size)
		return -EPROTO;
	if ((sp->maxsize != 0 && sp->maxsize != q->p_maxsize) ||
	    (sp->max_msg != 0 && sp->max_msg != q->p_max_msg))
		return -EINVAL;
	return 0;
}

static const struct ipc__seg_type pq_type = {
	.kind = IPC__KIND_PQUEUE,
	.min_size = sizeof(struct pq_shm),
	.init = pq_init,
	.check = pq_check,
};

/* Slot i, for i < h->maxsize (callers check). */
static struct pq_slot *slot(ipc_pqueue *h, uint32_t i)
{
	return (struct pq_slot *)(h->slots + (size_t)i * h->slot_size);
}

/* a goes before b: lower priority, then older. An index out of range (a
 * damaged heap) compares as "not before" and marks the handle's pass
 * damaged: the caller rebuilds. */
static bool before(ipc_pqueue *h, uint32_t a, uint32_t b)
{
	struct pq_slot *x, *y;

	if (a >= h->maxsize || b >= h->maxsize) {
		h->damaged = true;
		return false;
	}
	x = slot(h, a);
	y = slot(h, b);
	return x->s_prio < y->s_prio ||
	       (x->s_prio == y->s_prio && x->s_seq < y->s_seq);
}

static void sift_up(ipc_pqueue *h, uint32_t k)
{
	while (k > 0) {
		uint32_t parent = (k - 1) / 2;
		if (!before(h, h->heap[k], h->heap[parent]))
			break;
		uint32_t t = h->heap[k];
		h->heap[k] = h->heap[parent];
		h->heap[parent] = t;
		k = parent;
	}
}

static void sift_down(ipc_pqueue *h, uint32_t k, uint32_t n)
{
	for (;;) {
		uint32_t l = 2 * k + 1, r = l + 1, m = k;
		if (l < n && before(h, h->heap[l], h->heap[m]))
			m = l;
		if (r < n && before(h, h->heap[r], h->heap[m]))
			m = r;
		if (m == k)
			return;
		uint32_t t = h->heap[k];
		h->heap[k] = h->heap[m];
		h->heap[m] = t;
		k = m;
	}
}

/* Rebuild the heap and the free stack from the slots (mutex held, after a
 * holder died, or when an index was found out of range). */
static int pq_rebuild(void *arg)
{
	ipc_pqueue *h = arg;
	struct pq_shm *q = h->q;
	uint32_t used = 0, nfree = 0;
	uint64_t next = q->p_next_seq;

	for (uint32_t i = 0; i < h->maxsize; i++) {
		struct pq_slot *s = slot(h, i);
		if (s->s_state == SLOT_USED && s->s_len <= h->max_msg) {
			h->heap[used++] = i;
			if (s->s_seq >= next)
				next = s->s_seq + 1;
		} else {
			s->s_state = SLOT_FREE; /* a put that never committed */
			h->free[nfree++] = i;
		}
	}
	for (uint32_t k = used / 2; k-- > 0;)
		sift_down(h, k, used);
	q->p_count = used;
	q->p_free_top = nfree;
	q->p_next_seq = next;
	h->damaged = false;
	return 0;
}

static bool indexes_sane(ipc_pqueue *h)
{
	struct pq_shm *q = h->q;

	return q->p_count <= h->maxsize && q->p_free_top <= h->maxsize &&
	       q->p_count + q->p_free_top == h->maxsize;
}

static int pq_make(ipc_pqueue **out, const char *name, int flags,
		   size_t maxsize, size_t max_msg)
{
	struct pq_spec sp;
	ipc_pqueue *h;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (maxsize > IPC_PQUEUE_MAX_ITEMS || max_msg > IPC_PQUEUE_MAX_MSG)
		return -EINVAL;
	if (pq_size((uint32_t)maxsize, (uint32_t)max_msg) >
	    IPC_PQUEUE_MAX_BYTES)
		return -EINVAL;
	sp.maxsize = (uint32_t)maxsize;
	sp.max_msg = (uint32_t)max_msg;
	if (name == NULL || (flags & IPC_CREATE)) {
		/* Creating: defaults for 0. */
		if (sp.maxsize == 0)
			sp.maxsize = 1024;
		if (sp.max_msg == 0)
			sp.max_msg = 4096;
	}
	rc = ipc__handle_new((void **)&h, sizeof(*h), &pq_type, name, flags,
			     pq_size(sp.maxsize, sp.max_msg), &sp);
	if (rc != 0)
		return rc;
	h->q = h->seg.base;
	/* Read once and checked again: pq_check saw these, but a peer may
	 * have rewritten them since. The offsets follow from them. */
	h->maxsize = h->q->p_maxsize;
	h->max_msg = h->q->p_max_msg;
	if (h->maxsize == 0 || h->maxsize > IPC_PQUEUE_MAX_ITEMS ||
	    h->max_msg > IPC_PQUEUE_MAX_MSG ||
	    pq_size(h->maxsize, h->max_msg) > h->seg.size) {
		ipc__handle_free(h);
		return -EPROTO;
	}
	h->slot_size = slot_size(h->max_msg);
	h->heap = (uint32_t *)((uint8_t *)h->seg.base + sizeof(struct pq_shm));
	h->free = h->heap + h->maxsize;
	h->slots = (uint8_t *)h->seg.base + slots_off(h->maxsize);
	*out = h;
	return 0;
}

int ipc_pqueue_new(ipc_pqueue **q, size_t maxsize, size_t max_msg_size)
{
	return pq_make(q, NULL, 0, maxsize, max_msg_size);
}

int ipc_pqueue_open(ipc_pqueue **q, const char *name, int flags, size_t maxsize,
		    size_t max_msg_size)
{
	if (name == NULL) {
		if (q != NULL)
			*q = NULL;
		return -EINVAL;
	}
	return pq_make(q, name, flags, maxsize, max_msg_size);
}

static int pq_lock(ipc_pqueue *h, const struct ipc__deadline *dl)
{
	int rc = ipc__mutex_lock(&h->q->p_mutex, dl, pq_rebuild, h);

	if (rc == 0 && !indexes_sane(h))
		pq_rebuild(h);
	return rc;
}

/* One attempt (mutex held): 0 done, -EAGAIN would block, or an error. */
static int try_put(ipc_pqueue *h, int64_t prio, const void *msg, size_t len)
{
	struct pq_shm *q = h->q;
	struct pq_slot *s;
	uint32_t i;

	if (q->p_closed)
		return IPC_ECLOSED;
	if (q->p_free_top == 0)
		return -EAGAIN;
	i = h->free[q->p_free_top - 1];
	if (i >= h->maxsize || slot(h, i)->s_state != SLOT_FREE ||
	    q->p_count >= h->maxsize) {
		pq_rebuild(h); /* a wrong index: trust the slots */
		return try_put(h, prio, msg, len);
	}
	q->p_free_top--;
	s = slot(h, i);
	s->s_len = (uint32_t)len;
	s->s_prio = prio;
	s->s_seq = q->p_next_seq++;
	if (len > 0)
		memcpy(s->s_data, msg, len);
	IPC__CRASHPOINT("pqueue.put.written");
	atomic_store_explicit((_Atomic uint32_t *)&s->s_state, SLOT_USED,
			      memory_order_release);
	IPC__CRASHPOINT("pqueue.put.committed");
	h->heap[q->p_count++] = i;
	sift_up(h, q->p_count - 1);
	if (h->damaged)
		pq_rebuild(h); /* the message is in its slot: kept */
	return 0;
}

struct get_req {
	void *buf;
	size_t cap;
	void **alloc;
	int64_t *prio;
};

static ssize_t try_get(ipc_pqueue *h, struct get_req *g)
{
	struct pq_shm *q = h->q;
	struct pq_slot *s;
	uint32_t i, len;
	void *dst;

	if (q->p_count == 0)
		return q->p_closed ? IPC_ECLOSED : -EAGAIN;
	i = h->heap[0];
	if (i >= h->maxsize || slot(h, i)->s_state != SLOT_USED ||
	    slot(h, i)->s_len > h->max_msg || q->p_free_top >= h->maxsize) {
		pq_rebuild(h); /* a wrong index or length: trust the slots */
		return try_get(h, g);
	}
	s = slot(h, i);
	len = s->s_len; /* read once: the value checked is the value used */
	if (len > h->max_msg) {
		pq_rebuild(h);
		return try_get(h, g);
	}
	if (g->alloc != NULL) {
		dst = malloc(len ? len : 1);
		if (dst == NULL)
			return -ENOMEM;
		*g->alloc = dst;
	} else if (len > g->cap) {
		return -EMSGSIZE; /* it stays */
	} else {
		dst = g->buf;
	}
	if (len > 0)
		memcpy(dst, s->s_data, len);
	if (g->prio != NULL)
		*g->prio = s->s_prio;
	IPC__CRASHPOINT("pqueue.get.copied");
	atomic_store_explicit((_Atomic uint32_t *)&s->s_state, SLOT_FREE,
			      memory_order_release);
	IPC__CRASHPOINT("pqueue.get.committed");
	h->heap[0] = h->heap[--q->p_count];
	sift_down(h, 0, q->p_count);
	h->free[q->p_free_top++] = i;
	if (h->damaged)
		pq_rebuild(h); /* the message was got: its slot is free */
	return (ssize_t)len;
}

static void wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, int n)
{
	atomic_fetch_add(seq, 1);
	if (atomic_load(waiters) > 0)
		ipc__futex_wake(seq, n);
}

/* Run op until it stops returning -EAGAIN or dl passes, sleeping on
 * *seq (counted in *waiters) in between. */
typedef ssize_t (*pq_op)(ipc_pqueue *h, void *arg);

static ssize_t pq_wait_loop(ipc_pqueue *h, pq_op op, void *arg,
			    _Atomic uint32_t *seq, _Atomic uint32_t *waiters,
			    const struct ipc__deadline *dl)
{
	for (;;) {
		struct ipc__deadline slice;
		ssize_t rc = pq_lock(h, dl);
		uint32_t s;
		if (rc != 0)
			return rc;
		rc = op(h, arg);
		if (rc != -EAGAIN) {
			ipc__mutex_unlock(&h->q->p_mutex);
			return rc;
		}
		s = atomic_load(seq);
		atomic_fetch_add(waiters, 1);
		ipc__mutex_unlock(&h->q->p_mutex);
		if (ipc__deadline_passed(dl)) {
			atomic_fetch_sub(waiters, 1);
			return ipc__deadline_error(dl);
		}
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		ipc__futex_wait(seq, s, &slice);
		atomic_fetch_sub(waiters, 1);
	}
}

struct put_req {
	int64_t prio;
	const void *msg;
	size_t len;
};

static ssize_t put_op(ipc_pqueue *h, void *arg)
{
	struct put_req *p = arg;
	return try_put(h, p->prio, p->msg, p->len);
}

static ssize_t get_op(ipc_pqueue *h, void *arg)
{
	return try_get(h, arg);
}

int ipc_pqueue_put(ipc_pqueue *h, int64_t priority, const void *msg, size_t len,
		   int timeout_ms)
{
	struct put_req p = { priority, msg, len };
	struct ipc__deadline dl;
	ssize_t rc;

	if (h == NULL || (msg == NULL && len > 0))
		return -EINVAL;
	if (len > h->max_msg)
		return -EMSGSIZE;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return (int)rc;
	rc = pq_wait_loop(h, put_op, &p, &h->q->p_get_seq, &h->q->p_putters,
			  &dl);
	if (rc == 0)
		wake(&h->q->p_put_seq, &h->q->p_getters, 1);
	return (int)rc;
}

static ssize_t pq_get(ipc_pqueue *h, struct get_req *g, int timeout_ms)
{
	struct ipc__deadline dl;
	ssize_t rc;

	if (h == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	rc = pq_wait_loop(h, get_op, g, &h->q->p_put_seq, &h->q->p_getters,
			  &dl);
	if (rc >= 0)
		wake(&h->q->p_get_seq, &h->q->p_putters, 1);
	return rc;
}

ssize_t ipc_pqueue_get(ipc_pqueue *h, int64_t *priority, void *buf, size_t cap,
		       int timeout_ms)
{
	struct get_req g = { buf, cap, NULL, priority };

	if (buf == NULL && cap > 0)
		return -EINVAL;
	return pq_get(h, &g, timeout_ms);
}

ssize_t ipc_pqueue_get_alloc(ipc_pqueue *h, int64_t *priority, void **msg,
			     int timeout_ms)
{
	struct get_req g = { NULL, 0, msg, priority };

	if (msg == NULL)
		return -EINVAL;
	*msg = NULL;
	return pq_get(h, &g, timeout_ms);
}

/* Under the lock: a count left stale by a dead holder is repaired first. */
long ipc_pqueue_qsize(ipc_pqueue *h)
{
	long n;
	int rc;

	if (h == NULL)
		return -EINVAL;
	rc = pq_lock(h, &ipc__forever);
	if (rc != 0)
		return rc;
	n = h->q->p_count;
	ipc__mutex_unlock(&h->q->p_mutex);
	return n;
}

int ipc_pqueue_shutdown(ipc_pqueue *h)
{
	int rc;

	if (h == NULL)
		return -EINVAL;
	rc = pq_lock(h, &ipc__forever);
	if (rc != 0)
		return rc;
	h->q->p_closed = 1;
	ipc__mutex_unlock(&h->q->p_mutex);
	wake(&h->q->p_put_seq, &h->q->p_getters, INT_MAX);
	wake(&h->q->p_get_seq, &h->q->p_putters, INT_MAX);
	return 0;
}

void ipc_pqueue_close(ipc_pqueue *h)
{
	ipc__handle_free(h);
}
