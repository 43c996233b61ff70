/* SPDX-License-Identifier: MIT */
/*
 * Kernel transports: a POSIX message queue, a pipe and a Unix stream
 * socket. The two byte streams carry fixed-size frames: every message of a
 * run has the channel's size, so the reader reads exactly that many bytes.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- POSIX mq -------------------------------------------------------------
 * As many messages as the shared-memory rows' capacity holds, up to 1024;
 * without privilege the system's limits (10 messages of 8 KiB) apply and
 * larger messages are skipped with a note. */
static int mq_setup(struct channel *c, char *note)
{
	size_t want = bench_capacity(c->msg_size) / c->msg_size;
	struct mq_attr attr = { .mq_maxmsg = want > 1024 ? 1024 : (long)want,
				.mq_msgsize = (long)c->msg_size };

	snprintf(c->name, sizeof(c->name), "/ipc-bench.%d.%d", (int)getpid(),
		 c->tag);
	c->mq = mq_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	while (c->mq == (mqd_t)-1 && (errno == EMFILE || errno == ENOMEM) &&
	       attr.mq_maxmsg > 4) {
		attr.mq_maxmsg /= 2; /* over RLIMIT_MSGQUEUE */
		c->mq = mq_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600,
				&attr);
	}
	if (c->mq == (mqd_t)-1 && errno == EINVAL && attr.mq_maxmsg > 10) {
		attr.mq_maxmsg = 10; /* the unprivileged default limit */
		c->mq = mq_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600,
				&attr);
	}
	if (c->mq == (mqd_t)-1) {
		snprintf(note, 120,
			 "mq_open(%zu B messages): %s (limits in "
			 "/proc/sys/fs/mqueue)",
			 c->msg_size, strerror(errno));
		return -1;
	}
	mq_unlink(c->name);
	return 0;
}

static void mq_send_msg(struct channel *c, const void *buf, size_t len)
{
	while (mq_send(c->mq, buf, len, 0) != 0)
		if (errno != EINTR)
			bench_die("mq_send");
}

static size_t mq_recv_msg(struct channel *c, void *buf, size_t cap)
{
	ssize_t n;

	while ((n = mq_receive(c->mq, buf, cap, NULL)) < 0)
		if (errno != EINTR)
			bench_die("mq_receive");
	return (size_t)n;
}

static void mq_teardown(struct channel *c)
{
	mq_close(c->mq);
}

const struct transport tr_mq = {
	.name = "mq",
	.what = "POSIX message queue: mq_send / mq_receive",
	.flags = T_MPMC,
	.setup = mq_setup,
	.attach = bench_attach_nothing,
	.send = mq_send_msg,
	.recv = mq_recv_msg,
	.teardown = mq_teardown,
};

/* ---- byte streams ---------------------------------------------------- */
static int pipe_setup(struct channel *c, char *note)
{
	if (pipe(c->fds) == 0)
		return 0;
	snprintf(note, 120, "pipe: %s", strerror(errno));
	return -1;
}

static int unix_setup(struct channel *c, char *note)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fds) == 0)
		return 0;
	snprintf(note, 120, "socketpair: %s", strerror(errno));
	return -1;
}

static void stream_send(struct channel *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(c->fds[1], p, len);
		if (n < 0 && errno != EINTR)
			bench_die("write");
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
}

static size_t stream_recv(struct channel *c, void *buf, size_t cap)
{
	size_t got = 0, want = c->msg_size < cap ? c->msg_size : cap;

	while (got < want) {
		ssize_t n = read(c->fds[0], (char *)buf + got, want - got);
		if (n == 0)
			bench_die("read: end of stream");
		if (n < 0 && errno != EINTR)
			bench_die("read");
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

static void stream_teardown(struct channel *c)
{
	close(c->fds[0]);
	close(c->fds[1]);
}

const struct transport tr_pipe = {
	.name = "pipe",
	.what = "pipe(2), fixed-size frames: write / read",
	.flags = T_FRAMED,
	.setup = pipe_setup,
	.attach = bench_attach_nothing,
	.send = stream_send,
	.recv = stream_recv,
	.teardown = stream_teardown,
};

const struct transport tr_unix = {
	.name = "unix",
	.what = "Unix stream socket (socketpair), fixed-size frames: write / "
		"read",
	.flags = T_FRAMED,
	.setup = unix_setup,
	.attach = bench_attach_nothing,
	.send = stream_send,
	.recv = stream_recv,
	.teardown = stream_teardown,
};
