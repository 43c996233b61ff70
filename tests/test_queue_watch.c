/* SPDX-License-Identifier: MIT */
/*
 * test_queue_watch.c — the queue's watch operation, what waiting on many
 * objects (ipc_wait) sleeps on: readiness as armed, and the wake-ups a
 * watcher must get — from a put, a shutdown, the requeue of a dead
 * consumer's task — without ever taking the wake-up of a blocked getter.
 * On the shm backend (Queue and JoinableQueue) and the mqueue backend.
 *
 * The watch op is internal: this test links the library statically.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "libipc/queue/queue.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

TestSuite(watch, .init = tq_setup, .fini = tq_teardown, .timeout = 60);

/* Sleep on an armed watch for at most ms: 0 woken (or the fd ready),
 * -ETIMEDOUT. */
static int sleep_on(const struct ipc__watch *w, int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	if (w->fd >= 0) {
		struct pollfd p = { .fd = w->fd, .events = w->events };
		return poll(&p, 1, ms) > 0 ? 0 : -ETIMEDOUT;
	}
	if (syscall(SYS_futex, w->word, FUTEX_WAIT, w->val, &ts, NULL, 0) ==
		    -1 &&
	    errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

/* As ipc_wait would: arm, sleep (re-arming every recheck_ms when the
 * backend asks), until ready or ms pass. 1 ready, 0 not in time, or a
 * negative code from watch. */
static int wait_ready(ipc_queue *on, int ms)
{
	long until = t_now_ms() + ms;

	for (;;) {
		struct ipc__watch w;
		long left = until - t_now_ms();
		int rc = ipc__queue_watch(on, &w);

		if (rc < 0)
			return rc;
		if (rc == 0 && left > 0) {
			int slice = (int)left;
			if (w.recheck_ms > 0 && w.recheck_ms < slice)
				slice = w.recheck_ms;
			sleep_on(&w, slice);
		}
		ipc__queue_unwatch(on, &w);
		if (rc == 1)
			return 1;
		if (left <= 0)
			return 0;
	}
}

static int child_wait_ready(void *arg)
{
	(void)arg;
	return wait_ready(tq, 10000) == 1 ? 0 : 1;
}

/* One arm and one sleep on the word, ignoring recheck_ms: 0 only if the
 * sleep was ended by a wake-up (not the timeout) and the word changed. */
static int child_woken_once(void *arg)
{
	struct ipc__watch w;
	int rc, slept;

	(void)arg;
	rc = ipc__queue_watch(tq, &w);
	if (rc != 0)
		return 2;
	slept = sleep_on(&w, 10000);
	ipc__queue_unwatch(tq, &w);
	if (slept != 0)
		return 3; /* not woken */
	/* The getter may have taken the message already: the word's change
	 * is what proves this watcher was told. */
	return atomic_load(w.word) != w.val ? 0 : 4;
}

static int child_get_one(void *arg)
{
	char buf[128];
	ssize_t n = ipc_queue_get(tq, buf, sizeof(buf), 10000);

	(void)arg;
	return n == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : 1;
}

/* Poll until pid sleeps where a watcher or getter sleeps. */
static bool sleeping(pid_t pid)
{
	static const long calls[] = { SYS_futex, SYS_poll, SYS_ppoll,
				      SYS_mq_timedreceive };
	long until = t_now_ms() + 10000;

	while (t_now_ms() < until)
		for (size_t i = 0; i < sizeof(calls) / sizeof(*calls); i++)
			if (t_blocked_in_syscall(pid, calls[i], 1))
				return true;
	return false;
}

/* ---- readiness as armed ------------------------------------------------- */

static void ready_follows_contents(enum tq_kind k)
{
	struct ipc__watch w;
	char buf[128];

	tq_open(k, 0, 0, "watch-ready");
	cr_assert_eq(ipc__queue_watch(tq, &w), 0, "empty: armed, not ready");
	ipc__queue_unwatch(tq, &w);
	cr_assert_eq(ipc_queue_put(tq, "hello", 5, IPC_NOWAIT), 0);
	cr_assert_eq(ipc__queue_watch(tq, &w), 1, "a message: ready");
	ipc__queue_unwatch(tq, &w);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT), 5);
	cr_assert_eq(ipc__queue_watch(tq, &w), 0, "drained: not ready");
	ipc__queue_unwatch(tq, &w);
	cr_assert_eq(ipc_queue_shutdown(tq), 0);
	cr_assert_eq(ipc__queue_watch(tq, &w), 1, "shut down: a get returns");
	ipc__queue_unwatch(tq, &w);
	if (k == TQ_SHM_JOINABLE)
		cr_assert_eq(ipc_queue_task_done(tq), 0);
}

