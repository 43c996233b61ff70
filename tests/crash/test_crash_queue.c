/* SPDX-License-Identifier: MIT */
/*
 * test_crash_queue.c — the crash-point suite for Queue and JoinableQueue.
 *
 * A child dies (SIGKILL) at each named point of put, get, task_done, join,
 * shutdown, consumer registration and the requeue of a dead consumer's
 * tasks. The parent then checks the invariants — the count, FIFO order, no
 * duplicate, no torn or invented message, join accounting — and uses the
 * queue normally. Built only with --enable-crashpoints.
 *
 * The stopped-peer tests stop a child (SIGSTOP) at a point instead, while
 * it holds a lock or owns the fast path, and check that every call with a
 * timeout returns within it with the right code; then continue the child
 * and check that nothing was lost.
 */
#include <criterion/criterion.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

static ipc_queue *q;

static void teardown(void)
{
	ipc_queue_close(q);
	q = NULL;
}

TestSuite(crashq, .fini = teardown, .timeout = 30);

static void die_at(const char *point, int (*fn)(void *), void *arg)
{
	cr_assert_eq(t_reap(t_spawn_at_point(point, NULL, fn, arg), 10000),
		     -SIGKILL, "child did not die at %s", point);
}

/* Messages are "m<number>" padded with a pattern derived from the number,
 * so a torn or invented message cannot pass check_msg. */
static size_t make_msg(char *buf, int n)
{
	size_t len = (size_t)snprintf(buf, 32, "m%d:", n);
	for (int k = 0; k < 40 + n % 50; k++)
		buf[len++] = (char)('a' + (n + k) % 26);
	return len;
}

static int put_n_within(int n, int timeout_ms)
{
	char buf[128];
	return ipc_queue_put(q, buf, make_msg(buf, n), timeout_ms);
}

static int put_n(int n)
{
	return put_n_within(n, 1000);
}

/* Get one message; it must be intact and numbered `want`. */
static void expect(int want)
{
	char buf[128], ref[128];
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	size_t len = make_msg(ref, want);

	cr_assert_eq(n, (ssize_t)len, "message %d: length %zd", want, n);
	cr_assert_eq(memcmp(buf, ref, len), 0, "message %d intact", want);
}

/* For a child: get one message from `from` within timeout_ms; is it
 * message `want`, intact? */
static bool got_msg(ipc_queue *from, int want, int timeout_ms)
{
	char buf[128], ref[128];
	size_t len = make_msg(ref, want);

	return ipc_queue_get(from, buf, sizeof(buf), timeout_ms) ==
		       (ssize_t)len &&
	       memcmp(buf, ref, len) == 0;
}

static void expect_empty(void)
{
	char buf[128];
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

static int child_put(void *arg)
{
	return put_n((int)(intptr_t)arg);
}

static int child_get(void *arg)
{
	void *msg;
	(void)arg;
	ssize_t n = ipc_queue_get_alloc(q, &msg, 1000);
	free(msg);
	return n > 0 ? 0 : 1;
}

/* ---- put ---------------------------------------------------------------- */

Test(crashq, put_written_but_unpublished_leaves_no_trace)
{
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	die_at("queue.put.written", child_put, (void *)2);
	cr_assert_eq(ipc_queue_qsize(q), 1, "no phantom");
	cr_assert_eq(put_n(3), 0, "producers' lock repaired");
	expect(1);
	expect(3);
	expect_empty();
}

Test(crashq, put_published_before_wake_is_delivered_whole)
{
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	die_at("queue.put.published", child_put, (void *)7);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	expect(7);
	expect_empty();
}

static int get_blocking(void *arg)
{
	char buf[128], ref[128];
	size_t len = make_msg(ref, (int)(intptr_t)arg);
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 10000);
	return n == (ssize_t)len && memcmp(buf, ref, len) == 0 ? 0 : 1;
}

Test(crashq, sleeping_getter_still_gets_a_put_whose_producer_died_before_waking)
{
	pid_t g;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	g = t_spawn(get_blocking, (void *)5);
	cr_assert(t_blocked_in_futex(g, 10000));
	die_at("queue.put.published", child_put, (void *)5);
	cr_assert_eq(t_reap(g, 10000), 0);
}

/* The first put of a process makes it the queue's biased producer (a
 * locked put); its later puts take the fast path. */
static int child_owner_then_fast_put(void *arg)
{
	(void)arg;
	if (put_n(1) != 0)
		return 1;
	return put_n(2); /* fast: dies here */
}

Test(crashq, owner_killed_in_a_fast_put_publishes_nothing_and_is_replaced)
{
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	die_at("queue.put.fast_written", child_owner_then_fast_put, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 1, "only the locked put landed");
	cr_assert_eq(put_n(3), 0, "the dead owner's bias is revoked");
	cr_assert_eq(put_n(4), 0, "and we own the fast path now");
	expect(1);
	expect(3);
	expect(4);
	expect_empty();
}

static volatile int *flag;

static int owner_waits_then_puts(void *arg)
{
	(void)arg;
	if (put_n(1) != 0)
		return 1;
	__atomic_store_n(&flag[0], 1, __ATOMIC_SEQ_CST);
	if (!t_wait_count(&flag[1], 1, 10000))
		return 2;
	return put_n(5) == 0 ? 0 : 3; /* revoked: takes the locked path */
}

Test(crashq, revoker_killed_mid_revocation_leaves_a_consistent_queue)
{
	pid_t owner;

	flag = t_shared(2 * sizeof(int));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	owner = t_spawn(owner_waits_then_puts, NULL);
	cr_assert(t_wait_count(&flag[0], 1, 10000));
	die_at("queue.bias.revoked", child_put, (void *)2);
	cr_assert_eq(put_n(3), 0, "producers' lock repaired, revoked again");
	flag[1] = 1;
	cr_assert_eq(t_reap(owner, 10000), 0);
	expect(1);
	expect(3);
	expect(5);
	expect_empty();
}

/* After a revocation, a producer that puts alone takes the fast path back
 * (ring_put.c): this one puts 2, 3, ... on the locked path until that
 * happens, and dies between the two steps. The parent owns the fast path
 * and stays alive, so the child's revocation leaves the queue locked. */
static int put_until_it_takes_the_fast_path_back(void *arg)
{
	(void)arg;
	for (int i = 2; i < 100000; i++)
		if (put_n(i) != 0)
			return 1;
	return 2; /* never took it back */
}

Test(crashq,
     producer_killed_taking_the_fast_path_back_leaves_a_consistent_queue)
{
	char buf[128], ref[128];
	int next = 2;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0, "we own the fast path");
	die_at("queue.put.rebias", put_until_it_takes_the_fast_path_back, NULL);
	cr_assert_eq(put_n(100000), 0, "producers' lock repaired");
	cr_assert_eq(put_n(100001), 0, "fast again");
	expect(1);
	for (;;) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT);
		cr_assert_gt(n, 0);
		if (strncmp(buf, "m100000:", 8) == 0)
			break;
		cr_assert_eq(n, (ssize_t)make_msg(ref, next));
		cr_assert_eq(memcmp(buf, ref, (size_t)n), 0,
			     "message %d intact, in order", next);
		next++;
	}
	cr_assert_gt(next, 2, "the child put on the locked path first");
	expect(100001);
	expect_empty();
}

/* A 4 KiB ring filled with 56-byte messages numbered 1..64. */
static void fill_small_ring(void)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 56 };
	char buf[128];
	int n = 0;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	memset(buf, 'f', 56);
	while (ipc_queue_put(q, buf, 56, IPC_NOWAIT) == 0)
		n++;
	cr_assert_eq(n, 4096 / 64);
}

static int put_56_forever(void *arg)
{
	char buf[56];

	memset(buf, (int)(intptr_t)arg, sizeof(buf));
	return ipc_queue_put(q, buf, sizeof(buf), IPC_FOREVER) == 0 ? 0 : 1;
}

/* A producer killed asleep for room (in its batch wait or after it,
 * counted among the urgent sleepers: see ring_wait.c) leaves a count no
 * live process will drop. The next blocked producer must still be woken
 * by a single freed record, and the dead one's message is not there. */
Test(crashq, producer_killed_asleep_for_room_strands_no_other_producer)
{
	char buf[128];
	pid_t a, b;

	fill_small_ring();
	a = t_spawn(put_56_forever, (void *)'a');
	cr_assert(t_blocked_in_futex(a, 10000));
	usleep(50 *
	       1000); /* past its batch wait, most likely: either will do */
	cr_assert(t_blocked_in_futex(a, 10000));
	cr_assert_eq(t_kill(a), -SIGKILL);
	b = t_spawn(put_56_forever, (void *)'b');
	cr_assert(t_blocked_in_futex(b, 10000));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), 56);
	cr_assert_eq(t_reap(b, 10000), 0, "woken by one freed record");
	for (int i = 0; i < 4096 / 64 - 1; i++) {
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
			     56);
		cr_assert_eq(buf[0], 'f');
	}
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), 56);
	cr_assert_eq(buf[0], 'b', "the live producer's message came last");
	expect_empty();
}

static pthread_t first_thread;

static void *thread_put(void *arg)
{
	return put_n((int)(intptr_t)arg) == 0 ? NULL : arg;
}

/* Thread 1 becomes the owner and exits; thread 2 (glibc hands it thread
 * 1's pthread_t, from its stack cache) puts 2 through the same handle. */
static int owner_thread_exits_then_a_new_thread_puts(void *arg)
{
	pthread_t t2;
	void *res;

	(void)arg;
	if (pthread_create(&first_thread, NULL, thread_put, (void *)1) != 0 ||
	    pthread_join(first_thread, &res) != 0 || res != NULL)
		return 1;
	if (pthread_create(&t2, NULL, thread_put, (void *)2) != 0 ||
	    pthread_join(t2, &res) != 0 || res != NULL)
		return 2;
	return pthread_equal(first_thread, t2) ? 0 : 10;
}

Test(crashq, a_new_thread_with_a_dead_owners_pthread_t_does_not_put_fast)
{
	long t0 = t_now_ms();
	pid_t kid;
	int st = 0, rc;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	/* Thread 2 is no owner: if it took the fast path, stop it in there,
	 * where we would revoke the dead thread 1 and write over its
	 * record. */
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	kid = t_spawn_at_point("queue.put.fast_written", NULL,
			       owner_thread_exits_then_a_new_thread_puts, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	while (waitpid(kid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	if (WIFSTOPPED(st)) {
		rc = put_n(3);
		kill(kid, SIGCONT);
		cr_assert_eq(t_reap(kid, 10000), 0);
		cr_assert_eq(rc, 0);
	} else {
		cr_assert(WIFEXITED(st), "the child finished");
		if (WEXITSTATUS(st) == 10)
			cr_skip_test("this libc gave thread 2 a new pthread_t");
		cr_assert_eq(WEXITSTATUS(st), 0);
		cr_assert_eq(put_n(3), 0);
	}
	expect(1);
	expect(2);
	expect(3);
	expect_empty();
}

/* ---- get ---------------------------------------------------------------- */

Test(crashq, get_copied_but_unpublished_leaves_the_message_queued)
{
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.get.copied", child_get, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 3, "nothing lost");
	for (int i = 1; i <= 3; i++)
		expect(i);
	expect_empty();
}

Test(crashq, get_published_removes_exactly_one)
{
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.get.published", child_get, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 2);
	expect(2);
	expect(3);
	expect_empty();
}

Test(crashq, full_queue_frees_space_after_a_dead_getter)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 1000 };
	char big[1000] = { 0 };
	int n = 0;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	while (ipc_queue_put(q, big, sizeof(big), 0) == 0)
		n++;
	cr_assert_eq(n, 4, "4096 bytes hold four 1008-byte records");
	die_at("queue.get.published", child_get, NULL);
	cr_assert_eq(ipc_queue_put(q, big, sizeof(big), 0), 0, "space back");
	cr_assert_eq(ipc_queue_qsize(q), 4);
}

/* ---- JoinableQueue --------------------------------------------------- */

static int child_get_and_done(void *arg)
{
	char buf[128];
	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
		return 1;
	return ipc_queue_task_done(q) == 0 ? 0 : 2;
}

/* After a dead consumer: everything still gets done, join returns. */
static void finish_all(int first, int last)
{
	for (int i = first; i <= last; i++) {
		expect(i);
		cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	cr_assert_eq(ipc_queue_join(q, 2000), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	expect_empty();
}

Test(crashq, joinable_get_taken_rolls_forward_and_requeues)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.get.taken", child_get, NULL);
	cr_assert_eq(ipc_queue_unfinished(q), 3);
	/* The join's periodic look requeues message 1 from the dead slot. */
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 3, "1 requeued, 2 and 3 waiting");
	finish_all(1, 3);
}

/* A consumer's second get claims without the lock; killed between its
 * claim and its move of head, it holds nobody up: the next get moves head
 * past the claimed task, and the reap requeues it. */
static int child_done_then_get(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 ? 0 : 2;
}

Test(crashq, joinable_lock_free_claim_killed_before_moving_head_is_requeued)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.get.taken", "1",
					     child_done_then_get, NULL),
			    10000),
		     -SIGKILL);
	cr_assert_eq(ipc_queue_unfinished(q), 2);
	/* The reap moves head past the dead claim before it looks for the
	 * dead consumer's tasks, which lie behind head. */
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 2, "2 requeued, 3 waiting");
	finish_all(2, 3);
}

