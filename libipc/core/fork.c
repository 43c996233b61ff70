/* SPDX-License-Identifier: MIT */
/*
 * fork.c — a process-wide fork generation, and the calling thread's tag.
 *
 * A handle inherited across fork() may carry per-process registrations that
 * belong to the parent (a JoinableQueue consumer slot is held by a thread of
 * the parent). Comparing a saved generation with the current one tells a
 * handle, without a system call, that it now runs in a child and must
 * register afresh. The counter is the one piece of process-global state in
 * libipc; it is bumped by a pthread_atfork child handler installed when the
 * library is loaded (a constructor, so that reading the counter, inline on
 * every put and get, needs no once-check; glibc removes the handler if the
 * library is unloaded).
 */
#include <pthread.h>

#include "libipc/core/core.h"

_Atomic unsigned ipc__fork_generation;
_Thread_local char ipc__thread_tag IPC__TLS_FAST;
_Thread_local int32_t ipc__tid_cached IPC__TLS_FAST;

static void fork_child(void)
{
	ipc__tid_cached = 0; /* the child's thread has an id of its own */
	atomic_fetch_add_explicit(&ipc__fork_generation, 1,
				  memory_order_relaxed);
}

__attribute__((constructor)) static void fork_install(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}
