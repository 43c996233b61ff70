/* SPDX-License-Identifier: MIT */
/*
 * server.h — the server's state, shared by server.c (the receiving thread,
 * sessions' lifecycle, the public API) and session.c (what a session
 * thread does with one request). Internal to net/.
 */
#ifndef LIBIPC_NET_SERVER_H
#define LIBIPC_NET_SERVER_H

#include "libipc/net/net.h"
#include "libipc/queue/queue.h"

#define SRV_MAX_OBJECTS 64
#define SRV_MAX_SESSIONS 256
#define SRV_CTRL 256
#define SRV_PENDING_MS 10000 /* a handshake left half-done expires */
/* Handshakes not yet proven (a HELLO costs nothing and needs no key): at
 * most this many; a new one evicts the oldest, so a flood of HELLOs cannot
 * fill the table and lock out a client that holds the key. */
#define SRV_MAX_PENDING 32
#define SRV_TICK_MS 50 /* receive timeout: how often leases are swept */
/* Sessions whose lease expired and whose last reply the server still
 * answers resends with (struct ended): the newest this many. */
#define SRV_MAX_ENDED 256
/* The largest reply kept for an ended session: one without data. */
#define SRV_ENDED_REPLY (IPC__NET_HDR + IPC__NET_BODY_HDR + IPC__NET_TAG)

struct served {
	char name[IPC__NET_NAME_MAX + 1];
	uint8_t kind; /* enum ipc__net_kind */
	ipc_queue *q; /* IPC__NK_QUEUE */
	void *obj; /* the others: ipc_event, ipc_lock, ipc_sem, ipc_barrier */
};

struct job {
	uint8_t *raw; /* the frame, nn_allocmsg'd */
	struct ipc__body body;
	uint8_t *plain; /* the opened body (b->data points into it) */
	uint64_t seq;
	/* The client reports the replies from this seq on lost (the run of
	 * IPC__BF_PREV_LOST on this request, or on a queued one this request
	 * superseded); 0: none. */
	uint64_t lost_from;
	uint8_t ctrl[SRV_CTRL]; /* routing header of the request */
};

struct session {
	struct ipc_server *srv;
	uint64_t sid;
	uint8_t client_id[IPC__NET_ID];
	uint8_t nonce_c[IPC__NET_NONCE];
	uint8_t nonce_s[IPC__NET_NONCE];
	struct ipc__session_keys sk;
	bool active; /* handshake finished; thread running */
	/* A request of it authenticated (receiving thread only). A keyless
	 * session is active at HELLO, which proves nothing: until it is used
	 * it counts as unfinished, like a keyed handshake. */
	bool used;
	int64_t created_ms;
	char name[IPC__NET_NAME_MAX + 1];
	uint8_t kind;
	ipc_queue *q; /* a queue: our own handle on the served queue */
	bool joinable;
	void *obj; /* the others: the served handle (shared, not ours) */
	/* What the session holds, released when it ends (session thread). */
	bool lock_held;
	long sem_held; /* units acquired less units released */

	/* Shared between the receiving thread and the session thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t last_ms; /* last frame from the client */
	bool has_job, exiting, want_close;
	struct job job;
	uint64_t busy_seq;	/* executing now; 0 none */
	uint16_t busy_op;	/* its op */
	uint64_t aborted_seq;	/* a barrier wait we broke (lease, stop) */
	uint64_t last_seq;	/* last executed */
	uint8_t ctrl[SRV_CTRL]; /* routing header of the newest copy */
	uint8_t *last_reply;	/* the frame sent for last_seq */
	size_t last_reply_len;
	uint16_t last_op;
	int32_t last_status;
	/* Session thread only. */
	/* Got messages whose reply was lost, oldest first: a batch (u32
	 * length, bytes, ...; built here, so trusted) from und_off on, und_n
	 * messages; handed to the client's next gets. */
	uint8_t *und;
	size_t und_len, und_off, und_n;
};

/* What the server keeps of an ended session (receiving thread only): the
 * last request it executed and the reply it sent. nanomsg resends a
 * request until an answer arrives, also across a reconnect, and may hand
 * the client the last of several answers to it; a resend that reaches the
 * server after the lease expired must get that reply again, not
 * NOSESSION, or the client, told that its session is gone, repeats in a
 * new session a request that has run (a put stored twice). Only a reply
 * that the session's end leaves true is kept (see
 * ipc__session_reply_outlives_end). */
struct ended {
	uint64_t sid; /* 0: an empty slot */
	uint64_t last_seq;
	uint8_t c2s[32]; /* the session's request key: resends authenticate */
	uint8_t reply[SRV_ENDED_REPLY]; /* the frame sent for last_seq */
	uint16_t reply_len;
};

struct ipc_server {
	int sock;
	struct ipc__keys keys;
	int lease_ms;
	void (*log)(void *arg, const char *msg);
	void *log_arg;
	pthread_t thread;
	_Atomic bool stop;
	pthread_mutex_t mu; /* objs, and the live thread count */
	pthread_cond_t cv;
	struct served objs[SRV_MAX_OBJECTS];
	int nobjs;
	int live_threads;
	struct session *sessions[SRV_MAX_SESSIONS]; /* receiving thread only */
	struct ended ended[SRV_MAX_ENDED];	    /* receiving thread only */
	int ended_next;				    /* the slot to fill next */
	int64_t last_sweep_ms;
};

/* One line to the server's log (attr->log), if it has one. */
void ipc__srv_log(struct ipc_server *srv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* session.c, all run by the session thread. */
/* Run body b; fill reply r (r->data may be set to *out, malloc'd). */
void ipc__session_exec(struct session *s, const struct ipc__body *b,
		       struct ipc__body *r, void **out);
/* The client reports the reply to the last request lost: keep a got
 * message for its next get, undo an acquire it believes failed. */
void ipc__session_recover_lost(struct session *s);
/* The reply to the last request still holds once the session has ended
 * and given back what it holds: false for a get that carried messages (a
 * plain Queue gets them back, a JoinableQueue requeues them) and for an
 * acquire that succeeded (released). The session is idle; s->mu held. */
bool ipc__session_reply_outlives_end(const struct session *s);
/* The session ends: give back what it holds (a Lock, Semaphore units) and,
 * for a plain Queue, put back the messages whose reply was lost. */
void ipc__session_give_back(struct session *s);

#endif /* LIBIPC_NET_SERVER_H */
