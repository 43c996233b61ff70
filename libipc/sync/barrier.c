/* SPDX-License-Identifier: MIT */
/*
 * barrier.c — Barrier for `parties` processes, that notices dead parties.
 *
 * Segment layout:
 *   b_mutex    internal robust lock over b_count, b_broken and the slots'
 *              s_gen/s_result. Held only for a few stores at a time.
 *   b_parties  fixed at creation.
 *   b_count    parties waiting in the current round (written under b_mutex,
 *              read without it by n_waiting).
 *   b_broken   1 while broken (written under b_mutex).
 *   b_gen      futex word: +1 whenever a round ends (released or broken).
 *   b_slots[]  one per arrival index: a robust mutex the waiting party
 *              holds while it waits, and the mailbox of its round's outcome.
 *
 * A round: arrivals take index b_count under b_mutex, lock slot[index] and
 * sleep on b_gen. The last arrival writes RELEASED into every waiter's slot,
 * then bumps b_gen and wakes them all in one FUTEX_WAKE_OP call. A waiter
 * reads its outcome from its own slot, not from shared round state, so a
 * slow waiter is never confused by later rounds.
 *
 * Dead parties: a party's slot mutex is held by the party itself for as
 * long as it waits, so the kernel's robust-mutex bookkeeping tells the
 * living, reliably and without pid checks, when it dies: a trylock on its
 * slot returns EOWNERDEAD instead of EBUSY. Waiters look every
 * IPC__RECHECK_MS (and the last arrival looks before releasing); finding a
 * dead party breaks the round. A process that dies holding b_mutex breaks it
 * too (the repair callback), since it died inside the barrier.
 *
 * Lock order: b_mutex, then a slot. A waiter holding its slot takes b_mutex
 * only with short timed attempts, re-reading its mailbox in between: an
 * arrival of the next round may hold b_mutex while it waits for this very
 * slot, which it gets as soon as the waiter sees its outcome and leaves.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "libipc/sync/sync.h"

enum { SLOT_WAITING = 0, SLOT_RELEASED = 1, SLOT_BROKEN = 2 };

struct barrier_slot {
	pthread_mutex_t s_lock;
	uint32_t s_gen;		   /* round the holder waits in */
	_Atomic uint32_t s_result; /* SLOT_*; release store, acquire load */
} IPC__ALIGNED;

struct barrier_shm {
	struct ipc__seg_hdr hdr;
	pthread_mutex_t b_mutex IPC__ALIGNED;
	uint32_t b_parties;
	_Atomic uint32_t b_count;
	_Atomic uint32_t b_broken;
	_Atomic uint32_t b_gen IPC__ALIGNED;
	struct barrier_slot b_slots[] IPC__ALIGNED;
};

struct ipc_barrier {
	struct ipc__seg seg;
	struct barrier_shm *shm;
};

static size_t barrier_size(unsigned parties)
{
	return sizeof(struct barrier_shm) +
	       (size_t)parties * sizeof(struct barrier_slot);
}

static int barrier_init(void *base, size_t size, const void *arg)
{
	struct barrier_shm *shm = base;
	unsigned parties = *(const unsigned *)arg;
	int rc;

	(void)size;
	shm->b_parties = parties;
	rc = ipc__mutex_init(&shm->b_mutex, false);
	for (unsigned i = 0; rc == 0 && i < parties; i++)
		rc = ipc__mutex_init(&shm->b_slots[i].s_lock, false);
	return rc;
}

static int barrier_check(const void *base, size_t size, const void *arg)
{
	const struct barrier_shm *shm = base;
	unsigned want = *(const unsigned *)arg;

	if (shm->b_parties == 0 || shm->b_parties > IPC_BARRIER_MAX_PARTIES ||
	    barrier_size(shm->b_parties) > size)
		return -EPROTO;
	if (want != 0 && want != shm->b_parties)
		return -EINVAL;
	return 0;
}

static const struct ipc__seg_type barrier_type = {
	.kind = IPC__KIND_BARRIER,
	.min_size = sizeof(struct barrier_shm) + sizeof(struct barrier_slot),
	.init = barrier_init,
	.check = barrier_check,
};

static int barrier_make(ipc_barrier **b, const char *name, int flags,
			unsigned parties)
{
	int rc;

	if (parties > IPC_BARRIER_MAX_PARTIES || (name == NULL && parties == 0))
		return -EINVAL;
	rc = ipc__handle_new((void **)b, sizeof(ipc_barrier), &barrier_type,
			     name, flags, barrier_size(parties ? parties : 1),
			     &parties);
	if (rc == 0)
		(*b)->shm = (*b)->seg.base;
	return rc;
}

