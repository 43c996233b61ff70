/* SPDX-License-Identifier: MIT */
/*
 * test_cpython_locks.c — CPython's Lib/test/lock_tests.py, ported to C
 * against libipc: the same scenarios, with threads as the original uses
 * (its Bunch of threads), each test naming the Python test it ports.
 *
 * How the port differs, always for a stated reason:
 *   - Python's _wait() (a 10 ms sleep) stands in for "the threads have got
 *     as far as they can": here the test waits, with a generous timeout,
 *     until each thread is asleep in the kernel (its /proc syscall), or
 *     until a counter says so. Verdicts never depend on speed.
 *   - Timeouts: Python's assertTimeout accepts 0.6x to 10x the timeout;
 *     the lower bound is kept, the upper one is dropped (a loaded machine
 *     may take longer; only an early return is a bug).
 *   - False / exceptions become libipc's codes: acquire(False) failing is
 *     IPC_EAGAIN, a timed-out acquire IPC_ETIMEDOUT, RuntimeError on a bad
 *     release IPC_EPERM, ValueError on a BoundedSemaphore IPC_EINVAL,
 *     BrokenBarrierError IPC_EBROKEN (or IPC_ETIMEDOUT for the one waiter
 *     whose own timeout broke the barrier).
 *   - On purpose: a libipc Lock has mutex semantics. Acquiring it again in
 *     the holding thread is IPC_EDEADLK instead of a deadlock, and a
 *     release by another thread is IPC_EPERM (Python's Lock allows both).
 *     The ports of LockTests.test_reacquire and test_different_thread
 *     assert that, and docs/guide.md lists it.
 *   - Python-only tests have no port: test_repr, test_with (context
 *     managers), test_thread_leak (threading.enumerate),
 *     test_reset_internal_locks, test__is_owned's private method
 *     (ported through locked() and a try from another thread).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

#define LONG_MS 20000 /* "forever", for a wait that must not time out */

TestSuite(cpython_locks, .timeout = 60);

/* ---- Bunch: n threads running the same function ----------------------- */

#define BUNCH_MAX 16

struct bunch {
	void (*f)(struct bunch *b, int i);
	int n;
	pthread_t th[BUNCH_MAX];
	_Atomic pid_t tid[BUNCH_MAX];
	_Atomic bool done[BUNCH_MAX]; /* thread i has returned from f */
	volatile int started, finished;
	bool wait_before_exit;
	ipc_event *can_exit;
	_Atomic int failed; /* a thread's check failed: which line */
};

struct bunch_arg {
	struct bunch *b;
	int i;
};

static struct bunch_arg bunch_args[BUNCH_MAX];

static void *bunch_task(void *arg)
{
	struct bunch_arg *a = arg;
	struct bunch *b = a->b;

	atomic_store(&b->tid[a->i], (pid_t)syscall(SYS_gettid));
	__atomic_add_fetch(&b->started, 1, __ATOMIC_SEQ_CST);
	b->f(b, a->i);
	atomic_store(&b->done[a->i], true);
	__atomic_add_fetch(&b->finished, 1, __ATOMIC_SEQ_CST);
	if (b->wait_before_exit)
		ipc_event_wait(b->can_exit, LONG_MS);
	return NULL;
}

static void bunch_start(struct bunch *b, void (*f)(struct bunch *, int), int n,
			bool wait_before_exit)
{
	cr_assert_leq(n, BUNCH_MAX);
	*b = (struct bunch){ .f = f,
			     .n = n,
			     .wait_before_exit = wait_before_exit };
	cr_assert_eq(ipc_event_new(&b->can_exit), 0);
	for (int i = 0; i < n; i++) {
		bunch_args[i] = (struct bunch_arg){ b, i };
		cr_assert_eq(pthread_create(&b->th[i], NULL, bunch_task,
					    &bunch_args[i]),
			     0);
	}
}

static void bunch_wait_for_started(struct bunch *b)
{
	cr_assert(t_wait_count(&b->started, b->n, LONG_MS));
}

/* Every thread of the bunch asleep in a futex (blocked on the object). */
static void bunch_wait_all_blocked(struct bunch *b)
{
	bunch_wait_for_started(b);
	for (int i = 0; i < b->n; i++)
		cr_assert(t_blocked_in_futex(atomic_load(&b->tid[i]), LONG_MS),
			  "thread %d never blocked", i);
}

/* Wait for every thread to finish f and join them; check their checks. */
static void bunch_wait_for_finished(struct bunch *b)
{
	cr_assert(t_wait_count(&b->finished, b->n, LONG_MS));
	b->wait_before_exit = false;
	ipc_event_set(b->can_exit);
	for (int i = 0; i < b->n; i++)
		pthread_join(b->th[i], NULL);
	ipc_event_close(b->can_exit);
	cr_assert_eq(atomic_load(&b->failed), 0,
		     "a thread's check failed at line %d",
		     atomic_load(&b->failed));
}

static void bunch_do_finish(struct bunch *b)
{
	ipc_event_set(b->can_exit);
}

/* A check inside a thread: record the line, never cr_assert there. */
#define T_EXPECT(b, cond)                                     \
	do {                                                  \
		if (!(cond))                                  \
			atomic_store(&(b)->failed, __LINE__); \
	} while (0)

/* Python's assertTimeout, lower bound only (see the top of the file). */
#define ASSERT_TIMEOUT(elapsed_ms, expected_ms) \
	cr_assert_geq((elapsed_ms), (expected_ms)*6 / 10)

/* ---- BaseLockTests, for Lock and RLock -------------------------------- */

struct lock_ops {
	int (*make)(void **lk);
	int (*acquire)(void *lk, int timeout_ms);
	int (*release)(void *lk);
	int (*locked)(void *lk);
	void (*close)(void *lk);
};

