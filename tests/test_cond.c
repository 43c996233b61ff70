/* SPDX-License-Identifier: MIT */
/*
 * test_cond.c — Condition between processes: misuse, timeouts, notify(n)
 * and notify_all, wait_for, killed waiters and a notifier that dies.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_cond *cv;
static char name[128];

struct shared {
	volatile int ready; /* waiters counted under the lock */
	volatile int value;
};
static struct shared *sh;

static void setup(void)
{
	t_name(name, sizeof(name), "cond");
	cr_assert_eq(ipc_cond_new(&cv), 0);
	sh = t_shared(sizeof(*sh));
}

static void teardown(void)
{
	ipc_cond_close(cv);
	ipc_unlink(name);
}

TestSuite(cond, .init = setup, .fini = teardown, .timeout = 30);

Test(cond, wait_notify_and_release_without_the_lock_are_eperm)
{
	cr_assert_eq(ipc_cond_wait(cv, 0), IPC_EPERM);
	cr_assert_eq(ipc_cond_notify(cv, 1), IPC_EPERM);
	cr_assert_eq(ipc_cond_notify_all(cv), IPC_EPERM);
	cr_assert_eq(ipc_cond_release(cv), IPC_EPERM);
}

Test(cond, bad_arguments_are_einval)
{
	cr_assert_eq(ipc_cond_new(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_cond_acquire(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_cond_wait(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_FOREVER), 0);
	cr_assert_eq(ipc_cond_notify(cv, 0), IPC_EINVAL);
	cr_assert_eq(ipc_cond_wait_for(cv, NULL, NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_cond_release(cv), 0);
}

Test(cond, wait_times_out_and_returns_with_the_lock_held)
{
	long t0;

	cr_assert_eq(ipc_cond_acquire(cv, IPC_FOREVER), 0);
	t0 = t_now_ms();
	cr_assert_eq(ipc_cond_wait(cv, 60), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 59);
	cr_assert_eq(ipc_cond_wait(cv, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_cond_release(cv), 0, "held again after the wait");
	cr_assert_eq(ipc_cond_release(cv), IPC_EPERM);
}

/* Child: count itself under the lock, then wait. 0 if notified. */
static int waiter(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cv, 10000) != 0)
		return 1;
	sh->ready++;
	int rc = ipc_cond_wait(cv, 20000);
	int rel = ipc_cond_release(cv);
	if (rc == IPC_EOWNERDEAD)
		return 42;
	return rc == 0 && rel == 0 ? 0 : 2;
}

/* Parent: once it holds the lock and sees n counted, all n are waiting. */
static void await_waiters(int n)
{
	long end = t_now_ms() + 10000;

	for (;;) {
		cr_assert_eq(ipc_cond_acquire(cv, 10000), 0);
		if (sh->ready >= n)
			return; /* lock held */
		cr_assert_eq(ipc_cond_release(cv), 0);
		cr_assert_lt(t_now_ms(), end, "waiters never arrived");
		usleep(500);
	}
}

Test(cond, notify_all_wakes_every_waiter)
{
	pid_t kids[4];

	for (int i = 0; i < 4; i++)
		kids[i] = t_spawn(waiter, NULL);
	await_waiters(4);
	cr_assert_eq(ipc_cond_notify_all(cv), 0);
	cr_assert_eq(ipc_cond_release(cv), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0, "waiter %d", i);
}

Test(cond, notify_one_wakes_exactly_one_sleeping_waiter)
{
	pid_t kids[3];
	int woken = -1;

	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(waiter, NULL);
	await_waiters(3);
	cr_assert_eq(ipc_cond_release(cv), 0);
	for (int i = 0; i < 3; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(ipc_cond_acquire(cv, 1000), 0);
	cr_assert_eq(ipc_cond_notify(cv, 1), 0);
	cr_assert_eq(ipc_cond_release(cv), 0);
	/* Exactly one child exits; find it, then check the others sleep. */
	long end = t_now_ms() + 10000;
	while (woken < 0 && t_now_ms() < end) {
		for (int i = 0; i < 3 && woken < 0; i++)
			if (t_has_exited(kids[i]))
				woken = i;
		usleep(200);
	}
	cr_assert_geq(woken, 0, "one waiter woke");
	cr_assert_eq(t_reap(kids[woken], 1000), 0);
	for (int i = 0; i < 3; i++)
		if (i != woken)
			cr_assert(t_blocked_in_futex(kids[i], 100),
				  "waiter %d still asleep", i);
	cr_assert_eq(ipc_cond_acquire(cv, 1000), 0);
	cr_assert_eq(ipc_cond_notify_all(cv), 0);
	cr_assert_eq(ipc_cond_release(cv), 0);
	for (int i = 0; i < 3; i++)
		if (i != woken)
			cr_assert_eq(t_reap(kids[i], 10000), 0);
}

static bool value_is_five(void *arg)
{
	(void)arg;
	return sh->value == 5;
}

static int set_five(void *arg)
{
	(void)arg;
	for (int v = 1; v <= 5; v++) {
		if (ipc_cond_acquire(cv, 10000) != 0)
			return 1;
		sh->value = v;
		ipc_cond_notify_all(cv);
		ipc_cond_release(cv);
	}
	return 0;
}

Test(cond, wait_for_returns_once_the_predicate_holds)
{
	pid_t kid;

	cr_assert_eq(ipc_cond_acquire(cv, IPC_FOREVER), 0);
	kid = t_spawn(set_five, NULL);
	cr_assert_eq(ipc_cond_wait_for(cv, value_is_five, NULL, 10000), 0);
	cr_assert_eq(sh->value, 5);
	cr_assert_eq(ipc_cond_release(cv), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
}

Test(cond, wait_for_true_predicate_returns_at_once_and_false_times_out)
{
	cr_assert_eq(ipc_cond_acquire(cv, IPC_FOREVER), 0);
	sh->value = 5;
	cr_assert_eq(ipc_cond_wait_for(cv, value_is_five, NULL, IPC_NOWAIT), 0);
	sh->value = 4;
	cr_assert_eq(ipc_cond_wait_for(cv, value_is_five, NULL, IPC_NOWAIT),
		     IPC_EAGAIN);
	cr_assert_eq(ipc_cond_wait_for(cv, value_is_five, NULL, 50),
		     IPC_ETIMEDOUT);
	cr_assert_eq(ipc_cond_release(cv), 0);
}

Test(cond, killed_waiters_never_block_notifiers_or_the_living)
{
	pid_t kids[3];

	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(waiter, NULL);
	await_waiters(3);
	cr_assert_eq(ipc_cond_release(cv), 0);
	for (int i = 0; i < 3; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(t_kill(kids[0]), -SIGKILL);
	cr_assert_eq(t_kill(kids[1]), -SIGKILL);
	/* The glibc 2.36 pshared-condvar hazard: signals after a killed
	 * waiter hang. Here each notify returns and the living wake. */
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(ipc_cond_acquire(cv, 1000), 0);
		cr_assert_eq(ipc_cond_notify(cv, 1), 0);
		cr_assert_eq(ipc_cond_release(cv), 0);
	}
	cr_assert_eq(t_reap(kids[2], 10000), 0, "the live waiter woke");
}

static int notify_then_die_holding(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cv, 10000) != 0)
		return 1;
	ipc_cond_notify_all(cv);
	kill(getpid(), SIGKILL);
	return 2;
}

Test(cond, waiter_reacquiring_after_holder_died_gets_eownerdead)
{
	pid_t w, n;

	w = t_spawn(waiter, NULL);
	await_waiters(1);
	cr_assert_eq(ipc_cond_release(cv), 0);
	n = t_spawn(notify_then_die_holding, NULL);
	cr_assert_eq(t_reap(n, 10000), -SIGKILL);
	cr_assert_eq(t_reap(w, 10000), 42);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0, "consistent again");
	cr_assert_eq(ipc_cond_release(cv), 0);
}

static int acquire_and_die(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cv, 10000) != 0)
		return 1;
	kill(getpid(), SIGKILL);
	return 2;
}

