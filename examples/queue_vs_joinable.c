/* SPDX-License-Identifier: MIT */
/*
 * queue_vs_joinable.c — what is the difference between Queue and
 * JoinableQueue? (A question Python's documentation leaves open.)
 *
 * A Queue only moves messages: once a consumer has *taken* a message the
 * queue forgets it. A JoinableQueue also tracks each message until a
 * consumer says it is *done* (task_done). Two consequences, shown here:
 *
 *  1. Knowing when work is finished. With a Queue, "empty" only means every
 *     message was taken; the work may still be running. JoinableQueue's
 *     join() returns when every message put has been task_done'd.
 *
 *  2. Surviving a consumer crash. If a consumer dies after taking a
 *     message, a Queue has lost it. A JoinableQueue notices the death (the
 *     kernel reports it) and queues the unfinished task again for another
 *     consumer — so join() never waits for ever on a dead consumer.
 *
 * Use a Queue for streams of results or events where the taker's fate does
 * not matter; a JoinableQueue for work that must be finished.
 */
#include <signal.h>
#include <sys/mman.h>

#include "example.h"

struct shared {
	int processed;
	int taken;
};

static ipc_queue *q;
static ipc_event *finish;
static struct shared *sh;

/* Part 1 worker: take one message, then work until main says finish. */
static int slow_worker(void *arg)
{
	char buf[16];
	bool joinable = arg != NULL;

	ex_check((int)ipc_queue_get(q, buf, sizeof(buf), 10000), "get");
	if (!joinable)
		ex_check(ipc_event_wait(finish, 10000), "wait");
	else
		ex_sleep_ms(100);
	__atomic_add_fetch(&sh->processed, 1, __ATOMIC_SEQ_CST);
	if (joinable)
		ex_check(ipc_queue_task_done(q), "task_done");
	return 0;
}

static void part1(bool joinable)
{
	ipc_process *w[3];

	sh->processed = 0;
	ex_check(joinable ? ipc_joinable_queue_new(&q, 0)
			  : ipc_queue_new(&q, 0),
		 "new");
	for (int i = 0; i < 3; i++)
		ex_check(ipc_queue_put(q, "job", 3, 0), "put");
	for (int i = 0; i < 3; i++)
		w[i] = ex_spawn("worker", slow_worker, joinable ? q : NULL);
	if (!joinable) {
		while (!ipc_queue_empty(q))
			ex_sleep_ms(5);
		ex_log("Queue: empty() is true, but %d of 3 jobs are processed "
		       "- empty means taken, not done",
		       __atomic_load_n(&sh->processed, __ATOMIC_SEQ_CST));
		ipc_event_set(finish);
	} else {
		ex_check(ipc_queue_join(q, 10000), "join");
		ex_log("JoinableQueue: join() returned with %d of 3 jobs "
		       "processed - join means done",
		       __atomic_load_n(&sh->processed, __ATOMIC_SEQ_CST));
	}
	for (int i = 0; i < 3; i++)
		ex_join(w[i]);
	ipc_queue_close(q);
}

/* Part 2: a consumer that takes the job and is killed before finishing. */
static int doomed_worker(void *arg)
{
	char buf[16];
	(void)arg;

	ex_check((int)ipc_queue_get(q, buf, sizeof(buf), 10000), "get");
	__atomic_store_n(&sh->taken, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause(); /* "working" until killed */
	return 0;
}

static int rescue_worker(void *arg)
{
	char buf[16];
	bool joinable = arg != NULL;
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 2000);

	if (n == IPC_ETIMEDOUT) {
		ex_log("no job for me: it was lost with the dead consumer");
		return 0;
	}
	ex_check((int)n, "get");
	ex_log("got the dead consumer's job again and finished it");
	if (joinable)
		ex_check(ipc_queue_task_done(q), "task_done");
	return 0;
}

static void part2(bool joinable)
{
	ipc_process *doomed, *rescuer;

	sh->taken = 0;
	ex_check(joinable ? ipc_joinable_queue_new(&q, 0)
			  : ipc_queue_new(&q, 0),
		 "new");
	ex_check(ipc_queue_put(q, "job", 3, 0), "put");
	doomed = ex_spawn("doomed", doomed_worker, NULL);
	while (!__atomic_load_n(&sh->taken, __ATOMIC_SEQ_CST))
		ex_sleep_ms(1);
	ipc_process_kill(doomed);
	ex_join(doomed);
	ex_log("%s: consumer holding the job was SIGKILLed",
	       joinable ? "JoinableQueue" : "Queue");
	rescuer = ex_spawn("rescuer", rescue_worker, joinable ? q : NULL);
	ex_join(rescuer);
	if (joinable)
		ex_log("JoinableQueue: join() = %s",
		       ipc_err_name(ipc_queue_join(q, 1000)));
	ipc_queue_close(q);
}

int main(void)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	ex_check(ipc_event_new(&finish), "event");
	ex_log("1. knowing when the work is finished");
	part1(false);
	part1(true);
	ex_log("2. a consumer dies holding a job");
	part2(false);
	part2(true);
	ipc_event_close(finish);
	return 0;
}
