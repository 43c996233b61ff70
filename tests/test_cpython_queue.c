/* SPDX-License-Identifier: MIT */
/*
 * test_cpython_queue.c — CPython's Lib/test/test_queue.py, ported to C
 * against libipc's Queue, JoinableQueue and PriorityQueue, with threads
 * as the original. Each test names the Python test it ports. Items are
 * ints, sent as 4-byte messages (a PriorityQueue item's priority is the
 * int itself, as Python orders ints).
 *
 * How the port differs, and why:
 *   - _TriggerThread sleeps 0.1 s "to give the blocking function a chance
 *     at actually blocking"; here the trigger waits until the main thread
 *     is asleep in the kernel, then acts. "Appeared not to block" is
 *     checked as in Python: the trigger must have started first.
 *   - Full / Empty are IPC_EAGAIN (no wait) or IPC_ETIMEDOUT (a timeout);
 *     ValueError for a negative timeout is IPC_EINVAL, but -1 is
 *     IPC_FOREVER in libipc, so the port passes -2; task_done's ValueError
 *     is IPC_EINVAL.
 *   - Python's get() without a timeout is IPC_FOREVER; the port uses a
 *     long timeout instead so that a bug fails rather than hangs.
 *   - No counterpart: LifoQueue (libipc has none), FailingQueueTest (it
 *     subclasses Queue to make _put/_get raise), test_shrinking_queue's
 *     second half (a libipc maxsize is fixed at creation),
 *     test_references and test_reentrancy (Python object lifetimes). The
 *     feeders' random sleeps are dropped: they only vary the interleaving.
 *   - SimpleQueue is a Queue with no maxsize (ipc_queue_new(&q, 0)).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

#define LONG_MS 20000
#define QUEUE_SIZE 5

TestSuite(cpython_queue, .timeout = 120);

/* ---- one interface over Queue and PriorityQueue ----------------------- */

static ipc_queue *q;
static ipc_pqueue *pq; /* when set, the tests run on it */

static int put_int(int v, int timeout_ms)
{
	if (pq != NULL)
		return ipc_pqueue_put(pq, v, &v, sizeof(v), timeout_ms);
	return ipc_queue_put(q, &v, sizeof(v), timeout_ms);
}

/* The int got, or a negative IPC_E* in *rc. */
static int get_int(int timeout_ms, int *rc)
{
	int v = 0;
	ssize_t n =
		pq != NULL ? ipc_pqueue_get(pq, NULL, &v, sizeof(v), timeout_ms)
			   : ipc_queue_get(q, &v, sizeof(v), timeout_ms);

	*rc = n < 0 ? (int)n : (n == sizeof(v) ? 0 : -1);
	return v;
}

static long qsize(void)
{
	return pq != NULL ? ipc_pqueue_qsize(pq) : ipc_queue_qsize(q);
}

static bool qfull(void)
{
	return qsize() == QUEUE_SIZE;
}

/* ---- BlockingTestMixin.do_blocking_test -------------------------------- */

struct trigger {
	pthread_t th;
	pid_t blocked_tid; /* the thread that must block first */
	atomic_bool started;
	bool do_get; /* else put 'empty' (here: 7) */
	int rc;
};

static void *trigger_main(void *arg)
{
	struct trigger *t = arg;
	int rc;

	/* Python: time.sleep(0.1). Here: until the blocker is asleep. */
	if (!t_blocked_in_futex(t->blocked_tid, LONG_MS)) {
		t->rc = -1000;
		return NULL;
	}
	atomic_store(&t->started, true);
	if (t->do_get)
		get_int(LONG_MS, &rc);
	else
		rc = put_int(7, LONG_MS);
	t->rc = rc;
	return NULL;
}

static void trigger_start(struct trigger *t, bool do_get)
{
	*t = (struct trigger){ .blocked_tid = (pid_t)syscall(SYS_gettid),
			       .do_get = do_get };
	cr_assert_eq(pthread_create(&t->th, NULL, trigger_main, t), 0);
}

/* After the blocking call returned: it must not have returned before the
 * trigger ran. */
static void trigger_finish(struct trigger *t)
{
	cr_assert(atomic_load(&t->started),
		  "blocking function appeared not to block");
	pthread_join(t->th, NULL);
	cr_assert_eq(t->rc, 0, "the trigger's own call failed");
}

static void blocking_put(int v, int timeout_ms)
{
	struct trigger t;

	trigger_start(&t, true);
	cr_assert_eq(put_int(v, timeout_ms), 0);
	trigger_finish(&t);
}

