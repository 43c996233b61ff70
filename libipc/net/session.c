/* SPDX-License-Identifier: MIT */
/*
 * session.c — what a server's session thread does with one request: run it
 * on the served object (sliced waits, batches), keep what a lost reply
 * carried (a got message goes to the client's next get; an acquire the
 * client believes failed is undone), and give back what the session holds
 * when it ends. Only the session's own thread calls these, so the fields
 * they use without s->mu (und*, lock_held, sem_held) are that thread's;
 * ipc__session_reply_outlives_end, the receiving thread's, reads only
 * fields under s->mu.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/net/server.h"

/* ---- Executing one request (session thread) ------------------------------ */

/* The server-side wait for a client's timeout argument: never longer than
 * one slice. */
static int slice_ms(int32_t arg)
{
	if (arg < 0 || arg > IPC__NET_SLICE_MS)
		return IPC__NET_SLICE_MS;
	return arg;
}

/* Run an Event, Lock, Semaphore or Barrier request: its status. The
 * session thread is the thread that holds a Lock for its client. */
static int32_t session_exec_sync(struct session *s, const struct ipc__body *b)
{
	int rc;

	switch (b->op) {
	case IPC__OP_EV_SET:
		return ipc_event_set(s->obj);
	case IPC__OP_EV_CLEAR:
		return ipc_event_clear(s->obj);
	case IPC__OP_EV_IS_SET:
		return ipc_event_is_set(s->obj) ? 1 : 0;
	case IPC__OP_EV_WAIT:
		return ipc_event_wait(s->obj, slice_ms(b->arg));
	case IPC__OP_LK_ACQUIRE:
		rc = ipc_lock_acquire(s->obj, slice_ms(b->arg));
		if (IPC_OK(rc))
			s->lock_held = true;
		return rc;
	case IPC__OP_LK_RELEASE:
		rc = ipc_lock_release(s->obj);
		if (rc == 0)
			s->lock_held = false;
		return rc;
	case IPC__OP_SEM_ACQUIRE:
		rc = ipc_sem_acquire(s->obj, slice_ms(b->arg));
		if (rc == 0)
			s->sem_held++;
		return rc;
	case IPC__OP_SEM_RELEASE:
		rc = ipc_sem_release(s->obj);
		if (rc == 0 && s->sem_held > 0)
			s->sem_held--;
		return rc;
	case IPC__OP_SEM_VALUE:
		return ipc_sem_value(s->obj);
	case IPC__OP_SEM_RELEASE_N:
		if (b->arg < 1)
			return IPC_EINVAL;
		rc = ipc_sem_release_n(s->obj, (unsigned)b->arg);
		if (rc == 0 && s->sem_held > 0)
			s->sem_held -=
				s->sem_held < b->arg ? s->sem_held : b->arg;
		return rc;
	case IPC__OP_LK_LOCKED:
		return ipc_lock_locked(s->obj);
	case IPC__OP_BAR_WAIT:
		/* One piece, not slices: a barrier wait that times out breaks
		 * the barrier. */
		return ipc_barrier_wait(s->obj,
					b->arg < 0 ? IPC_FOREVER : b->arg);
	case IPC__OP_BAR_ABORT:
		return ipc_barrier_abort(s->obj);
	case IPC__OP_BAR_RESET:
		return ipc_barrier_reset(s->obj);
	case IPC__OP_BAR_PARTIES:
		return (int32_t)ipc_barrier_parties(s->obj);
	case IPC__OP_BAR_N_WAITING:
		return (int32_t)ipc_barrier_n_waiting(s->obj);
	case IPC__OP_BAR_BROKEN:
		return ipc_barrier_broken(s->obj) ? 1 : 0;
	case IPC__OP_BAR_TIMEOUT:
		/* + 1 without overflow: INT32_MAX ms reads as one less. */
		rc = ipc_barrier_default_timeout(s->obj);
		if (rc == INT32_MAX)
			rc--;
		return rc == IPC_FOREVER ? 0 : rc > 0 ? rc + 1 : IPC_EPROTO;
	default:
		return IPC_ENOTSUP;
	}
}

