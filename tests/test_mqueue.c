/* SPDX-License-Identifier: MIT */
/*
 * test_mqueue.c — the POSIX message queue backend: interoperation with
 * plain mq_send / mq_receive both ways, sizes and limits, timeouts,
 * shutdown, JoinableQueue accounting, and producers and consumers killed
 * mid-operation.
 */
#include "config.h" /* IPC_ENABLE_CRASHPOINTS */

#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_queue *q;
static char name[128];
static char mqname[160];

static void setup(void)
{
	t_name(name, sizeof(name), "mq");
	snprintf(mqname, sizeof(mqname), "/libipc.%s", name);
	q = NULL;
}

static void teardown(void)
{
	ipc_queue_close(q);
	ipc_unlink(name);
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
	cr_assert_eq(mq_unlink(mqname), -1, "no mq left");
}

TestSuite(mqueue, .init = setup, .fini = teardown, .timeout = 60);

/* Poll, at most 10 s, until pid sleeps in a system call the backend
 * waits in: mq_timedsend / mq_timedreceive, or poll for a JoinableQueue
 * consumer. */
static bool blocked_in_mq(pid_t pid)
{
	static const long calls[] = { SYS_mq_timedsend, SYS_mq_timedreceive,
				      SYS_poll, SYS_ppoll };
	long until = t_now_ms() + 10000;

	while (t_now_ms() < until)
		for (size_t i = 0; i < sizeof(calls) / sizeof(*calls); i++)
			if (t_blocked_in_syscall(pid, calls[i], 1))
				return true;
	return false;
}

static int open_mq(ipc_queue **out, size_t maxsize, size_t msgsize,
		   bool joinable)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = maxsize,
				.max_msg_size = msgsize,
				.joinable = joinable };

	return ipc_queue_open(out, name, IPC_CREATE, &attr);
}

static int put_str(ipc_queue *to, const char *s)
{
	return ipc_queue_put(to, s, strlen(s), IPC_NOWAIT);
}

Test(mqueue, fifo_qsize_empty_full)
{
	char buf[64];

	cr_assert_eq(open_mq(&q, 3, 64, false), 0);
	cr_assert(ipc_queue_empty(q));
	cr_assert_not(ipc_queue_full(q));
	cr_assert_eq(put_str(q, "one"), 0);
	cr_assert_eq(put_str(q, "two"), 0);
	cr_assert_eq(put_str(q, ""), 0);
	cr_assert_eq(ipc_queue_qsize(q), 3);
	cr_assert(ipc_queue_full(q));
	cr_assert_eq(put_str(q, "four"), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_put(q, "four", 4, 30), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "one", 3), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "two", 3), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 0, "empty message");
	cr_assert(ipc_queue_empty(q));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	long t0 = t_now_ms();
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 50), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 49, "waited the whole timeout");
}

Test(mqueue, plain_mq_send_reaches_ipc_get)
{
	struct mq_attr a;
	char buf[64];
	mqd_t m;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	m = mq_open(mqname, O_WRONLY);
	cr_assert_neq(m, (mqd_t)-1, "the mq is named /libipc.<name>");
	cr_assert_eq(mq_getattr(m, &a), 0);
	cr_assert_eq(a.mq_maxmsg, 4);
	cr_assert_eq(a.mq_msgsize, 64);
	cr_assert_eq(mq_send(m, "hello", 5, 0), 0);
	cr_assert_eq(mq_send(m, "\0bin\0", 5, 0), 0);
	mq_close(m);
	cr_assert_eq(ipc_queue_qsize(q), 2);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 5);
	cr_assert_eq(memcmp(buf, "\0bin\0", 5), 0);
}

Test(mqueue, ipc_put_reaches_plain_mq_receive_unframed)
{
	char buf[64];
	unsigned prio = 99;
	mqd_t m;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	cr_assert_eq(put_str(q, "exact"), 0);
	cr_assert_eq(ipc_queue_put(q, "", 0, 0), 0);
	m = mq_open(mqname, O_RDONLY);
	cr_assert_neq(m, (mqd_t)-1);
	cr_assert_eq(mq_receive(m, buf, sizeof(buf), &prio), 5);
	cr_assert_eq(memcmp(buf, "exact", 5), 0, "no framing");
	cr_assert_eq(prio, 0);
	cr_assert_eq(mq_receive(m, buf, sizeof(buf), NULL), 0);
	mq_close(m);
	cr_assert(ipc_queue_empty(q));
}

