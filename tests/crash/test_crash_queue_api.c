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

/* ---- batches --------------------------------------------------------------
 */

static int child_put_many(void *arg)
{
	int from = (int)(intptr_t)arg;
	static char out[8][128];
	struct iovec v[5];

	for (int i = 0; i < 5; i++)
		v[i] = (struct iovec){ out[i], tq_msg(out[i], from + i) };
	return ipc_queue_put_many(tq, v, 5, 10000) == 5 ? 0 : 1;
}

/* Killed before its chunk's one publishing store: none of the batch is
 * in, the producers' lock is repaired, and the queue goes on. */
Test(crashapi, put_many_killed_before_publishing_puts_none_of_the_chunk)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	put_range(1, 2);
	tq_die_at("queue.put_many.written", NULL, child_put_many,
		  (void *)(intptr_t)3);
	cr_assert_eq(ipc_queue_qsize(tq), 2, "no phantom");
	put_range(8, 8);
	tq_expect(1);
	tq_expect(2);
	tq_expect(8);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
}

Test(crashapi, put_many_killed_after_publishing_delivers_the_chunk_whole)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	tq_die_at("queue.put_many.published", NULL, child_put_many,
		  (void *)(intptr_t)3);
	cr_assert_eq(ipc_queue_qsize(tq), 5);
	for (int n = 3; n <= 7; n++)
		tq_expect(n);
}

static int child_put_many_slowly(void *arg)
{
	static char out[7][128];
	struct iovec v[7];

	(void)arg;
	for (int i = 0; i < 7; i++)
		v[i] = (struct iovec){ out[i], tq_msg(out[i], 3 + i) };
	return ipc_queue_put_many(tq, v, 7, 20000) == 7 ? 0 : 1;
}

/* A batch bigger than the queue goes in several chunks. Four fit: 1, 2
 * (the parent's), then the first chunk, 3 and 4; 5 waits in a single put.
 * The parent frees three places at once (one get_many): 5 goes in, then
 * the second chunk writes 6 and 7, and the producer dies before
 * publishing them. What arrives is the prefix 1..5, each whole, once. */
Test(crashapi, put_many_killed_at_a_later_chunk_leaves_a_whole_prefix)
{
	ipc_queue_attr attr = { .maxsize = 4 };
	static char in[3][128];
	struct iovec v[3];
	pid_t c;

	for (int i = 0; i < 3; i++)
		v[i] = (struct iovec){ in[i], sizeof(in[i]) };
	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
	put_range(1, 2);
	c = t_spawn_at_point("queue.put_many.written", "1",
			     child_put_many_slowly, NULL);
	cr_assert(t_blocked_in_futex(c, 10000), "5 waits for room");
	cr_assert_eq(ipc_queue_qsize(tq), 4, "the first chunk is in");
	cr_assert_eq(ipc_queue_get_many(tq, v, 3, 1000), 3);
	cr_assert_eq(t_reap(c, 10000), -SIGKILL, "died at the second chunk");
	cr_assert_eq(ipc_queue_qsize(tq), 2, "4 and 5; not 6 or 7");
	tq_expect(4);
	tq_expect(5);
	put_range(20, 20);
	tq_expect(20);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
}

static int child_get_many(void *arg)
{
	static char in[3][128];
	struct iovec v[3];

	(void)arg;
	for (int i = 0; i < 3; i++)
		v[i] = (struct iovec){ in[i], sizeof(in[i]) };
	return ipc_queue_get_many(tq, v, 3, 10000) > 0 ? 0 : 1;
}

/* Killed after copying, before its one CAS: it took nothing. */
Test(crashapi, get_many_killed_before_claiming_takes_nothing)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	put_range(1, 5);
	tq_die_at("queue.get_many.copied", NULL, child_get_many, NULL);
	cr_assert_eq(ipc_queue_qsize(tq), 5);
	for (int n = 1; n <= 5; n++)
		tq_expect(n);
}

/* JoinableQueue: killed while taking the third task of a batch. The two
 * it took and the one it was marking are its unfinished tasks: queued
 * again, so every task is got once more and join returns. */
