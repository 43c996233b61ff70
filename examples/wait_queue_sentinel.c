/* SPDX-License-Identifier: MIT */
/*
 * wait_queue_sentinel.c — one loop that waits on a queue and on a
 * process's sentinel at once (Python's multiprocessing.connection.wait on
 * [queue._reader, p.sentinel]).
 *
 * A producer process puts five results, a little apart, then ends. The
 * main loop sleeps in ipc_wait until either a result is queued or the
 * producer has ended; it drains the queue whenever it is ready, and stops
 * once the producer has ended and nothing is left. ipc_wait takes nothing:
 * the loop gets with IPC_NOWAIT after each wake-up.
 */
#include "example.h"

#define RESULTS 5

static ipc_queue *results;

static int producer(void *arg)
{
	ipc_event *never;

	(void)arg;
	/* "A little apart": an Event nobody sets, waited on with a timeout. */
	ex_check(ipc_event_new(&never), "ipc_event_new");
	for (int i = 1; i <= RESULTS; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "result %d", i);
		ipc_event_wait(never, 50);
		ex_log("putting '%s'",
		       msg); /* before: the get may come first */
		ex_check(ipc_queue_put(results, msg, (size_t)n, IPC_FOREVER),
			 "ipc_queue_put");
	}
	ipc_event_close(never);
	ex_log("producer done");
	return 0;
}

/* Take every result queued now; how many. */
static int drain(void)
{
	char buf[64];
	ssize_t n;
	int got = 0;

	while ((n = ipc_queue_get(results, buf, sizeof(buf) - 1, IPC_NOWAIT)) >=
	       0) {
		buf[n] = '\0';
		ex_log("got '%s'", buf);
		got++;
	}
	if (n != IPC_EAGAIN)
		ex_check((int)n, "ipc_queue_get");
	return got;
}

int main(void)
{
	ipc_process *kid;
	ipc_wait_item it[2];
	int got = 0, code = -1;

	ex_check(ipc_queue_new(&results, 0), "ipc_queue_new");
	kid = ex_spawn("producer", producer, NULL);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_QUEUE, .queue = results };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_PROCESS, .process = kid };
	for (;;) {
		ex_check(ipc_wait(it, 2, IPC_FOREVER), "ipc_wait");
		if (it[0].ready)
			got += drain();
		if (it[1].ready) {
			got += drain(); /* what it put just before it ended */
			break;
		}
	}
	ex_check(ipc_process_join(kid, IPC_FOREVER), "ipc_process_join");
	ipc_process_exitcode(kid, &code);
	ex_log("producer ended with code %d; %d results", code, got);
	ipc_process_free(kid);
	ipc_queue_close(results);
	return got == RESULTS && code == 0 ? 0 : 1;
}
