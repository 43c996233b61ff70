/* SPDX-License-Identifier: MIT */
/*
 * test_queue_shutdown.c — ipc_queue_shutdown_immediate (Python 3.13's
 * shutdown(immediate=True)) on the shm backend, Queue and JoinableQueue,
 * and on the mqueue backend: pending messages are dropped, getters,
 * putters and joiners wake, and task accounting stays true.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

TestSuite(shutdown_now, .init = tq_setup, .fini = tq_teardown, .timeout = 60);

static void put_three(void)
{
	cr_assert_eq(ipc_queue_put(tq, "one", 3, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_put(tq, "two", 3, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_put(tq, "six", 3, IPC_NOWAIT), 0);
}

/* ---- dropping ------------------------------------------------------------ */

static void drops_what_is_queued(enum tq_kind k)
{
	char buf[64];

	tq_open(k, 0, 64, "now-drop");
	put_three();
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0, "every message dropped");
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 5000), IPC_ECLOSED,
		     "at once, also with a timeout");
	cr_assert_eq(ipc_queue_put(tq, "x", 1, IPC_NOWAIT), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0, "again: 0");
	if (tq_joinable(k)) {
		cr_assert_eq(ipc_queue_unfinished(tq), 0, "dropped = done");
		cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), 0);
	}
}

Test(shutdown_now, shm_drops_what_is_queued)
{
	drops_what_is_queued(TQ_SHM);
}

Test(shutdown_now, joinable_drops_what_is_queued)
{
	drops_what_is_queued(TQ_SHM_JOINABLE);
}

Test(shutdown_now, mqueue_drops_what_is_queued)
{
	drops_what_is_queued(TQ_MQUEUE);
}

Test(shutdown_now, mqueue_joinable_drops_what_is_queued)
{
	drops_what_is_queued(TQ_MQUEUE_JOINABLE);
}

/* Tasks consumers hold are not the queue's to drop: join waits for
 * their task_done, and only for that. */
static void held_tasks_still_need_task_done(enum tq_kind k)
{
	char buf[64];

	tq_open(k, 0, 64, "now-held");
	put_three();
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT), 3);
	cr_assert_eq(memcmp(buf, "one", 3), 0);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_unfinished(tq), 1, "the held task only");
	cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_unfinished(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_task_done(tq), IPC_EINVAL, "no more tasks");
}

Test(shutdown_now, joinable_held_tasks_still_need_task_done)
{
	held_tasks_still_need_task_done(TQ_SHM_JOINABLE);
}

Test(shutdown_now, mqueue_joinable_held_tasks_still_need_task_done)
{
	held_tasks_still_need_task_done(TQ_MQUEUE_JOINABLE);
}

/* A requeued task (its consumer died) is pending too: dropped. */
static volatile int *got;

static int child_get_and_die(void *arg)
{
	char buf[64];

	(void)arg;
	if (ipc_queue_get(tq, buf, sizeof(buf), 10000) != 3)
		return 1;
	*got = 1;
	for (;;)
		pause();
}

Test(shutdown_now, joinable_drops_a_dead_consumers_requeued_task)
{
	char buf[64];
	pid_t c;

	got = t_shared(sizeof(int));
	tq_open(TQ_SHM_JOINABLE, 0, 64, "now-requeued");
	cr_assert_eq(ipc_queue_put(tq, "one", 3, IPC_NOWAIT), 0);
	c = t_spawn(child_get_and_die, NULL);
	cr_assert(t_wait_count(got, 1, 10000));
	cr_assert_eq(t_kill(c), -SIGKILL);
	/* A sleeping joiner reaps every slice: the dead consumer's task is
	 * requeued, and so pending again. */
	cr_assert_eq(ipc_queue_join(tq, 500), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(tq), 1, "requeued");
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0, "dropped");
	cr_assert_eq(ipc_queue_unfinished(tq), 0, "and counted done");
	cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
}

