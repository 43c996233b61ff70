/* SPDX-License-Identifier: MIT */
/*
 * users.c — who has a named object open, asked of the kernel.
 *
 * Every open file description of a named segment holds an open-file-
 * description read lock (F_OFD_SETLK) on the byte USERS_BASE + pid of the
 * process that opened it, far past the end of any segment (locks may lie
 * beyond end of file and never touch the data); the handles of one process
 * share their byte. The kernel drops an OFD lock when the last descriptor
 * of its description closes — at ipc_X_close, at exec (the descriptor is
 * close-on-exec), and when the process dies by any means — so the bytes
 * locked are the live processes that have the object open, with no pid
 * guessing: the byte is only a label. A forked child shares its parent's
 * description, and with it the byte: the object is in use while either
 * lives, shown under the parent's pid. Counting is F_OFD_GETLK, which never
 * blocks.
 *
 * Removing an unused name must be race-free against a process opening it
 * at that moment: the opener has looked the name up but not taken its slot
 * yet. One more byte, the gate, settles it. An opener takes a shared lock
 * on the gate (waiting, briefly: at most GATE_WAIT_MS, then -EBUSY, so that
 * a stopped remover cannot hang openers), then its slot, then drops the gate
 * and checks that the name still leads to its file. A remover takes the gate
 * exclusively without waiting (a busy gate means "in use"), counts, and
 * unlinks only while it holds the gate and the count is zero. Either the
 * opener's slot was visible before the count, or the opener waited behind
 * the gate until the name was gone and finds its file unlinked, and looks
 * the name up again. A creator takes its slot on its unnamed file before
 * linking it, so a new object is never seen with no users.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libipc/core/core.h"

#define USERS_BASE ((off_t)1 << 62)
#define USERS_MAX ((off_t)1 << 22) /* PID_MAX_LIMIT on 64-bit Linux */
#define USERS_GATE (USERS_BASE - 1)
#define GATE_WAIT_MS 2000

static int ofd_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	fl.l_start = start;
	fl.l_len = len;
	while (fcntl(fd, cmd, &fl) != 0) {
		if (errno != EINTR)
			return errno == EACCES ? -EAGAIN
					       : ipc__sys_error(errno);
	}
	return 0;
}

static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Take the gate shared. A remover holds it for a few system calls; one
 * that is stopped (SIGSTOP, a debugger) must not hang every opener, so
 * this waits a bounded time, sleeping, then gives up with -EBUSY. */
static int gate_enter(int fd)
{
	const struct timespec pause_1ms = { 0, 1000000 };
	int rc;

	for (int tries = 0; tries < GATE_WAIT_MS; tries++) {
		rc = ofd_lock(fd, F_OFD_SETLK, F_RDLCK, USERS_GATE, 1);
		if (rc != -EAGAIN)
			return rc;
		nanosleep(&pause_1ms, NULL);
	}
	return -EBUSY;
}

int ipc__users_join(int fd, const char *path)
{
	int rc = gate_enter(fd);

	if (rc != 0)
		return rc;
	/* Shared: every handle of this process locks the same byte. */
	rc = ofd_lock(fd, F_OFD_SETLK, F_RDLCK,
		      USERS_BASE + ((off_t)getpid() % USERS_MAX), 1);
	ofd_lock(fd, F_OFD_SETLK, F_UNLCK, USERS_GATE, 1);
	if (rc == 0 && path != NULL && !same_file(fd, path))
		rc = -ENOENT;
	return rc;
}

/* Count the bytes of [from, to) that someone holds a lock on. GETLK
 * reports one conflicting lock, not necessarily the lowest, so the range is
 * split around each one found (and its byte is never asked about again,
 * however many handles share it); the pending ranges never outnumber the
 * bytes found plus one. */