static void blocking_get(int timeout_ms)
{
	struct trigger t;
	int rc;

	trigger_start(&t, false);
	get_int(timeout_ms, &rc);
	cr_assert_eq(rc, 0);
	trigger_finish(&t);
}

/* ---- BaseQueueTestMixin ------------------------------------------------ */

/* BaseQueueTestMixin.basic_queue_test */
static void basic_queue_test(const int order[3])
{
	int rc, got[3];
	int last = 2 * QUEUE_SIZE, full = 3 * 2 * QUEUE_SIZE;

	cr_assert_eq(qsize(), 0, "call this function with an empty queue");
	cr_assert_eq(put_int(111, LONG_MS), 0);
	cr_assert_eq(put_int(333, LONG_MS), 0);
	cr_assert_eq(put_int(222, LONG_MS), 0);
	for (int i = 0; i < 3; i++) {
		got[i] = get_int(LONG_MS, &rc);
		cr_assert_eq(rc, 0);
	}
	for (int i = 0; i < 3; i++)
		cr_assert_eq(got[i], order[i], "didn't queue the right data");
	for (int i = 0; i < QUEUE_SIZE - 1; i++) {
		cr_assert_eq(put_int(i, LONG_MS), 0);
		cr_assert_gt(qsize(), 0, "queue should not be empty");
	}
	cr_assert_not(qfull(), "queue should not be full");
	cr_assert_eq(put_int(last, LONG_MS), 0);
	cr_assert(qfull(), "queue should be full");
	if (pq == NULL) {
		cr_assert_not(ipc_queue_empty(q));
		cr_assert(ipc_queue_full(q));
	}
	cr_assert_eq(put_int(full, IPC_NOWAIT), IPC_EAGAIN, "Full");
	cr_assert_eq(put_int(full, 10), IPC_ETIMEDOUT, "Full after a timeout");
	/* Test a blocking put. */
	blocking_put(full, LONG_MS);
	blocking_put(full, 10000);
	/* Empty it. */
	for (int i = 0; i < QUEUE_SIZE; i++) {
		get_int(LONG_MS, &rc);
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(qsize(), 0, "queue should be empty");
	get_int(IPC_NOWAIT, &rc);
	cr_assert_eq(rc, IPC_EAGAIN, "Empty");
	get_int(10, &rc);
	cr_assert_eq(rc, IPC_ETIMEDOUT, "Empty after a timeout");
	/* Test a blocking get. */
	blocking_get(LONG_MS);
	blocking_get(10000);
}

/* QueueTest.test_basic, twice on the same queue. */
Test(cpython_queue, queue_basic)
{
	static const int order[3] = { 111, 333, 222 };

	pq = NULL;
	cr_assert_eq(ipc_queue_new(&q, QUEUE_SIZE), 0);
	basic_queue_test(order);
	basic_queue_test(order);
	ipc_queue_close(q);
}

/* PriorityQueueTest.test_basic */
Test(cpython_queue, priority_queue_basic)
{
	static const int order[3] = { 111, 222, 333 };

	cr_assert_eq(ipc_pqueue_new(&pq, QUEUE_SIZE, 0), 0);
	basic_queue_test(order);
	basic_queue_test(order);
	ipc_pqueue_close(pq);
	pq = NULL;
}

static pthread_mutex_t cumlock = PTHREAD_MUTEX_INITIALIZER;
static long cum;

static void *join_worker(void *arg)
{
	(void)arg;
	for (;;) {
		int rc, x = get_int(LONG_MS, &rc);
		if (rc != 0)
			return (void *)1;
		if (x < 0) {
			ipc_queue_task_done(q);
			return NULL;
		}
		pthread_mutex_lock(&cumlock);
		cum += x;
		pthread_mutex_unlock(&cumlock);
		ipc_queue_task_done(q);
	}
}

/* BaseQueueTestMixin.queue_join_test */
static void queue_join_test(void)
{
	pthread_t th[2];
	void *ret;

	cum = 0;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, join_worker, NULL),
			     0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(put_int(i, LONG_MS), 0);
	cr_assert_eq(ipc_queue_join(q, LONG_MS), 0);
	cr_assert_eq(cum, 99 * 100 / 2,
		     "join() did not block until all tasks were done");
	for (int i = 0; i < 2; i++)
		cr_assert_eq(put_int(-1, LONG_MS), 0); /* close the threads */
	cr_assert_eq(ipc_queue_join(q, LONG_MS), 0, "join twice");
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], &ret);
		cr_assert_null(ret);
	}
}

/* BaseQueueTestMixin.test_queue_task_done: the task count cannot go
 * negative (ValueError: IPC_EINVAL). */
Test(cpython_queue, queue_task_done)
{
	pq = NULL;
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL);
	ipc_queue_close(q);
}

