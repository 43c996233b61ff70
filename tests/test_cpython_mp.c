/* SPDX-License-Identifier: MIT */
/*
 * test_cpython_mp.c — the Queue, Lock, RLock, Semaphore, Condition, Event
 * and Barrier parts of CPython's Lib/test/_test_multiprocessing.py, ported
 * to C against libipc with real processes, as the original's "processes"
 * flavour runs them. Each test names the Python test it ports.
 *
 * How the port differs, and why (docs/guide.md lists it too):
 *   - Children report by exit code (a Criterion child must not assert);
 *     Python's DummyList, a counter in shared memory, is an int in a
 *     MAP_SHARED page changed with atomic adds.
 *   - Python's sleeps that let children get going ("time.sleep(DELTA)")
 *     become waits until the child is asleep in the kernel; its
 *     assertReachesEventually polls a value with a timeout, as here.
 *   - False / exceptions are codes, as in test_cpython_locks.c: IPC_EAGAIN,
 *     IPC_ETIMEDOUT, IPC_EPERM, IPC_EINVAL, IPC_EBROKEN, and queue.Empty /
 *     ShutDown are IPC_EAGAIN or IPC_ETIMEDOUT / IPC_ECLOSED.
 *   - test_wait_result's SIGINT half (KeyboardInterrupt inside wait) has
 *     no counterpart: libipc's waits resume after a signal handler.
 *   - Left out: repr tests, feeder-thread and pickling tests (libipc's
 *     Queue has neither), Manager flavours, and shutdown(immediate=True)
 *     (the queue's own tests cover it).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

#define LONG_MS 20000
#define TIMEOUT1 100 /* Python's TIMEOUT1 .. TIMEOUT3, in ms */
#define TIMEOUT2 200
#define TIMEOUT3 300

TestSuite(cpython_mp, .timeout = 120);

/* Python's assertTimingAlmostEqual for a wait that must last `ms`: not
 * earlier (a loaded machine may make it later). */
#define ASSERT_TOOK_AT_LEAST(t0, ms) cr_assert_geq(t_now_ms() - (t0), (ms)-1)

/* Shared counters (Python's _DummyList / Value). */
static volatile int *shared;

static void shared_setup(void)
{
	shared = t_shared(4096);
	cr_assert_not_null(shared);
}

static void bump(int i)
{
	__atomic_add_fetch(&shared[i], 1, __ATOMIC_SEQ_CST);
}

static int counter(int i)
{
	return __atomic_load_n(&shared[i], __ATOMIC_SEQ_CST);
}

/* ---- _TestQueue -------------------------------------------------------- */

static ipc_queue *queue;

static int put_int(int v)
{
	return ipc_queue_put(queue, &v, sizeof(v), LONG_MS);
}

/* The int got, or INT32_MIN with *rc the error. */
static int get_int(int timeout_ms, int *rc)
{
	int v = 0;
	ssize_t n = ipc_queue_get(queue, &v, sizeof(v), timeout_ms);

	*rc = n < 0 ? (int)n : 0;
	return n < 0 ? INT32_MIN : v;
}

static int fork_putter(void *arg)
{
	(void)arg;
	for (int i = 10; i < 20; i++)
		if (put_int(i) != 0)
			return 1;
	return 0;
}

/* _TestQueue.test_fork: items put before and after a fork all arrive, in
 * order. */
Test(cpython_mp, queue_fork)
{
	pid_t p;
	int rc;

	cr_assert_eq(ipc_queue_new(&queue, 0), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(put_int(i), 0);
	p = t_spawn(fork_putter, NULL);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(get_int(LONG_MS, &rc), i);
		cr_assert_eq(rc, 0);
	}
	get_int(IPC_NOWAIT, &rc);
	cr_assert_eq(rc, IPC_EAGAIN, "Empty");
	cr_assert_eq(t_reap(p, LONG_MS), 0);
	ipc_queue_close(queue);
}

/* _TestQueue.test_qsize */
Test(cpython_mp, queue_qsize)
{
	int rc;

	cr_assert_eq(ipc_queue_new(&queue, 0), 0);
	cr_assert_eq(ipc_queue_qsize(queue), 0);
	cr_assert_eq(put_int(1), 0);
	cr_assert_eq(ipc_queue_qsize(queue), 1);
	cr_assert_eq(put_int(5), 0);
	cr_assert_eq(ipc_queue_qsize(queue), 2);
	get_int(LONG_MS, &rc);
	cr_assert_eq(ipc_queue_qsize(queue), 1);
	get_int(LONG_MS, &rc);
	cr_assert_eq(ipc_queue_qsize(queue), 0);
	ipc_queue_close(queue);
}

