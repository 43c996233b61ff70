/* SPDX-License-Identifier: MIT */
/*
 * client.c — the remote queue backend: an ipc_queue whose operations travel
 * to a server.
 *
 * Each handle has its own nanomsg REQ socket, its own session with the
 * server and one request in flight at a time (a mutex orders the callers
 * of a shared handle). A request is retried with the same sequence number
 * until an answer comes or the call's deadline passes; the server's dedupe
 * makes retries harmless. nanomsg reconnects the TCP connection by itself
 * and resends the pending request; when the server answers that it does
 * not know the session (it restarted, or expired our lease while we were
 * cut off) the handle runs the handshake again and repeats the request in
 * the new session. (A server that expired the session answers a resend of
 * the request it ran last there with that request's reply, so what is
 * repeated never ran.)
 *
 * Blocking calls are cut into server-side waits of at most a slice
 * (IPC__NET_SLICE_MS), each a request of its own, until the caller's
 * deadline. A background thread sends a PING when the handle has been
 * quiet for a third of the lease, so that an idle consumer holding tasks
 * keeps its lease, and a lost session is rebuilt before the next call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "libipc/net/net.h"
#include "libipc/queue/queue.h"

struct ipc__conn {
	int sock;
	uint8_t kind; /* enum ipc__net_kind */
	char name[IPC__NET_NAME_MAX + 1];
	struct ipc__keys keys;
	int timeout_ms;
	uint8_t client_id[IPC__NET_ID];

	pthread_mutex_t mu; /* one request at a time; everything below */
	bool connected;
	uint64_t sid;
	struct ipc__session_keys sk;
	uint64_t seq;	    /* of the last request sent in this session */
	bool prev_lost;	    /* we gave up on the reply to seq */
	long lost_run;	    /* and on this many in a row, ending with seq */
	uint16_t seq_flags; /* the flags seq was sent with */
	long seq_run;	    /* the run of lost replies seq reported */
	bool joinable;
	size_t max_msg;
	int lease_ms;
	long tasks;	  /* got in this session, not yet done */
	long stale_tasks; /* got in a lost session (requeued by the server) */
	int64_t last_ms;  /* last answer */

	/* Callers waiting for mu. The lease keeper's PING gives way to them
	 * (hb_call: it is the one exchanging now): its answer may be lost,
	 * and a caller must not wait out its deadline behind it. */
	_Atomic int waiters;
	bool hb_call;

	pthread_t hb;
	pthread_mutex_t hb_mu;
	pthread_cond_t hb_cv;
	bool hb_stop;
	bool hb_started;
};

/* ---- One exchange -------------------------------------------------------- */

/* The error for an exchange that got no answer before its deadline. */
static int rq_silence_error(struct ipc__conn *c)
{
	if (nn_get_statistic(c->sock, NN_STAT_CURRENT_CONNECTIONS) == 0 &&
	    nn_get_statistic(c->sock, NN_STAT_CONNECT_ERRORS) > 0)
		return IPC_ECONNREFUSED;
	return IPC_ETIMEDOUT;
}

/* Send buf and wait for a frame that answers seq, until deadline_ms
 * (absolute, ipc__net_now_ms; -1 forever). The answer is decoded into *f
 * over the nn-allocated *raw (caller nn_freemsg's it). Frames that do not
 * decode or answer another seq are dropped. */
static int rq_exchange(struct ipc__conn *c, const uint8_t *buf, size_t len,
		       uint64_t seq, int64_t deadline_ms, uint8_t **raw,
		       struct ipc__frame *f)
{
	bool sent = false;