/* BaseQueueTestMixin.test_queue_join: twice, then task_done fails. */
Test(cpython_queue, queue_join)
{
	pq = NULL;
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	queue_join_test();
	queue_join_test();
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL);
	ipc_queue_close(q);
}

/* BaseQueueTestMixin.test_negative_timeout_raises_exception (-1 is
 * IPC_FOREVER in libipc: -2 is the negative timeout that is refused). */
Test(cpython_queue, negative_timeout_is_einval)
{
	int rc;

	pq = NULL;
	cr_assert_eq(ipc_queue_new(&q, QUEUE_SIZE), 0);
	cr_assert_eq(put_int(1, -2), IPC_EINVAL);
	get_int(-2, &rc);
	cr_assert_eq(rc, IPC_EINVAL);
	ipc_queue_close(q);
	cr_assert_eq(ipc_pqueue_new(&pq, QUEUE_SIZE, 0), 0);
	cr_assert_eq(put_int(1, -2), IPC_EINVAL);
	get_int(-2, &rc);
	cr_assert_eq(rc, IPC_EINVAL);
	ipc_pqueue_close(pq);
	pq = NULL;
}

/* BaseQueueTestMixin.test_nowait */
static void nowait_test(void)
{
	int rc;

	for (int i = 0; i < QUEUE_SIZE; i++)
		cr_assert_eq(put_int(1, IPC_NOWAIT), 0);
	cr_assert_eq(put_int(1, IPC_NOWAIT), IPC_EAGAIN);
	for (int i = 0; i < QUEUE_SIZE; i++) {
		get_int(IPC_NOWAIT, &rc);
		cr_assert_eq(rc, 0);
	}
	get_int(IPC_NOWAIT, &rc);
	cr_assert_eq(rc, IPC_EAGAIN);
}

Test(cpython_queue, nowait)
{
	pq = NULL;
	cr_assert_eq(ipc_queue_new(&q, QUEUE_SIZE), 0);
	nowait_test();
	ipc_queue_close(q);
	cr_assert_eq(ipc_pqueue_new(&pq, QUEUE_SIZE, 0), 0);
	nowait_test();
	ipc_pqueue_close(pq);
	pq = NULL;
}

/* BaseQueueTestMixin.test_shrinking_queue (issue 10110), the part that
 * has a counterpart: a full queue of 3 refuses a fourth item. */
Test(cpython_queue, shrinking_queue_first_half)
{
	pq = NULL;
	cr_assert_eq(ipc_queue_new(&q, 3), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_int(i, LONG_MS), 0);
	cr_assert_eq(put_int(4, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(qsize(), 3);
	ipc_queue_close(q);
}

/* ---- BaseSimpleQueueTest ---------------------------------------------- */

#define SENTINEL (-1)
#define MAX_INPUTS 10000

static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static int seq_next, seq_len;
static int results[MAX_INPUTS];
static _Atomic int n_results;
static _Atomic int thread_errors;

static void *feed(void *arg)
{
	(void)arg;
	for (;;) {
		int val;
		pthread_mutex_lock(&seq_lock); /* Python: seq.pop() */
		val = seq_next < seq_len ? seq_next++ : SENTINEL;
		pthread_mutex_unlock(&seq_lock);
		if (put_int(val, LONG_MS) != 0)
			atomic_fetch_add(&thread_errors, 1);
		if (val == SENTINEL)
			return NULL;
	}
}

static void record(int val)
{
	int i = atomic_fetch_add(&n_results, 1);

	if (i < MAX_INPUTS)
		results[i] = val;
	else
		atomic_fetch_add(&thread_errors, 1);
}

static void *consume(void *arg)
{
	(void)arg;
	for (;;) {
		int rc, val = get_int(LONG_MS, &rc);
		if (rc != 0) {
			atomic_fetch_add(&thread_errors, 1);
			return NULL;
		}
		if (val == SENTINEL)
			return NULL;
		record(val);
	}
}

/* A consumer that retries short gets: with IPC_NOWAIT (Python's
 * get(block=False) and time.sleep(1e-5) between tries) or a 1 ms timeout
 * (Python's get(timeout=1e-5); libipc's timeouts are milliseconds). */
static void *consume_retrying(int timeout_ms, int retry_rc)
{
	long end = t_now_ms() + LONG_MS;

	for (;;) {
		int rc, val;
		while ((val = get_int(timeout_ms, &rc)), rc == retry_rc) {
			if (t_now_ms() > end) {
				atomic_fetch_add(&thread_errors, 1);
				return NULL;
			}
			if (timeout_ms == IPC_NOWAIT)
				sched_yield();
		}
		if (rc != 0) {
			atomic_fetch_add(&thread_errors, 1);
			return NULL;
		}
		if (val == SENTINEL)
			return NULL;
		record(val);
	}
}

static void *consume_nonblock(void *arg)
{
	(void)arg;
	return consume_retrying(IPC_NOWAIT, IPC_EAGAIN);
}

static void *consume_timeout(void *arg)
{
	(void)arg;
	return consume_retrying(1, IPC_ETIMEDOUT);
}

/* BaseSimpleQueueTest.run_threads: n feeders and n consumers over inputs
 * 0 .. len-1; each feeder ends with a sentinel, each consumer stops at
 * one. */
static void run_threads(int n, int len, void *(*consume_fn)(void *))
{
	pthread_t th[100];

	cr_assert_leq(2 * n, 100);
	seq_next = 0;
	seq_len = len;
	atomic_store(&n_results, 0);
	atomic_store(&thread_errors, 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, feed, NULL), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&th[n + i], NULL, consume_fn, NULL),
			     0);
	for (int i = 0; i < 2 * n; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&thread_errors), 0);
	cr_assert(ipc_queue_empty(q));
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* sorted(results) == inputs */
static void check_all_once(int len)
{
	cr_assert_eq(atomic_load(&n_results), len);
	qsort(results, (size_t)len, sizeof(int), cmp_int);
	for (int i = 0; i < len; i++)
		cr_assert_eq(results[i], i, "item %d", i);
}

