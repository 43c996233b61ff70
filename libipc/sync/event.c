/* SPDX-License-Identifier: MIT */
/*
 * event.c — Event: a flag processes wait on, with no lock at all.
 *
 * The whole state is one 32-bit futex word:
 *
 *   bit 0      SET: the flag.
 *   bits 1-30  the clear count: clear() adds 2 when it turns the flag off.
 *   bit 31     always 0.
 *
 * A waiter that finds the flag off sleeps on the word's value. set() turns
 * bit 0 on and wakes every sleeper in one FUTEX_WAKE_OP system call, so a
 * setter killed mid-call either set and woke, or did neither: no waiter can
 * be left asleep with the flag on. A waiter returns once the word differs
 * from the value it slept on: either the flag is on, or the clear count moved,
 * which means the flag was set (and cleared again) while it slept — Python
 * returns True then too. Clearing only changes the word when the flag is
 * on, and a waiter only sleeps while it is off, so a clear alone never wakes
 * anyone.
 *
 * With no lock there is nothing a dead process can hold: every change is one
 * atomic instruction or one system call, done or not done.
 *
 * Cost: is_set and a wait on a set flag are one load; set on a set flag is
 * one load; set on a clear flag is one system call (setting is rare, and the
 * syscall is what makes it crash-atomic).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

struct ipc_event {
	struct ipc__seg seg;
	struct event_shm *shm;
	struct ipc__sync_remote *remote; /* served by another host; or NULL */
};

static int event_init(void *base, size_t size, const void *arg)
{
	struct event_shm *shm = base;

	(void)size;
	(void)arg;
	atomic_init(&shm->e_word, 0);
	return 0;
}

static const struct ipc__seg_type event_type = {
	.kind = IPC__KIND_EVENT,
	.min_size = sizeof(struct event_shm),
	.init = event_init,
};

static int event_make(ipc_event **ev, const char *name, int flags)
{
	int rc = ipc__handle_new((void **)ev, sizeof(ipc_event), &event_type,
				 name, flags, sizeof(struct event_shm), NULL);
	if (rc == 0)
		(*ev)->shm = (*ev)->seg.base;
	return rc;
}

int ipc_event_new(ipc_event **ev)
{
	return event_make(ev, NULL, 0);
}

int ipc_event_open(ipc_event **ev, const char *name, int flags)
{
	if (name == NULL)
		return -EINVAL;
	return event_make(ev, name, flags);
}

int ipc_event_set(ipc_event *ev)
{
	if (ev != NULL && ev->remote != NULL)
		return ipc__sync_call(ev->remote, IPC__SYNC_EVENT_SET, 0);
	if (ev == NULL)
		return -EINVAL;
	if (atomic_load_explicit(&ev->shm->e_word, memory_order_acquire) &
	    EV_SET)
		return 0;
	IPC__CRASHPOINT("event.set.before");
	ipc__futex_or_wake(&ev->shm->e_word, EV_SET, INT_MAX);
	IPC__CRASHPOINT("event.set.after");
	return 0;
}

int ipc_event_clear(ipc_event *ev)
{
	uint32_t w;

	if (ev != NULL && ev->remote != NULL)
		return ipc__sync_call(ev->remote, IPC__SYNC_EVENT_CLEAR, 0);
	if (ev == NULL)
		return -EINVAL;
	w = atomic_load_explicit(&ev->shm->e_word, memory_order_relaxed);
	while (w & EV_SET) {
		uint32_t next = ((w & ~EV_SET) + EV_CLEAR_STEP) & EV_MASK;
		if (atomic_compare_exchange_weak_explicit(
			    &ev->shm->e_word, &w, next, memory_order_acq_rel,
			    memory_order_relaxed))
			break;
	}
	return 0;
}

bool ipc_event_is_set(ipc_event *ev)
{
	if (ev != NULL && ev->remote != NULL)
		return ipc__sync_call(ev->remote, IPC__SYNC_EVENT_IS_SET, 0) >
		       0;
	if (ev == NULL)
		return false;
	return atomic_load_explicit(&ev->shm->e_word, memory_order_acquire) &
	       EV_SET;
}

int ipc_event_wait(ipc_event *ev, int timeout_ms)
{
	struct ipc__deadline dl;
	uint32_t start;
	int rc;

	if (ev != NULL && ev->remote != NULL)
		return ipc__sync_call(ev->remote, IPC__SYNC_EVENT_WAIT,
				      timeout_ms);
	if (ev == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	start = atomic_load_explicit(&ev->shm->e_word, memory_order_acquire);
	if (start & EV_SET)
		return 0;
	/* No periodic re-check is needed: set() changes the word and wakes in
	 * one system call, so a sleeper is never left behind by a dead setter.
	 */
	for (;;) {
		rc = ipc__futex_wait(&ev->shm->e_word, start, &dl);
		if (atomic_load_explicit(&ev->shm->e_word,
					 memory_order_acquire) != start)
			return 0; /* set now, or set and cleared meanwhile */
		if (rc == -ETIMEDOUT)
			return ipc__deadline_error(&dl);
	}
}

/* ipc_wait: the word to sleep on and its value now. 1 if the flag is set
 * (nothing to sleep on), 0 otherwise. Any later set changes the word and
 * wakes every sleeper on it, in one system call. */
int ipc__event_watch(ipc_event *ev, _Atomic uint32_t **word, uint32_t *val)
{
	if (ev == NULL)
		return -EINVAL;
	if (ev->remote != NULL)
		return -ENOTSUP; /* its word is on another host */
	*word = &ev->shm->e_word;
	*val = atomic_load_explicit(*word, memory_order_acquire);
	return (*val & EV_SET) != 0;
}

void ipc_event_close(ipc_event *ev)
{
	if (ev != NULL && ev->remote != NULL) {
		ipc__sync_remote_free(ev, ev->remote);
		return;
	}
	ipc__handle_free(ev);
}

int ipc__event_remote(ipc_event **ev, struct ipc__sync_remote *r)
{
	return ipc__sync_remote_new((void **)ev, sizeof(ipc_event),
				    offsetof(ipc_event, remote), r);
}

/* ipc_stat: the flag, from a copy of the segment. */
int ipc__event_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct event_shm *shm = seg;
	uint32_t w;

	if (len < sizeof(*shm))
		return -EPROTO;
	w = atomic_load_explicit(&shm->e_word, memory_order_relaxed);
	info->is_set = (w & EV_SET) != 0;
	return 0;
}
