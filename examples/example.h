/*
 * example.h — what the examples share: logging in the study note's format
 * ("[name pid] - message", one write() per line so lines from many
 * processes never interleave), starting named child processes, and dying
 * with a clear message on an unexpected error.
 *
 * Process names here are plain fork() plus prctl(PR_SET_NAME); the Process
 * type of libipc (ipc_process_start) replaces this helper when it lands.
 */
#ifndef LIBIPC_EXAMPLE_H
#define LIBIPC_EXAMPLE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libipc/ipc.h>

static char ex_process_name[32] = "MainProcess";

static inline void ex_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "[%s %d] - ", ex_process_name,
			 (int)getpid());
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, (size_t)n) < 0)
		_exit(1);
}

/* Exit with a message if rc is a libipc error. */
static inline void ex_check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "%s: %s (%s)\n", what, ipc_strerror(rc),
			ipc_err_name(rc));
		exit(1);
	}
}

/* Start fn(arg) in a child process called name; it exits with fn's return
 * value. */
static inline pid_t ex_spawn(const char *name, int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		snprintf(ex_process_name, sizeof(ex_process_name), "%s", name);
		prctl(PR_SET_NAME, ex_process_name);
		_exit(fn(arg));
	}
	return pid;
}

/* Wait for a child; its exit code (or 128 + signal). */
static inline int ex_join(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline void ex_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}
#endif
