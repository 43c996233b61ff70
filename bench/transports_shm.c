/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory transports: the spinning ring (the floor) and libipc's
 * Queue (shared-memory and mqueue backends, plain and joinable) and Pipe.
 *
 * Every shared-memory row gets the same storage: bench_capacity(size)
 * bytes, 1 MiB for messages up to 256 KiB and four times the message
 * beyond, so that no row wins by buffering more.
 */
#include "bench.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

size_t bench_capacity(size_t msg_size)
{
	size_t cap = (size_t)1 << 20;

	while (cap < 4 * (msg_size + 8))
		cap <<= 1;
	return cap;
}

/* ---- ring ----------------------------------------------------------------
 * A single-producer single-consumer byte ring with libipc's record format
 * ([u64 length][payload padded to 8]), spinning, with cached indices — and
 * no locks, no wake-ups, no crash safety. */
struct spsc {
	_Atomic uint64_t head __attribute__((aligned(64)));
	uint64_t tail_cache;
	_Atomic uint64_t tail __attribute__((aligned(64)));
	uint64_t head_cache;
	uint64_t cap __attribute__((aligned(64)));
	uint8_t data[] __attribute__((aligned(64)));
};

static size_t ring_bytes(const struct channel *c)
{
	return sizeof(struct spsc) + bench_capacity(c->msg_size);
}

static int ring_setup(struct channel *c, char *note)
{
	(void)note;
	c->ring = bench_shared(ring_bytes(c));
	c->ring->cap = bench_capacity(c->msg_size);
	return 0;
}

static void ring_copy(struct spsc *r, uint64_t pos, void *dst, const void *src,
		      size_t len, bool in)
{
	size_t off = pos & (r->cap - 1), first = r->cap - off;
	size_t a = len <= first ? len : first;

	if (in) {
		memcpy(r->data + off, src, a);
		memcpy(r->data, (const uint8_t *)src + a, len - a);
	} else {
		memcpy(dst, r->data + off, a);
		memcpy((uint8_t *)dst + a, r->data, len - a);
	}
}

static void ring_send(struct channel *c, const void *buf, size_t len)
{
	struct spsc *r = c->ring;
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t need = 8 + ((len + 7) & ~(uint64_t)7), len64 = len;

	while (r->cap - (t - r->head_cache) < need)
		r->head_cache =
			atomic_load_explicit(&r->head, memory_order_acquire);
	ring_copy(r, t, NULL, &len64, 8, true);
	ring_copy(r, t + 8, NULL, buf, len, true);
	atomic_store_explicit(&r->tail, t + need, memory_order_release);
}

static size_t ring_recv(struct channel *c, void *buf, size_t cap)
{
	struct spsc *r = c->ring;
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t len;

	while (h == r->tail_cache)
		r->tail_cache =
			atomic_load_explicit(&r->tail, memory_order_acquire);
	ring_copy(r, h, &len, NULL, 8, false);
	ring_copy(r, h + 8, buf, NULL, len < cap ? len : cap, false);
	atomic_store_explicit(&r->head, h + 8 + ((len + 7) & ~(uint64_t)7),
			      memory_order_release);
	return len;
}

static void ring_teardown(struct channel *c)
{
	bench_unshare(c->ring, ring_bytes(c));
}

const struct transport tr_ring = {
	.name = "ring",
	.what = "spinning lock-free SPSC byte ring: no locks, no wake-ups, no "
		"crash safety (the floor)",
	.flags = T_SPINS,
	.setup = ring_setup,
	.attach = bench_attach_nothing,
	.send = ring_send,
	.recv = ring_recv,
	.teardown = ring_teardown,
};

/* ---- libipc Queue ------------------------------------------------------ */
static int queue_setup(struct channel *c, const ipc_queue_attr *attr,
		       char *note)
{
	int rc = ipc_queue_open(&c->q, NULL, 0, attr);

	if (rc != 0)
		snprintf(note, 120, "ipc_queue_open: %s", ipc_strerror(rc));
	return rc;
}