/* A getter stopped between its claim and its move of head (its second
 * get, without the lock): another consumer moves head on and gets the
 * next task; the stopped one, once continued, returns its own. Each task
 * is got once. */
static int child_get_expect_1_2(void *arg)
{
	char buf[128], ref[128];

	(void)arg;
	for (int i = 1; i <= 2; i++) {
		size_t len = make_msg(ref, i);
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) != (ssize_t)len ||
		    memcmp(buf, ref, len) != 0)
			return i;
		if (ipc_queue_task_done(q) != 0)
			return 10 + i;
	}
	return 0;
}

/* A JoinableQueue of tasks 1..n and a child that got and finished 1 and
 * stopped in its second get, after moving head past 2 and before marking
 * it TAKEN. */
static pid_t getter_stopped_in_its_claim(int n)
{
	long t0 = t_now_ms();
	pid_t kid;
	int st = 0;

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= n; i++)
		cr_assert_eq(put_n(i), 0);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	kid = t_spawn_at_point("queue.get.taken", "1", child_get_expect_1_2,
			       NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	while (waitpid(kid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "the getter stopped in its claim");
	return kid;
}

Test(crashq, a_getter_stopped_after_its_claim_holds_nobody_up)
{
	pid_t kid = getter_stopped_in_its_claim(3);

	expect(3);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	expect_empty();
	kill(kid, SIGCONT);
	cr_assert_eq(t_reap(kid, 10000), 0, "it got 1 and 2, intact");
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* shutdown_immediate while a getter is stopped after its claim: the drop
 * leaves that task to its getter and drops the rest, each counted once;
 * join then waits for that one task_done only. */
Test(crashq, a_drop_beside_a_stopped_claim_leaves_that_task_to_its_getter)
{
	pid_t kid = getter_stopped_in_its_claim(5);

	cr_assert_eq(ipc_queue_shutdown_immediate(q), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0, "3 to 5 dropped");
	cr_assert_eq(ipc_queue_unfinished(q), 1, "the claimed task only");
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN);
	kill(kid, SIGCONT);
	cr_assert_eq(t_reap(kid, 10000), 0, "it got 1 and 2, intact");
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
}

Test(crashq, joinable_consumer_dead_after_get_is_requeued)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.get.published", child_get, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 2);
	finish_all(1, 2);
}

/* A consumer with one task outstanding makes its task_done without the
 * lock; killed between marking and counting, it is rolled forward when its
 * slot is reaped (here by the join): the task counts as done, and is never
 * handed out again. */
Test(crashq, task_done_marked_but_not_counted_is_rolled_forward)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.task_done.marked", child_get_and_done, NULL);
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	cr_assert_eq(ipc_queue_qsize(q), 1, "task 1 is not requeued");
	expect(2);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
	expect_empty();
}

/* Two tasks got, two task_done calls: both take the lock (the second
 * too, since the consumer no longer knows which task is its only one). */
static int child_get_two_and_done_both(void *arg)
{
	char buf[128];
	int fd = (int)(intptr_t)arg;

	for (int i = 0; i < 2; i++)
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
			return 1;
	if (fd >= 0 && read(fd, buf, 1) != 1) /* wait for the go */
		return 1;
	for (int i = 0; i < 2; i++)
		if (ipc_queue_task_done(q) != 0)
			return 1;
	return 0;
}

/* Killed in the locked task_done, holding q_cmutex: the next consumer-side
 * lock repairs, and the task counts as done. */
Test(crashq, locked_task_done_marked_but_not_counted_is_rolled_forward)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.task_done.marked", "1",
					     child_get_two_and_done_both,
					     (void *)(intptr_t)-1),
			    10000),
		     -SIGKILL);
	expect(3); /* the lock's repair ran: task 2 is done, not requeued */
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
	expect_empty();
}

/* A consumer killed inside task_done, with that task the last one: the
 * next consumer-side lock (here a get that finds nothing) repairs it and
 * wakes the joiner. Sleepers re-check only hourly here, so a missed
 * wake-up holds the joiner until its timeout. */
static int join_within_20s(void *arg)
{
	(void)arg;
	return ipc_queue_join(q, 20000) == 0 ? 0 : 1;
}

Test(crashq, the_repair_of_a_dead_task_done_wakes_the_joiner)
{
	char buf[128];
	pid_t joiner, child;
	int rc, go[2];

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(pipe(go), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(put_n(i), 0);
	/* The child gets both tasks, then dies in its second (locked)
	 * task_done, holding q_cmutex, after the joiner fell asleep. */
	child = t_spawn_at_point("queue.task_done.marked", "1",
				 child_get_two_and_done_both,
				 (void *)(intptr_t)go[0]);
	cr_assert(t_blocked_in_syscall(child, SYS_read, 10000),
		  "the child holds both tasks");
	joiner = t_spawn(join_within_20s, NULL);
	cr_assert(t_blocked_in_futex(joiner, 10000), "the joiner sleeps");
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(t_reap(child, 10000), -SIGKILL);
	close(go[0]);
	close(go[1]);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	rc = t_reap(joiner, 10000);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0, "the joiner was woken: %d", rc);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
}

/* The same for a task_done made without the lock: the reap that rolls it
 * forward (here at the start of another join) wakes the sleeping joiner. */
Test(crashq, the_reap_of_a_dead_lock_free_task_done_wakes_the_joiner)
{
	pid_t joiner;
	int rc;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	joiner = t_spawn(join_within_20s, NULL);
	cr_assert(t_blocked_in_futex(joiner, 10000), "the joiner sleeps");
	die_at("queue.task_done.marked", child_get_and_done, NULL);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), 0,
		     "this join reaps at once");
	rc = t_reap(joiner, 10000);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0, "the joiner was woken: %d", rc);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0, "nothing requeued");
}

Test(crashq, task_done_counted_before_freeing_space)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.task_done.counted", child_get_and_done, NULL);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	finish_all(2, 2);
}

/* A task_done made without the lock frees no space itself; a producer
 * asleep for room has armed the room sleepers' word, and that task_done
 * must see it and free and wake. Sleepers re-check only hourly here. */
static int put_1016_forever(void *arg)
{
	char msg[1016] = { 0 };

	(void)arg;
	return ipc_queue_put(q, msg, sizeof(msg), IPC_FOREVER) == 0 ? 0 : 1;
}

/* A 4 KiB JoinableQueue filled by four 1016-byte messages (1024-byte
 * records), the first of them got (not done): full until it is. */
static void full_with_one_got(void)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char msg[1016] = { 0 }, buf[1016], name[128];

	t_name(name, sizeof(name), "room");
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &attr), 0);
	ipc_unlink(name);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
}

Test(crashq, a_producer_asleep_for_room_is_woken_by_a_lock_free_task_done)
{
	pid_t producer;
	int rc;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	full_with_one_got();
	producer = t_spawn(put_1016_forever, NULL);
	cr_assert(t_blocked_in_futex(producer, 10000), "the producer sleeps");
	/* Past its batch wait (RING_ROOM_BATCH_MS), most likely, whose end
	 * would free the room itself: either passes. */
	usleep(50 * 1000);
	cr_assert(t_blocked_in_futex(producer, 10000), "the producer sleeps");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	rc = t_reap(producer, 10000);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0, "the producer was woken: %d", rc);
	cr_assert_eq(ipc_queue_qsize(q), 4);
}

/* ---- Stale heads, room given back, joiners (review findings) ---------- */

static pid_t stop_at(const char *point, int (*fn)(void *), void *arg);

/* Continue a child stopped at a point that may stop it again, until it
 * exits: its status. */
static int continue_until_exit(pid_t kid)
{
	int st = 0;

	kill(kid, SIGCONT);
	for (long t0 = t_now_ms(); t_now_ms() - t0 < 10000;) {
		if (waitpid(kid, &st, WUNTRACED | WNOHANG) == kid) {
			if (!WIFSTOPPED(st))
				return st;
			kill(kid, SIGCONT);
		}
		usleep(1000);
	}
	return -1;
}

/* Message i of the stale-head test: lengths below, bytes 'A' + i; message
 * 5 also carries, 8 bytes into its payload, what looks like a record
 * header: a length of 16 and the READY tag of item 1 (4). */
static const size_t sh_lens[6] = { 1016, 1016, 1016, 1016, 1000, 1000 };

static size_t sh_make(char *buf, int i)
{
	memset(buf, 'A' + i, sh_lens[i]);
	if (i == 5) {
		uint32_t len = 16, tag = 1u << 2;
		memcpy(buf + 8, &len, 4);
		memcpy(buf + 12, &tag, 4);
	}
	return sh_lens[i];
}

static int sh_put(int i)
{
	char buf[1024];
	return ipc_queue_put(q, buf, sh_make(buf, i), 1000);
}

/* Which message buf[0..n) is, or -1 if none intact. */
static int sh_which(const char *buf, ssize_t n)
{
	char ref[1024];
	for (int i = 0; i < 6; i++)
		if (n == (ssize_t)sh_lens[i] &&
		    memcmp(buf, ref, sh_make(ref, i)) == 0)
			return i;
	return -1;
}

/* Get 0 (locked: registers), task_done, then a second get (without the
 * lock), which the parent stops just after it read q_head. */
static int sh_child(void *arg)
{
	char buf[1024];
	ssize_t n;

	(void)arg;
	n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	if (sh_which(buf, n) != 0 || ipc_queue_task_done(q) != 0)
		return 1;
	n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	if (n < 0)
		return 3;
	if (sh_which(buf, n) < 2)
		return 2; /* an invented or torn message */
	return ipc_queue_task_done(q) == 0 ? 0 : 4;
}

/* A getter preempted after reading q_head (item 1 at 1024) while the ring
 * wraps: its stale head now points inside message 5's payload, where the
 * user's bytes look like a header with item 1's READY tag. Its claim must
 * fail (head moved) and it must get a real message; a claim that trusted
 * the state word returned 16 invented bytes, wrote its TAKEN state into
 * message 5, and counted a task that did not exist. */
