/* SPDX-License-Identifier: MIT */
/*
 * pool.c — Pool: worker processes fed through libipc queues.
 *
 * Workers are daemon Processes ("PoolWorker-N") that run the initializer,
 * then take tasks from a JoinableQueue and send results back on a Queue.
 * A task is a header (id, kind, function pointer, sizes) followed by the
 * copied input; a result is a header (id, status, length) followed by the
 * output. The process that made the pool drives it: map and apply_async
 * put tasks, and every waiting call "pumps" the results queue, handing each
 * result to whoever waits for its id.
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

#include "libipc/core/core.h"

#define TASK_PAYLOAD_MAX (1u << 20)
#define RESULT_CAP (64u << 10)
#define QUEUE_CAPACITY (8u << 20)
#define MSG_MAX (TASK_PAYLOAD_MAX + 64)
#define CANCEL_SLOTS 256

enum { TASK_MAP = 1, TASK_APPLY = 2 };
enum { POOL_RUNNING, POOL_CLOSED, POOL_TERMINATED };

struct task_hdr {
	uint64_t t_id;
	uint32_t t_kind;
	uint32_t t_count;    /* items in a map chunk */
	uint64_t t_fn;	     /* function pointer, valid in the forked workers */
	uint64_t t_in_size;  /* map: item size; apply: argument length */
	uint64_t t_out_size; /* map: result item size */
};

struct result_hdr {
	uint64_t r_id;
	int64_t r_status; /* map: 0; apply: fn's return value */
	uint64_t r_len;
};

/* Shared between the pool and its workers (anonymous, inherited). */
struct pool_shared {
	_Atomic uint64_t w_current[IPC_POOL_MAX_PROCESSES]; /* 0: idle */
	_Atomic uint64_t cancelled[CANCEL_SLOTS];
	_Atomic uint32_t cancel_next;
	_Atomic uint32_t worker_seq; /* for names */
};

struct ipc_result {
	struct ipc_result *next; /* the pool's list of unfinished results */
	ipc_pool *pool;		 /* NULL once the pool is gone */
	uint64_t id;
	bool ready;
	ssize_t status;
	void *buf;
	size_t len;
};

struct map_call {
	uint64_t first_id;
	size_t nchunks, chunksize, n, out_size, done;
	uint8_t *out;
	uint8_t *chunk_done; /* each chunk counts once, whatever arrives */
	bool failed;
};

struct worker_arg {
	ipc_pool *pool;
	int slot;
};

struct ipc_pool {
	pthread_mutex_t lock;
	ipc_queue *tasks, *results;
	struct pool_shared *sh;
	ipc_process *workers[IPC_POOL_MAX_PROCESSES];
	struct worker_arg wargs[IPC_POOL_MAX_PROCESSES];
	int nworkers;
	ipc_pool_attr attr;
	int state;
	uint64_t next_id;
	struct ipc_result *pending;
	struct map_call *map; /* the map in progress, if any */
	uint8_t *rbuf;	      /* one result message */
};

/* ---- In the worker ----------------------------------------------------- */

static bool task_cancelled(struct pool_shared *sh, uint64_t id)
{
	for (int i = 0; i < CANCEL_SLOTS; i++)
		if (atomic_load_explicit(&sh->cancelled[i],
					 memory_order_relaxed) == id)
			return true;
	return false;
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
		const uint8_t *data = in + sizeof(*t);
		uint8_t *res = out + sizeof(*r);

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
		r->r_id = t->t_id;
		r->r_status = 0;
		if (t->t_kind == TASK_MAP) {
			ipc_map_fn fn = (ipc_map_fn)(uintptr_t)t->t_fn;
			for (uint32_t i = 0; i < t->t_count; i++)
				fn(data + i * t->t_in_size,
				   res + i * t->t_out_size);
			r->r_len = t->t_count * t->t_out_size;
		} else {
			ipc_task_fn fn = (ipc_task_fn)(uintptr_t)t->t_fn;
			ssize_t st = fn(data, t->t_in_size, res, RESULT_CAP);
			r->r_status = st;
			r->r_len =
				st > 0 ? ((size_t)st > RESULT_CAP ? RESULT_CAP
								  : (size_t)st)
				       : 0;
		}
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
		if (r->id == id)
			return r;
	return NULL;
}

