/* SPDX-License-Identifier: MIT */
/*
 * sync.h — what the synchronisation objects share, internal.
 */
#ifndef LIBIPC_SYNC_H
#define LIBIPC_SYNC_H

#include "libipc/core/core.h"

/* Lock and RLock are one shared layout, a robust mutex alone on its cache
 * line; only the mutex type (error-checking or recursive) and the segment
 * kind differ. lock.c implements both; rlock.c is the RLock face. */
struct ipc__mutexobj {
	struct ipc__seg seg;
	pthread_mutex_t *mutex;
	const char *point_acquired; /* crash point names */
	const char *point_release;
};

int ipc__mutexobj_make(struct ipc__mutexobj **out, size_t handle_size,
		       bool recursive, const char *name, int flags);
int ipc__mutexobj_acquire(struct ipc__mutexobj *m, int timeout_ms);
int ipc__mutexobj_release(struct ipc__mutexobj *m);

#endif /* LIBIPC_SYNC_H */
