/* SPDX-License-Identifier: MIT */
/*
 * info.c — what a program asks libipc about itself and its environment:
 * the library's version, the number of CPUs, and the process it was forked
 * from (Python's multiprocessing.cpu_count() and parent_process()).
 *
 * The parent's pid is the one piece of per-process state here. A
 * pthread_atfork child handler, installed when the library is loaded,
 * records getppid() in the child at every fork: at that instant the
 * parent is alive, so the pid is the forking process's and not that of a
 * reaper that adopted an orphan later. A process that was not forked from
 * one that had libipc loaded (the main program) has none.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "libipc/core/core.h"

static _Atomic pid_t parent_pid = -1;

static void record_parent(void)
{
	atomic_store_explicit(&parent_pid, getppid(), memory_order_relaxed);
}

__attribute__((constructor)) static void info_install(void)
{
	pthread_atfork(NULL, NULL, record_parent);
}

pid_t ipc_parent_pid(void)
{
	return atomic_load_explicit(&parent_pid, memory_order_relaxed);
}

int ipc_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 0x7fffffff ? 0x7fffffff : (int)n;
}

const char *ipc_version(void)
{
	return IPC_VERSION_STRING;
}

int ipc_version_number(void)
{
	return IPC_VERSION_NUMBER;
}
