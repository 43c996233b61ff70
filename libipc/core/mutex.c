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
 * Damaged mutexes: a pthread_mutex_t in shared memory is glibc's data, and
 * any process that maps it can write it. glibc trusts the mutex's kind
 * field: a kind it was never initialised with sends it down the
 * priority-inheritance or priority-protection paths with garbage, where it
 * can abort on an assertion. Every lock and unlock here therefore first
 * compares the kind with the two kinds ipc__mutex_init makes (learnt once
 * from glibc itself) and refuses any other with -ENOTRECOVERABLE. The rest
 * of the mutex is safe to trust as far as it goes: a garbage owner in the
 * lock word only makes the mutex look held (lock calls time out, or wait
 * for ever without a deadline), and the robust-list links are rewritten by
 * glibc on every lock.
 *
 * Lock attempts spin briefly before sleeping: a holder on another core
 * usually releases within a few hundred nanoseconds, far less than the cost
 * of a futex sleep and wake-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "libipc/core/core.h"

_Static_assert(FUTEX_TID_MASK == 0x3fffffff,
	       "ipc__mutex_owner (core.h) masks the lock word with this");

#define MUTEX_SPINS 100

/* glibc's elision flags may differ between processes (tunables); they
 * never change what a robust mutex does. */
#define KIND_ELISION_MASK 0x300

static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;
static int known_kinds[2]; /* error-checking, recursive; constant once set */
static _Atomic bool kinds_known; /* known_kinds is set (release) */

int ipc__mutex_init(pthread_mutex_t *m, bool recursive)
{
	pthread_mutexattr_t attr;
	int rc;

	rc = pthread_mutexattr_init(&attr);
	if (rc != 0)
		return ipc__sys_error(rc);
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
	return ipc__sys_error(rc);
}

static int mutex_kind(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	return *(volatile int *)&m->__data.__kind & ~KIND_ELISION_MASK;
#else
	(void)m;
	return 0;
#endif
}

static void kinds_learn(void)
{
	for (int i = 0; i < 2; i++) {
		pthread_mutex_t m;
		if (ipc__mutex_init(&m, i == 1) == 0) {
			known_kinds[i] = mutex_kind(&m);
			pthread_mutex_destroy(&m);
		}
	}
	atomic_store_explicit(&kinds_known, true, memory_order_release);
}

bool ipc__mutex_sane(pthread_mutex_t *m)
{
	int kind = mutex_kind(m);

	/* Every lock asks: a load, not a call, once the kinds are known. */
	if (!atomic_load_explicit(&kinds_known, memory_order_acquire))
		pthread_once(&kinds_once, kinds_learn);
	return kind == known_kinds[0] || kind == known_kinds[1];
}

int ipc__mutex_trylock_sane(pthread_mutex_t *m)
{
	return ipc__mutex_sane(m) ? pthread_mutex_trylock(m) : ENOTRECOVERABLE;
}

/* ThreadSanitizer intercepts pthread_mutex_timedlock but not
 * pthread_mutex_clocklock, and a lock it does not see taken makes every
 * access under it look like a race. In a TSan build only, the monotonic
 * deadline is turned into a CLOCK_REALTIME one (a clock step during the
 * wait stretches or shortens it; acceptable in a test build). */
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

static int mutex_timedlock(pthread_mutex_t *m, const struct ipc__deadline *dl)
{
	ipc__deadline_anchor(dl);
#if IPC__TSAN
	return mutex_timedlock_realtime(m, dl);
#elif defined(HAVE_PTHREAD_MUTEX_CLOCKLOCK)
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &dl->at);
#else
#error "libipc needs pthread_mutex_clocklock (glibc 2.30 or later)"
#endif
}

#ifdef __GLIBC__
/* The file that maps addr in this process, as /proc/self/maps spells it:
 * device, inode and path. False if not found. */
struct map_file {
	char dev[32];
	unsigned long ino;
	char path[IPC__PATH_MAX];
};

static bool maps_file_of(uintptr_t addr, struct map_file *mf)
{
	char line[512];
	uintptr_t lo, hi;
	bool found = false;
	int at;
	FILE *f = fopen("/proc/self/maps", "re");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line,
			   "%" SCNxPTR "-%" SCNxPTR " %*s %*s %31s %lu %n", &lo,
			   &hi, mf->dev, &mf->ino, &at) < 4 ||
		    addr < lo || addr >= hi)
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(mf->path, sizeof(mf->path), "%s", line + at);
		found = true;
	}
	fclose(f);
	return found;
}

/* Does process tid map that file? 1 yes, 0 no, -1 cannot be read (another
 * user's process, or one that is not dumpable). */
