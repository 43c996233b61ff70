/* SPDX-License-Identifier: MIT */
/*
 * Syscall counts of a run's peers, by `strace -f -c -p PID...`.
 *
 * The parent starts strace between the peers' last ready and the go, and
 * waits until the kernel shows every peer traced (TracerPid in
 * /proc/PID/status) before it lets them run, so no syscall of the measured
 * loop escapes. strace exits when the peers do and leaves its summary in a
 * file; its "calls" column is what this reads. The counts include the few
 * syscalls of the benchmark's own start and end handshake (pipe reads and
 * writes, getrusage, exit: about ten per peer), which the report states.
 */
#include "bench.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool traced(pid_t pid)
{
	char path[64], line[128];
	bool yes = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "TracerPid:", 10) == 0)
			yes = atoi(line + 10) != 0;
	if (f != NULL)
		fclose(f);
	return yes;
}

bool syscount_start(struct syscount *s, const pid_t *pids, int n, char *note)
{
	char *argv[8 + 2 * 2 * BENCH_MAX_PEERS],
		pidtxt[2 * BENCH_MAX_PEERS][16];
	static char s_strace[] = "strace", s_f[] = "-f", s_c[] = "-c",
		    s_o[] = "-o", s_p[] = "-p";
	int a = 0;

	if (system("command -v strace >/dev/null 2>&1") != 0) {
		snprintf(note, 120, "strace not found: no syscall counts");
		return false;
	}
	snprintf(s->path, sizeof(s->path), "/tmp/ipc-bench.%d.strace",
		 (int)getpid());
	argv[a++] = s_strace;
	argv[a++] = s_f;
	argv[a++] = s_c;
	argv[a++] = s_o;
	argv[a++] = s->path;
	for (int i = 0; i < n && i < 2 * BENCH_MAX_PEERS; i++) {
		snprintf(pidtxt[i], sizeof(pidtxt[i]), "%d", (int)pids[i]);
		argv[a++] = s_p;
		argv[a++] = pidtxt[i];
	}
	argv[a] = NULL;
	fflush(NULL);
	s->strace = fork();
	if (s->strace == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(127);
		execvp("strace", argv);
		_exit(127);
	}
	if (s->strace < 0) {
		snprintf(note, 120, "fork for strace failed");
		return false;
	}
	for (double end = bench_now() + 10; bench_now() < end;) {
		bool all = true;
		for (int i = 0; i < n; i++)
			all = all && traced(pids[i]);
		if (all)
			return true;
		usleep(1000);
	}
	kill(s->strace, SIGKILL);
	waitpid(s->strace, NULL, 0);
	snprintf(note, 120, "strace could not attach (ptrace not allowed?)");
	return false;
}

void syscount_finish(struct syscount *s, double out[3])
{
	char line[256];
	FILE *f;
	int status;

	out[SC_ALL] = out[SC_FUTEX] = out[SC_MEMBARRIER] = -1;
	if (waitpid(s->strace, &status, 0) != s->strace ||
	    (f = fopen(s->path, "r")) == NULL)
		return;
	out[SC_FUTEX] = out[SC_MEMBARRIER] = 0; /* absent from the summary */
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tok[8];
		int nt = 0;
		for (char *p = strtok(line, " \t\n"); p != NULL && nt < 8;
		     p = strtok(NULL, " \t\n"))
			tok[nt++] = p;
		if (nt < 4 || strchr(tok[0], '.') == NULL)
			continue; /* the header and the rules */
		/* % time, seconds, usecs/call, calls, [errors,] syscall */
		const char *name = tok[nt - 1];
		if (strcmp(name, "total") == 0)
			out[SC_ALL] = atof(tok[3]);
		else if (strcmp(name, "futex") == 0)
			out[SC_FUTEX] = atof(tok[3]);
		else if (strcmp(name, "membarrier") == 0)
			out[SC_MEMBARRIER] = atof(tok[3]);
	}
	fclose(f);
	unlink(s->path);
}