/* Python: for obj in iter(q.get, None): q.task_done(). -1 is None. */
static int task_done_worker(void *arg)
{
	(void)arg;
	for (;;) {
		int rc, v = get_int(LONG_MS, &rc);
		if (rc != 0)
			return 1;
		if (v == -1)
			return 0;
		if (ipc_queue_task_done(queue) != 0)
			return 2;
	}
}

/* _TestQueue.test_task_done: four worker processes, join returns once
 * all ten tasks are done. */
Test(cpython_mp, queue_task_done)
{
	pid_t w[4];

	cr_assert_eq(ipc_joinable_queue_new(&queue, 0), 0);
	for (int i = 0; i < 4; i++)
		w[i] = t_spawn(task_done_worker, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(put_int(i), 0);
	cr_assert_eq(ipc_queue_join(queue, LONG_MS), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(put_int(-1), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t_reap(w[i], LONG_MS), 0);
	ipc_queue_close(queue);
}

/* _TestQueue.test_timeout: get(True, 0.200) raises Empty after >= 0.1 s
 * (bpo-30317's tolerance); here after the full 200 ms. */
Test(cpython_mp, queue_timeout)
{
	long t0;
	int rc;

	cr_assert_eq(ipc_queue_new(&queue, 0), 0);
	t0 = t_now_ms();
	get_int(200, &rc);
	cr_assert_eq(rc, IPC_ETIMEDOUT);
	ASSERT_TOOK_AT_LEAST(t0, 200);
	ipc_queue_close(queue);
}

static int join_worker(void *arg)
{
	(void)arg;
	return ipc_queue_join(queue, LONG_MS) == 0 ? 0 : 1;
}

static int get_in_child(void *arg)
{
	int rc;

	(void)arg;
	get_int(LONG_MS, &rc);
	return rc == IPC_ECLOSED ? 0 : 1;
}

static int put_in_child(void *arg)
{
	(void)arg;
	return put_int(1) == IPC_ECLOSED ? 0 : 1;
}

/* ShutDown from a put and a get, in a child and here. */
static void assert_shut_down(void)
{
	int rc;

	cr_assert_eq(t_reap(t_spawn(put_in_child, NULL), LONG_MS), 0);
	cr_assert_eq(ipc_queue_put(queue, "d", 1, IPC_NOWAIT), IPC_ECLOSED);
	cr_assert_eq(t_reap(t_spawn(get_in_child, NULL), LONG_MS), 0);
	get_int(IPC_NOWAIT, &rc);
	cr_assert_eq(rc, IPC_ECLOSED);
}

/* _TestQueue.test_shutdown_empty, for a Queue and a JoinableQueue (whose
 * joiner returns: no unfinished task). */
Test(cpython_mp, queue_shutdown_empty)
{
	for (int joinable = 0; joinable < 2; joinable++) {
		pid_t join = 0;
		if (joinable) {
			cr_assert_eq(ipc_joinable_queue_new(&queue, 0), 0);
			join = t_spawn(join_worker, NULL);
		} else {
			cr_assert_eq(ipc_queue_new(&queue, 0), 0);
		}
		cr_assert_eq(ipc_queue_shutdown(queue), 0);
		cr_assert_eq(ipc_queue_qsize(queue), 0);
		if (joinable)
			cr_assert_eq(t_reap(join, LONG_MS), 0);
		assert_shut_down();
		ipc_queue_close(queue);
	}
}

/* _TestQueue.test_shutdown_nonempty: the item is still got after the
 * shutdown; the joiner waits for its task_done. */
Test(cpython_mp, queue_shutdown_nonempty)
{
	for (int joinable = 0; joinable < 2; joinable++) {
		pid_t join = 0;
		int rc;
		if (joinable)
			cr_assert_eq(ipc_joinable_queue_new(&queue, 1), 0);
		else
			cr_assert_eq(ipc_queue_new(&queue, 1), 0);
		cr_assert_eq(put_int(42), 0);
		if (joinable)
			join = t_spawn(join_worker, NULL);
		cr_assert_eq(ipc_queue_shutdown(queue), 0);
		cr_assert_eq(ipc_queue_qsize(queue), 1);
		cr_assert_eq(get_int(LONG_MS, &rc), 42);
		if (joinable)
			cr_assert_not(t_has_exited(join),
				      "one task unfinished");
		assert_shut_down();
		if (joinable) {
			cr_assert_eq(ipc_queue_task_done(queue), 0);
			cr_assert_eq(t_reap(join, LONG_MS), 0);
		}
		ipc_queue_close(queue);
	}
}

/* ---- _TestLock --------------------------------------------------------- */

/* _TestLock.test_lock (releasing an unlocked Lock: IPC_EPERM) */
Test(cpython_mp, lock)
{
	ipc_lock *lock;

	cr_assert_eq(ipc_lock_new(&lock), 0);
	cr_assert_eq(ipc_lock_acquire(lock, IPC_FOREVER), 0);
	cr_assert_eq(ipc_lock_locked(lock), 1);
	/* Python's acquire(False) here is False; the holding thread gets
	 * IPC_EDEADLK (mutex semantics). */
	cr_assert_eq(ipc_lock_acquire(lock, IPC_NOWAIT), IPC_EDEADLK);
	cr_assert_eq(ipc_lock_release(lock), 0);
	cr_assert_eq(ipc_lock_locked(lock), 0);
	cr_assert_eq(ipc_lock_release(lock), IPC_EPERM);
	ipc_lock_close(lock);
}

static ipc_lock *mp_lock;
static ipc_rlock *mp_rlock;
static ipc_event *mp_event, *mp_go;

static int lock_locked_child(void *arg)
{
	int rc = arg ? ipc_rlock_acquire(mp_rlock, LONG_MS)
		     : ipc_lock_acquire(mp_lock, LONG_MS);

	if (rc != 0)
		return 1;
	shared[0] = arg ? ipc_rlock_locked(mp_rlock) : ipc_lock_locked(mp_lock);
	ipc_event_set(mp_event);
	/* Python's child ends at once, holding it. Here it holds on until
	 * the parent has looked: a dead holder's libipc lock reads free. */
	ipc_event_wait(mp_go, LONG_MS);
	return 0; /* exits holding it */
}

/* _TestLock.test_lock_locked_2processes and test_rlock_locked_2processes:
 * a lock held by another process reads as locked in both. Python's
 * semaphore-based lock stays locked after its holder exits; libipc's
 * robust lock then reads free and the next acquire says IPC_EOWNERDEAD,
 * which the port checks too. */
static void locked_2processes(bool rlock)
{
	pid_t p;

	shared_setup();
	cr_assert_eq(ipc_event_new(&mp_event), 0);
	cr_assert_eq(ipc_event_new(&mp_go), 0);
	if (rlock)
		cr_assert_eq(ipc_rlock_new(&mp_rlock), 0);
	else
		cr_assert_eq(ipc_lock_new(&mp_lock), 0);
	p = t_spawn(lock_locked_child, rlock ? (void *)1 : NULL);
	cr_assert_eq(ipc_event_wait(mp_event, LONG_MS), 0);
	if (rlock)
		cr_assert_eq(ipc_rlock_locked(mp_rlock), 1);
	else
		cr_assert_eq(ipc_lock_locked(mp_lock), 1);
	cr_assert_eq(shared[0], 1, "locked() in the child");
	ipc_event_set(mp_go);
	cr_assert_eq(t_reap(p, LONG_MS), 0);
	if (rlock) {
		cr_assert_eq(ipc_rlock_locked(mp_rlock), 0);
		cr_assert_eq(ipc_rlock_acquire(mp_rlock, 0), IPC_EOWNERDEAD);
		cr_assert_eq(ipc_rlock_release(mp_rlock), 0);
	} else {
		cr_assert_eq(ipc_lock_locked(mp_lock), 0);
		cr_assert_eq(ipc_lock_acquire(mp_lock, 0), IPC_EOWNERDEAD);
		cr_assert_eq(ipc_lock_release(mp_lock), 0);
	}
	ipc_event_close(mp_go);
	ipc_event_close(mp_event);
	ipc_lock_close(mp_lock);
	ipc_rlock_close(mp_rlock);
	mp_lock = NULL;
	mp_rlock = NULL;
}

Test(cpython_mp, lock_locked_2processes)
{
	locked_2processes(false);
}

Test(cpython_mp, rlock_locked_2processes)
{
	locked_2processes(true);
}

/* _TestLock.test_rlock (the extra release: IPC_EPERM) */
Test(cpython_mp, rlock)
{
	ipc_rlock *lock;

	cr_assert_eq(ipc_rlock_new(&lock), 0);
	cr_assert_eq(ipc_rlock_acquire(lock, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_locked(lock), 1);
	cr_assert_eq(ipc_rlock_acquire(lock, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_acquire(lock, IPC_FOREVER), 0);
	cr_assert_eq(ipc_rlock_release(lock), 0);
	cr_assert_eq(ipc_rlock_locked(lock), 1);
	cr_assert_eq(ipc_rlock_release(lock), 0);
	cr_assert_eq(ipc_rlock_release(lock), 0);
	cr_assert_eq(ipc_rlock_locked(lock), 0);
	cr_assert_eq(ipc_rlock_release(lock), IPC_EPERM);
	ipc_rlock_close(lock);
}

/* ---- _TestSemaphore ---------------------------------------------------- */

/* _TestSemaphore._test_semaphore */
static void check_semaphore(ipc_sem *sem)
{
	cr_assert_eq(ipc_sem_value(sem), 2);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_value(sem), 1);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_FOREVER), 0);
	cr_assert_eq(ipc_sem_value(sem), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_value(sem), 0);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_value(sem), 1);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_value(sem), 2);
}

