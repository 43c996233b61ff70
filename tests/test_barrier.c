/* SPDX-License-Identifier: MIT */
/*
 * test_barrier.c — Barrier between processes: indices, reuse, timeout,
 * abort, reset, n_waiting, and a party killed while it waits.
 */
#include <criterion/criterion.h>
#include <signal.h>

#include "libipc/ipc.h"
#include "libipc/sync/layout.h"
#include "tests/helpers.h"

static ipc_barrier *bar;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "barrier");
}

static void teardown(void)
{
	ipc_barrier_close(bar);
	bar = NULL;
	ipc_unlink(name);
}

TestSuite(barrier, .init = setup, .fini = teardown, .timeout = 30);

Test(barrier, bad_party_counts_are_einval)
{
	ipc_barrier *b;

	cr_assert_eq(ipc_barrier_new(&b, 0), IPC_EINVAL);
	cr_assert_eq(ipc_barrier_new(&b, IPC_BARRIER_MAX_PARTIES + 1),
		     IPC_EINVAL);
	cr_assert_eq(ipc_barrier_new(NULL, 2), IPC_EINVAL);
	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 0), IPC_EINVAL);
	cr_assert_eq(ipc_barrier_wait(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_barrier_parties(NULL), 0);
	cr_assert_eq(ipc_barrier_n_waiting(NULL), 0);
	cr_assert_not(ipc_barrier_broken(NULL));
}

