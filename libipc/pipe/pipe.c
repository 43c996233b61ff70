/* SPDX-License-Identifier: MIT */
/*
 * pipe.c — Pipe and Connection (Python's multiprocessing.Pipe): two
 * connected ends that send and receive byte messages.
 *
 * Each direction is a shared-memory Queue (queue/): messages are copied in
 * and out whole, never torn or duplicated, with the Queue's crash contract
 * and its speed (no system call while both peers are awake). A duplex pipe
 * has two queues, a one-way pipe one. What a Pipe adds is the notion of an
 * end being closed, and that needs to count the processes holding each end.
 *
 * Holders are counted by the kernel, with open file description (OFD)
 * locks. The pipe owns a memfd, the lock file. Each end has its own open
 * file description of it (a re-open through /proc/self/fd) holding a read
 * lock on one byte: byte 0 for the first end, byte 1 for the second. A
 * fork() shares open file descriptions, so every process that inherited
 * an end keeps its lock alive; the kernel drops the lock when the last
 * descriptor of that description is closed, by ipc_conn_close or by the
 * death of the last holder (SIGKILL included). Whether the peer end is
 * still held anywhere is one F_OFD_GETLK on its byte through a third
 * description, the memfd itself, which holds no lock. No pid is ever
 * guessed at.
 *
 * A named pipe is three named objects: its block "<name>" (a raw shared
 * memory block: the lock file, which ends were ever opened, duplex or not)
 * and its queues "<name>.p0" and "<name>.p1". An end that was never opened
 * is not closed: the first process to open end 0 waits for whoever opens
 * end 1 later.
 *
 * An end found closed shuts both queues down (ipc_queue_shutdown): sends
 * to it fail with IPC_ECLOSED, and its peer's receives return what is left
 * and then IPC_ECLOSED, which is end of file. The last closer does this at
 * once; a peer that died is found by the survivor, which looks whenever a
 * receive or send would wait (every IPC__RECHECK_MS while it waits) and,
 * on the send side, at most every IPC__RECHECK_MS otherwise (a clock read
 * per send; the lock test is one system call).
 *
 * poll() must wait for a message without taking it, which a Queue cannot
 * do: when nothing is queued, poll takes the next message into the
 * handle's one-message lookahead, and the next receive returns it. The
 * lookahead belongs to the process that polled: a child that inherits a
 * handle with a full lookahead does not see that message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libipc/core/core.h"
#include "libipc/pipe/pipe.h"
#include "libipc/queue/queue.h"

/* What the two ends of one pipe share inside one process. Both handles of
 * a pipe point to it; it is freed with the last of them. After a fork the
 * child has its own copy, so the count is per process. */
struct pipe_pair {
	pthread_mutex_t lock; /* guards refs */
	int refs;
	int probe_fd;	 /* the lock file: no lock, tests the ends' locks */
	ipc_queue *q[2]; /* q[0]: end 1 -> end 0; q[1]: end 0 -> end 1 */
	char lock_path[IPC__PATH_MAX]; /* reopened for each end's lock */
	ipc_shm *block; /* named: the pipe's own segment, else NULL */
	/* Whether each end was ever opened: until then it is not closed.
	 * Named: bytes of the block, set by each opener; anonymous: both. */
	volatile uint8_t *ever;
	uint8_t ever_local[2];
};

/* A named pipe's block: what its openers agree on. */
#define BLOCK_SIZE 64
#define BLOCK_EVER 0	  /* [0], [1]: end ever opened */
#define BLOCK_DUPLEX 2	  /* 0 unset, 1 one-way, 2 duplex */
#define PIPE_NAME_MAX 197 /* the queues are "<name>.p0", "<name>.p1" */

struct ipc_conn {
	struct pipe_pair *pair;
	int end;		 /* 0 or 1: the byte this end locks */
	int lock_fd;		 /* this end's open file description, locked */
	ipc_queue *rx;		 /* NULL: send-only */
	ipc_queue *tx;		 /* NULL: receive-only */
	pthread_mutex_t rx_lock; /* one receive (or poll) at a time; guards
				    the lookahead */
	void *ahead;		 /* the lookahead message, malloc'd, or NULL */
	size_t ahead_len;
	unsigned ahead_gen; /* fork generation of the process that took it */
	_Atomic int64_t last_check_ms; /* send side: last look at the peer,
					  CLOCK_MONOTONIC_COARSE */
};

