/* SPDX-License-Identifier: MIT */
/*
 * fork.c — a process-wide fork generation.
 *
 * A handle inherited across fork() may carry per-process registrations that
 * belong to the parent (a JoinableQueue consumer slot is held by a thread of
 * the parent). Comparing a saved generation with the current one tells a
 * handle, without a system call, that it now runs in a child and must
 * register afresh. The counter is the one piece of process-global state in
 * libipc; it is bumped by a pthread_atfork child handler installed once.
 */
#include <pthread.h>

#include "libipc/core/core.h"

static _Atomic unsigned fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void fork_install(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

unsigned ipc__fork_gen(void)
{
	pthread_once(&fork_once, fork_install);
	return atomic_load_explicit(&fork_generation, memory_order_relaxed);
}