Test(barrier, one_party_passes_at_once)
{
	cr_assert_eq(ipc_barrier_new(&bar, 1), 0);
	cr_assert_eq(ipc_barrier_wait(bar, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_barrier_wait(bar, IPC_FOREVER), 0);
}

static int wait_index(void *arg)
{
	(void)arg;
	int rc = ipc_barrier_wait(bar, 20000);
	if (rc >= 0)
		return rc;
	return rc == IPC_EBROKEN ? 100 : (rc == IPC_ETIMEDOUT ? 101 : 102);
}

Test(barrier, five_processes_get_indices_zero_to_four)
{
	enum { N = 5 };
	pid_t kids[N];
	int seen = 0;

	cr_assert_eq(ipc_barrier_new(&bar, N), 0);
	cr_assert_eq(ipc_barrier_parties(bar), N);
	for (int i = 0; i < N; i++)
		kids[i] = t_spawn(wait_index, NULL);
	for (int i = 0; i < N; i++) {
		int idx = t_reap(kids[i], 20000);
		cr_assert(idx >= 0 && idx < N, "index %d", idx);
		seen |= 1 << idx;
	}
	cr_assert_eq(seen, (1 << N) - 1, "each index exactly once");
	cr_assert_eq(ipc_barrier_n_waiting(bar), 0);
	cr_assert_not(ipc_barrier_broken(bar));
}

static volatile int *round_seen; /* [round] bitmask of indices */

static int several_rounds(void *arg)
{
	(void)arg;
	for (int r = 0; r < 20; r++) {
		int idx = ipc_barrier_wait(bar, 20000);
		if (idx < 0 || idx > 2)
			return 1;
		__atomic_or_fetch(&round_seen[r], 1 << idx, __ATOMIC_SEQ_CST);
	}
	return 0;
}

Test(barrier, is_reusable_round_after_round)
{
	pid_t kids[3];

	round_seen = t_shared(20 * sizeof(int));
	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(several_rounds, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_reap(kids[i], 20000), 0);
	for (int r = 0; r < 20; r++)
		cr_assert_eq(round_seen[r], 7, "round %d", r);
}

Test(barrier, n_waiting_counts_blocked_parties_and_nowait_is_eagain)
{
	pid_t kids[2];

	cr_assert_eq(ipc_barrier_new(&bar, 4), 0);
	for (int i = 0; i < 2; i++)
		kids[i] = t_spawn(wait_index, NULL);
	for (int i = 0; i < 2; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(ipc_barrier_n_waiting(bar), 2);
	cr_assert_eq(ipc_barrier_wait(bar, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_barrier_n_waiting(bar), 2, "a try does not arrive");
	pid_t third = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(third, 10000));
	cr_assert_eq(ipc_barrier_n_waiting(bar), 3);
	int idx = ipc_barrier_wait(bar, 10000);
	cr_assert_eq(idx, 3, "the last to arrive");
	int seen = 1 << idx;
	for (int i = 0; i < 2; i++)
		seen |= 1 << t_reap(kids[i], 10000);
	seen |= 1 << t_reap(third, 10000);
	cr_assert_eq(seen, 15);
}

Test(barrier, timeout_breaks_it_for_the_others_until_reset)
{
	pid_t kid;
	long t0;

	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	kid = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	t0 = t_now_ms();
	cr_assert_eq(ipc_barrier_wait(bar, 80), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 79);
	cr_assert_eq(t_reap(kid, 10000), 100, "the other got IPC_EBROKEN");
	cr_assert(ipc_barrier_broken(bar));
	cr_assert_eq(ipc_barrier_wait(bar, 1000), IPC_EBROKEN);
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	cr_assert_not(ipc_barrier_broken(bar));
	cr_assert_eq(ipc_barrier_n_waiting(bar), 0);
}

Test(barrier, abort_breaks_current_and_future_waits)
{
	pid_t kid;

	cr_assert_eq(ipc_barrier_new(&bar, 2), 0);
	kid = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_barrier_abort(bar), 0);
	cr_assert_eq(t_reap(kid, 10000), 100);
	cr_assert_eq(ipc_barrier_wait(bar, 0), IPC_EBROKEN);
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	kid = t_spawn(wait_index, NULL);
	int idx = ipc_barrier_wait(bar, 10000);
	int other = t_reap(kid, 10000);
	cr_assert_eq((1 << idx) | (1 << other), 3, "works after reset");
}

Test(barrier, reset_breaks_current_waiters)
{
	pid_t kid;

	cr_assert_eq(ipc_barrier_new(&bar, 2), 0);
	kid = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	cr_assert_eq(t_reap(kid, 10000), 100);
	cr_assert_not(ipc_barrier_broken(bar), "reset leaves it whole");
}

Test(barrier, party_killed_while_waiting_breaks_it_for_the_others)
{
	pid_t a, b;
	long t0;

	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	a = t_spawn(wait_index, NULL);
	b = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	cr_assert(t_blocked_in_futex(b, 10000));
	t0 = t_now_ms();
	cr_assert_eq(t_kill(a), -SIGKILL);
	cr_assert_eq(t_reap(b, 10000), 100, "survivor got IPC_EBROKEN");
	cr_assert_lt(t_now_ms() - t0, 5000, "and within a bounded time");
	cr_assert(ipc_barrier_broken(bar));
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	pid_t kids[2];
	for (int i = 0; i < 2; i++)
		kids[i] = t_spawn(wait_index, NULL);
	int seen = 1 << ipc_barrier_wait(bar, 10000);
	for (int i = 0; i < 2; i++)
		seen |= 1 << t_reap(kids[i], 10000);
	cr_assert_eq(seen, 7, "a full round after reset");
}

Test(barrier, last_arrival_finds_a_dead_party_and_breaks_instead)
{
	pid_t a, b;

	cr_assert_eq(ipc_barrier_new(&bar, 3), 0);
	a = t_spawn(wait_index, NULL);
	b = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	cr_assert(t_blocked_in_futex(b, 10000));
	cr_assert_eq(t_kill(a), -SIGKILL);
	/* Arrive immediately, probably before b's periodic look: either way
	 * nobody is released past a dead party. */
	cr_assert_eq(ipc_barrier_wait(bar, 10000), IPC_EBROKEN);
	cr_assert_eq(t_reap(b, 10000), 100);
}

static int open_and_wait(void *arg)
{
	ipc_barrier *mine;
	(void)arg;
	if (ipc_barrier_open(&mine, name, 0, 0) != 0)
		return 110;
	int rc = ipc_barrier_wait(mine, 20000);
	ipc_barrier_close(mine);
	return rc >= 0 ? rc : 111;
}

Test(barrier, named_barrier_and_party_count_mismatch)
{
	ipc_barrier *other;
	pid_t kid;

	cr_assert_eq(ipc_barrier_open(&bar, name, IPC_CREATE, 2), 0);
	cr_assert_eq(ipc_barrier_open(&other, name, 0, 3), IPC_EINVAL);
	kid = t_spawn(open_and_wait, NULL);
	int idx = ipc_barrier_wait(bar, 10000);
	int theirs = t_reap(kid, 10000);
	cr_assert_eq((1 << idx) | (1 << theirs), 3);
}

/* ---- Damaged shared memory (issue: a count used as a slot index) ------- */

static int wait_on_damaged_count(void *arg)
{
	ipc_barrier *b;
	int rc;

	(void)arg;
	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	rc = ipc_barrier_wait(b, 200);
	T_CHECK(rc == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_barrier_n_waiting(b) < 3, 3);
	T_CHECK(ipc_barrier_broken(b), 4);
	/* reset() repairs it: the count is back in range. */
	T_CHECK(ipc_barrier_reset(b) == 0, 5);
	T_CHECK(ipc_barrier_n_waiting(b) == 0, 6);
	T_CHECK(ipc_barrier_wait(b, IPC_NOWAIT) == IPC_EAGAIN, 7);
	ipc_barrier_close(b);
	return 0;
}

Test(barrier, count_out_of_range_is_enotrecoverable_not_a_crash)
{
	static const uint32_t bad[] = { 3, 4, 4000, 0x80000000u, 0xffffffffu };
	struct barrier_shm *shm;
	size_t size;

	cr_assert_eq(ipc_barrier_open(&bar, name, IPC_CREATE, 3), 0);
	shm = t_map_segment(name, &size);
	cr_assert_not_null(shm);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&shm->b_count, bad[i]);
		cr_assert_eq(
			t_reap(t_spawn(wait_on_damaged_count, NULL), 20000), 0,
			"b_count %#x", bad[i]);
	}
	t_unmap_segment(shm, size);
}

