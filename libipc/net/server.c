/* SPDX-License-Identifier: MIT */
/*
 * server.c — serving local objects to remote clients.
 *
 * One nanomsg socket, raw REP (AF_SP_RAW): a raw socket hands every request
 * up with its routing header, and a reply sent with that header reaches the
 * requester whenever it is sent, in any order. That is what lets one client
 * sit in a blocking get while every other client is served: the receiving
 * thread never executes an operation itself, it only decodes, authenticates
 * and dedupes frames and hands each request to its session's thread.
 *
 * A session is one client handle: made by the handshake, it owns a thread
 * and, for a queue, a handle of its own on the served queue (ipc__queue_dup),
 * so that the session thread is that JoinableQueue consumer and the queue's
 * own machinery tracks the client's unfinished tasks. When the session ends
 * — the client closes, or its lease runs out because no frame came from it
 * for lease_ms — the thread closes that handle and the queue requeues the
 * tasks, exactly as for a local consumer that exits. If the whole server is
 * killed, the queue sees its consumer slots' owner die and repairs them the
 * same way.
 *
 * Blocking operations run in the session thread in slices of at most
 * IPC__NET_SLICE_MS, so that a session ends promptly and a client's waits
 * double as lease renewals; the client repeats the slice until its own
 * deadline.
 *
 * Dedupe: a client sends one request at a time per handle, with a sequence
 * number that grows by one per new request. The session remembers the last
 * sequence number it executed and the reply it sent, so a resent request
 * (the client's retry, nanomsg's own resend after a reconnect, or an
 * attacker's replay) is answered from that cache and never executed twice;
 * an older number is dropped. When a session's lease expires, its last
 * reply outlives it (struct ended): the client may have been cut off with
 * that reply lost, and its resend must not be told NOSESSION, which would
 * make it run the request again in a new session. A reply to a get that the
 * client reports lost (IPC__BF_PREV_LOST on its next request) is kept and
 * handed to that client's next get, so a timed-out wait never loses a message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "libipc/net/server.h"

void ipc__srv_log(struct ipc_server *srv, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (srv->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	srv->log(srv->log_arg, line);
}

/* ---- Sending ------------------------------------------------------------- */

/* Send buf[0..len) as a reply routed by ctrl. Copies buf (nanomsg takes
 * ownership of what it sends). Failures are dropped: the client retries. */
static void srv_send(struct ipc_server *srv, const uint8_t *ctrl,
		     const uint8_t *buf, size_t len)
{
	uint8_t ctl[SRV_CTRL];
	struct nn_iovec iov = { (void *)(uintptr_t)buf, len };
	struct nn_msghdr hdr = { &iov, 1, ctl, sizeof(ctl) };

	memcpy(ctl, ctrl, sizeof(ctl));
	(void)nn_sendmsg(srv->sock, &hdr, NN_DONTWAIT);
}

static void srv_send_plain(struct ipc_server *srv, const uint8_t *ctrl,
			   uint8_t type, uint64_t sid, uint64_t seq,
			   const uint8_t *payload, uint32_t plen)
{
	uint8_t buf[IPC__NET_HDR + 128];
	struct ipc__frame f = {
		.type = type, .sid = sid, .seq = seq, .len = plen
	};

	ipc__frame_put_header(buf, &f);
	if (plen > 0)
		memcpy(buf + IPC__NET_HDR, payload, plen);
	srv_send(srv, ctrl, buf, IPC__NET_HDR + plen);
}

static void srv_send_err(struct ipc_server *srv, const uint8_t *ctrl,
			 uint64_t sid, uint64_t seq, int code)
{
	uint8_t p[4];

	ipc__put_le32(p, (uint32_t)code);
	srv_send_plain(srv, ctrl, IPC__F_ERR, sid, seq, p, sizeof(p));
}

