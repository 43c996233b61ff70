/* SPDX-License-Identifier: MIT */
/*
 * net.h — libipc across hosts, internal to net/.
 *
 * net/ is the only folder that includes nanomsg or libsodium. It has three
 * layers, one file each:
 *
 *   wire.c   the frame codec: a fixed 32-byte header and a body, encoded
 *            and decoded with every length and field checked against the
 *            bytes actually present (docs/protocol.md is the format);
 *   auth.c   key derivation, the mutual challenge-response and per-frame
 *            authenticated encryption, all with libsodium;
 *   server.c (with server.h and session.c, a session thread's work) and
 *   client.c (with sync_client.c, the remote Event, Lock, Semaphore and
 *            Barrier)  the two ends, over nanomsg REQ/REP.
 *
 * Everything here returns 0 or a negative errno (IPC_E* code).
 */
#ifndef LIBIPC_NET_H
#define LIBIPC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "libipc/core/core.h"

/* ---- Frames (wire.c) ---------------------------------------------------- */

#define IPC__NET_MAGIC 0x4e435049u /* "IPCN" little-endian */
#define IPC__NET_VERSION 1
#define IPC__NET_HDR 32
#define IPC__NET_BODY_HDR 16
/* Largest message a remote queue carries, and so the largest frame. */
#define IPC__NET_MAX_MSG ((size_t)16 << 20)
#define IPC__NET_MAX_PAYLOAD (IPC__NET_MAX_MSG + IPC__NET_BODY_HDR + 64)
#define IPC__NET_MAX_FRAME (IPC__NET_HDR + IPC__NET_MAX_PAYLOAD)

#define IPC__NET_ID 16	  /* client id bytes */
#define IPC__NET_NONCE 32 /* handshake nonce bytes */
#define IPC__NET_PROOF 32 /* crypto_auth tag bytes */
#define IPC__NET_TAG 16	  /* AEAD tag bytes */
#define IPC__NET_NAME_MAX 200
/* Longest a server blocks in one request; clients repeat slices. */
#define IPC__NET_SLICE_MS 1000
/* Defaults of ipc_net_attr. */
#define IPC__NET_TIMEOUT_MS 5000
#define IPC__NET_LEASE_MS 10000

enum ipc__frame_type {
	IPC__F_HELLO = 1,     /* client -> server, plaintext */
	IPC__F_CHALLENGE = 2, /* server -> client, plaintext */
	IPC__F_PROOF = 3,     /* client -> server, plaintext */
	IPC__F_REQ = 4,	      /* client -> server, a body (sealed if keyed) */
	IPC__F_REP = 5,	      /* server -> client, a body (sealed if keyed) */
	IPC__F_ERR = 6,	      /* server -> client, plaintext i32 code */
	IPC__F_NOSESSION =
		7, /* server -> client: unknown session, redo hello */
};

#define IPC__FF_SEALED 0x1 /* payload is AEAD ciphertext + tag */

struct ipc__frame {
	uint8_t type;
	uint16_t flags;
	uint64_t sid;		/* session id, 0 in HELLO */
	uint64_t seq;		/* request sequence number; a reply echoes it */
	const uint8_t *payload; /* points into the decoded buffer */
	uint32_t len;
};

/* Write the header for f (f->payload ignored; f->len must be set) into
 * out[0..IPC__NET_HDR). */
void ipc__frame_put_header(uint8_t *out, const struct ipc__frame *f);

/* Decode buf[0..len): -EPROTO for a short or oversized buffer, a bad magic
 * or version, an unknown type or flag, nonzero reserved bits, or a length
 * field that disagrees with the bytes present. On success f->payload points
 * into buf. */
int ipc__frame_decode(const uint8_t *buf, size_t len, struct ipc__frame *f);

/* Operations carried in REQ/REP bodies. An object's ops sit in the block
 * of ten numbered by its kind (ipc__op_kind): 10-19 queue, 20-29 event,
 * 30-39 lock, 40-49 semaphore, 50-59 barrier. */
