/* SPDX-License-Identifier: MIT */
/*
 * test_corrupt_sync.c — Lock, RLock, Event, Condition, Semaphore and
 * Barrier whose shared memory a peer has damaged.
 *
 * Each test makes a named object, maps its file as a peer would, writes a
 * bad value into one field that libipc reads as an index, a count, a
 * length, a lock word or a mutex kind (located by offsetof in
 * libipc/sync/layout.h), and then uses the object from a child process.
 * The child checks every return against the exact code the contract
 * promises and exits with the number of the first check that failed; the
 * parent asserts that it exited 0 — not killed by a signal, not hung (every
 * call has a timeout, and the parent kills a child that overstays, so a
 * loop that forgets its deadline fails the test), no out-of-bounds access
 * (the suite also runs under ASan).
 *
 * The mutex fields are glibc's (struct __pthread_mutex_s); the suite needs
 * glibc, as the library does.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "libipc/sync/layout.h"
#include "tests/helpers.h"

#define CHILD_TIMEOUT_MS 30000

static char name[128];
static void *seg;
static size_t seg_size;

static void setup(void)
{
	t_name(name, sizeof(name), "corrupt");
}

static void teardown(void)
{
	t_unmap_segment(seg, seg_size);
	seg = NULL;
	ipc_unlink(name);
}

TestSuite(corrupt, .init = setup, .fini = teardown, .timeout = 120);

/* Map the segment of `name`, made by the test just before. */
static void *map_it(void)
{
	seg = t_map_segment(name, &seg_size);
	cr_assert_not_null(seg, "map %s", name);
	return seg;
}

/* Run fn in a child; it must exit 0. */
static void in_child(int (*fn)(void *arg), void *arg, const char *what)
{
	int rc = t_reap(t_spawn(fn, arg), CHILD_TIMEOUT_MS);

	cr_assert_neq(rc, T_REAP_TIMEOUT, "%s: the child hung", what);
	cr_assert_geq(rc, 0, "%s: the child died by signal %d", what, -rc);
	cr_assert_eq(rc, 0, "%s: check %d failed in the child", what, rc);
}

/* ---- Mutex kinds and lock words (Lock, RLock, Condition, Barrier) ------ */

/* Kinds glibc was never told to make here: plain, priority-inheritance,
 * priority-protection, and garbage. */
static const int bad_kinds[] = {
	0, 1, 32 | 16 | 128, 64 | 128, 0x7fffffff, -1
};

static int lock_is_enotrecoverable(void *arg)
{
	ipc_lock *lk;

	(void)arg;
	T_CHECK(ipc_lock_open(&lk, name, 0) == 0, 1);
	T_CHECK(ipc_lock_acquire(lk, 100) == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_lock_acquire(lk, IPC_NOWAIT) == IPC_ENOTRECOVERABLE, 3);
	T_CHECK(ipc_lock_release(lk) == IPC_ENOTRECOVERABLE, 4);
	ipc_lock_close(lk);
	return 0;
}

Test(corrupt, lock_with_a_damaged_mutex_kind_is_enotrecoverable)
{
	ipc_lock *lk;
	struct lock_shm *shm;

	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	ipc_lock_close(lk);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		char what[32];
		shm->l_mutex.__data.__kind = bad_kinds[i];
		snprintf(what, sizeof(what), "kind %d", bad_kinds[i]);
		in_child(lock_is_enotrecoverable, NULL, what);
	}
}

static int rlock_is_enotrecoverable(void *arg)
{
	ipc_rlock *lk;

	(void)arg;
	T_CHECK(ipc_rlock_open(&lk, name, 0) == 0, 1);
	T_CHECK(ipc_rlock_acquire(lk, 100) == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_rlock_release(lk) == IPC_ENOTRECOVERABLE, 3);
	ipc_rlock_close(lk);
	return 0;
}

