/* SPDX-License-Identifier: MIT */
/*
 * queue.c — the Queue / JoinableQueue facade.
 *
 * Every public queue call lands here first: NULL handles and bad arguments
 * are refused with IPC_EINVAL before any backend runs, timeouts become one
 * absolute deadline (for put and get, started only when the call first
 * has to wait: ipc__deadline_later), and the call is dispatched through
 * the handle's
 * backend table. Backends therefore never see a bad argument, and new ones
 * (POSIX mqueue, remote over nanomsg) plug in without touching callers.
 */
#include <errno.h>
#include <stdlib.h>

#include "libipc/queue/queue.h"

int ipc__queue_wrap(ipc_queue **q, const struct ipc__queue_ops *ops, void *impl)
{
	*q = calloc(1, sizeof(**q));
	if (*q == NULL) {
		ops->close(impl);
		return -ENOMEM;
	}
	(*q)->ops = ops;
	(*q)->impl = impl;
	(*q)->max_msg = ops->max_msg_fixed ? ops->max_msg_size(impl) : 0;
	return 0;
}

int ipc_queue_open(ipc_queue **q, const char *name, int flags,
		   const ipc_queue_attr *attr)
{
	static const ipc_queue_attr defaults;
	const struct ipc__queue_ops *ops = &ipc__ring_ops;
	void *impl;
	int rc;

	if (q == NULL)
		return -EINVAL;
	*q = NULL;
	if (attr == NULL)
		attr = &defaults;
	switch (attr->backend) {
	case IPC_BACKEND_SHM:
		rc = ipc__ring_open(&impl, name, flags, attr);
		break;
	case IPC_BACKEND_MQUEUE:
		ops = &ipc__mq_ops;
		rc = ipc__mq_open(&impl, name, flags, attr);
		break;
	default:
		return -EINVAL;
	}
	if (rc != 0)
		return rc;
	return ipc__queue_wrap(q, ops, impl);
}

int ipc__queue_dup(ipc_queue *q, ipc_queue **out)
{
	void *impl;
	int rc;

	*out = NULL;
	if (q->ops->dup == NULL)
		return -ENOTSUP;
	rc = q->ops->dup(q->impl, &impl);
	if (rc != 0)
		return rc;
	return ipc__queue_wrap(out, q->ops, impl);
}

int ipc_queue_new(ipc_queue **q, size_t maxsize)
{
	ipc_queue_attr attr = { .maxsize = maxsize };

	return ipc_queue_open(q, NULL, 0, &attr);
}

int ipc_joinable_queue_new(ipc_queue **q, size_t maxsize)
{
	ipc_queue_attr attr = { .maxsize = maxsize, .joinable = true };

	return ipc_queue_open(q, NULL, 0, &attr);
}

int ipc_queue_put(ipc_queue *q, const void *msg, size_t len, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (q == NULL || (msg == NULL && len > 0))
		return -EINVAL;
	rc = ipc__deadline_later(&dl,
				 timeout_ms); /* no clock unless it waits */
	if (rc != 0)
		return rc;
	if (ipc__queue_too_long(q, len))
		return -EMSGSIZE;
	rc = ipc__queue_check_reserver(q);
	if (rc != 0)
		return rc;
	return q->ops->put(q->impl, msg, len, &dl);
}

ssize_t ipc_queue_get(ipc_queue *q, void *buf, size_t cap, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (q == NULL || (buf == NULL && cap > 0))
		return -EINVAL;
	rc = ipc__deadline_later(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	return q->ops->get(q->impl, buf, cap, NULL, &dl);
}

ssize_t ipc_queue_get_alloc(ipc_queue *q, void **msg, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (msg != NULL)
		*msg = NULL;
	if (q == NULL || msg == NULL)
		return -EINVAL;
	rc = ipc__deadline_later(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	return q->ops->get(q->impl, NULL, 0, msg, &dl);
}

int ipc_queue_task_done(ipc_queue *q)
{
	if (q == NULL || !q->ops->joinable(q->impl))
		return -EINVAL;
	return q->ops->task_done(q->impl);
}

int ipc_queue_join(ipc_queue *q, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (q == NULL || !q->ops->joinable(q->impl))
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	return q->ops->join(q->impl, &dl);
}

long ipc_queue_qsize(ipc_queue *q)
{
	return q ? q->ops->qsize(q->impl) : -EINVAL;
}

long ipc_queue_unfinished(ipc_queue *q)
{
	if (q == NULL || !q->ops->joinable(q->impl))
		return -EINVAL;
	return q->ops->unfinished(q->impl);
}

bool ipc_queue_empty(ipc_queue *q)
{
	return q ? q->ops->qsize(q->impl) == 0 : true;
}

bool ipc_queue_full(ipc_queue *q)
{
	return q ? q->ops->full(q->impl) : false;
}

int ipc_queue_shutdown(ipc_queue *q)
{
	return q ? q->ops->shutdown(q->impl) : -EINVAL;
}

int ipc_queue_shutdown_immediate(ipc_queue *q)
{
	if (q == NULL)
		return -EINVAL;
	if (q->ops->shutdown_immediate == NULL)
		return -ENOTSUP;
	/* The drop waits for the producers' lock, which our reservation
	 * holds: refuse before shutting anything down. */
	if (ipc__queue_check_reserver(q) != 0)
		return -EBUSY;
	return q->ops->shutdown_immediate(q->impl);
}

int ipc__queue_watch(ipc_queue *q, struct ipc__watch *w)
{
	if (q == NULL || w == NULL)
		return -EINVAL;
	*w = (struct ipc__watch){ .fd = -1 };
	if (q->ops->watch == NULL)
		return -ENOTSUP;
	return q->ops->watch(q->impl, w);
}

void ipc__queue_unwatch(ipc_queue *q, struct ipc__watch *w)
{
	if (q != NULL && w != NULL && q->ops->unwatch != NULL)
		q->ops->unwatch(q->impl, w);
}

void ipc_queue_close(ipc_queue *q)
{
	if (q == NULL)
		return;
	if (ipc__queue_check_reserver(q) != 0)
		ipc_queue_cancel(q);
	q->ops->close(q->impl);
	free(q);
}
