/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c — Pool: map correctness over 10^5 items and several chunk
 * sizes, the initializer, maxtasksperchild, apply_async, worker death
 * (IPC_ECHILD, then the pool works on), terminate, close/join, bad input,
 * and nothing left behind; apply, map_async, starmap, imap and
 * imap_unordered with per-item errors, callbacks, laziness and worker
 * death on each.
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
	volatile int started; /* items begun, by every worker */
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

/* ---- apply, map_async, callbacks ------------------------------------- */

static ssize_t fail_on_x(const void *arg, size_t len, void *out, size_t cap)
{
	if (len == 1 && *(const char *)arg == 'x')
		return -42; /* a task error of the caller's choosing */
	if (len == 1 && *(const char *)arg == 'k')
		kill(getpid(), SIGKILL);
	return reverse(arg, len, out, cap);
}

Test(pool, apply_blocks_and_returns_task_errors_per_call)
{
	char buf[8];

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_processes(pool), 2);
	cr_assert_eq(ipc_pool_apply(pool, fail_on_x, "abc", 3, buf, 8), 3);
	cr_assert_eq(memcmp(buf, "cba", 3), 0);
	cr_assert_eq(ipc_pool_apply(pool, fail_on_x, "x", 1, buf, 8), -42);
	cr_assert_eq(ipc_pool_apply(pool, fail_on_x, "k", 1, buf, 8),
		     IPC_ECHILD, "its worker died");
	cr_assert_eq(ipc_pool_apply(pool, fail_on_x, "ok", 2, buf, 8), 2,
		     "the pool works on");
	cr_assert_eq(ipc_pool_apply(pool, fail_on_x, "ok", 2, NULL, 8),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_apply(NULL, fail_on_x, "ok", 2, buf, 8),
		     IPC_EINVAL);
}

static void square_when_released(const void *in, void *out)
{
	t_wait_count(&sh->release, 1, 20000);
	square(in, out);
}

struct tally {
	int ok, err;
	ssize_t last;
};

static void on_ok(void *ctx, ipc_result *r, ssize_t status)
{
	struct tally *t = ctx;
	(void)r;
	t->ok++;
	t->last = status;
}

static void on_err(void *ctx, ipc_result *r, ssize_t status)
{
	struct tally *t = ctx;
	(void)r;
	t->err++;
	t->last = status;
}

