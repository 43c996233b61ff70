/* SPDX-License-Identifier: MIT */
/*
 * helpers.c — see helpers.h.
 */
#include "tests/helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t t_spawn(int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		/* Die with the test: a test that fails or times out must not
		 * leave its children running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(T_REAP_TIMEOUT & 0x7f);
		_exit(fn(arg));
	}
	return pid;
}

struct point_job {
	const char *point, *skip;
	int (*fn)(void *arg);
	void *arg;
};

static int run_at_point(void *arg)
{
	struct point_job *j = arg;

	setenv("IPC_CRASHPOINT", j->point, 1);
	if (j->skip != NULL)
		setenv("IPC_CRASHPOINT_SKIP", j->skip, 1);
	return j->fn(j->arg);
}

pid_t t_spawn_at_point(const char *point, const char *skip,
		       int (*fn)(void *arg), void *arg)
{
	struct point_job j = { point, skip, fn, arg };

	return t_spawn(run_at_point, &j); /* the child has its own copy */
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return T_REAP_TIMEOUT + 1;
}

int t_reap(pid_t pid, int timeout_ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int status = 0;

	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int n;
		do
			n = poll(&p, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		close(pidfd);
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return T_REAP_TIMEOUT;
		}
	}
	if (waitpid(pid, &status, 0) != pid)
		return T_REAP_TIMEOUT + 2;
	return status_code(status);
}

int t_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	return t_reap(pid, 10000);
}

static long current_syscall(pid_t pid)
{
	char path[64], buf[64] = "";
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	/* "running" (or "-1 ..." outside a system call) is no number: not
	 * 0, which is read(2). */
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (buf[0] >= '0' && buf[0] <= '9'))
		nr = strtol(buf, NULL, 10);
	fclose(f);
	return nr;
}

bool t_stop(pid_t pid, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;
	int st;

	if (kill(pid, SIGSTOP) != 0)
		return false;
	do {
		pid_t w = waitpid(pid, &st, WUNTRACED | WNOHANG);
		if (w == pid)
			return WIFSTOPPED(st);
		if (w < 0)
			return false;
		usleep(200);
	} while (t_now_ms() < end);
	return false;
}

bool t_has_exited(pid_t pid)
{
	char path[64];
	char state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = '?';
	fclose(f);
	return state == 'Z';
}

bool t_blocked_in_syscall(pid_t pid, long nr, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;

	do {
		if (current_syscall(pid) == nr)
			return true;
		usleep(200);
	} while (t_now_ms() < end);
	return false;
}

bool t_blocked_in_futex(pid_t pid, int timeout_ms)
{
	return t_blocked_in_syscall(pid, SYS_futex, timeout_ms);
}

/* The stamp in this process's names: its pid and its start time (clock
 * ticks since boot, from /proc/self/stat). A pid alone is reused, and a
 * segment left behind by an earlier process with the same pid (a run that
 * was killed) must neither collide with this one's names nor count as its
 * leak. */
static void t_stamp(char *buf, size_t cap)
{
	static pid_t cached_pid;
	static unsigned long long cached_start;
	pid_t pid = getpid();

	if (cached_pid != pid) {
		char stat[1024];
		unsigned long long start = 0;
		FILE *f = fopen("/proc/self/stat", "r");
		size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
		char *p;

		if (f != NULL)
			fclose(f);
		stat[n] = '\0';
		/* Field 22; the command name (field 2) may hold spaces, so
		 * count from its closing parenthesis (field 3 follows). */
		p = strrchr(stat, ')');
		if (p != NULL) {
			int field = 2;
			for (p++; *p != '\0' && field < 22; p++)
				if (*p == ' ')
					field++;
			start = strtoull(p, NULL, 10);
		}
		cached_start = start;
		cached_pid = pid;
	}
	snprintf(buf, cap, "t%dx%llu", (int)pid, cached_start);
}

int t_leaked_segments(void)
{
	char prefix[64], stamp[48];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	t_stamp(stamp, sizeof(stamp));
	snprintf(prefix, sizeof(prefix), "libipc.%s.", stamp);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 ||
		    strncmp(e->d_name, "libipc..tmp.", 12) == 0)
			n++;
	closedir(d);
	return n;
}

int t_zombie_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], state;
		int ppid;
		FILE *f;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fscanf(f, "%*d %*s %c %d", &state, &ppid) == 2 &&
		    ppid == (int)getpid() && state == 'Z')
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

bool t_wait_count(const volatile int *word, int want, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;

	do {
		if (__atomic_load_n(word, __ATOMIC_ACQUIRE) >= want)
			return true;
		usleep(200);
	} while (t_now_ms() < end);
	return false;
}

void t_name(char *buf, size_t cap, const char *tag)
{
	char stamp[48];

	t_stamp(stamp, sizeof(stamp));
	snprintf(buf, cap, "%s.%s", stamp, tag);
}

void *t_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

long t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void *t_map_segment(const char *name, size_t *size)
{
	char path[300];
	struct stat st;
	void *base;
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/libipc.%s",
		 name[0] == '/' ? name + 1 : name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		close(fd);
		return NULL;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return NULL;
	*size = (size_t)st.st_size;
	return base;
}

void t_unmap_segment(void *base, size_t size)
{
	if (base != NULL)
		munmap(base, size);
}

int t_net_serve(ipc_server **s, const ipc_net_attr *a, char *url, size_t cap)
{
	int rc = IPC_EBUSY;

	for (int i = 0; i < 500 && rc == IPC_EBUSY; i++) {
		int port = 20000 + (int)((getpid() * 31 + i * 97) % 30000);
		snprintf(url, cap, "tcp://127.0.0.1:%d", port);
		rc = ipc_server_start(s, url, a);
	}
	return rc;
}

pid_t t_net_peer(int *out, const char *mode, const char *url, const char *name,
		 const char *key, const char *arg)
{
	const char *top = getenv("top_builddir");
	char path[512];
	int fd[2];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tests/net_peer", top ? top : ".");
	if (pipe(fd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execl(path, path, mode, url, name, key, arg, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		return -1;
	}
	*out = fd[0];
	return pid;
}

bool t_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;
	long end = t_now_ms() + timeout_ms;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = end - t_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) != 1 ||
		    read(fd, buf + n, 1) != 1)
			return false;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return true;
}