Test(mqueue, mode_bits_apply_as_given_to_both_files)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 2,
				.max_msg_size = 16 };
	char path[256];
	struct stat st;
	mqd_t m;

	umask(077);
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | 0660, &attr), 0);
	m = mq_open(mqname, O_RDONLY);
	cr_assert_neq(m, (mqd_t)-1);
	cr_assert_eq(fstat((int)m, &st), 0);
	mq_close(m);
	cr_assert_eq(st.st_mode & 0777, 0660, "mq mode, umask not applied");
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0660, "companion mode");
}

Test(mqueue, adopts_an_mq_a_plain_program_made)
{
	struct mq_attr a = { .mq_maxmsg = 2, .mq_msgsize = 16 };
	mqd_t m = mq_open(mqname, O_RDWR | O_CREAT | O_EXCL, 0600, &a);

	cr_assert_neq(m, (mqd_t)-1);
	cr_assert_eq(mq_send(m, "early", 5, 0), 0);
	cr_assert_eq(open_mq(&q, 10, 1000, false), 0);
	cr_assert_eq(ipc_queue_qsize(q), 1, "the message sent before");
	cr_assert_eq(put_str(q, "x"), 0);
	cr_assert(ipc_queue_full(q), "the mq's own maxmsg (2) holds");
	cr_assert_eq(ipc_queue_put(q, "17 bytes long....", 17, 0), IPC_EMSGSIZE,
		     "the mq's own msgsize (16) holds");
	mq_close(m);
}

/* The companion's copy of the sizes is shared memory, which any process
 * with access can scribble on: the handle goes by the kernel's. */
Test(mqueue, sizes_come_from_the_kernel_not_the_companion)
{
	char path[256], buf[64];
	uint32_t bad[2] = { 1, 4 }; /* m_maxmsg, m_msgsize */
	ipc_queue *other = NULL;
	int fd;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bad, sizeof(bad), 64), (ssize_t)sizeof(bad));
	close(fd);
	cr_assert_eq(open_mq(&other, 4, 64, false), 0);
	cr_assert_eq(ipc_queue_put(other, "ten bytes!", 10, 0), 0);
	cr_assert_eq(ipc_queue_put(other, "x", 1, 0), 0);
	cr_assert_not(ipc_queue_full(other), "the kernel's maxmsg is 4");
	cr_assert_eq(ipc_queue_get(other, buf, sizeof(buf), 0), 10);
	ipc_queue_close(other);
}

Test(mqueue, emsgsize_keeps_the_message)
{
	char small[8], buf[64];
	void *msg = NULL;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	cr_assert_eq(ipc_queue_put(q, buf, 65, 0), IPC_EMSGSIZE);
	cr_assert_eq(put_str(q, "abc"), 0);
	cr_assert_eq(ipc_queue_get(q, small, sizeof(small), 0), IPC_EMSGSIZE,
		     "cap below max_msg_size");
	cr_assert_eq(ipc_queue_qsize(q), 1, "kept");
	cr_assert_eq(ipc_queue_get_alloc(q, &msg, 0), 3);
	cr_assert_eq(memcmp(msg, "abc", 3), 0);
	free(msg);
	cr_assert(ipc_queue_empty(q));
}

Test(mqueue, default_sizes_come_from_proc)
{
	struct mq_attr a;
	mqd_t m;

	cr_assert_eq(open_mq(&q, 0, 0, false), 0);
	m = mq_open(mqname, O_RDONLY);
	cr_assert_neq(m, (mqd_t)-1);
	cr_assert_eq(mq_getattr(m, &a), 0);
	mq_close(m);
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_default", "r");
	long want = 10;
	if (f != NULL) {
		cr_assert_eq(fscanf(f, "%ld", &want), 1);
		fclose(f);
	}
	cr_assert_eq(a.mq_maxmsg, want);
}

Test(mqueue, opening_as_shm_backend_is_eproto_and_joinable_must_match)
{
	ipc_queue *other = NULL;
	ipc_queue_attr shm = { 0 };

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	cr_assert_eq(ipc_queue_open(&other, name, 0, &shm), IPC_EPROTO);
	cr_assert_eq(open_mq(&other, 4, 64, true), IPC_EINVAL);
	cr_assert_null(other);
}

Test(mqueue, unlink_removes_queue_and_companion)
{
	ipc_queue *again = NULL;
	char path[256];
	struct stat st;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	cr_assert_eq(put_str(q, "old"), 0);
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
	cr_assert_eq(stat(path, &st), 0, "companion segment");
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(stat(path, &st), -1);
	cr_assert_eq(mq_open(mqname, O_RDONLY), (mqd_t)-1);
	cr_assert_eq(put_str(q, "still works"), 0, "open handles keep going");
	cr_assert_eq(open_mq(&again, 4, 64, false), 0);
	cr_assert(ipc_queue_empty(again), "a new queue");
	ipc_queue_close(again);
}

