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
 * does not answer a cheaper handshake. A hot side that expects to be
 * revoked often registers instead (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
 * one call per process), and the rare side then runs the fast
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED, which interrupts only the CPUs running
 * registered processes.
 *
 * Support is probed once per process, and the registration made once per
 * process (the two cached facts); without support the callers use their
 * ordinary, fenced paths.
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

/* The commands this kernel supports (MEMBARRIER_CMD_QUERY), or 0. */
static long membarrier_mask(void)
{
	static _Atomic long mask = -1; /* -1: not asked yet */
	long m = atomic_load_explicit(&mask, memory_order_relaxed);

	if (m < 0) {
		m = sys_membarrier(MEMBARRIER_CMD_QUERY);
		if (m < 0)
			m = 0;
		atomic_store_explicit(&mask, m, memory_order_relaxed);
	}
	return m;
}

bool ipc__membarrier_available(void)
{
	return (membarrier_mask() & MEMBARRIER_CMD_GLOBAL) != 0;
}

bool ipc__membarrier(void)
{
	return sys_membarrier(MEMBARRIER_CMD_GLOBAL) == 0;
}

int ipc__membarrier_register(void)
{
	const long need = MEMBARRIER_CMD_GLOBAL_EXPEDITED |
			  MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;

	/* The fork generation (plus one) this process registered in: the
	 * registration belongs to the address space, and a child starts
	 * with a new one, so it registers again (once). */
	static _Atomic unsigned registered;
	unsigned gen = ipc__fork_gen() + 1;

	if (atomic_load_explicit(&registered, memory_order_relaxed) == gen)
		return 0;
	if ((membarrier_mask() & need) != need)
		return -ENOTSUP;
	if (sys_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
		return ipc__sys_error(errno);
	atomic_store_explicit(&registered, gen, memory_order_relaxed);
	return 0;
}

bool ipc__membarrier_expedited(void)
{
	return sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}