Test(shutdown_now, after_a_plain_shutdown_drops_what_was_left)
{
	char buf[64];

	tq_open(TQ_SHM, 0, 64, "now-after");
	put_three();
	cr_assert_eq(ipc_queue_shutdown(tq), 0);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT), 3,
		     "a plain shutdown lets gets drain");
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
}

Test(shutdown_now, null_queue_is_refused)
{
	cr_assert_eq(ipc_queue_shutdown_immediate(NULL), IPC_EINVAL);
}

/* ---- waking -------------------------------------------------------------- */

static int child_get_expect_closed(void *arg)
{
	char buf[64];

	(void)arg;
	return ipc_queue_get(tq, buf, sizeof(buf), 20000) == IPC_ECLOSED ? 0
									 : 1;
}

static int child_put_expect_closed(void *arg)
{
	(void)arg;
	return ipc_queue_put(tq, "late", 4, 20000) == IPC_ECLOSED ? 0 : 1;
}

static int child_join(void *arg)
{
	(void)arg;
	return ipc_queue_join(tq, 20000) == 0 ? 0 : 1;
}

/* Start `n` children running fn, let them fall asleep in their call,
 * shut down immediately: each must return what fn expects (exit 0). */
static void wakes(int n, int (*fn)(void *), const char *what)
{
	pid_t c[2];

	for (int i = 0; i < n; i++)
		c[i] = t_spawn(fn, NULL);
	for (int i = 0; i < n; i++)
		cr_assert(tq_asleep(c[i]), "%s %d sleeps", what, i);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(t_reap(c[i], 20000), 0, "%s %d woke right", what,
			     i);
}

static void wakes_getters(enum tq_kind k)
{
	tq_open(k, 0, 64, "now-getters");
	wakes(2, child_get_expect_closed, "getter");
}

Test(shutdown_now, shm_wakes_blocked_getters_with_closed)
{
	wakes_getters(TQ_SHM);
}

Test(shutdown_now, joinable_wakes_blocked_getters_with_closed)
{
	wakes_getters(TQ_SHM_JOINABLE);
}

Test(shutdown_now, mqueue_wakes_blocked_getters_with_closed)
{
	wakes_getters(TQ_MQUEUE);
}

static void wakes_putters(enum tq_kind k)
{
	tq_open(k, 1, 64, "now-putters");
	cr_assert_eq(ipc_queue_put(tq, "full", 4, IPC_NOWAIT), 0);
	wakes(1, child_put_expect_closed, "putter");
	cr_assert_eq(ipc_queue_qsize(tq), 0, "and nothing went in");
}

Test(shutdown_now, shm_wakes_blocked_putters_with_closed)
{
	wakes_putters(TQ_SHM);
}

Test(shutdown_now, mqueue_wakes_blocked_putters_with_closed)
{
	wakes_putters(TQ_MQUEUE);
}

static void wakes_joiners(enum tq_kind k)
{
	tq_open(k, 0, 64, "now-joiners");
	put_three();
	wakes(1, child_join, "joiner");
}

Test(shutdown_now, joinable_wakes_joiners_whose_tasks_were_dropped)
{
	wakes_joiners(TQ_SHM_JOINABLE);
}

Test(shutdown_now, mqueue_joinable_wakes_joiners_whose_tasks_were_dropped)
{
	wakes_joiners(TQ_MQUEUE_JOINABLE);
}

/* A named queue: the drop is in the object, seen by every handle. */
Test(shutdown_now, is_seen_by_another_handle)
{
	ipc_queue *other;
	char buf[64];

	t_name(tq_name, sizeof(tq_name), "now-named");
	cr_assert_eq(ipc_queue_open(&tq, tq_name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_queue_open(&other, tq_name, 0, NULL), 0);
	put_three();
	cr_assert_eq(ipc_queue_shutdown_immediate(other), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
	ipc_queue_close(other);
}