	*raw = NULL;
	for (;;) {
		int64_t left = deadline_ms < 0
				       ? IPC__NET_TIMEOUT_MS
				       : deadline_ms - ipc__net_now_ms();
		int ms, n;
		void *msg = NULL;
		if (left <= 0)
			return rq_silence_error(c);
		ms = left > 1000 ? 1000 : (int)left;
		if (c->hb_call) {
			if (atomic_load(&c->waiters) > 0)
				return IPC_ETIMEDOUT; /* a caller wants it */
			ms = ms > 20 ? 20 : ms;
		}
		if (!sent) {
			nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &ms,
				      sizeof(ms));
			if (nn_send(c->sock, buf, len, 0) < 0) {
				if (nn_errno() != ETIMEDOUT &&
				    nn_errno() != EAGAIN)
					return ipc__nn_error(nn_errno());
				continue;
			}
			sent = true;
			continue;
		}
		nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &ms,
			      sizeof(ms));
		n = nn_recv(c->sock, &msg, NN_MSG, 0);
		if (n < 0) {
			if (nn_errno() == EFSM) /* the request was cancelled */
				sent = false;
			else if (nn_errno() != ETIMEDOUT &&
				 nn_errno() != EAGAIN)
				return ipc__nn_error(nn_errno());
			continue;
		}
		if (ipc__frame_decode(msg, (size_t)n, f) == 0 &&
		    f->seq == seq) {
			*raw = msg;
			c->last_ms = ipc__net_now_ms();
			return 0;
		}
		nn_freemsg(msg);
		sent = false; /* REQ needs a new send before the next recv */
	}
}

static int err_payload(const struct ipc__frame *f)
{
	int code;

	if (f->len != 4)
		return IPC_EPROTO;
	code = (int)ipc__get_le32(f->payload);
	return code < 0 ? code : IPC_EPROTO;
}

/* Read the OPEN reply that ends a handshake. */
static int rq_welcome(struct ipc__conn *c, const struct ipc__frame *f,
		      const uint8_t *raw)
{
	struct ipc__body b;
	uint8_t *plain;
	int rc;

	if (f->type == IPC__F_ERR)
		return err_payload(f);
	if (f->type == IPC__F_NOSESSION)
		return IPC_EBUSY; /* our half-done handshake was discarded */
	if (f->type != IPC__F_REP)
		return IPC_EPROTO;
	rc = ipc__frame_open(f, raw, c->keys.keyed ? c->sk.s2c : NULL,
			     IPC__DIR_S2C, &plain, &b);
	if (rc != 0)
		return rc;
	if (b.op != IPC__OP_OPEN || b.arg != 0 || b.len != 8 || b.val < 0) {
		free(plain);
		return IPC_EPROTO;
	}
	c->max_msg = (size_t)b.val;
	c->lease_ms = (int)ipc__get_le32(b.data);
	c->joinable = ipc__get_le32(b.data + 4) != 0;
	if (c->lease_ms <= 0)
		c->lease_ms = IPC__NET_LEASE_MS;
	free(plain);
	return 0;
}

/* Tell a server whose proof failed that we refuse it (an all-zero proof,
 * which never verifies), so that it logs the failure. Nothing derived
 * from our key is sent to a peer that has not proved the key. */
static void rq_send_reject(struct ipc__conn *c, uint64_t sid)
{
	uint8_t buf[IPC__NET_HDR + IPC__NET_PROOF] = { 0 };
	struct ipc__frame f = { .type = IPC__F_PROOF,
				.sid = sid,
				.len = IPC__NET_PROOF };

	ipc__frame_put_header(buf, &f);
	(void)nn_send(c->sock, buf, sizeof(buf), NN_DONTWAIT);
}