Test(crashq, a_stale_head_inside_a_payload_claims_nothing)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char buf[1024];
	long t0 = t_now_ms();
	pid_t kid;
	int rc, st = 0, got[6] = { 0 };

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	cr_assert_eq(sh_put(0), 0); /* at 0 */
	cr_assert_eq(sh_put(1), 0); /* at 1024 */
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	kid = t_spawn_at_point("queue.get.head_read", "1", sh_child, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	while (waitpid(kid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "the getter stopped with its head read");
	/* Take 1 and fill the ring past the wrap: 2 at 2048, 3 at 3072,
	 * 4 at 4096, 5 at 5104, whose payload covers offset 1024 + 8. */
	cr_assert_eq(sh_which(buf, ipc_queue_get(q, buf, sizeof(buf), 1000)),
		     1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	for (int i = 2; i <= 5; i++)
		cr_assert_eq(sh_put(i), 0, "put %d", i);
	cr_assert_eq(ipc_queue_unfinished(q), 4);
	rc = continue_until_exit(kid); /* the point stops it at each pass */
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "the getter got a real message: %#x", rc);
	for (int held = 0;;) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT);
		int w = n < 0 ? -2 : sh_which(buf, n);
		if (n < 0)
			break;
		cr_assert_geq(w, 2, "got %zd bytes: not intact", n);
		got[w]++;
		if (held++ > 0)
			cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	cr_assert_eq(ipc_queue_unfinished(q), 1, "one task got, not done");
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(got[2] + got[3] + got[4] + got[5], 3,
		     "the other three of 2..5, each once");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* Gets two tasks, says so, waits for the go, then task_done twice: with
 * two outstanding, the first takes q_cmutex (the locked path). */
static int get_two_then_done_on_go(void *arg)
{
	char buf[1016];
	int *fds = arg;

	for (int i = 0; i < 2; i++)
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
			return 1;
	if (write(fds[1], "r", 1) != 1 || read(fds[0], buf, 1) != 1)
		return 1;
	for (int i = 0; i < 2; i++)
		if (ipc_queue_task_done(q) != 0)
			return 2;
	return 0;
}

/* Task 1 is done (its task_done returned) before consumer B stops holding
 * q_cmutex in its locked task_done: task 1's room must be usable while B
 * is stopped, by a put that cannot wait and by a timed one. (Room given
 * back by a task_done without the lock once waited for a q_cmutex holder
 * to free it.) */
Test(crashq, room_given_back_before_a_consumer_stops_is_usable)
{
	char buf[1016] = { 0 };
	int go[2], ready[2], fds[2], st = 0, rc_nowait, rc_timed;
	long t0, t_nowait, t_timed;
	pid_t b;
	char c;

	full_with_one_got(); /* task 1 got */
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	fds[0] = go[0];
	fds[1] = ready[1];
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	b = t_spawn_at_point("queue.task_done.marked", NULL,
			     get_two_then_done_on_go, fds);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert_eq(read(ready[0], &c, 1), 1, "B holds tasks 2 and 3");
	cr_assert_eq(ipc_queue_task_done(q), 0, "task 1 done");
	cr_assert_eq(write(go[1], "g", 1), 1);
	t0 = t_now_ms();
	while (waitpid(b, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "B stopped holding q_cmutex");
	t0 = t_now_ms();
	rc_nowait = ipc_queue_put(q, buf, sizeof(buf), IPC_NOWAIT);
	t_nowait = t_now_ms() - t0;
	t0 = t_now_ms();
	rc_timed = ipc_queue_put(q, buf, sizeof(buf), 300);
	t_timed = t_now_ms() - t0;
	st = continue_until_exit(b);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "B finished");
	cr_assert_eq(rc_nowait, 0, "task 1's room was usable at once");
	cr_assert(t_nowait < 1000, "the NOWAIT put returned at once");
	/* Task 2, marked done before B stopped, may have freed room too. */
	cr_assert(rc_timed == 0 || rc_timed == IPC_ETIMEDOUT, "%d", rc_timed);
	cr_assert(t_timed < 300 + 2000, "within its timeout");
}

/* A task_done without the lock never waits for the consumers' lock: not
 * while a producer sleeps for room and another consumer is stopped holding
 * q_cmutex (registering). (It once freed under the lock when it saw a
 * sleeping producer, and so waited for the stopped holder, its joiners'
 * wake after that.) */
static int get_one_then_done_on_go(void *arg)
{
	char buf[1016];
	int *fds = arg;

	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
		return 1;
	if (write(fds[1], "r", 1) != 1 || read(fds[0], buf, 1) != 1)
		return 1;
	return ipc_queue_task_done(q) == 0 ? 0 : 2;
}

static int get_three_and_done(void *arg)
{
	char buf[1016];

	(void)arg;
	for (int i = 0; i < 3; i++)
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
			return 1;
	for (int i = 0; i < 3; i++)
		if (ipc_queue_task_done(q) != 0)
			return 2;
	return 0;
}

static int get_any(void *arg)
{
	char buf[1016];

	(void)arg;
	ipc_queue_get(q, buf, sizeof(buf), 1000);
	return 0;
}

Test(crashq, a_lock_free_task_done_never_waits_for_the_consumers_lock)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char msg[1016] = { 0 }, ch;
	int go[2], ready[2], fds[2], rc;
	pid_t a, p, b;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	fds[0] = go[0];
	fds[1] = ready[1];
	a = t_spawn(get_one_then_done_on_go, fds); /* task 1 */
	cr_assert_eq(read(ready[0], &ch, 1), 1);
	cr_assert_eq(t_reap(t_spawn(get_three_and_done, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	/* Task 1 holds the free position: the ring stays full. */
	p = t_spawn(put_1016_forever, NULL);
	cr_assert(t_blocked_in_futex(p, 10000), "the producer sleeps");
	b = stop_at("queue.register.locked", get_any, NULL);
	cr_assert_eq(write(go[1], "g", 1), 1); /* task 1's task_done */
	rc = t_reap(a, 2000);
	cr_assert_eq(t_reap(p, 2000), 0, "the producer found the room");
	kill(b, SIGCONT);
	cr_assert_eq(t_reap(b, 10000), 0);
	unsetenv("IPC_TEST_RECHECK_MS");
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
	cr_assert_eq(rc, 0, "task_done returned, the lock still held: %d", rc);
	cr_assert_eq(ipc_queue_unfinished(q), 1, "the producer's task");
}

static int child_get_two_and_hold(void *arg)
{
	char buf[128];
	(void)arg;
	for (int i = 0; i < 2; i++)
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
			return 1;
	return 0; /* exits holding two unfinished tasks */
}

static int child_reap(void *arg)
{
	(void)arg;
	return ipc_queue_join(q, 1000) == IPC_ETIMEDOUT ? 0 : 1;
}

Test(crashq, reaper_dying_mid_requeue_leaves_work_for_the_next)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	cr_assert_eq(t_reap(t_spawn(child_get_two_and_hold, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	/* A joiner finds the dead consumer and dies after requeueing one of
	 * its two tasks. */
	die_at("queue.reap.requeued", child_reap, NULL);
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 3, "both tasks requeued, once each");
	cr_assert_eq(ipc_queue_unfinished(q), 3);
	finish_all(1, 3);
}

Test(crashq, consumer_dying_while_registering_frees_its_slot)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	die_at("queue.register.locked", child_get, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(t_reap(t_spawn(child_get_and_done, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

static int child_join(void *arg)
{
	(void)arg;
	return ipc_queue_join(q, 5000);
}

Test(crashq, joiner_dying_breaks_nothing)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	die_at("queue.join.waiting", child_join, NULL);
	pid_t j = t_spawn(child_join, NULL);
	cr_assert(t_blocked_in_futex(j, 10000));
	finish_all(1, 1);
	cr_assert_eq(t_reap(j, 10000), 0, "a live joiner is released");
}

/* ---- shutdown ------------------------------------------------------------ */

static int child_shutdown(void *arg)
{
	(void)arg;
	return ipc_queue_shutdown(q);
}

static int get_until_closed(void *arg)
{
	char buf[128];
	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 10000) == IPC_ECLOSED ? 0 : 1;
}

Test(crashq, shutdown_flagged_before_waking_still_reaches_sleepers)
{
	pid_t g;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	g = t_spawn(get_until_closed, NULL);
	cr_assert(t_blocked_in_futex(g, 10000));
	die_at("queue.shutdown.flagged", child_shutdown, NULL);
	cr_assert_eq(t_reap(g, 10000), 0);
	cr_assert_eq(ipc_queue_put(q, "x", 1, 0), IPC_ECLOSED);
}

/* ---- Pool workers -------------------------------------------------------- */

static void square64(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;
	*(int64_t *)out = x * x;
}

/* A pool whose one worker starts with IPC_CRASHPOINT set (so it dies at
 * the point on its first task) and whose replacements start without it. */
static ipc_pool *pool_dying_at(const char *point)
{
	ipc_pool *pool;

	setenv("IPC_CRASHPOINT", point, 1);
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 1 }),
		     0);
	unsetenv("IPC_CRASHPOINT");
	return pool;
}

static void map_all_correct(ipc_pool *pool)
{
	int64_t in[100], out[100];

	for (int i = 0; i < 100; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_map(pool, square64, in, 8, out, 8, 100, 10), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(out[i], (int64_t)i * i, "item %d", i);
	/* Proof that the first worker did die at the point: the one alive
	 * now is its replacement. */
	ipc_process *live[2];
	cr_assert_eq(ipc_active_children(live, 2), 1);
	cr_assert_str_eq(ipc_process_name(live[0]), "PoolWorker-2");
}

Test(crashq, pool_worker_dead_before_starting_a_task_is_redone_elsewhere)
{
	ipc_pool *pool = pool_dying_at("pool.worker.taken");

	/* The chunk it took had not started: the task queue gives it to the
	 * replacement, and the map succeeds whole. */
	map_all_correct(pool);
	ipc_pool_free(pool);
}

Test(crashq, pool_worker_dead_after_sending_its_result_costs_nothing)
{
	ipc_pool *pool = pool_dying_at("pool.worker.sent");

	/* Its result is drained before the death is judged. */
	map_all_correct(pool);
	ipc_pool_free(pool);
}

/* The owner closes its handle after a revoker died holding the producers'
 * lock: closing must repair and release that lock, not keep it. */
static char qname[128];

static int open_and_put(void *arg)
{
	ipc_queue *mine;
	char buf[128];
	int n = (int)(intptr_t)arg;

	if (ipc_queue_open(&mine, qname, 0, NULL) != 0)
		return 1;
	int rc = ipc_queue_put(mine, buf, make_msg(buf, n), 2000);
	ipc_queue_close(mine);
	return rc == 0 ? 0 : 2;
}

Test(crashq, owner_closing_after_a_dead_revoker_releases_the_producer_lock)
{
	ipc_queue *owner;

	t_name(qname, sizeof(qname), "crash-bias-close");
	cr_assert_eq(ipc_queue_open(&owner, qname, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_queue_open(&q, qname, 0, NULL), 0);
	cr_assert_eq(ipc_queue_put(owner, "x", 1, 0), 0, "owner from now on");
	die_at("queue.bias.revoked", open_and_put, (void *)2);
	ipc_queue_close(owner); /* finds the dead revoker's lock */
	cr_assert_eq(t_reap(t_spawn(open_and_put, (void *)3), 10000), 0,
		     "producers are not locked out");
	char one[8];
	cr_assert_eq(ipc_queue_get(q, one, sizeof(one), 0), 1, "the owner's");
	expect(3);
	ipc_unlink(qname);
}

/* ---- Stopped peers --------------------------------------------------------
 */

/* Fork fn(arg) with a crash point that stops it there; wait until it is
 * stopped. */
static pid_t stop_at(const char *point, int (*fn)(void *), void *arg)
{
	long t0 = t_now_ms();
	pid_t pid;
	int st;

	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	pid = t_spawn_at_point(point, NULL, fn, arg);
	unsetenv("IPC_CRASHPOINT_ACTION");
	while (waitpid(pid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(t_now_ms() - t0 < 10000, "child stopped at %s", point);
	cr_assert(WIFSTOPPED(st), "child stopped at %s", point);
	return pid;
}

/* A task_done without the lock that comes while a producer is on its way
 * to sleep for room (stopped before it spins) finds no arm, and frees
 * nothing: the producer frees the room itself, at the latest when its
 * first (batch) sleep ends. */
Test(crashq, a_producer_on_its_way_to_sleep_finds_the_room_a_task_done_left)
{
	pid_t producer;
	int rc;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	full_with_one_got();
	producer = stop_at("queue.room.waiting", put_1016_forever, NULL);
	cr_assert_eq(ipc_queue_task_done(q), 0); /* sees no arm */
	kill(producer, SIGCONT);
	rc = t_reap(producer, 10000);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0, "the producer found its room: %d", rc);
	cr_assert_eq(ipc_queue_qsize(q), 4);
}

/* Run a prober child (a bug makes it hang: t_reap kills it), then
 * continue the stopped child and reap both. */
static void probe_then_continue(pid_t stopped, int (*probe)(void *))
{
	int rc = t_reap(t_spawn(probe, NULL), 20000);

	kill(stopped, SIGCONT);
	cr_assert_eq(rc, 0, "prober failed check %d", rc);
	cr_assert_eq(t_reap(stopped, 10000), 0, "the stopped child finished");
}

/* A call with a timeout returns its code within its timeout (with a wide
 * margin for a loaded machine: a blocked call never returns at all). */
#define WITHIN(call, code, ms, id)                                 \
	do {                                                       \
		long t0_ = t_now_ms();                             \
		T_CHECK((call) == (code), id);                     \
		T_CHECK(t_now_ms() - t0_ >= (ms), id + 50);        \
		T_CHECK(t_now_ms() - t0_ < (ms) + 5000, id + 100); \
	} while (0)

static int probe_puts(void *arg)
{
	char buf[128];
	size_t len = make_msg(buf, 9);

	(void)arg;
	WITHIN(ipc_queue_put(q, buf, len, IPC_NOWAIT), IPC_EAGAIN, 0, 1);
	WITHIN(ipc_queue_put(q, buf, len, 200), IPC_ETIMEDOUT, 200, 2);
	WITHIN(ipc_queue_put(q, buf, len, 300), IPC_ETIMEDOUT, 300, 3);
	T_CHECK(ipc_queue_qsize(q) == 1, 4);
	return 0;
}

static int get_one_forever(void *arg)
{
	char buf[8];

	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), IPC_FOREVER) == 1 ? 0 : 1;
}

/* Poll (10 s at most) until pid stops or exits: its waitpid status. */
static int stopped_or_exited(pid_t pid)
{
	long t0 = t_now_ms();
	int st = 0;

	while (waitpid(pid, &st, WUNTRACED | WNOHANG) == 0) {
		cr_assert(t_now_ms() - t0 < 10000, "child %d runs on", pid);
		usleep(1000);
	}
	return st;
}

/* Two getters asleep, two puts. The first put clears the arm and wakes
 * one; the second, made before that one runs again, finds nobody armed.
 * The woken getter (stopped here right after its wake, so that the second
 * put surely comes first) must pass the wake on when it takes its message
 * and sees one more: the other getter is then woken (and stops at the
 * same point) instead of sleeping beside its message until its re-check. */
Test(crashq, a_woken_getter_passes_the_wake_to_a_second_sleeper)
{
	pid_t kid[2], first = -1, second = -1;
	int st;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	for (int i = 0; i < 2; i++) {
		kid[i] = t_spawn_at_point("queue.sleep.woken", NULL,
					  get_one_forever, NULL);
		cr_assert(tq_asleep(kid[i]), "getter %d asleep", i);
	}
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert_eq(ipc_queue_put(q, "a", 1, 1000), 0);
	for (long t0 = t_now_ms(); first < 0; usleep(1000)) {
		cr_assert(t_now_ms() - t0 < 10000, "a getter was woken");
		for (int i = 0; i < 2 && first < 0; i++)
			if (waitpid(kid[i], &st, WUNTRACED | WNOHANG) ==
			    kid[i]) {
				cr_assert(WIFSTOPPED(st), "woken, not done");
				first = kid[i];
				second = kid[1 - i];
			}
	}
	cr_assert_eq(ipc_queue_put(q, "b", 1, 1000), 0);
	kill(first, SIGCONT);
	st = stopped_or_exited(second);
	cr_assert(WIFSTOPPED(st),
		  "the second getter was woken, not left to "
		  "its re-check (it %s)",
		  WIFEXITED(st) ? "exited" : "died");
	kill(second, SIGCONT);
	cr_assert_eq(t_reap(first, 10000), 0, "the first getter got one");
	cr_assert_eq(t_reap(second, 10000), 0, "the second getter got one");
	expect_empty();
}

static int put_one_waiting(void *arg)
{
	(void)arg;
	return ipc_queue_put(q, "b", 1, 10000) == 0 ? 0 : 1;
}

/* A JoinableQueue with an item limit: a get frees an item (task_done only
 * frees the bytes), so it must wake the producer waiting for one, which
 * then stops at the point a wake brings it to, instead of finding the
 * room only at its re-check. */
Test(crashq, a_joinable_get_wakes_a_producer_waiting_under_maxsize)
{
	char got[8];
	pid_t kid;
	int st;

	cr_assert_eq(ipc_joinable_queue_new(&q, 1), 0);
	cr_assert_eq(ipc_queue_put(q, "a", 1, 0), 0);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	kid = t_spawn_at_point("queue.sleep.woken", NULL, put_one_waiting,
			       NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(tq_asleep(kid), "the producer waits for room");
	cr_assert_eq(ipc_queue_get(q, got, sizeof(got), 0), 1);
	st = stopped_or_exited(kid);
	cr_assert(WIFSTOPPED(st), "the producer was woken, not left to its "
				  "re-check");
	kill(kid, SIGCONT);
	cr_assert_eq(t_reap(kid, 10000), 0, "its put went in");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_get(q, got, sizeof(got), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

Test(crashq, puts_time_out_while_a_stopped_producer_holds_the_lock)
{
	pid_t kid;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	kid = stop_at("queue.put.written", child_put, (void *)2);
	probe_then_continue(kid, probe_puts);
	cr_assert_eq(put_n(3), 0);
	expect(1);
	expect(2);
	expect(3);
	expect_empty();
}

static int child_reserve_commit(void *arg)
{
	char buf[128];
	size_t len = make_msg(buf, (int)(intptr_t)arg);
	void *at;

	if (ipc_queue_reserve(q, len, &at, 10000) != 0)
		return 1;
	memcpy(at, buf, len); /* stops before this, holding the lock */
	return ipc_queue_commit(q, len) == 0 ? 0 : 2;
}

static int probe_producers_and_consumer(void *arg)
{
	char buf[128];
	size_t len = make_msg(buf, 9);
	struct iovec v = { buf, len };
	void *at = &at;

	(void)arg;
	WITHIN(ipc_queue_put(q, buf, len, IPC_NOWAIT), IPC_EAGAIN, 0, 1);
	WITHIN(ipc_queue_put(q, buf, len, 200), IPC_ETIMEDOUT, 200, 2);
	WITHIN(ipc_queue_put_many(q, &v, 1, 200), IPC_ETIMEDOUT, 200, 3);
	WITHIN(ipc_queue_reserve(q, len, &at, 200), IPC_ETIMEDOUT, 200, 4);
	T_CHECK(at == NULL, 5);
	/* The consumer side is not held up. */
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 1000) ==
			(ssize_t)make_msg(buf + 64, 1),
		6);
	WITHIN(ipc_queue_get(q, buf, sizeof(buf), 200), IPC_ETIMEDOUT, 200, 7);
	return 0;
}

/* A process stopped while it holds a reservation holds the producers'
 * lock: other producers' timed calls return on time, consumers go on,
 * and once it runs again its commit arrives whole. */
Test(crashq, a_stopped_reservation_makes_no_timed_call_late)
{
	pid_t kid;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	kid = stop_at("queue.reserve.held", child_reserve_commit, (void *)2);
	probe_then_continue(kid, probe_producers_and_consumer);
	cr_assert_eq(put_n(3), 0);
	expect(2);
	expect(3);
	expect_empty();
}

static int owner_put_twice(void *arg)
{
	(void)arg;
	if (put_n(1) != 0)
		return 1;
	return put_n(2) == 0 ? 0 : 2; /* the fast path: stops in it */
}

static int probe_puts_and_get(void *arg)
{
	(void)arg;
	int rc = probe_puts(NULL);
	char buf[128];

	if (rc != 0)
		return rc;
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT) > 0, 5);
	return 0;
}

/* The owner of the fast path closes its handle while a stopped producer
 * holds the producers' lock: close gives its registration up without
 * that lock (it used to wait for it as long as the peer stayed stopped),
 * and the next put finds the registration answered. */
static volatile int *close_go;

static int own_then_close(void *arg)
{
	long t0;

	(void)arg;
	T_CHECK(put_n(1) == 0 && put_n(2) == 0, 1); /* the owner */
	__atomic_store_n(&close_go[0], 1, __ATOMIC_SEQ_CST);
	T_CHECK(t_wait_count(&close_go[1], 1, 20000), 2);
	t0 = t_now_ms();
	ipc_queue_close(q);
	T_CHECK(t_now_ms() - t0 < 5000, 3);
	return 0;
}

Test(crashq, the_owner_closes_while_a_stopped_producer_holds_the_lock)
{
	pid_t owner, kid;
	int rc;

	close_go = t_shared(2 * sizeof(int));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	owner = t_spawn(own_then_close, NULL);
	cr_assert(t_wait_count(&close_go[0], 1, 10000));
	/* Its put revokes the idle owner, then stops holding the lock. */
	kid = stop_at("queue.put.written", child_put, (void *)3);
	close_go[1] = 1;
	rc = t_reap(owner, 10000);
	kill(kid, SIGCONT);
	cr_assert_eq(rc, 0, "the owner's close: %d", rc);
	cr_assert_eq(t_reap(kid, 10000), 0, "the stopped producer finished");
	expect(1);
	expect(2);
	expect(3);
	cr_assert_eq(put_n(4), 0);
	expect(4);
	expect_empty();
}

Test(crashq, puts_time_out_while_the_biased_producer_is_stopped_mid_put)
{
	pid_t kid;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = stop_at("queue.put.fast_written", owner_put_twice, NULL);
	probe_then_continue(kid, probe_puts_and_get);
	cr_assert_eq(put_n(3), 0, "the dead owner's bias is revoked");
	expect(2);
	expect(3);
	expect_empty();
}

/* A put with a timeout under a second: a revoker that looked at the
 * owner's registration only every 1024 naps (about a second) missed it. */
static int put_3_within_700_ms(void *arg)
{
	(void)arg;
	return put_n_within(3, 700) == 0 ? 0 : 1;
}

Test(crashq, a_revoker_waiting_for_a_stopped_owner_sees_it_killed_at_once)
{
	pid_t kid, revoker;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = stop_at("queue.put.fast_written", owner_put_twice, NULL);
	/* The first revoker runs the barrier (REVOKE_FENCED) and gives up,
	 * so the next one only waits for the owner's put to end. */
	cr_assert_eq(put_n_within(9, IPC_NOWAIT), IPC_EAGAIN);
	revoker = t_spawn(put_3_within_700_ms, NULL);
	/* Asleep between looks at the stopped owner: kill it there. */
	cr_assert(t_blocked_in_syscall(revoker, SYS_clock_nanosleep, 10000));
	cr_assert_eq(t_kill(kid), -SIGKILL);
	cr_assert_eq(t_reap(revoker, 10000), 0, "the put went through");
	expect(1);
	expect(3);
	expect_empty();
}

static int get_and_finish(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 10000) <= 0)
		return 1;
	return ipc_queue_task_done(q) == 0 ? 0 : 2;
}

static int probe_joinable(void *arg)
{
	char buf[128];

	(void)arg;
	WITHIN(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), IPC_EAGAIN, 0,
	       1);
	WITHIN(ipc_queue_get(q, buf, sizeof(buf), 200), IPC_ETIMEDOUT, 200, 2);
	WITHIN(ipc_queue_join(q, 200), IPC_ETIMEDOUT, 200, 3);
	WITHIN(put_n(4), 0, 0, 4);
	return 0;
}