enum ipc__op {
	IPC__OP_OPEN =
		1, /* reply: val = max_msg | joinable << 62, arg = lease */
	IPC__OP_PING = 2,
	IPC__OP_CLOSE = 3,
	IPC__OP_Q_PUT = 10,
	IPC__OP_Q_GET = 11,
	IPC__OP_Q_TASK_DONE = 12,
	IPC__OP_Q_JOIN = 13,
	IPC__OP_Q_QSIZE = 14,
	IPC__OP_Q_UNFINISHED = 15,
	IPC__OP_Q_FULL = 16,
	IPC__OP_Q_SHUTDOWN = 17,
	IPC__OP_Q_PUT_MANY = 18, /* val = n; data = a batch (below) */
	IPC__OP_Q_GET_MANY = 19, /* val = n; data = n u32 capacities */
	IPC__OP_EV_SET = 20,
	IPC__OP_EV_CLEAR = 21,
	IPC__OP_EV_IS_SET = 22,
	IPC__OP_EV_WAIT = 23,
	IPC__OP_LK_ACQUIRE = 30,
	IPC__OP_LK_RELEASE = 31,
	IPC__OP_LK_LOCKED = 32,
	IPC__OP_SEM_ACQUIRE = 40,
	IPC__OP_SEM_RELEASE = 41,
	IPC__OP_SEM_VALUE = 42,
	IPC__OP_SEM_RELEASE_N = 43, /* arg = n */
	IPC__OP_BAR_WAIT = 50,
	IPC__OP_BAR_ABORT = 51,
	IPC__OP_BAR_RESET = 52,
	IPC__OP_BAR_PARTIES = 53,
	IPC__OP_BAR_N_WAITING = 54,
	IPC__OP_BAR_BROKEN = 55,
	IPC__OP_BAR_TIMEOUT = 56, /* the default timeout + 1 (0: forever) */
};

/* A batch, the data of PUT_MANY and of a GET_MANY reply: n messages, each a u32
 * length and its bytes. A request carries at most IPC__NET_BATCH_MAX messages.
 */
#define IPC__NET_BATCH_MAX 4096
/* The client cuts a batch into requests of about this many bytes. */
#define IPC__NET_BATCH_BYTES ((size_t)1 << 20)
/* Bytes that msgs[0..n) take in a batch. */
size_t ipc__batch_size(const struct iovec *msgs, size_t n);
/* Write the batch of msgs[0..n) to out (ipc__batch_size bytes). */
void ipc__batch_put(uint8_t *out, const struct iovec *msgs, size_t n);
/* Split data[0..len) into exactly n messages, out[i] pointing into data:
 * -EPROTO unless n is 1..IPC__NET_BATCH_MAX and the lengths account for
 * every byte, no more and no fewer. */
int ipc__batch_decode(const uint8_t *data, size_t len, size_t n,
		      struct iovec *out);

/* The kind (enum ipc__net_kind) whose op this is; 0 for the session ops
 * (OPEN, PING, CLOSE); -1 for a number that is no op. */
int ipc__op_kind(uint16_t op);

/* Body flags in a request. PREV_LOST: the client gave up on the reply to
 * the previous request; bits 1-15 then say how many requests in a row,
 * ending with the previous one, it gave up on (0 reads as 1): a report
 * that is itself lost — the link down for a few calls — is carried on by
 * the next request instead of vanishing. */
#define IPC__BF_PREV_LOST 0x1
#define IPC__BF_LOST_RUN_SHIFT 1
#define IPC__BF_LOST_RUN_MAX 0x7fff

/* A request or reply body: op, flags, arg (a timeout in a request, the
 * status in a reply), val (a count or size), then data. */
struct ipc__body {
	uint16_t op;
	uint16_t flags;
	int32_t arg;
	int64_t val;
	const uint8_t *data;
	uint32_t len;
};

void ipc__body_put(uint8_t *out, const struct ipc__body *b); /* header only */
/* -EPROTO unless plen >= IPC__NET_BODY_HDR, op is known, flags are known
 * and the data fits IPC__NET_MAX_MSG. */
int ipc__body_decode(const uint8_t *p, size_t plen, struct ipc__body *b);

/* HELLO payload: client id, client nonce, kind, keyed, name. */
enum ipc__net_kind {
	IPC__NK_QUEUE = 1,
	IPC__NK_EVENT = 2,
	IPC__NK_LOCK = 3,
	IPC__NK_SEM = 4,
	IPC__NK_BARRIER = 5,
};
#define IPC__NK_LAST IPC__NK_BARRIER
struct ipc__hello {
	uint8_t client_id[IPC__NET_ID];
	uint8_t nonce[IPC__NET_NONCE];
	uint8_t kind;
	uint8_t keyed;
	char name[IPC__NET_NAME_MAX + 1];
};
#define IPC__HELLO_FIXED (IPC__NET_ID + IPC__NET_NONCE + 4)
size_t ipc__hello_put(uint8_t *out, const struct ipc__hello *h);
/* -EPROTO for a bad length, kind, keyed byte, or a name that is empty,
 * too long or not [A-Za-z0-9._/-]. */
int ipc__hello_decode(const uint8_t *p, size_t len, struct ipc__hello *h);

static inline void ipc__put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ipc__put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t ipc__get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static inline uint64_t ipc__get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- Authentication and encryption (auth.c) ------------------------------ */