/* ---- Messages whose reply was lost (session thread) ---------------------- */

static size_t und_next_len(const struct session *s)
{
	return ipc__get_le32(s->und + s->und_off);
}

static void und_take(struct session *s)
{
	s->und_off += 4 + und_next_len(s);
	if (--s->und_n == 0) {
		free(s->und);
		s->und = NULL;
		s->und_len = s->und_off = 0;
	}
}

/* Keep the n messages of batch data[0..len) ahead of those kept already
 * (they were got first). */
static void und_prepend(struct session *s, const uint8_t *data, size_t len,
			size_t n)
{
	size_t rest = s->und_len - s->und_off;
	uint8_t *p = malloc(len + rest ? len + rest : 1);

	if (p == NULL) {
		ipc__srv_log(
			s->srv,
			"session %016llx: out of memory: %zu message(s) whose "
			"reply was lost are dropped",
			(unsigned long long)s->sid, n);
		return;
	}
	memcpy(p, data, len);
	if (rest > 0)
		memcpy(p + len, s->und + s->und_off, rest);
	free(s->und);
	s->und = p;
	s->und_len = len + rest;
	s->und_off = 0;
	s->und_n += n;
}

/* The largest message the session's queue holds, as far as we carry it. */
static size_t session_max_msg(struct session *s)
{
	size_t m = s->q->ops->max_msg_size(s->q->impl);

	return m < IPC__NET_MAX_MSG ? m : IPC__NET_MAX_MSG;
}

/* A batch get: up to val messages, each within its capacity (the request's
 * data, one u32 each), as a batch in *out; r->arg is the count or the
 * error. Messages kept from a lost reply come first, alone. */
static void session_get_many(struct session *s, const struct ipc__body *b,
			     struct ipc__body *r, void **out)
{
	size_t n = (size_t)b->val, total = 0, k = 0, off = 0;
	size_t max = session_max_msg(s);
	struct iovec *iov;
	uint8_t *scratch;
	ssize_t m;

	if (b->val < 1 || b->val > IPC__NET_BATCH_MAX || b->len != 4 * n) {
		r->arg = IPC_EPROTO;
		return;
	}
	iov = malloc(n * sizeof(*iov));
	if (iov == NULL) {
		r->arg = IPC_ENOMEM;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t cap = ipc__get_le32(b->data + 4 * i);
		iov[i].iov_len = cap < max ? cap : max;
		total += 4 + iov[i].iov_len;
	}
	if (total > IPC__NET_MAX_MSG) { /* the reply would not fit a frame */
		free(iov);
		r->arg = IPC_EPROTO;
		return;
	}
	scratch = malloc(total);
	if (scratch == NULL) {
		free(iov);
		r->arg = IPC_ENOMEM;
		return;
	}
	if (s->und_n > 0) {
		/* Pack kept messages straight into the reply. */
		while (k < n && s->und_n > 0 &&
		       und_next_len(s) <= iov[k].iov_len) {
			size_t len = und_next_len(s);
			memcpy(scratch + off, s->und + s->und_off, 4 + len);
			off += 4 + len;
			k++;
			und_take(s);
		}
		m = k > 0 ? (ssize_t)k : IPC_EMSGSIZE;
	} else {
		for (size_t i = 0; i < n; i++) {
			iov[i].iov_base = scratch + off + 4;
			off += 4 + iov[i].iov_len;
		}
		m = ipc_queue_get_many(s->q, iov, n, slice_ms(b->arg));
		/* Pack the m messages got: each length before its bytes. */
		off = 0;
		for (ssize_t i = 0; i < m; i++) {
			uint8_t *at = scratch + off;
			ipc__put_le32(at, (uint32_t)iov[i].iov_len);
			memmove(at + 4, iov[i].iov_base, iov[i].iov_len);
			off += 4 + iov[i].iov_len;
		}
	}
	free(iov);
	r->arg = (int32_t)m;
	if (m < 0) {
		free(scratch);
		return;
	}
	*out = scratch;
	r->data = scratch;
	r->len = (uint32_t)off;
}