Test(crashq, joinable_calls_time_out_while_a_stopped_consumer_holds_the_lock)
{
	pid_t kid;

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	cr_assert_eq(put_n(2), 0);
	kid = stop_at("queue.get.taken", get_and_finish, NULL);
	probe_then_continue(kid, probe_joinable);
	cr_assert_eq(ipc_queue_unfinished(q), 2, "tasks 2 and 4 are left");
	expect(2);
	expect(4);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
	expect_empty();
}

/* ---- Walks from the free position, notes of dead claimers -------------- */

static int rw_child(void *arg)
{
	char buf[1024];
	ssize_t n;

	(void)arg;
	n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	if (n < 0)
		return 3;
	if (n != 8 || memcmp(buf, "RRRRRRRR", 8) != 0)
		return 2; /* invented, or torn */
	return ipc_queue_task_done(q) == 0 ? 0 : 4;
}

static int rw_get_and_die(void *arg)
{
	char buf[1024];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) != 8 ||
	    memcmp(buf, "RRRRRRRR", 8) != 0)
		return 1;
	raise(SIGKILL);
	return 0;
}

/* X (at 0) got by us, R (at 16) got by a consumer that dies, requeued. W's
 * get walks from the free position (0) under q_cmutex for R and is stopped
 * there. Our task_done of X must not free 0..16 meanwhile: puts would then
 * wrap onto it, and a payload whose bytes look like a REQUEUED header
 * would be taken by W's walk (an invented message, and W's TAKEN state
 * written into another message). W must get R. */