Test(corrupt, rlock_with_a_damaged_mutex_kind_is_enotrecoverable)
{
	ipc_rlock *lk;
	struct lock_shm *shm;

	cr_assert_eq(ipc_rlock_open(&lk, name, IPC_CREATE), 0);
	ipc_rlock_close(lk);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		shm->l_mutex.__data.__kind = bad_kinds[i];
		in_child(rlock_is_enotrecoverable, NULL, "rlock kind");
	}
}

/* A lock word naming a thread that does not exist: the lock looks held,
 * every timeout holds, and a wait with no timeout finds out that no such
 * owner can ever release it instead of waiting for ever. */
static int lock_held_by_a_ghost(void *arg)
{
	ipc_lock *lk;

	(void)arg;
	T_CHECK(ipc_lock_open(&lk, name, 0) == 0, 1);
	T_CHECK(ipc_lock_acquire(lk, IPC_NOWAIT) == IPC_EAGAIN, 51);
	T_CHECK(ipc_lock_acquire(lk, 200) == IPC_ETIMEDOUT, 52);
	T_CHECK(ipc_lock_acquire(lk, IPC_FOREVER) == IPC_ENOTRECOVERABLE, 53);
	T_CHECK(ipc_lock_release(lk) == IPC_EPERM, 4);
	ipc_lock_close(lk);
	return 0;
}

/* The same word with the owner-died bit: the next acquirer takes it. */
static int lock_of_a_dead_ghost(void *arg)
{
	ipc_lock *lk;

	(void)arg;
	T_CHECK(ipc_lock_open(&lk, name, 0) == 0, 1);
	T_CHECK(ipc_lock_acquire(lk, 1000) == IPC_EOWNERDEAD, 2);
	T_CHECK(ipc_lock_release(lk) == 0, 3);
	T_CHECK(ipc_lock_acquire(lk, 1000) == 0, 4);
	T_CHECK(ipc_lock_release(lk) == 0, 5);
	ipc_lock_close(lk);
	return 0;
}

#define GHOST_TID 0x3ffffff0 /* above any pid_max */
#define FUTEX_OWNER_DIED_BIT 0x40000000

Test(corrupt, lock_word_of_a_thread_that_does_not_exist_keeps_timeouts)
{
	ipc_lock *lk;
	struct lock_shm *shm;

	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	ipc_lock_close(lk);
	shm = map_it();
	shm->l_mutex.__data.__lock = GHOST_TID;
	in_child(lock_held_by_a_ghost, NULL, "ghost owner");
	shm->l_mutex.__data.__lock = GHOST_TID | FUTEX_OWNER_DIED_BIT;
	in_child(lock_of_a_dead_ghost, NULL, "dead ghost owner");
}

/* A lock word naming a live thread that does not map the lock (a process
 * that exec'd a program, so it holds no mapping of ours): only damage can
 * have written it, and a wait with no timeout says so. A live thread that
 * does map it is a real holder: that wait times out as ever. */
static int lock_held_by_a_stranger(void *arg)
{
	ipc_lock *lk;

	(void)arg;
	T_CHECK(ipc_lock_open(&lk, name, 0) == 0, 1);
	T_CHECK(ipc_lock_acquire(lk, 200) == IPC_ETIMEDOUT, 2);
	T_CHECK(ipc_lock_acquire(lk, IPC_FOREVER) == IPC_ENOTRECOVERABLE, 3);
	ipc_lock_close(lk);
	return 0;
}

