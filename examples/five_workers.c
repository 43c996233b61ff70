/* SPDX-License-Identifier: MIT */
/*
 * five_workers.c — five processes that each sleep 300 ms take about 300 ms
 * in all, not 1.5 s: they run at the same time (the Python version's
 * @spend_time).
 *
 * To show it without trusting the clock alone, each worker counts itself in
 * shared memory when it starts and notes how many were running: the last
 * one to start sees all five.
 */
#include <stdatomic.h>
#include <sys/mman.h>

#include "example.h"

static _Atomic int *running;

static int worker(void *arg)
{
	(void)arg;
	int now = atomic_fetch_add(running, 1) + 1;
	/* Wait (bounded) until all five have started, then "work". */
	for (int i = 0; i < 10000 && atomic_load(running) < 5; i++)
		ex_sleep_ms(1);
	ex_sleep_ms(300);
	ex_log("%s done (was #%d to start)", ipc_current_process_name(), now);
	return 0;
}

int main(void)
{
	ipc_process *w[5];
	struct timespec t0, t1;
	int rc = 0;

	running = mmap(NULL, sizeof(*running), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (running == MAP_FAILED)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "worker-%d", i);
		w[i] = ex_spawn(name, worker, NULL);
	}
	for (int i = 0; i < 5; i++)
		rc |= ex_join(w[i]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ex_log("%d workers were running at the same time",
	       atomic_load(running));
	ex_log("spend is %.2f s (five 0.30 s sleeps, together)",
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return rc;
}
