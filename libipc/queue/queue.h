/* SPDX-License-Identifier: MIT */
/*
 * queue.h — the queue facade's backend table, internal.
 *
 * ipc_queue is a thin handle: a backend's operation table and its private
 * state. queue.c validates arguments, turns timeouts into deadlines and
 * dispatches; each backend (ring.c for shared memory; later the POSIX
 * mqueue one and the remote one registered by net/) implements the table.
 * Backends return 0, a length, or a negative IPC_E* code.
 */
#ifndef LIBIPC_QUEUE_H
#define LIBIPC_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "libipc/core/core.h"

/* What a caller waiting on many objects (ipc_wait) sleeps on for one
 * queue: a futex word, or a file descriptor to poll. Filled by the
 * backend's watch(). */
struct ipc__watch {
	_Atomic uint32_t *word; /* futex word: sleep while *word == val */
	uint32_t val;
	bool shared; /* word lives in a MAP_SHARED mapping */
	int fd;	     /* >= 0: poll(fd, events) instead of a word */
	short events;
	/* > 0: some changes that make the queue readable touch neither the
	 * word nor the fd (the mqueue backend's shutdown; on a JoinableQueue,
	 * a dead consumer's tasks, requeued only when someone looks): the
	 * caller sleeps at most this long before it unwatches and watches
	 * again, which looks. 0: every such change wakes the word or fd. */
	int recheck_ms;
};

struct ipc__queue_ops {
	const char *name;
	int (*put)(void *impl, const void *msg, size_t len,
		   const struct ipc__deadline *dl);
	/* Into buf[0..cap) when alloc is NULL, else into *alloc (malloc'd). */
	ssize_t (*get)(void *impl, void *buf, size_t cap, void **alloc,
		       const struct ipc__deadline *dl);
	int (*task_done)(void *impl);
	int (*join)(void *impl, const struct ipc__deadline *dl);
	long (*qsize)(void *impl);
	long (*unfinished)(void *impl);
	bool (*full)(void *impl);
	int (*shutdown)(void *impl);
	void (*close)(void *impl);
	bool (*joinable)(void *impl);
	size_t (*max_msg_size)(void *impl);
	/* max_msg_size never changes for a handle: the facade reads it once,
	 * at wrap, instead of calling it on every put (a remote queue's limit
	 * comes from the server and may change when it reconnects). */
	bool max_msg_fixed;
	/* A second, independent handle on the same queue (its own consumer
	 * identity), or NULL when the backend cannot make one. */
	int (*dup)(void *impl, void **out);

	/* Optional (NULL: the facade says IPC_ENOTSUP, or, for the batch
	 * calls, loops over put and get). */
	/* ipc_queue_shutdown_immediate; see ipc.h. */
	int (*shutdown_immediate)(void *impl);
	/* ipc_queue_put_many / ipc_queue_get_many (see ipc.h), with the
	 * arguments checked: n >= 1, every length within max_msg_size, no
	 * NULL base with a length. A count (>= 1) or a negative IPC_E*. */
	ssize_t (*put_many)(void *impl, const struct iovec *msgs, size_t n,
			    const struct ipc__deadline *dl);
	ssize_t (*get_many)(void *impl, struct iovec *msgs, size_t n,
			    const struct ipc__deadline *dl);
	/* Arm: count the caller as a watcher BEFORE snapshotting val and
	 * testing readiness, so that any later change that can make the
	 * queue readable (a put, a requeue, shutdown, broken) changes *word
	 * and wakes every watcher. 1: ready now (a get would not block, or
	 * would return IPC_ECLOSED / IPC_ENOTRECOVERABLE), 0: armed, not
	 * ready, negative IPC_E*: cannot be watched. A watcher must never eat
	 * a wake-up meant for a blocked getter: wake watchers with their own
	 * word or wake all. */
	int (*watch)(void *impl, struct ipc__watch *w);
	/* After a watch() that returned >= 0. */
	void (*unwatch)(void *impl, struct ipc__watch *w);
	/* Zero copy (see ipc.h): the facade checks the arguments and that the
	 * calling thread holds the handle's one reservation; commit and
	 * cancel are called only then, with len <= the reserved length. */
	int (*reserve)(void *impl, size_t len, void **buf,
		       const struct ipc__deadline *dl);
	int (*commit)(void *impl, size_t len);
	void (*cancel)(void *impl);
	ssize_t (*borrow)(void *impl, const void **msg,
			  const struct ipc__deadline *dl);
	int (*give_back)(void *impl);
};