/* The five calls of one lock type, as struct lock_ops wants them. */
#define LOCK_OPS(type)                                                      \
	static int type##_make(void **lk)                                   \
	{                                                                   \
		return ipc_##type##_new((ipc_##type **)lk);                 \
	}                                                                   \
	static int type##_acquire(void *lk, int ms)                         \
	{                                                                   \
		return ipc_##type##_acquire(lk, ms);                        \
	}                                                                   \
	static int type##_release(void *lk)                                 \
	{                                                                   \
		return ipc_##type##_release(lk);                            \
	}                                                                   \
	static int type##_locked(void *lk)                                  \
	{                                                                   \
		return ipc_##type##_locked(lk);                             \
	}                                                                   \
	static void type##_close(void *lk)                                  \
	{                                                                   \
		ipc_##type##_close(lk);                                     \
	}                                                                   \
	static const struct lock_ops type##_ops = {                         \
		type##_make, type##_acquire, type##_release, type##_locked, \
		type##_close                                                \
	};

LOCK_OPS(lock)
LOCK_OPS(rlock)

static const struct lock_ops *ops;
static void *the_lock;
static _Atomic int result_a, result_b;
static _Atomic long result_ms;

/* test_constructor, test_acquire_destroy, test_acquire_release,
 * test_try_acquire */
static void base_lock_simple(const struct lock_ops *o)
{
	void *lk;

	cr_assert_eq(o->make(&lk), 0);
	o->close(lk); /* test_constructor */
	cr_assert_eq(o->make(&lk), 0);
	cr_assert_eq(o->acquire(lk, IPC_FOREVER), 0);
	o->close(lk); /* test_acquire_destroy */
	cr_assert_eq(o->make(&lk), 0);
	cr_assert_eq(o->acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(o->release(lk), 0); /* test_acquire_release */
	cr_assert_eq(o->acquire(lk, IPC_NOWAIT), 0);
	cr_assert_eq(o->release(lk), 0); /* test_try_acquire */
	o->close(lk);
}

Test(cpython_locks, lock_base_simple)
{
	base_lock_simple(&lock_ops);
}

Test(cpython_locks, rlock_base_simple)
{
	base_lock_simple(&rlock_ops);
}

static void try_acquire_f(struct bunch *b, int i)
{
	(void)b;
	(void)i;
	atomic_store(&result_a, ops->acquire(the_lock, IPC_NOWAIT));
}

/* BaseLockTests.test_try_acquire_contended */
static void try_acquire_contended(const struct lock_ops *o)
{
	struct bunch b;

	ops = o;
	cr_assert_eq(o->make(&the_lock), 0);
	cr_assert_eq(o->acquire(the_lock, IPC_FOREVER), 0);
	bunch_start(&b, try_acquire_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_EAGAIN, "acquire(False)");
	cr_assert_eq(o->release(the_lock), 0);
	o->close(the_lock);
}

Test(cpython_locks, lock_try_acquire_contended)
{
	try_acquire_contended(&lock_ops);
}

Test(cpython_locks, rlock_try_acquire_contended)
{
	try_acquire_contended(&rlock_ops);
}

static void acquire_release_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ops->acquire(the_lock, LONG_MS) == 0);
	T_EXPECT(b, ops->release(the_lock) == 0);
}

/* BaseLockTests.test_acquire_contended */
static void acquire_contended(const struct lock_ops *o)
{
	struct bunch b;

	ops = o;
	cr_assert_eq(o->make(&the_lock), 0);
	cr_assert_eq(o->acquire(the_lock, IPC_FOREVER), 0);
	bunch_start(&b, acquire_release_f, 5, false);
	bunch_wait_all_blocked(&b);
	cr_assert_eq(b.finished, 0);
	cr_assert_eq(o->release(the_lock), 0);
	bunch_wait_for_finished(&b);
	cr_assert_eq(b.finished, 5);
	o->close(the_lock);
}

Test(cpython_locks, lock_acquire_contended)
{
	acquire_contended(&lock_ops);
}

Test(cpython_locks, rlock_acquire_contended)
{
	acquire_contended(&rlock_ops);
}

static void timed_acquire_f(struct bunch *b, int i)
{
	long t0 = t_now_ms();

	(void)b;
	(void)i;
	atomic_store(&result_a, ops->acquire(the_lock, 500));
	atomic_store(&result_ms, t_now_ms() - t0);
}

/* BaseLockTests.test_timeout. Python's ValueError for a negative timeout
 * is IPC_EINVAL; its TIMEOUT_MAX and "non-blocking with a timeout" have no
 * counterpart (one int timeout_ms argument). */
static void lock_timeout(const struct lock_ops *o)
{
	struct bunch b;
	long t0;

	ops = o;
	cr_assert_eq(o->make(&the_lock), 0);
	cr_assert_eq(o->acquire(the_lock, -100), IPC_EINVAL);
	cr_assert_eq(o->acquire(the_lock, 0x7fffffff), 0, "a huge timeout");
	cr_assert_eq(o->release(the_lock), 0);
	t0 = t_now_ms();
	cr_assert_eq(o->acquire(the_lock, 5000), 0);
	cr_assert_lt(t_now_ms() - t0, 5000, "did not wait for the timeout");
	bunch_start(&b, timed_acquire_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_ETIMEDOUT);
	ASSERT_TIMEOUT(atomic_load(&result_ms), 500);
	cr_assert_eq(o->release(the_lock), 0);
	o->close(the_lock);
}

Test(cpython_locks, lock_timeout)
{
	lock_timeout(&lock_ops);
}

Test(cpython_locks, rlock_timeout)
{
	lock_timeout(&rlock_ops);
}

/* ---- LockTests --------------------------------------------------------- */

static void reacquire_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ops->acquire(the_lock, LONG_MS) == 0);
	atomic_store(&result_a, ops->acquire(the_lock, LONG_MS));
	atomic_store(&result_b, ops->release(the_lock));
}

/* LockTests.test_reacquire. Python: the thread's second acquire blocks
 * until the main thread releases the lock the thread holds. libipc's Lock
 * has mutex semantics (on purpose): the second acquire is IPC_EDEADLK at
 * once, and only the holder can release it. */
