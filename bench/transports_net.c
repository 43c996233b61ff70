/* SPDX-License-Identifier: MIT */
/*
 * Socket-library and C++ transports: nanomsg PUSH/PULL over ipc:// and
 * tcp://, ZeroMQ PUSH/PULL over ipc://, Boost.Interprocess message_queue,
 * and libipc's remote queue over tcp loopback.
 *
 * The receiver binds (or serves), the sender connects: the peer handshake
 * attaches every receiving end before any sending end. Sockets are made
 * only in the peers, after the fork. A tcp port is found by binding port 0
 * in the parent and closing it again; the peers bind it a moment later.
 */
#include "bench.h"

#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#ifdef HAVE_ZMQ
#include <zmq.h>
#endif
#ifdef HAVE_BOOST
#include "boost_mq.h"
#endif

static int free_tcp_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int tcp_url(struct channel *c, char *note)
{
	int port = free_tcp_port();

	if (port < 0) {
		snprintf(note, 120, "no free tcp port on 127.0.0.1");
		return -1;
	}
	snprintf(c->name, sizeof(c->name), "tcp://127.0.0.1:%d", port);
	return 0;
}

static int ipc_url(struct channel *c, char *note)
{
	(void)note;
	snprintf(c->name, sizeof(c->name), "ipc:///tmp/ipc-bench.%d.%d.sock",
		 (int)getpid(), c->tag);
	return 0;
}

static void unlink_ipc_url(struct channel *c)
{
	if (strncmp(c->name, "ipc://", 6) == 0)
		unlink(c->name + 6);
}

/* ---- nanomsg ------------------------------------------------------------ */
static int nn_attach(struct channel *c, enum bench_role role)
{
	int unlimited = -1;

	c->sock = nn_socket(AF_SP, role == ROLE_RECV ? NN_PULL : NN_PUSH);
	if (c->sock < 0)
		return -1;
	if (role == ROLE_RECV)
		return nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE,
				     &unlimited, sizeof(unlimited)) < 0 ||
				       nn_bind(c->sock, c->name) < 0
			       ? -1
			       : 0;
	return nn_connect(c->sock, c->name) < 0 ? -1 : 0;
}

static void nn_send_msg(struct channel *c, const void *buf, size_t len)
{
	if (nn_send(c->sock, buf, len, 0) != (int)len)
		bench_die("nn_send");
}

static size_t nn_recv_msg(struct channel *c, void *buf, size_t cap)
{
	int n = nn_recv(c->sock, buf, cap, 0);

	if (n < 0)
		bench_die("nn_recv");
	return (size_t)n;
}

static void nn_detach(struct channel *c, enum bench_role role)
{
	(void)role;
	nn_close(c->sock);
}

const struct transport tr_nn_ipc = {
	.name = "nn-ipc",
	.what = "nanomsg PUSH/PULL over ipc:// (a Unix socket): nn_send / "
		"nn_recv",
	.setup = ipc_url,
	.attach = nn_attach,
	.send = nn_send_msg,
	.recv = nn_recv_msg,
	.detach = nn_detach,
	.teardown = unlink_ipc_url,
};

const struct transport tr_nn_tcp = {
	.name = "nn-tcp",
	.what = "nanomsg PUSH/PULL over tcp://127.0.0.1: nn_send / nn_recv",
	.setup = tcp_url,
	.attach = nn_attach,
	.send = nn_send_msg,
	.recv = nn_recv_msg,
	.detach = nn_detach,
};

