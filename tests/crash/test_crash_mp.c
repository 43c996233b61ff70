/* SPDX-License-Identifier: MIT */
/*
 * test_crash_mp.c — the crash-point suite for Pipe and Value/Array.
 *
 * A child dies (SIGKILL) at a named point inside a Pipe send, receive or
 * close, or holding a Value's lock. The parent then checks what the
 * contract promises: no torn, invented or duplicated message, every whole
 * message delivered, end of file seen instead of a hang, the lock handed on
 * with IPC_EOWNERDEAD. Built only with --enable-crashpoints.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_conn *a, *b;

static void teardown(void)
{
	ipc_conn_close(a);
	ipc_conn_close(b);
	a = b = NULL;
}

TestSuite(crashmp, .fini = teardown, .timeout = 60);

static void die_at(const char *point, const char *skip, int (*fn)(void *),
		   void *arg)
{
	cr_assert_eq(t_reap(t_spawn_at_point(point, skip, fn, arg), 10000),
		     -SIGKILL, "child did not die at %s", point);
}

/* Message n: "m<n>:" and a pattern derived from n, so that a torn or
 * invented message cannot pass expect(). */
static size_t make_msg(char *buf, int n)
{
	size_t len = (size_t)snprintf(buf, 32, "m%d:", n);
	for (int k = 0; k < 30 + n % 40; k++)
		buf[len++] = (char)('a' + (n + k) % 26);
	return len;
}

static void expect(ipc_conn *c, int want)
{
	char buf[128], ref[128];
	ssize_t n = ipc_conn_recv(c, buf, sizeof(buf), 10000);
	size_t len = make_msg(ref, want);

	cr_assert_eq(n, (ssize_t)len, "message %d: length %zd", want, n);
	cr_assert_eq(memcmp(buf, ref, len), 0, "message %d intact", want);
}

/* Child: drop end a, send messages 1..3 on b (it dies at the point). */
static int send_three(void *arg)
{
	char buf[128];
	(void)arg;
	ipc_conn_close(a);
	a = NULL;
	for (int i = 1; i <= 3; i++)
		T_CHECK(ipc_conn_send(b, buf, make_msg(buf, i), 1000) == 0, 1);
	return 0;
}

Test(crashmp, sender_killed_mid_send_leaves_whole_messages_then_eof)
{
	char buf[128];

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	/* The child's first send is a locked put; die in it, unpublished. */
	die_at("queue.put.written", NULL, send_three, NULL);
	ipc_conn_close(b);
	b = NULL;
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 10000), IPC_ECLOSED,
		     "no phantom message, and end of file");
}

Test(crashmp, sender_killed_after_publishing_delivers_that_message)
{
	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	die_at("queue.put.published", "1", send_three, NULL);
	ipc_conn_close(b);
	b = NULL;
	expect(a, 1);
	expect(a, 2);
	char buf[128];
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 10000), IPC_ECLOSED);
}

/* Child: receive one message on b (this process keeps its own b too). */
static int recv_one(void *arg)
{
	char buf[128];
	(void)arg;
	return ipc_conn_recv(b, buf, sizeof(buf), 5000) > 0 ? 0 : 1;
}

Test(crashmp, receiver_killed_mid_copy_leaves_the_message_queued)
{
	char buf[128];

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(ipc_conn_send(a, buf, make_msg(buf, i), 0), 0);
	die_at("queue.get.copied", NULL, recv_one, NULL);
	expect(b, 1);
	expect(b, 2);
	cr_assert_eq(ipc_conn_recv(b, buf, sizeof(buf), 0), IPC_EAGAIN);
}

/* Child: drop a; once the parent has dropped its b, close b, dying after
 * dropping the hold but before shutting the queues down. */
static int close_b(void *arg)
{
	int *go = arg;
	ipc_conn_close(a);
	a = NULL;
	T_CHECK(t_wait_count(go, 1, 10000), 1);
	ipc_conn_close(b);
	return 0;
}