/* A batch put: how many were put, or the first one's error. A batch that
 * does not parse is refused whole (IPC_EPROTO), nothing put. */
static int32_t session_put_many(struct session *s, const struct ipc__body *b)
{
	struct iovec *iov;
	ssize_t n;

	if (b->val < 1 || b->val > IPC__NET_BATCH_MAX)
		return IPC_EPROTO;
	iov = malloc((size_t)b->val * sizeof(*iov));
	if (iov == NULL)
		return IPC_ENOMEM;
	if (ipc__batch_decode(b->data, b->len, (size_t)b->val, iov) != 0)
		n = IPC_EPROTO;
	else
		n = ipc_queue_put_many(s->q, iov, (size_t)b->val,
				       slice_ms(b->arg));
	free(iov);
	return (int32_t)n;
}

/* Run body b; fill reply r (r->data may be set to *out, malloc'd). */
void ipc__session_exec(struct session *s, const struct ipc__body *b,
		       struct ipc__body *r, void **out)
{
	int kind = ipc__op_kind(b->op);
	ssize_t n;

	r->op = b->op;
	r->arg = 0;
	if (kind > 0 && kind != s->kind) {
		r->arg = IPC_ENOTSUP; /* an op of another kind of object */
		return;
	}
	if (kind > IPC__NK_QUEUE) {
		r->arg = session_exec_sync(s, b);
		return;
	}
	switch (b->op) {
	case IPC__OP_PING:
	case IPC__OP_OPEN:
		break;
	case IPC__OP_CLOSE:
		pthread_mutex_lock(&s->mu);
		s->want_close = true;
		pthread_mutex_unlock(&s->mu);
		break;
	case IPC__OP_Q_PUT:
		r->arg = ipc_queue_put(s->q, b->data, b->len, slice_ms(b->arg));
		break;
	case IPC__OP_Q_GET:
		if (s->und_n > 0) {
			size_t len = und_next_len(s);
			if (b->val >= 0 && (size_t)b->val < len) {
				r->arg = IPC_EMSGSIZE;
				break;
			}
			*out = malloc(len ? len : 1);
			if (*out == NULL) {
				r->arg = IPC_ENOMEM;
				break;
			}
			memcpy(*out, s->und + s->und_off + 4, len);
			n = (ssize_t)len;
			und_take(s);
		} else if (b->val < 0) {
			n = ipc_queue_get_alloc(s->q, out, slice_ms(b->arg));
		} else {
			size_t cap = (size_t)b->val;
			if (cap > IPC__NET_MAX_MSG)
				cap = IPC__NET_MAX_MSG;
			*out = malloc(cap ? cap : 1);
			n = *out ? ipc_queue_get(s->q, *out, cap,
						 slice_ms(b->arg))
				 : IPC_ENOMEM;
		}
		if (n < 0) {
			free(*out);
			*out = NULL;
			r->arg = (int32_t)n;
			break;
		}
		r->arg = (int32_t)n;
		r->data = *out;
		r->len = (uint32_t)n;
		break;
	case IPC__OP_Q_TASK_DONE:
		r->arg = ipc_queue_task_done(s->q);
		break;
	case IPC__OP_Q_JOIN:
		r->arg = ipc_queue_join(s->q, slice_ms(b->arg));
		break;
	case IPC__OP_Q_QSIZE:
		r->val = ipc_queue_qsize(s->q);
		break;
	case IPC__OP_Q_UNFINISHED:
		r->val = ipc_queue_unfinished(s->q);
		break;
	case IPC__OP_Q_FULL:
		r->val = ipc_queue_full(s->q);
		break;
	case IPC__OP_Q_SHUTDOWN:
		r->arg = ipc_queue_shutdown(s->q);
		break;
	case IPC__OP_Q_PUT_MANY:
		r->arg = session_put_many(s, b);
		break;
	case IPC__OP_Q_GET_MANY:
		session_get_many(s, b, r, out);
		break;
	default:
		r->arg = IPC_ENOTSUP;
		break;
	}
}

