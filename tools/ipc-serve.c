/* SPDX-License-Identifier: MIT */
/*
 * ipc-serve — serve named libipc objects over the network.
 *
 *   ipc-serve URL [--key-file FILE | --insecure] [--lease MS]
 *             [--queue NAME]... [--joinable-queue NAME]...
 *             [--event NAME]... [--lock NAME]...
 *             [--sem NAME[:VALUE[:MAX]]]... [--barrier NAME[:PARTIES]]...
 *
 * Each named object is opened, or created (queues with default sizes, a
 * semaphore with VALUE, default 1, and MAX, default 0: unbounded; a barrier
 * with PARTIES, needed to create one) if it does not exist, and served
 * under its own name at URL until SIGTERM or SIGINT, which stop the server
 * cleanly (remote consumers' unfinished tasks are requeued, remote holders'
 * locks and units released). Connects, authentication failures, lease
 * expiries and dropped frames are logged to stderr, one line each. See
 * ipc-serve(1).
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

#define MAX_OBJECTS 64
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
			"NAME]...\n"
			"                 [--event NAME]... [--lock NAME]...\n"
			"                 [--sem NAME[:VALUE[:MAX]]]... "
			"[--barrier NAME[:PARTIES]]...\n");
	exit(2);
}

enum kind { QUEUE, JOINABLE_QUEUE, EVENT, LOCK, SEM, BARRIER };

static const char *const kind_names[] = {
	"queue", "joinable queue", "event", "lock", "semaphore", "barrier"
};

struct object {
	enum kind kind;
	char name[256];
	unsigned a, b; /* sem: value, max; barrier: parties */
	void *handle;
};

/* NAME[:N[:M]] into o (a and b keep their defaults when absent). */
static void parse_spec(struct object *o, const char *spec, int max_numbers)
{
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	unsigned *nums[2] = { &o->a, &o->b };

	if (n == 0 || n >= sizeof(o->name))
		usage();
	memcpy(o->name, spec, n);
	o->name[n] = '\0';
	for (int i = 0; colon != NULL; i++) {
		char *end;
		unsigned long v;
		if (i == max_numbers)
			usage();
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || v > 0x7fffffffUL ||
		    (*end != '\0' && *end != ':'))
			usage();
		*nums[i] = (unsigned)v;
		colon = *end == ':' ? end : NULL;
	}
}

/* Open (or create) o's object. 0 or an IPC_E* code. */
static int open_object(struct object *o)
{
	switch (o->kind) {
	case QUEUE:
	case JOINABLE_QUEUE: {
		ipc_queue_attr qa = { .joinable = o->kind == JOINABLE_QUEUE };
		return ipc_queue_open((ipc_queue **)&o->handle, o->name,
				      IPC_CREATE, &qa);
	}
	case EVENT:
		return ipc_event_open((ipc_event **)&o->handle, o->name,
				      IPC_CREATE);
	case LOCK:
		return ipc_lock_open((ipc_lock **)&o->handle, o->name,
				     IPC_CREATE);
	case SEM:
		return ipc_sem_open((ipc_sem **)&o->handle, o->name, IPC_CREATE,
				    o->a, o->b);
	case BARRIER:
		return ipc_barrier_open((ipc_barrier **)&o->handle, o->name,
					o->a ? IPC_CREATE : 0, o->a);
	}
	return IPC_EINVAL;
}

static int serve_object(ipc_server *srv, struct object *o)
{
	switch (o->kind) {
	case QUEUE:
	case JOINABLE_QUEUE:
		return ipc_server_add_queue(srv, o->name, o->handle);
	case EVENT:
		return ipc_server_add_event(srv, o->name, o->handle);
	case LOCK:
		return ipc_server_add_lock(srv, o->name, o->handle);
	case SEM:
		return ipc_server_add_sem(srv, o->name, o->handle);
	case BARRIER:
		return ipc_server_add_barrier(srv, o->name, o->handle);
	}
	return IPC_EINVAL;
}

static void close_object(struct object *o)
{
	switch (o->kind) {
	case QUEUE:
	case JOINABLE_QUEUE:
		ipc_queue_close(o->handle);
		break;
	case EVENT:
		ipc_event_close(o->handle);
		break;
	case LOCK:
		ipc_lock_close(o->handle);
		break;
	case SEM:
		ipc_sem_close(o->handle);
		break;
	case BARRIER:
		ipc_barrier_close(o->handle);
		break;
	}
}

/* The kind an option names, or -1. */
static int option_kind(const char *a)
{
	static const char *const opts[] = { "--queue", "--joinable-queue",
					    "--event", "--lock",
					    "--sem",   "--barrier" };

	for (int k = 0; k < (int)(sizeof(opts) / sizeof(opts[0])); k++)
		if (strcmp(a, opts[k]) == 0)
			return k;
	return -1;
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
	static struct object objs[MAX_OBJECTS];
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
		} else if (option_kind(a) >= 0 && has_val) {
			struct object *o = &objs[nq];
			if (nq == MAX_OBJECTS)
				usage();
			o->kind = (enum kind)option_kind(a);
			o->a = o->kind == SEM ? 1 : 0;
			parse_spec(o, argv[++i],
				   o->kind == SEM	? 2
				   : o->kind == BARRIER ? 1
							: 0);
			nq++;
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
		rc = open_object(&objs[i]);
		if (rc != 0) {
			fprintf(stderr, "ipc-serve: %s %s: %s%s\n",
				kind_names[objs[i].kind], objs[i].name,
				ipc_strerror(rc),
				objs[i].kind == BARRIER && objs[i].a == 0 &&
						rc == IPC_ENOENT
					? " (give NAME:PARTIES to create it)"
					: "");
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
		rc = serve_object(srv, &objs[i]);
		if (rc != 0) {
			fprintf(stderr, "ipc-serve: serving %s: %s\n",
				objs[i].name, ipc_strerror(rc));
			ipc_server_stop(srv);
			return 1;
		}
		fprintf(stderr, "ipc-serve: serving %s %s at %s%s\n",
			kind_names[objs[i].kind], objs[i].name, url,
			attr.authkey ? " (authenticated, encrypted)" : "");
	}
	sigwait(&set, &sig);
	fprintf(stderr, "ipc-serve: %s, stopping\n",
		sig == SIGTERM ? "SIGTERM" : "SIGINT");
	ipc_server_stop(srv);
	for (int i = 0; i < nq; i++)
		close_object(&objs[i]);
	fprintf(stderr, "ipc-serve: stopped\n");
	return 0;
}