Test(cpython_locks, lock_reacquire_is_edeadlk_not_a_deadlock)
{
	struct bunch b;

	ops = &lock_ops;
	cr_assert_eq(ipc_lock_new((ipc_lock **)&the_lock), 0);
	bunch_start(&b, reacquire_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_EDEADLK);
	cr_assert_eq(atomic_load(&result_b), 0, "released by its holder");
	cr_assert_eq(ipc_lock_locked(the_lock), 0);
	ipc_lock_close(the_lock);
}

static void release_f(struct bunch *b, int i)
{
	(void)b;
	(void)i;
	atomic_store(&result_a, ops->release(the_lock));
}

/* LockTests.test_different_thread. Python: a Lock can be released from
 * another thread. libipc (mutex semantics, on purpose): IPC_EPERM, and the
 * lock stays held by its owner. */
Test(cpython_locks, lock_release_from_a_different_thread_is_eperm)
{
	struct bunch b;

	ops = &lock_ops;
	cr_assert_eq(ipc_lock_new((ipc_lock **)&the_lock), 0);
	cr_assert_eq(ipc_lock_acquire(the_lock, IPC_FOREVER), 0);
	bunch_start(&b, release_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_EPERM);
	cr_assert_eq(ipc_lock_locked(the_lock), 1);
	cr_assert_eq(ipc_lock_release(the_lock), 0);
	cr_assert_eq(ipc_lock_acquire(the_lock, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_release(the_lock), 0);
	ipc_lock_close(the_lock);
}

static void hold_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ops->acquire(the_lock, LONG_MS) == 0);
}

static void try_then_release_f(struct bunch *b, int i)
{
	(void)i;
	atomic_store(&result_a, ops->acquire(the_lock, 10));
	(void)b;
}

/* LockTests.test_state_after_timeout (issue #11618). The timed acquire
 * runs in a second thread: in the holding thread it would be IPC_EDEADLK
 * (mutex semantics). */
Test(cpython_locks, lock_state_after_timeout)
{
	struct bunch b;

	ops = &lock_ops;
	cr_assert_eq(ipc_lock_new((ipc_lock **)&the_lock), 0);
	cr_assert_eq(ipc_lock_acquire(the_lock, IPC_FOREVER), 0);
	bunch_start(&b, try_then_release_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_lock_release(the_lock), 0);
	cr_assert_eq(ipc_lock_locked(the_lock), 0);
	cr_assert_eq(ipc_lock_acquire(the_lock, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_release(the_lock), 0);
	ipc_lock_close(the_lock);
}

/* ---- RLockTests -------------------------------------------------------- */

/* RLockTests.test_reacquire and test_release_unacquired (RuntimeError:
 * IPC_EPERM). */
Test(cpython_locks, rlock_reacquire_and_release_unacquired)
{
	ipc_rlock *lk;

	cr_assert_eq(ipc_rlock_new(&lk), 0);
	cr_assert_eq(ipc_rlock_release(lk), IPC_EPERM);
	cr_assert_eq(ipc_rlock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_release(lk), 0);
	cr_assert_eq(ipc_rlock_acquire(lk, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_release(lk), 0);
	cr_assert_eq(ipc_rlock_release(lk), 0);
	cr_assert_eq(ipc_rlock_release(lk), IPC_EPERM);
	ipc_rlock_close(lk);
}

/* RLockTests.test_different_thread: cannot release from another thread. */
Test(cpython_locks, rlock_release_from_a_different_thread_is_eperm)
{
	struct bunch b;

	ops = &rlock_ops;
	cr_assert_eq(ipc_rlock_new((ipc_rlock **)&the_lock), 0);
	bunch_start(&b, hold_f, 1, true);
	cr_assert(t_wait_count(&b.finished, 1, LONG_MS));
	cr_assert_eq(ipc_rlock_release(the_lock), IPC_EPERM);
	bunch_do_finish(&b);
	bunch_wait_for_finished(&b);
	ipc_rlock_close(the_lock);
}

/* RLockTests.test__is_owned, through what libipc offers: locked() says
 * held (by anyone) and a try from another thread says "not yours". */
Test(cpython_locks, rlock_is_owned)
{
	struct bunch b;

	ops = &rlock_ops;
	cr_assert_eq(ipc_rlock_new((ipc_rlock **)&the_lock), 0);
	cr_assert_eq(ipc_rlock_locked(the_lock), 0);
	cr_assert_eq(ipc_rlock_acquire(the_lock, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_locked(the_lock), 1);
	cr_assert_eq(ipc_rlock_acquire(the_lock, IPC_FOREVER), 0);
	bunch_start(&b, try_acquire_f, 1, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&result_a), IPC_EAGAIN, "not owned there");
	cr_assert_eq(ipc_rlock_release(the_lock), 0);
	cr_assert_eq(ipc_rlock_locked(the_lock), 1);
	cr_assert_eq(ipc_rlock_release(the_lock), 0);
	cr_assert_eq(ipc_rlock_locked(the_lock), 0);
	ipc_rlock_close(the_lock);
}

/* ---- EventTests -------------------------------------------------------- */

static ipc_event *evt;
static _Atomic int ev_results1, ev_results2; /* how many returned 0 */

/* EventTests.test_is_set */
Test(cpython_locks, event_is_set)
{
	cr_assert_eq(ipc_event_new(&evt), 0);
	cr_assert_not(ipc_event_is_set(evt));
	ipc_event_set(evt);
	cr_assert(ipc_event_is_set(evt));
	ipc_event_set(evt);
	cr_assert(ipc_event_is_set(evt));
	ipc_event_clear(evt);
	cr_assert_not(ipc_event_is_set(evt));
	ipc_event_clear(evt);
	cr_assert_not(ipc_event_is_set(evt));
	ipc_event_close(evt);
}

static void ev_wait_twice_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ipc_event_wait(evt, LONG_MS) == 0);
	atomic_fetch_add(&ev_results1, 1);
	T_EXPECT(b, ipc_event_wait(evt, LONG_MS) == 0);
	atomic_fetch_add(&ev_results2, 1);
}

