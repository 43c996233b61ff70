/* SPDX-License-Identifier: MIT */
/*
 * ring_dup.c — a second handle on the same shared-memory ring.
 *
 * A JoinableQueue consumer is a (handle, thread) pair holding a consumer
 * slot. A process that consumes on behalf of several parties — the network
 * server does, one party per remote client — needs one handle per party so
 * that each party's unfinished tasks are requeued on their own when that
 * party goes away. The new handle maps the same pages a second time with
 * mremap(old_size = 0), which works for named and anonymous (MAP_SHARED)
 * segments alike, so it owns its mapping and closes like any other handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "libipc/queue/ring.h"

int ipc__ring_dup(void *impl, void **out)
{
	struct ring *src = impl;
	struct ring *r;
	void *base;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	base = mremap(src->seg.base, 0, src->seg.size, MREMAP_MAYMOVE);
	if (base == MAP_FAILED) {
		int err = errno;
		free(r);
		return err == ENOMEM ? -ENOMEM : -ENOTSUP;
	}
	r->seg.base = base;
	r->seg.size = src->seg.size;
	r->seg.fd =
		-1; /* the original handle keeps the file and its user lock */
	r->shm = base;
	/* Offsets from the original handle, which validated them at open,
	 * not from the shared header again. */
	r->slots = (struct ring_slot *)((unsigned char *)base +
					((unsigned char *)src->slots -
					 (unsigned char *)src->seg.base));
	r->data = (unsigned char *)base +
		  (src->data - (unsigned char *)src->seg.base);
	r->cap = src->cap;
	r->mask = src->mask;
	r->max_msg = src->max_msg;
	r->maxsize = src->maxsize;
	r->nslots = src->nslots;
	r->joinable = src->joinable;
	r->id = ipc__ring_new_id(); /* its own consumers: see ring_joinable.c */
	ipc__ring_spin_init(r);
	*out = r;
	return 0;
}
