/* SPDX-License-Identifier: MIT */
/*
 * pool_call.c — the Pool's multi-item calls: map, map_async, starmap,
 * imap and imap_unordered.
 *
 * Each call is a struct pool_call on the pool's list. Its items go to the
 * workers in chunks, one task per chunk, task ids first_id onwards; a
 * result is matched to its call by id range and copied in place (map,
 * starmap) or kept per chunk until imap_next hands its items out. Chunks
 * are fed to the task queue without ever blocking: whenever the pool pumps
 * results (any waiting pool call of this process) it first puts what fits.
 * So map_async returns at once, and an imap keeps only a window of chunks
 * in flight or unconsumed — it is lazy: its input is read, and its results
 * held, a few chunks ahead of the consumer.
 *
 * A worker that dies fails the chunk it ran: a map stops sending and
 * returns IPC_ECHILD (the items whose chunks finished are in out); starmap
 * and imap report IPC_ECHILD as the status of that chunk's items and carry
 * on with the rest. A task function's own negative return is the status of
 * its item, never the call's error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/process/pool.h"

struct ipc_imap {
	struct pool_call *c;
};

static size_t chunk_count(const struct pool_call *c, size_t k)
{
	size_t first = k * c->chunksize;
	return c->n - first < c->chunksize ? c->n - first : c->chunksize;
}

/* Bytes of one item's result in a chunk's result message. */
static size_t result_per_item(const struct pool_call *c)
{
	return c->kind == TASK_MAP ? c->out_size
				   : sizeof(int64_t) + c->out_size;
}

struct pool_call *ipc__pool_find_call(ipc_pool *pool, uint64_t id)
{
	for (struct pool_call *c = pool->calls; c != NULL; c = c->next)
		if (id >= c->first_id && id - c->first_id < c->nchunks)
			return c;
	return NULL;
}

static void chunk_finish(struct pool_call *c, size_t k, int err)
{
	size_t first = k * c->chunksize;

	if (err != 0) {
		c->failed = true;
		if (c->first_err == 0 || err == -ECHILD)
			c->first_err = err;
		for (size_t i = 0; c->status != NULL && i < chunk_count(c, k);
		     i++)
			c->status[first + i] = err;
	}
	c->chunk_done[k] = 1;
	c->chunk_err[k] = err;
	if (c->order != NULL)
		c->order[c->done] = k;
	c->done++;
	if (c->done == c->nchunks && c->result != NULL)
		ipc__pool_result_ready(c->result, c->first_err);
}

void ipc__call_chunk_fail(struct pool_call *c, size_t k, int err)
{
	if (k < c->nchunks && !c->chunk_done[k])
		chunk_finish(c, k, err);
}

void ipc__call_fail_all(struct pool_call *c, int err)
{
	for (size_t k = 0; k < c->nchunks; k++)
		ipc__call_chunk_fail(c, k, err);
	c->sent = c->nchunks;
}

/* Copy an ITEMS result into out/status; -EPROTO if a return value is out
 * of range (results are read from shared memory: trust nothing). */
static int items_in_place(struct pool_call *c, size_t first, size_t count,
			  const uint8_t *data)
{
	size_t per = result_per_item(c);

	for (size_t i = 0; i < count; i++) {
		int64_t st;
		memcpy(&st, data + i * per, sizeof(st));
		if (st > (int64_t)c->out_size)
			return -EPROTO;
		c->status[first + i] = (ssize_t)st;
		if (st > 0)
			memcpy(c->out + (first + i) * c->out_size,
			       data + i * per + sizeof(st), (size_t)st);
	}
	return 0;
}

void ipc__call_chunk_result(struct pool_call *c, size_t k, const uint8_t *data,
			    size_t len)
{
	size_t count, first = k * c->chunksize;
	int err = 0;

	if (k >= c->nchunks || c->chunk_done[k])
		return;
	count = chunk_count(c, k);
	if (len != count * result_per_item(c)) {
		err = -EPROTO;
	} else if (c->iter) {
		c->chunk_buf[k] = malloc(len ? len : 1);
		if (c->chunk_buf[k] == NULL)
			err = -ENOMEM;
		else
			memcpy(c->chunk_buf[k], data, len);
	} else if (c->kind == TASK_MAP) {
		if (len > 0)
			memcpy(c->out + first * c->out_size, data, len);
	} else {
		err = items_in_place(c, first, count, data);
	}
	chunk_finish(c, k, err);
}