/* EventTests._check_notify: all threads get notified. */
static void event_check_notify(void)
{
	struct bunch b;

	atomic_store(&ev_results1, 0);
	atomic_store(&ev_results2, 0);
	bunch_start(&b, ev_wait_twice_f, 5, false);
	bunch_wait_all_blocked(&b);
	cr_assert_eq(atomic_load(&ev_results1), 0);
	ipc_event_set(evt);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&ev_results1), 5);
	cr_assert_eq(atomic_load(&ev_results2), 5);
}

/* EventTests.test_notify */
Test(cpython_locks, event_notify)
{
	cr_assert_eq(ipc_event_new(&evt), 0);
	event_check_notify();
	ipc_event_set(evt);
	ipc_event_clear(evt);
	event_check_notify();
	ipc_event_close(evt);
}

static _Atomic int ev_try[5], ev_timed[5];
static _Atomic long ev_ms[5];

static void ev_timeout_f(struct bunch *b, int i)
{
	long t0;

	(void)b;
	atomic_store(&ev_try[i], ipc_event_wait(evt, 0));
	t0 = t_now_ms();
	atomic_store(&ev_timed[i], ipc_event_wait(evt, 500));
	atomic_store(&ev_ms[i], t_now_ms() - t0);
}

/* EventTests.test_timeout: wait(0.0) False is IPC_EAGAIN, a timed-out
 * wait IPC_ETIMEDOUT. */
Test(cpython_locks, event_timeout)
{
	struct bunch b;

	cr_assert_eq(ipc_event_new(&evt), 0);
	bunch_start(&b, ev_timeout_f, 5, false);
	bunch_wait_for_finished(&b);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(atomic_load(&ev_try[i]), IPC_EAGAIN);
		cr_assert_eq(atomic_load(&ev_timed[i]), IPC_ETIMEDOUT);
		ASSERT_TIMEOUT(atomic_load(&ev_ms[i]), 500);
	}
	ipc_event_set(evt);
	bunch_start(&b, ev_timeout_f, 5, false);
	bunch_wait_for_finished(&b);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(atomic_load(&ev_try[i]), 0);
		cr_assert_eq(atomic_load(&ev_timed[i]), 0);
	}
	ipc_event_close(evt);
}

static void ev_wait_once_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ipc_event_wait(evt, LONG_MS) == 0);
}

/* EventTests.test_set_and_clear (issue #13502): wait() is true even when
 * the event is cleared before the waiter runs. Python sleeps 0.5 s for
 * the threads to block; here they are seen asleep. */
Test(cpython_locks, event_set_and_clear)
{
	struct bunch b;

	cr_assert_eq(ipc_event_new(&evt), 0);
	bunch_start(&b, ev_wait_once_f, 5, false);
	bunch_wait_all_blocked(&b);
	ipc_event_set(evt);
	ipc_event_clear(evt);
	bunch_wait_for_finished(&b);
	ipc_event_close(evt);
}

/* ---- ConditionTests ---------------------------------------------------- */

static ipc_cond *cond;

/* ConditionTests.test_acquire. Python's lock.acquire(False) from the
 * thread that holds it through the Condition is False; a libipc Lock says
 * IPC_EDEADLK there (mutex semantics), which is "not acquired" too. */
Test(cpython_locks, condition_acquire)
{
	ipc_lock *lock;

	cr_assert_eq(ipc_cond_new(&cond), 0);
	cr_assert_eq(ipc_cond_acquire(cond, IPC_FOREVER), 0);
	cr_assert_eq(ipc_cond_acquire(cond, IPC_FOREVER), 0, "an RLock");
	cr_assert_eq(ipc_cond_release(cond), 0);
	cr_assert_eq(ipc_cond_release(cond), 0);
	ipc_cond_close(cond);

	cr_assert_eq(ipc_lock_new(&lock), 0);
	cr_assert_eq(ipc_cond_new_with_lock(&cond, lock), 0);
	cr_assert_eq(ipc_cond_acquire(cond, IPC_FOREVER), 0);
	cr_assert_eq(ipc_lock_acquire(lock, IPC_NOWAIT), IPC_EDEADLK);
	cr_assert_eq(ipc_cond_release(cond), 0);
	cr_assert_eq(ipc_lock_acquire(lock, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_cond_acquire(cond, IPC_NOWAIT), IPC_EDEADLK);
	cr_assert_eq(ipc_lock_release(lock), 0);
	ipc_cond_close(cond);
	ipc_lock_close(lock);
}

/* ConditionTests.test_unacquired_wait and test_unacquired_notify
 * (RuntimeError: IPC_EPERM). */
Test(cpython_locks, condition_unacquired_wait_and_notify)
{
	cr_assert_eq(ipc_cond_new(&cond), 0);
	cr_assert_eq(ipc_cond_wait(cond, IPC_FOREVER), IPC_EPERM);
	cr_assert_eq(ipc_cond_notify(cond, 1), IPC_EPERM);
	ipc_cond_close(cond);
}

static volatile int phase_num, cond_ready;
static _Atomic int results1[5], results2[5]; /* phase seen, 0: none yet */
static _Atomic int n_results1, n_results2;

static void cond_notify_f(struct bunch *b, int i)
{
	int rc;

	(void)i;
	T_EXPECT(b, ipc_cond_acquire(cond, LONG_MS) == 0);
	cond_ready++; /* under the lock: counted, then asleep in wait */
	rc = ipc_cond_wait(cond, LONG_MS);
	T_EXPECT(b, rc == 0);
	results1[atomic_fetch_add(&n_results1, 1)] = phase_num;
	T_EXPECT(b, ipc_cond_release(cond) == 0);
	T_EXPECT(b, ipc_cond_acquire(cond, LONG_MS) == 0);
	cond_ready++;
	rc = ipc_cond_wait(cond, LONG_MS);
	T_EXPECT(b, rc == 0);
	results2[atomic_fetch_add(&n_results2, 1)] = phase_num;
	T_EXPECT(b, ipc_cond_release(cond) == 0);
}

/* Take the lock and wait until `want` waits have been entered; then every
 * thread still running is asleep in its wait (each counts itself under
 * the lock just before it waits). Returns with the lock held. */
static void cond_settle(struct bunch *b, int want)
{
	long end = t_now_ms() + LONG_MS;

	for (;;) {
		cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
		if (cond_ready >= want)
			break;
		cr_assert_eq(ipc_cond_release(cond), 0);
		cr_assert_lt(t_now_ms(), end, "waiters never arrived");
		usleep(500);
	}
	/* A thread that was woken may still be on its way out of f: asleep
	 * or finished, whichever comes first. */
	for (int i = 0; i < b->n; i++)
		while (!atomic_load(&b->done[i]) &&
		       !t_blocked_in_futex(atomic_load(&b->tid[i]), 10))
			cr_assert_lt(t_now_ms(), end,
				     "thread %d not asleep, %d waits entered",
				     i, want);
}

static int count_phase(_Atomic int *r, int n, int phase)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += r[i] == phase;
	return c;
}