/* _TestSemaphore.test_semaphore */
Test(cpython_mp, semaphore)
{
	ipc_sem *sem;

	cr_assert_eq(ipc_sem_new(&sem, 2, 0), 0);
	check_semaphore(sem);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_value(sem), 3);
	cr_assert_eq(ipc_sem_release(sem), 0);
	cr_assert_eq(ipc_sem_value(sem), 4);
	ipc_sem_close(sem);
}

/* _TestSemaphore.test_bounded_semaphore, with the check Python leaves
 * commented out ("currently fails on OS/X"): release past the bound is
 * refused and the value stays 2. */
Test(cpython_mp, bounded_semaphore)
{
	ipc_sem *sem;

	cr_assert_eq(ipc_sem_new(&sem, 2, 2), 0);
	check_semaphore(sem);
	cr_assert_eq(ipc_sem_release(sem), IPC_EINVAL);
	cr_assert_eq(ipc_sem_value(sem), 2);
	ipc_sem_close(sem);
}

/* _TestSemaphore.test_timeout */
Test(cpython_mp, semaphore_timeout)
{
	ipc_sem *sem;
	long t0;

	cr_assert_eq(ipc_sem_new(&sem, 0, 0), 0);
	cr_assert_eq(ipc_sem_acquire(sem, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_sem_acquire(sem, TIMEOUT2), IPC_ETIMEDOUT);
	ASSERT_TOOK_AT_LEAST(t0, TIMEOUT2);
	t0 = t_now_ms();
	cr_assert_eq(ipc_sem_acquire(sem, TIMEOUT3), IPC_ETIMEDOUT);
	ASSERT_TOOK_AT_LEAST(t0, TIMEOUT3);
	ipc_sem_close(sem);
}

/* ---- _TestCondition ---------------------------------------------------- */

static ipc_cond *cond;
static ipc_sem *sleeping, *woken;

/* _TestCondition.f: count itself asleep, wait, count itself woken. The
 * timeout (-1: none) is arg's int. */
static int cond_f(void *arg)
{
	int timeout = arg ? *(int *)arg : LONG_MS;

	if (ipc_cond_acquire(cond, LONG_MS) != 0)
		return 1;
	ipc_sem_release(sleeping);
	ipc_cond_wait(cond, timeout);
	ipc_sem_release(woken);
	return ipc_cond_release(cond) == 0 ? 0 : 2;
}

static void *cond_f_thread(void *arg)
{
	return (void *)(intptr_t)cond_f(arg);
}

/* Workers: processes and threads, half each, like the Python tests. */
struct workers {
	int n;
	pid_t pid[8]; /* processes: their pid; threads: 0 */
	pthread_t th[8];
	_Atomic pid_t tid[8]; /* whom to watch for sleep */
};

static _Atomic pid_t last_tid;

static void *cond_f_thread_tid(void *arg)
{
	atomic_store(&last_tid, (pid_t)syscall(SYS_gettid));
	return cond_f_thread(arg);
}

static void workers_start(struct workers *w, int pairs, int *timeout)
{
	for (int i = 0; i < pairs; i++) {
		int k = w->n;
		w->pid[k] = t_spawn(cond_f, timeout);
		w->tid[k] = w->pid[k];
		atomic_store(&last_tid, 0);
		cr_assert_eq(pthread_create(&w->th[k + 1], NULL,
					    cond_f_thread_tid, timeout),
			     0);
		while (atomic_load(&last_tid) == 0)
			sched_yield();
		w->pid[k + 1] = 0;
		w->tid[k + 1] = atomic_load(&last_tid);
		w->n += 2;
	}
}

/* Wait until every worker counted itself asleep, then (Python's
 * time.sleep(DELTA)) until each is asleep in the kernel, so that each
 * notify finds exactly the sleepers the test means. */
static void workers_all_asleep(struct workers *w, int n)
{
	for (int i = 0; i < n; i++)
		cr_assert_eq(ipc_sem_acquire(sleeping, LONG_MS), 0);
	for (int i = 0; i < w->n; i++)
		cr_assert(t_blocked_in_futex(w->tid[i], LONG_MS));
}

static void workers_join(struct workers *w)
{
	for (int i = 0; i < w->n; i++) {
		if (w->pid[i] != 0) {
			cr_assert_eq(t_reap(w->pid[i], LONG_MS), 0);
		} else {
			void *ret;
			pthread_join(w->th[i], &ret);
			cr_assert_null(ret);
		}
	}
}

/* assertReachesEventually(lambda: get_value(woken), value) */
static void woken_reaches(int value)
{
	long end = t_now_ms() + LONG_MS;

	while (ipc_sem_value(woken) != value && t_now_ms() < end)
		usleep(1000);
	cr_assert_eq(ipc_sem_value(woken), value);
}

static void notify_locked(int n)
{
	cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
	if (n == 0)
		cr_assert_eq(ipc_cond_notify_all(cond), 0);
	else
		cr_assert_eq(ipc_cond_notify(cond, n), 0);
	cr_assert_eq(ipc_cond_release(cond), 0);
}

static void cond_setup(void)
{
	cr_assert_eq(ipc_cond_new(&cond), 0);
	cr_assert_eq(ipc_sem_new(&sleeping, 0, 0), 0);
	cr_assert_eq(ipc_sem_new(&woken, 0, 0), 0);
}

static void cond_teardown(void)
{
	ipc_cond_close(cond);
	ipc_sem_close(sleeping);
	ipc_sem_close(woken);
}

/* _TestCondition.test_notify: a process and a thread, woken one by one. */
Test(cpython_mp, condition_notify, .init = cond_setup, .fini = cond_teardown)
{
	struct workers w = { 0 };

	workers_start(&w, 1, NULL);
	workers_all_asleep(&w, 2);
	woken_reaches(0);
	notify_locked(1);
	woken_reaches(1);
	notify_locked(1);
	woken_reaches(2);
	workers_join(&w);
}

/* _TestCondition.test_notify_all: six that time out, then six woken by
 * one notify_all. */
Test(cpython_mp, condition_notify_all, .init = cond_setup,
     .fini = cond_teardown)
{
	struct workers w = { 0 }, w2 = { 0 };
	int timeout = TIMEOUT1;

	workers_start(&w, 3, &timeout);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ipc_sem_acquire(sleeping, LONG_MS), 0);
	/* Check they have all timed out. */
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ipc_sem_acquire(woken, LONG_MS), 0);
	cr_assert_eq(ipc_sem_value(woken), 0);
	workers_join(&w);
	workers_start(&w2, 3, NULL);
	workers_all_asleep(&w2, 6);
	cr_assert_eq(ipc_sem_value(woken), 0);
	notify_locked(0);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ipc_sem_acquire(woken, LONG_MS), 0);
	cr_assert_eq(ipc_sem_value(woken), 0);
	workers_join(&w2);
}