/* The handshake (c->mu held): HELLO, then CHALLENGE/PROOF with a key. */
static int rq_handshake(struct ipc__conn *c, int64_t deadline_ms)
{
	struct ipc__hello h = { .kind = c->kind, .keyed = c->keys.keyed };
	uint8_t buf[IPC__NET_HDR + IPC__HELLO_FIXED + IPC__NET_NAME_MAX];
	struct ipc__frame f = { .type = IPC__F_HELLO };
	uint8_t *raw;
	int rc;

	memcpy(h.client_id, c->client_id, IPC__NET_ID);
	ipc__random(h.nonce, IPC__NET_NONCE);
	memcpy(h.name, c->name, sizeof(h.name));
	f.len = (uint32_t)ipc__hello_put(buf + IPC__NET_HDR, &h);
	ipc__frame_put_header(buf, &f);
	rc = rq_exchange(c, buf, IPC__NET_HDR + f.len, 0, deadline_ms, &raw,
			 &f);
	if (rc != 0)
		return rc;
	if (c->keys.keyed && f.type == IPC__F_CHALLENGE) {
		uint8_t nonce_s[IPC__NET_NONCE];
		uint64_t sid = f.sid;
		if (f.len != IPC__NET_NONCE + IPC__NET_PROOF) {
			nn_freemsg(raw);
			return IPC_EPROTO;
		}
		memcpy(nonce_s, f.payload, IPC__NET_NONCE);
		/* The server proves the key first; a server that cannot is
		 * told nothing. */
		rc = ipc__proof_check(f.payload + IPC__NET_NONCE, &c->keys, 'S',
				      c->client_id, h.nonce, nonce_s, sid);
		nn_freemsg(raw);
		if (rc != 0) {
			rq_send_reject(c, sid);
			return rc;
		}
		f = (struct ipc__frame){ .type = IPC__F_PROOF,
					 .sid = sid,
					 .len = IPC__NET_PROOF };
		ipc__frame_put_header(buf, &f);
		ipc__proof(buf + IPC__NET_HDR, &c->keys, 'C', c->client_id,
			   h.nonce, nonce_s, sid);
		rc = rq_exchange(c, buf, IPC__NET_HDR + IPC__NET_PROOF, 0,
				 deadline_ms, &raw, &f);
		if (rc != 0)
			return rc;
		ipc__session_keys(&c->sk, &c->keys, c->client_id, h.nonce,
				  nonce_s, sid);
	} else if (c->keys.keyed && f.type == IPC__F_REP) {
		nn_freemsg(raw); /* a keyless server cannot prove the key */
		return IPC_EAUTH;
	} else if (f.type == IPC__F_CHALLENGE) {
		nn_freemsg(raw); /* the server wants a key we lack */
		return IPC_EAUTH;
	}
	rc = rq_welcome(c, &f, raw);
	if (rc == 0) {
		/* nanomsg resends a pending request by itself; a long wait on
		 * the server (a Barrier's) renews the lease through those
		 * resends, so they come several times a lease. */
		int resend = c->lease_ms / 3 < 1000 ? c->lease_ms / 3 : 1000;
		nn_setsockopt(c->sock, NN_REQ, NN_REQ_RESEND_IVL, &resend,
			      sizeof(resend));
		c->sid = f.sid;
		c->seq = 0;
		c->prev_lost = false;
		c->lost_run = 0;
		c->connected = true;
	}
	nn_freemsg(raw);
	return rc;
}

/* The session is gone on the server's side: its tasks were requeued
 * there. */
static void rq_lose_session(struct ipc__conn *c)
{
	c->connected = false;
	c->stale_tasks += c->tasks;
	c->tasks = 0;
}

/* Run one request b until deadline_ms; the reply body in *r, its data in
 * *plain (caller frees). c->mu held. Transport errors are returned; the
 * operation's own status is r->arg. resend: b is a retry of the request
 * whose reply we gave up on (the same operation): it goes out again under
 * the same sequence number and flags, so the server answers it from its
 * dedupe cache (or with the execution still running) instead of running
 * it a second time. */
