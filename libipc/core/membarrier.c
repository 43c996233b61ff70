/* SPDX-License-Identifier: MIT */
/*
 * membarrier.c — asymmetric memory barriers across processes.
 *
 * A hot path that must order a store before a later load (Dekker's
 * pattern) normally pays for a full fence, which on x86 waits for every
 * pending store to reach the cache — for a queue producer, the previous
 * message's cross-core transfer. membarrier(2) moves that cost to the rare
 * side: the hot path keeps only a compiler barrier, and the rare path runs
 * MEMBARRIER_CMD_GLOBAL, after which every thread on the system has passed
 * through a state where its memory accesses match program order (a full
 * barrier, or a context switch). It needs no registration, so the hot side
 * makes no system call at all; in exchange it is slow (it waits for an RCU
 * grace period, 10 to 30 ms here), which is why its one user, the revoking
 * of a biased queue producer (ring_bias.c), runs it only when the owner
 * does not answer a cheaper handshake.
 *
 * Support is probed once per process (the one cached fact); without it the
 * callers use their ordinary, fenced paths.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/core/core.h"

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
		s = mask >= 0 && (mask & MEMBARRIER_CMD_GLOBAL) != 0 ? 1 : 2;
		atomic_store_explicit(&state, s, memory_order_relaxed);
	}
	return s == 1;
}

bool ipc__membarrier(void)
{
	return sys_membarrier(MEMBARRIER_CMD_GLOBAL) == 0;
}