Test(corrupt,
     lock_word_of_a_live_thread_that_does_not_map_it_is_enotrecoverable)
{
	ipc_lock *lk;
	struct lock_shm *shm;
	bool execd = false;
	pid_t stranger = fork();

	cr_assert_geq(stranger, 0);
	if (stranger == 0) {
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	ipc_lock_close(lk);
	shm = map_it();
	/* Until its exec is done, the stranger still maps our segment. */
	for (int i = 0; i < 1000 && !execd; i++) {
		char exe[64], target[64] = { 0 };
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)stranger);
		execd = readlink(exe, target, sizeof(target) - 1) > 0 &&
			strstr(target, "sleep") != NULL;
		if (!execd)
			usleep(10000);
	}
	if (execd) {
		shm->l_mutex.__data.__lock = (int)stranger;
		in_child(lock_held_by_a_stranger, NULL, "stranger owner");
		shm->l_mutex.__data.__lock = 0;
	}
	cr_assert_eq(t_kill(stranger), -SIGKILL);
	cr_assert(execd, "the stranger ran /bin/sleep within 10 s");
}

/* ---- Event: the whole state is one word -------------------------------- */

static int event_still_a_flag(void *arg)
{
	ipc_event *ev;

	(void)arg;
	T_CHECK(ipc_event_open(&ev, name, 0) == 0, 1);
	T_CHECK(ipc_event_clear(ev) == 0, 2);
	T_CHECK(!ipc_event_is_set(ev), 3);
	T_CHECK(ipc_event_wait(ev, IPC_NOWAIT) == IPC_EAGAIN, 53);
	T_CHECK(ipc_event_wait(ev, 50) == IPC_ETIMEDOUT, 54);
	T_CHECK(ipc_event_set(ev) == 0, 6);
	T_CHECK(ipc_event_is_set(ev), 7);
	T_CHECK(ipc_event_wait(ev, IPC_NOWAIT) == 0, 8);
	ipc_event_close(ev);
	return 0;
}

Test(corrupt, event_word_with_any_value_still_works_as_a_flag)
{
	static const uint32_t bad[] = { 0x80000000u, 0x80000001u, 0xfffffffeu,
					0xffffffffu, 0x7ffffffeu };
	ipc_event *ev;
	struct event_shm *shm;

	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), 0);
	ipc_event_close(ev);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&shm->e_word, bad[i]);
		in_child(event_still_a_flag, NULL, "event word");
	}
}

/* ---- Condition --------------------------------------------------------- */

static int cond_keeps_its_contract(void *arg)
{
	ipc_cond *c;

	(void)arg;
	T_CHECK(ipc_cond_open(&c, name, 0) == 0, 1);
	/* Not held by this thread: the lock word says so. */
	T_CHECK(ipc_cond_notify(c, 1) == IPC_EPERM, 2);
	T_CHECK(ipc_cond_wait(c, 10) == IPC_EPERM, 3);
	T_CHECK(ipc_cond_acquire(c, 1000) == 0, 4);
	T_CHECK(ipc_cond_notify(c, 1) == 0, 5);
	T_CHECK(ipc_cond_notify_all(c) == 0, 6);
	T_CHECK(ipc_cond_wait(c, 50) == IPC_ETIMEDOUT, 55);
	T_CHECK(ipc_cond_wait(c, IPC_NOWAIT) == IPC_EAGAIN, 56);
	T_CHECK(ipc_cond_release(c) == 0, 9);
	T_CHECK(ipc_cond_release(c) == IPC_EPERM, 10);
	ipc_cond_close(c);
	return 0;
}

Test(corrupt, cond_sequence_and_waiter_count_with_any_value)
{
	static const uint32_t bad[] = { 1, 0x7fffffffu, 0x80000000u,
					0xffffffffu };
	ipc_cond *c;
	struct cond_shm *shm;

	cr_assert_eq(ipc_cond_open(&c, name, IPC_CREATE), 0);
	ipc_cond_close(c);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&shm->c_seq, bad[i]);
		atomic_store(&shm->c_waiters, bad[i]);
		in_child(cond_keeps_its_contract, NULL, "cond fields");
	}
}

/* A lock kind no creation stores is a damaged segment (IPC_EPROTO); the
 * identity of the lock, rewritten, makes the right lock a mismatch
 * (IPC_EINVAL), never a Condition on a lock that is not its own. */
