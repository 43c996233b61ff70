/* SPDX-License-Identifier: MIT */
/*
 * membarrier.c — asymmetric memory barriers across processes.
 *
 * A hot path that must order a store before a later load (Dekker's
 * pattern) normally pays for a full fence, which on x86 waits for every
 * pending store to reach the cache — for a queue producer, the previous
 * message's cross-core transfer. membarrier(2) moves that cost to the rare
 * side: the hot path keeps only a compiler barrier, and the rare path runs
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED, which makes every running thread of
 * every registered process execute a full barrier (a preempted thread has
 * passed one already, in its context switch). Processes that run such a hot
 * path register first with MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED.
 *
 * Support is probed once per process (the one cached fact); without it the
 * callers use their ordinary, fenced paths.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/core/core.h"

#define NEEDED                             \
	(MEMBARRIER_CMD_GLOBAL_EXPEDITED | \
	 MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)

static long sys_membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

bool ipc__membarrier_available(void)
{
	static _Atomic int state; /* 0 unknown, 1 yes, 2 no */
	int s = atomic_load_explicit(&state, memory_order_relaxed);

	if (s == 0) {
		long mask = sys_membarrier(MEMBARRIER_CMD_QUERY);
		s = mask >= 0 && (mask & NEEDED) == NEEDED ? 1 : 2;
		atomic_store_explicit(&state, s, memory_order_relaxed);
	}
	return s == 1;
}

int ipc__membarrier_register(void)
{
	if (!ipc__membarrier_available())
		return -ENOTSUP;
	return sys_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
		       ? 0
		       : ipc__sys_error(errno);
}

void ipc__membarrier(void)
{
	if (sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0)
		atomic_thread_fence(memory_order_seq_cst); /* cannot happen */
}
