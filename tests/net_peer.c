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
 *                                print the count and how many distinct
 *                                "m<i>" messages were among them
 *   net_peer get1 URL NAME KEY MS   get one message (timeout MS), print
 *                                "got <len>" or the error name
 *   net_peer join URL NAME KEY MS   join, print the result's name
 *   net_peer putmsg URL NAME KEY TEXT  put TEXT once, print the result's name
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
	if (strcmp(argv[1], "get1") == 0 && argc > 5) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), atoi(argv[5]));
		if (n >= 0)
			printf("got %zd\n", n);
		else
			printf("%s\n", ipc_err_name((int)n));
		fflush(stdout);
		ipc_queue_close(q);
		return n >= 0 ? 0 : 4;
	}
	if (strcmp(argv[1], "join") == 0 && argc > 5) {
		rc = ipc_queue_join(q, atoi(argv[5]));
		printf("%s\n", ipc_err_name(rc));
		ipc_queue_close(q);
		return rc == 0 ? 0 : 4;
	}
	if (strcmp(argv[1], "putmsg") == 0 && argc > 5) {
		rc = ipc_queue_put(q, argv[5], strlen(argv[5]), 10000);
		printf("%s\n", ipc_err_name(rc));
		ipc_queue_close(q);
		return rc == 0 ? 0 : 4;
	}
	if (strcmp(argv[1], "drain") == 0) {
		static unsigned char seen[1 << 20];
		long n = 0, distinct = 0;
		ssize_t len;
		while ((len = ipc_queue_get(q, buf, sizeof(buf) - 1, 2000)) >=
		       0) {
			long i;
			n++;
			buf[len] = '\0';
			i = buf[0] == 'm' ? atol(buf + 1) : -1;
			if (i >= 0 && i < (long)sizeof(seen) && !seen[i]++)
				distinct++;
			if (ipc_queue_unfinished(q) >= 0)
				ipc_queue_task_done(q);
		}
		printf("%ld %ld\n", n, distinct);
		ipc_queue_close(q);
		return 0;
	}
	return 5;
}
