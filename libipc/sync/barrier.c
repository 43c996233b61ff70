/* SPDX-License-Identifier: MIT */
/*
 * barrier.c — Barrier for `parties` processes, that notices dead parties.
 *
 * Segment layout:
 *   b_mutex    internal robust lock over b_count, b_broken and the slots'
 *              s_gen/s_result. Held only for a few stores at a time.
 *   b_parties  fixed at creation.
 *   b_timeout_ms  the default timeout of a wait given IPC_DEFAULT_TIMEOUT:
 *              IPC_FOREVER or a positive count, fixed at creation, read
 *              once at open, checked and kept in the handle.
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
 * Damaged memory: b_parties is read once, when the handle is made, checked
 * against the file's size and kept in the handle; b_count is checked
 * against it each time it is read, before it is used as a slot index. A
 * count out of range is a state no barrier call leaves behind, so the call
 * that finds it breaks the round (the count is reset to 0, every waiter
 * gets IPC_EBROKEN) and returns IPC_ENOTRECOVERABLE; ipc_barrier_reset then
 * makes the barrier usable again. Slot outcomes other than the three known
 * ones read as "broken".
 *
 * The action (Python's Barrier(action=...)): a function pointer cannot live
 * in shared memory, so each handle carries its own (ipc_barrier_attr at
 * new/open) and the last arrival runs the one of its handle. It runs in
 * barrier_trip_locked, after the check for dead parties and before any
 * outcome is written, with b_mutex held: no party is released before it
 * returns, and a party killed inside it dies holding b_mutex, whose repair
 * breaks the round, as for any death inside the barrier. An action that
 * fails (returns nonzero) breaks the round; so does a waiter that gave up
 * (timed out) while the action ran, found by a second look for parties
 * that left. Waiters keep sleeping on b_gen meanwhile: a failed attempt at
 * b_mutex sends a waiter back to sleep for another slice.
 *
 * Timeouts: a wait takes b_mutex and its slot within the caller's deadline
 * (an IPC_NOWAIT try allows BARRIER_NOWAIT_LOCK_MS for b_mutex).
 * abort and reset, which have no timeout, give up on b_mutex after
 * BARRIER_ADMIN_MS (a stopped peer inside a barrier call, or a damaged
 * lock word) with IPC_EBUSY rather than wait for ever.
 *
 * Lock order: b_mutex, then a slot. A waiter holding its slot takes b_mutex
 * only with short timed attempts, re-reading its mailbox in between: an
 * arrival of the next round may hold b_mutex while it waits for this very
 * slot, which it gets as soon as the waiter sees its outcome and leaves.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

#define BARRIER_ADMIN_MS 1000
#define BARRIER_NOWAIT_LOCK_MS 2

struct ipc_barrier {
	struct ipc__seg seg;
	struct barrier_shm *shm;
	uint32_t parties; /* b_parties as checked at open; never re-read */
	int timeout_ms;	  /* b_timeout_ms as checked at open */
	ipc_barrier_action_fn action; /* this handle's; NULL: none */
	void *action_arg;
	struct ipc__sync_remote *remote; /* served by another host; or NULL */
};

struct barrier_args {
	unsigned parties;
	int timeout_ms; /* 0: accept an existing barrier's */
};

static size_t barrier_size(unsigned parties)
{
	return sizeof(struct barrier_shm) +
	       (size_t)parties * sizeof(struct barrier_slot);
}

static int barrier_init(void *base, size_t size, const void *arg)
{
	struct barrier_shm *shm = base;
	const struct barrier_args *a = arg;
	unsigned parties = a->parties;
	int rc;

	(void)size;
	shm->b_parties = parties;
	shm->b_timeout_ms = a->timeout_ms != 0 ? a->timeout_ms : IPC_FOREVER;
	rc = ipc__mutex_init(&shm->b_mutex, false);
	for (unsigned i = 0; rc == 0 && i < parties; i++)
		rc = ipc__mutex_init(&shm->b_slots[i].s_lock, false);
	return rc;
}

/* A party count the segment of `size` bytes can hold, or 0. */
static uint32_t barrier_parties_valid(uint32_t parties, size_t size)
{
	if (parties == 0 || parties > IPC_BARRIER_MAX_PARTIES ||
	    barrier_size(parties) > size)
		return 0;
	return parties;
}

/* A default timeout a barrier can have: IPC_FOREVER or positive. */
static bool barrier_timeout_valid(int32_t ms)
{
	return ms == IPC_FOREVER || ms > 0;
}