static int child_put_many(void *arg)
{
	ipc_queue *to = NULL;
	int n = *(int *)arg;

	T_CHECK(open_mq(&to, 4, 64, false) == 0, 10);
	for (int i = 0; i < n; i++)
		T_CHECK(ipc_queue_put(to, &i, sizeof(i), 10000) == 0, 11);
	ipc_queue_close(to);
	return 0;
}

Test(mqueue, producer_process_to_consumer_in_order)
{
	int n = 200, v;
	pid_t pid;

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	char buf[64];

	pid = t_spawn(child_put_many, &n);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 10000),
			     (ssize_t)sizeof(int));
		memcpy(&v, buf, sizeof(v));
		cr_assert_eq(v, i);
	}
	cr_assert_eq(t_reap(pid, 10000), 0);
}

static int child_get_blocked(void *arg)
{
	char buf[64];

	(void)arg;
	return ipc_queue_get(q, buf, sizeof(buf), 20000) == IPC_ECLOSED ? 0 : 1;
}

static int child_put_blocked(void *arg)
{
	(void)arg;
	return ipc_queue_put(q, "x", 1, 20000) == IPC_ECLOSED ? 0 : 1;
}

Test(mqueue, shutdown_wakes_blocked_callers_and_drains)
{
	ipc_queue *full = NULL;
	char buf[64];
	pid_t getter, putter;
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 1,
				.max_msg_size = 64 };
	char name2[140];

	cr_assert_eq(open_mq(&q, 4, 64, false), 0);
	getter = t_spawn(child_get_blocked, NULL);
	cr_assert(blocked_in_mq(getter));
	/* A putter blocked on a full queue (another one). */
	snprintf(name2, sizeof(name2), "%s-full", name);
	cr_assert_eq(ipc_queue_open(&full, name2, IPC_CREATE, &attr), 0);
	cr_assert_eq(put_str(full, "a"), 0);
	ipc_queue *keep = q;
	q = full;
	putter = t_spawn(child_put_blocked, NULL);
	q = keep;
	cr_assert(blocked_in_mq(putter));
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	cr_assert_eq(ipc_queue_shutdown(full), 0);
	cr_assert_eq(t_reap(getter, 10000), 0, "getter woke with ECLOSED");
	cr_assert_eq(t_reap(putter, 10000), 0, "putter woke with ECLOSED");
	cr_assert_eq(put_str(q, "late"), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_get(full, buf, sizeof(buf), 0), 1, "drains");
	cr_assert_eq(ipc_queue_get(full, buf, sizeof(buf), 0), IPC_ECLOSED);
	ipc_queue_close(full);
	full = NULL;
	cr_assert_eq(ipc_queue_open(&full, name2, 0, &attr), 0);
	cr_assert_eq(put_str(full, "later run"), IPC_ECLOSED,
		     "shutdown stays until the name is removed");
	ipc_queue_close(full);
	ipc_unlink(name2);
}

static int child_put_inherited(void *arg)
{
	(void)arg;
	return ipc_queue_put(q, "x", 1, 10000) == 0 ? 0 : 1;
}

Test(mqueue, anonymous_queue_is_shared_with_children)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 4,
				.max_msg_size = 64 };
	char buf[64];
	pid_t pid;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	pid = t_spawn(child_put_inherited, NULL);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 10000), 1);
	cr_assert_eq(buf[0], 'x');
	cr_assert_eq(t_reap(pid, 10000), 0);
}

/* ------------------------------------------------------------------------
 * JoinableQueue
 */

Test(mqueue, joinable_accounting)
{
	char buf[64];

	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), 0, "nothing put");
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_str(q, "t"), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 3);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_unfinished(q), 3, "got but not done");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 2);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_join(q, 30), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "more than got");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), 0);
}