Test(pool, map_async_returns_at_once_then_wait_get_and_callback)
{
	int64_t in[100], out[100];
	struct tally t = { 0 };
	ipc_pool_callbacks cb = { on_ok, on_err, &t };
	ipc_result *r;

	for (int i = 0; i < 100; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_map_async(pool, square_when_released, in, 8, out,
					8, 100, 10, &cb, &r),
		     0, "returns while every item waits");
	cr_assert_not(ipc_result_ready(r));
	cr_assert_not(ipc_result_successful(r));
	cr_assert_eq(ipc_result_wait(r, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_result_wait(r, 50), IPC_ETIMEDOUT);
	cr_assert_eq(t.ok + t.err, 0);
	sh->release = 1;
	cr_assert_eq(ipc_result_wait(r, 20000), 0);
	cr_assert(ipc_result_successful(r));
	cr_assert_eq(ipc_result_get(r, NULL, 0, 0), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(out[i], (int64_t)i * i);
	cr_assert_eq(t.ok, 1, "callback ran once");
	cr_assert_eq(t.err, 0);
	ipc_result_free(r);
}

Test(pool, map_async_whose_worker_dies_gives_echild_to_get_and_callback)
{
	static int64_t in[1000], out[1000];
	struct tally t = { 0 };
	ipc_pool_callbacks cb = { on_ok, on_err, &t };
	ipc_result *r;

	for (int i = 0; i < 1000; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_map_async(pool, square_or_die, in, 8, out, 8,
					1000, 10, &cb, &r),
		     0);
	cr_assert_eq(ipc_result_get(r, NULL, 0, 20000), IPC_ECHILD);
	cr_assert_not(ipc_result_successful(r));
	cr_assert_eq(t.err, 1);
	cr_assert_eq(t.last, IPC_ECHILD);
	ipc_result_free(r);
	cr_assert_eq(ipc_pool_map(pool, square, in, 8, out, 8, 1000, 10), 0);
	cr_assert_eq(out[999], 999 * 999);
}

Test(pool, apply_callbacks_for_success_task_error_and_dead_worker)
{
	struct tally t = { 0 };
	ipc_pool_callbacks cb = { on_ok, on_err, &t };
	ipc_result *r[3];
	char buf[8];

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_apply_cb(pool, fail_on_x, "ab", 2, &cb, &r[0]),
		     0);
	cr_assert_eq(ipc_pool_apply_cb(pool, fail_on_x, "x", 1, &cb, &r[1]), 0);
	cr_assert_eq(ipc_pool_apply_cb(pool, fail_on_x, "k", 1, &cb, &r[2]), 0);
	cr_assert_eq(ipc_result_get(r[0], buf, sizeof(buf), 20000), 2);
	cr_assert_eq(ipc_result_get(r[1], buf, sizeof(buf), 20000), -42);
	cr_assert_eq(ipc_result_get(r[2], buf, sizeof(buf), 20000), IPC_ECHILD);
	cr_assert_eq(t.ok, 1);
	cr_assert_eq(t.err, 2, "the task error and the dead worker");
	for (int i = 0; i < 3; i++)
		ipc_result_free(r[i]);
}

static void free_in_callback(void *ctx, ipc_result *r, ssize_t status)
{
	(void)status;
	*(int *)ctx += 1;
	ipc_result_free(r);
}

Test(pool, a_callback_may_free_its_result_and_runs_from_join)
{
	int calls = 0;
	ipc_pool_callbacks cb = { free_in_callback, free_in_callback, &calls };
	ipc_result *r;

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(
			ipc_pool_apply_cb(pool, fail_on_x, "ab", 2, &cb, &r),
			0);
	cr_assert_eq(ipc_pool_close(pool), 0);
	cr_assert_eq(ipc_pool_join(pool), 0);
	cr_assert_eq(calls, 10, "fire and forget: every callback ran");
}

/* ---- starmap ---------------------------------------------------------- */

struct add_args {
	int64_t a, b;
	char op;
};

static ssize_t add_or_fail(const void *arg, size_t len, void *out, size_t cap)
{
	const struct add_args *x = arg;
	if (len != sizeof(*x) || cap < 8)
		return -1;
	if (x->op == '!')
		kill(getpid(), SIGKILL);
	if (x->op == '?')
		return -7;
	*(int64_t *)out = x->a + x->b;
	return 8;
}

Test(pool, starmap_runs_multi_argument_items_with_per_item_errors)
{
	struct add_args a[50];
	ipc_pool_args args[50];
	int64_t out[50];
	ssize_t st[50];

	for (int i = 0; i < 50; i++) {
		a[i] = (struct add_args){ i, 100 * i,
					  i == 7    ? '?'
					  : i == 20 ? '!'
						    : '+' };
		args[i] = (ipc_pool_args){ &a[i], sizeof(a[i]) };
	}
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_starmap(pool, add_or_fail, args, 50, out, 8, st),
		     IPC_ECHILD, "item 20 killed its worker");
	for (int i = 0; i < 50; i++) {
		if (i == 7)
			cr_assert_eq(st[i], -7, "a task error, per item");
		else if (i == 20)
			cr_assert_eq(st[i], IPC_ECHILD);
		else {
			cr_assert_eq(st[i], 8, "item %d", i);
			cr_assert_eq(out[i], 101 * i);
		}
	}
	a[20].op = '+';
	a[7].op = '+';
	cr_assert_eq(ipc_pool_starmap(pool, add_or_fail, args, 50, out, 8, st),
		     0);
	cr_assert_eq(out[20], 2020);
	cr_assert_eq(ipc_pool_starmap(pool, add_or_fail, NULL, 50, out, 8, st),
		     IPC_EINVAL);
	args[3].arg = NULL;
	cr_assert_eq(ipc_pool_starmap(pool, add_or_fail, args, 50, out, 8, st),
		     IPC_EINVAL);
	cr_assert_eq(
		ipc_pool_starmap(pool, add_or_fail, args, 0, NULL, 0, NULL), 0);
}