static void simple_setup(void)
{
	pq = NULL;
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
}

static void simple_teardown(void)
{
	ipc_queue_close(q);
}

/* BaseSimpleQueueTest.test_basic */
Test(cpython_queue, simple_queue_basic, .init = simple_setup,
     .fini = simple_teardown)
{
	int rc;

	cr_assert(ipc_queue_empty(q));
	cr_assert_eq(qsize(), 0);
	cr_assert_eq(put_int(1, LONG_MS), 0);
	cr_assert_not(ipc_queue_empty(q));
	cr_assert_eq(qsize(), 1);
	cr_assert_eq(put_int(2, LONG_MS), 0);
	cr_assert_eq(put_int(3, IPC_NOWAIT), 0);
	cr_assert_eq(put_int(4, LONG_MS), 0);
	cr_assert_eq(qsize(), 4);
	cr_assert_eq(get_int(LONG_MS, &rc), 1);
	cr_assert_eq(qsize(), 3);
	cr_assert_eq(get_int(IPC_NOWAIT, &rc), 2);
	cr_assert_eq(qsize(), 2);
	cr_assert_eq(get_int(IPC_NOWAIT, &rc), 3);
	cr_assert_eq(qsize(), 1);
	cr_assert_eq(get_int(100, &rc), 4);
	cr_assert(ipc_queue_empty(q));
	get_int(IPC_NOWAIT, &rc);
	cr_assert_eq(rc, IPC_EAGAIN);
	get_int(1, &rc);
	cr_assert_eq(rc, IPC_ETIMEDOUT);
	cr_assert(ipc_queue_empty(q));
	cr_assert_eq(qsize(), 0);
}

/* BaseSimpleQueueTest.test_negative_timeout_raises_exception */
Test(cpython_queue, simple_queue_negative_timeout, .init = simple_setup,
     .fini = simple_teardown)
{
	int rc;

	cr_assert_eq(put_int(1, LONG_MS), 0);
	get_int(-2, &rc);
	cr_assert_eq(rc, IPC_EINVAL);
}

/* BaseSimpleQueueTest.test_order: one producer, one consumer, results in
 * order. */
Test(cpython_queue, simple_queue_order, .init = simple_setup,
     .fini = simple_teardown)
{
	run_threads(1, 100, consume);
	cr_assert_eq(atomic_load(&n_results), 100);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(results[i], i);
}

/* BaseSimpleQueueTest.test_many_threads */
Test(cpython_queue, simple_queue_many_threads, .init = simple_setup,
     .fini = simple_teardown)
{
	run_threads(50, 10000, consume);
	check_all_once(10000);
}

/* BaseSimpleQueueTest.test_many_threads_nonblock */
Test(cpython_queue, simple_queue_many_threads_nonblock, .init = simple_setup,
     .fini = simple_teardown)
{
	run_threads(50, 10000, consume_nonblock);
	check_all_once(10000);
}

/* BaseSimpleQueueTest.test_many_threads_timeout */
Test(cpython_queue, simple_queue_many_threads_timeout, .init = simple_setup,
     .fini = simple_teardown)
{
	run_threads(50, 1000, consume_timeout);
	check_all_once(1000);
}
