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

#include <sys/types.h>

#include "libipc/core/core.h"

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
	/* A second, independent handle on the same queue (its own consumer
	 * identity), or NULL when the backend cannot make one. */
	int (*dup)(void *impl, void **out);
};

struct ipc_queue {
	const struct ipc__queue_ops *ops;
	void *impl;
};

/* Registration hook for backends that live above queue/ (the remote one in
 * net/): wrap impl in a public handle. On failure impl is closed through
 * ops->close. 0 | -ENOMEM. */
int ipc__queue_wrap(ipc_queue **q, const struct ipc__queue_ops *ops,
		    void *impl);

/* A new handle on q's queue with its own JoinableQueue consumer slot, so
 * that one process can consume on behalf of several parties (net/'s server
 * does, one handle per remote client). 0 | -ENOTSUP | -ENOMEM. */
int ipc__queue_dup(ipc_queue *q, ipc_queue **out);

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