static int barrier_check(const void *base, size_t size, const void *arg)
{
	const struct barrier_shm *shm = base;
	const struct barrier_args *a = arg;
	uint32_t parties = barrier_parties_valid(shm->b_parties, size);

	if (parties == 0 || !barrier_timeout_valid(shm->b_timeout_ms))
		return -EPROTO;
	if (a->parties != 0 && a->parties != parties)
		return -EINVAL;
	if (a->timeout_ms != 0 && a->timeout_ms != shm->b_timeout_ms)
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
			unsigned parties, const ipc_barrier_attr *attr)
{
	struct barrier_args a = { parties, attr ? attr->timeout_ms : 0 };
	uint32_t have;
	int32_t timeout;
	int rc;

	if (parties > IPC_BARRIER_MAX_PARTIES || (name == NULL && parties == 0))
		return -EINVAL;
	if (a.timeout_ms != 0 && !barrier_timeout_valid(a.timeout_ms))
		return -EINVAL;
	rc = ipc__handle_new((void **)b, sizeof(ipc_barrier), &barrier_type,
			     name, flags, barrier_size(parties ? parties : 1),
			     &a);
	if (rc != 0)
		return rc;
	(*b)->shm = (*b)->seg.base;
	/* Read the count and the timeout once more, for keeps: a peer may
	 * have changed them since the check. */
	have = barrier_parties_valid((*b)->shm->b_parties, (*b)->seg.size);
	timeout = (*b)->shm->b_timeout_ms;
	if (have == 0 || !barrier_timeout_valid(timeout))
		rc = -EPROTO;
	else if ((parties != 0 && have != parties) ||
		 (a.timeout_ms != 0 && a.timeout_ms != timeout))
		rc = -EINVAL;
	if (rc != 0) {
		ipc__handle_free(*b);
		*b = NULL;
		return rc;
	}
	(*b)->parties = have;
	(*b)->timeout_ms = timeout;
	(*b)->action = attr ? attr->action : NULL;
	(*b)->action_arg = attr ? attr->action_arg : NULL;
	return 0;
}

int ipc_barrier_new(ipc_barrier **b, unsigned parties)
{
	return barrier_make(b, NULL, 0, parties, NULL);
}

int ipc_barrier_open(ipc_barrier **b, const char *name, int flags,
		     unsigned parties)
{
	return ipc_barrier_open_attr(b, name, flags, parties, NULL);
}

int ipc_barrier_new_attr(ipc_barrier **b, unsigned parties,
			 const ipc_barrier_attr *attr)
{
	return barrier_make(b, NULL, 0, parties, attr);
}

int ipc_barrier_open_attr(ipc_barrier **b, const char *name, int flags,
			  unsigned parties, const ipc_barrier_attr *attr)
{
	if (name == NULL || ((flags & IPC_CREATE) && parties == 0))
		return -EINVAL;
	return barrier_make(b, name, flags, parties, attr);
}

/* b_count if it is a count this barrier can have (0 .. parties-1), else
 * UINT32_MAX: only damaged memory holds such a count. */
static uint32_t barrier_count(const ipc_barrier *b)
{
	uint32_t count =
		atomic_load_explicit(&b->shm->b_count, memory_order_relaxed);

	return count < b->parties ? count : UINT32_MAX;
}

/* Move b_gen and wake every sleeper, in one system call (b_mutex held).
 * b_gen is only compared for change: keep it below 2^31 for FUTEX_WAKE_OP,
 * whatever a peer wrote into it. */
static void barrier_end_round(struct barrier_shm *shm)
{
	if (atomic_load_explicit(&shm->b_gen, memory_order_relaxed) >=
	    0x7fffffffu)
		ipc__futex_set_wake(&shm->b_gen, 0, INT_MAX);
	else
		ipc__futex_add_wake(&shm->b_gen, 1, INT_MAX);
}

/* End the current round as broken (b_mutex held): every waiter's mailbox
 * says so, then b_gen moves and all are woken in one system call. Also the
 * repair of an out-of-range count: it only visits real slots. */
static void barrier_break_locked(ipc_barrier *b)
{
	struct barrier_shm *shm = b->shm;
	uint32_t gen = atomic_load_explicit(&shm->b_gen, memory_order_relaxed);
	uint32_t count = barrier_count(b);

	if (count == UINT32_MAX)
		count = b->parties; /* damaged: look at every slot */
	atomic_store_explicit(&shm->b_broken, 1, memory_order_relaxed);
	for (uint32_t j = 0; j < count; j++) {
		struct barrier_slot *s = &shm->b_slots[j];
		if (s->s_gen == gen)
			atomic_store_explicit(&s->s_result, SLOT_BROKEN,
					      memory_order_release);
	}
	atomic_store_explicit(&shm->b_count, 0, memory_order_relaxed);
	barrier_end_round(shm);
}