static int rq_call_locked(struct ipc__conn *c, struct ipc__body *b,
			  int64_t deadline_ms, struct ipc__body *r,
			  uint8_t **plain, bool resend)
{
	*plain = NULL;
	for (int attempt = 0; attempt < 8; attempt++) {
		struct ipc__frame f;
		uint8_t *frame, *raw;
		size_t len;
		int rc;
		if (!c->connected) {
			rc = rq_handshake(c, deadline_ms);
			if (rc != 0)
				return rc;
		}
		if (!(resend && c->prev_lost && c->seq > 0)) {
			long run = c->prev_lost ? c->lost_run : 0;
			if (run > IPC__BF_LOST_RUN_MAX)
				run = IPC__BF_LOST_RUN_MAX;
			c->seq_run = run;
			c->seq_flags =
				run > 0 ? (uint16_t)(IPC__BF_PREV_LOST |
						     run << IPC__BF_LOST_RUN_SHIFT)
					: 0;
			c->seq++;
		}
		b->flags = c->seq_flags;
		rc = ipc__frame_build(&frame, &len, IPC__F_REQ,
				      c->keys.keyed ? c->sk.c2s : NULL,
				      IPC__DIR_C2S, c->sid, c->seq, b);
		if (rc != 0) {
			/* seq may be resent, never reused */
			c->prev_lost = true;
			c->lost_run = c->seq_run + 1;
			return rc;
		}
		rc = rq_exchange(c, frame, len, c->seq, deadline_ms, &raw, &f);
		free(frame);
		if (rc != 0) {
			/* Lost too, if it was a report: the next request
			 * reports the whole run. */
			c->prev_lost = true;
			c->lost_run = c->seq_run + 1;
			return rc;
		}
		c->prev_lost = false;
		c->lost_run = 0;
		if (f.type == IPC__F_NOSESSION) {
			nn_freemsg(raw);
			rq_lose_session(c);
			if (b->op == IPC__OP_Q_TASK_DONE &&
			    c->stale_tasks > 0) {
				/* Its task went back with the lost session. */
				c->stale_tasks--;
				*r = (struct ipc__body){ .op = b->op };
				return 0;
			}
			continue;
		}
		if (f.type == IPC__F_ERR) {
			rc = err_payload(&f);
			nn_freemsg(raw);
			return rc;
		}
		rc = f.type == IPC__F_REP
			     ? ipc__frame_open(&f, raw,
					       c->keys.keyed ? c->sk.s2c : NULL,
					       IPC__DIR_S2C, plain, r)
			     : IPC_EPROTO;
		nn_freemsg(raw);
		if (rc == 0 && r->op != b->op) {
			free(*plain);
			*plain = NULL;
			rc = IPC_EPROTO;
		}
		return rc;
	}
	return IPC_EPROTO; /* the server keeps forgetting us */
}

static int64_t rq_net_deadline(struct ipc__conn *c)
{
	return ipc__net_now_ms() + c->timeout_ms;
}

/* Milliseconds left before dl, -1 for forever. */
static int64_t dl_left_ms(const struct ipc__deadline *dl)
{
	return dl->kind == IPC__DL_FOREVER ? -1 : ipc__deadline_ms(dl);
}

/* Take the handle's request lock by deadline_ms (-1: no limit): another
 * thread's call, or the lease keeper's PING to a server that went away,
 * must not stretch this call past its own timeout. */
