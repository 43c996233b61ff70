/* SPDX-License-Identifier: MIT */
/*
 * queue_basic.c — Queue between processes (the classic Python "pass
 * messages between processes").
 *
 * One producer process puts ten messages; two consumer processes get them
 * until the queue is shut down. Messages are byte strings, copied in and
 * out, delivered in order. Shutting the queue down is libipc's answer to
 * Python's "put a None per consumer" sentinel idiom: puts fail from then on,
 * gets return what is left and then IPC_ECLOSED, and blocked getters wake.
 */
#include "example.h"

static ipc_queue *q;

static int producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++) {
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "task %d", i);
		ex_check(ipc_queue_put(q, msg, (size_t)len, IPC_FOREVER),
			 "put");
		ex_log("put '%s'", msg);
	}
	return 0;
}

static int consumer(void *arg)
{
	char msg[64];
	int n_got = 0;
	(void)arg;

	for (;;) {
		ssize_t n = ipc_queue_get(q, msg, sizeof(msg) - 1, IPC_FOREVER);
		if (n == IPC_ECLOSED)
			break;
		ex_check((int)n, "get");
		msg[n] = '\0';
		ex_log("got '%s'", msg);
		n_got++;
	}
	ex_log("queue shut down; I got %d messages", n_got);
	return 0;
}

int main(void)
{
	ipc_process *p, *c[2];

	ex_check(ipc_queue_new(&q, 0), "ipc_queue_new");
	c[0] = ex_spawn("consumer-1", consumer, NULL);
	c[1] = ex_spawn("consumer-2", consumer, NULL);
	p = ex_spawn("producer", producer, NULL);
	int rc = ex_join(p);
	/* Everything is in the queue: close it for puts; consumers drain it. */
	ex_check(ipc_queue_shutdown(q), "shutdown");
	rc |= ex_join(c[0]) | ex_join(c[1]);
	ex_log("all done, %ld left in the queue", ipc_queue_qsize(q));
	ipc_queue_close(q);
	return rc;
}
