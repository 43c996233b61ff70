/* SPDX-License-Identifier: MIT */
/*
 * test_pqueue.c — PriorityQueue between real processes: priority and FIFO
 * order, timeouts, sizes, shutdown, many producers and consumers, named
 * opening and bad input.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_pqueue *q;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "pqueue");
	q = NULL;
}

static void teardown(void)
{
	ipc_pqueue_close(q);
	ipc_unlink(name);
	cr_assert_eq(t_leaked_segments(), 0);
}

TestSuite(pqueue, .init = setup, .fini = teardown, .timeout = 60);

static void put_str(int64_t prio, const char *s)
{
	cr_assert_eq(ipc_pqueue_put(q, prio, s, strlen(s), 0), 0);
}

static void expect_str(int64_t prio, const char *s)
{
	char buf[64];
	int64_t p = 0;
	ssize_t n = ipc_pqueue_get(q, &p, buf, sizeof(buf), 1000);

	cr_assert_eq(n, (ssize_t)strlen(s), "want %s: %zd", s, n);
	cr_assert_eq(memcmp(buf, s, (size_t)n), 0, "want %s", s);
	cr_assert_eq(p, prio);
}

Test(pqueue, lowest_priority_first_and_fifo_among_equals)
{
	cr_assert_eq(ipc_pqueue_new(&q, 0, 0), 0);
	put_str(5, "e1");
	put_str(-3, "a1");
	put_str(5, "e2");
	put_str(INT64_MAX, "z");
	put_str(0, "c1");
	put_str(-3, "a2");
	put_str(INT64_MIN, "first");
	put_str(5, "e3");
	cr_assert_eq(ipc_pqueue_qsize(q), 8);
	expect_str(INT64_MIN, "first");
	expect_str(-3, "a1");
	expect_str(-3, "a2");
	expect_str(0, "c1");
	expect_str(5, "e1");
	expect_str(5, "e2");
	expect_str(5, "e3");
	expect_str(INT64_MAX, "z");
	cr_assert_eq(ipc_pqueue_qsize(q), 0);
}

Test(pqueue, random_priorities_come_out_sorted)
{
	int64_t last = INT64_MIN, p;
	int32_t v, lastv = -1;

	cr_assert_eq(ipc_pqueue_new(&q, 2000, 8), 0);
	srand(7);
	for (int32_t i = 0; i < 2000; i++) {
		v = i;
		cr_assert_eq(ipc_pqueue_put(q, rand() % 50, &v, 4, 0), 0);
	}
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(ipc_pqueue_get(q, &p, &v, 4, 0), 4);
		cr_assert_geq(p, last);
		if (p == last)
			cr_assert_gt(v, lastv, "FIFO among equals");
		last = p;
		lastv = v;
	}
}

Test(pqueue, full_empty_timeouts_and_sizes)
{
	char big[17] = { 0 }, buf[4];
	void *m;
	long t0;

	cr_assert_eq(ipc_pqueue_new(&q, 2, 16), 0);
	cr_assert_eq(ipc_pqueue_get(q, NULL, buf, 4, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_pqueue_get(q, NULL, buf, 4, 100), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 99);
	cr_assert_eq(ipc_pqueue_put(q, 1, big, 17, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_pqueue_put(q, 1, big, 16, 0), 0);
	cr_assert_eq(ipc_pqueue_put(q, 2, NULL, 0, 0), 0);
	cr_assert_eq(ipc_pqueue_put(q, 0, "x", 1, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_pqueue_put(q, 0, "x", 1, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_pqueue_get(q, NULL, buf, 4, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_pqueue_qsize(q), 2, "it stayed");
	cr_assert_eq(ipc_pqueue_get_alloc(q, NULL, &m, 0), 16);
	free(m);
	cr_assert_eq(ipc_pqueue_get_alloc(q, NULL, &m, 0), 0);
	cr_assert_not_null(m);
	free(m);
	cr_assert_eq(ipc_pqueue_get_alloc(q, NULL, &m, 0), IPC_EAGAIN);
	cr_assert_null(m);
}

static int put_later(void *arg)
{
	(void)arg;
	usleep(50000);
	return ipc_pqueue_put(q, 3, "late", 4, 1000) == 0 ? 0 : 1;
}

Test(pqueue, blocked_getter_is_woken_by_a_put_in_another_process)
{
	char buf[8];
	pid_t kid;

	cr_assert_eq(ipc_pqueue_new(&q, 0, 0), 0);
	kid = t_spawn(put_later, NULL);
	cr_assert_eq(ipc_pqueue_get(q, NULL, buf, sizeof(buf), 20000), 4);
	cr_assert_eq(t_reap(kid, 10000), 0);
}

static int get_until_closed(void *arg)
{
	char buf[8];
	ssize_t n;
	(void)arg;
	n = ipc_pqueue_get(q, NULL, buf, sizeof(buf), 20000);
	return n == IPC_ECLOSED ? 0 : 1;
}

Test(pqueue, shutdown_drains_in_order_then_eclosed_and_wakes_getters)
{
	pid_t kid;

	cr_assert_eq(ipc_pqueue_new(&q, 0, 0), 0);
	kid = t_spawn(get_until_closed, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(ipc_pqueue_shutdown(q), 0);
	cr_assert_eq(t_reap(kid, 10000), 0, "the sleeper woke: IPC_ECLOSED");
	cr_assert_eq(ipc_pqueue_put(q, 1, "x", 1, 0), IPC_ECLOSED);
	cr_assert_eq(ipc_pqueue_get(q, NULL, NULL, 0, IPC_FOREVER),
		     IPC_ECLOSED);
	ipc_pqueue_close(q);

	cr_assert_eq(ipc_pqueue_new(&q, 0, 0), 0);
	put_str(2, "b");
	put_str(1, "a");
	cr_assert_eq(ipc_pqueue_shutdown(q), 0);
	expect_str(1, "a");
	expect_str(2, "b");
	cr_assert_eq(ipc_pqueue_get(q, NULL, NULL, 0, 0), IPC_ECLOSED);
}

#define PER 2000
static int *got; /* [value] = times got */