/* _TestCondition.test_notify_n */
Test(cpython_mp, condition_notify_n, .init = cond_setup, .fini = cond_teardown)
{
	struct workers w = { 0 };

	workers_start(&w, 3, NULL);
	workers_all_asleep(&w, 6);
	cr_assert_eq(ipc_sem_value(woken), 0);
	notify_locked(2);
	woken_reaches(2);
	notify_locked(4);
	woken_reaches(6);
	notify_locked(3); /* doesn't do anything more */
	cr_assert_eq(ipc_sem_value(woken), 6);
	workers_join(&w);
}

/* _TestCondition.test_timeout */
Test(cpython_mp, condition_timeout, .init = cond_setup, .fini = cond_teardown)
{
	long t0;

	cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
	t0 = t_now_ms();
	cr_assert_eq(ipc_cond_wait(cond, TIMEOUT1), IPC_ETIMEDOUT);
	ASSERT_TOOK_AT_LEAST(t0, TIMEOUT1);
	cr_assert_eq(ipc_cond_release(cond), 0);
}

static bool state_is(void *arg)
{
	return __atomic_load_n(&shared[0], __ATOMIC_SEQ_CST) ==
	       (int)(intptr_t)arg;
}

static int waitfor_child(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cond, LONG_MS) != 0)
		return 1;
	shared[0] = 0;
	ipc_cond_notify(cond, 1);
	if (ipc_cond_wait_for(cond, state_is, (void *)4, LONG_MS) != 0 ||
	    shared[0] != 4)
		return 2;
	return ipc_cond_release(cond) == 0 ? 0 : 3;
}