Test(cond, holder_killed_gives_next_acquirer_eownerdead)
{
	cr_assert_eq(t_reap(t_spawn(acquire_and_die, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_cond_acquire(cv, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_cond_notify_all(cv), 0, "and we hold it");
	cr_assert_eq(ipc_cond_release(cv), 0);
}

static int named_waiter(void *arg)
{
	ipc_cond *mine;
	(void)arg;
	if (ipc_cond_open(&mine, name, 0) != 0)
		return 1;
	ipc_cond_acquire(mine, 10000);
	sh->ready++;
	int rc = ipc_cond_wait(mine, 20000);
	ipc_cond_release(mine);
	ipc_cond_close(mine);
	return rc == 0 ? 0 : 2;
}

Test(cond, named_condition_across_processes)
{
	ipc_cond *named;
	pid_t kid;

	cr_assert_eq(ipc_cond_open(&named, name, IPC_CREATE), 0);
	kid = t_spawn(named_waiter, NULL);
	long end = t_now_ms() + 10000;
	for (;;) {
		cr_assert_eq(ipc_cond_acquire(named, 10000), 0);
		if (sh->ready == 1)
			break;
		ipc_cond_release(named);
		cr_assert_lt(t_now_ms(), end);
		usleep(500);
	}
	cr_assert_eq(ipc_cond_notify(named, 1), 0);
	cr_assert_eq(ipc_cond_release(named), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
	ipc_cond_close(named);
}

/* ---- re-entrant own lock; Condition(lock) on a Lock or an RLock -------- */

/* Child: take the Condition's lock (proof that no level of it is held by
 * anyone else), set the value, notify, release. */
static int notify_value(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cv, 10000) != 0)
		return 1;
	sh->value = 7;
	if (ipc_cond_notify_all(cv) != 0)
		return 2;
	return ipc_cond_release(cv) == 0 ? 0 : 3;
}

static int cond_try_once(void *arg)
{
	(void)arg;
	int rc = ipc_cond_acquire(cv, IPC_NOWAIT);
	if (rc == 0)
		return ipc_cond_release(cv) == 0 ? 0 : 2;
	return rc == IPC_EAGAIN ? 11 : 1;
}

/* Python: a Condition() uses an RLock; wait releases every level. */
Test(cond, own_lock_is_reentrant_and_wait_releases_and_restores_every_level)
{
	pid_t kid;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0, "level %d",
			     i);
	kid = t_spawn(notify_value, NULL);
	while (sh->value != 7)
		cr_assert_eq(ipc_cond_wait(cv, 20000), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
	/* Held three times again: two releases leave it held. */
	cr_assert_eq(ipc_cond_release(cv), 0);
	cr_assert_eq(ipc_cond_release(cv), 0);
	cr_assert_eq(t_reap(t_spawn(cond_try_once, NULL), 10000), 11);
	cr_assert_eq(ipc_cond_release(cv), 0);
	cr_assert_eq(ipc_cond_release(cv), IPC_EPERM);
	cr_assert_eq(t_reap(t_spawn(cond_try_once, NULL), 10000), 0);
}

Test(cond, built_on_a_lock_shares_that_lock)
{
	ipc_lock *lk;
	ipc_cond *c2;
	pid_t kid;

	cr_assert_eq(ipc_lock_new(&lk), 0);
	cr_assert_eq(ipc_cond_new_with_lock(&c2, lk), 0);
	ipc_cond_close(cv);
	cv = c2;
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_locked(lk), 1, "the Condition's lock is lk");
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), IPC_EDEADLK,
		     "a Lock is not re-entrant");
	cr_assert_eq(ipc_lock_release(lk), 0, "released through the Lock");
	cr_assert_eq(ipc_cond_notify(cv, 1), IPC_EPERM);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_cond_notify(cv, 1), 0, "held through the Lock");
	kid = t_spawn(notify_value, NULL);
	while (sh->value != 7)
		cr_assert_eq(ipc_cond_wait(cv, 20000), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_lock_locked(lk), 1, "held again after the wait");
	cr_assert_eq(ipc_cond_release(cv), 0);
	cr_assert_eq(ipc_lock_locked(lk), 0);
	ipc_cond_close(cv);
	cv = NULL;
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0, "lk outlives c");
	cr_assert_eq(ipc_lock_release(lk), 0);
	ipc_lock_close(lk);
}