/* Hand one result to its waiter; results nobody waits for are dropped. */
static void pool_dispatch(ipc_pool *pool, const uint8_t *msg, size_t n)
{
	const struct result_hdr *h = (const struct result_hdr *)msg;
	struct map_call *m = pool->map;
	struct ipc_result *r;

	if (n < sizeof(*h) || h->r_len != n - sizeof(*h))
		return;
	if (m != NULL && h->r_id >= m->first_id &&
	    h->r_id < m->first_id + m->nchunks) {
		size_t c = h->r_id - m->first_id;
		size_t first = c * m->chunksize;
		if (h->r_len == (size_t)(m->n - first < m->chunksize
						 ? m->n - first
						 : m->chunksize) *
					m->out_size) {
			if (m->chunk_done[c])
				return;
			memcpy(m->out + first * m->out_size, msg + sizeof(*h),
			       h->r_len);
			m->chunk_done[c] = 1;
			m->done++;
		}
		return;
	}
	r = pool_find_result(pool, h->r_id);
	if (r == NULL || r->ready)
		return;
	r->buf = malloc(h->r_len ? h->r_len : 1);
	if (r->buf == NULL) {
		r->status = -ENOMEM;
	} else {
		memcpy(r->buf, msg + sizeof(*h), h->r_len);
		r->len = h->r_len;
		r->status = (ssize_t)h->r_status;
	}
	r->ready = true;
}

/* Fail the task a dead worker ran (pool lock held). */
static void pool_fail_task(ipc_pool *pool, uint64_t id)
{
	struct pool_shared *sh = pool->sh;
	struct map_call *m = pool->map;
	struct ipc_result *r;

	atomic_store(&sh->cancelled[atomic_fetch_add(&sh->cancel_next, 1) %
				    CANCEL_SLOTS],
		     id);
	if (m != NULL && id >= m->first_id && id < m->first_id + m->nchunks) {
		if (!m->chunk_done[id - m->first_id]) {
			m->chunk_done[id - m->first_id] = 1;
			m->done++;
		}
		m->failed = true;
		return;
	}
	r = pool_find_result(pool, id);
	if (r != NULL && !r->ready) {
		r->status = -ECHILD;
		r->ready = true;
	}
}