Test(watch, shm_ready_follows_contents)
{
	ready_follows_contents(TQ_SHM);
}

Test(watch, joinable_ready_follows_contents)
{
	ready_follows_contents(TQ_SHM_JOINABLE);
}

Test(watch, mqueue_ready_follows_contents)
{
	ready_follows_contents(TQ_MQUEUE);
}

Test(watch, shm_watch_says_which_word)
{
	struct ipc__watch w;

	tq_open(TQ_SHM, 0, 0, "watch-word");
	cr_assert_eq(ipc__queue_watch(tq, &w), 0);
	cr_assert_neq(w.word, NULL);
	cr_assert(w.shared);
	cr_assert_eq(w.fd, -1);
	cr_assert_eq(w.recheck_ms, 0, "every change wakes the word");
	ipc__queue_unwatch(tq, &w);
}

Test(watch, mqueue_watch_polls_the_mq_and_asks_for_rechecks)
{
	struct ipc__watch w;

	tq_open(TQ_MQUEUE, 0, 0, "watch-fd");
	cr_assert_eq(ipc__queue_watch(tq, &w), 0);
	cr_assert_eq(w.word, NULL);
	cr_assert_geq(w.fd, 0);
	cr_assert_eq(w.events, POLLIN);
	cr_assert_gt(w.recheck_ms, 0, "a shutdown does not wake poll");
	ipc__queue_unwatch(tq, &w);
}

Test(watch, bad_arguments_are_refused)
{
	struct ipc__watch w;

	cr_assert_eq(ipc__queue_watch(NULL, &w), IPC_EINVAL);
	tq_open(TQ_SHM, 0, 0, "watch-bad");
	cr_assert_eq(ipc__queue_watch(tq, NULL), IPC_EINVAL);
	ipc__queue_unwatch(NULL, &w); /* ignored */
}

/* ---- wake-ups ------------------------------------------------------------ */

static void woken_by_put(enum tq_kind k)
{
	pid_t c;

	tq_open(k, 0, 0, "watch-put");
	c = t_spawn(child_wait_ready, NULL);
	cr_assert(sleeping(c), "the watcher sleeps");
	cr_assert_eq(ipc_queue_put(tq, "hello", 5, IPC_NOWAIT), 0);
	cr_assert_eq(t_reap(c, 10000), 0, "the watcher saw the put");
}

Test(watch, shm_watcher_is_woken_by_a_put)
{
	woken_by_put(TQ_SHM);
}

Test(watch, joinable_watcher_is_woken_by_a_put)
{
	woken_by_put(TQ_SHM_JOINABLE);
}

Test(watch, mqueue_watcher_is_woken_by_a_put)
{
	woken_by_put(TQ_MQUEUE);
}

static void woken_by_shutdown(enum tq_kind k, bool immediate)
{
	pid_t c;

	tq_open(k, 0, 0, "watch-shut");
	c = t_spawn(child_wait_ready, NULL);
	cr_assert(sleeping(c), "the watcher sleeps");
	cr_assert_eq(immediate ? ipc_queue_shutdown_immediate(tq)
			       : ipc_queue_shutdown(tq),
		     0);
	cr_assert_eq(t_reap(c, 10000), 0, "the watcher saw the shutdown");
}

Test(watch, shm_watcher_is_woken_by_shutdown)
{
	woken_by_shutdown(TQ_SHM, false);
}

Test(watch, joinable_watcher_is_woken_by_shutdown)
{
	woken_by_shutdown(TQ_SHM_JOINABLE, false);
}

Test(watch, mqueue_watcher_is_woken_by_shutdown)
{
	woken_by_shutdown(TQ_MQUEUE, false);
}

Test(watch, shm_watcher_is_woken_by_shutdown_immediate)
{
	woken_by_shutdown(TQ_SHM, true);
}

Test(watch, joinable_watcher_is_woken_by_shutdown_immediate)
{
	woken_by_shutdown(TQ_SHM_JOINABLE, true);
}

