/* SPDX-License-Identifier: MIT */
/*
 * lock.c — Lock (and, through rlock.c, RLock): a robust process-shared
 * pthread mutex in its own segment.
 *
 * A pthread mutex already has everything a Lock needs: an uncontended
 * acquire and release are one atomic instruction each with no system call,
 * waiters sleep on a futex, and the kernel's robust list hands a dead
 * holder's lock to the next acquirer with EOWNERDEAD. What is left here is
 * the contract: the lock is made consistent before the caller sees
 * IPC_EOWNERDEAD (the caller owns a usable lock and learns that what it
 * guards may be half-updated), release by a thread that does not hold it is
 * IPC_EPERM, and timeouts follow the library's convention.
 *
 * Segment layout (one cache line after the header):
 *   l_mutex  robust, process-shared; error-checking (Lock) or recursive
 *            (RLock). All its fields belong to glibc.
 */
#include <errno.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

struct ipc_lock {
	struct ipc__mutexobj m;
	struct ipc__sync_remote *remote; /* served by another host; or NULL */
};

static int lock_init(void *base, size_t size, const void *arg)
{
	struct lock_shm *shm = base;
	const bool *recursive = arg;

	(void)size;
	return ipc__mutex_init(&shm->l_mutex, *recursive);
}

static const struct ipc__seg_type lock_type = {
	.kind = IPC__KIND_LOCK,
	.min_size = sizeof(struct lock_shm),
	.init = lock_init,
};

static const struct ipc__seg_type rlock_type = {
	.kind = IPC__KIND_RLOCK,
	.min_size = sizeof(struct lock_shm),
	.init = lock_init,
};

int ipc__mutexobj_make(struct ipc__mutexobj **out, size_t handle_size,
		       bool recursive, const char *name, int flags)
{
	struct ipc__mutexobj *m;
	int rc;

	rc = ipc__handle_new((void **)out, handle_size,
			     recursive ? &rlock_type : &lock_type, name, flags,
			     sizeof(struct lock_shm), &recursive);
	if (rc != 0)
		return rc;
	m = *out;
	m->mutex = &((struct lock_shm *)m->seg.base)->l_mutex;
	m->point_acquired =
		recursive ? "rlock.acquire.held" : "lock.acquire.held";
	m->point_release =
		recursive ? "rlock.release.before" : "lock.release.before";
	return 0;
}

int ipc__mutexobj_acquire(struct ipc__mutexobj *m, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (m == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	rc = ipc__mutex_lock(m->mutex, &dl, NULL, NULL);
	if (rc == 0 || rc == -EOWNERDEAD)
		IPC__CRASHPOINT(m->point_acquired);
	return rc;
}

int ipc__mutexobj_release(struct ipc__mutexobj *m)
{
	if (m == NULL)
		return -EINVAL;
	IPC__CRASHPOINT(m->point_release);
	return ipc__mutex_unlock(m->mutex);
}

int ipc_lock_new(ipc_lock **lk)
{
	return ipc__mutexobj_make((struct ipc__mutexobj **)lk, sizeof(ipc_lock),
				  false, NULL, 0);
}

int ipc_lock_open(ipc_lock **lk, const char *name, int flags)
{
	if (name == NULL)
		return -EINVAL;
	return ipc__mutexobj_make((struct ipc__mutexobj **)lk, sizeof(ipc_lock),
				  false, name, flags);
}

int ipc_lock_acquire(ipc_lock *lk, int timeout_ms)
{
	if (lk != NULL && lk->remote != NULL)
		return ipc__sync_call(lk->remote, IPC__SYNC_LOCK_ACQUIRE,
				      timeout_ms);
	return ipc__mutexobj_acquire(lk ? &lk->m : NULL, timeout_ms);
}

int ipc_lock_release(ipc_lock *lk)
{
	if (lk != NULL && lk->remote != NULL)
		return ipc__sync_call(lk->remote, IPC__SYNC_LOCK_RELEASE, 0);
	return ipc__mutexobj_release(lk ? &lk->m : NULL);
}

/* Held (1) or free (0) at the moment the mutex word was read: a lock whose
 * holder died reads as free, since the next acquirer gets it. */
int ipc__mutexobj_locked(struct ipc__mutexobj *m)
{
	int32_t owner;

	if (m == NULL)
		return -EINVAL;
	if (!ipc__mutex_sane(m->mutex))
		return -ENOTRECOVERABLE;
	owner = ipc__mutex_owner(m->mutex);
	if (owner < 0)
		return -ENOTSUP;
	return owner != 0 ? 1 : 0;
}

int ipc_lock_locked(ipc_lock *lk)
{
	if (lk != NULL && lk->remote != NULL)
		return ipc__sync_call(lk->remote, IPC__SYNC_LOCK_LOCKED, 0);
	return ipc__mutexobj_locked(lk ? &lk->m : NULL);
}

struct ipc__mutexobj *ipc__lock_obj(ipc_lock *lk)
{
	return lk ? &lk->m : NULL;
}

void ipc_lock_close(ipc_lock *lk)
{
	if (lk != NULL && lk->remote != NULL) {
		ipc__sync_remote_free(lk, lk->remote);
		return;
	}
	ipc__handle_free(lk);
}

int ipc__lock_remote(ipc_lock **lk, struct ipc__sync_remote *r)
{
	return ipc__sync_remote_new((void **)lk, sizeof(ipc_lock),
				    offsetof(ipc_lock, remote), r);
}

/* ipc_stat: the holder of a Lock or RLock, from a copy of its segment. */
int ipc__lock_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct lock_shm *shm = seg;

	if (len < sizeof(*shm))
		return -EPROTO;
	ipc__mutex_peek(&shm->l_mutex, info);
	return 0;
}