Test(mqueue, plain_producers_and_consumers_keep_the_count_true)
{
	char buf[64];
	mqd_t m;

	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	m = mq_open(mqname, O_RDWR);
	cr_assert_neq(m, (mqd_t)-1);
	cr_assert_eq(mq_send(m, "p", 1, 0), 0);
	cr_assert_eq(mq_send(m, "q", 1, 0), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 2, "plain sends count");
	cr_assert_eq(mq_receive(m, buf, sizeof(buf), NULL), 1);
	cr_assert_eq(ipc_queue_unfinished(q), 1, "a plain receive is done");
	mq_close(m);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

static int child_consume_all(void *arg)
{
	ipc_queue *from = NULL;
	char buf[64];
	int n = *(int *)arg;

	T_CHECK(open_mq(&from, 8, 64, true) == 0, 10);
	for (int i = 0; i < n; i++) {
		T_CHECK(ipc_queue_get(from, buf, sizeof(buf), 10000) == 1, 11);
		T_CHECK(ipc_queue_task_done(from) == 0, 12);
	}
	ipc_queue_close(from);
	return 0;
}

Test(mqueue, join_waits_for_consumer_processes)
{
	int n = 50;
	pid_t a, b;

	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	a = t_spawn(child_consume_all, &n);
	b = t_spawn(child_consume_all, &n);
	for (int i = 0; i < 2 * n; i++)
		cr_assert_eq(ipc_queue_put(q, "t", 1, 10000), 0);
	cr_assert_eq(ipc_queue_join(q, 20000), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(t_reap(a, 10000), 0);
	cr_assert_eq(t_reap(b, 10000), 0);
}

static int child_get_one_joinable(void *arg)
{
	ipc_queue *from = NULL;
	char buf[64];

	(void)arg;
	T_CHECK(open_mq(&from, 8, 64, true) == 0, 10);
	T_CHECK(ipc_queue_get(from, buf, sizeof(buf), 20000) == 1, 11);
	T_CHECK(ipc_queue_task_done(from) == 0, 12);
	ipc_queue_close(from);
	return 0;
}

Test(mqueue, a_consumer_waiting_on_an_empty_queue_does_not_hold_up_join)
{
	pid_t pid;

	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	pid = t_spawn(child_get_one_joinable, NULL);
	cr_assert(blocked_in_mq(pid));
	for (int i = 0; i < 20; i++) /* whenever the join looks */
		cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(put_str(q, "t"), 0);
	cr_assert_eq(ipc_queue_join(q, 20000), 0);
	cr_assert_eq(t_reap(pid, 10000), 0);
}

static volatile int *got;

static int child_take_two_and_hang(void *arg)
{
	ipc_queue *from = NULL;
	char buf[64];

	(void)arg;
	T_CHECK(open_mq(&from, 8, 64, true) == 0, 10);
	T_CHECK(ipc_queue_get(from, buf, sizeof(buf), 10000) == 1, 11);
	T_CHECK(ipc_queue_get(from, buf, sizeof(buf), 10000) == 1, 12);
	__atomic_store_n(got, 2, __ATOMIC_SEQ_CST);
	pause();
	return 13;
}

Test(mqueue, consumer_killed_holding_tasks_does_not_hang_join)
{
	char buf[64];
	pid_t pid;

	got = t_shared(sizeof(int));
	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_str(q, "t"), 0);
	pid = t_spawn(child_take_two_and_hang, NULL);
	cr_assert(t_wait_count(got, 2, 10000));
	cr_assert_eq(ipc_queue_unfinished(q), 3);
	cr_assert_eq(t_kill(pid), -SIGKILL);
	cr_assert_eq(ipc_queue_unfinished(q), 1, "the dead consumer's tasks");
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* ------------------------------------------------------------------------
 * Killed mid-operation (crash points; a build without them skips)
 */

static int child_get_one(void *arg)
{
	ipc_queue *from = NULL;
	char buf[64];

	T_CHECK(open_mq(&from, 8, 64, *(bool *)arg) == 0, 10);
	T_CHECK(ipc_queue_get(from, buf, sizeof(buf), 10000) == 1, 11);
	ipc_queue_close(from);
	return 0;
}

static int child_put_one(void *arg)
{
	ipc_queue *to = NULL;

	T_CHECK(open_mq(&to, 8, 64, *(bool *)arg) == 0, 10);
	T_CHECK(put_str(to, "p") == 0, 11);
	ipc_queue_close(to);
	return 0;
}

static bool crashpoints(void)
{
#ifdef IPC_ENABLE_CRASHPOINTS
	return true;
#else
	return false;
#endif
}

Test(mqueue, consumer_killed_after_receive_leaves_counts_true)
{
	bool joinable = true;
	char buf[64];
	int rc;

	if (!crashpoints())
		cr_skip_test("built without crash points");
	cr_assert_eq(open_mq(&q, 8, 64, true), 0);
	cr_assert_eq(put_str(q, "a"), 0);
	cr_assert_eq(put_str(q, "b"), 0);
	rc = t_reap(t_spawn_at_point("mqueue.get.after_receive", NULL,
				     child_get_one, &joinable),
		    10000);
	cr_assert_eq(rc, -SIGKILL);
	cr_assert_eq(ipc_queue_qsize(q), 1, "the taken message is gone");
	cr_assert_eq(ipc_queue_unfinished(q), 1, "and not counted");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(buf[0], 'b');
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
	cr_assert_eq(put_str(q, "c"), 0, "still usable");
	cr_assert_eq(ipc_queue_qsize(q), 1);
}

Test(mqueue, producer_killed_before_send_adds_nothing)
{
	bool joinable = false;
	char buf[64];

	if (!crashpoints())
		cr_skip_test("built without crash points");
	cr_assert_eq(open_mq(&q, 8, 64, false), 0);
	cr_assert_eq(t_reap(t_spawn_at_point("mqueue.put.before_send", NULL,
					     child_put_one, &joinable),
			    10000),
		     -SIGKILL);
	cr_assert_eq(ipc_queue_qsize(q), 0);
	cr_assert_eq(t_reap(t_spawn(child_put_one, &joinable), 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
}

static int child_fill_and_block(void *arg)
{
	ipc_queue *to = NULL;

	(void)arg;
	T_CHECK(open_mq(&to, 2, 64, false) == 0, 10);
	for (;;)
		T_CHECK(ipc_queue_put(to, "f", 1, 20000) == 0, 11);
}

Test(mqueue, producer_killed_while_blocked_leaves_queue_usable)
{
	char buf[64];
	pid_t pid;

	cr_assert_eq(open_mq(&q, 2, 64, false), 0);
	pid = t_spawn(child_fill_and_block, NULL);
	cr_assert(blocked_in_mq(pid));
	cr_assert_eq(t_kill(pid), -SIGKILL);
	cr_assert_eq(ipc_queue_qsize(q), 2);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), IPC_EAGAIN);
	cr_assert_eq(put_str(q, "ok"), 0);
}

/* ------------------------------------------------------------------------
 * System limits. As root (CAP_SYS_RESOURCE) the kernel lets msg_max,
 * msgsize_max and queues_max be exceeded, so the children drop that
 * capability first; queues_max is lowered in a private IPC namespace.
 */

static int drop_sys_resource(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	d[CAP_SYS_RESOURCE / 32].effective &= ~(1u << (CAP_SYS_RESOURCE % 32));
	return (int)syscall(SYS_capset, &h, d);
}

static long proc_limit(const char *file)
{
	char path[80];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/fs/mqueue/%s", file);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int child_over_msg_max(void *arg)
{
	ipc_queue *x = NULL;

	(void)arg;
	T_CHECK(drop_sys_resource() == 0, 10);
	T_CHECK(open_mq(&x, (size_t)proc_limit("msg_max") + 1, 64, false) ==
			IPC_EINVAL,
		11);
	T_CHECK(open_mq(&x, 2, (size_t)proc_limit("msgsize_max") + 1, false) ==
			IPC_EMSGSIZE,
		12);
	T_CHECK(open_mq(&x, 2, 64, false) == 0, 13);
	ipc_queue_close(x);
	ipc_unlink(name);
	return 0;
}

Test(mqueue, over_msg_max_or_msgsize_max_is_a_clear_error)
{
	cr_assert_gt(proc_limit("msg_max"), 0);
	cr_assert_eq(t_reap(t_spawn(child_over_msg_max, NULL), 10000), 0);
}

static int child_over_rlimit(void *arg)
{
	struct rlimit rl = { .rlim_cur = 4096, .rlim_max = 4096 };
	ipc_queue *x = NULL;

	(void)arg;
	T_CHECK(setrlimit(RLIMIT_MSGQUEUE, &rl) == 0, 10);
	T_CHECK(open_mq(&x, 8, 8192, false) == IPC_ENOMEM, 11);
	return 0;
}

Test(mqueue, over_rlimit_msgqueue_is_enomem)
{
	cr_assert_eq(t_reap(t_spawn(child_over_rlimit, NULL), 10000), 0);
}

static int child_over_queues_max(void *arg)
{
	ipc_queue *x = NULL;
	FILE *f;

	(void)arg;
	if (unshare(CLONE_NEWIPC) != 0)
		return 77;
	f = fopen("/proc/sys/fs/mqueue/queues_max", "w");
	if (f == NULL)
		return 77;
	fprintf(f, "0\n");
	fclose(f);
	T_CHECK(drop_sys_resource() == 0, 10);
	T_CHECK(open_mq(&x, 2, 64, false) == IPC_ENOSPC, 11);
	return 0;
}

Test(mqueue, over_queues_max_is_enospc)
{
	int rc = t_reap(t_spawn(child_over_queues_max, NULL), 10000);

	if (rc == 77)
		cr_skip_test("no private IPC namespace here");
	cr_assert_eq(rc, 0);
}
