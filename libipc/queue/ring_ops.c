/* SPDX-License-Identifier: MIT */
/*
 * ring_ops.c — the shared-memory queue backend's operations table: what
 * queue.c calls. It ties the put, get, JoinableQueue and sleeping files
 * together and holds the small read-only operations (qsize, full...).
 */
#include <limits.h>
#include <unistd.h>

#include "libipc/queue/ring.h"

/* ---- The rest ------------------------------------------------------------ */

static long ring_qsize(void *impl)
{
	struct ring *r = impl;
	struct ring_shm *q = r->shm;
	uint64_t head = atomic_load(&q->q_head);
	uint64_t tail = atomic_load(&q->q_tail);
	uint32_t n =
		w_items(tail) - w_items(head) + atomic_load(&q->q_requeued);

	return n > INT32_MAX ? 0 : (long)n; /* a torn snapshot reads as 0 */
}

static long ring_unfinished_count(void *impl)
{
	uint32_t n = ring_unfinished(impl);

	return n > INT32_MAX ? 0 : (long)n;
}

static bool ring_full(void *impl)
{
	struct ring *r = impl;

	/* Done tasks' records may still wait to be freed (ring_reap.c). */
	if (r->joinable && !ipc__ring_ready_to_put(impl, REC_HDR))
		ipc__ring_free_stale(r);
	return !ipc__ring_ready_to_put(impl, REC_HDR) &&
	       !atomic_load(&((struct ring *)impl)->shm->q_closed);
}

static int ring_shutdown(void *impl)
{
	struct ring_shm *q = ((struct ring *)impl)->shm;

	atomic_fetch_or(&q->q_closed, CLOSED_SHUTDOWN);
	IPC__CRASHPOINT("queue.shutdown.flagged");
	ipc__futex_add_wake(&q->q_get_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_put_seq, SEQ_STEP, INT_MAX);
	ipc__futex_add_wake(&q->q_join_seq, SEQ_STEP, INT_MAX);
	return 0;
}

static void ring_close(void *impl)
{
	struct ring *r = impl;
	bool keep = ipc__ring_bias_release(r);

	if (ipc__ring_close_consumer(r) || keep) {
		/* Another thread's robust list runs through a slot mutex (or
		 * the biased producer's registration) in these pages: unmapped,
		 * its next lock of any robust mutex would fault. The pages stay
		 * mapped (until the process exits); the file, and with it our
		 * user slot, goes. */
		if (r->seg.fd >= 0)
			close(r->seg.fd);
		r->seg.base = NULL;
	}
	ipc__ring_zc_close(r);
	ipc__handle_free(r);
}

static bool ring_joinable(void *impl)
{
	return ((struct ring *)impl)->joinable != 0;
}

static size_t ring_max_msg(void *impl)
{
	return ((struct ring *)impl)->max_msg;
}

const struct ipc__queue_ops ipc__ring_ops = {
	.name = "shm",
	.put = ipc__ring_put,
	.get = ipc__ring_get,
	.task_done = ipc__ring_task_done,
	.join = ipc__ring_join,
	.qsize = ring_qsize,
	.unfinished = ring_unfinished_count,
	.full = ring_full,
	.shutdown = ring_shutdown,
	.close = ring_close,
	.joinable = ring_joinable,
	.max_msg_size = ring_max_msg,
	.max_msg_fixed = true,
	.dup = ipc__ring_dup,
	.shutdown_immediate = ipc__ring_shutdown_immediate,
	.put_many = ipc__ring_put_many,
	.get_many = ipc__ring_get_many,
	.reserve = ipc__ring_reserve,
	.commit = ipc__ring_commit,
	.cancel = ipc__ring_cancel,
	.borrow = ipc__ring_borrow,
	.give_back = ipc__ring_give_back,
	.watch = ipc__ring_watch,
	.unwatch = ipc__ring_unwatch,
};
