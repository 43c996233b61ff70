/* SPDX-License-Identifier: MIT */
/*
 * mqueue.c — the POSIX message queue backend (IPC_BACKEND_MQUEUE).
 *
 * Each message is one POSIX mq message holding exactly the message bytes,
 * sent with priority 0, so a program that uses mq_send / mq_receive on
 * "/libipc.<name>" interoperates both ways. The kernel keeps the messages;
 * a put or get is one system call, atomic against SIGKILL. What the kernel
 * cannot hold lives in a small companion segment, the named shm object
 * "libipc.<name>" of kind IPC__KIND_MQUEUE: the shutdown flag, the mq's
 * real limits, and the JoinableQueue accounting.
 *
 * Waiting. A caller that would block sleeps in the kernel, in mq_timedsend
 * or mq_timedreceive, for at most IPC__RECHECK_MS at a time, and then looks
 * at the shutdown flag and its deadline again, so a shutdown reaches
 * blocked callers within that time; a try (IPC_NOWAIT) passes a timeout
 * that has already expired, which the kernel treats as "do not sleep".
 * A JoinableQueue consumer sleeps in poll() instead (an mqd_t is a file
 * descriptor on Linux) and then tries once, for the reason given in
 * mqueue_joinable.c (s_busy).
 * Nothing spins.
 *
 * JoinableQueue accounting: see mqueue_joinable.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libipc/queue/mqueue.h"

struct mq_create {
	const char *mqname;
	unsigned mode;
	long maxmsg, msgsize;
	bool joinable;
	mqd_t mqd; /* opened by init, (mqd_t)-1 if not */
};

static long read_limit(const char *file, long fallback)
{
	char path[64];
	long v = fallback;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/fs/mqueue/%s", file);
	f = fopen(path, "re");
	if (f == NULL)
		return fallback;
	if (fscanf(f, "%ld", &v) != 1)
		v = fallback;
	fclose(f);
	return v;
}

/* Translate mq_open's failure into the limit that caused it. */
static int mq_open_error(int err, const struct mq_create *c)
{
	switch (err) {
	case EINVAL: /* msg_max or msgsize_max (unprivileged callers) */
		if (c->msgsize > read_limit("msgsize_max", LONG_MAX))
			return -EMSGSIZE;
		return -EINVAL;
	case ENOSPC: /* queues_max */
		return IPC_ENOSPC;
	case EMFILE: /* RLIMIT_MSGQUEUE (or out of descriptors) */
	case ENFILE:
		return -ENOMEM;
	default:
		return -err;
	}
}

static int mq_create_queue(struct mq_create *c, int oflags)
{
	struct mq_attr a = { .mq_maxmsg = c->maxmsg, .mq_msgsize = c->msgsize };

	c->mqd = mq_open(c->mqname, O_RDWR | O_CLOEXEC | oflags,
			 (mode_t)c->mode, &a);
	if (c->mqd == (mqd_t)-1)
		return errno == EEXIST ? -EEXIST : mq_open_error(errno, c);
	/* mq_open applies the umask; libipc objects get their mode as is
	 * (on Linux an mqd_t is a file descriptor). */
	fchmod((int)c->mqd, (mode_t)c->mode);
	return 0;
}

static int mq_shm_fill(struct mq_shm *q, mqd_t mqd, bool joinable)
{
	struct mq_attr a;
	int rc;

	if (mq_getattr(mqd, &a) != 0)
		return ipc__sys_error(errno);
	q->m_maxmsg = (uint32_t)a.mq_maxmsg;
	q->m_msgsize = (uint32_t)a.mq_msgsize;
	q->m_joinable = joinable;
	q->m_nslots = NSLOTS;
	rc = ipc__mutex_init(&q->m_cmutex, false);
	for (unsigned i = 0; rc == 0 && i < NSLOTS; i++)
		rc = ipc__mutex_init(&q->m_slots[i].s_reg, false);
	return rc;
}

/* Named creation: make (or adopt, if a plain program made it first) the
 * mq before the companion is linked to its name. */
