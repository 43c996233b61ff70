/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c — handles shared by the threads of one process: a
 * JoinableQueue, a Queue and a Lock used by several threads at once through
 * one handle, as ipc.h promises every handle may be. Also the
 * ThreadSanitizer run's suite (.ci/run), built for it without Criterion
 * as tests/test_threads_standalone (tests/standalone.h).
 *
 * Threads never call cr_assert: they count what went wrong in atomics and
 * the main thread asserts.
 *
 * An Event is set by FUTEX_WAKE_OP, a store the kernel makes, which
 * ThreadSanitizer cannot see; a TSan build of libipc annotates it as a
 * release (core/futex.c), which the Event test below relies on.
 */
#ifdef T_STANDALONE
#include "tests/standalone.h"
#else
#include <criterion/criterion.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_queue *q;

static void teardown(void)
{
	ipc_queue_close(q);
	q = NULL;
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(threads, .fini = teardown, .timeout = 120);

/* Tasks are "<id>:" and a pattern derived from the id, 8..300 bytes, so a
 * torn or invented task cannot pass task_ok. */
static size_t make_task(char *buf, uint32_t id)
{
	size_t len = (size_t)snprintf(buf, 16, "%u:", id);
	size_t want = 8 + (id * 37) % 293;

	while (len < want) {
		buf[len] = (char)('a' + (id + len) % 26);
		len++;
	}
	return len;
}

static bool task_ok(const char *buf, ssize_t n, uint32_t *id)
{
	char ref[320];
	unsigned long v;
	char *end;

	if (n <= 0)
		return false;
	v = strtoul(buf, &end, 10);
	if (end == buf || *end != ':' || v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return (size_t)n == make_task(ref, *id) && memcmp(buf, ref, n) == 0;
}

#define TASKS 20000
#define THREADS 4

static _Atomic int seen[TASKS];
static _Atomic int got, bad, errors;

/* The producer is a thread of the same process, on the same handle, so
 * that ThreadSanitizer sees its writes into the ring too. */
static void *produce(void *arg)
{
	char buf[320];

	(void)arg;
	for (uint32_t id = 0; id < TASKS; id++)
		if (ipc_queue_put(q, buf, make_task(buf, id), 20000) != 0)
			atomic_fetch_add(&errors, 1);
	return NULL;
}

/* Get until every task was seen by someone; task_done each if joinable. */
static void *consume(void *arg)
{
	bool joinable = arg != NULL;
	char buf[320];
	long t0 = t_now_ms();

	while (atomic_load(&got) < TASKS && t_now_ms() - t0 < 60000) {
		uint32_t id;
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 100);
		if (n == IPC_ETIMEDOUT)
			continue;
		if (!task_ok(buf, n, &id) || id >= TASKS) {
			atomic_fetch_add(&bad, 1);
			break;
		}
		atomic_fetch_add(&seen[id], 1);
		atomic_fetch_add(&got, 1);
		if (joinable && ipc_queue_task_done(q) != 0)
			atomic_fetch_add(&errors, 1);
	}
	return NULL;
}

static void run_consumers(bool joinable)
{
	pthread_t th[THREADS], producer;

	cr_assert_eq(pthread_create(&producer, NULL, produce, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, consume,
					    joinable ? (void *)1 : NULL),
			     0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_join(producer, NULL);
	cr_assert_eq(atomic_load(&bad), 0, "no torn or invented task");
	cr_assert_eq(atomic_load(&errors), 0, "every put and task_done worked");
	for (int id = 0; id < TASKS; id++)
		cr_assert_eq(atomic_load(&seen[id]), 1, "task %d got %d times",
			     id, atomic_load(&seen[id]));
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

/* A small ring, so that a record freed too early is soon overwritten. */
Test(threads, four_consumer_threads_on_one_joinable_handle_get_each_task_once)
{
	ipc_queue_attr attr = { .capacity = 16384, .joinable = true };

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	run_consumers(true);
	cr_assert_eq(ipc_queue_join(q, 5000), 0);
}

Test(threads, four_consumer_threads_on_one_queue_handle_get_each_message_once)
{
	ipc_queue_attr attr = { .capacity = 16384 };

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	run_consumers(false);
}

/* ---- Consumer identity ----------------------------------------------------
 */

static _Atomic int step;

/* Poll until *w reaches want, at most ms milliseconds. */
static bool wait_for(_Atomic int *w, int want, int ms)
{
	long t0 = t_now_ms();

	while (atomic_load(w) < want) {
		if (t_now_ms() - t0 >= ms)
			return false;
		usleep(1000);
	}
	return true;
}

static int get_task(char *buf)
{
	uint32_t id;
	ssize_t n = ipc_queue_get(q, buf, 320, 10000);

	return task_ok(buf, n, &id) ? (int)id : -1;
}

/* Does one task, then gets another and exits without finishing it. */
static void *exit_holding_a_task(void *arg)
{
	char buf[320];

	(void)arg;
	if (get_task(buf) != 0 || ipc_queue_task_done(q) != 0)
		atomic_fetch_add(&errors, 1);
	if (get_task(buf) != 1)
		atomic_fetch_add(&errors, 1);
	return NULL;
}

/* Holds task 2 until step 1, then finishes it. */
static void *hold_a_task(void *arg)
{
	char buf[320];
	long t0 = t_now_ms();

	(void)arg;
	if (get_task(buf) != 2)
		atomic_fetch_add(&errors, 1);
	atomic_store(&step, 1);
	while (atomic_load(&step) < 2 && t_now_ms() - t0 < 30000)
		usleep(1000);
	if (ipc_queue_task_done(q) != 0)
		atomic_fetch_add(&errors, 1);
	return NULL;
}

Test(threads, a_consumer_thread_exiting_requeues_only_its_own_tasks)
{
	pthread_t a, b;
	char buf[320];

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (uint32_t id = 0; id < 3; id++)
		cr_assert_eq(ipc_queue_put(q, buf, make_task(buf, id), 0), 0);
	cr_assert_eq(pthread_create(&a, NULL, exit_holding_a_task, NULL), 0);
	pthread_join(a, NULL);
	cr_assert_eq(pthread_create(&b, NULL, hold_a_task, NULL), 0);
	cr_assert(wait_for(&step, 1, 10000));
	/* The join's periodic look reaps the exited thread: its task 1 is
	 * queued again, and b's task 2 is not. */
	cr_assert_eq(ipc_queue_join(q, 400), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 1, "only the exited thread's task");
	cr_assert_eq(get_task(buf), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "not b's to finish");
	atomic_store(&step, 2);
	pthread_join(b, NULL);
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert_eq(ipc_queue_join(q, 5000), 0);
}

/* ---- 1024 consumers -------------------------------------------------------
 */

#define MANY 1024

static _Atomic int arrived;
static char many_name[128];

/* A consumer thread with its own handle: opens, gets one task, holds it
 * until every other thread has one too, finishes it and closes. */
static void *get_hold_finish(void *arg)
{
	ipc_queue *mine;
	char buf[320];
	uint32_t id;
	long t0 = t_now_ms();

	(void)arg;
	if (ipc_queue_open(&mine, many_name, 0, NULL) != 0) {
		atomic_fetch_add(&errors, 1);
		atomic_fetch_add(&arrived, 1);
		return NULL;
	}
	if (!task_ok(buf, ipc_queue_get(mine, buf, sizeof(buf), 10000), &id))
		atomic_fetch_add(&errors, 1);
	atomic_fetch_add(&arrived, 1);
	while (atomic_load(&step) == 0 && t_now_ms() - t0 < 60000)
		usleep(2000);
	if (ipc_queue_task_done(mine) != 0)
		atomic_fetch_add(&errors, 1);
	ipc_queue_close(mine);
	return NULL;
}

/* A consumer thread keeps its slot's robust mutex locked, and so on its
 * robust list, until it exits: another thread closing the handle cannot
 * unlock it for it. That thread must be able to go on locking (here:
 * another queue's locks) after the close. */
static pthread_barrier_t closing;
static atomic_int closing_fails;

/* Wait while the main thread closes q, then lock a fresh queue's robust
 * mutexes: a Queue of another size, not mapped where q was. */
static void *use_another_queue_after_the_close(void)
{
	const ipc_queue_attr small = { .capacity = 4096 };
	char buf[8];
	ipc_queue *other;

	pthread_barrier_wait(&closing); /* the main thread closes q */
	pthread_barrier_wait(&closing);
	if (ipc_queue_open(&other, NULL, 0, &small) != 0) {
		closing_fails++;
		return NULL;
	}
	if (ipc_queue_put(other, "y", 1, 0) != 0 ||
	    ipc_queue_get(other, buf, sizeof(buf), 1000) != 1)
		closing_fails++;
	ipc_queue_close(other);
	return NULL;
}

static void *consume_then_use_another_queue(void *arg)
{
	char buf[8];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) != 1)
		closing_fails++;
	return use_another_queue_after_the_close();
}

/* Start fn in a thread, run meanwhile (unless NULL) in this one, close q
 * from this one while fn waits, and let it go on. */
static void close_q_beside_after(void *(*fn)(void *), void (*meanwhile)(void))
{
	pthread_t th;

	pthread_barrier_init(&closing, NULL, 2);
	cr_assert_eq(pthread_create(&th, NULL, fn, NULL), 0);
	if (meanwhile != NULL)
		meanwhile();
	pthread_barrier_wait(&closing);
	ipc_queue_close(q);
	q = NULL;
	pthread_barrier_wait(&closing);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&closing);
	cr_assert_eq(closing_fails, 0);
}

