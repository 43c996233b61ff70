/* SPDX-License-Identifier: MIT */
/*
 * ring_zc.c — zero copy on the shared-memory queue: reserve, commit and
 * cancel (a message written in place), borrow and give back (a
 * JoinableQueue task read in place).
 *
 * Contiguity. Records may wrap around the end of the data ring, but a
 * caller needs one contiguous buffer. So each handle that uses zero copy
 * maps the data ring twice, back to back, in a view of 2 * capacity bytes
 * (mremap with old_size 0 makes a second mapping of the same shared
 * pages, named and anonymous segments alike); any record, wrapped or
 * not, is contiguous there. The capacity is a power of two of at least a
 * page and the data starts on a page, so the view lines up exactly.
 *
 * Reserve. A reservation is a put cut in two: ipc__ring_lock_to_put takes
 * the producers' lock (revoking the biased producer, unless that is the
 * caller), the room is checked, and the caller gets the bytes past the
 * tail while it keeps the lock. Commit writes the record header and
 * publishes with one store of q_tail, then unlocks; cancel just unlocks.
 * Nothing lies beyond the tail that anyone reads, so a producer killed
 * while it holds a reservation leaves exactly what a put killed before
 * its store leaves: garbage past the tail, and a dead owner of q_pmutex,
 * which the next producer repairs (nothing to roll back). No space leaks:
 * the tail never moved. The caller's own fast-path puts cannot overtake a
 * reservation: the facade refuses the reserving thread's puts on the
 * handle (IPC_EBUSY), and every other producer waits for the lock.
 *
 * Borrow (JoinableQueue). A got task's record stays in the ring, TAKEN by
 * its consumer, until its task_done marks it DONE; only then can q_free
 * pass it and a producer reuse its bytes. So a borrow is a get that
 * reports where the record is instead of copying it (struct get_req.lend),
 * and give_back is the task_done. A dead borrower's record is TAKEN by a
 * dead slot: the reaper requeues it, like any task of a dead consumer.
 * A plain Queue frees a record as its get moves q_head, so it cannot lend.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "libipc/queue/ring.h"

struct ring_zc {
	uint8_t *view; /* the data ring twice in a row */
	uint64_t tail; /* the open reservation's tail */
	uint32_t len;  /* and its length */
};

/* This handle's zero-copy state with its view, mapped on first use:
 * NULL when memory or address space runs out. Threads sharing the handle
 * may get here at once: each builds a whole state, and one compare-and-
 * swap publishes the first; the others drop theirs and use it. (Two
 * states once made a commit publish the tail another thread's state
 * held, and leaked a view.) */
static struct ring_zc *ring_zc(struct ring *r)
{
	struct ring_zc *z = atomic_load_explicit(&r->zc, memory_order_acquire);
	struct ring_zc *none = NULL;
	uint8_t *area;

	if (z != NULL)
		return z;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		return NULL;
	area = mmap(NULL, 2 * (size_t)r->cap, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		goto fail;
	for (int i = 0; i < 2; i++) {
		void *at = area + (size_t)i * r->cap;
		if (mremap(r->data, 0, r->cap, MREMAP_MAYMOVE | MREMAP_FIXED,
			   at) != at) {
			munmap(area, 2 * (size_t)r->cap);
			goto fail;
		}
	}
	z->view = area;
	if (atomic_compare_exchange_strong_explicit(&r->zc, &none, z,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return z;
	munmap(area, 2 * (size_t)r->cap); /* another thread's came first */
	free(z);
	return none;
fail:
	free(z);
	return NULL;
}

/* The contiguous bytes of the record at pos. */
static uint8_t *zc_payload(struct ring *r, struct ring_zc *z, uint32_t pos)
{
	return z->view + ((pos + REC_HDR) & r->mask);
}

/* One attempt: 0 with q_pmutex held and the tail in *tail, -EAGAIN (no
 * room; unlocked), or another error (unlocked). */
static int ring_reserve_try(struct ring *r, uint32_t need, uint64_t *tail,
			    const struct ipc__deadline *dl)
{
	struct ring_shm *q = r->shm;
	int rc = ipc__ring_lock_to_put(r, dl);

	if (rc != 0)
		return rc;
	*tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	rc = ipc__ring_room_locked(r, *tail, *tail, need);
	if (rc == 1)
		return 0;
	ipc__mutex_unlock(&q->q_pmutex);
	return rc == 0 ? -EAGAIN : rc;
}

int ipc__ring_reserve(void *impl, size_t len, void **buf,
		      const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_zc *z = ring_zc(r);
	uint32_t need = rec_size((uint32_t)len);
	uint64_t tail;
	int rc;

	if (z == NULL)
		return -ENOMEM;
	for (bool freed = false;;) {
		rc = ring_reserve_try(r, need, &tail, dl);
		if (rc == 0)
			break;
		if (rc != -EAGAIN)
			return rc;
		if (!freed && ipc__ring_room_freed(r, need)) {
			freed = true;
			continue;
		}
		rc = ipc__ring_wait_room(r, need, dl);
		if (rc != 0)
			return rc;
	}
	z->tail = tail;
	z->len = (uint32_t)len;
	*buf = zc_payload(r, z, w_pos(tail));
	IPC__CRASHPOINT("queue.reserve.held");
	return 0;
}

int ipc__ring_commit(void *impl, size_t len)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	struct ring_zc *z = atomic_load_explicit(&r->zc, memory_order_relaxed);
	struct rec_hdr *h = rec_at(r, w_pos(z->tail));

	h->r_len = (uint32_t)len;
	/* Last, with release: see ipc__ring_put_record. */
	atomic_store_explicit(&h->r_state, ring_ready_tag(w_items(z->tail)),
			      memory_order_release);
	IPC__CRASHPOINT("queue.commit.written");
	atomic_store_explicit(&q->q_tail,
			      w_make(w_items(z->tail) + 1,
				     w_pos(z->tail) + rec_size((uint32_t)len)),
			      memory_order_release);
	ipc__mutex_unlock(&q->q_pmutex);
	IPC__CRASHPOINT("queue.commit.published");
	ipc__ring_wake_unlocked(&q->q_get_seq, 1);
	return 0;
}

void ipc__ring_cancel(void *impl)
{
	struct ring *r = impl;

	ipc__mutex_unlock(&r->shm->q_pmutex);
}

ssize_t ipc__ring_borrow(void *impl, const void **msg,
			 const struct ipc__deadline *dl)
{
	struct ring *r = impl;
	struct ring_zc *z;
	uint32_t pos = 0;
	struct get_req g = { NULL, 0, NULL, &pos };
	ssize_t n;

	if (!r->joinable)
		return -ENOTSUP;
	z = ring_zc(r);
	if (z == NULL)
		return -ENOMEM;
	n = ipc__ring_get_req(r, &g, dl);
	if (n < 0)
		return n;
	IPC__CRASHPOINT("queue.borrow.lent");
	*msg = zc_payload(r, z, pos);
	return n;
}

int ipc__ring_give_back(void *impl)
{
	struct ring *r = impl;

	return r->joinable ? ipc__ring_task_done(impl) : -ENOTSUP;
}

void ipc__ring_zc_close(struct ring *r)
{
	struct ring_zc *z = atomic_load(&r->zc);

	if (z == NULL)
		return;
	munmap(z->view, 2 * (size_t)r->cap);
	free(z);
	atomic_store(&r->zc, NULL);
}