static int maps_has_file(pid_t tid, const struct map_file *mf)
{
	char path[64], line[512], d[32];
	unsigned long i;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)tid);
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "%*s %*s %*s %31s %lu", d, &i) == 2 &&
			i == mf->ino && strcmp(d, mf->dev) == 0;
	if (!found && ferror(f))
		found = -1;
	fclose(f);
	return found;
}

/* When tid's mappings cannot be read: does its process, or an ancestor
 * (a forked child shares its opener's), hold a user slot on the file?
 * True when that cannot be told either (an unnamed segment). */
static bool lineage_uses_file(pid_t tid, const struct map_file *mf)
{
	struct stat st;
	bool uses = true;
	int fd;

	if (mf->path[0] != '/' || strstr(mf->path, " (deleted)") != NULL)
		return true;
	fd = open(mf->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return true;
	if (fstat(fd, &st) == 0 && st.st_ino == mf->ino)
		uses = ipc__users_has_lineage(fd, ipc__tid_process(tid));
	close(fd);
	return uses;
}

/* Can thread tid be the owner of m? It exists, and its process maps m's
 * file (or, if that cannot be read, it is a user of the file). */
static bool mutex_owner_possible(pthread_mutex_t *m, pid_t tid)
{
	struct map_file mf;
	int maps;

	if (tid == 0 || (kill(tid, 0) != 0 && errno == ESRCH))
		return false;
	if (!maps_file_of((uintptr_t)m, &mf) || mf.ino == 0)
		return true;
	maps = maps_has_file(tid, &mf);
	return maps < 0 ? lineage_uses_file(tid, &mf) : maps == 1;
}
#endif

/* Can the lock word never be released? It names an owner (or, with the
 * waiters bit alone, none) that the kernel did not mark dead, and no such
 * thread exists, or it does not map the mutex. A robust owner's death is
 * processed (FUTEX_OWNER_DIED set) while its id still exists, before the thread
 * is reaped; and only the owner itself writes its id into the word. So a word
 * that reads the same before and after an existence check that failed was never
 * a live lock. */
static bool mutex_owner_impossible(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	unsigned w = __atomic_load_n((unsigned *)&m->__data.__lock,
				     __ATOMIC_ACQUIRE);
	pid_t tid = (pid_t)(w & FUTEX_TID_MASK);

	if (w == 0 || (w & FUTEX_OWNER_DIED) != 0)
		return false;
	if (mutex_owner_possible(m, tid))
		return false;
	return __atomic_load_n((unsigned *)&m->__data.__lock,
			       __ATOMIC_ACQUIRE) == w;
#else
	(void)m;
	return false;
#endif
}

/* A lock with no deadline: timed slices, with the owner checked between
 * them (see the top of the file). */
static int mutex_lock_forever(pthread_mutex_t *m)
{
	for (;;) {
		struct ipc__deadline slice;
		int rc;
		ipc__deadline_init(&slice, IPC__RECHECK_MS);
		rc = mutex_timedlock(m, &slice);
		if (rc != ETIMEDOUT)
			return rc;
		if (mutex_owner_impossible(m))
			return ENOTRECOVERABLE;
	}
}

static int mutex_lock_raw(pthread_mutex_t *m, const struct ipc__deadline *dl)
{
	int rc;

	rc = pthread_mutex_trylock(m);
	if (rc != EBUSY || dl->kind == IPC__DL_NOWAIT)
		return rc == EBUSY ? EAGAIN : rc;
	for (int i = 0; i < MUTEX_SPINS; i++) {
		ipc__cpu_relax();
		if (ipc__mutex_owner(m) > 0)
			continue; /* held: read, do not CAS (TTAS) */
		rc = pthread_mutex_trylock(m);
		if (rc != EBUSY)
			return rc;
	}
	if (dl->kind == IPC__DL_FOREVER)
		return mutex_lock_forever(m);
	return mutex_timedlock(m, dl);
}

int ipc__mutex_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		    ipc__repair_fn repair, void *arg)
{
	int rc;

	if (!ipc__mutex_sane(m))
		return -ENOTRECOVERABLE;
	rc = mutex_lock_raw(m, dl);
	if (rc == 0)
		return 0;
	if (rc != EOWNERDEAD) /* EAGAIN ETIMEDOUT EDEADLK ENOTRECOVERABLE */
		return ipc__sys_error(rc);
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
	int rc;

	if (!ipc__mutex_sane(m))
		return -ENOTRECOVERABLE;
	rc = pthread_mutex_unlock(m);
	return rc == 0 ? 0 : ipc__sys_error(rc);
}

int32_t ipc__tid(void)
{
	return (int32_t)gettid();
}