static void close_q_beside(void *(*fn)(void *))
{
	close_q_beside_after(fn, NULL);
}

Test(threads, a_consumer_thread_goes_on_after_another_thread_closes_its_handle)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_put(q, "x", 1, 0), 0);
	close_q_beside(consume_then_use_another_queue);
}

/* The same for the queue's biased producer: the first thread to put
 * holds the registration robust mutex while it owns the fast path. */
static void *produce_then_use_another_queue(void *arg)
{
	(void)arg;
	if (ipc_queue_put(q, "a", 1, 1000) != 0 ||
	    ipc_queue_put(q, "b", 1, 1000) != 0) /* the second one fast */
		closing_fails++;
	return use_another_queue_after_the_close();
}

Test(threads, a_producer_thread_goes_on_after_another_thread_closes_its_handle)
{
	ipc_queue *again;
	char name[128], buf[8];

	t_name(name, sizeof(name), "threads-closed-owner");
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_queue_open(&again, name, 0, NULL), 0);
	close_q_beside(produce_then_use_another_queue);
	/* The closed handle's owner will not answer: the next producer
	 * revokes it with the barrier, within its timeout. */
	cr_assert_eq(ipc_queue_put(again, "c", 1, 1000), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ipc_queue_get(again, buf, sizeof(buf), 1000), 1);
		cr_assert_eq(buf[0], "abc"[i]);
	}
	ipc_queue_close(again);
	ipc_unlink(name);
}