static int rq_lock_wait(struct ipc__conn *c, int64_t deadline_ms)
{
#ifdef HAVE_PTHREAD_MUTEX_CLOCKLOCK
	struct timespec ts;
	int64_t ms;

	if (deadline_ms < 0) {
		pthread_mutex_lock(&c->mu);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = deadline_ms - ipc__net_now_ms();
	if (ms < 0)
		ms = 0;
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_mutex_clocklock(&c->mu, CLOCK_MONOTONIC, &ts) == 0
		       ? 0
		       : IPC_ETIMEDOUT;
#else
	(void)deadline_ms;
	pthread_mutex_lock(&c->mu);
	return 0;
#endif
}

/* The same, counted in c->waiters so that a PING in progress yields. */
static int rq_lock(struct ipc__conn *c, int64_t deadline_ms)
{
	int rc;

	atomic_fetch_add(&c->waiters, 1);
	rc = rq_lock_wait(c, deadline_ms);
	atomic_fetch_sub(&c->waiters, 1);
	return rc;
}

int ipc__conn_blocking(struct ipc__conn *c, struct ipc__body *b,
		       const struct ipc__deadline *dl, bool whole,
		       struct ipc__body *r, uint8_t **plain)
{
	bool resend = false;

	for (;;) {
		int64_t left = dl_left_ms(dl), reply_by;
		int rc;
		if (left < 0) {
			b->arg = whole ? -1 : IPC__NET_SLICE_MS;
			reply_by = ipc__net_now_ms() + IPC__NET_SLICE_MS +
				   c->timeout_ms;
		} else if (dl->kind == IPC__DL_NOWAIT) {
			b->arg = 0;
			reply_by = rq_net_deadline(c);
		} else {
			int64_t grace = left / 4 < 200 ? left / 4 : 200;
			b->arg = (int32_t)(left - grace > IPC__NET_SLICE_MS &&
							   !whole
						   ? IPC__NET_SLICE_MS
						   : left - grace);
			reply_by = ipc__net_now_ms() + left;
		}
		*plain = NULL;
		rc = resend ? 0 : rq_lock(c, left < 0 ? -1 : reply_by);
		if (rc == 0) {
			rc = rq_call_locked(c, b, reply_by, r, plain, resend);
			/* Forever: keep trying to reach it with the same
			 * request (it may be executing, or done with its reply
			 * lost), still holding the lock so that no other
			 * request takes a sequence number in between. */
			resend = rc == IPC_ETIMEDOUT && left < 0;
			if (!resend)
				pthread_mutex_unlock(&c->mu);
		}
		if (resend)
			continue;
		if (rc != 0)
			return rc;
		if ((r->arg == IPC_ETIMEDOUT || r->arg == IPC_EAGAIN) &&
		    !whole && dl->kind != IPC__DL_NOWAIT &&
		    !ipc__deadline_passed(dl)) {
			free(*plain);
			*plain = NULL;
			continue;
		}
		if (r->arg == IPC_EAGAIN && dl->kind != IPC__DL_NOWAIT)
			r->arg = IPC_ETIMEDOUT;
		return 0;
	}
}

int ipc__conn_simple(struct ipc__conn *c, uint16_t op, int32_t arg,
		     struct ipc__body *r)
{
	struct ipc__body b = { .op = op, .arg = arg };
	int64_t by = rq_net_deadline(c);
	uint8_t *plain = NULL;
	int rc = rq_lock(c, by);

	if (rc != 0)
		return rc;
	rc = rq_call_locked(c, &b, by, r, &plain, false);
	pthread_mutex_unlock(&c->mu);
	free(plain);
	return rc;
}

/* ---- The backend table --------------------------------------------------- */

static int rq_put(void *impl, const void *msg, size_t len,
		  const struct ipc__deadline *dl)
{
	struct ipc__conn *c = impl;
	struct ipc__body b = { .op = IPC__OP_Q_PUT,
			       .data = msg,
			       .len = (uint32_t)len },
			 r;
	uint8_t *plain;
	int rc = ipc__conn_blocking(c, &b, dl, false, &r, &plain);

	free(plain);
	return rc ? rc : r.arg;
}

/* A batch of puts: requests of up to IPC__NET_BATCH_MAX messages and about
 * IPC__NET_BATCH_BYTES, each one round trip and one dedupe record, until
 * all are put or dl passes. A message too large to share a frame goes
 * alone, as a plain put. */
static ssize_t rq_put_many(void *impl, const struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl)
{
	struct ipc__conn *c = impl;
	size_t done = 0;

	while (done < n) {
		size_t k = 0, bytes = 0;
		struct ipc__body b = { .op = IPC__OP_Q_PUT_MANY }, r;
		uint8_t *batch, *plain;
		int rc;
		while (done + k < n && k < IPC__NET_BATCH_MAX &&
		       (k == 0 || bytes + 4 + msgs[done + k].iov_len <=
					  IPC__NET_BATCH_BYTES))
			bytes += 4 + msgs[done + k++].iov_len;
		if (bytes > IPC__NET_MAX_MSG) { /* k == 1 */
			rc = rq_put(impl, msgs[done].iov_base,
				    msgs[done].iov_len, dl);
			r.arg = rc == 0 ? 1 : rc;
			rc = 0;
		} else {
			batch = malloc(bytes);
			if (batch == NULL)
				return done ? (ssize_t)done : IPC_ENOMEM;
			ipc__batch_put(batch, msgs + done, k);
			b.val = (int64_t)k;
			b.data = batch;
			b.len = (uint32_t)bytes;
			rc = ipc__conn_blocking(c, &b, dl, false, &r, &plain);
			free(batch);
			if (rc == 0)
				free(plain);
		}
		if (rc == 0 && r.arg > (int32_t)k)
			rc = IPC_EPROTO;
		if (rc == 0 && r.arg < 0)
			rc = r.arg;
		if (rc != 0)
			return done ? (ssize_t)done : rc;
		done += (size_t)r.arg;
		/* Fewer than sent: the server's slice ended waiting for room;
		 * go on with the rest while there is time. */
		if ((size_t)r.arg < k &&
		    (dl->kind == IPC__DL_NOWAIT || ipc__deadline_passed(dl)))
			break;
	}
	return (ssize_t)done;
}

static ssize_t rq_get(void *impl, void *buf, size_t cap, void **alloc,
		      const struct ipc__deadline *dl)
{
	struct ipc__conn *c = impl;
	struct ipc__body b = { .op = IPC__OP_Q_GET,
			       .val = alloc ? -1 : (int64_t)cap },
			 r;
	uint8_t *plain;
	int rc = ipc__conn_blocking(c, &b, dl, false, &r, &plain);

	if (rc != 0)
		return rc;
	if (r.arg < 0) {
		free(plain);
		return r.arg;
	}
	if ((uint32_t)r.arg != r.len || (alloc == NULL && r.len > cap)) {
		free(plain);
		return IPC_EPROTO;
	}
	if (alloc != NULL) {
		*alloc = malloc(r.len ? r.len : 1);
		if (*alloc == NULL) {
			free(plain);
			return IPC_ENOMEM;
		}
		memcpy(*alloc, r.data, r.len);
	} else if (r.len > 0) {
		memcpy(buf, r.data, r.len);
	}
	free(plain);
	if (c->joinable) {
		(void)rq_lock(c, -1);
		c->tasks++;
		pthread_mutex_unlock(&c->mu);
	}
	return (ssize_t)r.len;
}

/* A batch get: one request for as many buffers as fit a reply of about
 * IPC__NET_BATCH_BYTES (each buffer's capacity capped at the queue's
 * largest message); the server waits for the first message as a get does
 * and adds those queued already. A buffer too large to share a frame
 * gets a plain get. */
static ssize_t rq_get_many(void *impl, struct iovec *msgs, size_t n,
			   const struct ipc__deadline *dl)
{
	struct ipc__conn *c = impl;
	struct ipc__body b = { .op = IPC__OP_Q_GET_MANY }, r;
	size_t k = 0, bytes = 0;
	struct iovec *got;
	uint8_t *caps, *plain;
	int rc;

	while (k < n && k < IPC__NET_BATCH_MAX) {
		size_t cap = msgs[k].iov_len < c->max_msg ? msgs[k].iov_len
							  : c->max_msg;
		if (k > 0 && bytes + 4 + cap > IPC__NET_BATCH_BYTES)
			break;
		bytes += 4 + cap;
		k++;
	}
	if (bytes > IPC__NET_MAX_MSG) { /* k == 1 */
		ssize_t len = rq_get(impl, msgs[0].iov_base, msgs[0].iov_len,
				     NULL, dl);
		if (len < 0)
			return len;
		msgs[0].iov_len = (size_t)len;
		return 1;
	}
	caps = malloc(4 * k);
	got = malloc(k * sizeof(*got));
	if (caps == NULL || got == NULL) {
		free(caps);
		free(got);
		return IPC_ENOMEM;
	}
	for (size_t i = 0; i < k; i++)
		ipc__put_le32(caps + 4 * i, (uint32_t)msgs[i].iov_len);
	b.val = (int64_t)k;
	b.data = caps;
	b.len = (uint32_t)(4 * k);
	rc = ipc__conn_blocking(c, &b, dl, false, &r, &plain);
	free(caps);
	if (rc != 0) {
		free(got);
		return rc;
	}
	rc = r.arg < 0 ? r.arg : r.arg > (int32_t)k ? IPC_EPROTO : 0;
	/* The reply is the server's word: it must parse into r.arg
	 * messages, each within its buffer. */
	if (rc == 0 && ipc__batch_decode(r.data, r.len, (size_t)r.arg, got))
		rc = IPC_EPROTO;
	for (int32_t i = 0; rc == 0 && i < r.arg; i++)
		if (got[i].iov_len > msgs[i].iov_len)
			rc = IPC_EPROTO;
	for (int32_t i = 0; rc == 0 && i < r.arg; i++) {
		if (got[i].iov_len > 0)
			memcpy(msgs[i].iov_base, got[i].iov_base,
			       got[i].iov_len);
		msgs[i].iov_len = got[i].iov_len;
	}
	free(got);
	free(plain);
	if (rc != 0)
		return rc;
	if (c->joinable) {
		(void)rq_lock(c, -1);
		c->tasks += r.arg;
		pthread_mutex_unlock(&c->mu);
	}
	return r.arg;
}

static int rq_task_done(void *impl)
{
	struct ipc__conn *c = impl;
	struct ipc__body b = { .op = IPC__OP_Q_TASK_DONE }, r;
	uint8_t *plain = NULL;
	int64_t by = rq_net_deadline(c);
	int rc = rq_lock(c, by);

	if (rc != 0)
		return rc;
	if (c->stale_tasks > 0) {
		/* Got in a session the server lost: already requeued. */
		c->stale_tasks--;
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	rc = rq_call_locked(c, &b, by, &r, &plain, false);
	free(plain);
	if (rc == 0 && r.arg == 0 && c->tasks > 0)
		c->tasks--;
	pthread_mutex_unlock(&c->mu);
	return rc ? rc : r.arg;
}

static int rq_join(void *impl, const struct ipc__deadline *dl)
{
	struct ipc__body b = { .op = IPC__OP_Q_JOIN }, r;
	uint8_t *plain;
	int rc = ipc__conn_blocking(impl, &b, dl, false, &r, &plain);

	free(plain);
	return rc ? rc : r.arg;
}

static long rq_value(void *impl, uint16_t op)
{
	struct ipc__body r;
	int rc = ipc__conn_simple(impl, op, 0, &r);

	if (rc != 0)
		return rc;
	return r.arg < 0 ? r.arg : (long)r.val;
}

static long rq_qsize(void *impl)
{
	return rq_value(impl, IPC__OP_Q_QSIZE);
}

static long rq_unfinished(void *impl)
{
	return rq_value(impl, IPC__OP_Q_UNFINISHED);
}

static bool rq_full(void *impl)
{
	return rq_value(impl, IPC__OP_Q_FULL) > 0;
}

static int rq_shutdown(void *impl)
{
	struct ipc__body r;
	int rc = ipc__conn_simple(impl, IPC__OP_Q_SHUTDOWN, 0, &r);

	return rc ? rc : r.arg;
}

static bool rq_joinable(void *impl)
{
	return ((struct ipc__conn *)impl)->joinable;
}

static size_t rq_max_msg(void *impl)
{
	return ((struct ipc__conn *)impl)->max_msg;
}

static void rq_stop_heartbeat(struct ipc__conn *c)
{
	if (!c->hb_started)
		return;
	pthread_mutex_lock(&c->hb_mu);
	c->hb_stop = true;
	pthread_cond_signal(&c->hb_cv);
	pthread_mutex_unlock(&c->hb_mu);
	/* A renewal waiting for its answer gives way, as to a call. */
	atomic_fetch_add(&c->waiters, 1);
	pthread_join(c->hb, NULL);
	atomic_fetch_sub(&c->waiters, 1);
	c->hb_started = false;
}

static void rq_free(struct ipc__conn *c)
{
	rq_stop_heartbeat(c);
	if (c->sock >= 0)
		nn_close(c->sock);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->hb_mu);
	pthread_cond_destroy(&c->hb_cv);
	ipc__keys_wipe(&c->keys);
	sodium_memzero(&c->sk, sizeof(c->sk));
	free(c);
}

/* Tell the server we are done (it requeues our unfinished tasks at once
 * instead of at lease expiry). The lease keeper stops first, so that it
 * cannot open a new session after ours ended. Bounded: a gone server
 * costs at most a second here. */
void ipc__conn_close(struct ipc__conn *c)
{
	struct ipc__body b = { .op = IPC__OP_CLOSE }, r;
	uint8_t *plain = NULL;
	int64_t by = ipc__net_now_ms() +
		     (c->timeout_ms < 1000 ? c->timeout_ms : 1000);

	rq_stop_heartbeat(c);
	pthread_mutex_lock(&c->mu);
	if (c->connected)
		(void)rq_call_locked(c, &b, by, &r, &plain, false);
	pthread_mutex_unlock(&c->mu);
	free(plain);
	rq_free(c);
}

static void rq_close(void *impl)
{
	ipc__conn_close(impl);
}

static const struct ipc__queue_ops rq_ops = {
	.name = "remote",
	.put = rq_put,
	.get = rq_get,
	.task_done = rq_task_done,
	.join = rq_join,
	.qsize = rq_qsize,
	.unfinished = rq_unfinished,
	.full = rq_full,
	.shutdown = rq_shutdown,
	.close = rq_close,
	.joinable = rq_joinable,
	.max_msg_size = rq_max_msg,
	.dup = NULL,
	.put_many = rq_put_many,
	.get_many = rq_get_many,
};

/* ---- Lease keeper -------------------------------------------------------- */

static void *rq_heartbeat(void *arg)
{
	struct ipc__conn *c = arg;

	pthread_mutex_lock(&c->hb_mu);
	while (!c->hb_stop) {
		int period = c->lease_ms / 3 > 0 ? c->lease_ms / 3 : 1;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += period / 1000;
		ts.tv_nsec += (long)(period % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->hb_cv, &c->hb_mu, &ts);
		if (c->hb_stop)
			break;
		pthread_mutex_unlock(&c->hb_mu);
		/* A busy handle is talking to the server already. */
		if (pthread_mutex_trylock(&c->mu) == 0) {
			if (ipc__net_now_ms() - c->last_ms >= period) {
				struct ipc__body b = { .op = IPC__OP_PING }, r;
				uint8_t *plain = NULL;
				int64_t by = ipc__net_now_ms() +
					     (period < c->timeout_ms
						      ? period
						      : c->timeout_ms);
				c->hb_call = true;
				(void)rq_call_locked(c, &b, by, &r, &plain,
						     false);
				c->hb_call = false;
				free(plain);
			}
			pthread_mutex_unlock(&c->mu);
		}
		pthread_mutex_lock(&c->hb_mu);
	}
	pthread_mutex_unlock(&c->hb_mu);
	return NULL;
}

/* ---- Connecting ------------------------------------------------------- */

int ipc__conn_open(struct ipc__conn **out, const char *url, const char *name,
		   const ipc_net_attr *attr, uint8_t kind)
{
	static const ipc_net_attr defaults;
	int resend = 1000, maxsz = (int)IPC__NET_MAX_FRAME, rc;
	pthread_condattr_t ca;
	struct ipc__conn *c;
	size_t n;

	if (attr == NULL)
		attr = &defaults;
	if (url == NULL || name == NULL || attr->timeout_ms < 0 ||
	    (attr->authkey == NULL && attr->authkey_len > 0))
		return IPC_EINVAL;
	n = strlen(name);
	if (n == 0 || n > IPC__NET_NAME_MAX)
		return IPC_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return IPC_ENOMEM;
	memcpy(c->name, name, n + 1);
	c->kind = kind;
	c->timeout_ms =
		attr->timeout_ms ? attr->timeout_ms : IPC__NET_TIMEOUT_MS;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->hb_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->hb_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->sock = -1;
	rc = ipc__keys_init(&c->keys, attr->authkey, attr->authkey_len);
	if (rc != 0)
		goto fail;
	ipc__random(c->client_id, sizeof(c->client_id));
	c->sock = nn_socket(AF_SP, NN_REQ);
	if (c->sock < 0) {
		rc = ipc__nn_error(nn_errno());
		goto fail;
	}
	nn_setsockopt(c->sock, NN_REQ, NN_REQ_RESEND_IVL, &resend,
		      sizeof(resend));
	nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
		      sizeof(maxsz));
	if (nn_connect(c->sock, url) < 0) {
		rc = ipc__nn_error(nn_errno());
		goto fail;
	}
	pthread_mutex_lock(&c->mu);
	rc = rq_handshake(c, rq_net_deadline(c));
	pthread_mutex_unlock(&c->mu);
	if (rc != 0)
		goto fail;
	rc = -pthread_create(&c->hb, NULL, rq_heartbeat, c);
	if (rc != 0)
		goto fail;
	c->hb_started = true;
	*out = c;
	return 0;
fail:
	rq_free(c);
	return rc;
}

int ipc_queue_connect(ipc_queue **q, const char *url, const char *name,
		      const ipc_net_attr *attr)
{
	struct ipc__conn *c;
	int rc;

	if (q == NULL)
		return IPC_EINVAL;
	*q = NULL;
	rc = ipc__conn_open(&c, url, name, attr, IPC__NK_QUEUE);
	if (rc != 0)
		return rc;
	return ipc__queue_wrap(q, &rq_ops, c);
}
