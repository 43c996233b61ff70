/* SPDX-License-Identifier: MIT */
/*
 * stat.c — ipc_stat, the one place that knows every kind of object.
 *
 * It sits above sync/ and queue/ (like process/, it may use both): core/
 * reads the file's header and counts its users (users.c), then the kind's
 * own describe function reads its live state from a copy of the segment.
 * Nothing here maps a segment or takes any of its locks, so a reader can
 * neither block on a held lock nor fault on a truncated file; every
 * describe function range-checks what it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "libipc/core/core.h"
#include "libipc/queue/queue.h"
#include "libipc/sync/sync.h"

/* Bytes of a segment copied for its describe function: enough for every
 * layout's fixed part and slots (a Barrier of IPC_BARRIER_MAX_PARTIES
 * included); a queue's storage is read separately. */
#define STAT_COPY_MAX ((size_t)512 << 10)

static int describe(const char *name, int fd, ipc_object_info *info)
{
	size_t len =
		info->size < STAT_COPY_MAX ? (size_t)info->size : STAT_COPY_MAX;
	void *seg = malloc(len);
	size_t got;
	int rc;

	if (seg == NULL)
		return -ENOMEM;
	got = ipc__pread_full(fd, seg, len, 0);
	switch (info->kind) {
	case IPC_KIND_LOCK:
	case IPC_KIND_RLOCK:
		rc = ipc__lock_describe(seg, got, info);
		break;
	case IPC_KIND_EVENT:
		rc = ipc__event_describe(seg, got, info);
		break;
	case IPC_KIND_COND:
		rc = ipc__cond_describe(seg, got, info);
		break;
	case IPC_KIND_SEM:
		rc = ipc__sem_describe(seg, got, info);
		break;
	case IPC_KIND_BARRIER:
		rc = ipc__barrier_describe(seg, got, info);
		break;
	case IPC_KIND_QUEUE:
		rc = ipc__ring_describe(fd, seg, got, info);
		break;
	case IPC_KIND_MQUEUE:
		rc = ipc__mq_describe(name, seg, got, info);
		break;
	case IPC_KIND_SHM:
	case IPC_KIND_ARRAY:
	case IPC_KIND_PQUEUE:
		rc = 0; /* no live state is read for these kinds yet */
		break;
	default:
		rc = -EPROTO;
	}
	free(seg);
	return rc;
}

int ipc_stat(const char *name, ipc_object_info *info)
{
	char path[IPC__PATH_MAX];
	int fd = -1, rc;

	if (info == NULL)
		return -EINVAL;
	ipc__info_clear(info); /* on every return, errors included */
	rc = ipc__name_path(name, path, sizeof(path));
	if (rc != 0)
		return rc;
	rc = ipc__stat_fd(path, O_RDONLY, info, &fd);
	if (rc == 0) {
		rc = describe(name, fd, info);
		if (rc == -EPROTO) {
			/* A sound header over a layout out of range: keep
			 * the file's facts, drop the rest. */
			unsigned long long size = info->size;
			unsigned mode = info->mode;
			uid_t uid = info->uid;
			int users = info->users;
			ipc__info_clear(info);
			info->problem = "corrupt";
			info->size = size;
			info->mode = mode;
			info->uid = uid;
			info->users = users;
		}
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
