/* SPDX-License-Identifier: MIT */
/*
 * remote.c — handles of Event, Lock, Semaphore and Barrier whose object is
 * served by another host.
 *
 * sync/ knows nothing of the network: net/ builds a struct ipc__sync_remote
 * (an operation table first, its connection after) and asks the object's
 * file for a handle around it. The handle has no segment; each public
 * function's first lines see the remote pointer and pass the call on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/sync/sync.h"

int ipc__sync_remote_new(void **out, size_t handle_size, size_t remote_off,
			 struct ipc__sync_remote *r)
{
	unsigned char *h = calloc(1, handle_size);
	struct ipc__seg *seg = (struct ipc__seg *)(void *)h;

	if (h == NULL) {
		r->ops->close(r);
		return -ENOMEM;
	}
	seg->fd = -1;
	memcpy(h + remote_off, &r, sizeof(r));
	*out = h;
	return 0;
}

void ipc__sync_remote_free(void *handle, struct ipc__sync_remote *r)
{
	r->ops->close(r);
	free(handle);
}
