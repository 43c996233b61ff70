/* SPDX-License-Identifier: MIT */
/*
 * test_sem.c — Semaphore and BoundedSemaphore between processes.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <signal.h>

#include "libipc/ipc.h"
#include "libipc/sync/layout.h"
#include "tests/helpers.h"

static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "sem");
}

static void teardown(void)
{
	ipc_unlink(name);
}

TestSuite(sem, .init = setup, .fini = teardown, .timeout = 30);

Test(sem, counts_down_to_zero_then_eagain)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(&s, 3, 0), 0);
	cr_assert_eq(ipc_sem_value(s), 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_sem_acquire(s, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(s, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_value(s), 0);
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(ipc_sem_value(s), 1);
	cr_assert_eq(ipc_sem_release(s), 0, "unbounded: past the start");
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(ipc_sem_value(s), 4);
	ipc_sem_close(s);
}

Test(sem, timeout_on_zero_is_etimedout)
{
	ipc_sem *s;
	long t0;

	cr_assert_eq(ipc_sem_new(&s, 0, 0), 0);
	t0 = t_now_ms();
	cr_assert_eq(ipc_sem_acquire(s, 70), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 69);
	cr_assert_eq(ipc_sem_value(s), 0);
	ipc_sem_close(s);
}

Test(sem, bounded_release_past_max_is_einval_and_changes_nothing)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(&s, 3, 2), IPC_EINVAL, "value over max");
	cr_assert_eq(ipc_sem_new(&s, 2, 2), 0);
	cr_assert_eq(ipc_sem_release(s), IPC_EINVAL);
	cr_assert_eq(ipc_sem_value(s), 2);
	cr_assert_eq(ipc_sem_acquire(s, 0), 0);
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(ipc_sem_release(s), IPC_EINVAL, "double release");
	cr_assert_eq(ipc_sem_value(s), 2);
	ipc_sem_close(s);
}

Test(sem, bad_arguments_are_einval)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_new(&s, 0x80000000u, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_acquire(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_release(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_sem_value(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_sem_new(&s, IPC_SEM_VALUE_MAX, 0), 0);
	cr_assert_eq(ipc_sem_release(s), IPC_EINVAL, "at the ceiling");
	ipc_sem_close(s);
}

Test(sem, named_open_with_another_max_is_einval)
{
	ipc_sem *a, *b, *c;

	cr_assert_eq(ipc_sem_open(&a, name, IPC_CREATE, 3, 3), 0);
	cr_assert_eq(ipc_sem_open(&b, name, 0, 0, 5), IPC_EINVAL);
	cr_assert_eq(ipc_sem_open(&b, name, 0, 0, 3), 0);
	cr_assert_eq(ipc_sem_open(&c, NULL, 0, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_acquire(b, 0), 0);
	cr_assert_eq(ipc_sem_value(a), 2, "one semaphore, two handles");
	ipc_sem_close(a);
	ipc_sem_close(b);
}

struct pool {
	volatile int active, max_active, entered, done;
};
static ipc_sem *gate;
static struct pool *pool;

/* Hold a permit until three are held (or no more workers can come), so the
 * test can assert the peak exactly. */