Test(corrupt, cond_lock_kind_and_identity_are_checked_at_open)
{
	static const uint32_t bad_kind[] = { 3, 9, 0xffffffffu };
	struct cond_shm *shm;
	ipc_cond *c;
	ipc_lock *lk;

	cr_assert_eq(ipc_lock_new(&lk), 0);
	cr_assert_eq(ipc_cond_open_with_lock(&c, name, IPC_CREATE, lk), 0);
	ipc_cond_close(c);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad_kind) / sizeof(bad_kind[0]); i++) {
		shm->c_lock_kind = bad_kind[i];
		cr_assert_eq(ipc_cond_open_with_lock(&c, name, 0, lk),
			     IPC_EPROTO, "c_lock_kind %u", bad_kind[i]);
		cr_assert_eq(ipc_cond_open(&c, name, 0), IPC_EPROTO);
	}
	shm->c_lock_kind = 1; /* IPC__KIND_LOCK, as created */
	shm->c_lock_pid ^= 1;
	cr_assert_eq(ipc_cond_open_with_lock(&c, name, 0, lk), IPC_EINVAL);
	ipc_lock_close(lk);
}

static int cond_is_enotrecoverable(void *arg)
{
	ipc_cond *c;

	(void)arg;
	T_CHECK(ipc_cond_open(&c, name, 0) == 0, 1);
	T_CHECK(ipc_cond_acquire(c, 100) == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_cond_wait(c, 10) == IPC_EPERM, 3);
	ipc_cond_close(c);
	return 0;
}

Test(corrupt, cond_with_a_damaged_mutex_kind_is_enotrecoverable)
{
	ipc_cond *c;
	struct cond_shm *shm;

	cr_assert_eq(ipc_cond_open(&c, name, IPC_CREATE), 0);
	ipc_cond_close(c);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		shm->c_mutex.__data.__kind = bad_kinds[i];
		in_child(cond_is_enotrecoverable, NULL, "cond kind");
	}
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* Waits for a predicate that never holds; the lock is damaged while it
 * sleeps, so reacquiring fails: wait_for must say so at once (the lock is
 * not held), not go round again without the lock until its deadline. */
static int cond_wait_for_loses_its_lock(void *arg)
{
	ipc_cond *c;

	(void)arg;
	T_CHECK(ipc_cond_open(&c, name, 0) == 0, 1);
	T_CHECK(ipc_cond_acquire(c, 1000) == 0, 2);
	T_CHECK(ipc_cond_wait_for(c, never, NULL, 20000) == IPC_ENOTRECOVERABLE,
		3);
	ipc_cond_close(c);
	return 0;
}

Test(corrupt, cond_wait_for_whose_lock_is_damaged_while_it_sleeps_returns)
{
	ipc_cond *c;
	struct cond_shm *shm;
	pid_t kid;

	cr_assert_eq(ipc_cond_open(&c, name, IPC_CREATE), 0);
	shm = map_it();
	kid = t_spawn(cond_wait_for_loses_its_lock, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_cond_acquire(c, 10000), 0, "the waiter released it");
	shm->c_mutex.__data.__kind = bad_kinds[0];
	cr_assert_eq(ipc_cond_notify(c, 1), 0);
	cr_assert_eq(t_reap(kid, CHILD_TIMEOUT_MS), 0,
		     "wait_for must return IPC_ENOTRECOVERABLE, not time out");
	ipc_cond_close(c);
}

/* ---- Semaphore --------------------------------------------------------- */

static int sem_is_enotrecoverable(void *arg)
{
	ipc_sem *s;

	(void)arg;
	T_CHECK(ipc_sem_open(&s, name, 0, 0, 0) == 0, 1);
	T_CHECK(ipc_sem_value(s) == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_sem_acquire(s, IPC_NOWAIT) == IPC_ENOTRECOVERABLE, 3);
	T_CHECK(ipc_sem_acquire(s, 50) == IPC_ENOTRECOVERABLE, 4);
	T_CHECK(ipc_sem_release(s) == IPC_ENOTRECOVERABLE, 5);
	ipc_sem_close(s);
	return 0;
}