static ipc_rlock *crl;

static int rlock_try_once(void *arg)
{
	(void)arg;
	int rc = ipc_rlock_acquire(crl, IPC_NOWAIT);
	if (rc == 0)
		return ipc_rlock_release(crl) == 0 ? 0 : 2;
	return rc == IPC_EAGAIN ? 11 : 1;
}

Test(cond, built_on_an_rlock_wait_releases_and_restores_every_level)
{
	ipc_cond *c2;
	pid_t kid;

	cr_assert_eq(ipc_rlock_new(&crl), 0);
	cr_assert_eq(ipc_cond_new_with_rlock(&c2, crl), 0);
	ipc_cond_close(cv);
	cv = c2;
	cr_assert_eq(ipc_rlock_acquire(crl, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_cond_acquire(cv, IPC_NOWAIT), 0, "the same RLock");
	kid = t_spawn(notify_value, NULL);
	while (sh->value != 7)
		cr_assert_eq(ipc_cond_wait(cv, 20000), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_rlock_release(crl), 0);
	cr_assert_eq(t_reap(t_spawn(rlock_try_once, NULL), 10000), 11,
		     "still held once");
	cr_assert_eq(ipc_rlock_release(crl), 0);
	cr_assert_eq(ipc_rlock_release(crl), IPC_EPERM);
	cr_assert_eq(t_reap(t_spawn(rlock_try_once, NULL), 10000), 0);
	ipc_cond_close(cv);
	cv = NULL;
	ipc_rlock_close(crl);
}

static char lname[160], cname[160];

/* An unrelated-style opener: opens the lock and the Condition by name,
 * waits to be notified. */
static int named_lock_waiter(void *arg)
{
	ipc_lock *lk;
	ipc_cond *c;
	int rc;

	(void)arg;
	if (ipc_lock_open(&lk, lname, 0) != 0)
		return 1;
	if (ipc_cond_open_with_lock(&c, cname, 0, lk) != 0)
		return 2;
	if (ipc_lock_acquire(lk, 10000) != 0)
		return 3;
	sh->ready = 1;
	rc = 0;
	while (rc == 0 && sh->value != 7)
		rc = ipc_cond_wait(c, 20000);
	ipc_lock_release(lk);
	ipc_cond_close(c);
	ipc_lock_close(lk);
	return rc == 0 ? 0 : 4;
}

Test(cond, named_condition_on_a_named_lock_and_lock_mismatches)
{
	ipc_lock *lk, *other;
	ipc_rlock *rl;
	ipc_cond *c, *bad;
	pid_t kid;

	snprintf(lname, sizeof(lname), "%s.lock", name);
	snprintf(cname, sizeof(cname), "%s.cv", name);
	cr_assert_eq(ipc_lock_open(&lk, lname, IPC_CREATE), 0);
	cr_assert_eq(ipc_cond_open_with_lock(&c, cname, IPC_CREATE, lk), 0);
	kid = t_spawn(named_lock_waiter, NULL);
	for (;;) { /* until the waiter is in its wait (its lock released) */
		cr_assert_eq(ipc_lock_acquire(lk, 10000), 0);
		if (sh->ready)
			break;
		cr_assert_eq(ipc_lock_release(lk), 0);
		usleep(500);
	}
	sh->value = 7;
	cr_assert_eq(ipc_cond_notify_all(c), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	cr_assert_eq(t_reap(kid, 20000), 0);

	cr_assert_eq(ipc_lock_new(&other), 0);
	cr_assert_eq(ipc_rlock_new(&rl), 0);
	bad = (ipc_cond *)&bad;
	cr_assert_eq(ipc_cond_open_with_lock(&bad, cname, 0, other), IPC_EINVAL,
		     "another Lock");
	cr_assert_null(bad);
	cr_assert_eq(ipc_cond_open_with_rlock(&bad, cname, 0, rl), IPC_EINVAL,
		     "an RLock instead of its Lock");
	cr_assert_eq(ipc_cond_open(&bad, cname, 0), IPC_EINVAL,
		     "its own lock instead of its Lock");
	cr_assert_eq(ipc_cond_open(&bad, name, IPC_CREATE), 0);
	ipc_cond_close(bad);
	cr_assert_eq(ipc_cond_open_with_lock(&bad, name, 0, lk), IPC_EINVAL,
		     "a Condition on its own lock opened with a Lock");
	cr_assert_eq(ipc_cond_new_with_lock(&bad, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_cond_new_with_rlock(&bad, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_cond_new_with_lock(NULL, lk), IPC_EINVAL);
	cr_assert_eq(ipc_cond_open_with_lock(&bad, NULL, 0, lk), IPC_EINVAL);
	ipc_cond_close(c);
	ipc_lock_close(lk);
	ipc_lock_close(other);
	ipc_rlock_close(rl);
	ipc_unlink(lname);
	ipc_unlink(cname);
}