/* ---- ZeroMQ ---------------------------------------------------------- */
#ifdef HAVE_ZMQ
static int zmq_attach(struct channel *c, enum bench_role role)
{
	/* No more queued messages than the shared-memory rows hold. */
	size_t n = bench_capacity(c->msg_size) / c->msg_size;
	int hwm = n < 4 ? 4 : n > 1000 ? 1000 : (int)n, linger = 0;

	c->zctx = zmq_ctx_new();
	if (c->zctx == NULL)
		return -1;
	c->zsock = zmq_socket(c->zctx, role == ROLE_RECV ? ZMQ_PULL : ZMQ_PUSH);
	if (c->zsock == NULL ||
	    zmq_setsockopt(c->zsock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(c->zsock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0)
		return -1;
	if (role == ROLE_RECV)
		return zmq_setsockopt(c->zsock, ZMQ_LINGER, &linger,
				      sizeof(linger)) != 0 ||
				       zmq_bind(c->zsock, c->name) != 0
			       ? -1
			       : 0;
	return zmq_connect(c->zsock, c->name) != 0 ? -1 : 0;
}

static void zmq_send_msg(struct channel *c, const void *buf, size_t len)
{
	if (zmq_send(c->zsock, buf, len, 0) != (int)len)
		bench_die("zmq_send");
}

static size_t zmq_recv_msg(struct channel *c, void *buf, size_t cap)
{
	int n = zmq_recv(c->zsock, buf, cap, 0);

	if (n < 0)
		bench_die("zmq_recv");
	return (size_t)n;
}

static void zmq_detach(struct channel *c, enum bench_role role)
{
	(void)role;
	zmq_close(c->zsock);
	zmq_ctx_term(c->zctx);
}

const struct transport tr_zmq_ipc = {
	.name = "zmq-ipc",
	.what = "ZeroMQ PUSH/PULL over ipc:// (a Unix socket): zmq_send / "
		"zmq_recv",
	.setup = ipc_url,
	.attach = zmq_attach,
	.send = zmq_send_msg,
	.recv = zmq_recv_msg,
	.detach = zmq_detach,
	.teardown = unlink_ipc_url,
};
#endif

/* ---- Boost.Interprocess message_queue -------------------------------- */
#ifdef HAVE_BOOST
static int boost_setup(struct channel *c, char *note)
{
	size_t n = bench_capacity(c->msg_size) / c->msg_size;

	snprintf(c->name, sizeof(c->name), "ipc-bench.%d.%d", (int)getpid(),
		 c->tag);
	return bench_boost_create(c->name,
				  n < 4	      ? 4
				  : n > 16384 ? 16384
					      : n,
				  c->msg_size, note, 120);
}

static int boost_attach(struct channel *c, enum bench_role role)
{
	(void)role;
	c->bq = bench_boost_open(c->name);
	return c->bq == NULL ? -1 : 0;
}

static void boost_send(struct channel *c, const void *buf, size_t len)
{
	if (bench_boost_send(c->bq, buf, len) != 0)
		bench_die("boost message_queue send");
}

static size_t boost_recv(struct channel *c, void *buf, size_t cap)
{
	long n = bench_boost_recv(c->bq, buf, cap);

	if (n < 0)
		bench_die("boost message_queue receive");
	return (size_t)n;
}

static void boost_detach(struct channel *c, enum bench_role role)
{
	(void)role;
	bench_boost_close(c->bq);
	c->bq = NULL;
}

static void boost_teardown(struct channel *c)
{
	bench_boost_remove(c->name);
}

const struct transport tr_boost = {
	.name = "boost-mq",
	.what = "Boost.Interprocess message_queue: send / receive",
	.flags = T_MPMC,
	.setup = boost_setup,
	.attach = boost_attach,
	.send = boost_send,
	.recv = boost_recv,
	.detach = boost_detach,
	.teardown = boost_teardown,
};
#endif

/* ---- libipc remote queue ---------------------------------------------------
 * The receiving peer serves a local queue (ipc_server, authenticated and
 * encrypted) and gets from it; the sending peer puts through a connected
 * handle, each put acknowledged once stored. */
#define REMOTE_KEY "ipc-bench key"

static const ipc_net_attr remote_attr = {
	.authkey = REMOTE_KEY,
	.authkey_len = sizeof(REMOTE_KEY) - 1,
};

static int remote_setup(struct channel *c, char *note)
{
	ipc_queue_attr attr = { .capacity = bench_capacity(c->msg_size),
				.max_msg_size = c->msg_size };
	int rc;

	if (tcp_url(c, note) != 0)
		return -1;
	rc = ipc_queue_open(&c->q, NULL, 0, &attr);
	if (rc != 0)
		snprintf(note, 120, "ipc_queue_open: %s", ipc_strerror(rc));
	return rc;
}

static int remote_attach(struct channel *c, enum bench_role role)
{
	if (role == ROLE_RECV)
		return ipc_server_start(&c->srv, c->name, &remote_attr) != 0 ||
				       ipc_server_add_queue(c->srv, "bench",
							    c->q) != 0
			       ? -1
			       : 0;
	return ipc_queue_connect(&c->q, c->name, "bench", &remote_attr) != 0
		       ? -1
		       : 0;
}

static void remote_send(struct channel *c, const void *buf, size_t len)
{
	if (ipc_queue_put(c->q, buf, len, 30000) != 0)
		bench_die("remote ipc_queue_put");
}

static size_t remote_recv(struct channel *c, void *buf, size_t cap)
{
	ssize_t n = ipc_queue_get(c->q, buf, cap, IPC_FOREVER);

	if (n < 0)
		bench_die("ipc_queue_get");
	return (size_t)n;
}

/* The sending end closes its connection, a round trip that costs a
 * second (its bound) when the server has already stopped; so peers.c
 * closes every T_ACKED sending end before any receiving end goes, and
 * the server stops (about 50 ms) with no client left. */
static void remote_detach(struct channel *c, enum bench_role role)
{
	if (role == ROLE_SEND)
		ipc_queue_close(c->q);
	else
		ipc_server_stop(c->srv);
}

static void remote_teardown(struct channel *c)
{
	ipc_queue_close(c->q);
}

/* Batches: the sender's ipc_queue_put_many carries up to 64 messages in
 * one request and one acknowledgement (each still stored exactly once);
 * the receiving side takes them from the served local queue with
 * ipc_queue_get_many. */
static void remote_send_many(struct channel *c, const struct iovec *msgs,
			     size_t n)
{
	bench_queue_put_all(c, msgs, n, 30000); /* a lost server fails it */
}

const struct transport tr_remote_batch = {
	.name = "libipc-remote-batch",
	.what = "libipc remote queue over tcp://127.0.0.1, ipc_queue_put_many "
		"(up to 64 messages a request, each batch acknowledged once "
		"stored) -> ipc_server -> ipc_queue_get_many",
	.setup = remote_setup,
	.attach = remote_attach,
	.send = remote_send,
	.recv = remote_recv,
	.detach = remote_detach,
	.teardown = remote_teardown,
	.flags = T_ACKED,
	.send_many = remote_send_many,
	.recv_many = bench_queue_get_many,
};

const struct transport tr_remote = {
	.name = "libipc-remote",
	.what = "libipc remote queue over tcp://127.0.0.1 (authenticated, "
		"encrypted, every put acknowledged) -> ipc_server -> "
		"ipc_queue_get",
	.setup = remote_setup,
	.attach = remote_attach,
	.send = remote_send,
	.recv = remote_recv,
	.detach = remote_detach,
	.teardown = remote_teardown,
	.flags = T_ACKED,
};
