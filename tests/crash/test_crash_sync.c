/* SPDX-License-Identifier: MIT */
/*
 * test_crash_sync.c — the crash-point suite for the core and the
 * synchronisation objects.
 *
 * Each test forks a child that runs one operation with IPC_CRASHPOINT set to
 * a named point inside it: the child is SIGKILLed exactly there (the parent
 * asserts it died by SIGKILL, which proves the point was reached). The parent
 * then checks the object's invariants and that it, and any process blocked
 * on it, keeps working. Built only with --enable-crashpoints.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

TestSuite(crash, .timeout = 30);

/* Run fn in a child that must die at point; assert it did. */
static void die_at_skip(const char *point, const char *skip, int (*fn)(void *),
			void *arg)
{
	cr_assert_eq(t_reap(t_spawn_at_point(point, skip, fn, arg), 10000),
		     -SIGKILL, "child did not die at %s", point);
}

static void die_at(const char *point, int (*fn)(void *), void *arg)
{
	die_at_skip(point, NULL, fn, arg);
}

/* ---- Lock and RLock --------------------------------------------------- */

static ipc_lock *lk;

static int lock_cycle(void *arg)
{
	(void)arg;
	if (ipc_lock_acquire(lk, 5000) != 0)
		return 1;
	return ipc_lock_release(lk) == 0 ? 0 : 2;
}

static void check_lock_recovers(void)
{
	cr_assert_eq(ipc_lock_acquire(lk, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(t_reap(t_spawn(lock_cycle, NULL), 10000), 0);
}

Test(crash, lock_acquire_held)
{
	cr_assert_eq(ipc_lock_new(&lk), 0);
	die_at("lock.acquire.held", lock_cycle, NULL);
	check_lock_recovers();
	ipc_lock_close(lk);
}

Test(crash, lock_release_before)
{
	cr_assert_eq(ipc_lock_new(&lk), 0);
	die_at("lock.release.before", lock_cycle, NULL);
	check_lock_recovers();
	ipc_lock_close(lk);
}

static ipc_rlock *rl;

static int rlock_nest_twice(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++)
		if (ipc_rlock_acquire(rl, 5000) != 0)
			return 1;
	for (int i = 0; i < 2; i++)
		if (ipc_rlock_release(rl) != 0)
			return 2;
	return 0;
}

static void check_rlock_recovers(void)
{
	cr_assert_eq(ipc_rlock_acquire(rl, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_rlock_release(rl), 0, "count restarted at one");
	cr_assert_eq(ipc_rlock_release(rl), IPC_EPERM);
	cr_assert_eq(t_reap(t_spawn(rlock_nest_twice, NULL), 10000), 0);
}

Test(crash, rlock_acquire_held_nested)
{
	cr_assert_eq(ipc_rlock_new(&rl), 0);
	die_at_skip("rlock.acquire.held", "1", rlock_nest_twice, NULL);
	check_rlock_recovers();
	ipc_rlock_close(rl);
}

Test(crash, rlock_release_before)
{
	cr_assert_eq(ipc_rlock_new(&rl), 0);
	die_at("rlock.release.before", rlock_nest_twice, NULL);
	check_rlock_recovers();
	ipc_rlock_close(rl);
}

/* ---- Event ------------------------------------------------------------ */

static ipc_event *ev;

static int event_setter(void *arg)
{
	(void)arg;
	return ipc_event_set(ev);
}

static int event_waiter(void *arg)
{
	(void)arg;
	return ipc_event_wait(ev, 20000) == 0 ? 0 : 1;
}

Test(crash, event_set_before)
{
	pid_t w;

	cr_assert_eq(ipc_event_new(&ev), 0);
	w = t_spawn(event_waiter, NULL);
	cr_assert(t_blocked_in_futex(w, 10000));
	die_at("event.set.before", event_setter, NULL);
	cr_assert_not(ipc_event_is_set(ev), "the set never happened");
	cr_assert(t_blocked_in_futex(w, 1000), "so the waiter still waits");
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(t_reap(w, 10000), 0);
	ipc_event_close(ev);
}

Test(crash, event_set_after)
{
	pid_t w;

	cr_assert_eq(ipc_event_new(&ev), 0);
	w = t_spawn(event_waiter, NULL);
	cr_assert(t_blocked_in_futex(w, 10000));
	die_at("event.set.after", event_setter, NULL);
	cr_assert(ipc_event_is_set(ev));
	cr_assert_eq(t_reap(w, 10000), 0, "set and woken, both or neither");
	ipc_event_close(ev);
}

/* ---- Condition -------------------------------------------------------- */

static ipc_cond *cv;
static volatile int *ready;

static int cond_waiter(void *arg)
{
	int timeout = arg ? *(int *)arg : 20000;
	if (ipc_cond_acquire(cv, 5000) != 0)
		return 1;
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	int rc = ipc_cond_wait(cv, timeout);
	if (rc == IPC_EOWNERDEAD) {
		ipc_cond_release(cv);
		return 42;
	}
	ipc_cond_release(cv);
	return rc == 0 ? 0 : 2;
}

static int cond_notifier(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cv, 5000) != 0)
		return 1;
	ipc_cond_notify_all(cv);
	return ipc_cond_release(cv);
}

