/* SPDX-License-Identifier: MIT */
/*
 * helpers.h — multi-process test helpers.
 *
 * Children never call cr_assert (it hangs the runner): they run a function
 * and exit with its return value, and the parent asserts on that. Every wait
 * has a timeout; a child that overstays is killed and reported as
 * T_REAP_TIMEOUT, so a bug fails a test instead of hanging it.
 */
#ifndef LIBIPC_TESTS_HELPERS_H
#define LIBIPC_TESTS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "libipc/ipc.h"

#define T_REAP_TIMEOUT 1000

/* Inside a child function: fail with `code` unless expr holds. */
#define T_CHECK(expr, code)            \
	do {                           \
		if (!(expr))           \
			return (code); \
	} while (0)

/* Fork a child that runs fn(arg) and _exit()s with its return value. */
pid_t t_spawn(int (*fn)(void *arg), void *arg);

/* Fork a child that sets IPC_CRASHPOINT=point (and IPC_CRASHPOINT_SKIP=skip
 * unless NULL) and then runs fn(arg): in a --enable-crashpoints build it
 * dies by SIGKILL when it reaches that point. */
pid_t t_spawn_at_point(const char *point, const char *skip,
		       int (*fn)(void *arg), void *arg);

/* Wait at most timeout_ms for pid: its exit code, -N if killed by signal N,
 * or T_REAP_TIMEOUT (after killing it). */
int t_reap(pid_t pid, int timeout_ms);

/* SIGKILL pid and reap it; returns what t_reap returns (-9). */
int t_kill(pid_t pid);

/* Poll (every 200 us, at most timeout_ms) until pid sleeps inside the
 * futex() system call, i.e. is blocked in a libipc wait. */
bool t_blocked_in_futex(pid_t pid, int timeout_ms);

/* Poll until pid sleeps in system call nr (e.g. SYS_futex, SYS_poll). */
bool t_blocked_in_syscall(pid_t pid, long nr, int timeout_ms);

/* Segments in /dev/shm that this test process named (t_name) or left
 * half-made: should be 0 once a test has cleaned up. */
int t_leaked_segments(void);

/* Children of this process that are zombies (exited, never reaped). */
int t_zombie_children(void);

/* Stop child pid (SIGSTOP) and wait, at most timeout_ms, until every one
 * of its threads has stopped: kill() returns before a thread running on
 * another CPU has, and it may run on meanwhile. */
bool t_stop(pid_t pid, int timeout_ms);

/* True if pid has exited but is not reaped yet (a zombie). */
bool t_has_exited(pid_t pid);

/* Poll until *word reaches at least want, at most timeout_ms. */
bool t_wait_count(const volatile int *word, int want, int timeout_ms);

/* A name unique to this process and tag, e.g. "t4242x91733.lock-named":
 * the pid and the process's start time, so a name left behind by an
 * earlier process with the same pid never collides with it. */
void t_name(char *buf, size_t cap, const char *tag);

/* Zeroed memory shared with children forked later. */
void *t_shared(size_t size);

/* Map the file of the named object `name` read-write, as a peer that
 * damages it would (NULL on failure); *size gets its length. Undo with
 * t_unmap_segment. */
void *t_map_segment(const char *name, size_t *size);
void t_unmap_segment(void *base, size_t size);

/* Milliseconds on CLOCK_MONOTONIC. */
long t_now_ms(void);

/* Start an across-hosts server on a free loopback port (other tests run
 * in parallel); its URL into url[0..cap). ipc_server_start's result. */
int t_net_serve(ipc_server **s, const ipc_net_attr *a, char *url, size_t cap);

/* Run tests/net_peer MODE URL NAME KEY [ARG] in a fresh process (nanomsg
 * is not fork-safe; see net_peer.c) with its stdout on *out. arg may be
 * NULL. The pid, or -1. */
pid_t t_net_peer(int *out, const char *mode, const char *url, const char *name,
		 const char *key, const char *arg);

/* Read one line from fd within timeout_ms, without its newline. */
bool t_read_line(int fd, char *buf, size_t cap, int timeout_ms);

#endif
