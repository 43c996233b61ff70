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
/* 1 held | 0 free | -EINVAL | -ENOTRECOVERABLE (damaged kind)
 * | -ENOTSUP (no glibc). */
int ipc__mutexobj_locked(struct ipc__mutexobj *m);

/* The mutex object behind a Lock / RLock handle (NULL for NULL). */
struct ipc__mutexobj *ipc__lock_obj(ipc_lock *lk);
struct ipc__mutexobj *ipc__rlock_obj(ipc_rlock *lk);

/* ipc_wait (wait/wait.c): the Event's futex word and its value now; 1 if
 * set, 0 if not, -EINVAL for NULL. */
int ipc__event_watch(ipc_event *ev, _Atomic uint32_t **word, uint32_t *val);

/* ipc_stat (stat.c): each kind's live state from a copy of the first len
 * bytes of its segment, header already checked. 0 | -EPROTO (too short,
 * or a field out of range). */
int ipc__lock_describe(const void *seg, size_t len, ipc_object_info *info);
int ipc__event_describe(const void *seg, size_t len, ipc_object_info *info);
int ipc__sem_describe(const void *seg, size_t len, ipc_object_info *info);
int ipc__cond_describe(const void *seg, size_t len, ipc_object_info *info);
int ipc__barrier_describe(const void *seg, size_t len, ipc_object_info *info);

#endif /* LIBIPC_SYNC_H */