/* A thread that owned the fast path through this handle and was revoked
 * keeps its registration (a robust mutex) until it puts again. Meanwhile
 * the main thread revokes it, takes the fast path back through another
 * registration (more than RING_REBIAS_PUTS locked puts in a row: 300) and
 * closes the handle: the first thread's robust list still runs through its
 * registration in the handle's pages, so they must stay mapped. */
static pthread_barrier_t owned;

static void *own_then_use_another_queue(void *arg)
{
	(void)arg;
	if (ipc_queue_put(q, "a", 1, 1000) != 0 ||
	    ipc_queue_put(q, "b", 1, 1000) != 0) /* the second one fast */
		closing_fails++;
	pthread_barrier_wait(&owned);
	return use_another_queue_after_the_close();
}

/* The main thread, once the other owns: revoke it, take over. */
static void revoke_and_take_over(void)
{
	pthread_barrier_wait(&owned);
	for (int i = 0; i < 300; i++)
		cr_assert_eq(ipc_queue_put(q, "c", 1, 10000), 0);
}

Test(threads,
     a_revoked_owner_thread_goes_on_after_another_takes_over_and_closes)
{
	ipc_queue *again;
	char name[128], buf[8];

	t_name(name, sizeof(name), "threads-revoked-owner");
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_queue_open(&again, name, 0, NULL), 0);
	pthread_barrier_init(&owned, NULL, 2);
	close_q_beside_after(own_then_use_another_queue, revoke_and_take_over);
	pthread_barrier_destroy(&owned);
	for (int i = 0; i < 302; i++) {
		cr_assert_eq(ipc_queue_get(again, buf, sizeof(buf), 1000), 1);
		cr_assert_eq(buf[0], i < 2 ? "ab"[i] : 'c');
	}
	ipc_queue_close(again);
	ipc_unlink(name);
}

