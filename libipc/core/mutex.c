/* SPDX-License-Identifier: MIT */
/*
 * mutex.c — robust, process-shared pthread mutexes, and the one place that
 * handles a dead owner.
 *
 * A robust mutex is on its owner thread's robust list; when that thread dies
 * (SIGKILL included) the kernel marks the mutex FUTEX_OWNER_DIED and wakes a
 * waiter, whose lock call then returns EOWNERDEAD with the mutex held. The
 * kernel also covers an owner killed inside pthread_mutex_unlock between
 * releasing the word and waking a waiter (list_op_pending), so no waiter is
 * stranded.
 *
 * After EOWNERDEAD the object the mutex guards may be half-updated. Like
 * LMDB's mdb_mutex_failed, ipc__mutex_lock repairs the object's invariants
 * first (the caller's repair callback) and only then calls
 * pthread_mutex_consistent; if the repair fails, the mutex is unlocked
 * without being made consistent, which leaves it ENOTRECOVERABLE for ever:
 * every later caller learns the object is lost instead of using it.
 *
 * Lock attempts spin briefly before sleeping: a holder on another core
 * usually releases within a few hundred nanoseconds, far less than the cost
 * of a futex sleep and wake-up.
 */
#include <errno.h>
#include <unistd.h>

#include "config.h"
#include "libipc/core/core.h"

#define MUTEX_SPINS 100

int ipc__mutex_init(pthread_mutex_t *m, bool recursive)
{
	pthread_mutexattr_t attr;
	int rc;

	rc = pthread_mutexattr_init(&attr);
	if (rc != 0)
		return -rc;
	rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (rc == 0)
		rc = pthread_mutexattr_settype(
			&attr, recursive ? PTHREAD_MUTEX_RECURSIVE
					 : PTHREAD_MUTEX_ERRORCHECK);
	if (rc == 0)
		rc = pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
	return -rc;
}

/* ThreadSanitizer intercepts pthread_mutex_timedlock but not
 * pthread_mutex_clocklock, and a lock it does not see taken makes every
 * access under it look like a race. In a TSan build only, the monotonic
 * deadline is turned into a CLOCK_REALTIME one (a clock step during the
 * wait stretches or shortens it; acceptable in a test build). */
#if defined(__SANITIZE_THREAD__)
#define IPC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPC__TSAN 1
#endif
#endif
#ifndef IPC__TSAN
#define IPC__TSAN 0
#endif

#if IPC__TSAN
static int mutex_timedlock_realtime(pthread_mutex_t *m,
				    const struct ipc__deadline *dl)
{
	struct timespec mono, at;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &at);
	ns = (long long)(dl->at.tv_sec - mono.tv_sec) * 1000000000LL +
	     (dl->at.tv_nsec - mono.tv_nsec);
	if (ns < 0)
		ns = 0;
	ns += at.tv_nsec;
	at.tv_sec += (time_t)(ns / 1000000000LL);
	at.tv_nsec = (long)(ns % 1000000000LL);
	return pthread_mutex_timedlock(m, &at);
}
#endif

static int mutex_lock_raw(pthread_mutex_t *m, const struct ipc__deadline *dl)
{
	int rc;

	rc = pthread_mutex_trylock(m);
	if (rc != EBUSY || dl->kind == IPC__DL_NOWAIT)
		return rc == EBUSY ? EAGAIN : rc;
	for (int i = 0; i < MUTEX_SPINS; i++) {
		ipc__cpu_relax();
		rc = pthread_mutex_trylock(m);
		if (rc != EBUSY)
			return rc;
	}
	if (dl->kind == IPC__DL_FOREVER)
		return pthread_mutex_lock(m);
#if IPC__TSAN
	return mutex_timedlock_realtime(m, dl);
#elif defined(HAVE_PTHREAD_MUTEX_CLOCKLOCK)
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &dl->at);
#else
#error "libipc needs pthread_mutex_clocklock (glibc 2.30 or later)"
#endif
}

int ipc__mutex_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		    ipc__repair_fn repair, void *arg)
{
	int rc = mutex_lock_raw(m, dl);

	if (rc == 0)
		return 0;
	if (rc != EOWNERDEAD)
		return -rc; /* EAGAIN ETIMEDOUT EDEADLK ENOTRECOVERABLE */
	if (repair == NULL) {
		pthread_mutex_consistent(m);
		return -EOWNERDEAD;
	}
	rc = repair(arg);
	if (rc != 0) {
		/* Unlocking without pthread_mutex_consistent makes the mutex
		 * permanently ENOTRECOVERABLE. */
		pthread_mutex_unlock(m);
		return -ENOTRECOVERABLE;
	}
	pthread_mutex_consistent(m);
	return 0;
}

int ipc__mutex_unlock(pthread_mutex_t *m)
{
	return -pthread_mutex_unlock(m);
}

int32_t ipc__tid(void)
{
	return (int32_t)gettid();
}