static void session_run_job(struct session *s, struct job *j)
{
	const uint8_t *key = s->srv->keys.keyed ? s->sk.s2c : NULL;
	struct ipc__body r = { 0 };
	uint8_t ctrl[SRV_CTRL];
	void *out = NULL;
	uint8_t *frame;
	size_t len;

	/* The client received no reply from lost_from on: if the last one we
	 * executed is among them, what it carried is recovered. */
	if (j->lost_from != 0 && s->last_seq >= j->lost_from &&
	    s->last_seq < j->seq)
		ipc__session_recover_lost(s);
	ipc__session_exec(s, &j->body, &r, &out);
	if (ipc__frame_build(&frame, &len, IPC__F_REP, key, IPC__DIR_S2C,
			     s->sid, j->seq, &r) != 0)
		frame = NULL;
	free(out);
	pthread_mutex_lock(&s->mu);
	free(s->last_reply);
	s->last_reply = frame;
	s->last_reply_len = frame ? len : 0;
	s->last_seq = j->seq;
	s->last_op = j->body.op;
	s->last_status = r.arg;
	s->busy_seq = 0;
	s->last_ms = ipc__net_now_ms();
	memcpy(ctrl, s->ctrl, sizeof(ctrl));
	pthread_mutex_unlock(&s->mu);
	if (frame != NULL)
		srv_send(s->srv, ctrl, frame, len);
}

static void job_free(struct job *j)
{
	if (j->raw != NULL)
		nn_freemsg(j->raw);
	free(j->plain);
	memset(j, 0, sizeof(*j));
}

static void session_free(struct session *s)
{
	if (s->q != NULL)
		ipc_queue_close(s->q); /* requeues its unfinished tasks */
	job_free(&s->job);
	free(s->last_reply);
	free(s->und);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct ipc_server *srv = s->srv;

	for (;;) {
		struct job j;
		pthread_mutex_lock(&s->mu);
		while (!s->has_job && !s->exiting)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->has_job) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		j = s->job;
		memset(&s->job, 0, sizeof(s->job));
		s->has_job = false;
		s->busy_seq = j.seq;
		s->busy_op = j.body.op;
		memcpy(s->ctrl, j.ctrl, SRV_CTRL);
		pthread_mutex_unlock(&s->mu);
		session_run_job(s, &j);
		job_free(&j);
	}
	ipc__session_give_back(s);
	session_free(s);
	pthread_mutex_lock(&srv->mu);
	srv->live_threads--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* ---- Sessions (receiving thread) ----------------------------------------- */

static int session_slot(struct ipc_server *srv, uint64_t sid)
{
	for (int i = 0; i < SRV_MAX_SESSIONS; i++)
		if (srv->sessions[i] != NULL && srv->sessions[i]->sid == sid)
			return i;
	return -1;
}

static void session_end(struct ipc_server *srv, int i, const char *why);

/* ---- Ended sessions (receiving thread) ----------------------------------- */

static struct ended *ended_find(struct ipc_server *srv, uint64_t sid)
{
	for (int i = 0; i < SRV_MAX_ENDED; i++)
		if (srv->ended[i].sid == sid && sid != 0)
			return &srv->ended[i];
	return NULL;
}

/* Session s ends idle because its client's lease expired: keep its last
 * reply for a resend still on its way, in the oldest slot. (A session
 * ended by CLOSE has no resend to come: its client is done with it.) */
static void ended_keep(struct ipc_server *srv, struct session *s)
{
	struct ended *e = &srv->ended[srv->ended_next];

	pthread_mutex_lock(&s->mu);
	if (s->last_seq > 0 && s->last_reply != NULL &&
	    s->last_reply_len <= sizeof(e->reply) &&
	    ipc__session_reply_outlives_end(s)) {
		e->sid = s->sid;
		e->last_seq = s->last_seq;
		memcpy(e->c2s, s->sk.c2s, sizeof(e->c2s));
		memcpy(e->reply, s->last_reply, s->last_reply_len);
		e->reply_len = (uint16_t)s->last_reply_len;
		srv->ended_next = (srv->ended_next + 1) % SRV_MAX_ENDED;
	}
	pthread_mutex_unlock(&s->mu);
}

/* A request under the id of an ended session. An authentic resend of its
 * last request gets the reply it was sent, an older one nothing (as in a
 * live session); anything else NOSESSION: the client starts a new session
 * and runs the request there, which is right, since it never ran. */