static int ipc_setup(struct channel *c, char *note)
{
	ipc_queue_attr attr = { .capacity = bench_capacity(c->msg_size),
				.max_msg_size = c->msg_size };

	return queue_setup(c, &attr, note);
}

static int ipc_jq_setup(struct channel *c, char *note)
{
	ipc_queue_attr attr = { .capacity = bench_capacity(c->msg_size),
				.max_msg_size = c->msg_size,
				.joinable = true };

	return queue_setup(c, &attr, note);
}

/* maxsize 256 when the system allows it (root), else its default limit. */
static int ipc_mq_setup(struct channel *c, char *note)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 256,
				.max_msg_size = c->msg_size };
	int rc = ipc_queue_open(&c->q, NULL, 0, &attr);

	if (rc == IPC_EINVAL) {
		attr.maxsize = 10;
		rc = ipc_queue_open(&c->q, NULL, 0, &attr);
	}
	if (rc == IPC_EMSGSIZE)
		snprintf(note, 120, "over /proc/sys/fs/mqueue/msgsize_max (%s)",
			 ipc_strerror(rc));
	else if (rc != 0)
		snprintf(note, 120, "ipc_queue_open: %s", ipc_strerror(rc));
	return rc;
}

static void ipc_send(struct channel *c, const void *buf, size_t len)
{
	if (ipc_queue_put(c->q, buf, len, IPC_FOREVER) != 0)
		bench_die("ipc_queue_put");
}

static size_t ipc_recv(struct channel *c, void *buf, size_t cap)
{
	ssize_t n = ipc_queue_get(c->q, buf, cap, IPC_FOREVER);

	if (n < 0)
		bench_die("ipc_queue_get");
	return (size_t)n;
}

/* JoinableQueue: every get is followed by its task_done. */
static size_t ipc_jq_recv(struct channel *c, void *buf, size_t cap)
{
	size_t n = ipc_recv(c, buf, cap);

	if (ipc_queue_task_done(c->q) != 0)
		bench_die("ipc_queue_task_done");
	return n;
}

static void ipc_teardown(struct channel *c)
{
	ipc_queue_close(c->q);
}

const struct transport tr_libipc = {
	.name = "libipc",
	.what = "ipc_queue_put / ipc_queue_get, shared-memory ring backend",
	.flags = T_MPMC,
	.setup = ipc_setup,
	.attach = bench_attach_nothing,
	.send = ipc_send,
	.recv = ipc_recv,
	.teardown = ipc_teardown,
};

const struct transport tr_libipc_jq = {
	.name = "libipc-jq",
	.what = "JoinableQueue: ipc_queue_put / ipc_queue_get + "
		"ipc_queue_task_done",
	.flags = T_MPMC,
	.setup = ipc_jq_setup,
	.attach = bench_attach_nothing,
	.send = ipc_send,
	.recv = ipc_jq_recv,
	.teardown = ipc_teardown,
};

const struct transport tr_libipc_mq = {
	.name = "libipc-mq",
	.what = "ipc_queue_put / ipc_queue_get on the POSIX mqueue backend",
	.flags = T_MPMC,
	.setup = ipc_mq_setup,
	.attach = bench_attach_nothing,
	.send = ipc_send,
	.recv = ipc_recv,
	.teardown = ipc_teardown,
};

/* Batches: ipc_queue_put_many / ipc_queue_get_many. */
void bench_queue_put_all(struct channel *c, const struct iovec *msgs, size_t n,
			 int timeout_ms)
{
	while (n > 0) {
		ssize_t put = ipc_queue_put_many(c->q, msgs, n, timeout_ms);
		if (put <= 0)
			bench_die("ipc_queue_put_many");
		msgs += put;
		n -= (size_t)put;
	}
}

static void ipc_send_many(struct channel *c, const struct iovec *msgs, size_t n)
{
	bench_queue_put_all(c, msgs, n, IPC_FOREVER);
}