Test(threads, a_joinable_queue_takes_1024_consumers_at_once)
{
	static pthread_t th[MANY];
	ipc_queue_attr qa = { .capacity = 262144, .joinable = true };
	pthread_attr_t attr;
	char buf[320];
	int started = 0;

	cr_assert_geq(IPC_QUEUE_MAX_CONSUMERS, MANY);
	t_name(many_name, sizeof(many_name), "threads-many");
	cr_assert_eq(ipc_queue_open(&q, many_name, IPC_CREATE, &qa), 0);
	for (uint32_t id = 0; id < MANY; id++)
		cr_assert_eq(ipc_queue_put(q, buf, make_task(buf, id), 0), 0);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	for (; started < MANY; started++)
		if (pthread_create(&th[started], &attr, get_hold_finish,
				   NULL) != 0)
			break;
	pthread_attr_destroy(&attr);
	/* Every thread holds its task while the others get theirs. */
	cr_expect(wait_for(&arrived, started, 60000));
	atomic_store(&step, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ipc_unlink(many_name);
	cr_assert_eq(started, MANY, "threads started");
	cr_assert_eq(atomic_load(&errors), 0, "no get got IPC_EBUSY");
	cr_assert_eq(ipc_queue_join(q, 5000), 0);
}

/* ---- A Lock ------------------------------------------------------------- */

static ipc_lock *lk;
static long counter;

static void *count_under_lock(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		if (ipc_lock_acquire(lk, 10000) != 0) {
			atomic_fetch_add(&errors, 1);
			return NULL;
		}
		counter++; /* a data race unless the lock excludes */
		if (ipc_lock_release(lk) != 0)
			atomic_fetch_add(&errors, 1);
	}
	return NULL;
}