static int mq_seg_init(void *base, size_t size, const void *arg)
{
	struct mq_create *c = (struct mq_create *)(uintptr_t)arg;
	int rc;

	(void)size;
	if (c->mqd == (mqd_t)-1) {
		rc = mq_create_queue(c, O_CREAT | O_EXCL);
		if (rc == -EEXIST) {
			c->mqd = mq_open(c->mqname, O_RDWR | O_CLOEXEC);
			rc = c->mqd == (mqd_t)-1 ? ipc__sys_error(errno) : 0;
		}
		if (rc != 0)
			return rc;
	}
	return mq_shm_fill(base, c->mqd, c->joinable);
}

static int mq_seg_check(const void *base, size_t size, const void *arg)
{
	const struct mq_shm *q = base;
	const struct mq_create *c = arg;

	(void)size;
	if (q->m_nslots != NSLOTS || q->m_maxmsg == 0 || q->m_joinable > 1)
		return -EPROTO;
	return (bool)q->m_joinable == c->joinable ? 0 : -EINVAL;
}

static const struct ipc__seg_type mq_type = {
	.kind = IPC__KIND_MQUEUE,
	.min_size = sizeof(struct mq_shm),
	.init = mq_seg_init,
	.check = mq_seg_check,
};

/* An anonymous queue: a fresh mq, unlinked at once, shared with children
 * through the inherited descriptor. */
static int mq_open_anonymous(struct mq *m, struct mq_create *c)
{
	static _Atomic unsigned counter;
	char mqname[64];
	int rc = -EEXIST;

	c->mqname = mqname;
	for (int tries = 0; tries < 100 && rc == -EEXIST; tries++) {
		snprintf(mqname, sizeof(mqname), "/libipc.anon-%d-%u",
			 (int)getpid(), atomic_fetch_add(&counter, 1));
		rc = mq_create_queue(c, O_CREAT | O_EXCL);
	}
	if (rc != 0)
		return rc;
	mq_unlink(mqname);
	rc = ipc__seg_new(&m->seg, &mq_type, sizeof(struct mq_shm), c);
	if (rc != 0)
		return rc;
	m->shm = m->seg.base;
	return 0;
}

static int mq_open_named(struct mq *m, const char *name, int flags,
			 struct mq_create *c)
{
	char mqname[IPC__PATH_MAX];
	int rc = ipc__mq_name(name, mqname, sizeof(mqname));

	if (rc != 0)
		return rc;
	c->mqname = mqname;
	flags = (flags & ~IPC_MODE_MASK) | (int)c->mode;
	rc = ipc__seg_open(&m->seg, &mq_type, name, flags,
			   sizeof(struct mq_shm), c);
	if (rc != 0)
		return rc;
	m->shm = m->seg.base;
	if (c->mqd != (mqd_t)-1)
		return 0; /* ours, made (or adopted) by init */
	c->mqd = mq_open(mqname, O_RDWR | O_CLOEXEC);
	/* ENOENT: the mq was removed behind the companion's back. */
	return c->mqd == (mqd_t)-1 ? ipc__sys_error(errno) : 0;
}

static void mq_close_handle(void *impl);

int ipc__mq_open(void **impl, const char *name, int flags,
		 const ipc_queue_attr *attr)
{
	struct mq_create c = { .mqd = (mqd_t)-1, .joinable = attr->joinable };
	struct mq_attr a;
	struct mq *m;
	int rc;

	if (attr->maxsize > MQ_MAX_MAXSIZE || attr->max_msg_size > INT_MAX ||
	    attr->mode > IPC_MODE_MASK)
		return -EINVAL;
	c.maxmsg = attr->maxsize ? (long)attr->maxsize
				 : read_limit("msg_default", 10);
	c.msgsize = attr->max_msg_size ? (long)attr->max_msg_size
				       : read_limit("msgsize_default", 8192);
	c.mode = attr->mode ? attr->mode : (unsigned)flags & IPC_MODE_MASK;
	if (c.mode == 0)
		c.mode = 0600;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->slot = -1;
	m->seg.fd = -1;
	rc = name == NULL ? mq_open_anonymous(m, &c)
			  : mq_open_named(m, name, flags, &c);
	if (rc != 0) {
		if (c.mqd != (mqd_t)-1)
			mq_close(c.mqd);
		ipc__seg_close(&m->seg);
		free(m);
		return rc;
	}
	m->mqd = c.mqd;
	if (mq_getattr(m->mqd, &a) != 0) {
		mq_close_handle(m);
		return ipc__sys_error(errno);
	}
	m->msgsize = (size_t)a.mq_msgsize;
	m->maxmsg = (size_t)a.mq_maxmsg;
	m->joinable = attr->joinable; /* the companion's, checked at open */
	*impl = m;
	return 0;
}

