/* SPDX-License-Identifier: MIT */
/*
 * cond.c — Condition: a condition variable on a robust lock — its own, or
 * a Lock or RLock given at creation (Python's Condition(lock)) — built on a
 * futex sequence word instead of a process-shared pthread_cond_t.
 *
 * Segment layout:
 *   c_mutex    the Condition's own lock: robust, recursive (as in Python,
 *              a Condition made without a lock uses an RLock). Unused when
 *              the Condition is built on a Lock or RLock.
 *   c_lock_kind, c_lock_pid, c_lock_created_ns
 *              which lock the Condition uses, fixed at creation: 0 for
 *              c_mutex, else the kind and the identity (creator pid and
 *              creation time, from its segment header) of a Lock or
 *              RLock. Checked against the lock an opener passes, so that
 *              two processes cannot believe they share a Condition while
 *              guarding it with different locks.
 *   c_seq      futex word: notify adds one (wrapping to 0 below 2^31).
 *   c_waiters  waiters between releasing the lock in wait and waking; read
 *              under the lock by notify to skip the system call when zero.
 *
 * wait: with the lock held, read c_seq, count itself in c_waiters, release
 * the lock and sleep while c_seq is unchanged. A notifier holds the lock, so
 * it runs either before the waiter read c_seq (the waiter then sleeps, and
 * is not owed that notify) or after the waiter counted itself (the notify
 * moves c_seq, so the waiter cannot sleep through it). The waiter then
 * reacquires the lock without a time limit, as Python does.
 *
 * notify(n) bumps c_seq and wakes n sleepers in one FUTEX_WAKE_OP system
 * call: a notifier killed mid-call notified or did not, never half. A waiter
 * killed asleep leaves the kernel's queue and cannot swallow a wake-up; its
 * stale c_waiters count costs a spare system call at most. A waiter that
 * had released the lock but not yet slept when the notify came also sees
 * c_seq move and returns: notify(1) can wake two, which condition variables
 * allow (callers loop on their predicate, or use wait_for).
 *
 * Who holds the lock comes from the robust mutex's own word (glibc keeps the
 * owner's thread id there; only the owner writes it), so wait and notify
 * refuse callers that do not hold it, whichever lock it is. wait releases
 * every level the caller holds (an RLock, or the recursive own lock, may be
 * held several times), and restores as many once it has the lock again.
 *
 * A holder killed with the lock: the next acquirer — a thread in acquire or
 * a waiter reacquiring — gets IPC_EOWNERDEAD with the lock held, exactly as
 * with a Lock, since what the lock guards is the caller's data.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

/* Most levels a wait releases and restores: far more than any program
 * nests, and a bound on the loop whatever the lock word says. */
#define COND_MAX_LEVELS 100000

struct ipc_cond {
	struct ipc__seg seg;
	struct cond_shm *shm;
	pthread_mutex_t *mutex; /* c_mutex, or the Lock's / RLock's */
};

/* Which lock a Condition is built on: what creation stores and an opener
 * must match. */
struct cond_lock_id {
	uint32_t kind; /* 0 (own), IPC__KIND_LOCK or IPC__KIND_RLOCK */
	int32_t pid;
	uint64_t created_ns;
};

static int cond_init(void *base, size_t size, const void *arg)
{
	struct cond_shm *shm = base;
	const struct cond_lock_id *id = arg;

	(void)size;
	shm->c_lock_kind = id->kind;
	shm->c_lock_pid = id->pid;
	shm->c_lock_created_ns = id->created_ns;
	atomic_init(&shm->c_seq, 0);
	atomic_init(&shm->c_waiters, 0);
	return ipc__mutex_init(&shm->c_mutex, true);
}

/* 0 if the segment is built on the lock id names; -EPROTO for a lock kind
 * no creation stores, -EINVAL for another lock. */
static int cond_lock_matches(const struct cond_shm *shm,
			     const struct cond_lock_id *id)
{
	uint32_t kind = shm->c_lock_kind;

	if (kind != 0 && kind != IPC__KIND_LOCK && kind != IPC__KIND_RLOCK)
		return -EPROTO;
	if (kind != id->kind)
		return -EINVAL;
	if (kind != 0 && (shm->c_lock_pid != id->pid ||
			  shm->c_lock_created_ns != id->created_ns))
		return -EINVAL;
	return 0;
}