/* _TestCondition.test_waitfor */
Test(cpython_mp, condition_waitfor, .init = cond_setup, .fini = cond_teardown)
{
	pid_t p;

	shared_setup();
	shared[0] = -1;
	p = t_spawn(waitfor_child, NULL);
	cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
	cr_assert_eq(ipc_cond_wait_for(cond, state_is, (void *)0, LONG_MS), 0);
	cr_assert_eq(shared[0], 0);
	cr_assert_eq(ipc_cond_release(cond), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
		shared[0]++;
		cr_assert_eq(ipc_cond_notify(cond, 1), 0);
		cr_assert_eq(ipc_cond_release(cond), 0);
	}
	cr_assert_eq(t_reap(p, LONG_MS), 0);
}

static int waitfor_timeout_child(void *arg)
{
	long t0;
	int rc;

	(void)arg;
	ipc_sem_release(sleeping);
	if (ipc_cond_acquire(cond, LONG_MS) != 0)
		return 1;
	t0 = t_now_ms();
	rc = ipc_cond_wait_for(cond, state_is, (void *)4, 100);
	if (rc == IPC_ETIMEDOUT && t_now_ms() - t0 >= 99)
		shared[1] = 1; /* success */
	return ipc_cond_release(cond) == 0 ? 0 : 2;
}

