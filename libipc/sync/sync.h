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

/* Remote objects: a handle whose state lives on another host. net/ makes
 * them (ipc_event_connect and friends) through this table, so that sync/
 * never reaches up into net/: each public function of Event, Lock,
 * Semaphore and Barrier starts with a hook that hands a remote handle's
 * call to r->ops->call and returns its result. A remote handle has no
 * segment (seg.base NULL, seg.fd -1). */
enum ipc__sync_op {
	IPC__SYNC_EVENT_SET = 1,
	IPC__SYNC_EVENT_CLEAR,
	IPC__SYNC_EVENT_IS_SET, /* 1 | 0 | code */
	IPC__SYNC_EVENT_WAIT,
	IPC__SYNC_LOCK_ACQUIRE,
	IPC__SYNC_LOCK_RELEASE,
	IPC__SYNC_SEM_ACQUIRE,
	IPC__SYNC_SEM_RELEASE,
	IPC__SYNC_SEM_VALUE,
	IPC__SYNC_BARRIER_WAIT,
	IPC__SYNC_BARRIER_ABORT,
	IPC__SYNC_BARRIER_RESET,
	IPC__SYNC_BARRIER_PARTIES,
	IPC__SYNC_BARRIER_N_WAITING,
	IPC__SYNC_BARRIER_BROKEN, /* 1 | 0 | code */
	/* The argument is n, not a timeout. */
	IPC__SYNC_SEM_RELEASE_N,
	IPC__SYNC_LOCK_LOCKED, /* 1 | 0 | code */
	/* The default timeout plus one: 0 for IPC_FOREVER, so that the value
	 * never reads as an error code. */
	IPC__SYNC_BARRIER_TIMEOUT,
};

struct ipc__sync_remote;
struct ipc__sync_ops {
	/* Run op (timeout_ms for the waiting ones, n for
	 * IPC__SYNC_SEM_RELEASE_N, else 0): the public call's return value,
	 * or a negative IPC_E* code. */
	int (*call)(struct ipc__sync_remote *r, enum ipc__sync_op op,
		    int timeout_ms);
	/* End the remote handle and free r. */
	void (*close)(struct ipc__sync_remote *r);
};

/* The first member of a backend's per-handle state. */
struct ipc__sync_remote {
	const struct ipc__sync_ops *ops;
};

static inline int ipc__sync_call(struct ipc__sync_remote *r,
				 enum ipc__sync_op op, int timeout_ms)
{
	return r->ops->call(r, op, timeout_ms);
}

/* Wrap r in a new handle of the kind (remote.c does the work): 0 |
 * -ENOMEM, in which case r is closed through r->ops->close. */
int ipc__event_remote(ipc_event **ev, struct ipc__sync_remote *r);
int ipc__lock_remote(ipc_lock **lk, struct ipc__sync_remote *r);
int ipc__sem_remote(ipc_sem **s, struct ipc__sync_remote *r);
int ipc__barrier_remote(ipc_barrier **b, struct ipc__sync_remote *r);

/* remote.c: a zeroed handle of handle_size bytes (it starts with struct
 * ipc__seg) with r stored at byte offset remote_off; and its release. */
int ipc__sync_remote_new(void **out, size_t handle_size, size_t remote_off,
			 struct ipc__sync_remote *r);
void ipc__sync_remote_free(void *handle, struct ipc__sync_remote *r);

#endif /* LIBIPC_SYNC_H */
