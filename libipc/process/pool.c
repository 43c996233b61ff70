/* SPDX-License-Identifier: MIT */
/*
 * pool.c — Pool: worker processes fed through libipc queues; apply,
 * results and callbacks, and the pool's lifetime.
 *
 * Workers are daemon Processes ("PoolWorker-N") that run the initializer,
 * then take tasks from a JoinableQueue and send results back on a Queue.
 * A task is a header (id, kind, function pointer, sizes) followed by the
 * copied input; a result is a header (id, status, length) followed by the
 * output. The process that made the pool drives it: apply puts one task,
 * the multi-item calls (pool_call.c) feed chunks, and every waiting call
 * "pumps" the results queue, handing each result to whoever waits for its
 * id, then runs the callbacks that became due once it has let go of the
 * pool's lock (ipc__pool_unlock).
 *
 * Worker death. Each worker publishes, in memory shared with the pool, the
 * id of the task it runs (set after it got the task and before running it,
 * cleared after sending the result). While a call waits, the pool polls its
 * workers' pidfds every RECHECK period; for a dead one it first drains the
 * results already sent, then fails the task the worker was running
 * (IPC_ECHILD), remembers its id as cancelled, and starts a replacement.
 * The task queue is a JoinableQueue and a worker calls task_done only once
 * it has published the id: a worker killed between taking a task and
 * publishing it had not started it, and the queue gives the task to
 * another worker; one killed later has its task requeued too, but workers
 * skip cancelled ids, so a task that kills its worker cannot kill the next.
 *
 * Deadlock avoidance: the pool never blocks in a put. It puts with
 * IPC_NOWAIT and, when the task queue is full, pumps results instead, so
 * workers blocked on a full results queue always make progress.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libipc/process/pool.h"

/* ---- In the worker ----------------------------------------------------- */

static bool task_cancelled(struct pool_shared *sh, uint64_t id)
{
	for (int i = 0; i < CANCEL_SLOTS; i++)
		if (atomic_load_explicit(&sh->cancelled[i],
					 memory_order_relaxed) == id)
			return true;
	return false;
}

/* Run one task; fill r (and the bytes after it) with its result. */
static void run_task(const struct task_hdr *t, const uint8_t *data,
		     struct result_hdr *r)
{
	uint8_t *res = (uint8_t *)(r + 1);

	r->r_id = t->t_id;
	r->r_status = 0;
	if (t->t_kind == TASK_MAP) {
		ipc_map_fn fn = (ipc_map_fn)(uintptr_t)t->t_fn;
		for (uint32_t i = 0; i < t->t_count; i++)
			fn(data + i * t->t_in_size, res + i * t->t_out_size);
		r->r_len = t->t_count * t->t_out_size;
	} else if (t->t_kind == TASK_ITEMS) {
		ipc_task_fn fn = (ipc_task_fn)(uintptr_t)t->t_fn;
		size_t per = sizeof(int64_t) + t->t_out_size;
		for (uint32_t i = 0; i < t->t_count; i++) {
			uint8_t *slot = res + i * per;
			int64_t st = fn(data + i * t->t_in_size, t->t_in_size,
					slot + sizeof(int64_t), t->t_out_size);
			if (st > (int64_t)t->t_out_size)
				st = -EMSGSIZE; /* it claims more than cap */
			memcpy(slot, &st, sizeof(st));
		}
		r->r_len = t->t_count * per;
	} else {
		ipc_task_fn fn = (ipc_task_fn)(uintptr_t)t->t_fn;
		ssize_t st = fn(data, t->t_in_size, res, RESULT_CAP);
		r->r_status = st;
		r->r_len = st > 0 ? ((size_t)st > RESULT_CAP ? RESULT_CAP
							     : (size_t)st)
				  : 0;
	}
}