static int cond_check(const void *base, size_t size, const void *arg)
{
	(void)size;
	return cond_lock_matches(base, arg);
}

static const struct ipc__seg_type cond_type = {
	.kind = IPC__KIND_COND,
	.min_size = sizeof(struct cond_shm),
	.init = cond_init,
	.check = cond_check,
};

/* lock: NULL for the Condition's own lock, else the Lock or RLock (kind). */
static int cond_make(ipc_cond **c, const char *name, int flags,
		     struct ipc__mutexobj *lock, uint32_t kind)
{
	struct cond_lock_id id = { 0, 0, 0 };
	int rc;

	if (lock != NULL) {
		const struct ipc__seg_hdr *h = lock->seg.base;
		if (lock->mutex == NULL || h == NULL)
			return -ENOTSUP; /* not a lock in this host's memory */
		id.kind = kind;
		id.pid = h->h_creator_pid;
		id.created_ns = h->h_created_ns;
	}
	rc = ipc__handle_new((void **)c, sizeof(ipc_cond), &cond_type, name,
			     flags, sizeof(struct cond_shm), &id);
	if (rc != 0)
		return rc;
	(*c)->shm = (*c)->seg.base;
	/* Check once more, for keeps: a peer may have changed the fields
	 * since the open's check. */
	rc = cond_lock_matches((*c)->shm, &id);
	if (rc != 0) {
		ipc__handle_free(*c);
		*c = NULL;
		return rc;
	}
	(*c)->mutex = lock ? lock->mutex : &(*c)->shm->c_mutex;
	return 0;
}

int ipc_cond_new(ipc_cond **c)
{
	return cond_make(c, NULL, 0, NULL, 0);
}

int ipc_cond_open(ipc_cond **c, const char *name, int flags)
{
	if (name == NULL)
		return -EINVAL;
	return cond_make(c, name, flags, NULL, 0);
}

int ipc_cond_new_with_lock(ipc_cond **c, ipc_lock *lk)
{
	if (lk == NULL)
		return -EINVAL;
	return cond_make(c, NULL, 0, ipc__lock_obj(lk), IPC__KIND_LOCK);
}

int ipc_cond_new_with_rlock(ipc_cond **c, ipc_rlock *lk)
{
	if (lk == NULL)
		return -EINVAL;
	return cond_make(c, NULL, 0, ipc__rlock_obj(lk), IPC__KIND_RLOCK);
}

int ipc_cond_open_with_lock(ipc_cond **c, const char *name, int flags,
			    ipc_lock *lk)
{
	if (name == NULL || lk == NULL)
		return -EINVAL;
	return cond_make(c, name, flags, ipc__lock_obj(lk), IPC__KIND_LOCK);
}

int ipc_cond_open_with_rlock(ipc_cond **c, const char *name, int flags,
			     ipc_rlock *lk)
{
	if (name == NULL || lk == NULL)
		return -EINVAL;
	return cond_make(c, name, flags, ipc__rlock_obj(lk), IPC__KIND_RLOCK);
}

static int cond_lock(ipc_cond *c, const struct ipc__deadline *dl)
{
	return ipc__mutex_lock(c->mutex, dl, NULL, NULL);
}

static bool cond_held(ipc_cond *c)
{
	return ipc__mutex_owner(c->mutex) == ipc__tid();
}

static int cond_unlock(ipc_cond *c)
{
	return ipc__mutex_unlock(c->mutex);
}

