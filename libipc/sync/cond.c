/* SPDX-License-Identifier: MIT */
/*
 * cond.c — Condition: a condition variable with its own robust lock, built
 * on a futex sequence word instead of a process-shared pthread_cond_t.
 *
 * Segment layout:
 *   c_mutex    the Condition's lock: robust, error-checking.
 *   c_owner    tid of the thread holding c_mutex, 0 when free. Written only
 *              by the holder (after locking, before unlocking), so wait and
 *              notify can refuse callers that do not hold the lock.
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
 * A holder killed with the lock: the next acquirer — a thread in acquire or
 * a waiter reacquiring — gets IPC_EOWNERDEAD with the lock held, exactly as
 * with a Lock, since what the lock guards is the caller's data.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

struct ipc_cond {
	struct ipc__seg seg;
	struct cond_shm *shm;
};

static int cond_init(void *base, size_t size, const void *arg)
{
	struct cond_shm *shm = base;

	(void)size;
	(void)arg;
	atomic_init(&shm->c_owner, 0);
	atomic_init(&shm->c_seq, 0);
	atomic_init(&shm->c_waiters, 0);
	return ipc__mutex_init(&shm->c_mutex, false);
}

static const struct ipc__seg_type cond_type = {
	.kind = IPC__KIND_COND,
	.min_size = sizeof(struct cond_shm),
	.init = cond_init,
};

static int cond_make(ipc_cond **c, const char *name, int flags)
{
	int rc = ipc__handle_new((void **)c, sizeof(ipc_cond), &cond_type, name,
				 flags, sizeof(struct cond_shm), NULL);
	if (rc == 0)
		(*c)->shm = (*c)->seg.base;
	return rc;
}

int ipc_cond_new(ipc_cond **c)
{
	return cond_make(c, NULL, 0);
}

int ipc_cond_open(ipc_cond **c, const char *name, int flags)
{
	if (name == NULL)
		return -EINVAL;
	return cond_make(c, name, flags);
}

static int cond_lock(struct cond_shm *shm, const struct ipc__deadline *dl)
{
	int rc = ipc__mutex_lock(&shm->c_mutex, dl, NULL, NULL);

	if (rc == 0 || rc == -EOWNERDEAD)
		atomic_store_explicit(&shm->c_owner, ipc__tid(),
				      memory_order_relaxed);
	return rc;
}

static bool cond_held(struct cond_shm *shm)
{
	return atomic_load_explicit(&shm->c_owner, memory_order_relaxed) ==
	       ipc__tid();
}

static int cond_unlock(struct cond_shm *shm)
{
	atomic_store_explicit(&shm->c_owner, 0, memory_order_relaxed);
	return ipc__mutex_unlock(&shm->c_mutex);
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
	rc = cond_lock(c->shm, &dl);
	if (rc == 0 || rc == -EOWNERDEAD)
		IPC__CRASHPOINT("cond.acquire.held");
	return rc;
}

int ipc_cond_release(ipc_cond *c)
{
	if (c == NULL)
		return -EINVAL;
	if (!cond_held(c->shm))
		return -EPERM;
	return cond_unlock(c->shm);
}

/* One wait with the lock held on entry and on return. */
static int cond_wait_until(struct cond_shm *shm, const struct ipc__deadline *dl)
{
	uint32_t seq;
	bool notified = false;
	int rc;

	seq = atomic_load_explicit(&shm->c_seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&shm->c_waiters, 1, memory_order_relaxed);
	cond_unlock(shm);
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
	rc = cond_lock(shm, &ipc__forever);
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
	if (!cond_held(c->shm))
		return -EPERM;
	return cond_wait_until(c->shm, &dl);
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
	if (!cond_held(c->shm))
		return -EPERM;
	while (!pred(arg)) {
		if (ipc__deadline_passed(&dl))
			return ipc__deadline_error(&dl);
		rc = cond_wait_until(c->shm, &dl);
		if (rc == -EOWNERDEAD)
			return rc;
	}
	return 0;
}

int ipc_cond_notify(ipc_cond *c, int n)
{
	if (c == NULL || n < 1)
		return -EINVAL;
	if (!cond_held(c->shm))
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
 * clears when its owner dies, not from c_owner, which a dead holder leaves
 * behind. */
int ipc__cond_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct cond_shm *shm = seg;

	if (len < sizeof(*shm))
		return -EPROTO;
	ipc__mutex_peek(&shm->c_mutex, info);
	info->waiters =
		atomic_load_explicit(&shm->c_waiters, memory_order_relaxed);
	return 0;
}