/* ------------------------------------------------------------------------
 * Waiting
 */

/* The absolute CLOCK_REALTIME timeout (what mq_timed* take) of one wait:
 * the earlier of dl and IPC__RECHECK_MS from now, so that the caller looks
 * at the shutdown flag again; the epoch, which makes the call try once
 * without sleeping, once dl has passed (IPC_NOWAIT included). */
static void mq_slice(struct timespec *abs, const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	int ms;

	abs->tv_sec = 0;
	abs->tv_nsec = 0;
	if (ipc__deadline_passed(dl))
		return;
	ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
	ms = ipc__deadline_ms(&slice);
	clock_gettime(CLOCK_REALTIME, abs);
	abs->tv_sec += ms / 1000;
	abs->tv_nsec += (long)(ms % 1000) * 1000000;
	if (abs->tv_nsec >= 1000000000) {
		abs->tv_sec++;
		abs->tv_nsec -= 1000000000;
	}
}

static const struct timespec try_once; /* the epoch: never sleep */

/* Sleep until the mq has a message, a shutdown could have happened, or dl
 * passes: 0 to try again | the deadline's error. */
static int mq_wait_readable(struct mq *m, const struct ipc__deadline *dl)
{
	struct ipc__deadline slice;
	struct pollfd p = { .fd = (int)m->mqd, .events = POLLIN };

	if (ipc__deadline_passed(dl))
		return ipc__deadline_error(dl);
	ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
	poll(&p, 1, ipc__deadline_ms(&slice));
	return 0;
}

static int mq_put(void *impl, const void *msg, size_t len,
		  const struct ipc__deadline *dl)
{
	struct mq *m = impl;
	struct timespec abs;

	for (;;) {
		if (atomic_load(&m->shm->m_closed))
			return IPC_ECLOSED;
		IPC__CRASHPOINT("mqueue.put.before_send");
		mq_slice(&abs, dl);
		/* A sender blocked on a full mq is let in by the drop of an
		 * immediate shutdown: its message is dropped too, and the put
		 * fails as every put after the shutdown does. */
		if (mq_timedsend(m->mqd, msg ? msg : "", len, 0, &abs) == 0)
			return ipc__mq_dropping(m) ? IPC_ECLOSED : 0;
		if (errno == EINTR)
			continue;
		if (errno != ETIMEDOUT)
			return ipc__sys_error(errno);
		if (ipc__deadline_passed(dl))
			return ipc__deadline_error(dl);
	}
}

static ssize_t mq_receive_one(struct mq *m, void *dst,
			      const struct timespec *abs)
{
	struct mq_slot *s = m->joinable ? ipc__mq_my_slot(m) : NULL;
	ssize_t n;

	if (s != NULL)
		atomic_fetch_add(&s->s_busy, 1);
	n = mq_timedreceive(m->mqd, dst, m->msgsize, NULL, abs);
	if (n < 0) /* -EINTR stays: the caller's loop retries it */
		n = errno == EINTR ? -EINTR : ipc__sys_error(errno);
	IPC__CRASHPOINT("mqueue.get.after_receive");
	if (s != NULL) {
		if (n >= 0)
			atomic_fetch_add(&s->s_taken, 1);
		atomic_fetch_sub(&s->s_busy, 1);
	}
	return n;
}