/* A process died holding b_mutex, somewhere inside the barrier. */
static int barrier_repair(void *arg)
{
	barrier_break_locked(arg);
	return 0;
}

static int barrier_lock(ipc_barrier *b, const struct ipc__deadline *dl)
{
	return ipc__mutex_lock(&b->shm->b_mutex, dl, barrier_repair, b);
}

/* For calls without a timeout: b_mutex is held for a few stores only, so
 * failing to get it for BARRIER_ADMIN_MS means a stopped peer or a damaged
 * lock word: -EBUSY. */
static int barrier_lock_admin(ipc_barrier *b)
{
	struct ipc__deadline dl;
	int rc;

	ipc__deadline_init(&dl, BARRIER_ADMIN_MS);
	rc = barrier_lock(b, &dl);
	return rc == -ETIMEDOUT ? -EBUSY : rc;
}

/* For a wait: within its deadline; an IPC_NOWAIT try still waits out the
 * few stores another caller holds b_mutex for (BARRIER_NOWAIT_LOCK_MS), so
 * that a try is not refused for someone else's bookkeeping. */
static int barrier_lock_for_wait(ipc_barrier *b, const struct ipc__deadline *dl)
{
	struct ipc__deadline brief;
	int rc;

	if (dl->kind != IPC__DL_NOWAIT)
		return barrier_lock(b, dl);
	ipc__deadline_init(&brief, BARRIER_NOWAIT_LOCK_MS);
	rc = barrier_lock(b, &brief);
	return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

/* True if a party that is counted as waiting has died (b_mutex held, the
 * count checked). */
static bool barrier_party_died(ipc_barrier *b, uint32_t count, uint32_t self)
{
	bool died = false;

	for (uint32_t j = 0; j < count; j++) {
		pthread_mutex_t *m = &b->shm->b_slots[j].s_lock;
		int rc;
		if (j == self)
			continue;
		rc = ipc__mutex_trylock_sane(m);
		if (rc == EBUSY)
			continue; /* its live holder */
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(m);
		if (rc == 0 || rc == EOWNERDEAD)
			ipc__mutex_unlock(m);
		died = true; /* dead, or counted without holding its slot */
	}
	return died;
}

/* The last arrival: release everyone, unless someone died meanwhile. */
static int barrier_trip_locked(ipc_barrier *b, uint32_t idx)
{
	struct barrier_shm *shm = b->shm;

	if (barrier_party_died(b, idx, idx)) {
		barrier_break_locked(b);
		return IPC_EBROKEN;
	}
	if (b->action != NULL) {
		int failed;
		IPC__CRASHPOINT("barrier.trip.action");
		failed = b->action(b->action_arg) != 0;
		/* Look again: a waiter may have timed out meanwhile. */
		if (failed || barrier_party_died(b, idx, idx)) {
			barrier_break_locked(b);
			return IPC_EBROKEN;
		}
	}
	for (uint32_t j = 0; j < idx; j++)
		atomic_store_explicit(&shm->b_slots[j].s_result, SLOT_RELEASED,
				      memory_order_release);
	atomic_store_explicit(&shm->b_count, 0, memory_order_relaxed);
	IPC__CRASHPOINT("barrier.trip.before_wake");
	barrier_end_round(shm);
	return (int)idx;
}

enum { LOCKED, DONE, GAVE_UP, SLEEP_AGAIN, LOST };

/* Lock b_mutex while holding our slot, unless our outcome arrives first
 * (see "Lock order" above) or dl passes: LOCKED (no outcome yet), DONE (an
 * outcome is in the slot), GAVE_UP, SLEEP_AGAIN (b_mutex stayed held for
 * a moment while the round is still on: the last arrival may be running its
 * action; sleep another slice on b_gen rather than retry at once), or LOST
 * (b_mutex cannot be taken at all: -ENOTRECOVERABLE, damaged). */
static int barrier_lock_unless_done(ipc_barrier *b, struct barrier_slot *slot,
				    uint32_t gen,
				    const struct ipc__deadline *dl)
{
	struct ipc__deadline brief;

	while (atomic_load_explicit(&slot->s_result, memory_order_acquire) ==
	       SLOT_WAITING) {
		int rc;
		ipc__deadline_capped(&brief, dl, 1);
		rc = barrier_lock(b, &brief);
		if (rc != 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			return LOST;
		if (rc != 0) {
			if (ipc__deadline_passed(dl))
				return GAVE_UP;
			if (atomic_load_explicit(&b->shm->b_gen,
						 memory_order_acquire) == gen)
				return SLEEP_AGAIN;
			continue;
		}
		if (atomic_load_explicit(&slot->s_result,
					 memory_order_acquire) == SLOT_WAITING)
			return LOCKED;
		ipc__mutex_unlock(&b->shm->b_mutex);
		break;
	}
	return DONE;
}

/* Under b_mutex, with no outcome in our slot yet: why we must leave now.
 * 0 to sleep on, else the round has been broken and the error is ours. */
static int barrier_sleeper_check(ipc_barrier *b, uint32_t idx, uint32_t gen,
				 const struct ipc__deadline *dl)
{
	uint32_t count = barrier_count(b);
	bool moved = atomic_load_explicit(&b->shm->b_gen,
					  memory_order_relaxed) != gen;
	int rc = 0;

	if (ipc__deadline_passed(dl))
		rc = -ETIMEDOUT;
	else if (count == UINT32_MAX || moved)
		/* Only damage moves b_gen without an outcome for us, or puts
		 * the count out of range. */
		rc = -ENOTRECOVERABLE;
	else if (!barrier_party_died(b, count, idx))
		return 0;
	barrier_break_locked(b);
	return rc;
}

/* Sleep in slot idx of round gen until the round ends. */
static int barrier_sleep(ipc_barrier *b, uint32_t idx, uint32_t gen,
			 const struct ipc__deadline *dl)
{
	struct barrier_shm *shm = b->shm;
	struct barrier_slot *slot = &shm->b_slots[idx];
	struct ipc__deadline slice;
	uint32_t result;
	int rc = 0;

	for (;;) {
		result = atomic_load_explicit(&slot->s_result,
					      memory_order_acquire);
		if (result != SLOT_WAITING)
			break;
		if (atomic_load_explicit(&shm->b_gen, memory_order_acquire) ==
		    gen) {
			ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
			IPC__CRASHPOINT("barrier.wait.sleeping");
			if (ipc__futex_wait(&shm->b_gen, gen, &slice) == 0)
				continue; /* woken: look at the slot */
		}
		/* A slice ended (our deadline, or time to look for the dead),
		 * or b_gen moved with no outcome for us: look under b_mutex.
		 * Never loop without sleeping or checking the deadline. */
		switch (barrier_lock_unless_done(b, slot, gen, dl)) {
		case DONE:
		case SLEEP_AGAIN:
			continue;
		case GAVE_UP:
			/* Out of time and b_mutex unavailable: leave without
			 * it. Our slot, free now, breaks the round for the
			 * others as a dead party's would. */
			rc = -ETIMEDOUT;
			goto out;
		case LOST:
			rc = -ENOTRECOVERABLE;
			goto out;
		}
		rc = barrier_sleeper_check(b, idx, gen, dl);
		ipc__mutex_unlock(&shm->b_mutex);
		if (rc != 0)
			goto out;
	}
out:
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

	if (b != NULL && b->remote != NULL) {
		if (timeout_ms == IPC_DEFAULT_TIMEOUT) {
			timeout_ms = ipc_barrier_default_timeout(b);
			if (timeout_ms < 0 && timeout_ms != IPC_FOREVER)
				return timeout_ms;
		}
		return ipc__sync_call(b->remote, IPC__SYNC_BARRIER_WAIT,
				      timeout_ms);
	}
	if (b == NULL)
		return -EINVAL;
	if (timeout_ms == IPC_DEFAULT_TIMEOUT)
		timeout_ms = b->timeout_ms;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	shm = b->shm;
	rc = barrier_lock_for_wait(b, &dl);
	if (rc != 0)
		return rc; /* -EAGAIN / -ETIMEDOUT: b_mutex stayed held */
	if (atomic_load_explicit(&shm->b_broken, memory_order_relaxed)) {
		rc = IPC_EBROKEN;
		goto out;
	}
	idx = barrier_count(b);
	if (idx == UINT32_MAX) {
		barrier_break_locked(b);
		rc = -ENOTRECOVERABLE;
		goto out;
	}
	gen = atomic_load_explicit(&shm->b_gen, memory_order_relaxed);
	if (idx + 1 == b->parties) {
		rc = barrier_trip_locked(b, idx);
		goto out;
	}
	if (dl.kind == IPC__DL_NOWAIT) {
		rc = -EAGAIN;
		goto out;
	}
	/* The slot may still be held by a waiter of the previous round that
	 * has its outcome but has not run yet; it leaves without b_mutex. A
	 * holder that died there hands it over with EOWNERDEAD: nothing to
	 * repair, the mailbox is rewritten below. Out of time first: the
	 * wait timed out, which breaks the barrier. */
	slot = &shm->b_slots[idx];
	rc = ipc__mutex_lock(&slot->s_lock, &dl, NULL, NULL);
	if (rc == -ETIMEDOUT) {
		barrier_break_locked(b);
		goto out;
	}
	if (rc != 0 && rc != -EOWNERDEAD)
		goto out;
	slot->s_gen = gen;
	atomic_store_explicit(&slot->s_result, SLOT_WAITING,
			      memory_order_relaxed);
	atomic_store_explicit(&shm->b_count, idx + 1, memory_order_relaxed);
	IPC__CRASHPOINT("barrier.wait.counted");
	ipc__mutex_unlock(&shm->b_mutex);
	return barrier_sleep(b, idx, gen, &dl);
out:
	ipc__mutex_unlock(&shm->b_mutex);
	return rc;
}

int ipc_barrier_abort(ipc_barrier *b)
{
	int rc;

	if (b != NULL && b->remote != NULL)
		return ipc__sync_call(b->remote, IPC__SYNC_BARRIER_ABORT, 0);
	if (b == NULL)
		return -EINVAL;
	rc = barrier_lock_admin(b);
	if (rc != 0)
		return rc;
	barrier_break_locked(b);
	ipc__mutex_unlock(&b->shm->b_mutex);
	return 0;
}

int ipc_barrier_reset(ipc_barrier *b)
{
	int rc;

	if (b != NULL && b->remote != NULL)
		return ipc__sync_call(b->remote, IPC__SYNC_BARRIER_RESET, 0);
	if (b == NULL)
		return -EINVAL;
	rc = barrier_lock_admin(b);
	if (rc != 0)
		return rc;
	if (atomic_load_explicit(&b->shm->b_count, memory_order_relaxed) > 0)
		barrier_break_locked(b);
	atomic_store_explicit(&b->shm->b_broken, 0, memory_order_relaxed);
	ipc__mutex_unlock(&b->shm->b_mutex);
	return 0;
}

int ipc_barrier_default_timeout(ipc_barrier *b)
{
	if (b != NULL && b->remote != NULL) {
		int t = ipc__sync_call(b->remote, IPC__SYNC_BARRIER_TIMEOUT, 0);

		return t < 0 ? t : t == 0 ? IPC_FOREVER : t - 1;
	}
	return b ? b->timeout_ms : -EINVAL;
}

unsigned ipc_barrier_parties(ipc_barrier *b)
{
	if (b != NULL && b->remote != NULL) {
		int n = ipc__sync_call(b->remote, IPC__SYNC_BARRIER_PARTIES, 0);
		return n > 0 ? (unsigned)n : 0;
	}
	return b ? b->parties : 0;
}

unsigned ipc_barrier_n_waiting(ipc_barrier *b)
{
	uint32_t count;

	if (b != NULL && b->remote != NULL) {
		int n = ipc__sync_call(b->remote, IPC__SYNC_BARRIER_N_WAITING,
				       0);
		return n > 0 ? (unsigned)n : 0;
	}
	if (b == NULL)
		return 0;
	count = barrier_count(b);
	return count == UINT32_MAX ? 0 : count;
}

bool ipc_barrier_broken(ipc_barrier *b)
{
	if (b != NULL && b->remote != NULL)
		return ipc__sync_call(b->remote, IPC__SYNC_BARRIER_BROKEN, 0) >
		       0;
	return b ? atomic_load_explicit(&b->shm->b_broken,
					memory_order_relaxed) != 0
		 : false;
}

void ipc_barrier_close(ipc_barrier *b)
{
	if (b != NULL && b->remote != NULL) {
		ipc__sync_remote_free(b, b->remote);
		return;
	}
	ipc__handle_free(b);
}

int ipc__barrier_remote(ipc_barrier **b, struct ipc__sync_remote *r)
{
	return ipc__sync_remote_new((void **)b, sizeof(ipc_barrier),
				    offsetof(ipc_barrier, remote), r);
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