/* ---- action and default timeout (Python's Barrier(action=, timeout=)) -- */

struct action_state {
	_Atomic int runs;	   /* times the action ran */
	_Atomic int runner;	   /* pid of the process that ran it last */
	_Atomic int kill_in_it;	   /* the action SIGKILLs its own process */
	_Atomic int fail;	   /* the action returns nonzero */
	_Atomic int reap_pid;	   /* the action reaps this child first */
	_Atomic int reaped_status; /* and stores its t_reap result here */
};

static struct action_state *act;

static int count_action(void *arg)
{
	struct action_state *a = arg;

	if (a->kill_in_it)
		kill(getpid(), SIGKILL);
	if (a->reap_pid != 0)
		a->reaped_status = t_reap(a->reap_pid, 20000);
	a->runs++;
	a->runner = getpid();
	return a->fail ? 1 : 0;
}

static void make_action_barrier(unsigned parties, int timeout_ms)
{
	ipc_barrier_attr attr = { count_action, NULL, timeout_ms };

	act = t_shared(sizeof(*act));
	cr_assert_not_null(act);
	attr.action_arg = act;
	cr_assert_eq(ipc_barrier_new_attr(&bar, parties, &attr), 0);
}

/* Each party checks, as soon as it is released, that the action of its
 * round has already run: exit 0 if so for three rounds. */
static int rounds_see_action_first(void *arg)
{
	(void)arg;
	for (int r = 1; r <= 3; r++) {
		if (ipc_barrier_wait(bar, 20000) < 0)
			return 1;
		if (act->runs != r)
			return 2;
	}
	return 0;
}

Test(barrier, action_runs_once_per_round_in_the_last_arrival_before_release)
{
	pid_t kids[2];

	make_action_barrier(3, 0);
	for (int i = 0; i < 2; i++)
		kids[i] = t_spawn(rounds_see_action_first, NULL);
	cr_assert_eq(rounds_see_action_first(NULL), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(t_reap(kids[i], 20000), 0);
	cr_assert_eq(act->runs, 3, "exactly once per round");
	cr_assert_not(ipc_barrier_broken(bar));
}

Test(barrier, failing_action_breaks_the_round_for_every_party)
{
	pid_t kid;

	make_action_barrier(2, 0);
	act->fail = 1;
	kid = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_barrier_wait(bar, 10000), IPC_EBROKEN,
		     "the party that ran it too");
	cr_assert_eq(t_reap(kid, 10000), 100);
	cr_assert_eq(act->runs, 1);
	cr_assert(ipc_barrier_broken(bar));
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	act->fail = 0;
	kid = t_spawn(wait_index, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_barrier_wait(bar, 10000), 1);
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(act->runs, 2);
}

