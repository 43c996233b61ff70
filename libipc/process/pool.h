/* SPDX-License-Identifier: MIT */
/*
 * pool.h — what pool.c (workers, results, apply, lifetime) and
 * pool_call.c (map, map_async, imap, starmap) share. Internal.
 *
 * Everything here lives in the pool's own process and is guarded by the
 * pool's mutex (ipc_pool.lock) unless a comment says otherwise.
 */
#ifndef LIBIPC_POOL_H
#define LIBIPC_POOL_H

#include "libipc/core/core.h"

#define TASK_PAYLOAD_MAX (1u << 20)
#define RESULT_CAP (64u << 10)
#define QUEUE_CAPACITY (8u << 20)
#define MSG_MAX (TASK_PAYLOAD_MAX + 64)
#define CANCEL_SLOTS 256

/* Task kinds, as the workers see them:
 *   MAP    ipc_map_fn over t_count items of t_in_size; result: the
 *          t_count outputs of t_out_size, back to back
 *   APPLY  one ipc_task_fn call on t_in_size bytes, cap RESULT_CAP;
 *          result: its output, r_status its return value
 *   ITEMS  ipc_task_fn over t_count items of t_in_size, cap t_out_size;
 *          result: per item an int64_t return value then t_out_size bytes */
enum { TASK_MAP = 1, TASK_APPLY = 2, TASK_ITEMS = 3 };
enum { POOL_RUNNING, POOL_CLOSED, POOL_TERMINATED };

struct task_hdr {
	uint64_t t_id;
	uint32_t t_kind;
	uint32_t t_count;    /* items in a chunk */
	uint64_t t_fn;	     /* function pointer, valid in the forked workers */
	uint64_t t_in_size;  /* item size (APPLY: argument length) */
	uint64_t t_out_size; /* result item size (ITEMS: each item's cap) */
};

struct result_hdr {
	uint64_t r_id;
	int64_t r_status; /* MAP, ITEMS: 0; APPLY: fn's return value */
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
	struct ipc_result *next; /* the pool's list of results */
	ipc_pool *pool;		 /* NULL once the pool is gone */
	uint64_t id;		 /* apply: its task; map_async: 0 */
	struct pool_call *call;	 /* map_async: its call, else NULL */
	bool ready;
	bool cb_due; /* ready, and a callback is still to run */
	ssize_t status;
	void *buf;
	size_t len;
	ipc_pool_callbacks cb;
};

/* One multi-item call: a map, map_async, imap or starmap. Its items go
 * out in chunks, task ids first_id .. first_id + nchunks - 1, fed to the
 * task queue without blocking whenever the pool pumps. */
struct pool_call {
	struct pool_call *next; /* the pool's list of calls */
	ipc_pool *pool;		/* NULL once the pool is gone */
	int kind;		/* TASK_MAP or TASK_ITEMS */
	uint64_t fn;
	uint64_t first_id;
	size_t n, nchunks, chunksize, in_size, out_size;
	const uint8_t *in;	   /* fixed-size items, or NULL */
	const ipc_pool_args *args; /* starmap: one item per chunk */
	uint8_t *out;		   /* results in place, or NULL (imap) */
	ssize_t *status;	   /* ITEMS in place: per-item returns */
	uint8_t *chunk_done;	   /* each chunk counts once */
	int32_t *chunk_err;	   /* 0, or why the chunk failed */
	uint8_t **chunk_buf;	   /* imap: a done chunk's result bytes */
	size_t sent, done;
	size_t window;	      /* imap: chunks sent and not consumed, at most */
	size_t consumed;      /* imap: chunks whose items were all returned */
	bool stop_on_failure; /* map: a dead worker cancels what is unsent */
	bool failed;	      /* a chunk failed */
	bool iter;	      /* imap: results kept per chunk for next() */
	bool ordered;	      /* imap: in input order */
	int first_err;	      /* the first chunk's failure, or 0 */
	size_t *order;	      /* unordered imap: chunks as they finished */
	size_t cursor;	      /* imap: next chunk (or index into order) */
	size_t cursor_item;   /* imap: next item inside that chunk */
	ipc_result *result;   /* map_async: its result, or NULL */
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
	struct pool_call *calls;
	uint8_t *rbuf; /* one result message */
	uint8_t *tbuf; /* one task message, for feeding calls */
};

/* pool.c */
void ipc__pool_pump(ipc_pool *pool, int ms);
void ipc__pool_unlock(ipc_pool *pool); /* then run due callbacks */
void ipc__pool_result_ready(ipc_result *r, ssize_t status);

/* pool_call.c */
void ipc__pool_feed(ipc_pool *pool);
struct pool_call *ipc__pool_find_call(ipc_pool *pool, uint64_t id);
void ipc__call_chunk_result(struct pool_call *c, size_t k, const uint8_t *data,
			    size_t len);
void ipc__call_chunk_fail(struct pool_call *c, size_t k, int err);
void ipc__call_fail_all(struct pool_call *c, int err);
void ipc__pool_unlink_call(ipc_pool *pool, struct pool_call *c);
void ipc__call_free(struct pool_call *c); /* already off the pool's list */

#endif /* LIBIPC_POOL_H */
