/* SPDX-License-Identifier: MIT */
/*
 * rlock.c — RLock: the Lock of lock.c with a recursive robust mutex.
 *
 * glibc keeps the recursion count inside the mutex; when the holder dies,
 * the kernel hands the mutex over with EOWNERDEAD and glibc starts the new
 * holder's count at one, so a dead holder's nesting never leaks into the
 * next owner. Release by a thread that does not hold it is IPC_EPERM.
 */
#include <errno.h>

#include "libipc/sync/sync.h"

struct ipc_rlock {
	struct ipc__mutexobj m;
};

int ipc_rlock_new(ipc_rlock **lk)
{
	return ipc__mutexobj_make((struct ipc__mutexobj **)lk,
				  sizeof(ipc_rlock), true, NULL, 0);
}

int ipc_rlock_open(ipc_rlock **lk, const char *name, int flags)
{
	if (name == NULL)
		return -EINVAL;
	return ipc__mutexobj_make((struct ipc__mutexobj **)lk,
				  sizeof(ipc_rlock), true, name, flags);
}

int ipc_rlock_acquire(ipc_rlock *lk, int timeout_ms)
{
	return ipc__mutexobj_acquire(lk ? &lk->m : NULL, timeout_ms);
}

int ipc_rlock_release(ipc_rlock *lk)
{
	return ipc__mutexobj_release(lk ? &lk->m : NULL);
}

int ipc_rlock_locked(ipc_rlock *lk)
{
	return ipc__mutexobj_locked(lk ? &lk->m : NULL);
}

struct ipc__mutexobj *ipc__rlock_obj(ipc_rlock *lk)
{
	return lk ? &lk->m : NULL;
}

void ipc_rlock_close(ipc_rlock *lk)
{
	ipc__handle_free(lk);
}
