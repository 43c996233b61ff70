/* SPDX-License-Identifier: MIT */
/*
 * cluster_node — the programs of the cross-host demo, one binary.
 *
 *   cluster_node boss   WHERE N    put tasks 1..N on the "jobs"
 *                                  JoinableQueue, show live progress,
 *                                  join, then collect the "results" queue
 *                                  and verify the total
 *   cluster_node worker WHERE ID   take tasks, compute, put the result,
 *                                  task_done, until the jobs queue is shut
 *                                  down
 *
 * WHERE is "local" (open the named queues on this host, as a program
 * written for one machine does) or a URL of an ipc-serve that serves them
 * (tcp://HOST:PORT). The key, if any, is read from the file named by
 * $IPC_KEY_FILE. Queue names get the suffix $CLUSTER_TAG if set. The
 * program text is the same in both cases: only how the handle is made
 * differs.
 *
 * Work: task t's result is t*t, computed slowly (a few ms) so that a
 * worker can be killed mid-run. At-least-once delivery means a task whose
 * worker died after putting its result but before task_done is done
 * again; the boss counts each task id once and checks that every id
 * 1..N came back and that the sum of squares is N(N+1)(2N+1)/6.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libipc/ipc.h>

static char keybuf[4096];
static ipc_net_attr net = { .timeout_ms = 5000 };

static void die(const char *what, int rc)
{
	fprintf(stderr, "cluster_node: %s: %s\n", what, ipc_strerror(rc));
	exit(1);
}

static void read_key(void)
{
	const char *path = getenv("IPC_KEY_FILE");
	FILE *f;
	size_t n;

	if (path == NULL)
		return;
	f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	n = fread(keybuf, 1, sizeof(keybuf), f);
	fclose(f);
	if (n > 0 && keybuf[n - 1] == '\n')
		n--;
	net.authkey = keybuf;
	net.authkey_len = n;
}

static ipc_queue *open_queue(const char *where, const char *base, bool joinable)
{
	const char *tag = getenv("CLUSTER_TAG");
	char name[128];
	ipc_queue *q;
	int rc;

	snprintf(name, sizeof(name), "%s%s", base, tag ? tag : "");
	if (strcmp(where, "local") == 0) {
		ipc_queue_attr a = { .joinable = joinable };
		rc = ipc_queue_open(&q, name, IPC_CREATE, &a);
	} else {
		/* The server may still be starting: retry for a while. */
		for (int i = 0; i < 50; i++) {
			rc = ipc_queue_connect(&q, where, name, &net);
			if (rc != IPC_ETIMEDOUT && rc != IPC_ECONNREFUSED)
				break;
		}
	}
	if (rc != 0)
		die(name, rc);
	return q;
}

static int worker(const char *where, const char *id)
{
	ipc_queue *jobs = open_queue(where, "jobs", true);
	ipc_queue *results = open_queue(where, "results", false);
	long done = 0;

	for (;;) {
		uint64_t t, r[2];
		ssize_t n = ipc_queue_get(jobs, &t, sizeof(t), IPC_FOREVER);
		if (n == IPC_ECLOSED)
			break;
		if (n != sizeof(t))
			die("get", n < 0 ? (int)n : IPC_EPROTO);
		usleep(3000); /* the "work" */
		r[0] = t;
		r[1] = t * t;
		int rc = ipc_queue_put(results, r, sizeof(r), IPC_FOREVER);
		if (rc != 0)
			die("put result", rc);
		rc = ipc_queue_task_done(jobs);
		if (rc != 0)
			die("task_done", rc);
		if (++done % 100 == 0)
			printf("worker %s: %ld tasks done\n", id, done);
		fflush(stdout);
	}
	printf("worker %s: queue shut down after %ld tasks\n", id, done);
	ipc_queue_close(results);
	ipc_queue_close(jobs);
	return 0;
}

static int boss(const char *where, long n)
{
	ipc_queue *jobs = open_queue(where, "jobs", true);
	ipc_queue *results = open_queue(where, "results", false);
	unsigned char *seen = calloc((size_t)n + 1, 1);
	uint64_t sum = 0, want = (uint64_t)n * (n + 1) * (2 * n + 1) / 6;
	long distinct = 0, redone = 0;
	int rc;

	if (seen == NULL)
		die("calloc", IPC_ENOMEM);
	for (uint64_t t = 1; t <= (uint64_t)n; t++) {
		rc = ipc_queue_put(jobs, &t, sizeof(t), IPC_FOREVER);
		if (rc != 0)
			die("put task", rc);
	}
	printf("boss: %ld tasks queued\n", n);
	fflush(stdout);
	while ((rc = ipc_queue_join(jobs, 1000)) == IPC_ETIMEDOUT) {
		printf("boss: progress %ld/%ld tasks unfinished, %ld results\n",
		       ipc_queue_unfinished(jobs), n, ipc_queue_qsize(results));
		fflush(stdout);
	}
	if (rc != 0)
		die("join", rc);
	printf("boss: join returned, every task done\n");
	for (;;) {
		uint64_t r[2];
		ssize_t got = ipc_queue_get(results, r, sizeof(r), IPC_NOWAIT);
		if (got == IPC_EAGAIN)
			break;
		if (got != sizeof(r) || r[0] < 1 || r[0] > (uint64_t)n ||
		    r[1] != r[0] * r[0])
			die("bad result", got < 0 ? (int)got : IPC_EPROTO);
		if (seen[r[0]]++) {
			redone++;
			continue;
		}
		distinct++;
		sum += r[1];
	}
	ipc_queue_shutdown(jobs); /* the workers stop */
	printf("boss: %ld distinct results (%ld tasks redone after a worker "
	       "died), sum of squares %llu, expected %llu: %s\n",
	       distinct, redone, (unsigned long long)sum,
	       (unsigned long long)want,
	       distinct == n && sum == want ? "VERIFIED" : "WRONG");
	free(seen);
	ipc_queue_close(results);
	ipc_queue_close(jobs);
	return distinct == n && sum == want ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: cluster_node boss WHERE N | "
				"cluster_node worker WHERE ID\n");
		return 2;
	}
	read_key();
	if (strcmp(argv[1], "boss") == 0)
		return boss(argv[2], atol(argv[3]));
	if (strcmp(argv[1], "worker") == 0)
		return worker(argv[2], argv[3]);
	return 2;
}