struct ipc__keys {
	bool keyed;
	uint8_t master[32]; /* generichash(authkey) */
	uint8_t auth[32];   /* handshake MAC key, derived from master */
};

/* Per-session keys, one per direction. */
struct ipc__session_keys {
	uint8_t c2s[32];
	uint8_t s2c[32];
};

enum ipc__dir { IPC__DIR_C2S = 1, IPC__DIR_S2C = 2 };

/* Derive the long-term keys from an authkey (len 0: keyless). -ENOMEM if
 * libsodium cannot initialise. */
int ipc__keys_init(struct ipc__keys *k, const void *authkey, size_t len);
void ipc__keys_wipe(struct ipc__keys *k);

/* Fill buf with random bytes. */
void ipc__random(void *buf, size_t len);

/* The handshake MAC of one side ('S' or 'C') over both nonces, the client
 * id and the session id. */
void ipc__proof(uint8_t out[IPC__NET_PROOF], const struct ipc__keys *k,
		char side, const uint8_t *client_id, const uint8_t *nonce_c,
		const uint8_t *nonce_s, uint64_t sid);
/* Constant-time check: 0 | -EAUTH... returned as IPC_EAUTH. */
int ipc__proof_check(const uint8_t proof[IPC__NET_PROOF],
		     const struct ipc__keys *k, char side,
		     const uint8_t *client_id, const uint8_t *nonce_c,
		     const uint8_t *nonce_s, uint64_t sid);
void ipc__session_keys(struct ipc__session_keys *sk, const struct ipc__keys *k,
		       const uint8_t *client_id, const uint8_t *nonce_c,
		       const uint8_t *nonce_s, uint64_t sid);

/* Build a complete REQ/REP frame around body b (plus its data) into a
 * malloc'd buffer: sealed with key (32 bytes) when key != NULL. The nonce
 * is (direction, sid, seq); a sequence number is never reused for a
 * different plaintext in one direction of one session. -ENOMEM. */
int ipc__frame_build(uint8_t **out, size_t *outlen, uint8_t type,
		     const uint8_t *key, enum ipc__dir dir, uint64_t sid,
		     uint64_t seq, const struct ipc__body *b);

/* Open a decoded REQ/REP frame into *plain (malloc'd, caller frees) and
 * decode its body (b->data points into *plain). A sealed frame needs key
 * and must authenticate under (dir, sid, seq) with its header as associated
 * data; an unsealed one is accepted only when key == NULL. -EPROTO for a
 * bad body, IPC_EAUTH for a frame that does not authenticate or whose
 * sealing disagrees with key, -ENOMEM. */
int ipc__frame_open(const struct ipc__frame *f, const uint8_t *raw,
		    const uint8_t *key, enum ipc__dir dir, uint8_t **plain,
		    struct ipc__body *b);

/* ---- Client connections (client.c) --------------------------------------- */

/* One client handle's connection: its REQ socket, session, sequence
 * numbers and lease keeper. The remote queue backend (client.c) and the
 * remote Event, Lock, Semaphore and Barrier (sync_client.c) sit on it. */
struct ipc__conn;

/* Connect to the object of kind served as name at url and run the
 * handshake. 0 | IPC_EINVAL | IPC_ETIMEDOUT | IPC_ECONNREFUSED | IPC_EAUTH
 * | IPC_ENOENT | IPC_EPROTO (served, but of another kind) | IPC_EBUSY
 * | IPC_ENOMEM. */
int ipc__conn_open(struct ipc__conn **out, const char *url, const char *name,
		   const ipc_net_attr *attr, uint8_t kind);
/* A request that may wait on the server (b->op and its data set; b->arg
 * is filled in here) until dl: in server-side waits of at most a slice,
 * repeated, or, when whole, in one wait of the whole time (a Barrier,
 * whose timeout breaks it). The reply in *r, its data in *plain (caller
 * frees); the operation's status is r->arg. 0 or a transport error. */
int ipc__conn_blocking(struct ipc__conn *c, struct ipc__body *b,
		       const struct ipc__deadline *dl, bool whole,
		       struct ipc__body *r, uint8_t **plain);
/* A request that does not wait on the server, answered within the
 * handle's timeout. 0 or a transport error; the status is r->arg. */
int ipc__conn_simple(struct ipc__conn *c, uint16_t op, int32_t arg,
		     struct ipc__body *r);
/* End the session (the server releases what it held for us) and free c. */
void ipc__conn_close(struct ipc__conn *c);

/* Translate a nanomsg errno into an IPC_E* code. */
int ipc__nn_error(int err);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t ipc__net_now_ms(void);

#endif /* LIBIPC_NET_H */