static void ended_answer(struct ipc_server *srv, const struct ended *e,
			 const struct ipc__frame *f, const uint8_t *raw,
			 const uint8_t *ctrl)
{
	struct ipc__body b;
	uint8_t *plain = NULL;
	int rc = ipc__frame_open(f, raw, srv->keys.keyed ? e->c2s : NULL,
				 IPC__DIR_C2S, &plain, &b);

	free(plain);
	if (rc == 0 && f->seq == e->last_seq)
		srv_send(srv, ctrl, e->reply, e->reply_len);
	else if (rc != 0 || f->seq > e->last_seq)
		srv_send_plain(srv, ctrl, IPC__F_NOSESSION, f->sid, f->seq,
			       NULL, 0);
}

static struct session *session_new(struct ipc_server *srv,
				   const struct ipc__hello *h)
{
	struct session *s;
	int i, free_i = -1, oldest = -1, pending = 0;

	for (i = 0; i < SRV_MAX_SESSIONS; i++) {
		s = srv->sessions[i];
		if (s == NULL) {
			if (free_i < 0)
				free_i = i;
		} else if (!s->active || (!srv->keys.keyed && !s->used)) {
			pending++;
			if (oldest < 0 ||
			    s->created_ms < srv->sessions[oldest]->created_ms)
				oldest = i;
		}
	}
	if (oldest >= 0 && (pending >= SRV_MAX_PENDING || free_i < 0)) {
		ipc__srv_log(srv,
			     "%d handshakes unfinished: dropped the oldest",
			     pending);
		session_end(srv, oldest, "handshake evicted");
		free_i = oldest;
	}
	if (free_i < 0) {
		ipc__srv_log(srv, "session table full: refused a client");
		return NULL;
	}
	i = free_i;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->srv = srv;
	do
		ipc__random(&s->sid, sizeof(s->sid));
	while (s->sid == 0 || session_slot(srv, s->sid) >= 0 ||
	       ended_find(srv, s->sid) != NULL);
	memcpy(s->client_id, h->client_id, IPC__NET_ID);
	memcpy(s->nonce_c, h->nonce, IPC__NET_NONCE);
	s->kind = h->kind;
	ipc__random(s->nonce_s, IPC__NET_NONCE);
	snprintf(s->name, sizeof(s->name), "%s", h->name);
	s->created_ms = s->last_ms = ipc__net_now_ms();
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	srv->sessions[i] = s;
	return s;
}

/* Remove slot i from the table; a running session thread is told to end
 * and frees the session itself. */
static void session_end(struct ipc_server *srv, int i, const char *why)
{
	struct session *s = srv->sessions[i];

	srv->sessions[i] = NULL;
	if (!s->active) {
		session_free(s);
		return;
	}
	ipc__srv_log(srv, "session %016llx (%s): %s",
		     (unsigned long long)s->sid, s->name, why);
	pthread_mutex_lock(&s->mu);
	s->exiting = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Finish the handshake: our own handle on the object, the thread, and the
 * OPEN reply. 0 or an error to send back. */
static int session_activate(struct ipc_server *srv, struct session *s,
			    const uint8_t *ctrl)
{
	const uint8_t *key = srv->keys.keyed ? s->sk.s2c : NULL;
	uint8_t info[8];
	struct ipc__body r = { .op = IPC__OP_OPEN, .data = info, .len = 8 };
	const struct served *served = NULL;
	pthread_attr_t ta;
	pthread_t t;
	uint8_t *frame;
	size_t len;
	int rc;

	pthread_mutex_lock(&srv->mu);
	for (int i = 0; i < srv->nobjs; i++)
		if (strcmp(srv->objs[i].name, s->name) == 0)
			served = &srv->objs[i];
	if (served == NULL)
		rc = IPC_ENOENT;
	else if (served->kind != s->kind)
		rc = IPC_EPROTO; /* as opening a name of another kind */
	else if (s->kind == IPC__NK_QUEUE)
		rc = ipc__queue_dup(served->q, &s->q);
	else {
		s->obj = served->obj;
		rc = 0;
	}
	pthread_mutex_unlock(&srv->mu);
	if (rc != 0)
		return rc;
	if (s->q != NULL) {
		s->joinable = ipc_queue_unfinished(s->q) >= 0;
		r.val = (int64_t)s->q->ops->max_msg_size(s->q->impl);
		if (r.val > (int64_t)IPC__NET_MAX_MSG)
			r.val = (int64_t)IPC__NET_MAX_MSG;
	}
	ipc__put_le32(info, (uint32_t)srv->lease_ms);
	ipc__put_le32(info + 4, s->joinable ? 1 : 0);
	rc = ipc__frame_build(&frame, &len, IPC__F_REP, key, IPC__DIR_S2C,
			      s->sid, 0, &r);
	if (rc != 0)
		return rc;
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&srv->mu);
	rc = -pthread_create(&t, &ta, session_main, s);
	if (rc == 0)
		srv->live_threads++;
	pthread_mutex_unlock(&srv->mu);
	pthread_attr_destroy(&ta);
	if (rc != 0) {
		free(frame);
		return rc == -EAGAIN ? IPC_EBUSY : rc;
	}
	s->active = true;
	s->last_reply = frame; /* a resent PROOF gets the same answer */
	s->last_reply_len = len;
	s->last_op = IPC__OP_OPEN;
	s->last_ms = ipc__net_now_ms();
	ipc__srv_log(srv, "session %016llx: client connected to %s%s",
		     (unsigned long long)s->sid, s->name,
		     srv->keys.keyed ? " (authenticated)" : "");
	srv_send(srv, ctrl, frame, len);
	return 0;
}