Test(crashq, a_walk_from_the_free_position_reads_no_reused_bytes)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	uint32_t len = 8, state = 1; /* a REQUEUED header */
	char buf[1024], m[16];
	pid_t kid;
	int rc;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	cr_assert_eq(ipc_queue_put(q, "XQXQXQXQ", 8, 1000), 0); /* at 0 */
	cr_assert_eq(ipc_queue_put(q, "RRRRRRRR", 8, 1000), 0); /* at 16 */
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 8);
	cr_assert_eq(memcmp(buf, "XQXQXQXQ", 8), 0);
	cr_assert_eq(t_reap(t_spawn(rw_get_and_die, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN); /* reaps */
	kid = stop_at("queue.get.requeued_walk", rw_child, NULL);
	cr_assert_eq(ipc_queue_task_done(q), 0); /* X */
	memset(buf, 'F', sizeof(buf));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_queue_put(q, buf, 1016, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_put(q, buf, 976, IPC_NOWAIT), 0); /* ..4088 */
	memcpy(m, &len, 4);
	memcpy(m + 4, &state, 4);
	memcpy(m + 8, "INVENTED", 8);
	/* It would lie at 4088, its payload at 0: no room while W walks. */
	rc = ipc_queue_put(q, m, 16, IPC_NOWAIT);
	cr_assert_eq(rc, IPC_EAGAIN, "X's bytes were freed under the walk");
	rc = continue_until_exit(kid);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "W got R: %#x", rc);
	cr_assert_eq(ipc_queue_put(q, m, 16, IPC_NOWAIT), 0, "room now");
}

static int drop_all(void *arg)
{
	(void)arg;
	return ipc_queue_shutdown_immediate(q) == 0 ? 0 : 1;
}

/* We hold A (at the free position). The dropper marks B DROPPED and is
 * killed before it counts it. Our task_done of A must not free B before
 * the repair has counted it, or join would wait for ever. */
Test(crashq, a_dropped_record_is_counted_before_it_is_freed)
{
	char buf[128];

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_n(i), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000) > 0, 1);
	die_at("queue.drop.marked", drop_all, NULL);
	cr_assert_eq(ipc_queue_task_done(q), 0); /* A */
	cr_assert_eq(ipc_queue_join(q, 3000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	cr_assert_eq(ipc_queue_unfinished(q), 0);
}

/* get + task_done (registers), then on the go one more get: 10 + the digit
 * got. */
static int nt_child(void *arg)
{
	char buf[1024];
	int *go = arg;
	ssize_t n;

	if (ipc_queue_get(q, buf, sizeof(buf), 1000) != 8 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	if (read(go[0], buf, 1) != 1)
		return 5;
	n = ipc_queue_get(q, buf, sizeof(buf), 2000);
	if (n != 8)
		return 2;
	for (int i = 1; i < 8; i++)
		if (buf[i] != buf[0])
			return 3;
	if (ipc_queue_task_done(q) != 0)
		return 4;
	return 10 + (buf[0] - '0');
}

static void nt_wait_stopped(pid_t kid)
{
	long t0 = t_now_ms();
	int st = 0;

	while (waitpid(kid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "child %d stopped", (int)kid);
}

/* Items 0..3 queued; L reads head (item 2) and stops; W wins item 2 and
 * stops between its two CASes; L, continued, notes item 2, fails its CAS
 * and is killed, and a join reaps it: W's pid (the pipes in g). */
static pid_t loser_and_stopped_winner(int g[2][2])
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char buf[8];
	pid_t L, W;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < 4; i++) {
		memset(buf, '0' + i, 8);
		cr_assert_eq(ipc_queue_put(q, buf, 8, 1000), 0);
	}
	cr_assert_eq(pipe(g[0]), 0);
	cr_assert_eq(pipe(g[1]), 0);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	L = t_spawn_at_point("queue.get.head_read", "1", nt_child, g[0]);
	cr_assert(t_blocked_in_syscall(L, SYS_read, 10000));
	W = t_spawn_at_point("queue.get.taken", "1", nt_child, g[1]);
	cr_assert(t_blocked_in_syscall(W, SYS_read, 10000));
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert_eq(write(g[0][1], "g", 1), 1);
	nt_wait_stopped(L);
	cr_assert_eq(write(g[1][1], "g", 1), 1);
	nt_wait_stopped(W);
	/* L's CAS fails; it loops to its head read and stops again. */
	kill(L, SIGCONT);
	nt_wait_stopped(L);
	cr_assert_eq(t_kill(L), -SIGKILL);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN); /* reaps */
	return W;
}

/* W, continued after the reap, and we get items 2 and 3 between us, each
 * once. */
Test(crashq, a_dead_losers_note_beside_a_live_winner_hands_out_nothing_twice)
{
	char buf[1024];
	int g[2][2], rc;
	pid_t W = loser_and_stopped_winner(g);

	rc = continue_until_exit(W);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) >= 10, "W: %#x", rc);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 8);
	cr_assert_neq(WEXITSTATUS(rc) - 10, buf[0] - '0', "got twice");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	for (int i = 0; i < 2; i++) {
		close(g[0][i]);
		close(g[1][i]);
	}
}

/* The same, the parent getting before W resumes: W's task is not
 * requeued on the dead loser's note (W, alive, notes the same head), so
 * the parent gets item 3 and W item 2, each once. Requeued, item 2 could
 * be got, finished and freed while W was stopped, and W's mark would then
 * find another getter's state, or reused bytes. */
Test(crashq, a_dead_losers_note_leaves_a_stopped_winners_task_to_it)
{
	char buf[1024];
	int g[2][2], rc;
	pid_t W = loser_and_stopped_winner(g);

	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 8);
	cr_assert_eq(buf[0], '3', "item 2 stays W's");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	rc = continue_until_exit(W);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 12, "W got 2: %#x", rc);
	cr_assert_eq(ipc_queue_join(q, 1000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	for (int i = 0; i < 2; i++) {
		close(g[0][i]);
		close(g[1][i]);
	}
}

/* Gets two tasks and finishes one (the locked task_done: two outstanding),
 * to die in it at a point. */
static int get_two_done_one(void *arg)
{
	char buf[1016];

	(void)arg;
	for (int i = 0; i < 2; i++)
		if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0)
			return 1;
	return ipc_queue_task_done(q) == 0 ? 0 : 2;
}

/* A consumer killed in its locked task_done after counting, while it held
 * the free position (frozen): the room of the task it finished is freed
 * by the next put that lacks room, even one that cannot wait, and without
 * waiting for a re-check (hourly here): the freeze of a holder that died
 * is seen by a trylock, whose repair thaws it. */
Test(crashq, a_freeze_left_by_a_dead_holder_frees_room_for_a_nowait_put)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char msg[1016] = { 0 };
	int rc;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	die_at("queue.task_done.counted", get_two_done_one, NULL);
	rc = ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0, "NOWAIT put: %d", rc);
}