static bool pool_task_pending(ipc_pool *pool, uint64_t id)
{
	struct map_call *m = pool->map;
	struct ipc_result *r;

	if (m != NULL && id >= m->first_id && id < m->first_id + m->nchunks)
		return !m->chunk_done[id - m->first_id];
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

/* Fail everything in flight (no worker can run it). Pool lock held. */
static void pool_fail_all(ipc_pool *pool)
{
	struct map_call *m = pool->map;

	if (m != NULL) {
		for (size_t c = 0; c < m->nchunks; c++)
			if (!m->chunk_done[c]) {
				m->chunk_done[c] = 1;
				m->done++;
			}
		m->failed = true;
	}
	for (struct ipc_result *r = pool->pending; r != NULL; r = r->next)
		if (!r->ready) {
			r->status = -ECHILD;
			r->ready = true;
		}
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
		pool_fail_all(pool);
}

/* Wait up to ms for one result and dispatch it; look at the workers when
 * none comes. Pool lock held. */
static void pool_pump(ipc_pool *pool, int ms)
{
	ssize_t n = ipc_queue_get(pool->results, pool->rbuf, MSG_MAX, ms);

	if (n >= 0)
		pool_dispatch(pool, pool->rbuf, (size_t)n);
	else
		pool_check_workers(pool);
}

/* Put a task without ever blocking: pump results while the queue is full. */
static int pool_put(ipc_pool *pool, const void *msg, size_t len)
{
	for (;;) {
		int rc = ipc_queue_put(pool->tasks, msg, len, IPC_NOWAIT);
		if (rc != -EAGAIN)
			return rc;
		pool_pump(pool, IPC__RECHECK_MS);
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
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		pool->nworkers = ncpu < 1 ? 1
				 : ncpu > IPC_POOL_MAX_PROCESSES
					 ? IPC_POOL_MAX_PROCESSES
					 : (int)ncpu;
	}
	pool->next_id = 1;
	pool->rbuf = malloc(MSG_MAX);
	pool->sh = mmap(NULL, sizeof(*pool->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pool->rbuf == NULL || pool->sh == MAP_FAILED) {
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

int ipc_pool_map(ipc_pool *pool, ipc_map_fn fn, const void *in, size_t in_size,
		 void *out, size_t out_size, size_t n, size_t chunksize)
{
	struct map_call m = { 0 };
	uint8_t *task = NULL;
	size_t sent = 0;
	int rc = 0;

	if (pool == NULL || fn == NULL || in_size == 0 ||
	    (n > 0 && (in == NULL || (out == NULL && out_size > 0))))
		return -EINVAL;
	if (in_size > TASK_PAYLOAD_MAX || out_size > TASK_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (n == 0)
		return 0;
	if (chunksize == 0)
		chunksize = n / (4 * (size_t)pool->nworkers);
	if (chunksize == 0)
		chunksize = 1;
	/* A chunk's input and output must each fit in one message. */
	size_t biggest = in_size > out_size ? in_size : out_size;
	if (chunksize > TASK_PAYLOAD_MAX / biggest)
		chunksize = TASK_PAYLOAD_MAX / biggest;
	task = malloc(sizeof(struct task_hdr) + chunksize * in_size);
	if (task == NULL)
		return -ENOMEM;

	pthread_mutex_lock(&pool->lock);
	if (pool->state != POOL_RUNNING || pool->map != NULL) {
		rc = pool->state != POOL_RUNNING ? -EINVAL : -EBUSY;
		goto out;
	}
	m.chunksize = chunksize;
	m.n = n;
	m.nchunks = (n + chunksize - 1) / chunksize;
	m.out = out;
	m.out_size = out_size;
	m.chunk_done = calloc(m.nchunks, 1);
	if (m.chunk_done == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	m.first_id = pool->next_id;
	pool->next_id += m.nchunks;
	pool->map = &m;
	while (m.done < m.nchunks) {
		if (sent < m.nchunks && !m.failed) {
			size_t first = sent * chunksize;
			size_t count =
				n - first < chunksize ? n - first : chunksize;
			struct task_hdr *t = (struct task_hdr *)task;
			*t = (struct task_hdr){
				m.first_id + sent, TASK_MAP,
				(uint32_t)count,   (uint64_t)(uintptr_t)fn,
				in_size,	   out_size
			};
			memcpy(task + sizeof(*t),
			       (const uint8_t *)in + first * in_size,
			       count * in_size);
			rc = pool_put(pool, task, sizeof(*t) + count * in_size);
			if (rc != 0)
				break;
			sent++;
			continue;
		}
		if (m.failed && sent < m.nchunks) {
			for (; sent < m.nchunks; sent++) /* never sent */
				if (!m.chunk_done[sent]) {
					m.chunk_done[sent] = 1;
					m.done++;
				}
			continue;
		}
		pool_pump(pool, IPC__RECHECK_MS);
	}
	pool->map = NULL;
	if (rc == 0 && m.failed)
		rc = -ECHILD;
out:
	pthread_mutex_unlock(&pool->lock);
	free(m.chunk_done);
	free(task);
	return rc;
}

int ipc_pool_apply_async(ipc_pool *pool, ipc_task_fn fn, const void *arg,
			 size_t len, ipc_result **out)
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
	pthread_mutex_unlock(&pool->lock);
	free(t);
	free(r);
	return rc;
}

ssize_t ipc_result_get(ipc_result *r, void *out, size_t cap, int timeout_ms)
{
	struct ipc__deadline dl;
	ssize_t rc;

	if (r == NULL || (out == NULL && cap > 0))
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	if (r->pool != NULL)
		pthread_mutex_lock(&r->pool->lock);
	while (!r->ready && r->pool != NULL) {
		if (ipc__deadline_passed(&dl)) {
			rc = ipc__deadline_error(&dl);
			goto out;
		}
		struct ipc__deadline slice;
		ipc__deadline_capped(&slice, &dl, IPC__RECHECK_MS);
		pool_pump(r->pool, ipc__deadline_ms(&slice));
	}
	if (!r->ready)
		rc = IPC_ECLOSED;
	else if (r->status < 0 || r->len == 0)
		rc = r->status;
	else if (r->len > cap)
		rc = -EMSGSIZE;
	else {
		memcpy(out, r->buf, r->len);
		rc = r->status;
	}
out:
	if (r->pool != NULL)
		pthread_mutex_unlock(&r->pool->lock);
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
		pool_pump(r->pool, 0);
	ready = r->ready;
	pthread_mutex_unlock(&r->pool->lock);
	return ready;
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
		pthread_mutex_unlock(&pool->lock);
	}
	free(r->buf);
	free(r);
}

int ipc_pool_close(ipc_pool *pool)
{
	if (pool == NULL)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	if (pool->state == POOL_RUNNING) {
		pool->state = POOL_CLOSED;
		ipc_queue_shutdown(pool->tasks);
	}
	pthread_mutex_unlock(&pool->lock);
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
	for (struct ipc_result *r = pool->pending; r != NULL; r = r->next)
		if (!r->ready) {
			r->status = IPC_ECLOSED;
			r->ready = true;
		}
	pthread_mutex_unlock(&pool->lock);
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
			pool_pump(pool, IPC__RECHECK_MS);
		if (pool->workers[i] != NULL) {
			ipc_process_free(pool->workers[i]);
			pool->workers[i] = NULL;
		}
	}
	pool_drain(pool);
	pthread_mutex_unlock(&pool->lock);
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
	ipc_queue_close(pool->tasks);
	ipc_queue_close(pool->results);
	if (pool->sh != MAP_FAILED && pool->sh != NULL)
		munmap(pool->sh, sizeof(*pool->sh));
	free(pool->rbuf);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