Test(threads, four_threads_on_one_lock_handle_exclude_each_other)
{
	pthread_t th[THREADS];

	cr_assert_eq(ipc_lock_new(&lk), 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(
			pthread_create(&th[i], NULL, count_under_lock, NULL),
			0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ipc_lock_close(lk);
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert_eq(counter, THREADS * 20000L);
}

/* ---- A Semaphore and an Event ----------------------------------------------
 */

static ipc_sem *sem;
static _Atomic int holders, most_holders;

static void *hold_a_permit(void *arg)
{
	(void)arg;
	for (int i = 0; i < 5000; i++) {
		int now, most;
		if (ipc_sem_acquire(sem, 10000) != 0) {
			atomic_fetch_add(&errors, 1);
			return NULL;
		}
		now = atomic_fetch_add(&holders, 1) + 1;
		most = atomic_load(&most_holders);
		while (now > most &&
		       !atomic_compare_exchange_weak(&most_holders, &most, now))
			;
		atomic_fetch_sub(&holders, 1);
		if (ipc_sem_release(sem) != 0)
			atomic_fetch_add(&errors, 1);
	}
	return NULL;
}

Test(threads, four_threads_on_one_semaphore_handle_never_exceed_its_value)
{
	pthread_t th[THREADS];

	cr_assert_eq(ipc_sem_new(&sem, 2, 2), 0);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, hold_a_permit, NULL),
			     0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(ipc_sem_value(sem), 2, "every permit returned");
	ipc_sem_close(sem);
	cr_assert_eq(atomic_load(&errors), 0);
	cr_assert(atomic_load(&most_holders) <= 2);
}

/* Two threads hand a plain (non-atomic) value back and forth with two
 * Events on shared handles: each writes it, then sets the other's Event;
 * the other waits, reads it, clears its Event. An Event's set must publish
 * what the setter wrote before it (as Python's threading.Event does), so
 * every read sees the value written for it, and ThreadSanitizer (which
 * sees the set only through libipc's annotation) reports no race. */
#define HANDOFFS 2000

static ipc_event *ping, *pong;
static long handoff_value; /* plain: ordered by the Events alone */

static void *pong_side(void *arg)
{
	(void)arg;
	for (long i = 0; i < HANDOFFS; i++) {
		if (ipc_event_wait(ping, 30000) != 0 ||
		    handoff_value != 2 * i) {
			atomic_fetch_add(&errors, 1);
			return NULL;
		}
		ipc_event_clear(ping);
		handoff_value = 2 * i + 1;
		ipc_event_set(pong);
	}
	return NULL;
}

Test(threads, an_event_set_publishes_what_the_setter_wrote_before_it)
{
	pthread_t th;
	bool ok = true;

	cr_assert_eq(ipc_event_new(&ping), 0);
	cr_assert_eq(ipc_event_new(&pong), 0);
	cr_assert_eq(pthread_create(&th, NULL, pong_side, NULL), 0);
	for (long i = 0; ok && i < HANDOFFS; i++) {
		handoff_value = 2 * i;
		ipc_event_set(ping);
		ok = ipc_event_wait(pong, 30000) == 0 &&
		     handoff_value == 2 * i + 1;
		ipc_event_clear(pong);
	}
	if (!ok) /* unblock the other side, which then fails its wait */
		ipc_event_set(ping);
	pthread_join(th, NULL);
	ipc_event_close(ping);
	ipc_event_close(pong);
	cr_assert(ok, "every handoff saw its value");
	cr_assert_eq(atomic_load(&errors), 0);
}

/* Short-lived producer threads on one handle, two at a time, each putting
 * more than RING_REBIAS_PUTS: the fast path changes hands between threads
 * of the handle again and again (revoked, taken back after a streak, left
 * by a thread that exits). A thread that took its own stale owner fields
 * for the new owner's put fast beside it, and two producers wrote one
 * record: every put that returned 0 must be got exactly once. */
static _Atomic uint32_t turns_next;
static _Atomic int turns_bad;

static void *put_turns(void *arg)
{
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++) {
		uint32_t v = atomic_fetch_add(&turns_next, 1);
		if (ipc_queue_put(q, &v, sizeof(v), 10000) != 0)
			atomic_fetch_add(&turns_bad, 1);
	}
	return NULL;
}

#define TURNS_MAX (1u << 22)
static uint8_t turns_seen[TURNS_MAX];

static void *get_turns(void *arg)
{
	long *turns_got = arg;
	uint32_t v;

	for (;;) {
		ssize_t n = ipc_queue_get(q, &v, sizeof(v), 3000);
		if (n == IPC_ETIMEDOUT)
			return NULL;
		if (n != (ssize_t)sizeof(v) || v >= TURNS_MAX ||
		    turns_seen[v]++)
			atomic_fetch_add(&turns_bad, 1);
		(*turns_got)++;
	}
}

Test(threads, producer_threads_passing_the_fast_path_on_lose_nothing)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 64 };
	pthread_t getter;
	long n_got = 0;
	uint32_t missing = 0;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	cr_assert_eq(pthread_create(&getter, NULL, get_turns, &n_got), 0);
	for (int round = 0; round < 6000; round++) {
		pthread_t a, b;
		cr_assert_eq(pthread_create(
				     &a, NULL, put_turns,
				     (void *)(intptr_t)(round % 7 ? 300 : 600)),
			     0);
		cr_assert_eq(
			pthread_create(&b, NULL, put_turns,
				       (void *)(intptr_t)(round % 3 ? 300 : 5)),
			0);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		if (round % 11 == 0) { /* alone, in a dead owner's storage */
			cr_assert_eq(pthread_create(&a, NULL, put_turns,
						    (void *)(intptr_t)1),
				     0);
			pthread_join(a, NULL);
		}
	}
	pthread_join(getter, NULL);
	for (uint32_t v = 0; v < turns_next; v++)
		missing += turns_seen[v] == 0;
	cr_assert_eq(turns_bad, 0, "failed puts, torn or doubled messages");
	cr_assert_eq(missing, 0, "%u of %u messages lost", missing, turns_next);
	cr_assert_eq(n_got, (long)turns_next);
}