/* Wait (at most 10 s) until kid stops or ends; true if it stopped. */
static bool wait_stopped(pid_t kid)
{
	long t0 = t_now_ms();
	int st = 0;

	while (waitpid(kid, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	return WIFSTOPPED(st);
}

/* Task 3, whose claimer died, comes back once, and then all is done. */
static void expect_task_3_back(void)
{
	char buf[128], ref[128];
	size_t len = make_msg(ref, 3);
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 1000);

	cr_assert_eq(n, (ssize_t)len,
		     "task 3 requeued: got %zd, unfinished %ld", n,
		     ipc_queue_unfinished(q));
	cr_assert_eq(memcmp(buf, ref, len), 0);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	expect_empty();
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* ---- Consumers that give way (a lost race yields the CPU, or naps) ---- */

/* How many times the child called sched_yield, and clock_nanosleep (a
 * JoinableQueue claim's nap), shared with the parent. */
static volatile int *yields, *naps;

/* Is this trapped call a give-way: a yield, or a nap? */
static bool is_give_way(int nr)
{
	return nr == SYS_sched_yield || nr == SYS_clock_nanosleep;
}

static void count_give_way(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (si->si_syscall == SYS_sched_yield)
		(*yields)++;
	else if (si->si_syscall == SYS_clock_nanosleep)
		(*naps)++;
}

/* Every sched_yield and clock_nanosleep of the calling process raises
 * SIGSYS instead of running (seccomp: the call does not run and returns
 * its own number, neither 0 nor EINTR, so a nap ends at once), and
 * handler runs. */
static bool trap_give_way_to(void (*handler)(int, siginfo_t *, void *))
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_yield, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clock_nanosleep, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	struct sigaction sa = { .sa_sigaction = handler,
				.sa_flags = SA_SIGINFO };

	return sigaction(SIGSYS, &sa, NULL) == 0 &&
	       prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

struct race_arg {
	int timeout_ms; /* of the get that loses its race */
	bool joinable;	/* first get and task_done message 0 (registers) */
};

/* The racing consumer: with its yields and naps counted, get the message after
 * the one the parent takes from under it (2 for a JoinableQueue, else 1). */
static int lose_a_race(void *arg)
{
	const struct race_arg *a = arg;
	char buf[128], ref[128];
	size_t len;
	ssize_t n;

	if (a->joinable) {
		n = ipc_queue_get(q, buf, sizeof(buf), 1000);
		len = make_msg(ref, 0);
		if (n != (ssize_t)len || memcmp(buf, ref, len) != 0 ||
		    ipc_queue_task_done(q) != 0)
			return 1;
	}
	if (!trap_give_way_to(count_give_way))
		return 2;
	n = ipc_queue_get(q, buf, sizeof(buf), a->timeout_ms);
	len = make_msg(ref, a->joinable ? 2 : 1);
	if (n != (ssize_t)len || memcmp(buf, ref, len) != 0)
		return 3;
	return a->joinable && ipc_queue_task_done(q) != 0 ? 4 : 0;
}

/* Messages 0..2 queued, the child stopped just before its claim (the
 * JoinableQueue child registered with 0 first) and the message it was
 * after taken from under it: the child's pid. Its give-ways are counted
 * in yields and naps, both zeroed here. */
static pid_t race_from_under(bool joinable, int (*child)(void *), void *arg)
{
	pid_t kid;

	yields = t_shared(sizeof(*yields));
	naps = t_shared(sizeof(*naps));
	if (joinable)
		cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	else
		cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_n(i), 0);
	/* The JoinableQueue's first get (locked, registering) passes the
	 * point once before the lock-free one. */
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	kid = t_spawn_at_point(joinable ? "queue.get.head_read"
					: "queue.get.copied",
			       joinable ? "1" : NULL, child, arg);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(wait_stopped(kid), "the consumer stopped at its claim");
	expect(joinable ? 1 : 0); /* from under the stopped claim */
	if (joinable)
		cr_assert_eq(ipc_queue_task_done(q), 0);
	return kid;
}

/* A consumer stopped just before its claim (after its copy, or after its
 * read of head for a JoinableQueue) while the parent takes that message:
 * continued, its compare-and-swap fails. It then gives way before it
 * takes the next message (a Queue's get: one sched_yield; a
 * JoinableQueue's claim: one nap, and no yield), unless it asked not to
 * wait; nothing is lost or got twice either way. */
static void race_and_count(bool joinable, int timeout_ms, int want)
{
	struct race_arg a = { timeout_ms, joinable };
	pid_t kid = race_from_under(joinable, lose_a_race, &a);
	int rc = continue_until_exit(kid); /* the point stops it each pass */

	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "the consumer got the next message: %#x", rc);
	cr_assert_eq(joinable ? *naps : *yields, want, "%s calls: %d, not %d",
		     joinable ? "clock_nanosleep" : "sched_yield",
		     joinable ? *naps : *yields, want);
	cr_assert_eq(joinable ? *yields : *naps, 0, "%s calls: %d, not 0",
		     joinable ? "sched_yield" : "clock_nanosleep",
		     joinable ? *yields : *naps);
	if (!joinable)
		expect(2);
	expect_empty();
	if (joinable)
		cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

Test(crashq, a_get_that_lost_its_race_gives_way_once)
{
	race_and_count(false, IPC_FOREVER, 1);
}

Test(crashq, a_timed_get_that_lost_its_race_gives_way_once)
{
	race_and_count(false, 1000, 1);
}

Test(crashq, a_nowait_get_that_lost_its_race_never_yields)
{
	race_and_count(false, IPC_NOWAIT, 0);
}

Test(crashq, a_joinable_claim_that_lost_its_race_naps_once)
{
	race_and_count(true, IPC_FOREVER, 1);
}

Test(crashq, a_timed_joinable_claim_that_lost_its_race_naps_once)
{
	race_and_count(true, 1000, 1);
}

Test(crashq, a_nowait_joinable_claim_that_lost_its_race_never_naps)
{
	race_and_count(true, IPC_NOWAIT, 0);
}

/* A nap that overruns (trapped: the handler runs out the clock for 150
 * ms, as a loser descheduled that long would), counted. */
static void overrun_nap(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (si->si_syscall == SYS_sched_yield) {
		(*yields)++;
	} else if (si->si_syscall == SYS_clock_nanosleep) {
		long t0 = t_now_ms();

		(*naps)++;
		while (t_now_ms() - t0 < 150)
			;
	}
}

/* Registers (task 0), then a get within 100 ms that loses its race for
 * task 1 and whose deadline passes in its nap: it must stop there. */
static int lose_a_race_past_the_deadline(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	if (!trap_give_way_to(overrun_nap))
		return 2;
	return ipc_queue_get(q, buf, sizeof(buf), 100) == IPC_ETIMEDOUT ? 0 : 3;
}

Test(crashq, a_timed_joinable_claim_whose_deadline_passes_in_its_nap_stops)
{
	pid_t kid = race_from_under(true, lose_a_race_past_the_deadline, NULL);
	int rc = continue_until_exit(kid);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "the get timed out after its nap: %#x", rc);
	cr_assert_eq(*naps, 1, "clock_nanosleep calls: %d", *naps);
	cr_assert_eq(*yields, 0, "sched_yield calls: %d", *yields);
	expect(2); /* left queued, not lost */
	cr_assert_eq(ipc_queue_task_done(q), 0);
	expect_empty();
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* The batch get's child: get_many of two, counted yields; it must get
 * messages 1 and 2 (0 is taken from under its first claim). */
static int lose_a_batch_race(void *arg)
{
	char b[2][128], ref[128];
	struct iovec v[2] = { { b[0], sizeof(b[0]) }, { b[1], sizeof(b[1]) } };
	ssize_t n;

	(void)arg;
	if (!trap_give_way_to(count_give_way))
		return 2;
	n = ipc_queue_get_many(q, v, 2, IPC_FOREVER);
	if (n != 2)
		return 3;
	for (int i = 0; i < 2; i++) {
		size_t len = make_msg(ref, i + 1);
		if (v[i].iov_len != len || memcmp(b[i], ref, len) != 0)
			return 4;
	}
	return 0;
}

Test(crashq, a_batch_get_that_lost_its_race_gives_way_once)
{
	pid_t kid;
	int rc;

	yields = t_shared(sizeof(*yields));
	naps = t_shared(sizeof(*naps));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_n(i), 0);
	kid = stop_at("queue.get_many.copied", lose_a_batch_race, NULL);
	expect(0);
	rc = continue_until_exit(kid);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "the batch got 1 and 2: %#x", rc);
	cr_assert_eq(*yields, 1, "sched_yield calls: %d", *yields);
	cr_assert_eq(*naps, 0, "clock_nanosleep calls: %d", *naps);
	expect_empty();
}

/* ---- A get that slips behind its producer (ring_slip) ---------------- */

/* Where no get slips, as the library decides: off x86, and where this
 * process may run on one CPU only. */
static bool no_slip_here(void)
{
#if defined(__x86_64__) || defined(__i386__)
	cpu_set_t cpus;

	return sysconf(_SC_NPROCESSORS_ONLN) <= 1 ||
	       (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
		CPU_COUNT(&cpus) <= 1);
#else
	return true;
#endif
}

/* The child's next stop or exit, waited for at most 10 s (-1: neither);
 * a child found stopped is left stopped. */
static int next_stop_or_exit(pid_t kid)
{
	int st = 0;

	for (long t0 = t_now_ms(); t_now_ms() - t0 < 10000;) {
		if (waitpid(kid, &st, WUNTRACED | WNOHANG) == kid)
			return st;
		usleep(1000);
	}
	return -1;
}

/* With its yields counted, gets within 10 s; the message must be intact
 * and numbered 2. */
static int child_get_expect_2(void *arg)
{
	(void)arg;
	if (!trap_give_way_to(count_give_way))
		return 2;
	return got_msg(q, 2, 10000) ? 0 : 1;
}

/* A get that finds a message at once with little queued slips first. A
 * consumer stopped there holds nothing: the message is another's to
 * take; continued, the consumer takes the next one, never that one, and
 * without a lost race (a yield): it looks at the head again after the
 * slip, instead of copying the record that was taken meanwhile. */
Test(crashq, a_consumer_stopped_while_it_slips_holds_nothing)
{
	pid_t kid;
	int rc;

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	yields = t_shared(sizeof(*yields));
	naps = t_shared(sizeof(*naps));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	kid = stop_at("queue.get.slip", child_get_expect_2, NULL);
	expect(1);
	cr_assert_eq(put_n(2), 0);
	rc = continue_until_exit(kid);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "the continued consumer got message 2 alone: %#x", rc);
	cr_assert_eq(*yields, 0, "sched_yield calls: %d", *yields);
	expect_empty();
}

Test(crashq, a_consumer_killed_while_it_slips_takes_nothing)
{
	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(put_n(i), 0);
	die_at("queue.get.slip", child_get, NULL);
	cr_assert_eq(ipc_queue_qsize(q), 2, "nothing lost");
	expect(1);
	expect(2);
	expect_empty();
}

static int child_get_nowait(void *arg)
{
	char buf[128];

	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT) > 0 ? 0 : 1;
}

/* A kill at the slip is fatal here: the child must get past without. */
Test(crashq, a_nowait_get_never_slips)
{
	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.get.slip", NULL,
					     child_get_nowait, NULL),
			    10000),
		     0, "the IPC_NOWAIT get took its message without slipping");
	expect_empty();
}

static int child_get_too_small(void *arg)
{
	char buf[8];

	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 10000) == IPC_EMSGSIZE ? 0
									 : 1;
}

/* A get that cannot take the message (its buffer is too small) says so
 * at once (a kill at the slip is fatal here); the message stays. */
Test(crashq, a_get_whose_buffer_is_too_small_never_slips)
{
	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_n(1), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.get.slip", NULL,
					     child_get_too_small, NULL),
			    10000),
		     0, "IPC_EMSGSIZE without slipping");
	expect(1);
	expect_empty();
}

/* Finds the queue empty, tells the parent, and gets (within 10 s) the
 * message 1 the parent then puts. */
static int child_empty_then_get(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT) != IPC_EAGAIN)
		return 1;
	__atomic_store_n(&flag[0], 1, __ATOMIC_SEQ_CST);
	if (!t_wait_count(&flag[1], 1, 10000))
		return 2;
	return got_msg(q, 1, 10000) ? 0 : 3;
}

/* A message that comes alone to a consumer that found the queue empty (a
 * request, a ping-pong) is taken at once: the get after a wait never
 * slips (a kill at the slip is fatal here). */
Test(crashq, a_get_after_one_that_found_the_queue_empty_never_slips)
{
	pid_t kid;

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	flag = t_shared(2 * sizeof(int));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = t_spawn_at_point("queue.get.slip", NULL, child_empty_then_get,
			       NULL);
	cr_assert(t_wait_count(&flag[0], 1, 10000));
	cr_assert_eq(put_n(1), 0);
	__atomic_store_n(&flag[1], 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(t_reap(kid, 10000), 0,
		     "the consumer took its message without slipping");
	expect_empty();
}

static int child_get_1(void *arg)
{
	(void)arg;
	return got_msg(q, 1, 10000) ? 0 : 1;
}

/* A get that waits for its message takes it at once when it comes: the
 * child, stopped as it begins to wait, is continued after the put; a stop
 * at the slip would show it slipped. */
Test(crashq, a_get_that_waited_for_its_message_never_slips)
{
	pid_t kid;
	int st = 0;

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = stop_at("queue.get.waiting,queue.get.slip", child_get_1, NULL);
	cr_assert_eq(put_n(1), 0);
	kill(kid, SIGCONT);
	st = next_stop_or_exit(kid);
	cr_assert(!WIFSTOPPED(st), "the consumer slipped");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the consumer got its message: %#x", st);
	expect_empty();
}

/* Waits for message 1 (stopped as it begins to, by the parent), takes
 * it, tells the parent, then gets message 2, which the parent puts. */
static int child_wait_take_then_get(void *arg)
{
	(void)arg;
	if (!got_msg(q, 1, 10000))
		return 1;
	__atomic_store_n(&flag[0], 1, __ATOMIC_SEQ_CST);
	if (!t_wait_count(&flag[1], 1, 10000))
		return 2;
	return got_msg(q, 2, 10000) ? 0 : 3;
}

/* A get that waited and took its message leaves the next get free to
 * slip: a stream's consumer waits once at its start, and must still slip
 * afterwards. */
Test(crashq, a_get_after_one_that_took_what_it_waited_for_slips)
{
	pid_t kid;
	int st;

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	flag = t_shared(2 * sizeof(int));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = stop_at("queue.get.waiting,queue.get.slip",
		      child_wait_take_then_get, NULL);
	cr_assert_eq(put_n(1), 0);
	kill(kid, SIGCONT);
	cr_assert(t_wait_count(&flag[0], 1, 10000), "message 1 taken");
	cr_assert_eq(put_n(2), 0);
	__atomic_store_n(&flag[1], 1, __ATOMIC_SEQ_CST);
	st = next_stop_or_exit(kid);
	cr_assert(WIFSTOPPED(st), "the second get slipped: %#x", st);
	st = continue_until_exit(kid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the consumer got message 2: %#x", st);
	expect_empty();
}

static ipc_queue *q2;

/* Finds q2 empty, then gets message 1 from q within 10 s. */
static int child_other_empty_then_get(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q2, buf, sizeof(buf), IPC_NOWAIT) != IPC_EAGAIN)
		return 1;
	return got_msg(q, 1, 10000) ? 0 : 2;
}

/* What a get that found nothing holds back is the next get through the
 * same handle, not a get from another queue. */
Test(crashq, a_get_that_found_another_queue_empty_still_slips)
{
	pid_t kid;
	int st;

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_new(&q2, 0), 0);
	cr_assert_eq(put_n(1), 0);
	kid = stop_at("queue.get.slip", child_other_empty_then_get, NULL);
	st = continue_until_exit(kid);
	ipc_queue_close(q2);
	q2 = NULL;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the consumer got message 1: %#x", st);
	expect_empty();
}