static int pool_worker(void *arg)
{
	struct worker_arg *wa = arg;
	ipc_pool *pool = wa->pool;
	struct pool_shared *sh = pool->sh;
	uint8_t *in = malloc(MSG_MAX), *out = malloc(MSG_MAX);
	unsigned done = 0;

	if (in == NULL || out == NULL)
		return 1;
	if (pool->attr.initializer != NULL)
		pool->attr.initializer(pool->attr.initarg);
	for (;;) {
		ssize_t n =
			ipc_queue_get(pool->tasks, in, MSG_MAX, IPC_FOREVER);
		struct task_hdr *t = (struct task_hdr *)in;
		struct result_hdr *r = (struct result_hdr *)out;

		if (n == IPC_ECLOSED)
			return 0;
		if (n < (ssize_t)sizeof(*t))
			return 2;
		if (task_cancelled(sh, t->t_id)) {
			ipc_queue_task_done(pool->tasks);
			continue;
		}
		IPC__CRASHPOINT("pool.worker.taken");
		atomic_store(&sh->w_current[wa->slot], t->t_id);
		ipc_queue_task_done(pool->tasks); /* see "Worker death" */
		run_task(t, in + sizeof(*t), r);
		if (ipc_queue_put(pool->results, out, sizeof(*r) + r->r_len,
				  IPC_FOREVER) != 0)
			return 3;
		IPC__CRASHPOINT("pool.worker.sent");
		atomic_store(&sh->w_current[wa->slot], 0);
		if (pool->attr.maxtasksperchild &&
		    ++done >= pool->attr.maxtasksperchild)
			return 0; /* the pool starts a fresh worker */
	}
}

/* ---- In the pool's process --------------------------------------------- */

static int pool_start_worker(ipc_pool *pool, int slot)
{
	char name[32];
	ipc_process_attr attr = { .name = name, .daemon = true };

	snprintf(name, sizeof(name), "PoolWorker-%u",
		 atomic_fetch_add(&pool->sh->worker_seq, 1) + 1);
	pool->wargs[slot] = (struct worker_arg){ pool, slot };
	atomic_store(&pool->sh->w_current[slot], 0);
	return ipc_process_start(&pool->workers[slot], pool_worker,
				 &pool->wargs[slot], &attr);
}

static struct ipc_result *pool_find_result(ipc_pool *pool, uint64_t id)
{
	for (struct ipc_result *r = pool->pending; r != NULL; r = r->next)
		if (r->call == NULL && r->id == id)
			return r;
	return NULL;
}

void ipc__pool_result_ready(ipc_result *r, ssize_t status)
{
	if (r->ready)
		return;
	r->status = status;
	r->ready = true;
	r->cb_due = status >= 0 ? r->cb.callback != NULL
				: r->cb.error_callback != NULL;
}

/* Hand one result to its waiter; results nobody waits for are dropped. */
static void pool_dispatch(ipc_pool *pool, const uint8_t *msg, size_t n)
{
	const struct result_hdr *h = (const struct result_hdr *)msg;
	struct pool_call *c;
	struct ipc_result *r;

	if (n < sizeof(*h) || h->r_len != n - sizeof(*h))
		return;
	c = ipc__pool_find_call(pool, h->r_id);
	if (c != NULL) {
		ipc__call_chunk_result(c, h->r_id - c->first_id,
				       msg + sizeof(*h), h->r_len);
		return;
	}
	r = pool_find_result(pool, h->r_id);
	if (r == NULL || r->ready)
		return;
	r->buf = malloc(h->r_len ? h->r_len : 1);
	if (r->buf == NULL) {
		ipc__pool_result_ready(r, -ENOMEM);
		return;
	}
	memcpy(r->buf, msg + sizeof(*h), h->r_len);
	r->len = h->r_len;
	ipc__pool_result_ready(r, (ssize_t)h->r_status);
}

/* Fail the task a dead worker ran (pool lock held). */
static void pool_fail_task(ipc_pool *pool, uint64_t id)
{
	struct pool_shared *sh = pool->sh;
	struct pool_call *c = ipc__pool_find_call(pool, id);
	struct ipc_result *r;

	atomic_store(&sh->cancelled[atomic_fetch_add(&sh->cancel_next, 1) %
				    CANCEL_SLOTS],
		     id);
	if (c != NULL) {
		ipc__call_chunk_fail(c, id - c->first_id, -ECHILD);
		return;
	}
	r = pool_find_result(pool, id);
	if (r != NULL)
		ipc__pool_result_ready(r, -ECHILD);
}

static bool pool_task_pending(ipc_pool *pool, uint64_t id)
{
	struct pool_call *c = ipc__pool_find_call(pool, id);
	struct ipc_result *r;

	if (c != NULL)
		return !c->chunk_done[id - c->first_id];
	r = pool_find_result(pool, id);
	return r != NULL && !r->ready;
}

static void pool_drain(ipc_pool *pool)
{
	ssize_t n;

	while ((n = ipc_queue_get(pool->results, pool->rbuf, MSG_MAX,
				  IPC_NOWAIT)) >= 0)
		pool_dispatch(pool, pool->rbuf, (size_t)n);
}

/* Fail everything in flight with err (no worker can run it). Pool lock
 * held. */