Test(watch, mqueue_watcher_is_woken_by_shutdown_immediate)
{
	woken_by_shutdown(TQ_MQUEUE, true);
}

/* The shm backend wakes the word itself: one sleep, no recheck. */
Test(watch, shm_watcher_sleeping_once_is_woken_by_shutdown)
{
	pid_t c;

	tq_open(TQ_SHM, 0, 0, "watch-shut1");
	c = t_spawn(child_woken_once, NULL);
	cr_assert(sleeping(c));
	cr_assert_eq(ipc_queue_shutdown(tq), 0);
	cr_assert_eq(t_reap(c, 15000), 0);
}

static volatile int *consumer_has_task;

static int child_get_and_hang(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(tq, buf, sizeof(buf), 10000) != 5)
		return 1;
	*consumer_has_task = 1;
	for (;;)
		pause(); /* killed by the parent, task unfinished */
}

/* Nobody but the watcher looks at the queue: its re-arming is what finds
 * the dead consumer and requeues its task, which makes the queue ready. */
Test(watch, joinable_watcher_is_woken_by_the_requeue_of_a_dead_consumers_task)
{
	pid_t consumer, watcher;
	char buf[128];

	consumer_has_task = t_shared(sizeof(int));
	tq_open(TQ_SHM_JOINABLE, 0, 0, "watch-requeue");
	cr_assert_eq(ipc_queue_put(tq, "hello", 5, IPC_NOWAIT), 0);
	consumer = t_spawn(child_get_and_hang, NULL);
	cr_assert(t_wait_count(consumer_has_task, 1, 10000));
	cr_assert_eq(ipc_queue_qsize(tq), 0, "the task is the consumer's");
	watcher = t_spawn(child_wait_ready, NULL);
	cr_assert(sleeping(watcher), "the watcher sleeps on an empty queue");
	cr_assert_eq(t_kill(consumer), -SIGKILL);
	cr_assert_eq(t_reap(watcher, 10000), 0, "the requeue woke it");
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 10000), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0, "the same task, whole");
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, 10000), 0);
}

/* A getter and two watchers sleep on one word; one put must wake all
 * three. A put that woke only one sleeper would leave a watcher asleep
 * until its 10 s timeout (or the getter to its recheck): each watcher
 * here sleeps once, on the word alone, and fails if not woken. */
static void no_stolen_wakeup(enum tq_kind k)
{
	pid_t g, w1, w2;

	tq_open(k, 0, 0, "watch-steal");
	g = t_spawn(child_get_one, NULL);
	cr_assert(t_blocked_in_futex(g, 10000), "the getter sleeps");
	w1 = t_spawn(child_woken_once, NULL);
	w2 = t_spawn(child_woken_once, NULL);
	cr_assert(t_blocked_in_futex(w1, 10000));
	cr_assert(t_blocked_in_futex(w2, 10000));
	cr_assert_eq(ipc_queue_put(tq, "hello", 5, IPC_NOWAIT), 0);
	cr_assert_eq(t_reap(g, 15000), 0, "the getter got the message");
	cr_assert_eq(t_reap(w1, 15000), 0, "watcher 1 was woken");
	cr_assert_eq(t_reap(w2, 15000), 0, "watcher 2 was woken");
}

Test(watch, shm_watchers_never_take_a_blocked_getters_wakeup)
{
	no_stolen_wakeup(TQ_SHM);
}

Test(watch, joinable_watchers_never_take_a_blocked_getters_wakeup)
{
	no_stolen_wakeup(TQ_SHM_JOINABLE);
}

/* After unwatch, the count is gone: a put on a queue nobody waits on
 * makes no wake-up system call (checked through ipc_stat's waiters). */
Test(watch, unwatch_removes_the_watcher)
{
	struct ipc__watch w;
	ipc_object_info info;

	t_name(tq_name, sizeof(tq_name), "watch-count");
	cr_assert_eq(ipc_queue_open(&tq, tq_name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc__queue_watch(tq, &w), 0);
	cr_assert_eq(ipc_stat(tq_name, &info), 0);
	cr_assert_eq(info.waiters, 1, "one watcher counted");
	ipc__queue_unwatch(tq, &w);
	cr_assert_eq(ipc_stat(tq_name, &info), 0);
	cr_assert_eq(info.waiters, 0);
}
