/* SPDX-License-Identifier: MIT */
/*
 * Primitives across processes, each beside the same exercise with Python's
 * multiprocessing (mp_bench.py prim ...):
 *
 *   lock            one process: acquire + release, ns per pair
 *   lock-contended  two processes acquire + release in a loop: pairs/s
 *   event           set -> the other process wakes from wait: a ping-pong
 *                   over two Events, one way = round trip / 2
 *   sem             release -> the other process's acquire returns, the
 *                   same ping-pong over two Semaphores
 *   barrier         one round of a two-party Barrier
 *   joinable        put + the other process's get + task_done + join
 *   pool            ipc_pool_map of squares over 8-byte integers beside
 *                   multiprocessing.Pool().map(sq, range(n)): items/s
 *
 * Every loop is time-bounded by the window and counts what it did.
 */
#include "bench.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prim_sh {
	double window;
	_Atomic int stop;
	long n[2];
	double dt[2];
	ipc_lock *lock;
	ipc_event *ev[2];
	ipc_sem *sem[2];
	ipc_barrier *bar;
	ipc_queue *jq;
};

#define TRY(call)                 \
	do {                      \
		if ((call) != 0)  \
			return 3; \
	} while (0)

static int lock_loop(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;
	double t0 = bench_now(), end = t0 + sh->window;
	long n = 0;

	(void)c;
	while (bench_now() < end) {
		for (int i = 0; i < 100; i++) {
			TRY(ipc_lock_acquire(sh->lock, IPC_FOREVER));
			TRY(ipc_lock_release(sh->lock));
		}
		n += 100;
	}
	sh->n[index] = n;
	sh->dt[index] = bench_now() - t0;
	return 0;
}

/* The initiator of the Event and Semaphore ping-pongs. */
static int wake_first(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;
	double t0 = bench_now(), end = t0 + sh->window;
	long n = 0;

	(void)c;
	(void)index;
	while (bench_now() < end) {
		if (sh->ev[0] != NULL) {
			TRY(ipc_event_set(sh->ev[0]));
			TRY(ipc_event_wait(sh->ev[1], IPC_FOREVER));
			TRY(ipc_event_clear(sh->ev[1]));
		} else {
			TRY(ipc_sem_release(sh->sem[0]));
			TRY(ipc_sem_acquire(sh->sem[1], IPC_FOREVER));
		}
		n++;
	}
	sh->n[0] = n;
	sh->dt[0] = bench_now() - t0;
	atomic_store(&sh->stop, 1);
	return sh->ev[0] != NULL ? ipc_event_set(sh->ev[0])
				 : ipc_sem_release(sh->sem[0]);
}

static int wake_second(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;

	(void)c;
	(void)index;
	for (;;) {
		if (sh->ev[0] != NULL) {
			TRY(ipc_event_wait(sh->ev[0], IPC_FOREVER));
			TRY(ipc_event_clear(sh->ev[0]));
		} else {
			TRY(ipc_sem_acquire(sh->sem[0], IPC_FOREVER));
		}
		if (atomic_load(&sh->stop))
			return 0;
		TRY(sh->ev[0] != NULL ? ipc_event_set(sh->ev[1])
				      : ipc_sem_release(sh->sem[1]));
	}
}

/* Both parties leave after the same round: once its window is over, the
 * first names the last round (the next one) before it enters that round's
 * wait, so the second, reading it after any earlier round, goes on to the
 * named one. */
static int barrier_party(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;
	double t0 = bench_now(), end = t0 + sh->window;
	long n = 0;

	(void)c;
	for (;;) {
		if (index == 0 && atomic_load(&sh->stop) == 0 &&
		    bench_now() >= end)
			atomic_store(&sh->stop, (int)n + 1);
		if (ipc_barrier_wait(sh->bar, IPC_FOREVER) < 0)
			return 3;
		n++;
		int last = atomic_load(&sh->stop);
		if (last != 0 && n >= last)
			break;
	}
	sh->n[index] = n;
	sh->dt[index] = bench_now() - t0;
	return 0;
}

static int jq_producer(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;
	double t0 = bench_now(), end = t0 + sh->window;
	char msg[8] = "task";
	long n = 0;

	(void)c;
	(void)index;
	while (bench_now() < end) {
		TRY(ipc_queue_put(sh->jq, msg, sizeof(msg), IPC_FOREVER));
		TRY(ipc_queue_join(sh->jq, IPC_FOREVER));
		n++;
	}
	sh->n[0] = n;
	sh->dt[0] = bench_now() - t0;
	return ipc_queue_put(sh->jq, "end", 4, IPC_FOREVER);
}

static int jq_consumer(struct channel *c, int index, void *arg)
{
	struct prim_sh *sh = arg;
	char msg[8];

	(void)c;
	(void)index;
	for (;;) {
		ssize_t len =
			ipc_queue_get(sh->jq, msg, sizeof(msg), IPC_FOREVER);
		if (len < 0 || ipc_queue_task_done(sh->jq) != 0)
			return 3;
		if (len == 4)
			return 0;
	}
}

/* The second process of a symmetric exercise: index 1 (the peers number
 * senders and receivers from 0 each). */
static int lock_loop_second(struct channel *c, int index, void *arg)
{
	(void)index;
	return lock_loop(c, 1, arg);
}

static int barrier_party_second(struct channel *c, int index, void *arg)
{
	(void)index;
	return barrier_party(c, 1, arg);
}