static void pool_fail_all(ipc_pool *pool, int err)
{
	for (struct pool_call *c = pool->calls; c != NULL; c = c->next)
		ipc__call_fail_all(c, err);
	for (struct ipc_result *r = pool->pending; r != NULL; r = r->next)
		if (r->call == NULL)
			ipc__pool_result_ready(r, err);
}

/* Replace workers that ended; fail what a dead one was running. A slot
 * whose replacement could not be started (fork failed) is retried on the
 * next look; with no worker alive at all, pending work fails instead of
 * waiting for ever. */
static void pool_check_workers(ipc_pool *pool)
{
	int alive = 0;

	for (int i = 0; i < pool->nworkers; i++) {
		ipc_process *w = pool->workers[i];
		uint64_t id;
		if (w != NULL && ipc_process_is_alive(w)) {
			alive++;
			continue;
		}
		if (w != NULL) {
			pool_drain(pool); /* results it sent before dying */
			id = atomic_load(&pool->sh->w_current[i]);
			if (id != 0 && pool_task_pending(pool, id))
				pool_fail_task(pool, id);
			ipc_process_free(w);
			pool->workers[i] = NULL;
		}
		if (pool->state == POOL_RUNNING &&
		    pool_start_worker(pool, i) == 0)
			alive++;
		else
			pool->workers[i] = NULL;
	}
	if (alive == 0 && pool->state == POOL_RUNNING)
		pool_fail_all(pool, -ECHILD);
}

/* Feed waiting calls, wait up to ms for one result and dispatch it; look
 * at the workers when none comes. Pool lock held. */
void ipc__pool_pump(ipc_pool *pool, int ms)
{
	ssize_t n;

	ipc__pool_feed(pool);
	n = ipc_queue_get(pool->results, pool->rbuf, MSG_MAX, ms);
	if (n >= 0)
		pool_dispatch(pool, pool->rbuf, (size_t)n);
	else
		pool_check_workers(pool);
}

/* Unlock, then run the callbacks of results that became ready, one at a
 * time and without the lock (a callback may call into the pool). */
