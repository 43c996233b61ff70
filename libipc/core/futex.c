/* SPDX-License-Identifier: MIT */
/*
 * futex.c — sleeping and waking on 32-bit words in shared memory.
 *
 * libipc does not use process-shared pthread condition variables: on glibc
 * before 2.41 a waiter killed inside pthread_cond_wait keeps group
 * references, and later signals can block forever. A futex word holds no
 * per-waiter state at all: a waiter that dies in FUTEX_WAIT simply leaves
 * the kernel's wait queue, and a wake-up is never delivered to the dead.
 *
 * Waits use FUTEX_WAIT_BITSET, whose timeout is an absolute CLOCK_MONOTONIC
 * time: the deadline computed on entry is passed unchanged on every loop.
 *
 * FUTEX_WAKE_OP changes a word and wakes its sleepers inside one system
 * call. A process is killed by SIGKILL only on its way back to user space,
 * so the change and the wake-up cannot be separated by a crash; Event.set
 * and Condition.notify are built on it.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/core/core.h"

static long sys_futex(_Atomic uint32_t *uaddr, int op, uint32_t val,
		      const struct timespec *ts, _Atomic uint32_t *uaddr2,
		      uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

int ipc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		    const struct ipc__deadline *dl)
{
	const struct timespec *ts = NULL;
	long rc;

	if (dl->kind == IPC__DL_NOWAIT)
		return -ETIMEDOUT;
	ipc__deadline_anchor(dl);
	if (dl->kind == IPC__DL_AT)
		ts = &dl->at;
	rc = sys_futex(word, FUTEX_WAIT_BITSET, expected, ts, NULL,
		       FUTEX_BITSET_MATCH_ANY);
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	/* EAGAIN (the word already differs) and EINTR: the caller re-checks. */
	return 0;
}

void ipc__futex_wake(_Atomic uint32_t *word, int n)
{
	sys_futex(word, FUTEX_WAKE, (uint32_t)n, NULL, NULL, 0);
}

/* FUTEX_WAKE_OP with uaddr == uaddr2: the kernel applies op to the word,
 * wakes up to n sleepers on it, and then, if the comparison of the word's
 * old value holds, wakes more — at least one, whatever nr_wake2 says. The
 * comparison used, old < -2048 (12-bit signed operand), is false for every
 * value below 2^31, so callers keep their words there; the operand of op
 * is 12 bits wide. */
#if IPC__TSAN
/* ThreadSanitizer's own entry point: a release on addr, which a later
 * acquire load of addr synchronizes with. */
void __tsan_release(void *addr);
#endif

static void futex_op_wake(_Atomic uint32_t *word, int op, uint32_t arg, int n)
{
	uint32_t encoded = FUTEX_OP(op, arg, FUTEX_OP_CMP_LT, -2048);

	/* The kernel's store to the word is a release store made for us
	 * (the futex operation is a full barrier), but ThreadSanitizer sees
	 * no store at all: say it, so that an acquire load that sees the new
	 * value (an Event's waiter) is known to happen after what we wrote
	 * before. TSan builds only; an annotation, no code otherwise. */
#if IPC__TSAN
	__tsan_release((void *)(uintptr_t)word);
#endif
	sys_futex(word, FUTEX_WAKE_OP, (uint32_t)n, (const struct timespec *)0,
		  word, encoded);
}

void ipc__futex_add_wake(_Atomic uint32_t *word, uint32_t add, int n)
{
	futex_op_wake(word, FUTEX_OP_ADD, add, n);
}

void ipc__futex_or_wake(_Atomic uint32_t *word, uint32_t bits, int n)
{
	futex_op_wake(word, FUTEX_OP_OR, bits, n);
}

void ipc__futex_set_wake(_Atomic uint32_t *word, uint32_t value, int n)
{
	futex_op_wake(word, FUTEX_OP_SET, value, n);
}