int ipc_barrier_new(ipc_barrier **b, unsigned parties)
{
	return barrier_make(b, NULL, 0, parties);
}

int ipc_barrier_open(ipc_barrier **b, const char *name, int flags,
		     unsigned parties)
{
	if (name == NULL || ((flags & IPC_CREATE) && parties == 0))
		return -EINVAL;
	return barrier_make(b, name, flags, parties);
}

/* End the current round as broken (b_mutex held): every waiter's mailbox
 * says so, then b_gen moves and all are woken in one system call. */
static void barrier_break_locked(struct barrier_shm *shm)
{
	uint32_t gen = atomic_load_explicit(&shm->b_gen, memory_order_relaxed);
	uint32_t count =
		atomic_load_explicit(&shm->b_count, memory_order_relaxed);

	atomic_store_explicit(&shm->b_broken, 1, memory_order_relaxed);
	for (uint32_t j = 0; j < count && j < shm->b_parties; j++) {
		struct barrier_slot *s = &shm->b_slots[j];
		if (s->s_gen == gen)
			atomic_store_explicit(&s->s_result, SLOT_BROKEN,
					      memory_order_release);
	}
	atomic_store_explicit(&shm->b_count, 0, memory_order_relaxed);
	ipc__futex_add_wake(&shm->b_gen, 1, INT_MAX);
}

/* A process died holding b_mutex, somewhere inside the barrier. */
static int barrier_repair(void *arg)
{
	barrier_break_locked(arg);
	return 0;
}

static int barrier_lock(struct barrier_shm *shm)
{
	return ipc__mutex_lock(&shm->b_mutex, &ipc__forever, barrier_repair,
			       shm);
}

/* True if a party that is counted as waiting has died (b_mutex held). */
static bool barrier_party_died(struct barrier_shm *shm, uint32_t self)
{
	uint32_t count =
		atomic_load_explicit(&shm->b_count, memory_order_relaxed);
	bool died = false;

	for (uint32_t j = 0; j < count; j++) {
		int rc;
		if (j == self)
			continue;
		rc = pthread_mutex_trylock(&shm->b_slots[j].s_lock);
		if (rc == EBUSY)
			continue; /* its live holder */
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&shm->b_slots[j].s_lock);
		if (rc == 0 || rc == EOWNERDEAD)
			pthread_mutex_unlock(&shm->b_slots[j].s_lock);
		died = true; /* dead, or counted without holding its slot */
	}
	return died;
}

/* The last arrival: release everyone, unless someone died meanwhile. */
static int barrier_trip_locked(struct barrier_shm *shm, uint32_t idx)
{
	if (barrier_party_died(shm, idx)) {
		barrier_break_locked(shm);
		return IPC_EBROKEN;
	}
	for (uint32_t j = 0; j < idx; j++)
		atomic_store_explicit(&shm->b_slots[j].s_result, SLOT_RELEASED,
				      memory_order_release);
	atomic_store_explicit(&shm->b_count, 0, memory_order_relaxed);
	IPC__CRASHPOINT("barrier.trip.before_wake");
	ipc__futex_add_wake(&shm->b_gen, 1, INT_MAX);
	return (int)idx;
}

/* Lock b_mutex while holding our slot, unless our outcome arrives first
 * (see "Lock order" above). True with b_mutex held and no outcome yet. */
static bool barrier_lock_unless_done(struct barrier_shm *shm,
				     struct barrier_slot *slot)
{
	struct ipc__deadline brief;

	while (atomic_load_explicit(&slot->s_result, memory_order_acquire) ==
	       SLOT_WAITING) {
		ipc__deadline_init(&brief, 1);
		if (ipc__mutex_lock(&shm->b_mutex, &brief, barrier_repair,
				    shm) != 0)
			continue;
		if (atomic_load_explicit(&slot->s_result,
					 memory_order_acquire) == SLOT_WAITING)
			return true;
		ipc__mutex_unlock(&shm->b_mutex);
		break;
	}
	return false;
}

/* Sleep in slot idx of round gen until the round ends. */
static int barrier_sleep(struct barrier_shm *shm, uint32_t idx, uint32_t gen,
			 const struct ipc__deadline *dl)
{
	struct barrier_slot *slot = &shm->b_slots[idx];
	struct ipc__deadline slice;
	uint32_t result;
	int rc = 0;

	for (;;) {
		result = atomic_load_explicit(&slot->s_result,
					      memory_order_acquire);
		if (result != SLOT_WAITING)
			break;
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		IPC__CRASHPOINT("barrier.wait.sleeping");
		if (ipc__futex_wait(&shm->b_gen, gen, &slice) == 0)
			continue;
		/* A slice ended: our deadline, or time to look for the dead. */
		if (!barrier_lock_unless_done(shm, slot))
			continue;
		if (ipc__deadline_passed(dl)) {
			barrier_break_locked(shm);
			rc = -ETIMEDOUT;
		} else if (barrier_party_died(shm, idx)) {
			barrier_break_locked(shm);
		}
		ipc__mutex_unlock(&shm->b_mutex);
	}
	ipc__mutex_unlock(&slot->s_lock);
	if (rc != 0)
		return rc;
	return result == SLOT_RELEASED ? (int)idx : IPC_EBROKEN;
}