/* ConditionTests._check_notify. Python relies on _wait() for the workers
 * to reach their wait, and on CPython having no spurious wake-ups; here
 * each worker counts itself under the lock before it waits and is then
 * seen asleep, so every notify finds exactly the sleepers the test means
 * (libipc's notify(n) may wake more than n only of waiters that have not
 * gone to sleep yet, which this rules out). */
static void cond_check_notify(void)
{
	struct bunch b;

	cond_ready = 0;
	phase_num = 0;
	atomic_store(&n_results1, 0);
	atomic_store(&n_results2, 0);
	bunch_start(&b, cond_notify_f, 5, false);
	cond_settle(&b, 5);
	cr_assert_eq(atomic_load(&n_results1), 0);
	/* Notify 3 threads at first. */
	cr_assert_eq(ipc_cond_notify(cond, 3), 0);
	phase_num = 1;
	cr_assert_eq(ipc_cond_release(cond), 0);
	cond_settle(&b, 8);
	cr_assert_eq(atomic_load(&n_results1), 3);
	cr_assert_eq(count_phase(results1, 3, 1), 3);
	cr_assert_eq(atomic_load(&n_results2), 0);
	/* Notify 5 threads: they might be in their first or second wait. */
	cr_assert_eq(ipc_cond_notify(cond, 5), 0);
	phase_num = 2;
	cr_assert_eq(ipc_cond_release(cond), 0);
	cond_settle(&b, 10);
	/* The three woken from their second wait record it only once they
	 * have the lock back, and cond_settle holds it (a thread blocked on
	 * the lock looks asleep too): let them have it, then settle again. */
	cr_assert_eq(ipc_cond_release(cond), 0);
	for (long end = t_now_ms() + LONG_MS; atomic_load(&n_results2) < 3;) {
		cr_assert_lt(t_now_ms(), end, "the woken never recorded it");
		usleep(200);
	}
	cond_settle(&b, 10);
	cr_assert_eq(atomic_load(&n_results1), 5);
	cr_assert_eq(atomic_load(&n_results2), 3);
	cr_assert_eq(count_phase(results1, 5, 1), 3);
	cr_assert_eq(count_phase(results1, 5, 2), 2);
	cr_assert_eq(count_phase(results2, 3, 2), 3);
	/* Notify all threads: they are all in their second wait. */
	cr_assert_eq(ipc_cond_notify_all(cond), 0);
	phase_num = 3;
	cr_assert_eq(ipc_cond_release(cond), 0);
	bunch_wait_for_finished(&b);
	cr_assert_eq(count_phase(results1, 5, 1), 3);
	cr_assert_eq(count_phase(results1, 5, 2), 2);
	cr_assert_eq(count_phase(results2, 5, 2), 3);
	cr_assert_eq(count_phase(results2, 5, 3), 2);
}

/* ConditionTests.test_notify, twice to check the state is still right. */
Test(cpython_locks, condition_notify)
{
	cr_assert_eq(ipc_cond_new(&cond), 0);
	cond_check_notify();
	cond_check_notify();
	ipc_cond_close(cond);
}

static _Atomic int cond_rc[5];
static _Atomic long cond_ms[5];

static void cond_timeout_f(struct bunch *b, int i)
{
	long t0;

	T_EXPECT(b, ipc_cond_acquire(cond, LONG_MS) == 0);
	t0 = t_now_ms();
	atomic_store(&cond_rc[i], ipc_cond_wait(cond, 500));
	atomic_store(&cond_ms[i], t_now_ms() - t0);
	T_EXPECT(b, ipc_cond_release(cond) == 0);
}

/* ConditionTests.test_timeout */
Test(cpython_locks, condition_timeout)
{
	struct bunch b;

	cr_assert_eq(ipc_cond_new(&cond), 0);
	bunch_start(&b, cond_timeout_f, 5, false);
	bunch_wait_for_finished(&b);
	for (int i = 0; i < 5; i++) {
		ASSERT_TIMEOUT(atomic_load(&cond_ms[i]), 500);
		cr_assert_eq(atomic_load(&cond_rc[i]), IPC_ETIMEDOUT);
	}
	ipc_cond_close(cond);
}

static volatile int state;

static bool state_is_4(void *arg)
{
	(void)arg;
	return state == 4;
}

static void waitfor_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ipc_cond_acquire(cond, LONG_MS) == 0);
	T_EXPECT(b, ipc_cond_wait_for(cond, state_is_4, NULL, LONG_MS) == 0);
	T_EXPECT(b, state == 4);
	T_EXPECT(b, ipc_cond_release(cond) == 0);
}

static void bump_state(int times)
{
	for (int i = 0; i < times; i++) {
		cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
		state++;
		cr_assert_eq(ipc_cond_notify(cond, 1), 0);
		cr_assert_eq(ipc_cond_release(cond), 0);
	}
}