static int producer(void *arg)
{
	int base = (int)(intptr_t)arg;
	for (int i = 0; i < PER; i++) {
		int v = base + i;
		T_CHECK(ipc_pqueue_put(q, v % 17, &v, sizeof(v), 20000) == 0,
			1);
	}
	return 0;
}

static int consumer(void *arg)
{
	int v;
	(void)arg;
	for (;;) {
		ssize_t n = ipc_pqueue_get(q, NULL, &v, sizeof(v), 20000);
		if (n == IPC_ECLOSED)
			return 0;
		T_CHECK(n == sizeof(v) && v >= 0 && v < 4 * PER, 1);
		__atomic_add_fetch(&got[v], 1, __ATOMIC_SEQ_CST);
	}
}

Test(pqueue, four_producers_three_consumers_deliver_each_item_once)
{
	pid_t prod[4], cons[3];

	got = t_shared(4 * PER * sizeof(int));
	cr_assert_eq(ipc_pqueue_new(&q, 64, 8), 0);
	for (int i = 0; i < 3; i++)
		cons[i] = t_spawn(consumer, NULL);
	for (int i = 0; i < 4; i++)
		prod[i] = t_spawn(producer, (void *)(intptr_t)(i * PER));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t_reap(prod[i], 60000), 0);
	cr_assert_eq(ipc_pqueue_shutdown(q), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_reap(cons[i], 60000), 0);
	for (int v = 0; v < 4 * PER; v++)
		cr_assert_eq(got[v], 1, "item %d got %d times", v, got[v]);
}

static int open_and_put(void *arg)
{
	ipc_pqueue *mine;
	(void)arg;
	T_CHECK(ipc_pqueue_open(&mine, name, 0, 0, 0) == 0, 1);
	T_CHECK(ipc_pqueue_put(mine, -1, "named", 5, 0) == 0, 2);
	ipc_pqueue_close(mine);
	return 0;
}

Test(pqueue, named_queue_and_mismatched_or_wrong_kind_opens)
{
	ipc_pqueue *other;
	ipc_queue *plain;

	cr_assert_eq(ipc_pqueue_open(&q, name, IPC_CREATE | IPC_EXCL, 10, 32),
		     0);
	cr_assert_eq(t_reap(t_spawn(open_and_put, NULL), 10000), 0);
	expect_str(-1, "named");
	cr_assert_eq(ipc_pqueue_open(&other, name, 0, 11, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_open(&other, name, 0, 0, 33), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_open(&other, name, 0, 10, 32), 0);
	ipc_pqueue_close(other);
	cr_assert_eq(ipc_queue_open(&plain, name, 0, NULL), IPC_EPROTO,
		     "a PriorityQueue is not a Queue");
	ipc_pqueue_close(q);
	q = NULL;
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(ipc_queue_open(&plain, name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_pqueue_open(&other, name, 0, 0, 0), IPC_EPROTO);
	ipc_queue_close(plain);
}

Test(pqueue, bad_input)
{
	char buf[4];

	cr_assert_eq(ipc_pqueue_new(NULL, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_new(&q, IPC_PQUEUE_MAX_ITEMS + 1, 0),
		     IPC_EINVAL);
	cr_assert_null(q);
	cr_assert_eq(ipc_pqueue_new(&q, 0, IPC_PQUEUE_MAX_MSG + 1), IPC_EINVAL);
	cr_assert_eq(
		ipc_pqueue_new(&q, IPC_PQUEUE_MAX_ITEMS, IPC_PQUEUE_MAX_MSG),
		IPC_EINVAL, "over IPC_PQUEUE_MAX_BYTES");
	cr_assert_eq(ipc_pqueue_open(&q, NULL, IPC_CREATE, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_open(&q, "no/slash", IPC_CREATE, 0, 0),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_open(&q, name, 0, 0, 0), IPC_ENOENT);
	cr_assert_eq(ipc_pqueue_put(NULL, 0, "x", 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_get(NULL, NULL, buf, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_qsize(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_shutdown(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_new(&q, 0, 0), 0);
	cr_assert_eq(ipc_pqueue_put(q, 0, NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_get(q, NULL, NULL, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_get_alloc(q, NULL, NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pqueue_put(q, 0, "x", 1, -2), IPC_EINVAL);
	ipc_pqueue_close(NULL);
}