/* Receive and discard every message the mq holds now, without waiting.
 * Each receive is one atomic system call, so a process killed here
 * leaves each message queued or dropped; a dropped one has left the mq,
 * which is what the JoinableQueue count counts as done. */
static void mq_drain(struct mq *m)
{
	void *buf = malloc(m->msgsize ? m->msgsize : 1);

	if (buf == NULL)
		return;
	for (;;) {
		ssize_t n = mq_timedreceive(m->mqd, buf, m->msgsize, NULL,
					    &try_once);
		if (n < 0 && errno != EINTR)
			break;
		IPC__CRASHPOINT("mqueue.drop.received");
	}
	free(buf);
}

/* After ipc_queue_shutdown_immediate, a put that had passed its shutdown
 * check may still land a message: whoever finds the flag drops it. */
bool ipc__mq_dropping(struct mq *m)
{
	if (!(atomic_load(&m->shm->m_closed) & MQ_CLOSED_IMMEDIATE))
		return false;
	mq_drain(m);
	return true;
}

static int mq_shutdown_immediate(void *impl)
{
	struct mq *m = impl;

	atomic_fetch_or(&m->shm->m_closed, MQ_CLOSED | MQ_CLOSED_IMMEDIATE);
	IPC__CRASHPOINT("mqueue.drop.flagged");
	mq_drain(m);
	ipc__mq_wake_joiners(m);
	return 0;
}

/* Waiting on many: poll the mq's descriptor for POLLIN. A shutdown does
 * not change what poll sees, so the watcher re-arms every
 * IPC__RECHECK_MS, and this looks at the flag. */
static int mq_watch(void *impl, struct ipc__watch *w)
{
	struct mq *m = impl;
	long depth;

	w->word = NULL;
	w->fd = (int)m->mqd;
	w->events = POLLIN;
	w->recheck_ms = IPC__RECHECK_MS;
	if (atomic_load(&m->shm->m_closed))
		return 1;
	depth = ipc__mq_depth(m);
	return depth < 0 ? (int)depth : depth > 0;
}

static void mq_unwatch(void *impl, struct ipc__watch *w)
{
	(void)impl; /* a poller holds nothing */
	(void)w;
}

static ssize_t mq_get(void *impl, void *buf, size_t cap, void **alloc,
		      const struct ipc__deadline *dl)
{
	struct mq *m = impl;
	void *dst = buf;
	ssize_t n;
	int rc;

	if (ipc__mq_dropping(m))
		return IPC_ECLOSED;

	/* The kernel's rule: a receive buffer is at least mq_msgsize, and
	 * a smaller one takes nothing. */
	if (alloc == NULL && cap < m->msgsize)
		return -EMSGSIZE;
	if (m->joinable) {
		rc = ipc__mq_register(m);
		if (rc != 0)
			return rc;
	}
	if (alloc != NULL) {
		dst = malloc(m->msgsize ? m->msgsize : 1);
		if (dst == NULL)
			return -ENOMEM;
	}
	for (;;) {
		struct timespec abs;

		/* A JoinableQueue consumer must not sleep inside the receive
		 * with s_busy raised (a joiner would wait for it): it tries
		 * once, and sleeps in poll. Others sleep in the receive. */
		if (m->joinable)
			abs = try_once;
		else
			mq_slice(&abs, dl);
		n = mq_receive_one(m, dst, &abs);
		if (n == -EINTR)
			continue;
		if (n != -ETIMEDOUT)
			break;
		if (atomic_load(&m->shm->m_closed)) {
			n = IPC_ECLOSED;
			break;
		}
		rc = m->joinable ? mq_wait_readable(m, dl)
				 : (ipc__deadline_passed(dl)
					    ? ipc__deadline_error(dl)
					    : 0);
		if (rc != 0) {
			n = rc;
			break;
		}
	}
	if (alloc != NULL) {
		if (n >= 0) {
			void *shrunk = realloc(dst, n > 0 ? (size_t)n : 1);
			*alloc = shrunk != NULL ? shrunk : dst;
		} else {
			free(dst);
		}
	}
	return n;
}