int ipc__users_count(int fd, pid_t *pids, int npids)
{
	off_t(*stack)[2] = malloc(sizeof(*stack) * 64);
	size_t depth = 0, cap = 64;
	int n = 0;

	if (stack == NULL)
		return -ENOMEM;
	stack[depth][0] = USERS_BASE;
	stack[depth++][1] = USERS_BASE + USERS_MAX;
	while (depth > 0) {
		off_t from = stack[depth - 1][0], to = stack[depth - 1][1];
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		depth--;
		fl.l_start = from;
		fl.l_len = to - from;
		if (fcntl(fd, F_OFD_GETLK, &fl) != 0) {
			n = ipc__sys_error(errno);
			break;
		}
		if (fl.l_type == F_UNLCK)
			continue;
		if (n < npids)
			pids[n] = (pid_t)(fl.l_start - USERS_BASE);
		n++;
		if (depth + 2 > cap) {
			void *grown = realloc(stack, sizeof(*stack) * cap * 2);
			if (grown == NULL) {
				n = -ENOMEM;
				break;
			}
			stack = grown;
			cap *= 2;
		}
		/* A slot is one byte; clamp in case a foreign lock is wider. */
		if (fl.l_start > from) {
			stack[depth][0] = from;
			stack[depth++][1] = fl.l_start < to ? fl.l_start : to;
		}
		off_t end = fl.l_len == 0 ? to : fl.l_start + fl.l_len;
		if (end < to) {
			stack[depth][0] = end > from ? end : from + 1;
			stack[depth++][1] = to;
		}
	}
	free(stack);
	return n;
}

int ipc__mq_name(const char *name, char *mqname, size_t cap)
{
	char path[IPC__PATH_MAX];
	int rc = ipc__name_path(name, path, sizeof(path));

	if (rc != 0)
		return rc;
	/* path is "/dev/shm/libipc.<name>": the mq is "/libipc.<name>". */
	if ((size_t)snprintf(mqname, cap, "%s", path + strlen("/dev/shm")) >=
	    cap)
		return -EINVAL;
	return 0;
}

int ipc__mq_unlink(const char *name)
{
	char mqname[IPC__PATH_MAX];
	int rc = ipc__mq_name(name, mqname, sizeof(mqname));

	if (rc != 0)
		return rc;
	return mq_unlink(mqname) == 0 ? 0 : -errno;
}

/* ------------------------------------------------------------------------
 * ipc_stat and ipc_unlink_unused: read a named file's header with pread
 * (never mmap: a truncated file cannot fault us) and count its users.
 */
static const char *const kind_names[] = {
	[IPC__KIND_LOCK] = "lock",     [IPC__KIND_RLOCK] = "rlock",
	[IPC__KIND_EVENT] = "event",   [IPC__KIND_COND] = "cond",
	[IPC__KIND_SEM] = "sem",       [IPC__KIND_BARRIER] = "barrier",
	[IPC__KIND_QUEUE] = "queue",   [IPC__KIND_MQUEUE] = "mqueue",
	[IPC__KIND_SHM] = "shm",       [IPC__KIND_ARRAY] = "array",
	[IPC__KIND_PQUEUE] = "pqueue",
};

const char *ipc_kind_name(int kind)
{
	if (kind <= 0 ||
	    (size_t)kind >= sizeof(kind_names) / sizeof(*kind_names))
		return "unknown";
	return kind_names[kind];
}

/* Judge the header: NULL if it is a finished object of this ABI, else
 * what is wrong. */
static const char *hdr_problem(const struct ipc__seg_hdr *h, ssize_t got,
			       off_t file_size)
{
	if (got < (ssize_t)sizeof(*h))
		return h->h_magic == IPC__MAGIC && got >= 4 ? "truncated"
							    : "foreign";
	if (h->h_magic != IPC__MAGIC)
		return "foreign";
	if (h->h_abi != IPC__ABI_VERSION)
		return "other ABI version";
	if (h->h_init != IPC__INIT_READY)
		return "unfinished";
	if (h->h_kind == 0 || h->h_kind > IPC__KIND_LAST)
		return "unknown kind";
	if (h->h_size > (uint64_t)file_size || h->h_size < sizeof(*h))
		return "truncated";
	return NULL;
}

/* Open path without following links or blocking, fill the file's facts
 * and the header's; *fdp keeps the descriptor. */
int ipc__stat_fd(const char *path, int oflags, ipc_object_info *info, int *fdp)
{
	struct ipc__seg_hdr h;
	struct stat st;
	ssize_t got;
	int fd;

	ipc__info_clear(info);
	fd = open(path, oflags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EPROTO : ipc__sys_error(errno);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		info->problem = "not a regular file";
		close(fd);
		return -EPROTO;
	}
	info->size = (uint64_t)st.st_size;
	info->mode = st.st_mode & 07777;
	info->uid = st.st_uid;
	memset(&h, 0, sizeof(h));
	got = pread(fd, &h, sizeof(h), 0);
	info->problem = hdr_problem(&h, got, st.st_size);
	if (info->problem == NULL || h.h_magic == IPC__MAGIC) {
		int n = ipc__users_count(fd, info->user_pids,
					 IPC_STAT_MAX_PIDS);
		info->users = n >= 0 ? n : -1;
	}
	*fdp = fd;
	if (info->problem != NULL)
		return -EPROTO;
	info->kind = h.h_kind;
	info->creator_pid = h.h_creator_pid;
	info->created_ns = h.h_created_ns;
	return 0;
}