static void cond_setup(void)
{
	cr_assert_eq(ipc_cond_new(&cv), 0);
	ready = t_shared(sizeof(int));
}

/* A waiter and a notify after the crash: the object still works. */
static void check_cond_works(void)
{
	pid_t w = t_spawn(cond_waiter, NULL);

	cr_assert(t_wait_count(ready, 2, 10000));
	cr_assert(t_blocked_in_futex(w, 10000));
	cr_assert_eq(t_reap(t_spawn(cond_notifier, NULL), 10000), 0);
	cr_assert_eq(t_reap(w, 10000), 0);
}

Test(crash, cond_acquire_held)
{
	cond_setup();
	die_at("cond.acquire.held", cond_notifier, NULL);
	cr_assert_eq(ipc_cond_acquire(cv, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_cond_release(cv), 0);
	*ready = 1;
	check_cond_works();
	ipc_cond_close(cv);
}

Test(crash, cond_wait_unlocked)
{
	cond_setup();
	die_at("cond.wait.unlocked", cond_waiter, NULL);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0, "lock was released");
	cr_assert_eq(ipc_cond_notify_all(cv), 0, "stale waiter count: ok");
	cr_assert_eq(ipc_cond_release(cv), 0);
	check_cond_works();
	ipc_cond_close(cv);
}

Test(crash, cond_wait_woken)
{
	pid_t w;

	cond_setup();
	w = t_spawn_at_point("cond.wait.woken", NULL, cond_waiter, NULL);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert(t_blocked_in_futex(w, 10000));
	cr_assert_eq(t_reap(t_spawn(cond_notifier, NULL), 10000), 0);
	cr_assert_eq(t_reap(w, 10000), -SIGKILL);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0, "never relocked");
	cr_assert_eq(ipc_cond_release(cv), 0);
	check_cond_works();
	ipc_cond_close(cv);
}

Test(crash, cond_notify_before)
{
	int short_wait = 300;
	pid_t w;

	cond_setup();
	w = t_spawn(cond_waiter, &short_wait);
	cr_assert(t_wait_count(ready, 1, 10000));
	die_at("cond.notify.before", cond_notifier, NULL);
	/* No notify happened; the waiter times out and, reacquiring, learns
	 * that the notifier died holding the lock. */
	cr_assert_eq(t_reap(w, 10000), 42);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_cond_release(cv), 0);
	check_cond_works();
	ipc_cond_close(cv);
}

/* A Condition on an RLock, its waiter holding two levels. */
static ipc_rlock *crl;

static int cond_rlock_waiter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++)
		if (ipc_rlock_acquire(crl, 5000) != 0)
			return 1;
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	int rc = ipc_cond_wait(cv, 20000);
	for (int i = 0; i < 2; i++)
		if (ipc_rlock_release(crl) != 0)
			return 3;
	return rc == 0 ? 0 : 2;
}

static void cond_rlock_setup(void)
{
	cr_assert_eq(ipc_rlock_new(&crl), 0);
	cr_assert_eq(ipc_cond_new_with_rlock(&cv, crl), 0);
	ready = t_shared(sizeof(int));
}

static void cond_rlock_teardown(void)
{
	ipc_cond_close(cv);
	ipc_rlock_close(crl);
}