struct ipc_queue {
	const struct ipc__queue_ops *ops;
	void *impl;
	/* The open zero-copy reservation (queue_zc.c): who holds it, and how
	 * long it is. While it is open, that thread's puts on this handle are
	 * refused (its space is the next record's). */
	_Atomic bool reserved; /* set last (release), read first (acquire) */
	const void *reserver;  /* its ipc__thread_self() */
	/* And its thread id: a thread made after the reserver exited may
	 * get its thread-local storage, so its address alone names it. */
	int32_t reserver_tid;
	unsigned reserver_gen; /* fork generation: a child holds none */
	size_t reserved_len;
	/* ops->max_msg_size(impl) when ops->max_msg_fixed, else 0 (ask it):
	 * see ipc__queue_too_long. */
	size_t max_msg;
};

/* Is len over q's largest message? One compare when the backend's limit
 * is fixed; the backend is asked only for lengths above the cached one
 * (all but 0 when it is not fixed). */
static inline bool ipc__queue_too_long(ipc_queue *q, size_t len)
{
	return len > q->max_msg && len > q->ops->max_msg_size(q->impl);
}

/* The checks of a call with an out-pointer and a timeout, then its
 * deadline: -EINVAL for a NULL q or out (out_ok false), else 0 or the
 * timeout's error. */
static inline int ipc__queue_begin(ipc_queue *q, bool out_ok, int timeout_ms,
				   struct ipc__deadline *dl)
{
	if (q == NULL || !out_ok)
		return -EINVAL;
	return ipc__deadline_init(dl, timeout_ms);
}

/* IPC_EBUSY if the calling thread holds a reservation on q (queue_zc.c),
 * else 0. Inline: every put asks, and almost always the first load says
 * no. A child forked while its parent held a reservation inherits the flag
 * but not the lock behind it (the parent's thread holds that). A thread
 * that exited holding one leaves the flag, and a later thread may get its
 * thread-local byte: the thread id tells them apart (ipc__tid_self, a
 * thread-local copy). */
static inline int ipc__queue_check_reserver(ipc_queue *q)
{
	return atomic_load_explicit(&q->reserved, memory_order_acquire) &&
			       q->reserver_gen == ipc__fork_gen() &&
			       q->reserver == ipc__thread_self() &&
			       q->reserver_tid == ipc__tid_self()
		       ? -EBUSY
		       : 0;
}

/* Registration hook for backends that live above queue/ (the remote one in
 * net/): wrap impl in a public handle. On failure impl is closed through
 * ops->close. 0 | -ENOMEM. */
int ipc__queue_wrap(ipc_queue **q, const struct ipc__queue_ops *ops,
		    void *impl);

/* A new handle on q's queue with its own JoinableQueue consumer slot, so
 * that one process can consume on behalf of several parties (net/'s server
 * does, one handle per remote client). 0 | -ENOTSUP | -ENOMEM. */
int ipc__queue_dup(ipc_queue *q, ipc_queue **out);

/* Waiting on many objects (ipc_wait): arm and disarm q's watch (see
 * struct ipc__queue_ops.watch). 1 | 0 | IPC_EINVAL (NULL q or w)
 * | IPC_ENOTSUP (a backend that cannot be watched, e.g. remote)
 * | another negative IPC_E* from the backend. Each ipc__queue_watch that
 * returned >= 0 is paired with one ipc__queue_unwatch with the same w,
 * from any thread of the same process. */
int ipc__queue_watch(ipc_queue *q, struct ipc__watch *w);
void ipc__queue_unwatch(ipc_queue *q, struct ipc__watch *w);

/* The shared-memory ring backend (ring.c). */
int ipc__ring_open(void **impl, const char *name, int flags,
		   const ipc_queue_attr *attr);
extern const struct ipc__queue_ops ipc__ring_ops;
int ipc__ring_dup(void *impl, void **out); /* ring_dup.c */

/* The POSIX message queue backend (mqueue.c). */
int ipc__mq_open(void **impl, const char *name, int flags,
		 const ipc_queue_attr *attr);
extern const struct ipc__queue_ops ipc__mq_ops;

/* ipc_stat (stat.c): a queue's live state from a copy of the first len
 * bytes of its segment (fd: the file, for the ring's records; name: for
 * the mq). 0 | -EPROTO. */
int ipc__ring_describe(int fd, const void *seg, size_t len,
		       ipc_object_info *info);
int ipc__mq_describe(const char *name, const void *seg, size_t len,
		     ipc_object_info *info);

#endif /* LIBIPC_QUEUE_H */