void ipc__pool_unlock(ipc_pool *pool)
{
	for (;;) {
		struct ipc_result *r = pool->pending;
		while (r != NULL && !r->cb_due)
			r = r->next;
		if (r == NULL)
			break;
		r->cb_due = false;
		ipc_pool_callbacks cb = r->cb;
		ssize_t st = r->status;
		pthread_mutex_unlock(&pool->lock);
		(st >= 0 ? cb.callback : cb.error_callback)(cb.ctx, r, st);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
}

/* Put a task without ever blocking: pump results while the queue is full. */
static int pool_put(ipc_pool *pool, const void *msg, size_t len)
{
	for (;;) {
		int rc = ipc_queue_put(pool->tasks, msg, len, IPC_NOWAIT);
		if (rc != -EAGAIN)
			return rc;
		ipc__pool_pump(pool, IPC__RECHECK_MS);
	}
}

int ipc_pool_new(ipc_pool **out, const ipc_pool_attr *attr)
{
	static const ipc_pool_attr defaults;
	ipc_queue_attr tq = { .capacity = QUEUE_CAPACITY,
			      .max_msg_size = MSG_MAX,
			      .joinable = true };
	ipc_queue_attr rq = { .capacity = QUEUE_CAPACITY,
			      .max_msg_size = MSG_MAX };
	ipc_pool *pool;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (attr == NULL)
		attr = &defaults;
	if (attr->processes < 0 || attr->processes > IPC_POOL_MAX_PROCESSES)
		return -EINVAL;
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pool->attr = *attr;
	pool->nworkers = attr->processes;
	if (pool->nworkers == 0) {
		int ncpu = ipc_cpu_count();
		pool->nworkers = ncpu > IPC_POOL_MAX_PROCESSES
					 ? IPC_POOL_MAX_PROCESSES
					 : ncpu;
	}
	pool->next_id = 1;
	pool->rbuf = malloc(MSG_MAX);
	pool->tbuf = malloc(MSG_MAX);
	pool->sh = mmap(NULL, sizeof(*pool->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pool->rbuf == NULL || pool->tbuf == NULL ||
	    pool->sh == MAP_FAILED) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = ipc_queue_open(&pool->tasks, NULL, 0, &tq);
	if (rc == 0)
		rc = ipc_queue_open(&pool->results, NULL, 0, &rq);
	for (int i = 0; rc == 0 && i < pool->nworkers; i++)
		rc = pool_start_worker(pool, i);
	if (rc != 0)
		goto fail;
	*out = pool;
	return 0;
fail:
	ipc_pool_free(pool);
	return rc;
}

int ipc_pool_processes(ipc_pool *pool)
{
	return pool != NULL ? pool->nworkers : -EINVAL;
}

int ipc_pool_apply_cb(ipc_pool *pool, ipc_task_fn fn, const void *arg,
		      size_t len, const ipc_pool_callbacks *cb,
		      ipc_result **out)
{
	struct task_hdr *t;
	struct ipc_result *r;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (pool == NULL || fn == NULL || out == NULL || (arg == NULL && len))
		return -EINVAL;
	if (len > TASK_PAYLOAD_MAX)
		return -EMSGSIZE;
	t = malloc(sizeof(*t) + len);
	r = calloc(1, sizeof(*r));
	if (t == NULL || r == NULL) {
		free(t);
		free(r);
		return -ENOMEM;
	}
	if (cb != NULL)
		r->cb = *cb;
	pthread_mutex_lock(&pool->lock);
	if (pool->state != POOL_RUNNING) {
		rc = -EINVAL;
		goto out;
	}
	r->pool = pool;
	r->id = pool->next_id++;
	*t = (struct task_hdr){ r->id, TASK_APPLY, 1, (uint64_t)(uintptr_t)fn,
				len,   0 };
	if (len)
		memcpy(t + 1, arg, len);
	r->next = pool->pending;
	pool->pending = r;
	rc = pool_put(pool, t, sizeof(*t) + len);
	if (rc != 0) {
		pool->pending = r->next;
		goto out;
	}
	*out = r;
	r = NULL;
out:
	ipc__pool_unlock(pool);
	free(t);
	free(r);
	return rc;
}

int ipc_pool_apply_async(ipc_pool *pool, ipc_task_fn fn, const void *arg,
			 size_t len, ipc_result **out)
{
	return ipc_pool_apply_cb(pool, fn, arg, len, NULL, out);
}

ssize_t ipc_pool_apply(ipc_pool *pool, ipc_task_fn fn, const void *arg,
		       size_t len, void *out, size_t cap)
{
	ipc_result *r;
	ssize_t rc;

	if (out == NULL && cap > 0)
		return -EINVAL;
	rc = ipc_pool_apply_async(pool, fn, arg, len, &r);
	if (rc != 0)
		return rc;
	rc = ipc_result_get(r, out, cap, IPC_FOREVER);
	ipc_result_free(r);
	return rc;
}

/* Wait until r is ready or dl passes: 0 | -EAGAIN / -ETIMEDOUT
 * | IPC_ECLOSED (the pool is gone and it never became ready). Pool lock
 * held if r->pool. */
static int result_wait_locked(ipc_result *r, const struct ipc__deadline *dl)
{
	while (!r->ready && r->pool != NULL) {
		if (ipc__deadline_passed(dl))
			return ipc__deadline_error(dl);
		struct ipc__deadline slice;
		ipc__deadline_capped(&slice, dl, IPC__RECHECK_MS);
		ipc__pool_pump(r->pool, ipc__deadline_ms(&slice));
	}
	return r->ready ? 0 : IPC_ECLOSED;
}

/* Lock r's pool (*pool: NULL if gone) and wait until r is ready or
 * timeout_ms passes; returns as result_wait_locked, or -EINVAL with
 * nothing locked. The caller unlocks with ipc__pool_unlock(*pool). */
static int result_lock_wait(ipc_result *r, int timeout_ms, ipc_pool **pool)
{
	struct ipc__deadline dl;
	int rc = ipc__deadline_init(&dl, timeout_ms);

	*pool = NULL;
	if (rc != 0)
		return rc;
	*pool = r->pool;
	if (*pool != NULL)
		pthread_mutex_lock(&(*pool)->lock);
	return result_wait_locked(r, &dl);
}

ssize_t ipc_result_get(ipc_result *r, void *out, size_t cap, int timeout_ms)
{
	ipc_pool *pool;
	ssize_t rc;

	if (r == NULL || (out == NULL && cap > 0))
		return -EINVAL;
	rc = result_lock_wait(r, timeout_ms, &pool);
	if (rc != 0)
		;
	else if (r->status < 0 || r->len == 0)
		rc = r->status;
	else if (r->len > cap)
		rc = -EMSGSIZE;
	else {
		memcpy(out, r->buf, r->len);
		rc = r->status;
	}
	if (pool != NULL)
		ipc__pool_unlock(pool);
	return rc;
}

int ipc_result_wait(ipc_result *r, int timeout_ms)
{
	ipc_pool *pool;
	int rc;

	if (r == NULL)
		return -EINVAL;
	rc = result_lock_wait(r, timeout_ms, &pool);
	if (rc == IPC_ECLOSED)
		rc = 0; /* ready enough: get returns IPC_ECLOSED */
	if (pool != NULL)
		ipc__pool_unlock(pool);
	return rc;
}

bool ipc_result_ready(ipc_result *r)
{
	bool ready;

	if (r == NULL)
		return false;
	if (r->pool == NULL)
		return r->ready;
	pthread_mutex_lock(&r->pool->lock);
	if (!r->ready)
		ipc__pool_pump(r->pool, 0);
	ready = r->ready;
	ipc__pool_unlock(r->pool);
	return ready;
}

bool ipc_result_successful(ipc_result *r)
{
	return ipc_result_ready(r) && r->status >= 0;
}

void ipc_result_free(ipc_result *r)
{
	if (r == NULL)
		return;
	if (r->pool != NULL) {
		ipc_pool *pool = r->pool;
		pthread_mutex_lock(&pool->lock);
		for (struct ipc_result **pp = &pool->pending; *pp;
		     pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		if (r->call != NULL) /* map_async: the call goes with it */
			ipc__pool_unlink_call(pool, r->call);
		pthread_mutex_unlock(&pool->lock);
	}
	ipc__call_free(r->call);
	free(r->buf);
	free(r);
}

int ipc_pool_close(ipc_pool *pool)
{
	if (pool == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	if (pool->state == POOL_RUNNING) {
		/* Calls still feeding chunks need the queue open: feed them
		 * all first (pumping while it is full). */
		while (pool->calls != NULL) {
			bool unsent = false;
			for (struct pool_call *c = pool->calls; c; c = c->next)
				unsent |=
					c->sent < c->nchunks && c->window == 0;
			if (!unsent)
				break;
			ipc__pool_pump(pool, IPC__RECHECK_MS);
		}
		pool->state = POOL_CLOSED;
		ipc_queue_shutdown(pool->tasks);
	}
	ipc__pool_unlock(pool);
	return 0;
}

int ipc_pool_terminate(ipc_pool *pool)
{
	if (pool == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	pool->state = POOL_TERMINATED;
	ipc_queue_shutdown(pool->tasks);
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->workers[i] != NULL)
			ipc_process_kill(pool->workers[i]);
	for (int i = 0; i < pool->nworkers; i++) {
		if (pool->workers[i] == NULL)
			continue;
		ipc_process_join(pool->workers[i], IPC_FOREVER);
		ipc_process_free(pool->workers[i]);
		pool->workers[i] = NULL;
	}
	pool_drain(pool);
	pool_fail_all(pool, IPC_ECLOSED);
	ipc__pool_unlock(pool);
	return 0;
}

int ipc_pool_join(ipc_pool *pool)
{
	if (pool == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	if (pool->state == POOL_RUNNING) {
		pthread_mutex_unlock(&pool->lock);
		return -EINVAL;
	}
	/* Keep taking results while the workers finish: a worker blocked on
	 * a full results queue would never exit otherwise. */
	for (int i = 0; i < pool->nworkers; i++) {
		while (pool->workers[i] != NULL &&
		       ipc_process_join(pool->workers[i], IPC_NOWAIT) != 0)
			ipc__pool_pump(pool, IPC__RECHECK_MS);
		if (pool->workers[i] != NULL) {
			ipc_process_free(pool->workers[i]);
			pool->workers[i] = NULL;
		}
	}
	pool_drain(pool);
	/* Whatever is still unfinished can no longer run. */
	pool_fail_all(pool, pool->state == POOL_CLOSED ? -ECHILD : IPC_ECLOSED);
	ipc__pool_unlock(pool);
	return 0;
}

void ipc_pool_free(ipc_pool *pool)
{
	if (pool == NULL)
		return;
	if (pool->tasks != NULL &&
	    (pool->state == POOL_RUNNING || pool->state == POOL_CLOSED))
		ipc_pool_terminate(pool);
	for (struct ipc_result *r = pool->pending; r != NULL; r = r->next)
		r->pool = NULL; /* results outlive the pool, detached */
	for (struct pool_call *c = pool->calls; c != NULL; c = c->next)
		c->pool = NULL; /* and so do calls (imap iterators) */
	ipc_queue_close(pool->tasks);
	ipc_queue_close(pool->results);
	if (pool->sh != MAP_FAILED && pool->sh != NULL)
		munmap(pool->sh, sizeof(*pool->sh));
	free(pool->rbuf);
	free(pool->tbuf);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
