/* SPDX-License-Identifier: MIT */
/*
 * example.h — what the examples share: logging in the classic Python examples'
 * format
 * ("[name pid] - message", one write() per line so lines from many
 * processes never interleave), starting named child processes, and dying
 * with a clear message on an unexpected error.
 *
 * Child processes are libipc Processes (ipc_process_start): named, and
 * joined for their exit code.
 */
#ifndef LIBIPC_EXAMPLE_H
#define LIBIPC_EXAMPLE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libipc/ipc.h>

static inline void ex_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "[%s %d] - ",
			 ipc_current_process_name(), (int)getpid());
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
static inline ipc_process *ex_spawn(const char *name, int (*fn)(void *),
				    void *arg)
{
	ipc_process_attr attr = { .name = name };
	ipc_process *p;

	ex_check(ipc_process_start(&p, fn, arg, &attr), "ipc_process_start");
	return p;
}

/* Wait for a child and release it; its exit code (or 128 + signal). */
static inline int ex_join(ipc_process *p)
{
	int code = -1;

	ex_check(ipc_process_join(p, IPC_FOREVER), "ipc_process_join");
	ipc_process_exitcode(p, &code);
	ipc_process_free(p);
	return code < 0 ? 128 - code : code;
}

static inline void ex_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}
#endif