/* _TestCondition.test_waitfor_timeout: only three increments, so
 * state == 4 is never reached. */
Test(cpython_mp, condition_waitfor_timeout, .init = cond_setup,
     .fini = cond_teardown)
{
	pid_t p;

	shared_setup();
	p = t_spawn(waitfor_timeout_child, NULL);
	cr_assert_eq(ipc_sem_acquire(sleeping, LONG_MS), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
		shared[0]++;
		cr_assert_eq(ipc_cond_notify(cond, 1), 0);
		cr_assert_eq(ipc_cond_release(cond), 0);
	}
	cr_assert_eq(t_reap(p, LONG_MS), 0);
	cr_assert_eq(shared[1], 1);
}

static int wait_result_child(void *arg)
{
	(void)arg;
	if (ipc_cond_acquire(cond, LONG_MS) != 0)
		return 1;
	ipc_cond_notify(cond, 1);
	return ipc_cond_release(cond) == 0 ? 0 : 2;
}

/* _TestCondition.test_wait_result, without its KeyboardInterrupt half. */
Test(cpython_mp, condition_wait_result, .init = cond_setup,
     .fini = cond_teardown)
{
	pid_t p;

	cr_assert_eq(ipc_cond_acquire(cond, LONG_MS), 0);
	cr_assert_eq(ipc_cond_wait(cond, 0), IPC_EAGAIN);
	cr_assert_eq(ipc_cond_wait(cond, 100), IPC_ETIMEDOUT);
	p = t_spawn(wait_result_child, NULL);
	cr_assert_eq(ipc_cond_wait(cond, 60000), 0);
	cr_assert_eq(ipc_cond_release(cond), 0);
	cr_assert_eq(t_reap(p, LONG_MS), 0);
}