/* Killed with both levels released: the RLock is free. */
Test(crash, cond_on_rlock_wait_unlocked)
{
	cond_rlock_setup();
	die_at("cond.wait.unlocked", cond_rlock_waiter, NULL);
	cr_assert_eq(ipc_rlock_acquire(crl, IPC_NOWAIT), 0, "both released");
	cr_assert_eq(ipc_rlock_release(crl), 0);
	check_cond_works();
	cond_rlock_teardown();
}

/* Killed after taking the RLock back once, before restoring the second
 * level: the next acquirer gets IPC_EOWNERDEAD with a count of one. */
Test(crash, cond_on_rlock_wait_restoring)
{
	pid_t w;

	cond_rlock_setup();
	w = t_spawn_at_point("cond.wait.restoring", NULL, cond_rlock_waiter,
			     NULL);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert(t_blocked_in_futex(w, 10000));
	cr_assert_eq(t_reap(t_spawn(cond_notifier, NULL), 10000), 0);
	cr_assert_eq(t_reap(w, 10000), -SIGKILL);
	cr_assert_eq(ipc_rlock_acquire(crl, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_rlock_release(crl), 0);
	cr_assert_eq(ipc_rlock_release(crl), IPC_EPERM, "a count of one");
	*ready = 1;
	check_cond_works();
	cond_rlock_teardown();
}

/* ---- Semaphore -------------------------------------------------------- */

static ipc_sem *sem;

static int sem_taker(void *arg)
{
	(void)arg;
	return ipc_sem_acquire(sem, 20000) == 0 ? 0 : 1;
}

static int sem_giver(void *arg)
{
	(void)arg;
	return ipc_sem_release(sem);
}

Test(crash, sem_acquire_taken)
{
	cr_assert_eq(ipc_sem_new(&sem, 2, 2), 0);
	die_at("sem.acquire.taken", sem_taker, NULL);
	cr_assert_eq(ipc_sem_value(sem), 1, "the dead process's unit is taken");
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_value(sem), 1);
	ipc_sem_close(sem);
}

Test(crash, sem_acquire_sleeping)
{
	pid_t w;

	cr_assert_eq(ipc_sem_new(&sem, 0, 0), 0);
	die_at("sem.acquire.sleeping", sem_taker, NULL);
	cr_assert_eq(ipc_sem_value(sem), 0);
	w = t_spawn(sem_taker, NULL);
	cr_assert(t_blocked_in_futex(w, 10000));
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(t_reap(w, 10000), 0, "the live sleeper got it");
	cr_assert_eq(ipc_sem_value(sem), 0);
	ipc_sem_close(sem);
}

Test(crash, sem_release_before_wake)
{
	pid_t w;

	cr_assert_eq(ipc_sem_new(&sem, 0, 0), 0);
	w = t_spawn(sem_taker, NULL);
	cr_assert(t_blocked_in_futex(w, 10000));
	die_at("sem.release.before_wake", sem_giver, NULL);
	/* The unit was added but nobody was woken: the sleeper's periodic
	 * re-check finds it. */
	cr_assert_eq(t_reap(w, 10000), 0);
	cr_assert_eq(ipc_sem_value(sem), 0);
	ipc_sem_close(sem);
}

static int sem_giver_n(void *arg)
{
	(void)arg;
	return ipc_sem_release_n(sem, 2);
}

/* release_n killed between adding its units and waking: both units are
 * there, and both sleepers find them on their periodic re-check. */
Test(crash, sem_release_n_before_wake)
{
	pid_t w[2];

	cr_assert_eq(ipc_sem_new(&sem, 0, 0), 0);
	for (int i = 0; i < 2; i++)
		w[i] = t_spawn(sem_taker, NULL);
	for (int i = 0; i < 2; i++)
		cr_assert(t_blocked_in_futex(w[i], 10000));
	die_at("sem.release_n.before_wake", sem_giver_n, NULL);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(t_reap(w[i], 10000), 0);
	cr_assert_eq(ipc_sem_value(sem), 0);
	ipc_sem_close(sem);
}

/* ---- Barrier ---------------------------------------------------------- */

static ipc_barrier *bar;

