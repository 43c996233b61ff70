/* SPDX-License-Identifier: MIT */
/*
 * queue_batch.c — ipc_queue_put_many and ipc_queue_get_many: argument
 * checks, and the fallback for backends without batch operations, which
 * loops over their single put and get. The fallback keeps the batch
 * contract for free: every message is one ordinary put or get, so each is
 * whole and exactly once, and a batch cut short (deadline, shutdown, a
 * message that does not fit) reports how far it got.
 */
#include <errno.h>
#include <limits.h>

#include "libipc/queue/queue.h"

/* The checks every batch call shares, then its deadline: 0 or -EINVAL. */
static int batch_begin(ipc_queue *q, const struct iovec *msgs, size_t n,
		       int timeout_ms, struct ipc__deadline *dl)
{
	if (q == NULL || msgs == NULL || n == 0 || n > SSIZE_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (msgs[i].iov_base == NULL && msgs[i].iov_len > 0)
			return -EINVAL;
	return ipc__deadline_init(dl, timeout_ms);
}

static ssize_t put_many_loop(ipc_queue *q, const struct iovec *msgs, size_t n,
			     const struct ipc__deadline *dl)
{
	for (size_t i = 0; i < n; i++) {
		int rc = q->ops->put(q->impl, msgs[i].iov_base, msgs[i].iov_len,
				     dl);
		if (rc < 0)
			return i > 0 ? (ssize_t)i : rc;
	}
	return (ssize_t)n;
}

/* The first get waits until dl; the others only take what is there. */
static ssize_t get_many_loop(ipc_queue *q, struct iovec *msgs, size_t n,
			     const struct ipc__deadline *dl)
{
	static const struct ipc__deadline nowait = { .kind = IPC__DL_NOWAIT };

	for (size_t i = 0; i < n; i++) {
		ssize_t len =
			q->ops->get(q->impl, msgs[i].iov_base, msgs[i].iov_len,
				    NULL, i == 0 ? dl : &nowait);
		if (len < 0)
			return i > 0 ? (ssize_t)i : len;
		msgs[i].iov_len = (size_t)len;
	}
	return (ssize_t)n;
}

ssize_t ipc_queue_put_many(ipc_queue *q, const struct iovec *msgs, size_t n,
			   int timeout_ms)
{
	struct ipc__deadline dl;
	size_t max;
	int rc;

	rc = batch_begin(q, msgs, n, timeout_ms, &dl);
	if (rc != 0)
		return rc;
	max = q->ops->max_msg_size(q->impl);
	for (size_t i = 0; i < n; i++)
		if (msgs[i].iov_len > max)
			return -EMSGSIZE;
	rc = ipc__queue_check_reserver(q);
	if (rc != 0)
		return rc;
	if (q->ops->put_many != NULL)
		return q->ops->put_many(q->impl, msgs, n, &dl);
	return put_many_loop(q, msgs, n, &dl);
}

ssize_t ipc_queue_get_many(ipc_queue *q, struct iovec *msgs, size_t n,
			   int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	rc = batch_begin(q, msgs, n, timeout_ms, &dl);
	if (rc != 0)
		return rc;
	if (q->ops->get_many != NULL)
		return q->ops->get_many(q->impl, msgs, n, &dl);
	return get_many_loop(q, msgs, n, &dl);
}
