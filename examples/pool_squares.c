/* SPDX-License-Identifier: MIT */
/*
 * pool_squares.c — Pool.map of squares with an initializer (the
 * classic Pool example).
 *
 * A Pool keeps a fixed number of worker processes. Think of a bank with a
 * few counters: the workers are the counters, the tasks are customers. When
 * more customers arrive than there are counters, they queue, and each
 * counter serves the next one as soon as it is free — nobody opens a new
 * counter per customer. ipc_pool_map splits the items into chunks (several
 * customers per ticket), hands them out, and puts the results back in
 * input order.
 *
 * The function runs in the workers, which are fork()s of this process: it
 * must exist before the pool is made, and the items travel by copy.
 */
#include <stdint.h>

#include "example.h"

static void start_process(void *arg)
{
	(void)arg;
	printf("starting %s\n", ipc_current_process_name());
	fflush(stdout);
}

static void cala(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;
	*(int64_t *)out = x * x;
}

int main(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ipc_pool_attr attr = { .processes = (int)(ncpu > 0 ? ncpu : 1),
			       .initializer = start_process };
	int64_t in[10], out[10];
	ipc_pool *pool;

	for (int i = 0; i < 10; i++)
		in[i] = i;
	ex_check(ipc_pool_new(&pool, &attr), "ipc_pool_new");
	ex_check(ipc_pool_map(pool, cala, in, sizeof(in[0]), out,
			      sizeof(out[0]), 10, 0),
		 "ipc_pool_map");
	ex_check(ipc_pool_close(pool), "close");
	ex_check(ipc_pool_join(pool), "join");
	printf("[");
	for (int i = 0; i < 10; i++)
		printf("%s%lld", i ? ", " : "", (long long)out[i]);
	printf("]\n");
	ipc_pool_free(pool);
	return 0;
}
