/* SPDX-License-Identifier: MIT */
/*
 * net_peer.c — a remote queue client in a fresh process, for the tests.
 *
 * Criterion's own runner talks nanomsg inside every test process, and
 * nanomsg is not fork-safe, so a test that needs a remote client in
 * another process forks and execs this program instead.
 *
 *   net_peer hold URL NAME KEY   connect, get one message, print "got <len>"
 *                                on stdout, then wait to be killed
 *   net_peer put URL NAME KEY N  put N messages "m<i>" (timeout 10 s each),
 *                                print the number acknowledged
 *   net_peer drain URL NAME KEY  get and task_done until 2 s of silence,
 *                                print the count
 * KEY "-" means no key. Exit 0 on success, 2.. on the failing step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"

int main(int argc, char **argv)
{
	ipc_net_attr a = { .timeout_ms = 5000 };
	ipc_queue *q;
	char buf[256];
	int rc;

	if (argc < 5)
		return 2;
	if (strcmp(argv[4], "-") != 0) {
		a.authkey = argv[4];
		a.authkey_len = strlen(argv[4]);
	}
	rc = ipc_queue_connect(&q, argv[2], argv[3], &a);
	if (rc != 0) {
		fprintf(stderr, "net_peer: connect: %s\n", ipc_strerror(rc));
		return 3;
	}
	if (strcmp(argv[1], "hold") == 0) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 10000);
		if (n < 0)
			return 4;
		printf("got %zd\n", n);
		fflush(stdout);
		for (;;)
			pause();
	}
	if (strcmp(argv[1], "put") == 0 && argc > 5) {
		long n = atol(argv[5]), ok = 0;
		for (long i = 0; i < n; i++) {
			int len = snprintf(buf, sizeof(buf), "m%ld", i);
			if (ipc_queue_put(q, buf, (size_t)len, 10000) == 0)
				ok++;
		}
		printf("%ld\n", ok);
		ipc_queue_close(q);
		return 0;
	}
	if (strcmp(argv[1], "drain") == 0) {
		long n = 0;
		while (ipc_queue_get(q, buf, sizeof(buf), 2000) >= 0) {
			n++;
			if (ipc_queue_unfinished(q) >= 0)
				ipc_queue_task_done(q);
		}
		printf("%ld\n", n);
		ipc_queue_close(q);
		return 0;
	}
	return 5;
}