/* Pins itself to one CPU, opens the queue named arg (its spin budgets,
 * the slip's one-CPU rule among them, are set at open) and gets message
 * 1 within 10 s. */
static int child_one_cpu_get(void *arg)
{
	cpu_set_t one;
	ipc_queue *mine;
	bool got;

	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return 1;
	if (ipc_queue_open(&mine, arg, 0, NULL) != 0)
		return 2;
	got = got_msg(mine, 1, 10000);
	ipc_queue_close(mine);
	return got ? 0 : 3;
}

/* Where the process may run on one CPU only, a get never slips: its
 * producer, if it shares that CPU, could not move meanwhile (a kill at
 * the slip is fatal here). */
Test(crashq, a_consumer_on_one_cpu_never_slips)
{
	char name[128];

	if (no_slip_here())
		cr_skip_test("no get slips here (one CPU, or not x86)");
	t_name(name, sizeof(name), "slip-one-cpu");
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, NULL), 0);
	cr_assert_eq(put_n(1), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.get.slip", NULL,
					     child_one_cpu_get, name),
			    10000),
		     0,
		     "the pinned consumer took its message without slipping");
	ipc_unlink(name);
	expect_empty();
}

/* ---- Lost races beside dead winners and timed batches ---------------- */

/* A new JoinableQueue holding tasks 1..n. */
static void joinable_with_tasks(int n)
{
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 1; i <= n; i++)
		cr_assert_eq(put_n(i), 0);
}

/* Puts message 65 into the full queue (an item limit of 65). */
static int put_65_within_3s(void *arg)
{
	(void)arg;
	return put_n_within(65, 3000) == 0 ? 0 : 1;
}

/* get_many of 66 within 100 ms: takes 0..63 in its first chunk, copies 64
 * and stops before its second CAS (the point's second pass). */
static int batch_of_66_times_out_in_its_second_chunk(void *arg)
{
	static char b[66][128];
	struct iovec v[66];
	ssize_t n;

	(void)arg;
	for (int i = 0; i < 66; i++)
		v[i] = (struct iovec){ b[i], sizeof(b[i]) };
	n = ipc_queue_get_many(q, v, 66, 100);
	return n == 64 ? 0 : 1;
}

static int get_one(void *arg)
{
	char buf[128];

	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 ? 0 : 1;
}

/* The batch get's first chunk freed 64 items with a producer asleep for
 * room; its second chunk loses its race to a getter stopped between its
 * CAS and its wake, and the batch's deadline passes in the give-way. The
 * batch returns 64 and must still wake the producer. */
Test(crashq, a_batch_that_times_out_giving_way_still_wakes_producers)
{
	pid_t p, a, w;
	int st = 0, rc;
	long t0;

	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_queue_new(&q, 65), 0);
	for (int i = 0; i < 65; i++)
		cr_assert_eq(put_n(i), 0);
	p = t_spawn(put_65_within_3s, NULL);
	cr_assert(t_blocked_in_futex(p, 10000), "the producer sleeps");
	usleep(50 * 1000); /* past its batch wait: an urgent sleeper */
	cr_assert(t_blocked_in_futex(p, 10000), "the producer sleeps");
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	a = t_spawn_at_point("queue.get_many.copied", "1",
			     batch_of_66_times_out_in_its_second_chunk, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	t0 = t_now_ms();
	while (waitpid(a, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "the batch stopped in its second chunk");
	w = stop_at("queue.get.published", get_one, NULL); /* took 64 */
	usleep(200 * 1000); /* the batch's deadline passes */
	rc = continue_until_exit(a);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "the batch got 64");
	t0 = t_now_ms();
	rc = t_reap(p, 1000);
	kill(w, SIGCONT);
	t_reap(w, 10000);
	unsetenv("IPC_TEST_RECHECK_MS");
	cr_assert_eq(rc, 0,
		     "the producer was woken for the 64 freed: %d after %ld ms",
		     rc, t_now_ms() - t0);
}

/* A consumer stopped in its give-way (the nap's or yield's SIGSYS stops
 * it, as a descheduled one) with its note of the head it lost still set
 * if it was not cleared first. */
static void stop_in_give_way(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (is_give_way(si->si_syscall))
		kill(getpid(), SIGSTOP);
}

static int loser_gets_4(void *arg);

/* L, stopping (SIGSTOP) when it gives way: a nap that deschedules it. */
static int loser_stops_in_its_give_way(void *arg)
{
	static int stop = 1;

	(void)arg;
	return loser_gets_4(&stop);
}

static int winner_registers_stops_then_claims(void *arg)
{
	char buf[128];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	kill(getpid(), SIGSTOP);
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 ? 0 : 2;
}

/* W claims 3 (moves head) and is killed before marking it; L lost its CAS
 * for 3 and sits in its give-way (its nap) while W is reaped. Task 3 must
 * come back. */
Test(crashq, a_dead_winners_task_is_requeued_while_the_loser_naps)
{
	pid_t w, l;
	int rc;

	joinable_with_tasks(4);
	w = t_spawn_at_point("queue.get.taken", "1",
			     winner_registers_stops_then_claims, NULL);
	cr_assert(wait_stopped(w), "W registered (got 1)");
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	l = t_spawn_at_point("queue.get.head_read", "1",
			     loser_stops_in_its_give_way, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(wait_stopped(l), "L got 2 and read head (3)");
	kill(w, SIGCONT);
	cr_assert_eq(t_reap(w, 10000), -SIGKILL, "W died after claiming 3");
	kill(l, SIGCONT);
	cr_assert(wait_stopped(l), "L lost its CAS for 3 and stopped again");
	/* W's slot is reaped now (join looks once). L cleared its note
	 * before its nap, so that reap requeued 3 at once: it is gettable
	 * while L still naps, not only after L moved on. */
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	{
		char buf[128], ref[128];
		size_t len = make_msg(ref, 3);
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT);

		cr_assert_eq(n, (ssize_t)len,
			     "task 3 requeued while L naps: got %zd", n);
		cr_assert_eq(memcmp(buf, ref, len), 0);
		cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	rc = continue_until_exit(l);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L got 4: %#x", rc);
	expect_empty();
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* L: register (get 2, task_done), then get again: it must get 4, task 3
 * being W's. With arg not NULL, its give-way stops it (stop_in_give_way). */
static int loser_gets_4(void *arg)
{
	char buf[128], ref[128];
	size_t len = make_msg(ref, 4);

	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	if (arg != NULL && !trap_give_way_to(stop_in_give_way))
		return 2;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) != (ssize_t)len ||
	    memcmp(buf, ref, len) != 0)
		return 3;
	return ipc_queue_task_done(q) == 0 ? 0 : 4;
}

/* Tasks 1..4; W gets 1, then claims 3 and dies before marking it; L
 * gets 2, lost its CAS for 3 and is stopped with its note still set:
 * L's pid. */
static pid_t dead_winner_beside_a_stopped_loser(void)
{
	pid_t w, l;

	joinable_with_tasks(4);
	w = t_spawn_at_point("queue.get.taken", "1",
			     winner_registers_stops_then_claims, NULL);
	cr_assert(wait_stopped(w), "W registered (got 1)");
	/* Skip 1: the registering get's locked claim passes head_read. */
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	l = t_spawn_at_point("queue.get.head_read,queue.get.lost", "1",
			     loser_gets_4, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(wait_stopped(l), "L got 2 and read head (3)");
	kill(w, SIGCONT);
	cr_assert_eq(t_reap(w, 10000), -SIGKILL, "W died after claiming 3");
	kill(l, SIGCONT);
	cr_assert(wait_stopped(l), "L lost its CAS for 3, its note still set");
	return l;
}

/* The same dead winner W, with the loser L stopped between its failed
 * compare-and-swap and the clearing of its note: the release of W's slot
 * finds L's note, L alive, and cannot tell a loser from a winner. It must
 * neither requeue task 3 (L might be its winner) nor forget it: W's slot
 * is kept, and the reap after L moved on requeues 3. */
Test(crashq, a_dead_winners_task_is_requeued_after_a_stopped_loser_moves_on)
{
	pid_t l;
	int rc;

	l = dead_winner_beside_a_stopped_loser();
	/* Reaps W's slot: L's note is 3's, L alive. */
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_unfinished(q), 2, "3 and 4, neither lost");
	rc = continue_until_exit(l); /* stops again at its next head_read */
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L got 4: %#x", rc);
	/* The get's first attempt finds nothing queued; its reap before it
	 * sleeps releases W's slot again, and 3 comes back. */
	expect_task_3_back();
}

/* ---- The drop's repair beside a live getter's note ---------------- */

/* L: register (get 1, task_done), then get again; the queue is shut down
 * meanwhile, so that get must end IPC_ECLOSED (or get a task: 2). */
static int getter_beside_a_drop(void *arg)
{
	char buf[128];
	ssize_t n;

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	if (n == IPC_ECLOSED)
		return 0;
	if (n > 0 && ipc_queue_task_done(q) == 0)
		return 0;
	return 3;
}

static int drop_immediately(void *arg)
{
	(void)arg;
	return ipc_queue_shutdown_immediate(q) == 0 ? 0 : 1;
}

/* L registers (gets one task), reads head (the next); a dropper claims
 * that one and dies before marking it; L loses its CAS for it and is
 * stopped with its note still set: L's pid. */
static pid_t loser_beside_a_dying_dropper(void)
{
	pid_t l, d;

	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	l = t_spawn_at_point("queue.get.head_read,queue.get.lost", "1",
			     getter_beside_a_drop, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(wait_stopped(l), "L registered and read head");
	d = t_spawn_at_point("queue.get.taken", NULL, drop_immediately, NULL);
	cr_assert_eq(t_reap(d, 10000), -SIGKILL, "the dropper died claiming");
	kill(l, SIGCONT);
	cr_assert(wait_stopped(l), "L lost its CAS, its note still set");
	return l;
}

/* Tasks 1..4, and loser_beside_a_dying_dropper: L gets 1, the dropper
 * claims 2. */
static pid_t dead_dropper_beside_a_stopped_loser(void)
{
	joinable_with_tasks(4);
	return loser_beside_a_dying_dropper();
}

/* The dropper claims 2 (moves head) and is killed before marking it; L
 * noted 2, lost its CAS to the dropper, and sits between its failed CAS
 * and its clear while the repair runs. After L moves on, every task must
 * be done or gettable: join must return. */
Test(crashq, a_dead_droppers_claim_beside_a_live_losers_note_is_settled)
{
	pid_t l;
	int rc;
	char buf[128];

	l = dead_dropper_beside_a_stopped_loser();
	/* The lock's repair runs now (join reaps): L's note is 2's. */
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	rc = continue_until_exit(l);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L ended: %#x", rc);
	rc = ipc_queue_get(q, buf, sizeof(buf), 200);
	if (rc > 0)
		cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0,
		     "join hangs: unfinished %ld, qsize %ld, get %d",
		     ipc_queue_unfinished(q), (long)ipc_queue_qsize(q), rc);
}

/* The other way round: a getter G wins 2 (stopped before marking it), the
 * dropper lost its CAS for 2 and is killed before clearing its note. The
 * repair cannot tell; G marks 2 and must get it, once; the rest dropped. */