Test(corrupt, sem_value_above_the_maximum_is_enotrecoverable)
{
	ipc_sem *s;
	struct sem_shm *shm;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 0), 0);
	ipc_sem_close(s);
	shm = map_it();
	atomic_store(&shm->s_value, 0x80000000u);
	in_child(sem_is_enotrecoverable, NULL, "value 2^31");
	atomic_store(&shm->s_value, 0xffffffffu);
	in_child(sem_is_enotrecoverable, NULL, "value 2^32-1");
}

static int sem_counts_with_garbage_waiters(void *arg)
{
	ipc_sem *s;

	(void)arg;
	T_CHECK(ipc_sem_open(&s, name, 0, 0, 0) == 0, 1);
	T_CHECK(ipc_sem_release(s) == 0, 2);
	T_CHECK(ipc_sem_value(s) == 1, 3);
	T_CHECK(ipc_sem_acquire(s, IPC_NOWAIT) == 0, 4);
	T_CHECK(ipc_sem_acquire(s, 50) == IPC_ETIMEDOUT, 57);
	ipc_sem_close(s);
	return 0;
}

Test(corrupt, sem_waiter_count_with_any_value_costs_nothing_but_syscalls)
{
	ipc_sem *s;
	struct sem_shm *shm;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 0, 0), 0);
	ipc_sem_close(s);
	shm = map_it();
	atomic_store(&shm->s_waiters, 0xffffffffu);
	in_child(sem_counts_with_garbage_waiters, NULL, "waiters");
}

Test(corrupt, sem_ceiling_out_of_range_is_eproto_at_open)
{
	ipc_sem *s;
	struct sem_shm *shm;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 3), 0);
	ipc_sem_close(s);
	shm = map_it();
	shm->s_max = 0x80000000u;
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), IPC_EPROTO);
}

/* ---- Barrier ----------------------------------------------------------- */

static int barrier_count_refused(void *arg)
{
	ipc_barrier *b;

	(void)arg;
	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	T_CHECK(ipc_barrier_n_waiting(b) == 0, 2);
	T_CHECK(ipc_barrier_wait(b, IPC_NOWAIT) == IPC_ENOTRECOVERABLE, 3);
	T_CHECK(ipc_barrier_broken(b), 4);
	T_CHECK(ipc_barrier_wait(b, 100) == IPC_EBROKEN, 5);
	T_CHECK(ipc_barrier_reset(b) == 0, 6);
	T_CHECK(ipc_barrier_wait(b, IPC_NOWAIT) == IPC_EAGAIN, 7);
	ipc_barrier_close(b);
	return 0;
}

Test(corrupt, barrier_count_out_of_range_is_enotrecoverable)
{
	static const uint32_t bad[] = { 3,    64,	   4095,
					4096, 0x7fffffffu, 0xffffffffu };
	ipc_barrier *b;
	struct barrier_shm *shm;

	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 3), 0);
	ipc_barrier_close(b);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&shm->b_count, bad[i]);
		in_child(barrier_count_refused, NULL, "b_count");
	}
}

Test(corrupt, barrier_party_count_out_of_range_is_eproto_at_open)
{
	static const uint32_t bad[] = { 0, 4, 4097, 0xffffffffu };
	ipc_barrier *b;
	struct barrier_shm *shm;

	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 3), 0);
	ipc_barrier_close(b);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		shm->b_parties = bad[i];
		cr_assert_eq(ipc_barrier_open(&b, name, 0, 0), IPC_EPROTO,
			     "b_parties %u (the file has 3 slots)", bad[i]);
	}
}

/* A default timeout no creation stores (0, below IPC_FOREVER) is a
 * damaged segment; and one rewritten after open changes nothing for a
 * handle that already has it. */