static void on_hello(struct ipc_server *srv, const struct ipc__frame *f,
		     const uint8_t *ctrl)
{
	struct ipc__hello h;
	struct session *s;
	uint8_t p[IPC__NET_NONCE + IPC__NET_PROOF];
	int rc;

	if (ipc__hello_decode(f->payload, f->len, &h) != 0) {
		ipc__srv_log(srv, "dropped a malformed hello");
		return;
	}
	if (h.keyed != srv->keys.keyed) {
		ipc__srv_log(srv,
			     "authentication failure: client %s a key, "
			     "server %s",
			     h.keyed ? "has" : "has no",
			     srv->keys.keyed ? "requires one" : "has none");
		srv_send_err(srv, ctrl, 0, f->seq, IPC_EAUTH);
		return;
	}
	s = session_new(srv, &h);
	if (s == NULL) {
		srv_send_err(srv, ctrl, 0, f->seq, IPC_EBUSY);
		return;
	}
	if (!srv->keys.keyed) {
		rc = session_activate(srv, s, ctrl);
		if (rc != 0) {
			srv_send_err(srv, ctrl, 0, f->seq, rc);
			session_end(srv, session_slot(srv, s->sid), "refused");
		}
		return;
	}
	memcpy(p, s->nonce_s, IPC__NET_NONCE);
	ipc__proof(p + IPC__NET_NONCE, &srv->keys, 'S', s->client_id,
		   s->nonce_c, s->nonce_s, s->sid);
	srv_send_plain(srv, ctrl, IPC__F_CHALLENGE, s->sid, f->seq, p,
		       sizeof(p));
}