static int bar_wait(void *arg)
{
	(void)arg;
	int rc = ipc_barrier_wait(bar, 20000);
	return rc >= 0 ? rc : (rc == IPC_EBROKEN ? 100 : 101);
}

static void check_full_round(unsigned parties)
{
	pid_t kids[8];
	int seen;

	cr_assert_eq(ipc_barrier_reset(bar), 0);
	for (unsigned i = 0; i + 1 < parties; i++)
		kids[i] = t_spawn(bar_wait, NULL);
	seen = 1 << ipc_barrier_wait(bar, 10000);
	for (unsigned i = 0; i + 1 < parties; i++)
		seen |= 1 << t_reap(kids[i], 10000);
	cr_assert_eq(seen, (1 << parties) - 1, "a full round after reset");
}

Test(crash, barrier_wait_counted_while_holding_internal_lock)
{
	pid_t a;

	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	a = t_spawn(bar_wait, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	die_at("barrier.wait.counted", bar_wait, NULL);
	cr_assert_eq(t_reap(a, 10000), 100, "the survivor is told: broken");
	cr_assert(ipc_barrier_broken(bar));
	check_full_round(3);
	ipc_barrier_close(bar);
}

Test(crash, barrier_wait_sleeping)
{
	pid_t a;

	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	a = t_spawn(bar_wait, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	die_at_skip("barrier.wait.sleeping", NULL, bar_wait, NULL);
	cr_assert_eq(t_reap(a, 10000), 100);
	cr_assert(ipc_barrier_broken(bar));
	check_full_round(3);
	ipc_barrier_close(bar);
}

Test(crash, barrier_trip_before_wake)
{
	pid_t a;

	cr_assert_eq(ipc_barrier_new(&bar, 2), 0);
	a = t_spawn(bar_wait, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	die_at("barrier.trip.before_wake", bar_wait, NULL);
	/* The round was complete: the waiter is released, not broken. */
	cr_assert_eq(t_reap(a, 10000), 0);
	/* The tripper died inside the barrier: the next entrant repairs its
	 * lock and finds the barrier broken, until reset. */
	cr_assert_eq(ipc_barrier_wait(bar, IPC_NOWAIT), IPC_EBROKEN);
	check_full_round(2);
	ipc_barrier_close(bar);
}

static int noop_action(void *arg)
{
	(void)arg;
	return 0;
}

/* The last arrival killed as it starts the action: it dies holding the
 * internal lock, whose repair breaks the round. */
Test(crash, barrier_trip_action)
{
	ipc_barrier_attr attr = { noop_action, NULL, 0 };
	pid_t a;

	cr_assert_eq(ipc_barrier_new_attr(&bar, 2, &attr), 0);
	a = t_spawn(bar_wait, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	die_at("barrier.trip.action", bar_wait, NULL);
	cr_assert_eq(t_reap(a, 10000), 100, "broken, not released");
	cr_assert(ipc_barrier_broken(bar));
	check_full_round(2);
	ipc_barrier_close(bar);
}

/* ---- Segments --------------------------------------------------------- */

static char segname[128];

static int create_named(void *arg)
{
	(void)arg;
	ipc_event *e;
	return ipc_event_open(&e, segname, IPC_CREATE) == 0 ? 0 : 1;
}

Test(crash, creator_dying_before_publishing_leaves_nothing)
{
	ipc_event *e;
	char prefix[160];
	struct dirent *d;
	DIR *dir;
	int stray = 0;

	t_name(segname, sizeof(segname), "crash-seg");
	die_at("seg.create.before_link", create_named, NULL);
	cr_assert_eq(ipc_event_open(&e, segname, 0), IPC_ENOENT);
	snprintf(prefix, sizeof(prefix), "libipc.%s", segname);
	dir = opendir("/dev/shm");
	cr_assert_not_null(dir);
	while ((d = readdir(dir)) != NULL)
		if (strncmp(d->d_name, prefix, strlen(prefix)) == 0 ||
		    strstr(d->d_name, ".tmp.") != NULL)
			stray++;
	closedir(dir);
	cr_assert_eq(stray, 0, "no half-made file is left");
	cr_assert_eq(ipc_event_open(&e, segname, IPC_CREATE), 0);
	cr_assert_not(ipc_event_is_set(e));
	ipc_event_close(e);
	ipc_unlink(segname);
}