size_t bench_queue_get_many(struct channel *c, struct iovec *msgs, size_t n)
{
	ssize_t got = ipc_queue_get_many(c->q, msgs, n, IPC_FOREVER);

	if (got <= 0)
		bench_die("ipc_queue_get_many");
	return (size_t)got;
}

const struct transport tr_libipc_batch = {
	.name = "libipc-batch",
	.what = "ipc_queue_put_many / ipc_queue_get_many, up to 64 messages a "
		"call",
	.setup = ipc_setup,
	.attach = bench_attach_nothing,
	.send = ipc_send,
	.recv = ipc_recv,
	.teardown = ipc_teardown,
	.send_many = ipc_send_many,
	.recv_many = bench_queue_get_many,
};

/* Zero copy: the producer reserves room and writes the message in place
 * (its header, BENCH_HDR bytes, the rest filled as a producer generating its
 * data there would), then commits; the consumer borrows the record, reads its
 * header where it lies and gives it back. Borrowing needs a JoinableQueue:
 * the give-back is the task_done. */
static void zc_send(struct channel *c, const void *buf, size_t len)
{
	size_t hdr = len < BENCH_HDR ? len : BENCH_HDR;
	void *slot;

	if (ipc_queue_reserve(c->q, len, &slot, IPC_FOREVER) != 0)
		bench_die("ipc_queue_reserve");
	memcpy(slot, buf, hdr);
	memset((char *)slot + hdr, 'x', len - hdr);
	if (ipc_queue_commit(c->q, len) != 0)
		bench_die("ipc_queue_commit");
}

/* Only the header reaches buf: it is all the consumer loops read. */
static size_t zc_recv(struct channel *c, void *buf, size_t cap)
{
	const void *msg;
	ssize_t n = ipc_queue_borrow(c->q, &msg, IPC_FOREVER);
	size_t hdr = cap < BENCH_HDR ? cap : BENCH_HDR;

	if (n < 0)
		bench_die("ipc_queue_borrow");
	memcpy(buf, msg, (size_t)n < hdr ? (size_t)n : hdr);
	if (ipc_queue_give_back(c->q) != 0)
		bench_die("ipc_queue_give_back");
	return (size_t)n;
}

const struct transport tr_libipc_zc = {
	.name = "libipc-zc",
	.what = "zero copy: ipc_queue_reserve + write in place + "
		"ipc_queue_commit / ipc_queue_borrow + ipc_queue_give_back "
		"(a JoinableQueue)",
	.setup = ipc_jq_setup,
	.attach = bench_attach_nothing,
	.send = zc_send,
	.recv = zc_recv,
	.teardown = ipc_teardown,
};

/* ---- libipc Pipe ----------------------------------------------------- */
static int conn_setup(struct channel *c, char *note)
{
	ipc_queue_attr attr = { .capacity = bench_capacity(c->msg_size),
				.max_msg_size = c->msg_size };
	int rc = ipc_pipe_new(&c->conn_rx, &c->conn_tx, false, &attr);

	if (rc != 0)
		snprintf(note, 120, "ipc_pipe_new: %s", ipc_strerror(rc));
	return rc;
}

static void conn_send(struct channel *c, const void *buf, size_t len)
{
	if (ipc_conn_send(c->conn_tx, buf, len, IPC_FOREVER) != 0)
		bench_die("ipc_conn_send");
}

static size_t conn_recv(struct channel *c, void *buf, size_t cap)
{
	ssize_t n = ipc_conn_recv(c->conn_rx, buf, cap, IPC_FOREVER);

	if (n < 0)
		bench_die("ipc_conn_recv");
	return (size_t)n;
}

static void conn_teardown(struct channel *c)
{
	ipc_conn_close(c->conn_rx);
	ipc_conn_close(c->conn_tx);
}

const struct transport tr_ipc_pipe = {
	.name = "ipc-pipe",
	.what = "libipc Pipe (ipc_pipe_new, one-way): ipc_conn_send / "
		"ipc_conn_recv",
	.setup = conn_setup,
	.attach = bench_attach_nothing,
	.send = conn_send,
	.recv = conn_recv,
	.teardown = conn_teardown,
};