static void on_proof(struct ipc_server *srv, const struct ipc__frame *f,
		     const uint8_t *ctrl)
{
	int i = session_slot(srv, f->sid);
	struct session *s = i >= 0 ? srv->sessions[i] : NULL;
	int rc;

	if (s == NULL || !srv->keys.keyed) {
		srv_send_plain(srv, ctrl, IPC__F_NOSESSION, f->sid, f->seq,
			       NULL, 0);
		return;
	}
	if (s->active) {
		/* A resent proof: the same answer again. The session thread
		 * replaces last_reply under s->mu once the client's requests
		 * run; read it under that lock too. */
		pthread_mutex_lock(&s->mu);
		if (s->last_op == IPC__OP_OPEN && s->last_reply != NULL)
			srv_send(srv, ctrl, s->last_reply, s->last_reply_len);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (f->len != IPC__NET_PROOF ||
	    ipc__proof_check(f->payload, &srv->keys, 'C', s->client_id,
			     s->nonce_c, s->nonce_s, s->sid) != 0) {
		ipc__srv_log(srv,
			     "authentication failure: wrong key (session "
			     "%016llx refused)",
			     (unsigned long long)s->sid);
		srv_send_err(srv, ctrl, f->sid, f->seq, IPC_EAUTH);
		session_end(srv, i, "authentication failed");
		return;
	}
	ipc__session_keys(&s->sk, &srv->keys, s->client_id, s->nonce_c,
			  s->nonce_s, s->sid);
	rc = session_activate(srv, s, ctrl);
	if (rc != 0) {
		srv_send_err(srv, ctrl, f->sid, f->seq, rc);
		session_end(srv, i, "refused");
	}
}

/* A request on an active session: authenticate, dedupe, hand over. The
 * receiving thread owns raw until it is handed to the session. */
static void on_request(struct ipc_server *srv, const struct ipc__frame *f,
		       uint8_t *raw, const uint8_t *ctrl)
{
	int i = session_slot(srv, f->sid);
	struct session *s = i >= 0 ? srv->sessions[i] : NULL;
	struct job j = { 0 };
	int rc;

	if (s == NULL || !s->active) {
		const struct ended *e =
			s == NULL ? ended_find(srv, f->sid) : NULL;
		if (e != NULL)
			ended_answer(srv, e, f, raw, ctrl);
		else
			srv_send_plain(srv, ctrl, IPC__F_NOSESSION, f->sid,
				       f->seq, NULL, 0);
		nn_freemsg(raw);
		return;
	}
	rc = ipc__frame_open(f, raw, srv->keys.keyed ? s->sk.c2s : NULL,
			     IPC__DIR_C2S, &j.plain, &j.body);
	if (rc != 0) {
		/* Not from the session's owner (or corrupted): dropped, and
		 * the session is untouched, so forging frames cannot end
		 * someone else's session. */
		ipc__srv_log(srv, "session %016llx: dropped a frame that %s",
			     (unsigned long long)s->sid,
			     rc == IPC_EAUTH ? "failed authentication"
					     : "did not decode");
		nn_freemsg(raw);
		return;
	}
	s->used = true;
	j.raw = raw;
	j.seq = f->seq;
	if (j.body.flags & IPC__BF_PREV_LOST) {
		uint64_t run = j.body.flags >> IPC__BF_LOST_RUN_SHIFT;
		run = run ? run : 1;
		j.lost_from = f->seq > run ? f->seq - run : 1;
	}
	memcpy(j.ctrl, ctrl, SRV_CTRL);
	pthread_mutex_lock(&s->mu);
	s->last_ms = ipc__net_now_ms();
	if (f->seq == s->busy_seq) {
		/* A resend of the request in progress: answer this copy. */
		memcpy(s->ctrl, ctrl, SRV_CTRL);
		pthread_mutex_unlock(&s->mu);
		job_free(&j);
		return;
	}
	if (f->seq <= s->last_seq) {
		if (f->seq == s->last_seq && s->last_reply != NULL)
			srv_send(srv, ctrl, s->last_reply, s->last_reply_len);
		pthread_mutex_unlock(&s->mu);
		job_free(&j);
		return;
	}
	if (s->has_job && s->job.seq >= f->seq) {
		if (s->job.seq == f->seq)
			memcpy(s->job.ctrl, ctrl, SRV_CTRL);
		pthread_mutex_unlock(&s->mu);
		job_free(&j);
		return;
	}
	/* A newer request supersedes a queued one, never executed; a lost
	 * reply that one reported is still lost, and is recovered when this
	 * one runs. */
	if (s->has_job && s->job.lost_from != 0 &&
	    (j.lost_from == 0 || s->job.lost_from < j.lost_from))
		j.lost_from = s->job.lost_from;
	job_free(&s->job);
	s->job = j;
	s->has_job = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void sweep(struct ipc_server *srv, bool all)
{
	int64_t now = ipc__net_now_ms();

	for (int i = 0; i < SRV_MAX_SESSIONS; i++) {
		struct session *s = srv->sessions[i];
		bool idle, closing, expired, stuck;
		if (s == NULL)
			continue;
		if (!s->active) {
			if (all || now - s->created_ms > SRV_PENDING_MS)
				session_end(srv, i, "handshake abandoned");
			continue;
		}
		pthread_mutex_lock(&s->mu);
		idle = !s->has_job && s->busy_seq == 0;
		closing = s->want_close && idle;
		expired = now - s->last_ms > srv->lease_ms;
		/* A barrier wait is one long request: nanomsg's resends of it
		 * renew the lease. Silence for a lease, or the server
		 * stopping, means the party is gone: break the barrier, as
		 * for a local party that dies waiting. */
		stuck = !idle && s->busy_op == IPC__OP_BAR_WAIT &&
			s->aborted_seq != s->busy_seq && (all || expired);
		if (stuck)
			s->aborted_seq = s->busy_seq;
		expired = expired && idle;
		pthread_mutex_unlock(&s->mu);
		if (stuck) {
			ipc__srv_log(
				srv,
				"session %016llx (%s): %s in a barrier wait; "
				"the barrier is broken",
				(unsigned long long)s->sid, s->name,
				all ? "server stopping" : "lease expired");
			(void)ipc_barrier_abort(s->obj);
		}
		if (!all && !closing && expired)
			ended_keep(srv, s);
		if (all)
			session_end(srv, i, "server stopping");
		else if (closing)
			session_end(srv, i, "client closed");
		else if (expired)
			session_end(srv, i,
				    "lease expired; its tasks are requeued");
	}
	srv->last_sweep_ms = now;
}

static void on_frame(struct ipc_server *srv, uint8_t *raw, size_t len,
		     const uint8_t *ctrl)
{
	struct ipc__frame f;

	if (ipc__frame_decode(raw, len, &f) != 0) {
		ipc__srv_log(srv, "dropped a malformed frame (%zu bytes)", len);
		nn_freemsg(raw);
		return;
	}
	switch (f.type) {
	case IPC__F_HELLO:
		on_hello(srv, &f, ctrl);
		break;
	case IPC__F_PROOF:
		on_proof(srv, &f, ctrl);
		break;
	case IPC__F_REQ:
		on_request(srv, &f, raw, ctrl);
		return;
	default:
		ipc__srv_log(srv, "dropped a frame of type %u", f.type);
		break;
	}
	nn_freemsg(raw);
}

static void *server_main(void *arg)
{
	struct ipc_server *srv = arg;

	while (!atomic_load(&srv->stop)) {
		uint8_t ctrl[SRV_CTRL];
		void *body = NULL;
		struct nn_iovec iov = { &body, NN_MSG };
		struct nn_msghdr hdr = { &iov, 1, ctrl, sizeof(ctrl) };
		int n;

		memset(ctrl, 0, sizeof(ctrl));
		n = nn_recvmsg(srv->sock, &hdr, 0);
		if (n >= 0)
			on_frame(srv, body, (size_t)n, ctrl);
		else if (nn_errno() == EBADF || nn_errno() == ETERM)
			break;
		if (ipc__net_now_ms() - srv->last_sweep_ms >= SRV_TICK_MS)
			sweep(srv, false);
	}
	sweep(srv, true);
	return NULL;
}

/* ---- Public API -------------------------------------------------------- */

/* Without a key, only endpoints other hosts cannot reach. */
static bool url_is_local(const char *url)
{
	static const char *const ok[] = { "ipc://",	    "inproc://",
					  "tcp://127.",	    "tcp://localhost:",
					  "tcp://[::1]:",   "ws://127.",
					  "ws://localhost:" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(url, ok[i], strlen(ok[i])) == 0)
			return true;
	return false;
}

int ipc_server_start(ipc_server **out, const char *url,
		     const ipc_net_attr *attr)
{
	static const ipc_net_attr defaults;
	struct ipc_server *srv;
	int rc, maxsz = (int)IPC__NET_MAX_FRAME, tmo = SRV_TICK_MS;

	if (out == NULL)
		return IPC_EINVAL;
	*out = NULL;
	if (attr == NULL)
		attr = &defaults;
	if (url == NULL || (attr->authkey == NULL && attr->authkey_len > 0) ||
	    attr->lease_ms < 0)
		return IPC_EINVAL;
	if (attr->authkey_len == 0 && !attr->insecure && !url_is_local(url))
		return IPC_EPERM;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return IPC_ENOMEM;
	rc = ipc__keys_init(&srv->keys, attr->authkey, attr->authkey_len);
	if (rc != 0)
		goto fail_free;
	srv->lease_ms = attr->lease_ms ? attr->lease_ms : IPC__NET_LEASE_MS;
	srv->log = attr->log;
	srv->log_arg = attr->log_arg;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	srv->sock = nn_socket(AF_SP_RAW, NN_REP);
	if (srv->sock < 0) {
		rc = ipc__nn_error(nn_errno());
		goto fail_free;
	}
	nn_setsockopt(srv->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
		      sizeof(maxsz));
	nn_setsockopt(srv->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
	if (nn_bind(srv->sock, url) < 0) {
		rc = ipc__nn_error(nn_errno());
		goto fail_sock;
	}
	srv->last_sweep_ms = ipc__net_now_ms();
	rc = -pthread_create(&srv->thread, NULL, server_main, srv);
	if (rc != 0)
		goto fail_sock;
	*out = srv;
	return 0;
fail_sock:
	nn_close(srv->sock);
fail_free:
	ipc__keys_wipe(&srv->keys);
	free(srv);
	return rc;
}

/* Add name (kind, q or obj) to the served objects. */
static int server_add(ipc_server *srv, const char *name, uint8_t kind,
		      ipc_queue *q, void *obj)
{
	struct ipc__hello h = { .kind = kind };
	uint8_t buf[IPC__HELLO_FIXED + IPC__NET_NAME_MAX];
	size_t n;
	int rc = 0;

	if (srv == NULL || name == NULL || (q == NULL && obj == NULL))
		return IPC_EINVAL;
	n = strlen(name);
	if (n == 0 || n > IPC__NET_NAME_MAX)
		return IPC_EINVAL;
	memcpy(h.name, name, n + 1);
	if (ipc__hello_decode(buf, ipc__hello_put(buf, &h), &h) != 0)
		return IPC_EINVAL; /* not a valid name */
	pthread_mutex_lock(&srv->mu);
	for (int i = 0; i < srv->nobjs; i++)
		if (strcmp(srv->objs[i].name, name) == 0)
			rc = IPC_EEXIST;
	if (rc == 0 && srv->nobjs == SRV_MAX_OBJECTS)
		rc = IPC_ENOMEM;
	if (rc == 0) {
		struct served *o = &srv->objs[srv->nobjs++];
		snprintf(o->name, sizeof(o->name), "%s", name);
		o->kind = kind;
		o->q = q;
		o->obj = obj;
	}
	pthread_mutex_unlock(&srv->mu);
	return rc;
}

int ipc_server_add_queue(ipc_server *srv, const char *name, ipc_queue *q)
{
	ipc_queue *probe;
	int rc;

	if (srv == NULL || name == NULL || q == NULL)
		return IPC_EINVAL;
	rc = ipc__queue_dup(q, &probe); /* can we serve it at all? */
	if (rc != 0)
		return rc;
	ipc_queue_close(probe);
	return server_add(srv, name, IPC__NK_QUEUE, q, NULL);
}

int ipc_server_add_event(ipc_server *srv, const char *name, ipc_event *ev)
{
	return server_add(srv, name, IPC__NK_EVENT, NULL, ev);
}

int ipc_server_add_lock(ipc_server *srv, const char *name, ipc_lock *lk)
{
	return server_add(srv, name, IPC__NK_LOCK, NULL, lk);
}

int ipc_server_add_sem(ipc_server *srv, const char *name, ipc_sem *sem)
{
	return server_add(srv, name, IPC__NK_SEM, NULL, sem);
}

int ipc_server_add_barrier(ipc_server *srv, const char *name, ipc_barrier *b)
{
	return server_add(srv, name, IPC__NK_BARRIER, NULL, b);
}

void ipc_server_stop(ipc_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stop, true);
	pthread_join(srv->thread, NULL);
	/* Session threads end within one slice of a blocking call. */
	pthread_mutex_lock(&srv->mu);
	while (srv->live_threads > 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	nn_close(srv->sock);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	ipc__keys_wipe(&srv->keys);
	sodium_memzero(srv->ended, sizeof(srv->ended));
	free(srv);
}
