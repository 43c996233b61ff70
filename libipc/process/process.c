/* SPDX-License-Identifier: MIT */
/*
 * process.c — Process: a function run in a forked child, with a name, a
 * daemon flag, join with a timeout and an exit code.
 *
 * Waiting. The parent opens a pidfd for the child right after fork(),
 * before anyone could reap it, and from then on uses only that: poll() on
 * the pidfd for join with a timeout, waitid(P_PID, pid) to reap it (the pid
 * cannot be reused before we reap it), pidfd_send_signal() for terminate
 * and kill (no pid-reuse race either). libipc never calls wait(-1), so
 * children the program forks by itself are never reaped behind its back.
 *
 * The registry. Like Python's multiprocessing, a process remembers the
 * children it started: ipc_active_children lists them, and an atexit
 * handler terminates the daemon ones and joins the others when the process
 * exits. That list, a start counter for default names and the current
 * process's own name are this file's process-wide state, guarded by one
 * mutex; a child starts with an empty registry of its own.
 *
 * The child. It sets its name (for ipc_current_process_name and, through
 * PR_SET_NAME, for ps and top), arms PR_SET_PDEATHSIG if it is a daemon (so
 * it dies with its parent, even a SIGKILLed one), runs fn, runs the same
 * exit handling for its own children, flushes stdio and _exit()s with fn's
 * return value: the parent's atexit handlers are not the child's to run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libipc/core/core.h"

#define NAME_MAX_BYTES 255
#define DAEMON_GRACE_MS 1000 /* SIGTERM, then SIGKILL, at exit */

struct ipc_process {
	struct ipc_process *next; /* registry */
	pthread_mutex_t lock;	  /* reaping */
	pid_t pid;
	int pidfd;
	bool daemon;
	bool freed; /* the user released the handle while it ran */
	bool reaped;
	int exitcode; /* valid once reaped: code, or -signal */
	char name[NAME_MAX_BYTES + 1];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ipc_process *registry;
static unsigned started;  /* for "Process-N" */
static char identity[64]; /* "" in the main process, "2:1"... */
static char current_name[NAME_MAX_BYTES + 1] = "MainProcess";
static bool current_is_daemon;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void exit_children(void);

static void install_exit_handler(void)
{
	atexit(exit_children);
}

/* Reap p, which has ended (p->lock held). The pidfd stays open until the
 * handle is destroyed, so a concurrent poll never sees a reused fd. */
static void process_reap_locked(struct ipc_process *p)
{
	siginfo_t si;

	if (p->reaped)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED) != 0)
		return;
	p->exitcode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
	p->reaped = true;
}

/* Wait until p ends or dl passes; reaps it. True if it has ended. The
 * lock is taken only to reap, never across the poll, so terminate and
 * kill are never held up by a join. */
static bool process_wait(struct ipc_process *p, const struct ipc__deadline *dl)
{
	for (;;) {
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
		int n = poll(&pfd, 1, ipc__deadline_ms(dl));
		bool ended;

		if (n > 0) {
			pthread_mutex_lock(&p->lock);
			process_reap_locked(p);
			ended = p->reaped;
			pthread_mutex_unlock(&p->lock);
			return ended;
		}
		if ((n < 0 && errno != EINTR) ||
		    (n == 0 && ipc__deadline_passed(dl)))
			return false;
	}
}

static bool process_ended_now(struct ipc_process *p)
{
	static const struct ipc__deadline now = { .kind = IPC__DL_NOWAIT };

	return process_wait(p, &now);
}

static void default_name(char *out, size_t cap, unsigned n)
{
	if (identity[0] == '\0')
		snprintf(out, cap, "Process-%u", n);
	else
		snprintf(out, cap, "Process-%s:%u", identity, n);
}

/* In the child, right after fork: its own identity, name and registry. */
static void child_setup(const struct ipc_process *p, unsigned n, pid_t parent)
{
	char id[sizeof(identity)];

	if (identity[0] == '\0')
		snprintf(id, sizeof(id), "%u", n);
	else
		snprintf(id, sizeof(id), "%.40s:%u", identity, n);
	memcpy(identity, id, sizeof(identity));
	snprintf(current_name, sizeof(current_name), "%s", p->name);
	current_is_daemon = p->daemon;
	registry = NULL; /* the parent's children are not ours */
	started = 0;
	registry_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	prctl(PR_SET_NAME, current_name);
	if (p->daemon) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* it died before we armed it */
			_exit(128 + SIGKILL);
	}
}