/* Put chunk k's task into pool->tbuf; its length. */
static size_t chunk_task(ipc_pool *pool, struct pool_call *c, size_t k)
{
	struct task_hdr *t = (struct task_hdr *)pool->tbuf;
	size_t count = chunk_count(c, k);
	const void *src;
	size_t bytes;

	if (c->args != NULL) { /* starmap: one item per chunk */
		src = c->args[k].arg;
		bytes = c->args[k].len;
	} else {
		src = c->in + k * c->chunksize * c->in_size;
		bytes = count * c->in_size;
	}
	*t = (struct task_hdr){ c->first_id + k,
				(uint32_t)c->kind,
				(uint32_t)count,
				c->fn,
				c->args != NULL ? bytes : c->in_size,
				c->out_size };
	if (bytes > 0)
		memcpy(t + 1, src, bytes);
	return sizeof(*t) + bytes;
}

/* Send what fits of c: 0, or -EAGAIN when the task queue is full. */
static int call_feed(ipc_pool *pool, struct pool_call *c)
{
	while (c->sent < c->nchunks) {
		size_t k = c->sent;
		int rc;
		if (c->failed && c->stop_on_failure) {
			ipc__call_fail_all(c, -ECHILD); /* never sent */
			return 0;
		}
		if (c->window != 0 && c->sent - c->consumed >= c->window)
			return 0;
		rc = ipc_queue_put(pool->tasks, pool->tbuf,
				   chunk_task(pool, c, k), IPC_NOWAIT);
		if (rc == -EAGAIN)
			return -EAGAIN;
		c->sent++;
		if (rc != 0)
			ipc__call_chunk_fail(c, k, rc); /* IPC_ECLOSED */
	}
	return 0;
}

void ipc__pool_feed(ipc_pool *pool)
{
	for (struct pool_call *c = pool->calls; c != NULL; c = c->next)
		if (call_feed(pool, c) == -EAGAIN)
			return;
}

