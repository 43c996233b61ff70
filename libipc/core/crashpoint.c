/* SPDX-License-Identifier: MIT */
/*
 * crashpoint.c — named SIGKILL points for the crash suite.
 *
 * Compiled only with --enable-crashpoints. A test forks a child, sets
 * IPC_CRASHPOINT=<point> in it and lets it run an operation: the child dies
 * exactly there, as if killed by the OOM killer at that instruction, and the
 * parent checks that the object survived. IPC_CRASHPOINT_SKIP=n lets the
 * point pass n times first. IPC_CRASHPOINT_ACTION=stop makes the point
 * stop the process (SIGSTOP) instead, as a debugger or a stalled machine
 * would, and carry on when it is continued: the stopped-peer tests.
 * IPC_CRASHPOINT may name several points, separated by commas; the skip
 * count then covers their passes together. The environment is read on
 * every pass (no cached state), which is slow but only in this test
 * build.
 */
#include "config.h"

#ifdef IPC_ENABLE_CRASHPOINTS
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/core/core.h"

/* Is name one of the comma-separated points in want? */
static bool crashpoint_wanted(const char *want, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = want; p != NULL; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == ','))
			return true;
	}
	return false;
}

void ipc__crashpoint(const char *name)
{
	const char *want = getenv("IPC_CRASHPOINT");
	const char *skip, *action;
	static _Thread_local unsigned long passes;

	if (want == NULL || !crashpoint_wanted(want, name))
		return;
	skip = getenv("IPC_CRASHPOINT_SKIP");
	if (skip != NULL && passes++ < strtoul(skip, NULL, 10))
		return;
	action = getenv("IPC_CRASHPOINT_ACTION");
	if (action != NULL && strcmp(action, "stop") == 0) {
		kill(getpid(), SIGSTOP);
		return;
	}
	kill(getpid(), SIGKILL);
	for (;;)
		pause(); /* SIGKILL is delivered before kill() returns */
}

int ipc__recheck_ms(void)
{
	const char *v = getenv("IPC_TEST_RECHECK_MS");
	long ms = v != NULL ? strtol(v, NULL, 10) : 0;

	return ms > 0 && ms <= 24L * 3600 * 1000 ? (int)ms : 100;
}
#else
typedef int ipc__crashpoints_disabled; /* ISO C wants a declaration */
#endif