int ipc_process_start(ipc_process **out, ipc_main_fn fn, void *arg,
		      const ipc_process_attr *attr)
{
	struct ipc_process *p;
	pid_t parent = getpid(), pid;
	unsigned n;
	int pidfd;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (fn == NULL ||
	    (attr && attr->name && strlen(attr->name) > NAME_MAX_BYTES))
		return -EINVAL;
	if (current_is_daemon)
		return -EPERM;
	pthread_once(&exit_once, install_exit_handler);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->daemon = attr && attr->daemon;
	pthread_mutex_lock(&registry_lock);
	n = ++started;
	pthread_mutex_unlock(&registry_lock);
	if (attr && attr->name)
		snprintf(p->name, sizeof(p->name), "%s", attr->name);
	else
		default_name(p->name, sizeof(p->name), n);

	fflush(NULL); /* or buffered output would be written twice */
	pid = fork();
	if (pid < 0) {
		int rc = errno == ENOMEM ? -ENOMEM : -EAGAIN;
		free(p);
		return rc;
	}
	if (pid == 0) {
		child_setup(p, n, parent);
		int code = fn(arg);
		exit_children();
		fflush(NULL);
		_exit(code & 0xff);
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) { /* Linux before 5.3: no safe way to wait */
		int rc = ipc__sys_error(errno); /* ENOSYS: -ENOTSUP */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		free(p);
		return rc;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	p->pid = pid;
	p->pidfd = pidfd;
	pthread_mutex_lock(&registry_lock);
	p->next = registry;
	registry = p;
	pthread_mutex_unlock(&registry_lock);
	*out = p;
	return 0;
}

int ipc_process_join(ipc_process *p, int timeout_ms)
{
	struct ipc__deadline dl;
	int rc;

	if (p == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	return process_wait(p, &dl) ? 0 : ipc__deadline_error(&dl);
}

bool ipc_process_is_alive(ipc_process *p)
{
	return p != NULL && !process_ended_now(p);
}

int ipc_process_exitcode(ipc_process *p, int *code)
{
	if (p == NULL || code == NULL)
		return -EINVAL;
	if (!process_ended_now(p))
		return -EAGAIN;
	*code = p->exitcode;
	return 0;
}

static int process_signal(ipc_process *p, int sig)
{
	int rc = 0;

	if (p == NULL)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (!p->reaped &&
	    syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) != 0 &&
	    errno != ESRCH)
		rc = ipc__sys_error(errno);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int ipc_process_terminate(ipc_process *p)
{
	return process_signal(p, SIGTERM);
}

int ipc_process_kill(ipc_process *p)
{
	return process_signal(p, SIGKILL);
}

int ipc_process_sentinel(ipc_process *p)
{
	return p != NULL ? p->pidfd : -EINVAL;
}

pid_t ipc_process_pid(ipc_process *p)
{
	return p ? p->pid : -1;
}

const char *ipc_process_name(ipc_process *p)
{
	return p ? p->name : "";
}

bool ipc_process_daemon(ipc_process *p)
{
	return p && p->daemon;
}

const char *ipc_current_process_name(void)
{
	return current_name;
}

static void process_destroy(struct ipc_process *p)
{
	close(p->pidfd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Unlink and destroy freed handles whose process has ended (registry
 * lock held). */
static void registry_sweep_locked(void)
{
	struct ipc_process **pp = &registry;

	while (*pp != NULL) {
		struct ipc_process *p = *pp;
		if (p->freed && process_ended_now(p)) {
			*pp = p->next;
			process_destroy(p);
		} else {
			pp = &p->next;
		}
	}
}

void ipc_process_free(ipc_process *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	p->freed = true;
	registry_sweep_locked();
	pthread_mutex_unlock(&registry_lock);
}

size_t ipc_active_children(ipc_process **out, size_t cap)
{
	size_t live = 0;

	pthread_mutex_lock(&registry_lock);
	registry_sweep_locked();
	for (struct ipc_process *p = registry; p != NULL; p = p->next) {
		if (p->freed || process_ended_now(p))
			continue;
		if (out != NULL && live < cap)
			out[live] = p;
		live++;
	}
	pthread_mutex_unlock(&registry_lock);
	return live;
}

/* At exit (and at the end of a child's fn): terminate the daemon children,
 * then join every child, as Python does. A daemon that ignores SIGTERM is
 * killed after a grace period, so exit cannot hang on it. */
static void exit_children(void)
{
	struct ipc__deadline grace;

	pthread_mutex_lock(&registry_lock);
	for (struct ipc_process *p = registry; p != NULL; p = p->next)
		if (p->daemon)
			ipc_process_terminate(p);
	ipc__deadline_init(&grace, DAEMON_GRACE_MS);
	for (struct ipc_process *p = registry; p != NULL; p = p->next) {
		if (!p->daemon) {
			process_wait(p, &ipc__forever);
		} else if (!process_wait(p, &grace)) {
			ipc_process_kill(p);
			process_wait(p, &ipc__forever);
		}
	}
	pthread_mutex_unlock(&registry_lock);
}