/* ---- imap ------------------------------------------------------------- */

/* Item i: i*i as 8 bytes; item 0 waits for the release flag; item 13
 * with op "die" kills its worker. */
static ssize_t slow_square(const void *arg, size_t len, void *out, size_t cap)
{
	int64_t x = *(const int64_t *)arg;
	(void)len;
	__atomic_add_fetch(&sh->started, 1, __ATOMIC_SEQ_CST);
	if (x == 0)
		t_wait_count(&sh->release, 1, 20000);
	if (x == -13)
		kill(getpid(), SIGKILL);
	if (x == -7)
		return -7;
	if (cap < 8)
		return -1;
	*(int64_t *)out = x * x;
	return 8;
}

Test(pool, imap_returns_every_item_in_input_order)
{
	static int64_t in[300];
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;

	for (int i = 0; i < 300; i++)
		in[i] = i + 1;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 300, 8, 7, &it),
		     0);
	for (size_t i = 0; i < 300; i++) {
		cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
		cr_assert_eq(idx, i);
		cr_assert_eq(st, 8);
		cr_assert_eq(v, (int64_t)(i + 1) * (int64_t)(i + 1));
	}
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 0), IPC_ECLOSED,
		     "the end");
	ipc_imap_free(it);
}

Test(pool, imap_unordered_hands_out_items_as_they_finish)
{
	int64_t in[20];
	bool seen[20] = { false };
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;

	for (int i = 0; i < 20; i++)
		in[i] = i; /* item 0 blocks until released */
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap_unordered(pool, slow_square, in, 8, 20, 8, 1,
					     &it),
		     0);
	for (int k = 0; k < 19; k++) {
		cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
		cr_assert_neq(idx, 0, "item 0 is still running");
		cr_assert_lt(idx, 20);
		cr_assert_not(seen[idx], "no item twice");
		seen[idx] = true;
		cr_assert_eq(v, (int64_t)(idx * idx));
	}
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 50), IPC_ETIMEDOUT);
	sh->release = 1;
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
	cr_assert_eq(idx, 0);
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 0), IPC_ECLOSED);
	ipc_imap_free(it);
}

Test(pool, imap_is_lazy_a_few_chunks_ahead_of_the_consumer)
{
	static int64_t in[1000];
	ipc_process *w[2];
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;

	for (int i = 0; i < 1000; i++)
		in[i] = i + 1;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 1000, 8, 1, &it),
		     0);
	/* 4 chunks per worker go out; then nothing until we consume. */
	cr_assert(t_wait_count(&sh->started, 8, 20000));
	cr_assert_eq(ipc_active_children(w, 2), 2);
	cr_assert(t_blocked_in_futex(ipc_process_pid(w[0]), 20000));
	cr_assert(t_blocked_in_futex(ipc_process_pid(w[1]), 20000));
	cr_assert_eq(sh->started, 8, "only the window ran");
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
	cr_assert_eq(idx, 0);
	cr_assert(t_wait_count(&sh->started, 9, 20000), "one more went out");
	ipc_imap_free(it); /* the rest is dropped */
}

Test(pool, imap_reports_task_errors_and_worker_death_per_item)
{
	int64_t in[30];
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;
	char small[4];

	for (int i = 0; i < 30; i++)
		in[i] = i == 5 ? -7 : i == 13 ? -13 : i + 1;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 30, 8, 1, &it), 0);
	cr_assert_eq(ipc_imap_next(it, &idx, &st, small, sizeof(small), 20000),
		     IPC_EMSGSIZE, "cap too small: the item stays");
	for (size_t i = 0; i < 30; i++) {
		cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 20000), 0);
		cr_assert_eq(idx, i);
		if (i == 5)
			cr_assert_eq(st, -7);
		else if (i == 13)
			cr_assert_eq(st, IPC_ECHILD);
		else
			cr_assert_eq(v, (int64_t)(i + 1) * (int64_t)(i + 1));
	}
	ipc_imap_free(it);
	cr_assert_eq(ipc_active_children(NULL, 0), 2, "the dead one replaced");
}