void ipc__pool_unlink_call(ipc_pool *pool, struct pool_call *c)
{
	for (struct pool_call **pp = &pool->calls; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

void ipc__call_free(struct pool_call *c)
{
	if (c == NULL)
		return;
	for (size_t k = 0; c->chunk_buf != NULL && k < c->nchunks; k++)
		free(c->chunk_buf[k]);
	free(c->chunk_buf);
	free(c->order);
	free(c->chunk_done);
	free(c->chunk_err);
	free(c);
}

/* A new call of n items (pool lock held, pool running). chunksize is
 * already capped so that a chunk's input and output fit a message. */
static struct pool_call *call_new(ipc_pool *pool, int kind, uint64_t fn,
				  size_t n, size_t chunksize, bool iter,
				  bool ordered)
{
	struct pool_call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->pool = pool;
	c->kind = kind;
	c->fn = fn;
	c->n = n;
	c->chunksize = chunksize;
	c->nchunks = (n + chunksize - 1) / chunksize;
	c->iter = iter;
	c->ordered = ordered;
	c->chunk_done = calloc(c->nchunks ? c->nchunks : 1, 1);
	c->chunk_err = calloc(c->nchunks ? c->nchunks : 1, sizeof(int32_t));
	if (iter)
		c->chunk_buf =
			calloc(c->nchunks ? c->nchunks : 1, sizeof(uint8_t *));
	if (iter && !ordered)
		c->order = calloc(c->nchunks ? c->nchunks : 1, sizeof(size_t));
	if (c->chunk_done == NULL || c->chunk_err == NULL ||
	    (iter && c->chunk_buf == NULL) ||
	    (iter && !ordered && c->order == NULL)) {
		ipc__call_free(c);
		return NULL;
	}
	c->first_id = pool->next_id;
	pool->next_id += c->nchunks;
	return c;
}

/* The largest chunk whose input (in_size per item) and result (per item)
 * each fit one message, at most want (0: a default of n / (4 workers)). */
static size_t chunk_limit(ipc_pool *pool, size_t want, size_t n, size_t in_size,
			  size_t per)
{
	size_t biggest = in_size > per ? in_size : per;

	if (want == 0)
		want = n / (4 * (size_t)pool->nworkers);
	if (want == 0)
		want = 1;
	if (biggest > 0 && want > TASK_PAYLOAD_MAX / biggest)
		want = TASK_PAYLOAD_MAX / biggest;
	return want;
}

/* Put c on the pool's list with its result (map_async, starmap), feed
 * it. Pool lock held. */
static void call_start(ipc_pool *pool, struct pool_call *c, ipc_result *r)
{
	if (r != NULL) {
		r->pool = pool;
		r->call = c;
		c->result = r;
		r->next = pool->pending;
		pool->pending = r;
	}
	c->next = pool->calls;
	pool->calls = c;
	if (c->nchunks == 0 && r != NULL)
		ipc__pool_result_ready(r, 0);
	ipc__pool_feed(pool);
}

/* Make an in-place call (map_async, starmap) and its result. */
static int start_in_place(ipc_pool *pool, struct pool_call *proto,
			  const ipc_pool_callbacks *cb, ipc_result **out)
{
	ipc_result *r = calloc(1, sizeof(*r));
	struct pool_call *c = NULL;
	int rc = 0;

	if (r == NULL)
		return -ENOMEM;
	if (cb != NULL)
		r->cb = *cb;
	pthread_mutex_lock(&pool->lock);
	if (pool->state != POOL_RUNNING) {
		rc = -EINVAL;
		goto out;
	}
	c = call_new(pool, proto->kind, proto->fn, proto->n, proto->chunksize,
		     false, true);
	if (c == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	c->in = proto->in;
	c->in_size = proto->in_size;
	c->args = proto->args;
	c->out = proto->out;
	c->out_size = proto->out_size;
	c->status = proto->status;
	c->stop_on_failure = proto->stop_on_failure;
	call_start(pool, c, r);
	*out = r;
	r = NULL;
out:
	ipc__pool_unlock(pool);
	free(r);
	return rc;
}

int ipc_pool_map_async(ipc_pool *pool, ipc_map_fn fn, const void *in,
		       size_t in_size, void *out, size_t out_size, size_t n,
		       size_t chunksize, const ipc_pool_callbacks *cb,
		       ipc_result **r)
{
	struct pool_call proto = { 0 };

	if (r != NULL)
		*r = NULL;
	if (pool == NULL || fn == NULL || r == NULL || in_size == 0 ||
	    (n > 0 && (in == NULL || (out == NULL && out_size > 0))))
		return -EINVAL;
	if (in_size > TASK_PAYLOAD_MAX || out_size > TASK_PAYLOAD_MAX)
		return -EMSGSIZE;
	proto.kind = TASK_MAP;
	proto.fn = (uint64_t)(uintptr_t)fn;
	proto.n = n;
	proto.chunksize = chunk_limit(pool, chunksize, n, in_size, out_size);
	proto.in = in;
	proto.in_size = in_size;
	proto.out = out;
	proto.out_size = out_size;
	proto.stop_on_failure = true;
	return start_in_place(pool, &proto, cb, r);
}

int ipc_pool_map(ipc_pool *pool, ipc_map_fn fn, const void *in, size_t in_size,
		 void *out, size_t out_size, size_t n, size_t chunksize)
{
	ipc_result *r;
	int rc = ipc_pool_map_async(pool, fn, in, in_size, out, out_size, n,
				    chunksize, NULL, &r);

	if (rc != 0)
		return rc;
	rc = (int)ipc_result_get(r, NULL, 0, IPC_FOREVER);
	ipc_result_free(r);
	return rc;
}

int ipc_pool_starmap(ipc_pool *pool, ipc_task_fn fn, const ipc_pool_args *args,
		     size_t n, void *out, size_t out_size, ssize_t *status)
{
	struct pool_call proto = { 0 };
	ipc_result *r;
	int rc;

	if (pool == NULL || fn == NULL ||
	    (n > 0 &&
	     (args == NULL || status == NULL || (out == NULL && out_size > 0))))
		return -EINVAL;
	if (out_size > TASK_PAYLOAD_MAX - sizeof(int64_t))
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++) {
		if (args[i].arg == NULL && args[i].len > 0)
			return -EINVAL;
		if (args[i].len > TASK_PAYLOAD_MAX)
			return -EMSGSIZE;
	}
	proto.kind = TASK_ITEMS;
	proto.fn = (uint64_t)(uintptr_t)fn;
	proto.n = n;
	proto.chunksize = 1;
	proto.args = args;
	proto.out = out;
	proto.out_size = out_size;
	proto.status = status;
	rc = start_in_place(pool, &proto, NULL, &r);
	if (rc != 0)
		return rc;
	rc = (int)ipc_result_get(r, NULL, 0, IPC_FOREVER);
	ipc_result_free(r);
	return rc;
}

static int imap_start(ipc_pool *pool, ipc_task_fn fn, const void *in,
		      size_t in_size, size_t n, size_t out_size,
		      size_t chunksize, bool ordered, ipc_imap **out)
{
	ipc_imap *it;
	struct pool_call *c;
	int rc = 0;

	if (out != NULL)
		*out = NULL;
	if (pool == NULL || fn == NULL || out == NULL || in_size == 0 ||
	    (n > 0 && in == NULL))
		return -EINVAL;
	if (in_size > TASK_PAYLOAD_MAX ||
	    out_size > TASK_PAYLOAD_MAX - sizeof(int64_t))
		return -EMSGSIZE;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&pool->lock);
	if (pool->state != POOL_RUNNING) {
		rc = -EINVAL;
		goto out;
	}
	/* Python's imap default is one item per chunk. */
	c = call_new(pool, TASK_ITEMS, (uint64_t)(uintptr_t)fn, n,
		     chunk_limit(pool, chunksize ? chunksize : 1, n, in_size,
				 sizeof(int64_t) + out_size),
		     true, ordered);
	if (c == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	c->in = in;
	c->in_size = in_size;
	c->out_size = out_size;
	c->window = 4 * (size_t)pool->nworkers;
	it->c = c;
	call_start(pool, c, NULL);
	*out = it;
	it = NULL;
out:
	ipc__pool_unlock(pool);
	free(it);
	return rc;
}

int ipc_pool_imap(ipc_pool *pool, ipc_task_fn fn, const void *in,
		  size_t in_size, size_t n, size_t out_size, size_t chunksize,
		  ipc_imap **it)
{
	return imap_start(pool, fn, in, in_size, n, out_size, chunksize, true,
			  it);
}

int ipc_pool_imap_unordered(ipc_pool *pool, ipc_task_fn fn, const void *in,
			    size_t in_size, size_t n, size_t out_size,
			    size_t chunksize, ipc_imap **it)
{
	return imap_start(pool, fn, in, in_size, n, out_size, chunksize, false,
			  it);
}

/* Hand out the next item of a finished chunk, if there is one: 1 (done),
 * 0 (none ready yet), -EMSGSIZE (cap too small; it stays). */
static int imap_take(struct pool_call *c, size_t *index, ssize_t *status,
		     void *out, size_t cap)
{
	size_t k, i = c->cursor_item, per = result_per_item(c);
	int64_t st = 0;

	if (c->ordered) {
		k = c->cursor;
		if (!c->chunk_done[k])
			return 0;
	} else {
		if (c->cursor >= c->done)
			return 0;
		k = c->order[c->cursor];
	}
	if (c->chunk_err[k] != 0) {
		st = c->chunk_err[k];
	} else {
		memcpy(&st, c->chunk_buf[k] + i * per, sizeof(st));
		if (st > (int64_t)c->out_size)
			st = -EPROTO; /* read from shared memory: check */
		if (st > 0 && (size_t)st > cap)
			return -EMSGSIZE;
		if (st > 0)
			memcpy(out, c->chunk_buf[k] + i * per + sizeof(st),
			       (size_t)st);
	}
	*index = k * c->chunksize + i;
	*status = (ssize_t)st;
	if (++c->cursor_item == chunk_count(c, k)) {
		free(c->chunk_buf[k]);
		c->chunk_buf[k] = NULL;
		c->cursor++;
		c->cursor_item = 0;
		c->consumed++;
	}
	return 1;
}

int ipc_imap_next(ipc_imap *it, size_t *index, ssize_t *status, void *out,
		  size_t cap, int timeout_ms)
{
	struct ipc__deadline dl;
	struct pool_call *c;
	ipc_pool *pool;
	int rc;

	if (it == NULL || index == NULL || status == NULL ||
	    (out == NULL && cap > 0))
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	c = it->c;
	pool = c->pool;
	if (pool != NULL)
		pthread_mutex_lock(&pool->lock);
	for (;;) {
		if (c->consumed == c->nchunks) {
			rc = IPC_ECLOSED; /* every item was handed out */
			break;
		}
		rc = imap_take(c, index, status, out, cap);
		if (rc != 0) {
			if (rc == 1) {
				rc = 0;
				if (pool != NULL)
					ipc__pool_feed(pool); /* window */
			}
			break;
		}
		if (c->pool == NULL) {
			rc = IPC_ECLOSED;
			break;
		}
		if (ipc__deadline_passed(&dl)) {
			rc = ipc__deadline_error(&dl);
			break;
		}
		struct ipc__deadline slice;
		ipc__deadline_capped(&slice, &dl, IPC__RECHECK_MS);
		ipc__pool_pump(pool, ipc__deadline_ms(&slice));
	}
	if (pool != NULL)
		ipc__pool_unlock(pool);
	return rc;
}

void ipc_imap_free(ipc_imap *it)
{
	struct pool_call *c;

	if (it == NULL)
		return;
	c = it->c;
	if (c->pool != NULL) {
		ipc_pool *pool = c->pool;
		pthread_mutex_lock(&pool->lock);
		ipc__pool_unlink_call(pool, c);
		pthread_mutex_unlock(&pool->lock);
	}
	ipc__call_free(c);
	free(it);
}