/* Run one exercise with one or two processes; false if one failed. */
static bool two(struct prim_sh *sh, peer_fn a, peer_fn b)
{
	struct peer_set *ps =
		peers_start(NULL, 0, 1, a, b != NULL, b, sh, PIN_SPREAD);

	if (ps == NULL)
		return false;
	peers_go(ps);
	return peers_finish(ps) == 0;
}

/* The Python twin of an exercise, run with the others once all of the
 * repetition's libipc exercises are done. */
static void prim_python(struct py_job *py, int *n, const struct bench_opts *o,
			const char *name)
{
	python_job(py, n, 8, "prim", "python", name, "prim %s %.3f",
		   strcmp(name, "lock-contended") == 0 ? "lock2" : name,
		   o->window);
}

static void record(const char *name, const char *metric, bool ok, double v)
{
	if (ok && isfinite(v))
		result_add("prim", "libipc", name, metric, v);
	else
		result_fail("prim", "libipc", name, "a process failed");
}

void run_primitives(const struct bench_opts *o)
{
	struct prim_sh *sh = bench_shared(sizeof(*sh));
	struct py_job py[8];
	int npy = 0;
	bool ok;

	sh->window = o->window;
	if (ipc_lock_new(&sh->lock) != 0 || ipc_event_new(&sh->ev[0]) != 0 ||
	    ipc_event_new(&sh->ev[1]) != 0 || ipc_barrier_new(&sh->bar, 2) ||
	    ipc_joinable_queue_new(&sh->jq, 0) != 0)
		bench_die("primitives");

	bench_progress("primitives: lock");
	sh->n[1] = 0;
	ok = two(sh, lock_loop, NULL);
	record("lock", "ns_per_op", ok, sh->dt[0] * 1e9 / (double)sh->n[0]);
	prim_python(py, &npy, o, "lock");

	bench_progress("primitives: lock, contended");
	ok = two(sh, lock_loop, lock_loop_second);
	record("lock-contended", "ops_per_s", ok,
	       (double)(sh->n[0] + sh->n[1]) / fmax(sh->dt[0], sh->dt[1]));
	prim_python(py, &npy, o, "lock-contended");

	bench_progress("primitives: event");
	atomic_store(&sh->stop, 0);
	ok = two(sh, wake_first, wake_second);
	record("event", "us_per_wake", ok,
	       sh->dt[0] / (double)sh->n[0] / 2 * 1e6);
	prim_python(py, &npy, o, "event");

	bench_progress("primitives: semaphore");
	ipc_event_close(sh->ev[0]);
	ipc_event_close(sh->ev[1]);
	sh->ev[0] = sh->ev[1] = NULL;
	if (ipc_sem_new(&sh->sem[0], 0, 0) != 0 ||
	    ipc_sem_new(&sh->sem[1], 0, 0) != 0)
		bench_die("ipc_sem_new");
	atomic_store(&sh->stop, 0);
	ok = two(sh, wake_first, wake_second);
	record("sem", "us_per_wake", ok,
	       sh->dt[0] / (double)sh->n[0] / 2 * 1e6);
	prim_python(py, &npy, o, "sem");

	bench_progress("primitives: barrier");
	atomic_store(&sh->stop, 0);
	ok = two(sh, barrier_party, barrier_party_second);
	record("barrier", "us_per_round", ok,
	       sh->dt[0] / (double)sh->n[0] * 1e6);
	prim_python(py, &npy, o, "barrier");

	bench_progress("primitives: joinable queue");
	ok = two(sh, jq_producer, jq_consumer);
	record("joinable", "us_per_cycle", ok,
	       sh->dt[0] / (double)sh->n[0] * 1e6);
	prim_python(py, &npy, o, "joinable");

	ipc_lock_close(sh->lock);
	ipc_sem_close(sh->sem[0]);
	ipc_sem_close(sh->sem[1]);
	ipc_barrier_close(sh->bar);
	ipc_queue_close(sh->jq);
	bench_unshare(sh, sizeof(*sh));
	bench_progress("primitives: Python");
	python_run_all(py, npy);
}

/* ---- Pool.map ------------------------------------------------------------ */
static void square(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;

	*(int64_t *)out = x * x;
}

/* Items per second of ipc_pool_map(square) over n items, default chunks,
 * one worker per CPU, after a warm-up map; the work of the Python row. */
static double pool_libipc(long n)
{
	int64_t *in = malloc(sizeof(int64_t) * (size_t)n);
	int64_t *out = malloc(sizeof(int64_t) * (size_t)n);
	ipc_pool *pool;
	double t0, rate = NAN;

	if (in == NULL || out == NULL || ipc_pool_new(&pool, NULL) != 0)
		bench_die("pool");
	for (long i = 0; i < n; i++)
		in[i] = i;
	ipc_pool_map(pool, square, in, 8, out, 8, 1000, 0);
	t0 = bench_now();
	if (ipc_pool_map(pool, square, in, 8, out, 8, (size_t)n, 0) == 0 &&
	    out[n - 1] == (int64_t)(n - 1) * (n - 1))
		rate = (double)n / (bench_now() - t0);
	ipc_pool_free(pool);
	free(in);
	free(out);
	return rate;
}

void run_pool(const struct bench_opts *o)
{
	long n = o->quick ? 100000 : 1000000;
	char args[32];

	bench_progress("Pool.map: libipc");
	bench_pin(-1);
	double r = pool_libipc(n);
	if (isnan(r))
		result_fail("pool", "libipc", "squares", "ipc_pool_map failed");
	else
		result_add("pool", "libipc", "squares", "items_per_s", r);
	bench_progress("Pool.map: Python");
	snprintf(args, sizeof(args), "pool %ld", n);
	python_run("pool", "python", "squares", args);
}