static int lock_byte(int fd, int end, short type, int cmd)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = end, .l_len = 1
	};

	if (fcntl(fd, cmd, &fl) != 0)
		return ipc__sys_error(errno);
	return cmd == F_OFD_GETLK ? fl.l_type != F_UNLCK : 0;
}

/* 1 if some process still holds end `end`, 0 if none does. */
static int end_held(struct pipe_pair *p, int end)
{
	int rc = lock_byte(p->probe_fd, end, F_WRLCK, F_OFD_GETLK);

	return rc < 0 ? 1 : rc; /* cannot tell: assume alive */
}

/* The peer is gone: make both directions end of file. */
static void pipe_shut(struct pipe_pair *p)
{
	for (int i = 0; i < 2; i++)
		if (p->q[i] != NULL)
			ipc_queue_shutdown(p->q[i]);
}

static bool peer_gone(ipc_conn *c)
{
	int peer = 1 - c->end;

	if (!__atomic_load_n(&c->pair->ever[peer], __ATOMIC_ACQUIRE))
		return false; /* a named peer that has not come yet */
	if (end_held(c->pair, peer))
		return false;
	pipe_shut(c->pair);
	return true;
}

static void pair_unref(struct pipe_pair *p)
{
	int left;

	pthread_mutex_lock(&p->lock);
	left = --p->refs;
	pthread_mutex_unlock(&p->lock);
	if (left > 0)
		return;
	for (int i = 0; i < 2; i++)
		ipc_queue_close(p->q[i]);
	if (p->probe_fd >= 0)
		close(p->probe_fd);
	ipc_shm_close(p->block);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct pipe_pair *pair_new(void)
{
	struct pipe_pair *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->refs = 1; /* held by the maker until it is done */
	p->probe_fd = -1;
	p->ever = p->ever_local;
	return p;
}

static int conn_make(ipc_conn **out, struct pipe_pair *p, int end)
{
	ipc_conn *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return -ENOMEM;
	c->lock_fd = open(p->lock_path, O_RDWR | O_CLOEXEC);
	if (c->lock_fd < 0) {
		rc = ipc__sys_error(errno);
		free(c);
		return rc;
	}
	rc = lock_byte(c->lock_fd, end, F_RDLCK, F_OFD_SETLK);
	if (rc != 0) {
		close(c->lock_fd);
		free(c);
		return rc;
	}
	/* Of the kind ipc__mutex_lock accepts (it refuses any other as
	 * damaged), though it lives in this process's memory. */
	rc = ipc__mutex_init(&c->rx_lock, false);
	if (rc != 0) {
		close(c->lock_fd);
		free(c);
		return rc;
	}
	c->pair = p;
	c->end = end;
	c->rx = p->q[end];
	c->tx = p->q[1 - end];
	__atomic_store_n(&p->ever[end], 1, __ATOMIC_RELEASE);
	p->refs++;
	*out = c;
	return 0;
}

int ipc_pipe_new(ipc_conn **c1, ipc_conn **c2, bool duplex,
		 const ipc_queue_attr *attr)
{
	ipc_queue_attr qa = { 0 };
	struct pipe_pair *p;
	int rc;

	if (c1 != NULL)
		*c1 = NULL;
	if (c2 != NULL)
		*c2 = NULL;
	if (c1 == NULL || c2 == NULL || (attr != NULL && attr->joinable))
		return -EINVAL;
	if (attr != NULL)
		qa = *attr;
	p = pair_new();
	if (p == NULL)
		return -ENOMEM;
	p->ever[0] = p->ever[1] = 1;
	p->probe_fd = memfd_create("libipc-pipe", MFD_CLOEXEC);
	if (p->probe_fd < 0) {
		rc = ipc__sys_error(errno);
		goto out;
	}
	snprintf(p->lock_path, sizeof(p->lock_path), "/proc/self/fd/%d",
		 p->probe_fd);
	rc = ipc_queue_open(&p->q[0], NULL, 0, &qa);
	if (rc == 0 && duplex)
		rc = ipc_queue_open(&p->q[1], NULL, 0, &qa);
	if (rc == 0)
		rc = conn_make(c1, p, 0);
	if (rc == 0)
		rc = conn_make(c2, p, 1);
	if (rc != 0) {
		ipc_conn_close(*c1);
		*c1 = NULL;
	}
out:
	pair_unref(p);
	return rc;
}

/* "<name>.p<i>", the name of a named pipe's queue i. */
static void queue_name(char *buf, size_t cap, const char *name, int i)
{
	snprintf(buf, cap, "%s.p%d", name[0] == '/' ? name + 1 : name, i);
}

/* Agree on duplex with the other openers: the first one sets it. */
static int block_duplex(struct pipe_pair *p, bool duplex)
{
	uint8_t *d = (uint8_t *)ipc_shm_buf(p->block) + BLOCK_DUPLEX;
	uint8_t want = duplex ? 2 : 1, seen = 0;

	if (__atomic_compare_exchange_n(d, &seen, want, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return 0;
	return seen == want ? 0 : -EINVAL;
}

int ipc_pipe_open(ipc_conn **c, const char *name, int flags, int end,
		  bool duplex, const ipc_queue_attr *attr)
{
	ipc_queue_attr qa = { 0 };
	char qname[IPC__PATH_MAX];
	struct pipe_pair *p;
	int rc;

	if (c != NULL)
		*c = NULL;
	if (c == NULL || (end != 0 && end != 1) ||
	    (attr != NULL && attr->joinable))
		return -EINVAL;
	if (attr != NULL)
		qa = *attr;
	p = pair_new();
	if (p == NULL)
		return -ENOMEM;
	rc = ipc__name_path(name, p->lock_path, sizeof(p->lock_path));
	if (rc == 0 && strlen(name[0] == '/' ? name + 1 : name) > PIPE_NAME_MAX)
		rc = -EINVAL;
	if (rc == 0)
		rc = ipc_shm_open(&p->block, name, flags,
				  (flags & IPC_CREATE) ? BLOCK_SIZE : 0);
	if (rc == 0 && ipc_shm_size(p->block) != BLOCK_SIZE)
		rc = -EPROTO;
	if (rc == 0)
		rc = block_duplex(p, duplex);
	for (int i = 0; rc == 0 && i < (duplex ? 2 : 1); i++) {
		queue_name(qname, sizeof(qname), name, i);
		rc = ipc_queue_open(&p->q[i], qname, flags & ~IPC_EXCL, &qa);
	}
	if (rc == 0) {
		p->ever =
			(volatile uint8_t *)ipc_shm_buf(p->block) + BLOCK_EVER;
		p->probe_fd =
			open(p->lock_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		rc = p->probe_fd < 0 ? ipc__sys_error(errno)
				     : conn_make(c, p, end);
	}
	pair_unref(p);
	return rc;
}

int ipc_pipe_unlink(const char *name)
{
	char qname[IPC__PATH_MAX];
	int rc = ipc_unlink(name);

	if (rc != 0)
		return rc;
	for (int i = 0; i < 2; i++) {
		queue_name(qname, sizeof(qname), name, i);
		ipc_unlink(qname); /* a one-way pipe has only .p0 */
	}
	return 0;
}

/* Take the lookahead if this process owns it (rx_lock held). */
static bool take_ahead(ipc_conn *c, void **msg, size_t *len)
{
	if (c->ahead == NULL)
		return false;
	if (c->ahead_gen != ipc__fork_gen()) {
		/* Inherited: the message belongs to the parent. */
		free(c->ahead);
		c->ahead = NULL;
		return false;
	}
	*msg = c->ahead;
	*len = c->ahead_len;
	c->ahead = NULL;
	return true;
}

/* Deliver the lookahead into buf or *msg (rx_lock held). */
static ssize_t give_ahead(ipc_conn *c, void *got, size_t len, void *buf,
			  size_t cap, void **msg)
{
	if (msg != NULL) {
		*msg = got;
		return (ssize_t)len;
	}
	if (len > cap) {
		c->ahead = got; /* stays, as a queued message would */
		return -EMSGSIZE;
	}
	if (len > 0)
		memcpy(buf, got, len);
	free(got);
	return (ssize_t)len;
}

static ssize_t queue_get(ipc_conn *c, void *buf, size_t cap, void **msg, int ms)
{
	return msg != NULL ? ipc_queue_get_alloc(c->rx, msg, ms)
			   : ipc_queue_get(c->rx, buf, cap, ms);
}

/* Receive from the queue into buf (cap bytes) or, with msg, into a
 * malloc'd *msg, noticing a dead peer while waiting (rx_lock held). */
static ssize_t queue_recv(ipc_conn *c, void *buf, size_t cap, void **msg,
			  const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	ssize_t n;

	/* First without a deadline: no clock read while messages flow. */
	n = queue_get(c, buf, cap, msg, IPC_NOWAIT);
	if (n != -EAGAIN)
		return n;
	if (dl->kind == IPC__DL_NOWAIT)
		return peer_gone(c) ? queue_get(c, buf, cap, msg, IPC_NOWAIT)
				    : n; /* shut down now: drain, or EOF */
	for (;;) {
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		n = queue_get(c, buf, cap, msg, ipc__deadline_ms(&slice));
		if (n != -EAGAIN && n != -ETIMEDOUT)
			return n;
		if (peer_gone(c))
			continue; /* now shut down: drain, then IPC_ECLOSED */
		if (ipc__deadline_passed(dl))
			return ipc__deadline_error(dl);
	}
}

/* Start a receive: check the arguments, take rx_lock before dl. */
static int recv_begin(ipc_conn *c, struct ipc__deadline *dl, int timeout_ms)
{
	int rc;

	if (c == NULL)
		return -EINVAL;
	if (c->rx == NULL)
		return -EPERM;
	rc = ipc__deadline_init(dl, timeout_ms);
	if (rc != 0)
		return rc;
	return ipc__mutex_lock(&c->rx_lock, dl, NULL, NULL);
}

static ssize_t conn_recv(ipc_conn *c, void *buf, size_t cap, void **msg,
			 int timeout_ms)
{
	struct ipc__deadline dl;
	ssize_t n;
	void *got;
	size_t len;

	if (msg == NULL && buf == NULL && cap > 0)
		return -EINVAL;
	n = recv_begin(c, &dl, timeout_ms);
	if (n != 0)
		return n;
	if (take_ahead(c, &got, &len))
		n = give_ahead(c, got, len, buf, cap, msg);
	else
		n = queue_recv(c, buf, cap, msg, &dl);
	pthread_mutex_unlock(&c->rx_lock);
	return n;
}

ssize_t ipc_conn_recv(ipc_conn *c, void *buf, size_t cap, int timeout_ms)
{
	return conn_recv(c, buf, cap, NULL, timeout_ms);
}

ssize_t ipc_conn_recv_alloc(ipc_conn *c, void **msg, int timeout_ms)
{
	if (msg == NULL)
		return -EINVAL;
	*msg = NULL;
	return conn_recv(c, NULL, 0, msg, timeout_ms);
}

int ipc_conn_poll(ipc_conn *c, int timeout_ms)
{
	struct ipc__deadline dl;
	void *msg = NULL;
	size_t len;
	ssize_t n;

	n = recv_begin(c, &dl, timeout_ms);
	if (n != 0)
		return (int)n;
	if (take_ahead(c, &msg, &len)) {
		c->ahead = msg; /* still there */
		n = 0;
	} else if (ipc_queue_qsize(c->rx) > 0) {
		n = 0;
	} else {
		n = queue_recv(c, NULL, 0, &msg, &dl);
		if (n >= 0) {
			c->ahead = msg;
			c->ahead_len = (size_t)n;
			c->ahead_gen = ipc__fork_gen();
			n = 0;
		} else if (n == IPC_ECLOSED) {
			n = 0; /* a receive would not block: it returns EOF */
		}
	}
	pthread_mutex_unlock(&c->rx_lock);
	return (int)n;
}

/* Look at the peer if the last look is older than the recheck period.
 * The coarse clock (a few milliseconds of resolution, no system call)
 * is plenty for a 100 ms period; of racing threads, the one that moves
 * last_check_ms looks. */
static bool peer_gone_lately(ipc_conn *c)
{
	struct timespec now;
	int64_t ms, last;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	last = atomic_load_explicit(&c->last_check_ms, memory_order_relaxed);
	if (ms - last < IPC__RECHECK_MS && ms >= last)
		return false;
	if (!atomic_compare_exchange_strong(&c->last_check_ms, &last, ms))
		return false;
	return peer_gone(c);
}

int ipc_conn_send(ipc_conn *c, const void *msg, size_t len, int timeout_ms)
{
	struct ipc__deadline dl, slice;
	int rc;

	if (c == NULL || (msg == NULL && len > 0))
		return -EINVAL;
	if (c->tx == NULL)
		return -EPERM;
	if (len == 0)
		msg = ""; /* the queue's copy must not see NULL, even for 0 */
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	if (peer_gone_lately(c))
		return IPC_ECLOSED;
	rc = ipc_queue_put(c->tx, msg, len, IPC_NOWAIT);
	if (rc != -EAGAIN || dl.kind == IPC__DL_NOWAIT) {
		if (rc == -EAGAIN && peer_gone(c))
			return IPC_ECLOSED;
		return rc;
	}
	for (;;) {
		ipc__deadline_capped(&slice, &dl, IPC__RECHECK_MS);
		rc = ipc_queue_put(c->tx, msg, len, ipc__deadline_ms(&slice));
		if (rc != -EAGAIN && rc != -ETIMEDOUT)
			return rc;
		if (peer_gone(c))
			return IPC_ECLOSED;
		if (ipc__deadline_passed(&dl))
			return ipc__deadline_error(&dl);
	}
}

bool ipc_conn_readable(ipc_conn *c)
{
	return c != NULL && c->rx != NULL;
}

bool ipc_conn_writable(ipc_conn *c)
{
	return c != NULL && c->tx != NULL;
}

/* ipc_wait: arm the receive queue's watch first, then look (a lookahead,
 * a queued message, a peer that has gone: ipc_conn_poll with IPC_NOWAIT
 * looks at all three, and a peer found gone shuts the queue down, which
 * makes a receive return at once). A peer that dies changes nothing the
 * watch sees, so the watcher comes back every IPC__RECHECK_MS to look. */
int ipc__conn_watch(ipc_conn *c, struct ipc__watch *w)
{
	int rc;

	if (c == NULL || w == NULL)
		return -EINVAL;
	if (c->rx == NULL)
		return -EPERM;
	rc = ipc__queue_watch(c->rx, w);
	if (rc != 0)
		return rc;
	if (w->recheck_ms <= 0 || w->recheck_ms > IPC__RECHECK_MS)
		w->recheck_ms = IPC__RECHECK_MS;
	rc = ipc_conn_poll(c, IPC_NOWAIT);
	if (rc == 0)
		return 1;
	if (rc == -EAGAIN)
		return 0;
	ipc__queue_unwatch(c->rx, w);
	return rc;
}

void ipc__conn_unwatch(ipc_conn *c, struct ipc__watch *w)
{
	if (c != NULL && c->rx != NULL)
		ipc__queue_unwatch(c->rx, w);
}

void ipc_conn_close(ipc_conn *c)
{
	struct pipe_pair *p;

	if (c == NULL)
		return;
	p = c->pair;
	close(c->lock_fd); /* the kernel drops the lock with the last copy */
	IPC__CRASHPOINT("pipe.close.unlocked");
	if (!end_held(p, c->end))
		pipe_shut(p); /* this was the last holder of the end */
	free(c->ahead);
	pthread_mutex_destroy(&c->rx_lock);
	free(c);
	pair_unref(p);
}
