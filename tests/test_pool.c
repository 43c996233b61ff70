/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c — Pool: map correctness over 10^5 items and several chunk
 * sizes, the initializer, maxtasksperchild, apply_async, worker death
 * (IPC_ECHILD, then the pool works on), terminate, close/join, bad input,
 * and nothing left behind.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

struct shared {
	volatile int inits;
	volatile int release;
};
static struct shared *sh;
static ipc_pool *pool;

static void setup(void)
{
	sh = t_shared(sizeof(*sh));
	pool = NULL;
}

static void teardown(void)
{
	ipc_pool_free(pool);
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
	cr_assert_eq(ipc_active_children(NULL, 0), 0, "no worker left");
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
}

TestSuite(pool, .init = setup, .fini = teardown, .timeout = 60);

static void square(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;
	*(int64_t *)out = x * x;
}

#define N 100000

Test(pool, map_squares_over_1e5_items_for_several_chunksizes)
{
	static int64_t in[N], out[N];
	static const size_t chunks[] = { 0, 1, 7, 1000, N };

	for (int64_t i = 0; i < N; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		memset(out, 0xff, sizeof(out));
		cr_assert_eq(ipc_pool_map(pool, square, in, sizeof(in[0]), out,
					  sizeof(out[0]), N, chunks[c]),
			     0, "chunksize %zu", chunks[c]);
		for (int64_t i = 0; i < N; i++)
			cr_assert_eq(out[i], i * i, "chunksize %zu item %ld",
				     chunks[c], (long)i);
	}
}

static void count_init(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&sh->inits, 1, __ATOMIC_SEQ_CST);
}

Test(pool, initializer_runs_once_per_worker)
{
	int64_t in[64], out[64];

	for (int i = 0; i < 64; i++)
		in[i] = i;
	cr_assert_eq(
		ipc_pool_new(&pool,
			     &(ipc_pool_attr){ .processes = 3,
					       .initializer = count_init }),
		0);
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 64, 1), 0);
	cr_assert(t_wait_count(&sh->inits, 3, 10000));
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 64, 1), 0);
	cr_assert_eq(sh->inits, 3, "three workers, three inits, no more");
}

static void my_pid(const void *in, void *out)
{
	(void)in;
	*(int64_t *)out = getpid();
}

Test(pool, maxtasksperchild_replaces_workers)
{
	int64_t in[10] = { 0 }, out[10];

	cr_assert_eq(
		ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2,
						      .maxtasksperchild = 1 }),
		0);
	cr_assert_eq(ipc_pool_map(pool, my_pid, in, 8, out, 8, 10, 1), 0);
	for (int i = 0; i < 10; i++)
		for (int k = i + 1; k < 10; k++)
			cr_assert_neq(out[i], out[k], "one task per worker");
}

static void square_or_die(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;
	if (x == 500)
		kill(getpid(), SIGKILL); /* the worker dies mid-map */
	*(int64_t *)out = x * x;
}

Test(pool, worker_killed_mid_map_gives_echild_and_the_pool_works_on)
{
	static int64_t in[1000], out[1000];

	for (int i = 0; i < 1000; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	memset(out, 0, sizeof(out));
	cr_assert_eq(ipc_pool_map(pool, square_or_die, in, 8, out, 8, 1000, 10),
		     IPC_ECHILD);
	cr_assert_eq(out[10], 100, "a finished chunk is kept");
	cr_assert_eq(ipc_active_children(NULL, 0), 2, "the dead one replaced");
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 1000, 10), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(out[i], (int64_t)i * i);
}

static ssize_t reverse(const void *arg, size_t len, void *out, size_t cap)
{
	if (len > cap)
		return -1;
	for (size_t i = 0; i < len; i++)
		((char *)out)[i] = ((const char *)arg)[len - 1 - i];
	return (ssize_t)len;
}

static ssize_t wait_release(const void *arg, size_t len, void *out, size_t cap)
{
	(void)arg;
	(void)len;
	(void)out;
	(void)cap;
	return t_wait_count(&sh->release, 1, 20000) ? 7 : -1;
}

static ssize_t die(const void *arg, size_t len, void *out, size_t cap)
{
	(void)arg;
	(void)len;
	(void)out;
	(void)cap;
	kill(getpid(), SIGKILL);
	return 0;
}