Test(corrupt, barrier_default_timeout_out_of_range_is_eproto)
{
	const int32_t bad[] = { 0, -2, -1000, INT32_MIN };
	struct barrier_shm *shm;
	ipc_barrier *b;

	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 3), 0);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ipc_barrier *b2;
		shm->b_timeout_ms = bad[i];
		cr_assert_eq(ipc_barrier_open(&b2, name, 0, 0), IPC_EPROTO,
			     "b_timeout_ms %d", bad[i]);
		cr_assert_eq(ipc_barrier_default_timeout(b), IPC_FOREVER);
	}
	ipc_barrier_close(b);
}

static ipc_barrier *bar;

/* A child that waits on the barrier (20 s at most) and must get *arg. */
static int barrier_waiter_gets(void *arg)
{
	ipc_barrier *b;
	int rc;

	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	rc = ipc_barrier_wait(b, 20000);
	ipc_barrier_close(b);
	return rc == *(const int *)arg ? 0 : 2;
}

/* Make a 3-party barrier and start a waiter that must get *want; return
 * once it sleeps. */
static pid_t sleeper_on_three(ipc_barrier **b, int *want)
{
	pid_t kid;

	cr_assert_eq(ipc_barrier_open(b, name, IPC_CREATE, 3), 0);
	kid = t_spawn(barrier_waiter_gets, want);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_barrier_n_waiting(*b), 1);
	return kid;
}

/* Start a waiter on a 3-party barrier, damage `field` with `value` while
 * it sleeps, and check that it returns `want`. */
static void damage_under_a_sleeper(_Atomic uint32_t *(*field)(void *shm),
				   uint32_t value, int want)
{
	ipc_barrier *b;
	pid_t kid = sleeper_on_three(&b, &want);

	atomic_store(field(map_it()), value);
	cr_assert_eq(t_reap(kid, CHILD_TIMEOUT_MS), 0);
	cr_assert(ipc_barrier_broken(b) || want == IPC_EBROKEN);
	ipc_barrier_close(b);
}

static int barrier_party_of_two(void *arg)
{
	int rc;

	(void)arg;
	rc = ipc_barrier_wait(bar, 20000);
	return rc == 0 || rc == 1 ? 0 : 2;
}

/* The count a handle found at open is the one it keeps: a peer that
 * rewrites b_parties later changes nothing for it. And a b_gen near 2^32
 * still ends rounds, and wraps below 2^31. */
Test(corrupt, barrier_parties_and_generation_rewritten_while_idle)
{
	struct barrier_shm *shm;
	pid_t kid;
	int rc;

	cr_assert_eq(ipc_barrier_open(&bar, name, IPC_CREATE, 2), 0);
	shm = map_it();
	shm->b_parties = 4096;
	atomic_store(&shm->b_gen, 0xfffffff0u);
	cr_assert_eq(ipc_barrier_parties(bar), 2);
	kid = t_spawn(barrier_party_of_two, NULL); /* inherits the handle */
	rc = ipc_barrier_wait(bar, 20000);
	cr_assert(rc == 0 || rc == 1, "index %d", rc);
	cr_assert_eq(t_reap(kid, CHILD_TIMEOUT_MS), 0);
	cr_assert_lt(atomic_load(&shm->b_gen), 0x80000000u, "b_gen wrapped");
	ipc_barrier_close(bar);
	bar = NULL;
}

static _Atomic uint32_t *gen_field(void *shm)
{
	return &((struct barrier_shm *)shm)->b_gen;
}

static _Atomic uint32_t *first_outcome_field(void *shm)
{
	return &((struct barrier_shm *)shm)->b_slots[0].s_result;
}

/* b_gen moved under a sleeper with no outcome in its slot: no barrier
 * call does that. The sleeper must neither spin on the changed word nor
 * wait out its timeout. */
Test(corrupt, barrier_generation_moved_under_a_sleeper_is_enotrecoverable)
{
	damage_under_a_sleeper(gen_field, 12345, IPC_ENOTRECOVERABLE);
}

