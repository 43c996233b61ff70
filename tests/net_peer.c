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
 *   net_peer stream URL NAME KEY STOPFILE  put "m0", "m1"... (timeout 10 s
 *                                each) until the file STOPFILE exists,
 *                                printing the number acknowledged after
 *                                every 100 puts and at the end "total
 *                                <acknowledged> <tried>"
 *   net_peer drain URL NAME KEY  get and task_done until 2 s of silence,
 *                                print the count and how many distinct
 *                                "m<i>" messages were among them
 *   net_peer get1 URL NAME KEY MS   get one message (timeout MS), print
 *                                "got <len>" or the error name
 *   net_peer join URL NAME KEY MS   join, print the result's name
 *   net_peer putmsg URL NAME KEY TEXT  put TEXT once, print the result's name
 *   net_peer lockhold URL NAME KEY  connect to a Lock, acquire it, print
 *                                "held", then wait to be killed
 *   net_peer semhold URL NAME KEY   the same with one unit of a Semaphore
 *   net_peer lock URL NAME KEY MS   acquire a Lock (timeout MS), print the
 *                                result's name, release it
 *   net_peer barrierwait URL NAME KEY  wait on a Barrier for ever, print
 *                                the result's name (or index)
 * KEY "-" means no key. Exit 0 on success, 2.. on the failing step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"

/* The Lock, Semaphore and Barrier modes. */
static int sync_peer(const char *mode, const char *url, const char *name,
		     const ipc_net_attr *a, int ms)
{
	int rc;

	if (strcmp(mode, "lock") == 0) {
		ipc_lock *lk;
		if (ipc_lock_connect(&lk, url, name, a) != 0)
			return 3;
		rc = ipc_lock_acquire(lk, ms);
		printf("%s\n", ipc_err_name(rc));
		if (IPC_OK(rc))
			ipc_lock_release(lk);
		ipc_lock_close(lk);
		return rc == 0 ? 0 : 4;
	}
	if (strcmp(mode, "lockhold") == 0) {
		ipc_lock *lk;
		if (ipc_lock_connect(&lk, url, name, a) != 0)
			return 3;
		rc = ipc_lock_acquire(lk, 10000);
		if (!IPC_OK(rc))
			return 4;
	} else if (strcmp(mode, "semhold") == 0) {
		ipc_sem *sem;
		if (ipc_sem_connect(&sem, url, name, a) != 0)
			return 3;
		if (ipc_sem_acquire(sem, 10000) != 0)
			return 4;
	} else {
		ipc_barrier *b;
		if (ipc_barrier_connect(&b, url, name, a) != 0)
			return 3;
		rc = ipc_barrier_wait(b, IPC_FOREVER);
		if (rc >= 0)
			printf("%d\n", rc);
		else
			printf("%s\n", ipc_err_name(rc));
		ipc_barrier_close(b);
		return 0;
	}
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}

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
	if (strcmp(argv[1], "lock") == 0 || strcmp(argv[1], "lockhold") == 0 ||
	    strcmp(argv[1], "semhold") == 0 ||
	    strcmp(argv[1], "barrierwait") == 0)
		return sync_peer(argv[1], argv[2], argv[3], &a,
				 argc > 5 ? atoi(argv[5]) : 0);
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
	if (strcmp(argv[1], "stream") == 0 && argc > 5) {
		long i, ok = 0;
		for (i = 0; access(argv[5], F_OK) != 0; i++) {
			int len = snprintf(buf, sizeof(buf), "m%ld", i);
			if (ipc_queue_put(q, buf, (size_t)len, 10000) == 0 &&
			    ++ok % 100 == 0) {
				printf("%ld\n", ok);
				fflush(stdout);
			}
		}
		printf("total %ld %ld\n", ok, i);
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
