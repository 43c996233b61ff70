/* SPDX-License-Identifier: MIT */
/*
 * test_lock.c — Lock between real processes: exclusion, timeouts, misuse,
 * and a holder that dies.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_lock *lk;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "lock");
	cr_assert_eq(ipc_lock_new(&lk), 0);
}

static void teardown(void)
{
	ipc_lock_close(lk);
	ipc_unlink(name);
}

TestSuite(lock, .init = setup, .fini = teardown, .timeout = 30);

Test(lock, acquire_release_and_relock)
{
	cr_assert_eq(ipc_lock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
}

Test(lock, release_when_not_held_is_eperm)
{
	cr_assert_eq(ipc_lock_release(lk), IPC_EPERM);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(ipc_lock_release(lk), IPC_EPERM, "double release");
}

Test(lock, acquiring_twice_in_one_thread_is_edeadlk)
{
	cr_assert_eq(ipc_lock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_FOREVER), IPC_EDEADLK);
	cr_assert_eq(ipc_lock_acquire(lk, 50), IPC_EDEADLK);
	cr_assert_eq(ipc_lock_release(lk), 0);
}

Test(lock, null_handles_are_einval)
{
	cr_assert_eq(ipc_lock_new(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_lock_acquire(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_lock_release(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_lock_acquire(lk, -5), IPC_EINVAL);
}

/* Child: take the lock, signal, then hold it until told to go. */
struct holder {
	volatile int held;
	volatile int go;
};

static int hold_until_go(void *arg)
{
	struct holder *h = arg;

	if (ipc_lock_acquire(lk, IPC_FOREVER) != 0)
		return 1;
	__atomic_store_n(&h->held, 1, __ATOMIC_RELEASE);
	if (!t_wait_count(&h->go, 1, 20000))
		return 2;
	return ipc_lock_release(lk) == 0 ? 0 : 3;
}

Test(lock, held_by_another_process_nowait_is_eagain_and_timeout_is_etimedout)
{
	struct holder *h = t_shared(sizeof(*h));
	pid_t kid = t_spawn(hold_until_go, h);
	long t0;

	cr_assert(t_wait_count(&h->held, 1, 10000));
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_lock_acquire(lk, 60), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 59, "waited the full timeout");
	cr_assert_eq(ipc_lock_release(lk), IPC_EPERM,
		     "a lock held by another process is not ours to release");
	h->go = 1;
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_lock_acquire(lk, 5000), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
}

static int *counter;

static int increment_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		if (ipc_lock_acquire(lk, 10000) != 0)
			return 1;
		int v = *(volatile int *)counter;
		*(volatile int *)counter = v + 1;
		if (ipc_lock_release(lk) != 0)
			return 2;
	}
	return 0;
}

Test(lock, excludes_four_processes_from_a_plain_counter)
{
	pid_t kids[4];

	counter = t_shared(sizeof(int));
	for (int i = 0; i < 4; i++)
		kids[i] = t_spawn(increment_many, NULL);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t_reap(kids[i], 20000), 0);
	cr_assert_eq(*counter, 80000);
}

static int die_holding(void *arg)
{
	(void)arg;
	if (ipc_lock_acquire(lk, IPC_FOREVER) != 0)
		return 1;
	kill(getpid(), SIGKILL);
	return 2;
}

Test(lock, holder_killed_gives_next_acquirer_eownerdead_with_lock_usable)
{
	cr_assert_eq(t_reap(t_spawn(die_holding, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_lock_acquire(lk, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_lock_release(lk), 0, "held, and consistent");
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0, "no longer dead");
	cr_assert_eq(ipc_lock_release(lk), 0);
}

static int exit_holding(void *arg)
{
	(void)arg;
	return ipc_lock_acquire(lk, IPC_FOREVER) == 0 ? 0 : 1;
}

Test(lock, holder_that_exits_normally_is_also_detected)
{
	cr_assert_eq(t_reap(t_spawn(exit_holding, NULL), 10000), 0);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_lock_release(lk), 0);
}

static int acquire_report(void *arg)
{
	(void)arg;
	int rc = ipc_lock_acquire(lk, 10000);
	if (rc == IPC_EOWNERDEAD)
		return ipc_lock_release(lk) == 0 ? 42 : 3;
	return rc == 0 ? 0 : 1;
}

Test(lock, blocked_waiter_is_woken_when_holder_is_killed)
{
	struct holder *h = t_shared(sizeof(*h));
	pid_t holder = t_spawn(hold_until_go, h);
	pid_t waiter;

	cr_assert(t_wait_count(&h->held, 1, 10000));
	waiter = t_spawn(acquire_report, NULL);
	cr_assert(t_blocked_in_futex(waiter, 10000));
	cr_assert_eq(t_kill(holder), -SIGKILL);
	cr_assert_eq(t_reap(waiter, 10000), 42, "waiter got EOWNERDEAD");
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
}

static int named_increment(void *arg)
{
	ipc_lock *mine;
	(void)arg;
	if (ipc_lock_open(&mine, name, 0) != 0)
		return 1;
	for (int i = 0; i < 5000; i++) {
		if (ipc_lock_acquire(mine, 10000) != 0)
			return 2;
		(*(volatile int *)counter)++;
		ipc_lock_release(mine);
	}
	ipc_lock_close(mine);
	return 0;
}

Test(lock, named_lock_is_shared_by_processes_that_open_it)
{
	ipc_lock *named;
	pid_t kids[3];

	counter = t_shared(sizeof(int));
	cr_assert_eq(ipc_lock_open(&named, name, IPC_CREATE | IPC_EXCL), 0);
	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(named_increment, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_reap(kids[i], 20000), 0);
	cr_assert_eq(*counter, 15000);
	ipc_lock_close(named);
}

/* Python's Lock.locked(), seen from the holder, from another process, and
 * after the holder died. */
static int report_locked(void *arg)
{
	(void)arg;
	return ipc_lock_locked(lk) == 1 ? 0 : 1;
}

Test(lock, locked_tells_held_from_free_across_processes)
{
	cr_assert_eq(ipc_lock_locked(lk), 0);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_locked(lk), 1);
	cr_assert_eq(t_reap(t_spawn(report_locked, NULL), 10000), 0,
		     "another process sees it held");
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(ipc_lock_locked(lk), 0);
	cr_assert_eq(t_reap(t_spawn(die_holding, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_lock_locked(lk), 0, "a dead holder holds nothing");
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_lock_locked(lk), 1);
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(ipc_lock_locked(NULL), IPC_EINVAL);
}
