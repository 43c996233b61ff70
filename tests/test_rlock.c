/* SPDX-License-Identifier: MIT */
/*
 * test_rlock.c — RLock: nesting by the holder, exclusion of others, and a
 * holder that dies with a nested count.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_rlock *rl;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "rlock");
	cr_assert_eq(ipc_rlock_new(&rl), 0);
}

static void teardown(void)
{
	ipc_rlock_close(rl);
	ipc_unlink(name);
}

TestSuite(rlock, .init = setup, .fini = teardown, .timeout = 30);

static int try_once(void *arg)
{
	(void)arg;
	int rc = ipc_rlock_acquire(rl, IPC_NOWAIT);
	if (rc == IPC_EAGAIN)
		return 11;
	if (rc == IPC_EOWNERDEAD) {
		ipc_rlock_release(rl);
		return 12;
	}
	if (rc != 0)
		return 13;
	return ipc_rlock_release(rl) == 0 ? 0 : 14;
}

Test(rlock, holder_nests_and_others_wait_until_fully_released)
{
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_rlock_acquire(rl, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_rlock_release(rl), 0);
	cr_assert_eq(ipc_rlock_release(rl), 0);
	cr_assert_eq(t_reap(t_spawn(try_once, NULL), 10000), 11,
		     "still held once");
	cr_assert_eq(ipc_rlock_release(rl), 0);
	cr_assert_eq(ipc_rlock_release(rl), IPC_EPERM, "one release too many");
	cr_assert_eq(t_reap(t_spawn(try_once, NULL), 10000), 0, "free now");
}

Test(rlock, release_by_non_holder_is_eperm)
{
	cr_assert_eq(ipc_rlock_release(rl), IPC_EPERM);
	cr_assert_eq(ipc_rlock_release(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_rlock_acquire(NULL, 0), IPC_EINVAL);
}

static int die_nested(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		if (ipc_rlock_acquire(rl, IPC_FOREVER) != 0)
			return 1;
	kill(getpid(), SIGKILL);
	return 2;
}

Test(rlock, dead_holders_nesting_does_not_leak_into_the_next_owner)
{
	cr_assert_eq(t_reap(t_spawn(die_nested, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_rlock_acquire(rl, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_rlock_release(rl), 0, "count is one, not four");
	cr_assert_eq(t_reap(t_spawn(try_once, NULL), 10000), 0);
}

Test(rlock, named_rlock_is_not_a_lock)
{
	ipc_rlock *a;
	ipc_lock *b;

	cr_assert_eq(ipc_rlock_open(&a, name, IPC_CREATE), 0);
	cr_assert_eq(ipc_lock_open(&b, name, 0), IPC_EPROTO);
	cr_assert_eq(ipc_rlock_acquire(a, 0), 0);
	cr_assert_eq(ipc_rlock_acquire(a, 0), 0);
	cr_assert_eq(ipc_rlock_release(a), 0);
	cr_assert_eq(ipc_rlock_release(a), 0);
	ipc_rlock_close(a);
}

Test(rlock, locked_is_true_at_every_depth_until_fully_released)
{
	cr_assert_eq(ipc_rlock_locked(rl), 0);
	cr_assert_eq(ipc_rlock_acquire(rl, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_rlock_acquire(rl, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_rlock_locked(rl), 1);
	cr_assert_eq(ipc_rlock_release(rl), 0);
	cr_assert_eq(ipc_rlock_locked(rl), 1, "still held once");
	cr_assert_eq(t_reap(t_spawn(try_once, NULL), 10000), 11);
	cr_assert_eq(ipc_rlock_release(rl), 0);
	cr_assert_eq(ipc_rlock_locked(rl), 0);
	cr_assert_eq(ipc_rlock_locked(NULL), IPC_EINVAL);
}
