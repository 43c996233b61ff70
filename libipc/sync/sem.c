/* SPDX-License-Identifier: MIT */
/*
 * sem.c — Semaphore and BoundedSemaphore without a lock.
 *
 * State, on its own cache line:
 *   s_value    the count, and the futex word sleepers wait on while it is 0.
 *   s_waiters  how many processes are in (or about to enter) a sleep. It
 *              only lets release skip FUTEX_WAKE when nobody sleeps.
 *   s_max      0, or the BoundedSemaphore's ceiling; written once at init.
 *
 * Acquire takes a unit with a CAS on s_value, spinning briefly when it is 0
 * before it sleeps. Release adds a unit with a CAS (refusing to pass s_max),
 * then wakes one sleeper if s_waiters says there may be one.
 *
 * Why no wake-up is lost: a sleeper increments s_waiters and then reads
 * s_value; a releaser writes s_value and then reads s_waiters. Both pairs
 * are sequentially consistent, so at least one side sees the other: either
 * the sleeper sees the unit and takes it, or the releaser sees the sleeper
 * and wakes it (and FUTEX_WAIT refuses to sleep if s_value is no longer 0).
 *
 * Dead processes: a sleeper killed in FUTEX_WAIT leaves the kernel queue,
 * so wakes go to the living; its stale s_waiters count costs releases a
 * spare system call, nothing more. A releaser killed between its CAS and its
 * wake leaves a unit that no sleeper was told about; sleepers re-check every
 * IPC__RECHECK_MS, which bounds that delay. A unit taken by a process that
 * then dies stays taken (no SEM_UNDO), as with every POSIX semaphore.
 */
#include <errno.h>
#include <stddef.h>

#include "libipc/sync/layout.h"
#include "libipc/sync/sync.h"

#define SEM_SPINS 64

struct ipc_sem {
	struct ipc__seg seg;
	struct sem_shm *shm;
	uint32_t max; /* s_max as checked at open; never re-read */
	struct ipc__sync_remote *remote; /* served by another host; or NULL */
};

struct sem_args {
	unsigned value, max;
};

static int sem_init(void *base, size_t size, const void *arg)
{
	struct sem_shm *shm = base;
	const struct sem_args *a = arg;

	(void)size;
	atomic_init(&shm->s_value, a->value);
	atomic_init(&shm->s_waiters, 0);
	shm->s_max = a->max;
	return 0;
}

static int sem_check(const void *base, size_t size, const void *arg)
{
	const struct sem_shm *shm = base;
	const struct sem_args *a = arg;

	(void)size;
	if (shm->s_max > IPC_SEM_VALUE_MAX)
		return -EPROTO;
	if (a->max != 0 && a->max != shm->s_max)
		return -EINVAL;
	return 0;
}

static const struct ipc__seg_type sem_type = {
	.kind = IPC__KIND_SEM,
	.min_size = sizeof(struct sem_shm),
	.init = sem_init,
	.check = sem_check,
};

static int sem_make(ipc_sem **s, const char *name, int flags, unsigned value,
		    unsigned max)
{
	struct sem_args a = { value, max };
	int rc;

	if (value > IPC_SEM_VALUE_MAX || max > IPC_SEM_VALUE_MAX ||
	    (max > 0 && value > max))
		return -EINVAL;
	rc = ipc__handle_new((void **)s, sizeof(ipc_sem), &sem_type, name,
			     flags, sizeof(struct sem_shm), &a);
	if (rc != 0)
		return rc;
	(*s)->shm = (*s)->seg.base;
	/* Read the ceiling once more, for keeps: a peer may have changed it
	 * since the check. */
	(*s)->max = (*s)->shm->s_max;
	if ((*s)->max > IPC_SEM_VALUE_MAX || (max != 0 && (*s)->max != max)) {
		rc = (*s)->max > IPC_SEM_VALUE_MAX ? -EPROTO : -EINVAL;
		ipc__handle_free(*s);
		*s = NULL;
	}
	return rc;
}

int ipc_sem_new(ipc_sem **s, unsigned value, unsigned max)
{
	return sem_make(s, NULL, 0, value, max);
}

int ipc_sem_open(ipc_sem **s, const char *name, int flags, unsigned value,
		 unsigned max)
{
	if (name == NULL)
		return -EINVAL;
	return sem_make(s, name, flags, value, max);
}

enum { TAKEN, EMPTY, DAMAGED };

/* Take a unit if there is one: TAKEN, EMPTY, or DAMAGED (a value no call
 * can have stored). */
static int sem_try_take(struct sem_shm *shm)
{
	uint32_t v = atomic_load_explicit(&shm->s_value, memory_order_relaxed);

	while (v > 0 && v <= IPC_SEM_VALUE_MAX) {
		if (atomic_compare_exchange_weak(&shm->s_value, &v, v - 1))
			return TAKEN;
	}
	return v == 0 ? EMPTY : DAMAGED;
}