/* ---- _TestEvent -------------------------------------------------------- */

static int event_setter(void *arg)
{
	(void)arg;
	/* Python sleeps TIMEOUT2 first; the parent's wait must block
	 * either way. */
	return ipc_event_set(mp_event) == 0 ? 0 : 1;
}

/* _TestEvent.test_event */
Test(cpython_mp, event)
{
	long t0;
	pid_t p;

	cr_assert_eq(ipc_event_new(&mp_event), 0);
	cr_assert_not(ipc_event_is_set(mp_event));
	cr_assert_eq(ipc_event_wait(mp_event, 0), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_event_wait(mp_event, TIMEOUT1), IPC_ETIMEDOUT);
	ASSERT_TOOK_AT_LEAST(t0, TIMEOUT1);
	ipc_event_set(mp_event);
	cr_assert(ipc_event_is_set(mp_event));
	cr_assert_eq(ipc_event_wait(mp_event, IPC_FOREVER), 0);
	cr_assert_eq(ipc_event_wait(mp_event, TIMEOUT1), 0);
	ipc_event_clear(mp_event);
	p = t_spawn(event_setter, NULL);
	cr_assert_eq(ipc_event_wait(mp_event, LONG_MS), 0);
	cr_assert_eq(t_reap(p, LONG_MS), 0);
	ipc_event_close(mp_event);
}

/* ---- _TestBarrier, with processes -------------------------------------- */

#define N 5

static ipc_barrier *barrier;
static int passes;

static void barrier_setup(void)
{
	/* Python: defaultTimeout = 30.0 for slow buildbots. */
	ipc_barrier_attr attr = { .timeout_ms = 30000 };

	shared_setup();
	cr_assert_eq(ipc_barrier_new_attr(&barrier, N, &attr), 0);
}

static void barrier_teardown(void)
{
	ipc_barrier_abort(barrier);
	ipc_barrier_close(barrier);
}

/* run_threads: N-1 processes and this one run f; f's exit code must be
 * 0 everywhere. */
static void run_processes(int (*f)(void *))
{
	pid_t kids[N - 1];

	for (int i = 0; i < N - 1; i++)
		kids[i] = t_spawn(f, NULL);
	cr_assert_eq(f(NULL), 0, "the parent's share");
	for (int i = 0; i < N - 1; i++)
		cr_assert_eq(t_reap(kids[i], LONG_MS), 0);
}

/* _TestBarrier.multipass: results[0] is shared[0], results[1] shared[1]. */
static int multipass(void *arg)
{
	int m = (int)ipc_barrier_parties(barrier);

	(void)arg;
	if (m != N)
		return 1;
	for (int i = 0; i < passes; i++) {
		bump(0);
		if (counter(1) != i * m)
			return 2;
		if (ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) < 0)
			return 3;
		bump(1);
		if (counter(0) != (i + 1) * m)
			return 4;
		if (ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) < 0)
			return 5;
	}
	if (ipc_barrier_n_waiting(barrier) != 0 || ipc_barrier_broken(barrier))
		return 6;
	return 0;
}

/* _TestBarrier.test_barrier */
Test(cpython_mp, barrier, .init = barrier_setup, .fini = barrier_teardown)
{
	passes = 1;
	run_processes(multipass);
}

/* _TestBarrier.test_barrier_10 */
Test(cpython_mp, barrier_10, .init = barrier_setup, .fini = barrier_teardown)
{
	passes = 10;
	run_processes(multipass);
}

static int wait_return_f(void *arg)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)arg;
	if (r < 0)
		return 1;
	return ipc_queue_put(queue, &r, sizeof(r), LONG_MS) == 0 ? 0 : 2;
}

/* _TestBarrier.test_wait_return: exactly one party got 0. */
Test(cpython_mp, barrier_wait_return, .init = barrier_setup,
     .fini = barrier_teardown)
{
	int zeros = 0, rc;

	cr_assert_eq(ipc_queue_new(&queue, 0), 0);
	run_processes(wait_return_f);
	for (int i = 0; i < N; i++)
		zeros += get_int(LONG_MS, &rc) == 0;
	cr_assert_eq(zeros, 1);
	ipc_queue_close(queue);
}