Test(pool, apply_async_result_get_ready_and_timeout)
{
	ipc_result *r, *w;
	char buf[16];

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_apply_async(pool, reverse, "abcdef", 6, &r), 0);
	cr_assert_eq(ipc_result_get(r, buf, sizeof(buf), 10000), 6);
	cr_assert_eq(memcmp(buf, "fedcba", 6), 0);
	cr_assert(ipc_result_ready(r));
	cr_assert_eq(ipc_result_get(r, buf, 3, 0), IPC_EMSGSIZE);
	ipc_result_free(r);

	cr_assert_eq(ipc_pool_apply_async(pool, wait_release, NULL, 0, &w), 0);
	cr_assert_eq(ipc_result_get(w, NULL, 0, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_result_get(w, NULL, 0, 60), IPC_ETIMEDOUT);
	cr_assert_not(ipc_result_ready(w));
	sh->release = 1;
	cr_assert_eq(ipc_result_get(w, buf, sizeof(buf), 10000), 7);
	ipc_result_free(w);
}

Test(pool, apply_async_whose_worker_dies_gives_echild)
{
	ipc_result *r;
	char buf[16];

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_apply_async(pool, die, NULL, 0, &r), 0);
	cr_assert_eq(ipc_result_get(r, NULL, 0, 10000), IPC_ECHILD);
	ipc_result_free(r);
	cr_assert_eq(ipc_pool_apply_async(pool, reverse, "xy", 2, &r), 0);
	cr_assert_eq(ipc_result_get(r, buf, sizeof(buf), 10000), 2);
	ipc_result_free(r);
}

Test(pool, terminate_while_busy)
{
	ipc_result *r;

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_apply_async(pool, wait_release, NULL, 0, &r), 0);
	cr_assert_eq(ipc_pool_terminate(pool), 0);
	cr_assert_eq(ipc_result_get(r, NULL, 0, 1000), IPC_ECLOSED);
	cr_assert_eq(ipc_pool_join(pool), 0);
	cr_assert_eq(ipc_active_children(NULL, 0), 0);
	ipc_result_free(r);
}

Test(pool, close_then_join_finishes_queued_work)
{
	ipc_result *r[20];
	char buf[8];

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(
			ipc_pool_apply_async(pool, reverse, "ab", 2, &r[i]), 0);
	cr_assert_eq(ipc_pool_join(pool), IPC_EINVAL, "join before close");
	cr_assert_eq(ipc_pool_close(pool), 0);
	ipc_result *late = (ipc_result *)1;
	cr_assert_eq(ipc_pool_apply_async(pool, reverse, "ab", 2, &late),
		     IPC_EINVAL, "closed");
	cr_assert_null(late);
	cr_assert_eq(ipc_pool_join(pool), 0);
	for (int i = 0; i < 20; i++) {
		ssize_t got = ipc_result_get(r[i], buf, sizeof(buf), 0);
		cr_assert_eq(got, 2, "result %d: %zd (%s)", i, got,
			     ipc_err_name((int)got));
		ipc_result_free(r[i]);
	}
}

Test(pool, bad_input)
{
	int64_t in[4] = { 1, 2, 3, 4 }, out[4];
	ipc_result *r;

	cr_assert_eq(ipc_pool_new(NULL, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = -1 }),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 1 }),
		     0);
	cr_assert_eq(ipc_pool_map(pool, NULL, in, 8, out, 8, 4, 1), IPC_EINVAL);
	cr_assert_eq(ipc_pool_map(pool, square, in, 0, out, 8, 4, 1),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_map(pool, square, NULL, 8, out, 8, 4, 1),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 0, 1), 0);
	cr_assert_eq(ipc_pool_apply_async(pool, NULL, NULL, 0, &r), IPC_EINVAL);
	cr_assert_eq(ipc_pool_apply_async(pool, reverse, NULL, 0, NULL),
		     IPC_EINVAL);
	cr_assert_eq(ipc_result_get(NULL, NULL, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pool_close(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pool_join(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 4, 0), 0,
		     "chunksize 0: a default");
	cr_assert_eq(out[3], 16);
}