int ipc_barrier_wait(ipc_barrier *b, int timeout_ms)
{
	struct ipc__deadline dl;
	struct barrier_shm *shm;
	struct barrier_slot *slot;
	uint32_t idx, gen;
	int rc;

	if (b == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	shm = b->shm;
	rc = barrier_lock(shm);
	if (rc != 0)
		return rc;
	if (atomic_load_explicit(&shm->b_broken, memory_order_relaxed)) {
		rc = IPC_EBROKEN;
		goto out;
	}
	idx = atomic_load_explicit(&shm->b_count, memory_order_relaxed);
	gen = atomic_load_explicit(&shm->b_gen, memory_order_relaxed);
	if (idx + 1 == shm->b_parties) {
		rc = barrier_trip_locked(shm, idx);
		goto out;
	}
	if (dl.kind == IPC__DL_NOWAIT) {
		rc = -EAGAIN;
		goto out;
	}
	/* The slot may still be held by a waiter of the previous round that
	 * has its outcome but has not run yet; it leaves without b_mutex. A
	 * holder that died there hands it over with EOWNERDEAD: nothing to
	 * repair, the mailbox is rewritten below. */
	slot = &shm->b_slots[idx];
	rc = ipc__mutex_lock(&slot->s_lock, &ipc__forever, NULL, NULL);
	if (rc != 0 && rc != -EOWNERDEAD)
		goto out;
	slot->s_gen = gen;
	atomic_store_explicit(&slot->s_result, SLOT_WAITING,
			      memory_order_relaxed);
	atomic_store_explicit(&shm->b_count, idx + 1, memory_order_relaxed);
	IPC__CRASHPOINT("barrier.wait.counted");
	ipc__mutex_unlock(&shm->b_mutex);
	return barrier_sleep(shm, idx, gen, &dl);
out:
	ipc__mutex_unlock(&shm->b_mutex);
	return rc;
}

int ipc_barrier_abort(ipc_barrier *b)
{
	int rc;

	if (b == NULL)
		return -EINVAL;
	rc = barrier_lock(b->shm);
	if (rc != 0)
		return rc;
	barrier_break_locked(b->shm);
	ipc__mutex_unlock(&b->shm->b_mutex);
	return 0;
}

int ipc_barrier_reset(ipc_barrier *b)
{
	int rc;

	if (b == NULL)
		return -EINVAL;
	rc = barrier_lock(b->shm);
	if (rc != 0)
		return rc;
	if (atomic_load_explicit(&b->shm->b_count, memory_order_relaxed) > 0)
		barrier_break_locked(b->shm);
	atomic_store_explicit(&b->shm->b_broken, 0, memory_order_relaxed);
	ipc__mutex_unlock(&b->shm->b_mutex);
	return 0;
}

unsigned ipc_barrier_parties(ipc_barrier *b)
{
	return b ? b->shm->b_parties : 0;
}

unsigned ipc_barrier_n_waiting(ipc_barrier *b)
{
	return b ? atomic_load_explicit(&b->shm->b_count, memory_order_relaxed)
		 : 0;
}

bool ipc_barrier_broken(ipc_barrier *b)
{
	return b ? atomic_load_explicit(&b->shm->b_broken,
					memory_order_relaxed) != 0
		 : false;
}

void ipc_barrier_close(ipc_barrier *b)
{
	ipc__handle_free(b);
}

/* ipc_stat: parties, arrivals and the broken flag, from a copy of the
 * segment. */
int ipc__barrier_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct barrier_shm *shm = seg;
	uint32_t count;

	if (len < sizeof(*shm))
		return -EPROTO;
	count = atomic_load_explicit(&shm->b_count, memory_order_relaxed);
	if (shm->b_parties == 0 || shm->b_parties > IPC_BARRIER_MAX_PARTIES ||
	    count > shm->b_parties)
		return -EPROTO;
	info->parties = shm->b_parties;
	info->n_waiting = count;
	info->broken =
		atomic_load_explicit(&shm->b_broken, memory_order_relaxed) != 0;
	return 0;
}
