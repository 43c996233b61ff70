/* SPDX-License-Identifier: MIT */
/*
 * queue_zc.c — the zero-copy calls' facade: ipc_queue_reserve, _commit,
 * _cancel, _borrow and _give_back. It checks arguments, keeps the one
 * reservation a handle may have (and which thread holds it: the backend's
 * reservation is that thread's lock), and dispatches. Backends that cannot
 * lend their storage (mqueue, remote) have no such operations: IPC_ENOTSUP.
 */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/queue/queue.h"

/* Is q's reservation open? Its thread may have exited holding it: then
 * the kernel freed the producers' lock it was (the next producer repairs
 * what it left), and the handle may reserve again. */
static bool reservation_open(ipc_queue *q)
{
	if (!atomic_load(&q->reserved) || q->reserver_gen != ipc__fork_gen())
		return false;
	return syscall(SYS_tgkill, (int)getpid(), (int)q->reserver_tid, 0) ==
		       0 ||
	       errno != ESRCH;
}

/* The calling thread's open reservation on q: 0, or -EINVAL. */
static int holds_reservation(ipc_queue *q)
{
	return q != NULL && ipc__queue_check_reserver(q) != 0 ? 0 : -EINVAL;
}

int ipc_queue_reserve(ipc_queue *q, size_t len, void **buf, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (buf != NULL)
		*buf = NULL;
	rc = ipc__queue_begin(q, buf != NULL, timeout_ms, &dl);
	if (rc != 0)
		return rc;
	if (q->ops->reserve == NULL)
		return -ENOTSUP;
	if (ipc__queue_too_long(q, len))
		return -EMSGSIZE;
	if (reservation_open(q))
		return -EBUSY; /* one reservation per handle */
	rc = q->ops->reserve(q->impl, len, buf, &dl);
	if (rc != 0)
		return rc;
	q->reserver = ipc__thread_self();
	q->reserver_tid = ipc__tid_self();
	q->reserver_gen = ipc__fork_gen();
	q->reserved_len = len;
	atomic_store_explicit(&q->reserved, true, memory_order_release);
	return 0;
}

int ipc_queue_commit(ipc_queue *q, size_t len)
{
	int rc = holds_reservation(q);

	if (rc != 0)
		return rc;
	if (len > q->reserved_len)
		return -EINVAL; /* the reservation stays open */
	atomic_store(&q->reserved, false);
	return q->ops->commit(q->impl, len);
}

int ipc_queue_cancel(ipc_queue *q)
{
	int rc = holds_reservation(q);

	if (rc != 0)
		return rc;
	atomic_store(&q->reserved, false);
	q->ops->cancel(q->impl);
	return 0;
}

ssize_t ipc_queue_borrow(ipc_queue *q, const void **msg, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (msg != NULL)
		*msg = NULL;
	rc = ipc__queue_begin(q, msg != NULL, timeout_ms, &dl);
	if (rc != 0)
		return rc;
	if (q->ops->borrow == NULL)
		return -ENOTSUP;
	return q->ops->borrow(q->impl, msg, &dl);
}

int ipc_queue_give_back(ipc_queue *q)
{
	if (q == NULL)
		return -EINVAL;
	if (q->ops->give_back == NULL)
		return -ENOTSUP;
	return q->ops->give_back(q->impl);
}
