/* SPDX-License-Identifier: MIT */
/*
 * joinable_queue.c — JoinableQueue with task_done() and join().
 *
 * Three worker processes take tasks and call task_done() after each; the
 * main process puts twelve tasks and then join()s: join returns only when
 * every task put has been marked done — not merely taken off the queue.
 * Then it shuts the queue down and the workers exit.
 */
#include <sys/mman.h>

#include "example.h"

static ipc_queue *tasks;
static int *processed; /* shared; each worker adds with an atomic */

static int worker(void *arg)
{
	char task[32];
	(void)arg;

	for (;;) {
		ssize_t n = ipc_queue_get(tasks, task, sizeof(task) - 1,
					  IPC_FOREVER);
		if (n == IPC_ECLOSED)
			return 0;
		ex_check((int)n, "get");
		task[n] = '\0';
		ex_log("working on %s", task);
		ex_sleep_ms(30); /* the work */
		__atomic_add_fetch(processed, 1, __ATOMIC_SEQ_CST);
		ex_check(ipc_queue_task_done(tasks), "task_done");
	}
}

int main(void)
{
	ipc_process *w[3];
	int rc = 0;

	processed = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (processed == MAP_FAILED)
		return 1;
	ex_check(ipc_joinable_queue_new(&tasks, 0), "ipc_joinable_queue_new");
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "worker-%d", i + 1);
		w[i] = ex_spawn(name, worker, NULL);
	}
	for (int i = 0; i < 12; i++) {
		char task[32];
		int len = snprintf(task, sizeof(task), "task-%02d", i);
		ex_check(ipc_queue_put(tasks, task, (size_t)len, IPC_FOREVER),
			 "put");
	}
	ex_log("12 tasks queued, %ld unfinished; joining",
	       ipc_queue_unfinished(tasks));
	ex_check(ipc_queue_join(tasks, 30000), "join");
	ex_log("join() returned: %d of 12 tasks processed, %ld unfinished",
	       __atomic_load_n(processed, __ATOMIC_SEQ_CST),
	       ipc_queue_unfinished(tasks));
	ipc_queue_shutdown(tasks);
	for (int i = 0; i < 3; i++)
		rc |= ex_join(w[i]);
	ipc_queue_close(tasks);
	return rc;
}