Test(crashq, a_live_winner_keeps_its_task_beside_a_dead_droppers_note)
{
	pid_t g, d;
	int rc;

	joinable_with_tasks(4);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	g = t_spawn_at_point("queue.get.head_read,queue.get.taken", "2",
			     child_get_expect_1_2, NULL);
	cr_assert(wait_stopped(g), "G got 1 and read head (2)");
	d = t_spawn_at_point("queue.get.head_read,queue.get.lost", NULL,
			     drop_immediately, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	cr_assert(wait_stopped(d), "the dropper read head (2)");
	kill(g, SIGCONT);
	cr_assert(wait_stopped(g), "G won 2, not marked");
	kill(d, SIGCONT);
	cr_assert(wait_stopped(d), "the dropper lost 2, its note set");
	kill(d, SIGKILL);
	cr_assert_eq(t_reap(d, 10000), -SIGKILL);
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	rc = continue_until_exit(g);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "G got 2: %#x", rc);
	cr_assert_eq(ipc_queue_join(q, 1000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

/* two dead droppers' claims (3 and 4), each beside a live loser's
 * note, before any reap: q_orphan_head holds one, the second overwrites
 * the first. L2 registers (1) and reads head 2; L1 registers (2), reads 3.
 * L2 loses 2 and reads 3. D1 claims 3, dies. L1 loses 3 (note 3 kept);
 * L2 loses 3, reads 4. D2's repair keeps 3 as the orphan, its drop claims
 * 4 and dies. L2 loses 4 (note 4 kept). join's repair keeps 4 as the
 * orphan: 3 is forgotten, READY behind head for ever. */
/* Tasks 1..6; two dead droppers' claims (3 and 4), each beside a live
 * loser stopped with its note set (L1 for 3, L2 for 4), before any reap. */
static void two_dead_droppers_beside_losers(pid_t *l1p, pid_t *l2p)
{
	pid_t l1, l2, d;

	joinable_with_tasks(6);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	l2 = t_spawn_at_point("queue.get.head_read,queue.get.lost", "1",
			      getter_beside_a_drop, NULL);
	cr_assert(wait_stopped(l2), "L2 got 1 and read head (2)");
	l1 = t_spawn_at_point("queue.get.head_read,queue.get.lost", "1",
			      getter_beside_a_drop, NULL);
	cr_assert(wait_stopped(l1), "L1 got 2 and read head (3)");
	unsetenv("IPC_CRASHPOINT_ACTION");
	kill(l2, SIGCONT);
	cr_assert(wait_stopped(l2), "L2 lost 2");
	kill(l2, SIGCONT);
	cr_assert(wait_stopped(l2), "L2 read head (3)");
	d = t_spawn_at_point("queue.get.taken", NULL, drop_immediately, NULL);
	cr_assert_eq(t_reap(d, 10000), -SIGKILL, "D1 died claiming 3");
	kill(l1, SIGCONT);
	cr_assert(wait_stopped(l1), "L1 lost 3, its note set");
	kill(l2, SIGCONT);
	cr_assert(wait_stopped(l2), "L2 lost 3");
	kill(l2, SIGCONT);
	cr_assert(wait_stopped(l2), "L2 read head (4)");
	d = t_spawn_at_point("queue.get.taken", NULL, drop_immediately, NULL);
	cr_assert_eq(t_reap(d, 10000), -SIGKILL, "D2 kept 3, died claiming 4");
	kill(l2, SIGCONT);
	cr_assert(wait_stopped(l2), "L2 lost 4, its note set");
	*l1p = l1;
	*l2p = l2;
}

Test(crashq, two_dead_droppers_claims_beside_live_losers_are_both_settled)
{
	pid_t l1, l2;
	int rc;

	two_dead_droppers_beside_losers(&l1, &l2);
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	rc = continue_until_exit(l1);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L1 ended: %#x", rc);
	rc = continue_until_exit(l2);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L2 ended: %#x", rc);
	cr_assert_eq(ipc_queue_join(q, 1000), 0,
		     "join hangs: unfinished %ld, qsize %ld",
		     ipc_queue_unfinished(q), (long)ipc_queue_qsize(q));
}

static int join_once(void *arg)
{
	(void)arg;
	return ipc_queue_join(q, 1000) == 0 ? 0 : 1;
}

/* The settler is killed inside ring_settle_orphan, at point. */
static void settler_killed_at(const char *point)
{
	pid_t l, c;
	int rc;

	l = dead_dropper_beside_a_stopped_loser();
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	rc = continue_until_exit(l);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L ended: %#x", rc);
	c = t_spawn_at_point(point, NULL, join_once, NULL);
	cr_assert_eq(t_reap(c, 10000), -SIGKILL, "the settler died at %s",
		     point);
	cr_assert_eq(ipc_queue_join(q, 1000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(ipc_queue_join(q, 100), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0, "counted twice?");
}

Test(crashq, a_settler_killed_after_its_intent_is_rolled_forward)
{
	settler_killed_at("queue.settle.intent");
}

Test(crashq, a_settler_killed_after_its_count_is_rolled_forward)
{
	settler_killed_at("queue.settle.counted");
}

/* ---- The settle among mixed records, wrapped; tasks before the drop --- */

/* Register (get one, task_done), then get again: that one must be task
 * (intptr_t)arg, intact, once. */
static int getter_expects(void *arg)
{
	char buf[128], ref[128];
	int want = (int)(intptr_t)arg;
	size_t len = make_msg(ref, want);
	ssize_t n;

	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	n = ipc_queue_get(q, buf, sizeof(buf), 1000);
	if (n != (ssize_t)len)
		return n == IPC_ECLOSED ? 2 : 3;
	if (memcmp(buf, ref, len) != 0)
		return 4;
	return ipc_queue_task_done(q) == 0 ? 0 : 5;
}

static int get_and_done(void *arg)
{
	char buf[128];
	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 &&
			       ipc_queue_task_done(q) == 0
		       ? 0
		       : 1;
}

/* Positions wrapped many times and item numbers past 2^14 (the READY
 * tag's second field); [free, head) holds TAKEN (ours), DONE, a live
 * winner's READY claim (G, stopped before marking), a dead dropper's
 * READY claim beside a stopped loser (L), and DROPPED records. The
 * settle must number them right: G gets its task, the orphan is
 * dropped, join returns. */
Test(crashq, the_settle_numbers_records_right_among_mixed_states_after_wraps)
{
	ipc_queue_attr attr = { .capacity = 4096, .joinable = true };
	char buf[128];
	pid_t c, g, l;
	int rc, base = 20000;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < base; i++) {
		cr_assert_eq(put_n(i), 0);
		expect(i);
		cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	for (int i = 1; i <= 8; i++)
		cr_assert_eq(put_n(base + i), 0);
	expect(base + 1);		 /* held: nothing behind it is freed */
	c = t_spawn(get_and_done, NULL); /* base+2: DONE */
	cr_assert_eq(t_reap(c, 10000), 0);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	g = t_spawn_at_point("queue.get.head_read,queue.get.taken", "2",
			     getter_expects, (void *)(intptr_t)(base + 4));
	cr_assert(wait_stopped(g), "G got base+3 and read head (base+4)");
	kill(g, SIGCONT);
	cr_assert(wait_stopped(g), "G won base+4, not marked");
	unsetenv("IPC_CRASHPOINT_ACTION");
	/* L gets base+5; the dropper claims base+6 and dies. */
	l = loser_beside_a_dying_dropper();
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	rc = continue_until_exit(l);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L ended: %#x", rc);
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT); /* settles */
	rc = continue_until_exit(g);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "G got base+4 once: %#x", rc);
	cr_assert_eq(ipc_queue_task_done(q), 0); /* base+1 */
	cr_assert_eq(ipc_queue_join(q, 1000), 0,
		     "join hangs: unfinished %ld, qsize %ld",
		     ipc_queue_unfinished(q), (long)ipc_queue_qsize(q));
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
}

/* Two orphans (3, 4) as in two_dead_droppers_claims_..., both losers
 * moved on; then a settler is killed at point (after skip hits). */
static void two_orphans_settler_killed_at(const char *point, const char *skip)
{
	pid_t l1, l2, c;
	int rc;

	two_dead_droppers_beside_losers(&l1, &l2);
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT); /* 3, 4 kept */
	cr_assert_eq(ipc_queue_unfinished(q), 2);
	rc = continue_until_exit(l1);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L1: %#x", rc);
	rc = continue_until_exit(l2);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "L2: %#x", rc);
	c = t_spawn_at_point(point, skip, join_once, NULL);
	cr_assert_eq(t_reap(c, 10000), -SIGKILL, "settler died at %s", point);
	cr_assert_eq(ipc_queue_join(q, 1000), 0, "unfinished %ld",
		     ipc_queue_unfinished(q));
	cr_assert_eq(ipc_queue_join(q, 100), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0, "counted twice?");
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

Test(crashq, two_orphans_settler_killed_first_intent_counts_each_once)
{
	two_orphans_settler_killed_at("queue.settle.intent", NULL);
}
Test(crashq, two_orphans_settler_killed_second_intent_counts_each_once)
{
	two_orphans_settler_killed_at("queue.settle.intent", "1");
}
Test(crashq, two_orphans_settler_killed_second_counted_counts_each_once)
{
	two_orphans_settler_killed_at("queue.settle.counted", "1");
}
Test(crashq, two_orphans_settler_killed_first_counted_counts_each_once)
{
	two_orphans_settler_killed_at("queue.settle.counted", NULL);
}

/* shutdown_immediate, then every task must count as done: join returns. */
static void drop_then_join(void)
{
	char buf[128];
	int n;

	cr_assert_eq(ipc_queue_shutdown_immediate(q), 0);
	n = ipc_queue_join(q, 300);
	cr_assert_eq(n, 0, "join: %d, unfinished %ld, qsize %ld, then get %zd",
		     n, ipc_queue_unfinished(q), (long)ipc_queue_qsize(q),
		     ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT));
}

/* A getter dies between its claim of 2 and its mark, before
 * shutdown_immediate, not reaped yet: 2 was never handed out, so it is
 * the queue's, and the drop (which reaps first) drops it. */
Test(crashq, a_dead_getters_claim_before_shutdown_immediate_is_dropped)
{
	pid_t g;

	joinable_with_tasks(3);
	/* skip 1: the registering get's locked claim passes taken once */
	g = t_spawn_at_point("queue.get.taken", "1", child_done_then_get, NULL);
	cr_assert_eq(t_reap(g, 10000), -SIGKILL, "G died claiming 2");
	drop_then_join();
}

static int get_one_and_exit(void *arg)
{
	char buf[128];
	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 ? 0 : 1;
}

/* A consumer took 1 and exited without task_done, not reaped yet, then
 * shutdown_immediate: 1 is dropped with the rest, not queued again. */
Test(crashq, a_dead_consumers_task_before_shutdown_immediate_is_dropped)
{
	joinable_with_tasks(3);
	cr_assert_eq(t_reap(t_spawn(get_one_and_exit, NULL), 10000), 0);
	drop_then_join();
}

/* W dies between its claim of 3 and its mark, before
 * shutdown_immediate; L, alive, is stopped with the same note (lost its
 * CAS). The drop's reap keeps W's slot (L might be the winner). After L
 * moves on, 3 was never handed out before the drop: it must be dropped
 * too, not requeued by a later reap. */
Test(crashq, a_dead_winners_kept_claim_before_shutdown_immediate_is_dropped)
{
	pid_t l;
	int rc;

	l = dead_winner_beside_a_stopped_loser();
	cr_assert_eq(ipc_queue_shutdown_immediate(q), 0);
	rc = continue_until_exit(l); /* gets IPC_ECLOSED: 4 was dropped */
	cr_assert(WIFEXITED(rc), "L ended: %#x", rc);
	{
		char buf[128];
		int n = ipc_queue_join(q, 300);
		cr_assert_eq(
			n, 0,
			"join: %d, unfinished %ld, qsize %ld, then get %zd", n,
			ipc_queue_unfinished(q), (long)ipc_queue_qsize(q),
			ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT));
	}
}

/* the dropper dies inside the reap its drop runs first (a dead
 * consumer's task 1 being requeued): nothing dropped yet, so every task
 * must still be gettable, and join returns once they are done. */
Test(crashq, a_dropper_killed_in_its_reap_leaves_every_task_gettable)
{
	char buf[128];
	ssize_t n;
	int got = 0;

	joinable_with_tasks(3);
	cr_assert_eq(t_reap(t_spawn(get_one_and_exit, NULL), 10000), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("queue.reap.requeued", NULL,
					     drop_immediately, NULL),
			    10000),
		     -SIGKILL, "the dropper died in its reap");
	while ((n = ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT)) > 0) {
		got++;
		cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	cr_assert_eq(n, IPC_ECLOSED);
	cr_assert_eq(ipc_queue_join(q, 300), 0, "got %d, unfinished %ld", got,
		     ipc_queue_unfinished(q));
}
