/* SPDX-License-Identifier: MIT */
/*
 * ipcctl-holder — a test helper for tests/test_ipcctl.sh: makes or opens
 * the named objects given as KIND NAME pairs (KIND: lock, held-lock (and
 * acquire it), event, sem, queue, mqueue), prints "ready", and holds
 * them until killed (or, with "close" as the last argument, closes them
 * and exits at once).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"

/* Reachable until exit, so that leak checkers do not count them. */
static void *held[64];
static int nheld;

static int open_one(const char *kind, const char *name)
{
	ipc_queue_attr mq = { .backend = IPC_BACKEND_MQUEUE,
			      .maxsize = 4,
			      .max_msg_size = 64 };
	void **h = &held[nheld];
	int rc = IPC_EINVAL;

	if (nheld == 64)
		return IPC_ENOMEM;
	if (strcmp(kind, "lock") == 0)
		rc = ipc_lock_open((ipc_lock **)h, name, IPC_CREATE);
	else if (strcmp(kind, "event") == 0)
		rc = ipc_event_open((ipc_event **)h, name, IPC_CREATE);
	else if (strcmp(kind, "sem") == 0)
		rc = ipc_sem_open((ipc_sem **)h, name, IPC_CREATE, 1, 0);
	else if (strcmp(kind, "held-lock") == 0) {
		rc = ipc_lock_open((ipc_lock **)h, name, IPC_CREATE);
		if (rc == 0)
			rc = ipc_lock_acquire(*h, IPC_NOWAIT);
	} else if (strcmp(kind, "queue") == 0)
		rc = ipc_queue_open((ipc_queue **)h, name, IPC_CREATE, NULL);
	else if (strcmp(kind, "mqueue") == 0) {
		rc = ipc_queue_open((ipc_queue **)h, name, IPC_CREATE, &mq);
		if (rc == 0)
			rc = ipc_queue_put(*h, "m", 1, IPC_NOWAIT);
	}
	if (rc == 0)
		nheld++;
	return rc;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		int rc = open_one(argv[i], argv[i + 1]);
		if (rc != 0) {
			fprintf(stderr, "ipcctl-holder: %s %s: %s\n", argv[i],
				argv[i + 1], ipc_strerror(rc));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	if (i < argc && strcmp(argv[i], "close") == 0)
		return 0; /* exit closes every handle */
	for (;;)
		pause();
}