Test(corrupt, barrier_slot_outcome_with_an_unknown_value_reads_as_broken)
{
	damage_under_a_sleeper(first_outcome_field, 0xdeadbeefu, IPC_EBROKEN);
}

static int barrier_is_enotrecoverable(void *arg)
{
	ipc_barrier *b;

	(void)arg;
	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	T_CHECK(ipc_barrier_wait(b, 100) == IPC_ENOTRECOVERABLE, 2);
	T_CHECK(ipc_barrier_wait(b, IPC_NOWAIT) == IPC_ENOTRECOVERABLE, 3);
	T_CHECK(ipc_barrier_abort(b) == IPC_ENOTRECOVERABLE, 4);
	T_CHECK(ipc_barrier_reset(b) == IPC_ENOTRECOVERABLE, 5);
	ipc_barrier_close(b);
	return 0;
}

static int barrier_slot_is_enotrecoverable(void *arg)
{
	ipc_barrier *b;

	(void)arg;
	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	T_CHECK(ipc_barrier_wait(b, 100) == IPC_ENOTRECOVERABLE, 2);
	ipc_barrier_close(b);
	return 0;
}

Test(corrupt, barrier_with_a_damaged_mutex_kind_is_enotrecoverable)
{
	ipc_barrier *b;
	struct barrier_shm *shm;

	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 3), 0);
	ipc_barrier_close(b);
	shm = map_it();
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		int good = shm->b_mutex.__data.__kind;
		shm->b_mutex.__data.__kind = bad_kinds[i];
		in_child(barrier_is_enotrecoverable, NULL, "b_mutex kind");
		shm->b_mutex.__data.__kind = good;
		shm->b_slots[0].s_lock.__data.__kind = bad_kinds[i];
		in_child(barrier_slot_is_enotrecoverable, NULL, "slot kind");
		shm->b_slots[0].s_lock.__data.__kind = good;
	}
}

/* b_mutex's kind damaged under a sleeper: its looks under b_mutex fail at
 * once with IPC_ENOTRECOVERABLE, which it must return, as a wait that
 * starts on such a barrier does, rather than sleep on until its deadline
 * (IPC_ETIMEDOUT after 20 s; for ever without one). */
Test(corrupt, barrier_mutex_kind_damaged_under_a_sleeper_is_enotrecoverable)
{
	int want = IPC_ENOTRECOVERABLE;
	struct barrier_shm *shm;
	ipc_barrier *b;
	pid_t kid = sleeper_on_three(&b, &want);

	shm = map_it();
	shm->b_mutex.__data.__kind = bad_kinds[0];
	cr_assert_eq(t_reap(kid, CHILD_TIMEOUT_MS), 0,
		     "the sleeper must return IPC_ENOTRECOVERABLE");
	ipc_barrier_close(b);
}

static int barrier_lock_held_by_a_ghost(void *arg)
{
	ipc_barrier *b;

	(void)arg;
	T_CHECK(ipc_barrier_open(&b, name, 0, 0) == 0, 1);
	T_CHECK(ipc_barrier_wait(b, IPC_NOWAIT) == IPC_EAGAIN, 58);
	T_CHECK(ipc_barrier_wait(b, 200) == IPC_ETIMEDOUT, 59);
	T_CHECK(ipc_barrier_abort(b) == IPC_EBUSY, 60);
	T_CHECK(ipc_barrier_reset(b) == IPC_EBUSY, 61);
	ipc_barrier_close(b);
	return 0;
}

Test(corrupt, barrier_lock_word_of_a_thread_that_does_not_exist)
{
	ipc_barrier *b;
	struct barrier_shm *shm;

	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 3), 0);
	ipc_barrier_close(b);
	shm = map_it();
	shm->b_mutex.__data.__lock = GHOST_TID;
	in_child(barrier_lock_held_by_a_ghost, NULL, "ghost b_mutex");
}