static int limited_worker(void *arg)
{
	(void)arg;
	if (ipc_sem_acquire(gate, 20000) != 0)
		return 1;
	int now = __atomic_add_fetch(&pool->active, 1, __ATOMIC_SEQ_CST);
	int entered = __atomic_add_fetch(&pool->entered, 1, __ATOMIC_SEQ_CST);
	int peak = pool->max_active;
	while (now > peak && !__atomic_compare_exchange_n(
				     &pool->max_active, &peak, now, false,
				     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	(void)entered;
	long end = t_now_ms() + 10000;
	while (__atomic_load_n(&pool->active, __ATOMIC_SEQ_CST) < 3 &&
	       __atomic_load_n(&pool->entered, __ATOMIC_SEQ_CST) < 10 &&
	       t_now_ms() < end)
		;
	__atomic_sub_fetch(&pool->active, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&pool->done, 1, __ATOMIC_SEQ_CST);
	return ipc_sem_release(gate) == 0 ? 0 : 2;
}

Test(sem, ten_processes_never_more_than_three_at_once)
{
	pid_t kids[10];

	pool = t_shared(sizeof(*pool));
	cr_assert_eq(ipc_sem_new(&gate, 3, 3), 0);
	for (int i = 0; i < 10; i++)
		kids[i] = t_spawn(limited_worker, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(t_reap(kids[i], 20000), 0, "worker %d", i);
	cr_assert_eq(pool->max_active, 3);
	cr_assert_eq(pool->done, 10);
	cr_assert_eq(ipc_sem_value(gate), 3, "every permit came back");
	ipc_sem_close(gate);
}

static int acquire_long(void *arg)
{
	(void)arg;
	return ipc_sem_acquire(gate, 20000) == 0 ? 0 : 1;
}

Test(sem, killed_waiter_does_not_swallow_a_release)
{
	pid_t a, b;

	cr_assert_eq(ipc_sem_new(&gate, 0, 0), 0);
	a = t_spawn(acquire_long, NULL);
	b = t_spawn(acquire_long, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	cr_assert(t_blocked_in_futex(b, 10000));
	cr_assert_eq(t_kill(a), -SIGKILL);
	cr_assert_eq(ipc_sem_release(gate), 0);
	cr_assert_eq(t_reap(b, 10000), 0, "the live waiter got the unit");
	cr_assert_eq(ipc_sem_value(gate), 0);
	ipc_sem_close(gate);
}

Test(sem, each_release_wakes_one_blocked_process)
{
	enum { N = 4 };
	pid_t kids[N];

	cr_assert_eq(ipc_sem_new(&gate, 0, 0), 0);
	for (int i = 0; i < N; i++)
		kids[i] = t_spawn(acquire_long, NULL);
	for (int i = 0; i < N; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	for (int i = 0; i < N; i++)
		cr_assert_eq(ipc_sem_release(gate), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0);
	cr_assert_eq(ipc_sem_value(gate), 0);
	ipc_sem_close(gate);
}

/* ---- Damaged shared memory: a value no call can store ------------------ */

Test(sem, value_above_the_maximum_is_enotrecoverable_never_negative)
{
	static const uint32_t bad[] = { 0x80000000u, 0x80000005u, 0xffffffffu };
	struct sem_shm *shm;
	ipc_sem *s;
	size_t size;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 0), 0);
	shm = t_map_segment(name, &size);
	cr_assert_not_null(shm);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&shm->s_value, bad[i]);
		cr_assert_eq(ipc_sem_value(s), IPC_ENOTRECOVERABLE, "%#x",
			     bad[i]);
		cr_assert_eq(ipc_sem_acquire(s, IPC_NOWAIT),
			     IPC_ENOTRECOVERABLE);
		cr_assert_eq(ipc_sem_acquire(s, 100), IPC_ENOTRECOVERABLE);
		cr_assert_eq(ipc_sem_release(s), IPC_ENOTRECOVERABLE);
		cr_assert_eq(atomic_load(&shm->s_value), bad[i],
			     "nothing changed");
	}
	atomic_store(&shm->s_value, IPC_SEM_VALUE_MAX);
	cr_assert_eq(ipc_sem_value(s), IPC_SEM_VALUE_MAX, "the top is valid");
	cr_assert_eq(ipc_sem_acquire(s, IPC_NOWAIT), 0);
	t_unmap_segment(shm, size);
	ipc_sem_close(s);
}

Test(sem, ceiling_is_read_once_at_open)
{
	struct sem_shm *shm;
	ipc_sem *s;
	size_t size;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 2, 2), 0);
	shm = t_map_segment(name, &size);
	cr_assert_not_null(shm);
	shm->s_max = 0; /* a peer lifts the bound */
	cr_assert_eq(ipc_sem_release(s), IPC_EINVAL, "still bounded at 2");
	cr_assert_eq(ipc_sem_value(s), 2);
	t_unmap_segment(shm, size);
	ipc_sem_close(s);
}

Test(sem, release_n_adds_n_at_once)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(&s, 0, 0), 0);
	cr_assert_eq(ipc_sem_release_n(s, 5), 0);
	cr_assert_eq(ipc_sem_value(s), 5);
	cr_assert_eq(ipc_sem_release_n(s, 1), 0);
	cr_assert_eq(ipc_sem_value(s), 6);
	cr_assert_eq(ipc_sem_release_n(s, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_release_n(NULL, 1), IPC_EINVAL);
	cr_assert_eq(ipc_sem_release_n(s, IPC_SEM_VALUE_MAX), IPC_EINVAL,
		     "would pass IPC_SEM_VALUE_MAX");
	cr_assert_eq(ipc_sem_value(s), 6);
	ipc_sem_close(s);
}

Test(sem, bounded_release_n_past_max_changes_nothing)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(&s, 1, 4), 0);
	cr_assert_eq(ipc_sem_release_n(s, 4), IPC_EINVAL, "1 + 4 > 4");
	cr_assert_eq(ipc_sem_value(s), 1, "all or nothing");
	cr_assert_eq(ipc_sem_release_n(s, 3), 0);
	cr_assert_eq(ipc_sem_value(s), 4);
	cr_assert_eq(ipc_sem_release_n(s, 1), IPC_EINVAL);
	cr_assert_eq(ipc_sem_value(s), 4);
	ipc_sem_close(s);
}

static ipc_sem *rn_sem;

static int rn_take_one(void *arg)
{
	(void)arg;
	return ipc_sem_acquire(rn_sem, 20000) == 0 ? 0 : 1;
}

/* Three processes asleep on 0; one release_n(3) wakes all three. */
Test(sem, release_n_wakes_n_sleeping_processes)
{
	pid_t kids[3];

	/* Sleepers re-check only hourly (in the crash-point test build):
	 * a missed wake-up hangs them, and the test fails. */
	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_sem_new(&rn_sem, 0, 0), 0);
	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(rn_take_one, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(ipc_sem_release_n(rn_sem, 3), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0);
	cr_assert_eq(ipc_sem_value(rn_sem), 0);
	ipc_sem_close(rn_sem);
}