/* ConditionTests.test_waitfor */
Test(cpython_locks, condition_waitfor)
{
	struct bunch b;

	state = 0;
	cr_assert_eq(ipc_cond_new(&cond), 0);
	bunch_start(&b, waitfor_f, 1, false);
	bunch_wait_for_started(&b);
	bump_state(4);
	bunch_wait_for_finished(&b);
	ipc_cond_close(cond);
}

static void waitfor_timeout_f(struct bunch *b, int i)
{
	long t0;

	(void)i;
	T_EXPECT(b, ipc_cond_acquire(cond, LONG_MS) == 0);
	t0 = t_now_ms();
	atomic_store(&cond_rc[0],
		     ipc_cond_wait_for(cond, state_is_4, NULL, 100));
	atomic_store(&cond_ms[0], t_now_ms() - t0);
	T_EXPECT(b, ipc_cond_release(cond) == 0);
}

/* ConditionTests.test_waitfor_timeout: only three increments, so
 * state == 4 is never reached. */
Test(cpython_locks, condition_waitfor_timeout)
{
	struct bunch b;

	state = 0;
	cr_assert_eq(ipc_cond_new(&cond), 0);
	bunch_start(&b, waitfor_timeout_f, 1, false);
	bunch_wait_for_started(&b);
	bump_state(3);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&cond_rc[0]), IPC_ETIMEDOUT);
	ASSERT_TIMEOUT(atomic_load(&cond_ms[0]), 100);
	ipc_cond_close(cond);
}

/* ---- BaseSemaphoreTests, SemaphoreTests, BoundedSemaphoreTests -------- */

static ipc_sem *sem;

/* BaseSemaphoreTests.test_constructor: Python's ValueError for a negative
 * value; a libipc value is unsigned, and one past IPC_SEM_VALUE_MAX is
 * IPC_EINVAL. Then test_acquire and test_acquire_destroy. */