Test(barrier, party_killed_inside_the_action_breaks_it)
{
	pid_t w[2], killer;

	make_action_barrier(3, 0);
	for (int i = 0; i < 2; i++)
		w[i] = t_spawn(wait_index, NULL);
	for (int i = 0; i < 2; i++)
		cr_assert(t_blocked_in_futex(w[i], 10000));
	act->kill_in_it = 1;
	killer = t_spawn(wait_index, NULL);
	cr_assert_eq(t_reap(killer, 10000), -SIGKILL);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(t_reap(w[i], 10000), 100, "told: broken");
	cr_assert(ipc_barrier_broken(bar));
	act->kill_in_it = 0;
	cr_assert_eq(ipc_barrier_reset(bar), 0);
	for (int i = 0; i < 2; i++)
		w[i] = t_spawn(wait_index, NULL);
	cr_assert_geq(ipc_barrier_wait(bar, 10000), 0, "usable after reset");
	for (int i = 0; i < 2; i++)
		cr_assert_geq(t_reap(w[i], 10000), 0);
	cr_assert_eq(act->runs, 1);
}

static int wait_with_timeout(void *arg)
{
	int rc = ipc_barrier_wait(bar, *(int *)arg);
	return rc >= 0 ? rc
		       : (rc == IPC_EBROKEN
				  ? 100
				  : (rc == IPC_ETIMEDOUT ? 101 : 102));
}

/* A waiter times out while the last arrival runs the action (the action
 * waits for that waiter to exit): the round breaks. If the waiter's
 * timeout passes before this process even arrives (a very slow machine),
 * the outcome is the same but the action never ran: try again with a
 * longer timeout. */
Test(barrier, waiter_timing_out_during_the_action_breaks_the_round)
{
	int timeout = 500;

	make_action_barrier(2, 0);
	for (int attempt = 0; attempt < 5 && act->runs == 0; attempt++) {
		pid_t kid;
		cr_assert_eq(ipc_barrier_reset(bar), 0);
		timeout *= 2;
		kid = t_spawn(wait_with_timeout, &timeout);
		cr_assert(t_blocked_in_futex(kid, 10000));
		act->reap_pid = kid;
		cr_assert_eq(ipc_barrier_wait(bar, 20000), IPC_EBROKEN);
		if (act->runs == 0)
			cr_assert_eq(t_reap(kid, 10000), 101);
	}
	cr_assert_eq(act->runs, 1, "the action ran");
	cr_assert_eq(act->reaped_status, 101, "the waiter timed out");
	cr_assert(ipc_barrier_broken(bar));
}

Test(barrier, default_timeout_is_used_for_ipc_default_timeout)
{
	ipc_barrier_attr attr = { NULL, NULL, 80 };
	ipc_barrier *b2;
	long t0;

	cr_assert_eq(ipc_barrier_open_attr(&bar, name, IPC_CREATE, 2, &attr),
		     0);
	cr_assert_eq(ipc_barrier_default_timeout(bar), 80);
	t0 = t_now_ms();
	cr_assert_eq(ipc_barrier_wait(bar, IPC_DEFAULT_TIMEOUT), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 79);
	cr_assert(ipc_barrier_broken(bar));
	/* The default belongs to the shared object: openers find it. */
	cr_assert_eq(ipc_barrier_open(&b2, name, 0, 0), 0);
	cr_assert_eq(ipc_barrier_default_timeout(b2), 80);
	ipc_barrier_close(b2);
	attr.timeout_ms = 90;
	cr_assert_eq(ipc_barrier_open_attr(&b2, name, 0, 0, &attr), IPC_EINVAL,
		     "a different default is a mismatch");
	attr.timeout_ms = -5;
	cr_assert_eq(ipc_barrier_new_attr(&b2, 2, &attr), IPC_EINVAL);
	cr_assert_eq(ipc_barrier_new_attr(&b2, 2, NULL), 0);
	cr_assert_eq(ipc_barrier_default_timeout(b2), IPC_FOREVER);
	cr_assert_eq(ipc_barrier_wait(b2, -3), IPC_EINVAL);
	ipc_barrier_close(b2);
	cr_assert_eq(ipc_barrier_default_timeout(NULL), IPC_EINVAL);
}

Test(barrier, default_timeout_is_einval_for_other_objects)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_new(&s, 0, 0), 0);
	cr_assert_eq(ipc_sem_acquire(s, IPC_DEFAULT_TIMEOUT), IPC_EINVAL);
	ipc_sem_close(s);
}