Test(crashmp, closer_killed_before_shutting_down_still_gives_eof)
{
	int *go = t_shared(sizeof(int));
	char buf[128];
	pid_t kid;
	long t0;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	cr_assert_eq(ipc_conn_send(a, "queued", 6, 0), 0);
	/* skip 1: the first pass is the child's close of its copy of a. */
	kid = t_spawn_at_point("pipe.close.unlocked", "1", close_b, go);
	ipc_conn_close(b); /* the child holds the only copy of b now */
	b = NULL;
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	cr_assert_eq(t_reap(kid, 10000), -SIGKILL);
	t0 = t_now_ms();
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 20000), IPC_ECLOSED);
	cr_assert_lt(t_now_ms() - t0, 15000);
	cr_assert_eq(ipc_conn_send(a, "x", 1, 20000), IPC_ECLOSED);
}

static ipc_value *val;

static int add_under_lock(void *arg)
{
	(void)arg;
	T_CHECK(ipc_value_acquire(val, 5000) == 0, 1);
	*(int64_t *)ipc_value_data(val) += 1;
	return ipc_value_release(val) == 0 ? 0 : 2;
}

Test(crashmp, value_lock_holder_killed_hands_the_lock_on)
{
	cr_assert_eq(ipc_value_new(&val, IPC_TYPE_I64), 0);
	die_at("array.acquire.held", NULL, add_under_lock, NULL);
	cr_assert_eq(ipc_value_acquire(val, 5000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_value_release(val), 0);
	cr_assert_eq(t_reap(t_spawn(add_under_lock, NULL), 10000), 0);
	cr_assert_eq(*(int64_t *)ipc_value_data(val), 1);
	ipc_value_close(val);
}

/* ---- PriorityQueue ------------------------------------------------------ */

static ipc_pqueue *pq;

static int pq_put_n(int n, int64_t prio)
{
	char buf[128];
	return ipc_pqueue_put(pq, prio, buf, make_msg(buf, n), 1000);
}

static void pq_expect(int want, int64_t prio)
{
	char buf[128], ref[128];
	int64_t p = 0;
	ssize_t n = ipc_pqueue_get(pq, &p, buf, sizeof(buf), 1000);
	size_t len = make_msg(ref, want);

	cr_assert_eq(n, (ssize_t)len, "message %d: length %zd", want, n);
	cr_assert_eq(memcmp(buf, ref, len), 0, "message %d intact", want);
	cr_assert_eq(p, prio);
}

static void pq_expect_empty(void)
{
	char buf[128];
	cr_assert_eq(ipc_pqueue_get(pq, NULL, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	cr_assert_eq(ipc_pqueue_qsize(pq), 0);
}

/* Three queued: 1 (prio 5), 2 (prio 1), 3 (prio 5). */
static void pq_fill(void)
{
	cr_assert_eq(ipc_pqueue_new(&pq, 8, 128), 0);
	cr_assert_eq(pq_put_n(1, 5), 0);
	cr_assert_eq(pq_put_n(2, 1), 0);
	cr_assert_eq(pq_put_n(3, 5), 0);
}

static int child_pq_put(void *arg)
{
	(void)arg;
	return pq_put_n(4, 0); /* the new lowest */
}

static int child_pq_get(void *arg)
{
	char buf[128];
	(void)arg;
	return ipc_pqueue_get(pq, NULL, buf, sizeof(buf), 1000) > 0 ? 0 : 1;
}

Test(crashmp, pqueue_put_killed_before_commit_leaves_no_trace)
{
	pq_fill();
	die_at("pqueue.put.written", NULL, child_pq_put, NULL);
	cr_assert_eq(ipc_pqueue_qsize(pq), 3, "no phantom");
	cr_assert_eq(pq_put_n(5, 3), 0, "lock repaired, slot reusable");
	pq_expect(2, 1);
	pq_expect(5, 3);
	pq_expect(1, 5);
	pq_expect(3, 5);
	pq_expect_empty();
	ipc_pqueue_close(pq);
}

Test(crashmp, pqueue_put_killed_after_commit_is_delivered_in_order)
{
	pq_fill();
	die_at("pqueue.put.committed", NULL, child_pq_put, NULL);
	pq_expect(4, 0); /* rebuilt into its place in the heap */
	pq_expect(2, 1);
	pq_expect(1, 5);
	pq_expect(3, 5);
	pq_expect_empty();
	cr_assert_eq(pq_put_n(6, 0), 0);
	pq_expect(6, 0);
	ipc_pqueue_close(pq);
}

Test(crashmp, pqueue_get_killed_before_commit_leaves_the_message)
{
	pq_fill();
	die_at("pqueue.get.copied", NULL, child_pq_get, NULL);
	cr_assert_eq(ipc_pqueue_qsize(pq), 3, "nothing lost");
	pq_expect(2, 1);
	pq_expect(1, 5);
	pq_expect(3, 5);
	pq_expect_empty();
	ipc_pqueue_close(pq);
}

Test(crashmp, pqueue_get_killed_after_commit_removes_exactly_one)
{
	pq_fill();
	die_at("pqueue.get.committed", NULL, child_pq_get, NULL);
	cr_assert_eq(ipc_pqueue_qsize(pq), 2);
	pq_expect(1, 5);
	pq_expect(3, 5);
	pq_expect_empty();
	for (int i = 0; i < 8; i++) /* every slot is usable again */
		cr_assert_eq(pq_put_n(10 + i, i), 0);
	cr_assert_eq(pq_put_n(99, 0), IPC_ETIMEDOUT, "and no more");
	ipc_pqueue_close(pq);
}

/* ---- Pool: imap and starmap across a worker death ----------------------- */

/* A pool whose one worker dies at the point on its first task; its
 * replacement starts without the point set. */
static ipc_pool *pool_dying_at(const char *point)
{
	ipc_pool *pool;

	setenv("IPC_CRASHPOINT", point, 1);
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 1 }),
		     0);
	unsetenv("IPC_CRASHPOINT");
	return pool;
}