static int append_true(void *arg)
{
	(void)arg;
	bump(2);
	return 0;
}

static ipc_barrier *action_barrier;

static int action_f(void *arg)
{
	(void)arg;
	if (ipc_barrier_wait(action_barrier, LONG_MS) < 0)
		return 1;
	return counter(2) == 1 ? 0 : 2;
}

/* _TestBarrier.test_action: the action belongs to the handle, which each
 * child inherits. */
Test(cpython_mp, barrier_action, .init = barrier_setup,
     .fini = barrier_teardown)
{
	ipc_barrier_attr attr = { .action = append_true };

	cr_assert_eq(ipc_barrier_new_attr(&action_barrier, N, &attr), 0);
	run_processes(action_f);
	cr_assert_eq(counter(2), 1);
	ipc_barrier_close(action_barrier);
}

static int abort_f(void *arg)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)arg;
	if (r == N / 2)
		return ipc_barrier_abort(barrier) == 0 ? 0 : 1;
	if (r >= 0)
		r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);
	if (r >= 0)
		bump(0);
	else if (r == IPC_EBROKEN)
		bump(1);
	else
		return 2;
	return 0;
}

/* _TestBarrier.test_abort */
Test(cpython_mp, barrier_abort, .init = barrier_setup, .fini = barrier_teardown)
{
	run_processes(abort_f);
	cr_assert_eq(counter(0), 0);
	cr_assert_eq(counter(1), N - 1);
	cr_assert(ipc_barrier_broken(barrier));
}

static int reset_f(void *arg)
{
	int r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);

	(void)arg;
	if (r < 0)
		return 1;
	if (r == N / 2) {
		long end = t_now_ms() + LONG_MS;
		while (ipc_barrier_n_waiting(barrier) < N - 1)
			if (t_now_ms() > end)
				return 2;
			else
				usleep(1000);
		if (ipc_barrier_reset(barrier) != 0)
			return 3;
	} else {
		r = ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT);
		if (r >= 0)
			bump(0);
		else if (r == IPC_EBROKEN)
			bump(1);
		else
			return 4;
	}
	if (ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) < 0)
		return 5;
	bump(2);
	return 0;
}

/* _TestBarrier.test_reset */
Test(cpython_mp, barrier_reset, .init = barrier_setup, .fini = barrier_teardown)
{
	run_processes(reset_f);
	cr_assert_eq(counter(0), 0);
	cr_assert_eq(counter(1), N - 1);
	cr_assert_eq(counter(2), N);
}

static ipc_conn *conn, *child_conn;

static int thousand_f(void *arg)
{
	(void)arg;
	ipc_conn_close(conn);
	for (int i = 0; i < passes; i++) {
		int rc;
		if (ipc_barrier_wait(barrier, IPC_DEFAULT_TIMEOUT) < 0)
			return 1;
		if (ipc_lock_acquire(mp_lock, LONG_MS) != 0)
			return 2;
		rc = ipc_conn_send(child_conn, &i, sizeof(i), LONG_MS);
		ipc_lock_release(mp_lock);
		if (rc != 0)
			return 3;
	}
	ipc_conn_close(child_conn);
	return 0;
}

/* _TestBarrier.test_thousand: N processes pass 1000 times, each sending
 * the pass number through one pipe after each pass. */
Test(cpython_mp, barrier_thousand, .init = barrier_setup,
     .fini = barrier_teardown)
{
	pid_t kids[N];

	passes = 1000;
	cr_assert_eq(ipc_lock_new(&mp_lock), 0);
	cr_assert_eq(ipc_pipe_new(&conn, &child_conn, false, NULL), 0);
	for (int j = 0; j < N; j++)
		kids[j] = t_spawn(thousand_f, NULL);
	ipc_conn_close(child_conn);
	for (int i = 0; i < passes; i++)
		for (int j = 0; j < N; j++) {
			int got = -1;
			cr_assert_eq(
				ipc_conn_recv(conn, &got, sizeof(got), LONG_MS),
				sizeof(got));
			cr_assert_eq(got, i);
		}
	for (int j = 0; j < N; j++)
		cr_assert_eq(t_reap(kids[j], LONG_MS), 0);
	ipc_conn_close(conn);
	ipc_lock_close(mp_lock);
	mp_lock = NULL;
}