long ipc__mq_depth(struct mq *m)
{
	struct mq_attr a;

	if (mq_getattr(m->mqd, &a) != 0)
		return ipc__sys_error(errno);
	return a.mq_curmsgs;
}

static long mq_qsize(void *impl)
{
	return ipc__mq_depth(impl);
}

static bool mq_full(void *impl)
{
	struct mq *m = impl;

	return ipc__mq_depth(m) >= (long)m->maxmsg;
}

static int mq_shutdown(void *impl)
{
	struct mq *m = impl;

	atomic_fetch_or(&m->shm->m_closed, MQ_CLOSED);
	ipc__mq_wake_joiners(m);
	return 0;
}

/* Drop the handle (see ipc__mq_leave for a consumer's tasks). */
static void mq_close_handle(void *impl)
{
	struct mq *m = impl;

	ipc__mq_leave(m);
	mq_close(m->mqd);
	ipc__seg_close(&m->seg);
	free(m);
}

static bool mq_joinable(void *impl)
{
	return ((struct mq *)impl)->joinable;
}

static size_t mq_max_msg_size(void *impl)
{
	return ((struct mq *)impl)->msgsize;
}

const struct ipc__queue_ops ipc__mq_ops = {
	.name = "mqueue",
	.put = mq_put,
	.get = mq_get,
	.task_done = ipc__mq_task_done,
	.join = ipc__mq_join,
	.qsize = mq_qsize,
	.unfinished = ipc__mq_unfinished,
	.full = mq_full,
	.shutdown = mq_shutdown,
	.close = mq_close_handle,
	.joinable = mq_joinable,
	.max_msg_size = mq_max_msg_size,
	.max_msg_fixed = true,
	.shutdown_immediate = mq_shutdown_immediate,
	.watch = mq_watch,
	.unwatch = mq_unwatch,
};

/* ipc_stat: the mq's depth (mq_getattr on a read-only descriptor of its
 * own) and the companion's state, from a copy of the companion. */
int ipc__mq_describe(const char *name, const void *seg, size_t len,
		     ipc_object_info *info)
{
	const struct mq_shm *q = seg;
	char mqname[IPC__PATH_MAX];
	struct mq_attr a;
	mqd_t mqd;

	if (len < sizeof(*q) || q->m_nslots != NSLOTS || q->m_joinable > 1)
		return -EPROTO;
	info->maxsize = q->m_maxmsg;
	info->max_msg_size = q->m_msgsize;
	info->shut_down = atomic_load(&q->m_closed) != 0;
	if (ipc__mq_name(name, mqname, sizeof(mqname)) == 0 &&
	    (mqd = mq_open(mqname, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) !=
		    (mqd_t)-1) {
		if (mq_getattr(mqd, &a) == 0) {
			info->depth = a.mq_curmsgs;
			info->maxsize = a.mq_maxmsg; /* the kernel's word */
			info->max_msg_size = a.mq_msgsize;
		}
		mq_close(mqd);
	}
	if (!q->m_joinable)
		return 0;
	info->n_consumers = 0;
	info->unfinished = info->depth;
	for (int i = 0; i < NSLOTS; i++) {
		const struct mq_slot *s = &q->m_slots[i];
		ipc_object_info m = { .holder = -1 };
		long tasks;

		if (atomic_load(&s->s_state) != SLOT_ACTIVE)
			continue;
		ipc__mutex_peek(&s->s_reg, &m);
		tasks = atomic_load(&s->s_taken);
		info->consumers[info->n_consumers++] =
			(ipc_consumer_info){ s->s_pid, m.holder > 0, tasks };
		/* As mq_unfinished counts, a dead consumer's tasks are
		 * dropped (at the next reap). */
		if (m.holder > 0 && info->unfinished >= 0)
			info->unfinished += tasks + atomic_load(&s->s_busy);
	}
	return 0;
}