int ipc_sem_acquire(ipc_sem *s, int timeout_ms)
{
	struct ipc__deadline dl, slice;
	struct sem_shm *shm;
	int rc;

	if (s != NULL && s->remote != NULL)
		return ipc__sync_call(s->remote, IPC__SYNC_SEM_ACQUIRE,
				      timeout_ms);
	if (s == NULL)
		return -EINVAL;
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	shm = s->shm;
	for (int i = 0; i < SEM_SPINS; i++) {
		int took = sem_try_take(shm);
		if (took == TAKEN)
			goto taken;
		if (took == DAMAGED)
			return -ENOTRECOVERABLE;
		if (dl.kind == IPC__DL_NOWAIT)
			return -EAGAIN;
		ipc__cpu_relax();
	}
	atomic_fetch_add(&shm->s_waiters, 1);
	for (;;) {
		int took = sem_try_take(shm);
		if (took == TAKEN)
			break;
		if (took == DAMAGED || ipc__deadline_passed(&dl)) {
			atomic_fetch_sub(&shm->s_waiters, 1);
			return took == DAMAGED ? -ENOTRECOVERABLE
					       : ipc__deadline_error(&dl);
		}
		ipc__deadline_capped(&slice, &dl, IPC__RECHECK_MS);
		IPC__CRASHPOINT("sem.acquire.sleeping");
		ipc__futex_wait(&shm->s_value, 0, &slice);
	}
	atomic_fetch_sub(&shm->s_waiters, 1);
taken:
	IPC__CRASHPOINT("sem.acquire.taken");
	return 0;
}

int ipc_sem_release(ipc_sem *s)
{
	struct sem_shm *shm;
	uint32_t v;

	if (s != NULL && s->remote != NULL)
		return ipc__sync_call(s->remote, IPC__SYNC_SEM_RELEASE, 0);
	if (s == NULL)
		return -EINVAL;
	shm = s->shm;
	v = atomic_load_explicit(&shm->s_value, memory_order_relaxed);
	do {
		if (v > IPC_SEM_VALUE_MAX)
			return -ENOTRECOVERABLE;
		if ((s->max != 0 && v >= s->max) || v >= IPC_SEM_VALUE_MAX)
			return -EINVAL;
	} while (!atomic_compare_exchange_weak(&shm->s_value, &v, v + 1));
	IPC__CRASHPOINT("sem.release.before_wake");
	if (atomic_load(&shm->s_waiters) > 0)
		ipc__futex_wake(&shm->s_value, 1);
	return 0;
}

/* Release n units in one CAS: all of them or, past the ceiling, none. The
 * wake is for n sleepers; FUTEX_WAKE only wakes as many as sleep, and each
 * woken sleeper takes a unit or sleeps again, so waking more than can take
 * one costs nothing but their re-check. A releaser killed between its CAS
 * and its wake leaves n units that sleepers find within IPC__RECHECK_MS, as
 * for ipc_sem_release. */
int ipc_sem_release_n(ipc_sem *s, unsigned n)
{
	struct sem_shm *shm;
	uint32_t v, ceiling;

	if (s == NULL || n == 0 || n > IPC_SEM_VALUE_MAX)
		return -EINVAL;
	if (s->remote != NULL)
		return ipc__sync_call(s->remote, IPC__SYNC_SEM_RELEASE_N,
				      (int)n);
	shm = s->shm;
	ceiling = s->max != 0 ? s->max : IPC_SEM_VALUE_MAX;
	v = atomic_load_explicit(&shm->s_value, memory_order_relaxed);
	do {
		if (v > IPC_SEM_VALUE_MAX)
			return -ENOTRECOVERABLE;
		if (v > ceiling || n > ceiling - v)
			return -EINVAL;
	} while (!atomic_compare_exchange_weak(&shm->s_value, &v, v + n));
	IPC__CRASHPOINT("sem.release_n.before_wake");
	if (atomic_load(&shm->s_waiters) > 0)
		ipc__futex_wake(&shm->s_value, (int)n);
	return 0;
}

int ipc_sem_value(ipc_sem *s)
{
	uint32_t v;

	if (s != NULL && s->remote != NULL)
		return ipc__sync_call(s->remote, IPC__SYNC_SEM_VALUE, 0);
	if (s == NULL)
		return -EINVAL;
	v = atomic_load_explicit(&s->shm->s_value, memory_order_relaxed);
	return v <= IPC_SEM_VALUE_MAX ? (int)v : -ENOTRECOVERABLE;
}

void ipc_sem_close(ipc_sem *s)
{
	if (s != NULL && s->remote != NULL) {
		ipc__sync_remote_free(s, s->remote);
		return;
	}
	ipc__handle_free(s);
}

int ipc__sem_remote(ipc_sem **s, struct ipc__sync_remote *r)
{
	return ipc__sync_remote_new((void **)s, sizeof(ipc_sem),
				    offsetof(ipc_sem, remote), r);
}

/* ipc_stat: value, bound and sleepers, from a copy of the segment. */
int ipc__sem_describe(const void *seg, size_t len, ipc_object_info *info)
{
	const struct sem_shm *shm = seg;
	uint32_t v;

	if (len < sizeof(*shm))
		return -EPROTO;
	v = atomic_load_explicit(&shm->s_value, memory_order_relaxed);
	if (v > IPC_SEM_VALUE_MAX || shm->s_max > IPC_SEM_VALUE_MAX)
		return -EPROTO;
	info->value = v;
	info->max = shm->s_max;
	info->waiters =
		atomic_load_explicit(&shm->s_waiters, memory_order_relaxed);
	return 0;
}