size_t ipc__pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got,
				  off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

void ipc__info_clear(ipc_object_info *info)
{
	memset(info, 0, sizeof(*info));
	info->users = -1;
	info->depth = info->maxsize = info->bytes_used = info->capacity = -1;
	info->max_msg_size = info->unfinished = info->waiters = -1;
	info->holder = -1;
	info->holder_died = info->is_set = info->broken = -1;
	info->shut_down = -1;
	info->value = info->max = info->parties = info->n_waiting = -1;
	info->n_consumers = -1;
}

/* glibc keeps a robust mutex's owner in its futex word: the owner's
 * thread id, plus FUTEX_OWNER_DIED once the kernel has found the owner
 * dead (it clears the id then). A copy of the word tells, without any
 * guessing from pids, whether a live thread holds it. */
void ipc__mutex_peek(const pthread_mutex_t *copy, ipc_object_info *info)
{
#ifdef __GLIBC__
	uint32_t word = (uint32_t)copy->__data.__lock;
	int32_t tid = (int32_t)(word & FUTEX_TID_MASK);

	info->holder = tid != 0 ? ipc__tid_process(tid) : 0;
	info->holder_died = (word & FUTEX_OWNER_DIED) != 0;
#else
	(void)copy;
	(void)info;
#endif
}

/* The process a thread id belongs to (its Tgid), or the id itself if
 * /proc does not say. Informational: the thread holds a robust mutex, so
 * it is alive at the moment the word was read. */
/* A pid-valued field of /proc/<id>/status (field: "Tgid:"), or
 * otherwise if it cannot be read. */
static pid_t proc_status_pid(int32_t id, const char *field, pid_t otherwise)
{
	char path[64], line[128];
	size_t len = strlen(field);
	pid_t pid = otherwise;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)id);
	f = fopen(path, "re");
	if (f == NULL)
		return otherwise;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, len) == 0) {
			pid = (pid_t)strtol(line + len, NULL, 10);
			break;
		}
	}
	fclose(f);
	return pid;
}

pid_t ipc__tid_process(int32_t tid)
{
	return proc_status_pid(tid, "Tgid:", tid);
}

/* A process's parent, from /proc (0 for the first process); -1 if it
 * cannot be read. */
static pid_t process_parent(pid_t pid)
{
	return proc_status_pid(pid, "PPid:", -1);
}

#define LINEAGE_MAX 64 /* ancestors looked at */

bool ipc__users_has_lineage(int fd, pid_t pid)
{
	for (int depth = 0; pid > 0 && depth < LINEAGE_MAX; depth++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		fl.l_start = USERS_BASE + pid;
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
			return true;
		if (fl.l_type != F_UNLCK)
			return true;
		pid = process_parent(pid);
	}
	return pid != 0; /* unreadable, or too deep: cannot tell */
}

int ipc_unlink_unused(const char *name)
{
	char path[IPC__PATH_MAX];
	ipc_object_info info;
	int fd = -1, rc;

	rc = ipc__name_path(name, path, sizeof(path));
	if (rc != 0)
		return rc;
	rc = ipc__stat_fd(path, O_RDWR, &info, &fd);
	/* Ours but damaged: removable when unused. Another ABI version may
	 * count its users differently: left alone. */
	if (rc == -EPROTO && info.users >= 0 &&
	    strcmp(info.problem, "other ABI version") != 0)
		rc = 0;
	if (rc != 0)
		goto out;
	/* The gate, exclusively and without waiting: an opener between its
	 * lookup and its slot holds it shared. */
	rc = ofd_lock(fd, F_OFD_SETLK, F_WRLCK, USERS_GATE, 1);
	if (rc == -EAGAIN)
		rc = -EBUSY;
	if (rc != 0)
		goto out;
	rc = ipc__users_count(fd, NULL, 0);
	if (rc > 0)
		rc = -EBUSY;
	else if (rc == 0 && !same_file(fd, path))
		rc = -ENOENT; /* removed or replaced meanwhile */
	else if (rc == 0 && unlink(path) != 0)
		rc = ipc__sys_error(errno);
	if (rc == 0 && info.kind == IPC__KIND_MQUEUE)
		ipc__mq_unlink(name);
out:
	if (fd >= 0)
		close(fd); /* drops the gate */
	return rc;
}