int ipc_cond_acquire(ipc_cond *c, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (c == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	rc = cond_lock(c, &dl);
	if (rc == 0 || rc == -EOWNERDEAD)
		IPC__CRASHPOINT("cond.acquire.held");
	return rc;
}

int ipc_cond_release(ipc_cond *c)
{
	if (c == NULL)
		return -EINVAL;
	if (!cond_held(c))
		return -EPERM;
	return cond_unlock(c);
}

/* Release every level of the lock the caller holds: how many, at least 1,
 * or a negative error with the lock still held as it was. */
static int cond_release_all(ipc_cond *c)
{
	int levels = 0, rc;

	do {
		rc = cond_unlock(c);
		if (rc != 0)
			break;
		levels++;
	} while (levels < COND_MAX_LEVELS && cond_held(c));
	return levels > 0 ? levels : rc;
}

/* Take the lock again after a wait and restore the levels released: the
 * first acquire's result (0 or -EOWNERDEAD; the levels are restored in
 * both cases). */
static int cond_restore(ipc_cond *c, int levels)
{
	int rc = cond_lock(c, &ipc__forever);

	if (rc != 0 && rc != -EOWNERDEAD)
		return rc;
	if (levels > 1)
		IPC__CRASHPOINT("cond.wait.restoring");
	/* The mutex is recursive whenever levels > 1 and the caller holds
	 * it now: each further lock is a count increment. */
	for (int i = 1; i < levels; i++)
		ipc__mutex_lock(c->mutex, &ipc__forever, NULL, NULL);
	return rc;
}

/* One wait with the lock held on entry and on return. */
static int cond_wait_until(ipc_cond *c, const struct ipc__deadline *dl)
{
	struct cond_shm *shm = c->shm;
	uint32_t seq;
	bool notified = false;
	int levels, rc;

	seq = atomic_load_explicit(&shm->c_seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&shm->c_waiters, 1, memory_order_relaxed);
	levels = cond_release_all(c);
	if (levels < 0) {
		atomic_fetch_sub_explicit(&shm->c_waiters, 1,
					  memory_order_relaxed);
		return levels;
	}
	IPC__CRASHPOINT("cond.wait.unlocked");
	for (;;) {
		rc = ipc__futex_wait(&shm->c_seq, seq, dl);
		if (atomic_load_explicit(&shm->c_seq, memory_order_acquire) !=
		    seq) {
			notified = true;
			break;
		}
		if (rc == -ETIMEDOUT)
			break;
	}
	atomic_fetch_sub_explicit(&shm->c_waiters, 1, memory_order_relaxed);
	IPC__CRASHPOINT("cond.wait.woken");
	rc = cond_restore(c, levels);
	if (rc != 0)
		return rc; /* -EOWNERDEAD: held, and the caller must know */
	return notified ? 0 : ipc__deadline_error(dl);
}

int ipc_cond_wait(ipc_cond *c, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (c == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	if (!cond_held(c))
		return -EPERM;
	return cond_wait_until(c, &dl);
}

int ipc_cond_wait_for(ipc_cond *c, bool (*pred)(void *arg), void *arg,
		      int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (c == NULL || pred == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	if (!cond_held(c))
		return -EPERM;
	while (!pred(arg)) {
		if (ipc__deadline_passed(&dl))
			return ipc__deadline_error(&dl);
		rc = cond_wait_until(c, &dl);
		/* A timeout leaves the lock held: look at pred once more.
		 * -EOWNERDEAD leaves it held too, for the caller to repair;
		 * any other error means the lock could not be released or
		 * taken again (damaged), so pred must not run again. */
		if (rc != 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			return rc;
	}
	return 0;
}

int ipc_cond_notify(ipc_cond *c, int n)
{
	if (c == NULL || n < 1)
		return -EINVAL;
	if (!cond_held(c))
		return -EPERM;
	/* Waiters count themselves under the lock we hold: zero is exact. */
	if (atomic_load_explicit(&c->shm->c_waiters, memory_order_relaxed) == 0)
		return 0;
	IPC__CRASHPOINT("cond.notify.before");
	/* c_seq only changes here, under the lock: wrap it below 2^31 (see
	 * ipc__futex_add_wake). Waiters only compare it for inequality. */
	if (atomic_load_explicit(&c->shm->c_seq, memory_order_relaxed) >=
	    COND_SEQ_WRAP)
		ipc__futex_set_wake(&c->shm->c_seq, 0, n);
	else
		ipc__futex_add_wake(&c->shm->c_seq, 1, n);
	return 0;
}

int ipc_cond_notify_all(ipc_cond *c)
{
	return ipc_cond_notify(c, INT_MAX);
}

void ipc_cond_close(ipc_cond *c)
{
	ipc__handle_free(c);
}

/* ipc_stat: the lock's holder and the sleepers, from a copy of the
 * segment. The holder comes from the robust mutex's word, which the kernel
 * clears when its owner dies. */
int ipc__cond_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct cond_shm *shm = seg;

	if (len < sizeof(*shm))
		return -EPROTO;
	/* Built on a Lock or RLock: that object's segment tells its holder. */
	if (shm->c_lock_kind == 0)
		ipc__mutex_peek(&shm->c_mutex, info);
	info->waiters =
		atomic_load_explicit(&shm->c_waiters, memory_order_relaxed);
	return 0;
}