/* The previous reply was a message the client never received: keep it for
 * the client's next get (the cache holds the only copy). */
static void session_keep_lost(struct session *s, struct ipc__body *lost)
{
	if (s->last_op == IPC__OP_Q_GET && s->last_status >= 0) {
		uint8_t *one = malloc(4 + (size_t)lost->len);
		if (one == NULL)
			return;
		ipc__put_le32(one, lost->len);
		memcpy(one + 4, lost->data, lost->len);
		und_prepend(s, one, 4 + (size_t)lost->len, 1);
		free(one);
	} else if (s->last_op == IPC__OP_Q_GET_MANY && s->last_status > 0) {
		und_prepend(s, lost->data, lost->len, (size_t)s->last_status);
	}
}

/* The client gave up on the reply to an acquire that succeeded: it does
 * not believe it holds the Lock or the unit, so nobody would release it. */
static bool session_undo_lost_acquire(struct session *s)
{
	if (s->last_op == IPC__OP_LK_ACQUIRE) {
		if (IPC_OK(s->last_status) && s->lock_held &&
		    ipc_lock_release(s->obj) == 0)
			s->lock_held = false;
		return true;
	}
	if (s->last_op == IPC__OP_SEM_ACQUIRE) {
		if (s->last_status == 0 && s->sem_held > 0 &&
		    ipc_sem_release(s->obj) == 0)
			s->sem_held--;
		return true;
	}
	return false;
}

/* What a session holds when it ends goes back: the client vanished, or
 * closed its handle without releasing. */
static void session_release_held(struct session *s)
{
	if (s->lock_held && ipc_lock_release(s->obj) == 0)
		ipc__srv_log(s->srv,
			     "session %016llx (%s): its lock is released",
			     (unsigned long long)s->sid, s->name);
	s->lock_held = false;
	if (s->sem_held > 0)
		ipc__srv_log(
			s->srv,
			"session %016llx (%s): %ld semaphore unit(s) released",
			(unsigned long long)s->sid, s->name, s->sem_held);
	for (; s->sem_held > 0; s->sem_held--)
		(void)ipc_sem_release(s->obj);
}

void ipc__session_recover_lost(struct session *s)
{
	const uint8_t *key = s->srv->keys.keyed ? s->sk.s2c : NULL;
	struct ipc__frame f;
	struct ipc__body b;
	uint8_t *plain;

	if (session_undo_lost_acquire(s))
		return;
	if (s->last_reply == NULL ||
	    ipc__frame_decode(s->last_reply, s->last_reply_len, &f) != 0 ||
	    ipc__frame_open(&f, s->last_reply, key, IPC__DIR_S2C, &plain, &b) !=
		    0)
		return;
	session_keep_lost(s, &b);
	free(plain);
}

bool ipc__session_reply_outlives_end(const struct session *s)
{
	switch (s->last_op) {
	case IPC__OP_Q_GET:
		return s->last_status < 0;
	case IPC__OP_Q_GET_MANY:
		return s->last_status <= 0;
	case IPC__OP_LK_ACQUIRE:
		return !IPC_OK(s->last_status);
	case IPC__OP_SEM_ACQUIRE:
		return s->last_status != 0;
	default:
		return true;
	}
}

void ipc__session_give_back(struct session *s)
{
	/* A plain Queue has no requeue of its own: a message whose reply was
	 * lost goes back to the queue (at the tail) — also one carried by the
	 * last reply, which no later request confirmed the client received
	 * (at-least-once: a client that got it and then vanished sees it
	 * again elsewhere). */
	if (!s->joinable &&
	    (s->last_op == IPC__OP_Q_GET || s->last_op == IPC__OP_Q_GET_MANY))
		ipc__session_recover_lost(s);
	for (; !s->joinable && s->und_n > 0; und_take(s))
		if (ipc_queue_put(s->q, s->und + s->und_off + 4,
				  und_next_len(s), IPC_NOWAIT) != 0)
			ipc__srv_log(s->srv,
				     "session %016llx: a message whose reply "
				     "was lost could not be put back",
				     (unsigned long long)s->sid);
	session_release_held(s);
}