Test(cpython_locks, semaphore_constructor_and_acquire)
{
	cr_assert_eq(ipc_sem_new(&sem, (unsigned)IPC_SEM_VALUE_MAX + 1, 0),
		     IPC_EINVAL);
	cr_assert_eq(ipc_sem_new(&sem, 1, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	ipc_sem_close(sem);
	cr_assert_eq(ipc_sem_new(&sem, 2, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	ipc_sem_close(sem);
	cr_assert_eq(ipc_sem_new(&sem, 1, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	ipc_sem_close(sem); /* test_acquire_destroy */
}

static volatile int sem_phase;
static _Atomic int sem_phases[3]; /* acquisitions seen in each phase */
static volatile int sem_total;

static void sem_contended_f(struct bunch *b, int i)
{
	(void)i;
	for (int k = 0; k < 2; k++) {
		T_EXPECT(b, ipc_sem_acquire(sem, LONG_MS) == 0);
		atomic_fetch_add(&sem_phases[sem_phase], 1);
		__atomic_add_fetch(&sem_total, 1, __ATOMIC_SEQ_CST);
	}
}

/* BaseSemaphoreTests.test_acquire_contended */
static void semaphore_acquire_contended(unsigned max)
{
	struct bunch b;

	sem_phase = 0;
	for (int i = 0; i < 3; i++)
		atomic_store(&sem_phases[i], 0);
	sem_total = 0;
	cr_assert_eq(ipc_sem_new(&sem, 7, max), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	bunch_start(&b, sem_contended_f, 10, false);
	bunch_wait_for_started(&b);
	cr_assert(t_wait_count(&sem_total, 6, LONG_MS));
	cr_assert_eq(atomic_load(&sem_phases[0]), 6);
	sem_phase = 1;
	for (int i = 0; i < 7; i++)
		cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert(t_wait_count(&sem_total, 13, LONG_MS));
	cr_assert_eq(atomic_load(&sem_phases[1]), 7);
	sem_phase = 2;
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert(t_wait_count(&sem_total, 19, LONG_MS));
	cr_assert_eq(atomic_load(&sem_phases[0]), 6);
	cr_assert_eq(atomic_load(&sem_phases[1]), 7);
	cr_assert_eq(atomic_load(&sem_phases[2]), 6);
	/* The semaphore is still locked. */
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), IPC_EAGAIN);
	/* Final release, to let the last thread finish. */
	cr_assert_eq(ipc_sem_release(sem), 0);
	bunch_wait_for_finished(&b);
	ipc_sem_close(sem);
}

Test(cpython_locks, semaphore_acquire_contended)
{
	semaphore_acquire_contended(0);
}

Test(cpython_locks, bounded_semaphore_acquire_contended)
{
	semaphore_acquire_contended(7);
}

/* BaseSemaphoreTests.test_try_acquire */
Test(cpython_locks, semaphore_try_acquire)
{
	cr_assert_eq(ipc_sem_new(&sem, 2, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), 0);
	ipc_sem_close(sem);
}

static _Atomic int try_true, try_false;

static void sem_try_f(struct bunch *b, int i)
{
	(void)b;
	(void)i;
	for (int k = 0; k < 2; k++) {
		int rc = ipc_sem_acquire(sem, IPC_NOWAIT);
		atomic_fetch_add(rc == 0 ? &try_true : &try_false, 1);
	}
}

/* BaseSemaphoreTests.test_try_acquire_contended */
Test(cpython_locks, semaphore_try_acquire_contended)
{
	struct bunch b;

	cr_assert_eq(ipc_sem_new(&sem, 4, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	bunch_start(&b, sem_try_f, 5, false);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&try_true), 3);
	cr_assert_eq(atomic_load(&try_false), 7);
	ipc_sem_close(sem);
}

/* BaseSemaphoreTests.test_acquire_timeout (Python's ValueError for
 * "non-blocking with a timeout" has no counterpart: one timeout_ms). */
Test(cpython_locks, semaphore_acquire_timeout)
{
	long t0;

	cr_assert_eq(ipc_sem_new(&sem, 2, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, 5), 0);
	cr_assert_eq(ipc_sem_acquire(sem, 5), 0);
	cr_assert_eq(ipc_sem_acquire(sem, 5), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_acquire(sem, 5), 0);
	t0 = t_now_ms();
	cr_assert_eq(ipc_sem_acquire(sem, 500), IPC_ETIMEDOUT);
	ASSERT_TIMEOUT(t_now_ms() - t0, 500);
	ipc_sem_close(sem);
}

static void sem_cycle_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ipc_sem_acquire(sem, LONG_MS) == 0);
	T_EXPECT(b, ipc_sem_release(sem) == 0);
}

/* BaseSemaphoreTests.test_default_value: Python's default value is 1; C
 * has no default arguments, so the value is given. */
Test(cpython_locks, semaphore_default_value)
{
	struct bunch b;

	cr_assert_eq(ipc_sem_new(&sem, 1, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	bunch_start(&b, sem_cycle_f, 1, false);
	bunch_wait_all_blocked(&b);
	cr_assert_eq(b.finished, 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	bunch_wait_for_finished(&b);
	ipc_sem_close(sem);
}

/* SemaphoreTests.test_release_unacquired: unbounded releases are allowed
 * and increment the value. */
Test(cpython_locks, semaphore_release_unacquired)
{
	cr_assert_eq(ipc_sem_new(&sem, 1, 0), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	ipc_sem_close(sem);
}

/* BoundedSemaphoreTests.test_release_unacquired: cannot go past the
 * initial value (ValueError: IPC_EINVAL). */
Test(cpython_locks, bounded_semaphore_release_unacquired)
{
	cr_assert_eq(ipc_sem_new(&sem, 1, 1), 0);
	cr_assert_eq(ipc_sem_release(sem), IPC_EINVAL);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_release(sem), IPC_EINVAL);
	ipc_sem_close(sem);
}

/* ---- BarrierTests ------------------------------------------------------ */

#define N 5
/* Python's defaultTimeout is 2.0 s; a loaded machine can keep a thread
 * from running that long, which would break the barrier for no bug, so
 * the port's default is generous. */
#define DEFAULT_TIMEOUT_MS LONG_MS

static ipc_barrier *barrier, *barrier2;
static _Atomic int bres0, bres1, bres2, bres3, sum_index;

static void barrier_setup(void)
{
	ipc_barrier_attr attr = { .timeout_ms = DEFAULT_TIMEOUT_MS };

	cr_assert_eq(ipc_barrier_new_attr(&barrier, N, &attr), 0);
	atomic_store(&bres0, 0);
	atomic_store(&bres1, 0);
	atomic_store(&bres2, 0);
	atomic_store(&bres3, 0);
	atomic_store(&sum_index, 0);
}

static void barrier_teardown(void)
{
	ipc_barrier_abort(barrier);
	ipc_barrier_close(barrier);
}

/* run_threads: N-1 threads and this one run f. */
static void run_threads(void (*f)(struct bunch *, int))
{
	struct bunch b, self = { 0 };

	bunch_start(&b, f, N - 1, false);
	f(&self, N - 1);
	bunch_wait_for_finished(&b);
	cr_assert_eq(atomic_load(&self.failed), 0, "line %d",
		     atomic_load(&self.failed));
}

static int passes;

static void multipass_f(struct bunch *b, int i)
{
	int m = (int)ipc_barrier_parties(barrier);

	(void)i;
	T_EXPECT(b, m == N);
	for (int k = 0; k < passes; k++) {
		atomic_fetch_add(&bres0, 1);
		T_EXPECT(b, atomic_load(&bres1) == k * m);
		T_EXPECT(b,
			 ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) >= 0);
		atomic_fetch_add(&bres1, 1);
		T_EXPECT(b, atomic_load(&bres0) == (k + 1) * m);
		T_EXPECT(b,
			 ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) >= 0);
	}
	T_EXPECT(b, ipc_barrier_n_waiting(barrier) == 0);
	T_EXPECT(b, !ipc_barrier_broken(barrier));
}

/* BarrierTests.test_barrier: passed in lockstep. */
Test(cpython_locks, barrier_lockstep, .init = barrier_setup,
     .fini = barrier_teardown)
{
	passes = 1;
	run_threads(multipass_f);
}

/* BarrierTests.test_barrier_10: ten consecutive runs. */
Test(cpython_locks, barrier_10, .init = barrier_setup, .fini = barrier_teardown)
{
	passes = 10;
	run_threads(multipass_f);
}

static void wait_return_f(struct bunch *b, int i)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)i;
	T_EXPECT(b, r >= 0);
	atomic_fetch_add(&sum_index, r);
}

/* BarrierTests.test_wait_return */
Test(cpython_locks, barrier_wait_return, .init = barrier_setup,
     .fini = barrier_teardown)
{
	run_threads(wait_return_f);
	cr_assert_eq(atomic_load(&sum_index), 0 + 1 + 2 + 3 + 4);
}

static int action(void *arg)
{
	(void)arg;
	atomic_fetch_add(&bres0, 1);
	return 0;
}

static ipc_barrier *action_barrier;

static void action_f(struct bunch *b, int i)
{
	(void)i;
	T_EXPECT(b, ipc_barrier_wait(action_barrier, LONG_MS) >= 0);
	T_EXPECT(b, atomic_load(&bres0) == 1);
}

/* BarrierTests.test_action */
Test(cpython_locks, barrier_action, .init = barrier_setup,
     .fini = barrier_teardown)
{
	ipc_barrier_attr attr = { .action = action };

	cr_assert_eq(ipc_barrier_new_attr(&action_barrier, N, &attr), 0);
	run_threads(action_f);
	ipc_barrier_close(action_barrier);
}

static void abort_f(struct bunch *b, int i)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)i;
	if (r == N / 2) {
		T_EXPECT(b, ipc_barrier_abort(barrier) == 0);
		return; /* Python: raise RuntimeError, caught, abort() */
	}
	if (r >= 0)
		r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);
	if (r >= 0)
		atomic_fetch_add(&bres1, 1);
	else if (r == IPC_EBROKEN)
		atomic_fetch_add(&bres2, 1);
	else
		T_EXPECT(b, false);
}

