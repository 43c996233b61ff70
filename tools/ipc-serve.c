/* SPDX-License-Identifier: MIT */
/*
 * ipc-serve — serve named libipc queues over the network.
 *
 *   ipc-serve URL [--key-file FILE | --insecure] [--lease MS]
 *             [--queue NAME]... [--joinable-queue NAME]...
 *
 * Each named queue is opened, or created with default sizes if it does
 * not exist, and served under its own name at URL until SIGTERM or SIGINT,
 * which stop the server cleanly (remote consumers' unfinished tasks are
 * requeued). Connects, authentication failures, lease expiries and dropped
 * frames are logged to stderr, one line each. See ipc-serve(1).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libipc/ipc.h"

#define MAX_QUEUES 64
#define MAX_KEY 4096

static void log_line(void *arg, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ ipc-serve[%d]: %s\n", when,
		ts.tv_nsec / 1000000, (int)getpid(), msg);
}

static void usage(void)
{
	fprintf(stderr, "usage: ipc-serve URL [--key-file FILE | --insecure] "
			"[--lease MS]\n"
			"                 [--queue NAME]... [--joinable-queue "
			"NAME]...\n");
	exit(2);
}

/* Read the key file: its bytes, less one trailing newline. */
static size_t read_key(const char *path, char *key)
{
	struct stat st;
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		fprintf(stderr, "ipc-serve: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		fprintf(stderr,
			"ipc-serve: warning: %s is readable by "
			"others (chmod 600 it)\n",
			path);
	n = fread(key, 1, MAX_KEY, f);
	fclose(f);
	if (n > 0 && key[n - 1] == '\n')
		n--;
	if (n == 0) {
		fprintf(stderr, "ipc-serve: %s: empty key\n", path);
		exit(1);
	}
	return n;
}

int main(int argc, char **argv)
{
	static char key[MAX_KEY];
	ipc_net_attr attr = { .log = log_line };
	ipc_queue *queues[MAX_QUEUES];
	const char *names[MAX_QUEUES];
	bool joinable[MAX_QUEUES];
	int nq = 0, rc, sig;
	const char *url = NULL;
	ipc_server *srv;
	sigset_t set;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--key-file") == 0 && has_val) {
			attr.authkey_len = read_key(argv[++i], key);
			attr.authkey = key;
		} else if (strcmp(a, "--insecure") == 0) {
			attr.insecure = true;
		} else if (strcmp(a, "--lease") == 0 && has_val) {
			attr.lease_ms = atoi(argv[++i]);
			if (attr.lease_ms <= 0)
				usage();
		} else if ((strcmp(a, "--queue") == 0 ||
			    strcmp(a, "--joinable-queue") == 0) &&
			   has_val) {
			if (nq == MAX_QUEUES)
				usage();
			joinable[nq] = a[2] == 'j';
			names[nq++] = argv[++i];
		} else if (a[0] != '-' && url == NULL) {
			url = a;
		} else {
			usage();
		}
	}
	if (url == NULL || nq == 0)
		usage();
	/* Signals go to sigwait below, not to the server's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < nq; i++) {
		ipc_queue_attr qa = { .joinable = joinable[i] };
		rc = ipc_queue_open(&queues[i], names[i], IPC_CREATE, &qa);
		if (rc != 0) {
			fprintf(stderr, "ipc-serve: queue %s: %s\n", names[i],
				ipc_strerror(rc));
			return 1;
		}
	}
	rc = ipc_server_start(&srv, url, &attr);
	if (rc == IPC_EPERM) {
		fprintf(stderr,
			"ipc-serve: refusing to serve %s without a key "
			"(use --key-file, a loopback or ipc:// URL, or "
			"--insecure)\n",
			url);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "ipc-serve: %s: %s\n", url, ipc_strerror(rc));
		return 1;
	}
	for (int i = 0; i < nq; i++) {
		rc = ipc_server_add_queue(srv, names[i], queues[i]);
		if (rc != 0) {
			fprintf(stderr, "ipc-serve: serving %s: %s\n", names[i],
				ipc_strerror(rc));
			ipc_server_stop(srv);
			return 1;
		}
		fprintf(stderr, "ipc-serve: serving %s %s at %s%s\n",
			joinable[i] ? "joinable queue" : "queue", names[i], url,
			attr.authkey ? " (authenticated, encrypted)" : "");
	}
	sigwait(&set, &sig);
	fprintf(stderr, "ipc-serve: %s, stopping\n",
		sig == SIGTERM ? "SIGTERM" : "SIGINT");
	ipc_server_stop(srv);
	for (int i = 0; i < nq; i++)
		ipc_queue_close(queues[i]);
	fprintf(stderr, "ipc-serve: stopped\n");
	return 0;
}