Test(crashapi, joinable_get_many_killed_mid_batch_requeues_its_tasks)
{
	int seen[6] = { 0 };

	cr_assert_eq(ipc_joinable_queue_new(&tq, 0), 0);
	put_range(1, 5);
	tq_die_at("queue.get.taken", "2", child_get_many, NULL);
	for (int i = 0; i < 5; i++) {
		char buf[128], ref[128];
		ssize_t n = ipc_queue_get(tq, buf, sizeof(buf), 10000);
		int id;
		cr_assert_gt(n, 0, "task %d: %zd", i, n);
		buf[n] = '\0';
		id = atoi(buf + 1);
		cr_assert(id >= 1 && id <= 5, "task %d", id);
		cr_assert_eq((size_t)n, tq_msg(ref, id));
		cr_assert_eq(memcmp(buf, ref, (size_t)n), 0, "%d whole", id);
		seen[id]++;
		cr_assert_eq(ipc_queue_task_done(tq), 0);
	}
	for (int id = 1; id <= 5; id++)
		cr_assert_eq(seen[id], 1, "task %d got %d times", id, seen[id]);
	cr_assert_eq(ipc_queue_join(tq, 10000), 0);
}

/* ---- zero copy ------------------------------------------------------------
 */

static int child_reserve_commit(void *arg)
{
	char msg[128];
	size_t len = tq_msg(msg, (int)(intptr_t)arg);
	void *buf;

	if (ipc_queue_reserve(tq, len, &buf, 10000) != 0)
		return 1;
	memcpy(buf, msg, len);
	return ipc_queue_commit(tq, len) == 0 ? 0 : 2;
}

/* How many 100-byte messages the queue takes from empty, then empties it. */
static int capacity_in_messages(void)
{
	char buf[100] = { 0 };
	int n = 0;

	while (ipc_queue_put(tq, buf, sizeof(buf), IPC_NOWAIT) == 0)
		n++;
	for (int i = 0; i < n; i++)
		cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 0), 100);
	return n;
}

/* Killed holding a reservation: no message, and not one byte of the ring
 * lost — the queue holds as many messages as before. */
Test(crashapi, producer_killed_holding_a_reservation_leaks_nothing)
{
	ipc_queue_attr attr = { .capacity = 4096 };
	int before;

	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
	before = capacity_in_messages();
	put_range(1, 1);
	tq_die_at("queue.reserve.held", NULL, child_reserve_commit,
		  (void *)(intptr_t)2);
	cr_assert_eq(ipc_queue_qsize(tq), 1, "no phantom");
	put_range(3, 3); /* the producers' lock is repaired */
	tq_expect(1);
	tq_expect(3);
	cr_assert_eq(capacity_in_messages(), before, "no space lost");
}

Test(crashapi, commit_killed_before_publishing_puts_nothing)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	tq_die_at("queue.commit.written", NULL, child_reserve_commit,
		  (void *)(intptr_t)5);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	put_range(6, 6);
	tq_expect(6);
}

Test(crashapi, commit_killed_after_publishing_delivers_whole)
{
	cr_assert_eq(ipc_queue_new(&tq, 0), 0);
	tq_die_at("queue.commit.published", NULL, child_reserve_commit,
		  (void *)(intptr_t)5);
	cr_assert_eq(ipc_queue_qsize(tq), 1);
	tq_expect(5);
}

static int child_borrow(void *arg)
{
	const void *msg;

	(void)arg;
	return ipc_queue_borrow(tq, &msg, 10000) > 0 ? 0 : 1;
}

/* A borrower killed with the task lent: it is queued again, whole. */
Test(crashapi, borrower_killed_holding_a_lent_task_gives_it_back)
{
	cr_assert_eq(ipc_joinable_queue_new(&tq, 0), 0);
	put_range(1, 2);
	tq_die_at("queue.borrow.lent", NULL, child_borrow, NULL);
	/* 2 (at head) and 1 (requeued once a sleeper reaps), in either
	 * order, each whole and once. */
	int seen = 0;
	for (int i = 0; i < 2; i++) {
		char buf[128], ref[128];
		ssize_t n = ipc_queue_get(tq, buf, sizeof(buf), 10000);
		int id = n > 1 ? atoi(buf + 1) : 0;
		cr_assert(id == 1 || id == 2, "task %d (%zd)", id, n);
		cr_assert_eq((size_t)n, tq_msg(ref, id));
		cr_assert_eq(memcmp(buf, ref, (size_t)n), 0, "%d whole", id);
		seen |= 1 << id;
	}
	cr_assert_eq(seen, 6, "both, once each");
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, 1000), 0);
}