/* BarrierTests.test_abort */
Test(cpython_locks, barrier_abort, .init = barrier_setup,
     .fini = barrier_teardown)
{
	run_threads(abort_f);
	cr_assert_eq(atomic_load(&bres1), 0);
	cr_assert_eq(atomic_load(&bres2), N - 1);
	cr_assert(ipc_barrier_broken(barrier));
}

static void reset_f(struct bunch *b, int i)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)i;
	T_EXPECT(b, r >= 0);
	if (r == N / 2) {
		/* Wait until the other threads are all in the barrier. */
		long end = t_now_ms() + LONG_MS;
		while (ipc_barrier_n_waiting(barrier) < N - 1 &&
		       t_now_ms() < end)
			usleep(1000);
		T_EXPECT(b, ipc_barrier_reset(barrier) == 0);
	} else {
		r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);
		if (r >= 0)
			atomic_fetch_add(&bres1, 1);
		else if (r == IPC_EBROKEN)
			atomic_fetch_add(&bres2, 1);
		else
			T_EXPECT(b, false);
	}
	/* Now, pass the barrier again. */
	T_EXPECT(b, ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) >= 0);
	atomic_fetch_add(&bres3, 1);
}

/* BarrierTests.test_reset: a reset frees the waiting threads. */
Test(cpython_locks, barrier_reset, .init = barrier_setup,
     .fini = barrier_teardown)
{
	run_threads(reset_f);
	cr_assert_eq(atomic_load(&bres1), 0);
	cr_assert_eq(atomic_load(&bres2), N - 1);
	cr_assert_eq(atomic_load(&bres3), N);
}

static void abort_and_reset_f(struct bunch *b, int i)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)i;
	if (r == N / 2) {
		T_EXPECT(b, ipc_barrier_abort(barrier) == 0);
	} else {
		if (r >= 0)
			r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);
		if (r >= 0)
			atomic_fetch_add(&bres1, 1);
		else if (r == IPC_EBROKEN)
			atomic_fetch_add(&bres2, 1);
		else
			T_EXPECT(b, false);
	}
	/* Synchronize and reset the barrier: everyone has left it when we
	 * reset, and nobody enters it before the reset. */
	if (ipc_barrier_wait(barrier2, LONG_MS) == N / 2)
		T_EXPECT(b, ipc_barrier_reset(barrier) == 0);
	T_EXPECT(b, ipc_barrier_wait(barrier2, LONG_MS) >= 0);
	T_EXPECT(b, ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) >= 0);
	atomic_fetch_add(&bres3, 1);
}

/* BarrierTests.test_abort_and_reset */
Test(cpython_locks, barrier_abort_and_reset, .init = barrier_setup,
     .fini = barrier_teardown)
{
	cr_assert_eq(ipc_barrier_new(&barrier2, N), 0);
	run_threads(abort_and_reset_f);
	cr_assert_eq(atomic_load(&bres1), 0);
	cr_assert_eq(atomic_load(&bres2), N - 1);
	cr_assert_eq(atomic_load(&bres3), N);
	ipc_barrier_close(barrier2);
}

static ipc_barrier *timeout_barrier;
static int timeout_ms_arg;

/* The late thread: Python sleeps 1.0 s, longer than the others' timeout;
 * here it waits until the barrier has broken (the others timed out),
 * which is what the sleep was for, then arrives. */
static void late_f(struct bunch *b, int i)
{
	int r = ipc_barrier_wait(timeout_barrier, LONG_MS);

	(void)i;
	T_EXPECT(b, r >= 0);
	if (r == N / 2) {
		long end = t_now_ms() + LONG_MS;
		while (!ipc_barrier_broken(timeout_barrier) && t_now_ms() < end)
			usleep(1000);
	}
	r = ipc_barrier_wait(timeout_barrier, timeout_ms_arg);
	/* BrokenBarrierError: the waiter whose own timeout broke it gets
	 * IPC_ETIMEDOUT, every other one IPC_EBROKEN. */
	T_EXPECT(b, r == IPC_EBROKEN || r == IPC_ETIMEDOUT);
	if (r == IPC_ETIMEDOUT)
		atomic_fetch_add(&bres1, 1);
}

/* BarrierTests.test_timeout: wait(0.5) while one thread is late. */
Test(cpython_locks, barrier_timeout, .init = barrier_setup,
     .fini = barrier_teardown)
{
	timeout_barrier = barrier;
	timeout_ms_arg = 500;
	run_threads(late_f);
	cr_assert_geq(atomic_load(&bres1), 1, "a timeout broke it");
}

/* BarrierTests.test_default_timeout: a barrier with a low default timeout
 * (0.3 s), waits given IPC_DEFAULT_TIMEOUT. */
Test(cpython_locks, barrier_default_timeout, .init = barrier_setup,
     .fini = barrier_teardown)
{
	ipc_barrier_attr attr = { .timeout_ms = 300 };

	cr_assert_eq(ipc_barrier_new_attr(&timeout_barrier, N, &attr), 0);
	timeout_ms_arg = IPC_DEFAULT_TIMEOUT;
	run_threads(late_f);
	cr_assert_geq(atomic_load(&bres1), 1, "the default timeout broke it");
	ipc_barrier_close(timeout_barrier);
}

/* BarrierTests.test_single_thread */
Test(cpython_locks, barrier_single_thread)
{
	ipc_barrier *b1;

	cr_assert_eq(ipc_barrier_new(&b1, 1), 0);
	cr_assert_eq(ipc_barrier_wait(b1, IPC_FOREVER), 0);
	cr_assert_eq(ipc_barrier_wait(b1, IPC_FOREVER), 0);
	ipc_barrier_close(b1);
}