static ssize_t cube(const void *arg, size_t len, void *out, size_t cap)
{
	int64_t x = *(const int64_t *)arg;
	if (len != 8 || cap < 8)
		return -1;
	*(int64_t *)out = x * x * x;
	return 8;
}

static void replaced_once(void)
{
	ipc_process *live[2];
	cr_assert_eq(ipc_active_children(live, 2), 1);
	cr_assert_str_eq(ipc_process_name(live[0]), "PoolWorker-2",
			 "the first worker did die at the point");
}

static void imap_all_correct(ipc_pool *pool)
{
	int64_t in[50], v;
	ipc_imap *it;
	size_t idx;
	ssize_t st;

	for (int i = 0; i < 50; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_imap(pool, cube, in, 8, 50, 8, 3, &it), 0);
	for (size_t i = 0; i < 50; i++) {
		cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
		cr_assert_eq(idx, i);
		cr_assert_eq(st, 8, "item %zu: %zd", i, st);
		cr_assert_eq(v, (int64_t)(i * i * i));
	}
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 0), IPC_ECLOSED);
	ipc_imap_free(it);
	replaced_once();
}

Test(crashmp, imap_worker_dead_before_starting_its_chunk_is_redone)
{
	ipc_pool *pool = pool_dying_at("pool.worker.taken");
	imap_all_correct(pool);
	ipc_pool_free(pool);
}

Test(crashmp, imap_worker_dead_after_sending_costs_nothing)
{
	ipc_pool *pool = pool_dying_at("pool.worker.sent");
	imap_all_correct(pool);
	ipc_pool_free(pool);
}

Test(crashmp, starmap_worker_dead_before_starting_an_item_is_redone)
{
	ipc_pool *pool = pool_dying_at("pool.worker.taken");
	int64_t in[20], out[20];
	ipc_pool_args args[20];
	ssize_t st[20];

	for (int i = 0; i < 20; i++) {
		in[i] = i;
		args[i] = (ipc_pool_args){ &in[i], 8 };
	}
	cr_assert_eq(ipc_pool_starmap(pool, cube, args, 20, out, 8, st), 0);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(st[i], 8);
		cr_assert_eq(out[i], (int64_t)i * i * i);
	}
	replaced_once();
	ipc_pool_free(pool);
}
