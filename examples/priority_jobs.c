/* SPDX-License-Identifier: MIT */
/*
 * priority_jobs.c — a PriorityQueue of jobs (the study note's priority
 * queue: the most urgent job first, first come first served among equals).
 *
 * The boss queues six jobs with priorities (lower is more urgent), then
 * starts a worker that takes them one by one; a shutdown after the last
 * job tells the worker there is no more work. The worker sees the urgent
 * jobs first, and the two priority-2 jobs in the order they were queued.
 */
#include "example.h"

static ipc_pqueue *jobs;

static int worker(void *arg)
{
	char job[64];
	int64_t prio;
	ssize_t n;

	(void)arg;
	while ((n = ipc_pqueue_get(jobs, &prio, job, sizeof(job) - 1,
				   IPC_FOREVER)) >= 0) {
		job[n] = '\0';
		ex_log("doing (priority %lld) %s", (long long)prio, job);
	}
	ex_log("no more jobs: %s", ipc_err_name((int)n));
	return n == IPC_ECLOSED ? 0 : 1;
}

int main(void)
{
	static const struct {
		int prio;
		const char *what;
	} jobs_to_queue[] = {
		{ 3, "water the plants" }, { 1, "fix the build" },
		{ 2, "review patch A" },   { 5, "tidy the desk" },
		{ 2, "review patch B" },   { 0, "restore the server" },
	};
	ipc_process *w;

	ex_check(ipc_pqueue_new(&jobs, 16, 64), "ipc_pqueue_new");
	for (size_t i = 0; i < sizeof(jobs_to_queue) / sizeof(jobs_to_queue[0]);
	     i++) {
		ex_check(ipc_pqueue_put(jobs, jobs_to_queue[i].prio,
					jobs_to_queue[i].what,
					strlen(jobs_to_queue[i].what),
					IPC_FOREVER),
			 "ipc_pqueue_put");
		ex_log("queued (priority %d) %s", jobs_to_queue[i].prio,
		       jobs_to_queue[i].what);
	}
	ex_check(ipc_pqueue_shutdown(jobs), "ipc_pqueue_shutdown");
	w = ex_spawn("worker", worker, NULL);
	if (ex_join(w) != 0)
		return 1;
	ipc_pqueue_close(jobs);
	return 0;
}
