/* SPDX-License-Identifier: MIT */
/*
 * pool_imap_unordered.c — Pool.imap_unordered over a slow function, each
 * result printed the moment it arrives.
 *
 * Eight workers start the eight jobs together; job i sleeps (8 - i) * 40
 * ms, so the later jobs finish first: the results come back (on an idle
 * machine) in reverse, not in input order, and the first ones are printed
 * while the slow ones still run. Each result carries the
 * name of the worker that computed it. With ipc_pool_imap instead, the
 * same loop would print them in input order.
 */
#include <stdint.h>

#include "example.h"

#define JOBS 8

struct answer {
	int64_t square;
	char worker[24];
};

static ssize_t slow_square(const void *arg, size_t len, void *out, size_t cap)
{
	int64_t x = *(const int64_t *)arg;
	struct answer *a = out;

	if (len != sizeof(x) || cap < sizeof(*a))
		return -1;
	ex_sleep_ms((JOBS - x) * 40);
	a->square = x * x;
	snprintf(a->worker, sizeof(a->worker), "%s",
		 ipc_current_process_name());
	return sizeof(*a);
}

int main(void)
{
	int64_t jobs[JOBS];
	ipc_pool *pool;
	ipc_imap *it;
	struct answer a;
	size_t index;
	ssize_t status;
	int rc, got = 0;

	for (int i = 0; i < JOBS; i++)
		jobs[i] = i;
	ex_check(ipc_pool_new(&pool, &(ipc_pool_attr){ .processes = JOBS }),
		 "ipc_pool_new");
	ex_check(ipc_pool_imap_unordered(pool, slow_square, jobs,
					 sizeof(jobs[0]), JOBS, sizeof(a), 1,
					 &it),
		 "ipc_pool_imap_unordered");
	while ((rc = ipc_imap_next(it, &index, &status, &a, sizeof(a),
				   IPC_FOREVER)) == 0) {
		ex_check((int)status, "slow_square");
		ex_log("job %zu: %lld (by %s)", index, (long long)a.square,
		       a.worker);
		got++;
	}
	if (rc != IPC_ECLOSED) /* the end of the results */
		ex_check(rc, "ipc_imap_next");
	ex_log("%d of %d results", got, JOBS);
	ipc_imap_free(it);
	ex_check(ipc_pool_close(pool), "ipc_pool_close");
	ex_check(ipc_pool_join(pool), "ipc_pool_join");
	ipc_pool_free(pool);
	return got == JOBS ? 0 : 1;
}