Test(pool, terminate_fails_pending_imap_items_with_eclosed)
{
	int64_t in[10] = { 0 }; /* every item blocks until released */
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;
	int n = 0;

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 10, 8, 1, &it), 0);
	cr_assert(t_wait_count(&sh->started, 2, 20000));
	cr_assert_eq(ipc_pool_terminate(pool), 0);
	while (ipc_imap_next(it, &idx, &st, &v, 8, 1000) == 0) {
		cr_assert_eq(st, IPC_ECLOSED);
		n++;
	}
	cr_assert_eq(n, 10);
	ipc_imap_free(it);
}

Test(pool, imap_bad_input)
{
	int64_t in[2] = { 1, 2 }, v;
	ipc_imap *it = (ipc_imap *)1;
	size_t idx;
	ssize_t st;

	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 1 }),
		     0);
	cr_assert_eq(ipc_pool_imap(pool, NULL, in, 8, 2, 8, 1, &it),
		     IPC_EINVAL);
	cr_assert_null(it);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, NULL, 8, 2, 8, 1, &it),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 0, 2, 8, 1, &it),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 2, 8, 1, NULL),
		     IPC_EINVAL);
	cr_assert_eq(
		ipc_pool_imap(pool, slow_square, in, 2u << 20, 2, 8, 1, &it),
		IPC_EMSGSIZE);
	cr_assert_eq(ipc_imap_next(NULL, &idx, &st, &v, 8, 0), IPC_EINVAL);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 0, 8, 1, &it), 0);
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, 0), IPC_ECLOSED,
		     "zero items: the end at once");
	cr_assert_eq(ipc_imap_next(it, NULL, &st, &v, 8, 0), IPC_EINVAL);
	cr_assert_eq(ipc_imap_next(it, &idx, &st, &v, 8, -3), IPC_EINVAL);
	ipc_imap_free(it);
	ipc_imap_free(NULL);
	cr_assert_eq(ipc_pool_close(pool), 0);
	cr_assert_eq(ipc_pool_imap(pool, slow_square, in, 8, 2, 8, 1, &it),
		     IPC_EINVAL, "closed");
}

Test(pool, close_and_join_finish_a_map_async_in_flight)
{
	static int64_t in[5000], out[5000];
	ipc_result *r;

	for (int i = 0; i < 5000; i++)
		in[i] = i;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_map_async(pool, square, in, 8, out, 8, 5000, 1,
					NULL, &r),
		     0);
	cr_assert_eq(ipc_pool_close(pool), 0);
	cr_assert_eq(ipc_pool_join(pool), 0);
	cr_assert(ipc_result_ready(r));
	cr_assert_eq(ipc_result_get(r, NULL, 0, 0), 0);
	for (int i = 0; i < 5000; i++)
		cr_assert_eq(out[i], (int64_t)i * i);
	ipc_result_free(r);
}

Test(pool, imap_unordered_survives_a_dead_worker_per_item)
{
	int64_t in[40];
	int seen = 0, dead = 0;
	ipc_imap *it;
	size_t idx;
	ssize_t st;
	int64_t v;

	for (int i = 0; i < 40; i++)
		in[i] = i == 17 ? -13 : i + 1;
	cr_assert_eq(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = 2 }),
		     0);
	cr_assert_eq(ipc_pool_imap_unordered(pool, slow_square, in, 8, 40, 8, 1,
					     &it),
		     0);
	while (ipc_imap_next(it, &idx, &st, &v, 8, 20000) == 0) {
		seen++;
		if (idx == 17) {
			cr_assert_eq(st, IPC_ECHILD);
			dead++;
		} else {
			cr_assert_eq(st, 8);
			cr_assert_eq(v,
				     (int64_t)(idx + 1) * (int64_t)(idx + 1));
		}
	}
	cr_assert_eq(seen, 40);
	cr_assert_eq(dead, 1);
	ipc_imap_free(it);
}
