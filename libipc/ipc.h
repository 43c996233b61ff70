/* SPDX-License-Identifier: MIT */
/*
 * libipc — inter-process Queue, JoinableQueue, PriorityQueue, Pipe, Lock,
 * RLock, Event, Condition, Semaphore, Barrier, shared memory, Value and
 * Array, with Process and Pool, for C, after Python's multiprocessing.
 * Queues can also be served to other hosts (ipc_server, ipc_queue_connect,
 * "Across hosts" at the end). Each section has a manual page: libipc(3)
 * lists them.
 *
 * Every object lives in POSIX shared memory and is shared in one of two ways:
 *
 *   ipc_X_new(&x, ...)               an anonymous object, shared with every
 *                                    child forked after it was made;
 *   ipc_X_open(&x, name, flags, ...) a named object that unrelated processes
 *                                    open by name.
 *
 * ipc_X_close(x) drops this process's handle; the object lives on while any
 * process maps it, and a named one until ipc_unlink(name).
 *
 * Conventions, for every function below unless it says otherwise:
 *
 *   - Return 0 (or a count) on success and a negative IPC_E* code on
 *     failure. errno is never the error channel.
 *   - One negative code means success: IPC_EOWNERDEAD, from the calls that
 *     acquire a Lock, RLock or Condition lock, says "acquired, and its
 *     previous holder died holding it". The caller holds the lock and must
 *     release it; the usual `if (rc < 0) die()` would exit holding it. Test
 *     with IPC_OK(rc) (below), or handle IPC_EOWNERDEAD first.
 *   - A NULL handle or a NULL out-pointer is IPC_EINVAL, never a crash.
 *   - timeout_ms: IPC_FOREVER (-1) blocks, IPC_NOWAIT (0) tries once and
 *     returns IPC_EAGAIN when it would block, a positive value waits at most
 *     that many milliseconds (CLOCK_MONOTONIC) and then returns
 *     IPC_ETIMEDOUT. Any other negative value is IPC_EINVAL.
 *   - Any process using an object may be killed at any instruction (SIGKILL,
 *     the OOM killer). The others never deadlock and never see an object in
 *     a broken state; what each object does about the dead process is said
 *     in its section.
 *   - Every ipc_X_new returns 0 | IPC_EINVAL (NULL out-pointer or a bad
 *     argument the function names) | IPC_ENOMEM (no memory for the handle
 *     or the mapping). Every ipc_X_open returns 0 | IPC_EINVAL (NULL
 *     out-pointer, bad name, unknown flag bits, a bad argument the function
 *     names) | IPC_ENOENT (no such object, and no IPC_CREATE) | IPC_EEXIST
 *     (IPC_CREATE | IPC_EXCL and it exists) | IPC_EACCES (its permission
 *     bits refuse the caller) | IPC_EPROTO (an object of another kind or
 *     version, or a damaged one) | IPC_ENOMEM (no memory, or no room in
 *     /dev/shm: the pages are reserved at creation) | IPC_EMFILE (out of
 *     file descriptors) | IPC_EIO (a system error with no closer meaning);
 *     see Errors below for how errno values are translated. After a failure *x
 *     holds no handle: it is NULL, or left as it was when the arguments
 *     were refused before any work. Every ipc_X_close accepts NULL and
 *     returns nothing.
 *   - Strings libipc returns (ipc_strerror, ipc_err_name,
 *     ipc_process_name, ipc_current_process_name) belong to libipc; never
 *     free them. The first two are static. ipc_process_name's string lives
 *     as long as its handle (until ipc_process_free); that of
 *     ipc_current_process_name for the life of the process.
 *   - Signal handlers: only ipc_event_set is async-signal-safe (an atomic
 *     load and one system call; no lock, no allocation). Call nothing else
 *     of libipc's from a signal handler: the others take locks or allocate.
 *     A common pattern: the handler sets an Event, a thread waits on it.
 *
 * Requirements: Linux 5.3 or later (pidfds for Process and Pool; shared
 * futexes and robust mutexes for everything; the biased queue producer is
 * revoked with membarrier(MEMBARRIER_CMD_GLOBAL), which a kernel booted
 * with nohz_full lacks, and queues fall back to locking without it; a
 * process whose seccomp filter denies membarrier and that becomes a
 * queue's second producer waits, in its put, until the first producer
 * puts again, closes or dies), glibc 2.30
 * or later, a tmpfs /dev/shm for named objects. Without pidfds
 * ipc_process_start returns IPC_ENOTSUP. The across-hosts calls use nanomsg and
 * libsodium, linked into libipc.
 *
 * Names: 1 to 200 characters of [A-Za-z0-9._-], with an optional leading
 * '/', not "." or "..". An object named "jobs" is the file
 * /dev/shm/libipc.jobs. Opening a name that holds an object of another kind,
 * of another libipc ABI version, or a truncated file is IPC_EPROTO.
 *
 * Thread safety: every function may be called from several threads of one
 * process on the same handle, except ipc_X_close, which must be the last
 * call on that handle.
 */
#ifndef LIBIPC_IPC_H
#define LIBIPC_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h> /* struct iovec: the batch calls */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IPC_API __attribute__((visibility("default")))
#else
#define IPC_API
#endif

/* ------------------------------------------------------------------------
 * Version and environment
 *
 * The version of this header; ipc_version() and ipc_version_number() give
 * the library actually loaded, which may be newer. IPC_VERSION_NUMBER is
 * major * 10000 + minor * 100 + patch.
 */
#define IPC_VERSION_MAJOR 0
#define IPC_VERSION_MINOR 1
#define IPC_VERSION_PATCH 0
#define IPC_VERSION_STRING "0.1.0"
#define IPC_VERSION_NUMBER                                     \
	(IPC_VERSION_MAJOR * 10000 + IPC_VERSION_MINOR * 100 + \
	 IPC_VERSION_PATCH)

/* The loaded library's version: a static string such as "0.1.0", and its
 * number as IPC_VERSION_NUMBER. */
IPC_API const char *ipc_version(void);
IPC_API int ipc_version_number(void);

/* CPUs online now (Python's multiprocessing.cpu_count()); at least 1. */
IPC_API int ipc_cpu_count(void);

/* The pid of the process this one was forked from, as it was at the fork
 * (Python's parent_process().pid): a child started by ipc_process_start, a
 * Pool worker, or a plain fork() of a process that uses libipc. -1 in a
 * process that was not forked so (the main program). It does not change if
 * the parent dies later. */
IPC_API pid_t ipc_parent_pid(void);

/* ------------------------------------------------------------------------
 * Errors
 *
 * Codes equal -errno where a POSIX meaning fits; library codes sit far from
 * errno. IPC_ERRORS(X) lists them all, so that a program can build its own
 * table: X(NAME, value, "message"). Every function returns one of these
 * codes and nothing else: a system call's errno is translated at the call
 * into the closest code (ENOSPC, EFBIG and EDQUOT into IPC_ENOMEM, except
 * the mqueue backend's system-wide queue limit, IPC_ENOSPC; EMFILE
 * and ENFILE into IPC_EMFILE, EROFS into IPC_EACCES, EINTR into IPC_EAGAIN,
 * ...), and an errno with no closer meaning becomes IPC_EIO.
 *
 * Codes that every call on an existing object may return, besides those
 * listed with it: IPC_ENOTRECOVERABLE when libipc finds the object's shared
 * memory in a state no libipc call can have left it in (a peer wrote into
 * it; docs/design.md, "Trust model"). The call then changes nothing,
 * except that a Barrier is marked broken.
 */
#define IPC_ERRORS(X)                                                      \
	X(IPC_EPERM, -1, "operation not permitted")                        \
	X(IPC_ENOENT, -2, "no such object")                                \
	X(IPC_EIO, -5, "unexpected system error")                          \
	X(IPC_ECHILD, -10, "a child process died")                         \
	X(IPC_EAGAIN, -11, "resource temporarily unavailable")             \
	X(IPC_ENOMEM, -12, "out of memory")                                \
	X(IPC_EACCES, -13, "permission denied")                            \
	X(IPC_EBUSY, -16, "resource busy")                                 \
	X(IPC_EEXIST, -17, "object already exists")                        \
	X(IPC_EMFILE, -24, "too many open files")                          \
	X(IPC_EDEADLK, -35, "the calling thread already holds it")         \
	X(IPC_EINVAL, -22, "invalid argument")                             \
	X(IPC_ENOSPC, -28, "a system limit on the number of objects")      \
	X(IPC_ENOTSUP, -95, "operation not supported")                     \
	X(IPC_EMSGSIZE, -90, "message too long")                           \
	X(IPC_EPROTO, -71, "not a libipc object of this kind and version") \
	X(IPC_ETIMEDOUT, -110, "timed out")                                \
	X(IPC_ECONNREFUSED, -111, "connection refused")                    \
	X(IPC_EOWNERDEAD, -130, "previous owner died")                     \
	X(IPC_ENOTRECOVERABLE, -131, "state not recoverable")              \
	X(IPC_ECLOSED, -10001, "object shut down")                         \
	X(IPC_EBROKEN, -10002, "barrier broken")                           \
	X(IPC_EAUTH, -10003, "peer failed authentication")

enum ipc_error {
#define IPC__ERR_ENUM(name, value, msg) name = (value),
	IPC_ERRORS(IPC__ERR_ENUM)
#undef IPC__ERR_ENUM
};

/* True when rc reports success: rc >= 0, or IPC_EOWNERDEAD (acquired; the
 * previous holder died holding the lock, and the data it guards may need
 * repair). The idiom for every call that acquires a lock:
 *
 *	int rc = ipc_lock_acquire(lk, IPC_FOREVER);
 *	if (!IPC_OK(rc))
 *		die(rc);                // not acquired
 *	if (rc == IPC_EOWNERDEAD)
 *		repair(data);           // acquired; the data may be
 *half-updated
 *	...
 *	ipc_lock_release(lk);
 *
 * rc is evaluated twice. */
#define IPC_OK(rc) ((rc) >= 0 || (rc) == IPC_EOWNERDEAD)

/* A static English message for err ("unknown error" for unknown codes; 0 is
 * "success"). Never NULL. */
IPC_API const char *ipc_strerror(int err);

/* The code's name, e.g. "IPC_ETIMEDOUT"; "IPC_EUNKNOWN" for unknown codes,
 * "IPC_OK" for 0. Never NULL. */
IPC_API const char *ipc_err_name(int err);

/* ------------------------------------------------------------------------
 * Timeouts and open flags
 */
#define IPC_FOREVER (-1)
#define IPC_NOWAIT 0
/* "Use the object's own default timeout", for the calls that say they
 * accept it (ipc_barrier_wait, whose default is given at creation, as
 * Python's Barrier(timeout=...)). Everywhere else it is a negative value
 * other than IPC_FOREVER, hence IPC_EINVAL. */
#define IPC_DEFAULT_TIMEOUT (-2)

/* ipc_X_open flags. The low nine bits are the permission bits of a created
 * object (0 means 0600), as with open(2): IPC_CREATE | 0660. The umask does
 * not apply. */
#define IPC_CREATE 0x1000 /* make it if it does not exist */
#define IPC_EXCL 0x2000	  /* with IPC_CREATE: IPC_EEXIST if it exists */
/* Accept an existing object whoever owns its file. Without this flag,
 * opening a name (with or without IPC_CREATE) whose file belongs to a user
 * other than the caller's effective user or root is IPC_EACCES: another
 * user could have made the name first (0666) to hand this program an
 * object it controls, and could truncate the file under it later. */
#define IPC_ANY_OWNER 0x4000
#define IPC_MODE_MASK 0777

/* Remove a name. Processes that have the object open keep using it; a later
 * ipc_X_open of the name makes a new object. 0 | IPC_ENOENT if there is none
 * | IPC_EINVAL for a bad name | IPC_EPERM / IPC_EACCES when the caller may
 * not remove it (/dev/shm lets only the owner remove a file). */
IPC_API int ipc_unlink(const char *name);

/* ------------------------------------------------------------------------
 * Lock — mutual exclusion between processes (and threads).
 *
 * Mutex semantics: only the thread that acquired it may release it. If the
 * holder dies, the next acquirer gets IPC_EOWNERDEAD *with the lock held and
 * already usable again*: it learns that whatever the lock guards may be
 * half-updated, repairs it, and releases as usual. Waiters are woken by the
 * kernel when the holder dies, so nobody waits for a dead process.
 */
typedef struct ipc_lock ipc_lock;

IPC_API int ipc_lock_new(ipc_lock **lk);
IPC_API int ipc_lock_open(ipc_lock **lk, const char *name, int flags);

/* 0 | IPC_EOWNERDEAD (acquired; the previous holder died holding it: a
 *     success, see IPC_OK) | IPC_EAGAIN (IPC_NOWAIT and held)
 *   | IPC_ETIMEDOUT | IPC_EDEADLK (the calling thread already holds it)
 *   | IPC_EINVAL (NULL lk, bad timeout)
 *   | IPC_ENOTRECOVERABLE (the mutex in shared memory was damaged: its kind
 *     is not one libipc makes, or, waiting with IPC_FOREVER, its owner
 *     field names no thread that could release it; nothing is locked) */
IPC_API int ipc_lock_acquire(ipc_lock *lk, int timeout_ms);

/* 0 | IPC_EPERM when the calling thread does not hold it
 *   | IPC_ENOTRECOVERABLE (as for acquire; the lock is left as it is). */
IPC_API int ipc_lock_release(ipc_lock *lk);

/* Python's Lock.locked(): 1 if the lock's word names a holder, 0 if it is
 * free, at the moment it was looked at (a snapshot that may be stale by the
 * time the caller reads it; never use it to decide to release). A lock
 * whose holder died reads as free, once the kernel has marked it (at the
 * holder's exit): the next acquirer takes it (with IPC_EOWNERDEAD). The
 * holder named is not checked for being alive: a word damaged to name a
 * thread that does not exist reads as held. | IPC_EINVAL (NULL lk) |
 * IPC_ENOTRECOVERABLE (the mutex's kind was damaged) | IPC_ENOTSUP (a C library
 * other than glibc, whose mutex does not name its owner). Takes no lock and
 * never blocks. */
IPC_API int ipc_lock_locked(ipc_lock *lk);
IPC_API void ipc_lock_close(ipc_lock *lk);

/* ------------------------------------------------------------------------
 * RLock — a Lock its holder may acquire again; it is free once released as
 * many times as acquired. Same returns as Lock, except that acquiring it
 * again is 0, not IPC_EDEADLK; a dead holder's count is dropped and the
 * next acquirer gets IPC_EOWNERDEAD (acquired: see IPC_OK) with a count of
 * one.
 */
typedef struct ipc_rlock ipc_rlock;

IPC_API int ipc_rlock_new(ipc_rlock **lk);
IPC_API int ipc_rlock_open(ipc_rlock **lk, const char *name, int flags);
IPC_API int ipc_rlock_acquire(ipc_rlock *lk, int timeout_ms);
IPC_API int ipc_rlock_release(ipc_rlock *lk);
/* 1 if held (at any depth, by any thread), 0 if free: as ipc_lock_locked. */
IPC_API int ipc_rlock_locked(ipc_rlock *lk);
IPC_API void ipc_rlock_close(ipc_rlock *lk);

/* ------------------------------------------------------------------------
 * Event — a flag that processes wait on.
 *
 * set() wakes every waiter; a waiter returns 0 if the flag was set at any
 * moment during its wait, even if it was cleared again before the waiter ran.
 * Setting is one atomic step in the kernel (the flag and the wake-up cannot
 * be separated by a crash), so a setter killed mid-call either set the flag
 * and woke everyone, or did nothing.
 */
typedef struct ipc_event ipc_event;

IPC_API int ipc_event_new(ipc_event **ev);
IPC_API int ipc_event_open(ipc_event **ev, const char *name, int flags);
/* Set the flag and wake every waiter. 0 (also when already set)
 * | IPC_EINVAL (NULL ev). Async-signal-safe. */
IPC_API int ipc_event_set(ipc_event *ev);
/* Clear the flag. 0 (also when already clear) | IPC_EINVAL (NULL ev). */
IPC_API int ipc_event_clear(ipc_event *ev);
IPC_API bool ipc_event_is_set(ipc_event *ev); /* false for NULL */

/* 0 once set | IPC_EAGAIN | IPC_ETIMEDOUT */
IPC_API int ipc_event_wait(ipc_event *ev, int timeout_ms);
IPC_API void ipc_event_close(ipc_event *ev);

/* ------------------------------------------------------------------------
 * Condition — a condition variable on a robust lock: its own, or a Lock or
 * RLock given at creation (Python's Condition(lock)).
 *
 * Its own lock is re-entrant, as Python's default RLock: the holder may
 * acquire it again and must release it as many times. ipc_cond_wait
 * releases every level the caller holds (of its own lock or of an RLock)
 * and restores them all before it returns.
 *
 * Hold the lock (ipc_cond_acquire) around ipc_cond_wait and ipc_cond_notify.
 * As with every condition variable, a wait may return 0 without a notify
 * that was meant for it (a notify(1) can wake a second waiter that was just
 * going to sleep): loop on your predicate, or use ipc_cond_wait_for. A
 * waiter that dies never swallows a notify meant for the living, and a
 * notifier killed mid-call either notified or did nothing.
 */
typedef struct ipc_cond ipc_cond;

/* A Condition on its own (re-entrant) lock. ipc_cond_open of a name whose
 * Condition was built on a Lock or RLock is IPC_EINVAL: open it with the
 * same lock through ipc_cond_open_with_lock / _with_rlock. */
IPC_API int ipc_cond_new(ipc_cond **c);
IPC_API int ipc_cond_open(ipc_cond **c, const char *name, int flags);

/* A Condition on lk (Python's Condition(lock)): ipc_cond_acquire/release
 * act on lk, and holding lk through ipc_lock_acquire / ipc_rlock_acquire is
 * the same as holding the Condition's lock. lk must stay open for as long
 * as c is; closing c leaves lk alone. Anonymous: a child forked afterwards
 * inherits both handles. Named: the segment records which lock it was
 * created on (the lock object's identity, not its handle), and every
 * opener must pass a handle to that same object; a different Lock or
 * RLock, one of the other type, or opening a Condition made on its own
 * lock this way, is IPC_EINVAL and opens nothing. Also IPC_EINVAL for a
 * NULL lk, and IPC_ENOTSUP for a handle that is not in this host's shared
 * memory (a Lock reached over the network). */
IPC_API int ipc_cond_new_with_lock(ipc_cond **c, ipc_lock *lk);
IPC_API int ipc_cond_new_with_rlock(ipc_cond **c, ipc_rlock *lk);
IPC_API int ipc_cond_open_with_lock(ipc_cond **c, const char *name, int flags,
				    ipc_lock *lk);
IPC_API int ipc_cond_open_with_rlock(ipc_cond **c, const char *name, int flags,
				     ipc_rlock *lk);

/* Same returns as ipc_rlock_acquire (its own lock, or an RLock: acquiring
 * again is 0) or ipc_lock_acquire (on a Lock: again is IPC_EDEADLK),
 * IPC_EOWNERDEAD included (acquired: a holder of the lock died; see
 * IPC_OK). */
IPC_API int ipc_cond_acquire(ipc_cond *c, int timeout_ms);

/* Release one level. 0 | IPC_EPERM when the calling thread does not hold
 * the lock. */
IPC_API int ipc_cond_release(ipc_cond *c);

/* Release the lock (every level the caller holds), sleep until notified or
 * timed out, reacquire the lock with as many levels (with no time limit,
 * as Python does) and return:
 * 0 | IPC_ETIMEDOUT | IPC_EAGAIN (IPC_NOWAIT) | IPC_EOWNERDEAD (notified or
 * timed out, and reacquiring found that a holder died with the lock; the
 * caller holds it, see IPC_OK) | IPC_EPERM (the caller does not hold the
 * lock; nothing happened) | IPC_ENOTRECOVERABLE (the lock's mutex was
 * damaged: no call can use it any more). */
IPC_API int ipc_cond_wait(ipc_cond *c, int timeout_ms);

/* Wait until pred(arg) is true, evaluating it with the lock held: first
 * before any wait, then after each wake-up. 0 once it is true
 * | IPC_ETIMEDOUT (or IPC_EAGAIN) with it still false | IPC_EPERM | IPC_EINVAL
 * (NULL pred). IPC_EOWNERDEAD from a reacquire is returned at once, with the
 * lock held and pred not evaluated again (see IPC_OK); so is
 * IPC_ENOTRECOVERABLE (the lock's mutex was damaged: no call can use it
 * any more). */
IPC_API int ipc_cond_wait_for(ipc_cond *c, bool (*pred)(void *arg), void *arg,
			      int timeout_ms);

/* Wake up to n waiters (n >= 1) / all waiters. IPC_EPERM if the caller does
 * not hold the lock, IPC_EINVAL for n < 1. */
IPC_API int ipc_cond_notify(ipc_cond *c, int n);
IPC_API int ipc_cond_notify_all(ipc_cond *c);
IPC_API void ipc_cond_close(ipc_cond *c);

/* ------------------------------------------------------------------------
 * Semaphore and BoundedSemaphore.
 *
 * A counter: acquire takes one (waiting while it is 0), release gives one
 * back. With max > 0 it is a BoundedSemaphore: a release that would take
 * the value past max is IPC_EINVAL and changes nothing. Values are at most
 * IPC_SEM_VALUE_MAX. Like a SysV semaphore without SEM_UNDO, a permit taken
 * by a process that dies without releasing it stays taken.
 */
typedef struct ipc_sem ipc_sem;

#define IPC_SEM_VALUE_MAX 0x7fffffff

/* IPC_EINVAL if max > 0 and value > max, or either exceeds
 * IPC_SEM_VALUE_MAX. */
IPC_API int ipc_sem_new(ipc_sem **s, unsigned value, unsigned max);

/* value and max apply when the call creates the semaphore. Opening an
 * existing one with a max that differs from its own (max != 0) is
 * IPC_EINVAL. */
IPC_API int ipc_sem_open(ipc_sem **s, const char *name, int flags,
			 unsigned value, unsigned max);

/* 0 | IPC_EAGAIN | IPC_ETIMEDOUT | IPC_ENOTRECOVERABLE (the shared value
 * is above IPC_SEM_VALUE_MAX, which only a damaged segment holds; nothing
 * is taken) */
IPC_API int ipc_sem_acquire(ipc_sem *s, int timeout_ms);

/* 0 | IPC_EINVAL (a BoundedSemaphore already at max, or the value at
 * IPC_SEM_VALUE_MAX) | IPC_ENOTRECOVERABLE (as for acquire). The ceiling
 * is the one the handle found at open, whatever the segment says later. */
IPC_API int ipc_sem_release(ipc_sem *s);

/* Python's release(n): give back n units (n >= 1) at once and wake up to n
 * waiters. All or nothing: a BoundedSemaphore whose value would pass max,
 * or any value that would pass IPC_SEM_VALUE_MAX, is IPC_EINVAL and the
 * value is unchanged. 0 | IPC_EINVAL (NULL s, n 0 or over
 * IPC_SEM_VALUE_MAX, or past the ceiling) | IPC_ENOTRECOVERABLE (as for
 * acquire). A releaser killed inside the call released all n units or none;
 * waiters it had not woken yet find the units within about a tenth of a
 * second. */
IPC_API int ipc_sem_release_n(ipc_sem *s, unsigned n);

/* The current value (a snapshot, 0 .. IPC_SEM_VALUE_MAX, so never a value
 * that reads as an error code), IPC_EINVAL for NULL, or
 * IPC_ENOTRECOVERABLE (as for acquire). */
IPC_API int ipc_sem_value(ipc_sem *s);
IPC_API void ipc_sem_close(ipc_sem *s);

/* ------------------------------------------------------------------------
 * Barrier — `parties` processes wait until all have arrived.
 *
 * ipc_barrier_wait returns the caller's arrival index, 0 .. parties-1 (the
 * last to arrive gets parties-1 and releases the others), then the barrier
 * is ready for the next round. It breaks when a wait times out (that caller
 * gets IPC_ETIMEDOUT, every other waiter IPC_EBROKEN), on ipc_barrier_abort,
 * and when a party dies while waiting (the others get IPC_EBROKEN within
 * about a tenth of a second). A broken barrier fails every wait with
 * IPC_EBROKEN until ipc_barrier_reset.
 */
typedef struct ipc_barrier ipc_barrier;

#define IPC_BARRIER_MAX_PARTIES 4096

/* IPC_EINVAL for parties 0 or over IPC_BARRIER_MAX_PARTIES. */
IPC_API int ipc_barrier_new(ipc_barrier **b, unsigned parties);

/* parties applies when the call creates the barrier; 0 accepts an existing
 * barrier's count, any other count that differs from it is IPC_EINVAL. */
IPC_API int ipc_barrier_open(ipc_barrier **b, const char *name, int flags,
			     unsigned parties);

/* Python's Barrier(parties, action, timeout). A zeroed attr (or NULL) is
 * the plain barrier above.
 *
 * action: run by exactly one party, the last to arrive, once per round,
 * after every party has arrived and before any is released; the others'
 * waits return only after it does. It runs in the calling process with
 * the barrier's internal lock held: it must not call ipc_barrier_wait,
 * abort or reset on the same barrier (they fail IPC_EDEADLK), and every
 * other party waits for it, so keep it short. If it returns nonzero the
 * round breaks: every party, the one that ran it included, gets
 * IPC_EBROKEN, as Python's parties get BrokenBarrierError when the action
 * raises. If the process running it dies inside it, the round breaks too
 * (the waiters get IPC_EBROKEN within about a tenth of a second). A party
 * whose wait times out while the action runs breaks the round as a
 * timeout always does. The action belongs to the handle, not to the
 * shared object (a function pointer means nothing in another program): a
 * child forked after ipc_barrier_new_attr inherits it; each process that
 * opens a named barrier gives its own, or none (then a round it completes
 * runs none).
 *
 * timeout_ms: the default timeout of a wait given IPC_DEFAULT_TIMEOUT;
 * IPC_FOREVER or a positive count of milliseconds, and 0 means
 * IPC_FOREVER (Python's None). It belongs to the shared object: fixed
 * when the barrier is created, found by every opener. Opening an existing
 * barrier with a nonzero timeout_ms that differs from its own is
 * IPC_EINVAL; 0 accepts it. */
typedef int (*ipc_barrier_action_fn)(void *arg);
typedef struct ipc_barrier_attr {
	ipc_barrier_action_fn action; /* NULL: none */
	void *action_arg;	      /* passed to action */
	int timeout_ms;		      /* 0 / IPC_FOREVER / positive ms */
} ipc_barrier_attr;

/* As ipc_barrier_new / ipc_barrier_open, with attr (NULL: none); also
 * IPC_EINVAL for a timeout_ms below IPC_FOREVER, and IPC_EPROTO for a
 * segment whose stored default timeout is out of range. */
IPC_API int ipc_barrier_new_attr(ipc_barrier **b, unsigned parties,
				 const ipc_barrier_attr *attr);
IPC_API int ipc_barrier_open_attr(ipc_barrier **b, const char *name, int flags,
				  unsigned parties,
				  const ipc_barrier_attr *attr);

/* timeout_ms may also be IPC_DEFAULT_TIMEOUT: the barrier's default.
 * index | IPC_EBROKEN | IPC_ETIMEDOUT | IPC_EAGAIN (IPC_NOWAIT: not last,
 * or the internal lock stayed held for over a millisecond)
 * | IPC_ENOTRECOVERABLE (the shared count of waiting parties is out of
 * range, which only a damaged segment holds: the barrier is broken, its
 * count cleared, and reset() makes it usable again; or its internal lock
 * was damaged, found also by a party already waiting). The timeout covers
 * the wait for the internal lock too. */
IPC_API int ipc_barrier_wait(ipc_barrier *b, int timeout_ms);

/* Break it: current and future waiters get IPC_EBROKEN until reset.
 * 0 (also when already broken) | IPC_EINVAL (NULL b)
 * | IPC_EBUSY (its internal lock, held by other calls for a few stores
 * only, stayed held for a second: a stopped peer or a damaged segment;
 * nothing changed) | IPC_ENOTRECOVERABLE (its internal state could not be
 * repaired after a crash). */
IPC_API int ipc_barrier_abort(ipc_barrier *b);

/* Back to the empty, unbroken state; current waiters get IPC_EBROKEN.
 * Same returns as ipc_barrier_abort. */
IPC_API int ipc_barrier_reset(ipc_barrier *b);

/* The party count the handle found at open (0 for NULL). */
IPC_API unsigned ipc_barrier_parties(ipc_barrier *b);
/* The default timeout (IPC_FOREVER or positive ms; IPC_EINVAL for NULL). */
IPC_API int ipc_barrier_default_timeout(ipc_barrier *b);
/* Parties waiting now, 0 .. parties-1 (0 for NULL, or while the shared
 * count is out of range). */
IPC_API unsigned ipc_barrier_n_waiting(ipc_barrier *b);
IPC_API bool ipc_barrier_broken(ipc_barrier *b); /* false for NULL */
IPC_API void ipc_barrier_close(ipc_barrier *b);

/* ------------------------------------------------------------------------
 * Queue and JoinableQueue — FIFO queues of byte-string messages between
 * any number of producer and consumer processes. One type serves both; a
 * JoinableQueue also counts unfinished tasks (task_done / join).
 *
 * Messages are copied in and out; each is 0 .. max_msg_size bytes. A queue
 * holds at most `maxsize` messages (0: no item limit) in `capacity` bytes of
 * storage (each message takes its length rounded up to 8, plus 8).
 *
 * Crash safety: any producer or consumer may be killed at any instruction.
 * A message is either wholly in the queue or not at all (never torn, never
 * duplicated, never invented); qsize matches the contents; blocked peers keep
 * working. A message whose put returned 0 is delivered, unless the consumer
 * that got it died after taking it — and on a JoinableQueue not even then:
 * a task got by a consumer that dies (or closes the queue) before its
 * task_done is queued again for another consumer, so join() never hangs on
 * a dead consumer. Death is detected by the kernel (robust mutexes), within
 * about a tenth of a second of a consumer or joiner looking.
 *
 * On a JoinableQueue, a consumer is one thread using one handle: each
 * thread that calls get on a handle is a consumer of its own, and threads
 * sharing a handle never complete, requeue or free each other's tasks.
 * task_done completes the oldest unfinished task of the calling thread on
 * that handle (call it once per get, from the thread that got it, as in
 * Python). A consumer thread that exits with unfinished tasks is treated
 * like a dead process: its tasks (only its own) are queued again.
 *
 * Timeouts hold whatever a peer does: a call with a timeout returns within
 * it even while a peer that holds the queue's lock or is mid-put is
 * stopped (SIGSTOP, a debugger). IPC_NOWAIT then waits at most about 1 ms
 * for the peer before returning IPC_EAGAIN. One exception: the put that
 * takes the fast path away from a first producer which does not answer
 * within about 2 ms (idle, or stopped mid-put) runs one
 * membarrier(MEMBARRIER_CMD_GLOBAL), an RCU grace period (10 to 30 ms
 * measured), whatever its timeout, IPC_NOWAIT included; that happens once
 * per revocation, and the puts after it keep their timeouts. A blocked call
 * sleeps in the kernel; it does not spin. The timeout of ipc_queue_put,
 * ipc_queue_get and ipc_queue_get_alloc starts when the call first has to wait
 * (after its first attempt, which does not wait): a call that finds room or a
 * message at once never reads the clock.
 *
 * Damage: a process that maps a queue can write anything into it. libipc
 * bounds-checks every index and length it reads from the segment before
 * using it, so damage never makes a call read or write outside the
 * mapping, loop without its deadline or die by a signal. A call that finds
 * the segment damaged marks the queue broken for every process: it and
 * every later call on the queue (any handle) returns IPC_ENOTRECOVERABLE.
 * Damage that still looks like valid records (a message's bytes, a
 * plausible length) is not detected: it is delivered as written.
 *
 * Shutdown persists in the object: a named queue once shut down stays shut
 * down for every process that opens it, later runs of the program included,
 * until the name is unlinked (ipc_unlink) and the queue made again.
 */
typedef struct ipc_queue ipc_queue;

#define IPC_BACKEND_SHM 0    /* shared-memory ring (default) */
#define IPC_BACKEND_MQUEUE 1 /* POSIX message queue, see below */

/* The POSIX mqueue backend (attr.backend = IPC_BACKEND_MQUEUE).
 *
 * The queue named "jobs" is the POSIX message queue "/libipc.jobs" (see
 * mq_overview(7)) plus a small companion object, the file
 * /dev/shm/libipc.jobs (kind "mqueue"), holding the shutdown flag and the
 * JoinableQueue accounting. Each message is one mq message holding exactly
 * the message bytes, sent at priority 0, so programs that use mq_send and
 * mq_receive on "/libipc.jobs" interoperate both ways. Creating a queue
 * whose mq a plain program already made adopts that mq and its sizes. An
 * anonymous queue (name NULL) uses an mq that has no name. ipc_unlink
 * removes both the companion and the mq.
 *
 * Sizes: maxsize is the mq's mq_maxmsg (0: /proc/sys/fs/mqueue/msg_default),
 * max_msg_size its mq_msgsize (0: msgsize_default); capacity is ignored.
 * System limits are refused at open, never truncated:
 *   maxsize over /proc/sys/fs/mqueue/msg_max           IPC_EINVAL
 *   max_msg_size over /proc/sys/fs/mqueue/msgsize_max  IPC_EMSGSIZE
 *   queues_max message queues exist already            IPC_ENOSPC
 *   RLIMIT_MSGQUEUE (bytes of mq per user) exceeded    IPC_ENOMEM
 * (a process with CAP_SYS_RESOURCE may exceed the first three, up to the
 * kernel's hard limits, as mq_open(3) says).
 *
 * Semantics are those of the shm queue, with these differences, all from
 * what the kernel offers:
 *   - ipc_queue_get with cap below max_msg_size is IPC_EMSGSIZE whatever
 *     the next message's length (the kernel's rule for mq_receive); the
 *     message stays queued. ipc_queue_get_alloc always fits.
 *   - Blocked callers notice a shutdown within about a tenth of a second.
 *   - A put or get is one atomic system call: a producer killed at any
 *     point put the message or did not. A consumer killed after the kernel
 *     handed it a message, and before its get returned, loses that message.
 *   - JoinableQueue: unfinished counts the messages in the mq plus the
 *     tasks consumers got and have not task_done'd, so plain mq_send
 *     producers and mq_receive consumers keep it true (a message taken by
 *     a plain mq_receive counts as done). A consumer that dies (or closes
 *     its handle) holding tasks cannot give them back, their bytes having
 *     left the kernel: they are dropped from the count, so join() never
 *     hangs on a dead consumer, but they are not queued again.
 */

typedef struct ipc_queue_attr {
	size_t maxsize;	 /* most messages held; 0: only capacity bounds it */
	size_t capacity; /* bytes of storage (rounded up to a power of two,
			    at least 4 KiB); 0: 1 MiB */
	size_t max_msg_size; /* largest message; 0: capacity / 4 */
	bool joinable;	     /* task_done()/join() allowed */
	int backend;	     /* IPC_BACKEND_SHM or IPC_BACKEND_MQUEUE */
	unsigned mode; /* named: permission bits; 0: from flags, or 0600 */
} ipc_queue_attr;

#define IPC_QUEUE_MAX_CAPACITY ((size_t)1 << 30)
/* JoinableQueue consumers (threads, in any number of processes) at once. */
#define IPC_QUEUE_MAX_CONSUMERS 1024

/* An anonymous Queue / JoinableQueue with default attributes (1 MiB) and
 * the given item limit (0: none). IPC_EINVAL for maxsize over 2^31. */
IPC_API int ipc_queue_new(ipc_queue **q, size_t maxsize);
IPC_API int ipc_joinable_queue_new(ipc_queue **q, size_t maxsize);

/* Make or open a queue. name NULL: anonymous. attr NULL: defaults. Opening
 * an existing queue ignores attr's sizes (the queue keeps its own) except
 * `joinable`, which must match: a Queue opened with a joinable attr, or a
 * JoinableQueue opened with a non-NULL attr that is not, is IPC_EPROTO (an
 * object of the other kind); a NULL attr accepts either. IPC_EINVAL for
 * sizes out of range or max_msg_size + 8 over capacity, or an unknown
 * backend; IPC_EPROTO also for a name that holds a queue of the other
 * backend (or another kind of object), or an existing queue whose
 * geometry is inconsistent (damaged); IPC_ENOTSUP for a backend this build
 * lacks; the mqueue backend's own errors are listed above; the other codes
 * of every ipc_X_open. */
IPC_API int ipc_queue_open(ipc_queue **q, const char *name, int flags,
			   const ipc_queue_attr *attr);

/* Append a copy of msg[0..len). 0 | IPC_EAGAIN (IPC_NOWAIT, full)
 * | IPC_ETIMEDOUT (full) | IPC_EMSGSIZE (len > max_msg_size)
 * | IPC_ECLOSED (shut down) | IPC_EINVAL (NULL msg with len > 0)
 * | IPC_EBUSY (the calling thread holds a zero-copy reservation on this
 *   queue, through this or another handle: see ipc_queue_reserve)
 * | IPC_ENOTRECOVERABLE (the queue is broken: see "Damage").
 * On a full shared-memory queue the put waits (spinning briefly, then
 * asleep), and producers that wait together take turns: a waiting producer
 * first waits for an eighth of the capacity to be free (a few milliseconds
 * at most), then for room for its own message; it never fails for want of
 * more room than it needs. */
IPC_API int ipc_queue_put(ipc_queue *q, const void *msg, size_t len,
			  int timeout_ms);

/* Remove the oldest message into buf[0..cap): its length
 * | IPC_EAGAIN / IPC_ETIMEDOUT (empty) | IPC_EMSGSIZE (cap too small; the
 * message stays queued) | IPC_ECLOSED (shut down and drained)
 * | IPC_EBUSY (JoinableQueue: the calling thread is not a consumer yet
 *   and IPC_QUEUE_MAX_CONSUMERS live consumers exist)
 * | IPC_ENOTRECOVERABLE (the queue is broken: see "Damage").
 * On x86, a shared-memory Queue's get that finds little queued while a
 * producer is still putting lets it get ahead for up to a few
 * microseconds before it takes the oldest message (a stream then reads
 * whole cache lines). Never under IPC_NOWAIT, where the process could run
 * on one CPU only when it opened the handle, for a message too long for
 * buf, in a get that found the queue empty, or in the next get through
 * the same handle after one that returned IPC_EAGAIN or IPC_ETIMEDOUT
 * (if it is the last handle the thread waited on): a message that comes
 * alone is taken at once. */
IPC_API ssize_t ipc_queue_get(ipc_queue *q, void *buf, size_t cap,
			      int timeout_ms);

/* As ipc_queue_get, into a malloc'd buffer the caller frees (*msg is
 * NULL on error; a 0-byte message still gets a buffer). */
IPC_API ssize_t ipc_queue_get_alloc(ipc_queue *q, void **msg, int timeout_ms);

/* JoinableQueue: the calling thread finished its oldest unfinished task
 * got through this handle (the one it got first). 0 | IPC_EINVAL (no unfinished
 * task of this thread on this handle, or not joinable) | IPC_ENOTRECOVERABLE
 * (broken, or the consumers' lock names an owner that cannot exist). In
 * the usual pattern, one task at a time (get, work, task_done), it takes
 * no lock, and neither does the get; otherwise (several tasks outstanding,
 * a task got again after its consumer died) it may wait for a live peer
 * that holds the consumers' lock (it has no timeout). A consumer killed
 * inside task_done has that task either counted done or queued again,
 * never both. */
IPC_API int ipc_queue_task_done(ipc_queue *q);

/* JoinableQueue: wait until every message ever put has been task_done.
 * 0 | IPC_EAGAIN | IPC_ETIMEDOUT | IPC_EINVAL (not joinable)
 * | IPC_ENOTRECOVERABLE (broken). */
IPC_API int ipc_queue_join(ipc_queue *q, int timeout_ms);

/* Messages waiting to be got (a snapshot), or IPC_EINVAL. */
IPC_API long ipc_queue_qsize(ipc_queue *q);
IPC_API bool ipc_queue_empty(ipc_queue *q); /* true for NULL */
IPC_API bool ipc_queue_full(ipc_queue *q);  /* false for NULL */

/* JoinableQueue: tasks put and not yet done (a snapshot), or IPC_EINVAL. */
IPC_API long ipc_queue_unfinished(ipc_queue *q);

/* Shut the queue down for every process: puts fail with IPC_ECLOSED, gets
 * return what is left and then IPC_ECLOSED; blocked callers wake. It cannot
 * be undone, and a named queue stays shut down until unlinked (above).
 * 0 (also when already shut down) | IPC_EINVAL (NULL q). */
IPC_API int ipc_queue_shutdown(ipc_queue *q);

/* Python 3.13's shutdown(immediate=True): shut the queue down as
 * ipc_queue_shutdown does and drop every message still queued, so that
 * blocked and later gets return IPC_ECLOSED at once and puts fail with
 * IPC_ECLOSED. On a JoinableQueue each dropped message counts as a done
 * task, so join() returns once the tasks consumers already got are
 * task_done'd (those still need their task_done, as before). A task whose
 * consumer dies after the shutdown was not pending when it happened: it
 * is queued again as ever (nothing is lost), and a later get returns it
 * (a second ipc_queue_shutdown_immediate drops it).
 * Crash safety: a process killed during the call leaves the queue shut
 * down, with every message either still queued or dropped and counted
 * done — never lost from the count; the next process to touch the
 * consumers' side finishes the drop. It waits for a live peer that holds
 * the producers' or consumers' lock (it has no timeout). Calling it again,
 * or after ipc_queue_shutdown, drops what is queued now.
 * 0 | IPC_EINVAL (NULL q) | IPC_ENOTRECOVERABLE (broken)
 * | IPC_EBUSY (the calling thread holds a zero-copy reservation on this
 *   queue, through this or another handle, which the drop would wait for:
 *   nothing was done)
 * | IPC_ENOTSUP (a remote queue whose server lacks it). */
IPC_API int ipc_queue_shutdown_immediate(ipc_queue *q);

/* Batch calls: many messages per call, for callers that have them at hand.
 * Each message is exactly what ipc_queue_put / ipc_queue_get would carry
 * alone: a batch is whole messages, each put or got exactly once, in
 * order, with the crash contract above per message: a producer killed mid-
 * batch leaves a prefix of its batch put, each message whole, and the rest
 * not put; a consumer killed mid-batch took a prefix (on a Queue lost with
 * it, as a single get's message is; on a JoinableQueue queued again) and
 * left the rest queued. Never a message torn, doubled or invented. A batch
 * is not atomic as a whole: consumers may see its first messages before
 * its last are put, and other producers' messages may sit between them.
 *
 * ipc_queue_put_many puts msgs[0].iov_base[0..iov_len), msgs[1], ... in
 * order, waiting for room as ipc_queue_put does, all before one deadline.
 * Returns how many were put: n, or fewer when the next one could not be
 * put in time (or the queue shut down meanwhile); if not even the first
 * could, that one's error: IPC_EAGAIN | IPC_ETIMEDOUT (full) | IPC_ECLOSED
 * | IPC_ENOTRECOVERABLE. Refused before anything is put: IPC_EINVAL (NULL q
 * or msgs, n == 0 or over SSIZE_MAX, an iov_base NULL with iov_len > 0),
 * IPC_EMSGSIZE (some iov_len over max_msg_size), IPC_EBUSY (as for
 * ipc_queue_put). msgs is only read. */
IPC_API ssize_t ipc_queue_put_many(ipc_queue *q, const struct iovec *msgs,
				   size_t n, int timeout_ms);

/* ipc_queue_get_many waits for the first message as ipc_queue_get does,
 * then takes up to n - 1 more that are queued already, without waiting:
 * message i goes into msgs[i].iov_base, whose capacity is msgs[i].iov_len
 * on entry; on return iov_len is the message's length. Returns how many
 * were got (1..n); a message that does not fit its buffer stops the batch
 * and stays queued (IPC_EMSGSIZE if it is the first). Errors as for
 * ipc_queue_get, when no message was got; IPC_EINVAL also for NULL msgs,
 * n == 0 or over SSIZE_MAX, an iov_base NULL with iov_len > 0. On a
 * JoinableQueue every message got is one task (one task_done each). */
IPC_API ssize_t ipc_queue_get_many(ipc_queue *q, struct iovec *msgs, size_t n,
				   int timeout_ms);

/* Zero copy, for large messages: write a message in place in the queue's
 * storage, and read one there, instead of copying it in and out. The shm
 * backend only; the mqueue and remote backends return IPC_ENOTSUP.
 *
 * ipc_queue_reserve makes room for a message of up to len bytes at the
 * end of the queue, waiting for room as ipc_queue_put does, and points
 * *buf at those len bytes: contiguous, writable, in shared memory. The
 * caller writes the message there and publishes it with ipc_queue_commit
 * (its final length, at most len), or drops it with ipc_queue_cancel.
 * Until then the reservation holds the queue's producer side: other
 * producers wait (keep it short), and the reserving thread's own puts on
 * this handle return IPC_EBUSY. One reservation per handle at a time;
 * commit and cancel come from the thread that reserved. Closing the handle
 * from that thread cancels it.
 * Crash safety: a producer killed (or a thread that exits) between reserve
 * and commit leaves no message and no lost space: the next producer
 * repairs the producer side, exactly as after a put killed before it
 * published. A commit is one store, like a put's: the message is wholly
 * in or not at all.
 * reserve: 0 | IPC_EAGAIN / IPC_ETIMEDOUT (full) | IPC_EMSGSIZE (len over
 * max_msg_size) | IPC_ECLOSED | IPC_EBUSY (this handle has a reservation
 * open) | IPC_EINVAL (NULL q or buf, bad timeout; *buf is NULL on every
 * error) | IPC_ENOMEM (the contiguous view could not be mapped)
 * | IPC_ENOTSUP | IPC_ENOTRECOVERABLE.
 * commit: 0 | IPC_EINVAL (no reservation of this thread on q, or len over
 * the reserved length: the reservation stays open). cancel: 0 | IPC_EINVAL
 * (no reservation of this thread on q). */
IPC_API int ipc_queue_reserve(ipc_queue *q, size_t len, void **buf,
			      int timeout_ms);
IPC_API int ipc_queue_commit(ipc_queue *q, size_t len);
IPC_API int ipc_queue_cancel(ipc_queue *q);

/* ipc_queue_borrow waits for a message as ipc_queue_get does and, instead
 * of copying it, lends it: *msg points at its bytes in the queue's storage
 * (contiguous, read-only for the borrower) and the length is returned.
 * JoinableQueue only: a borrowed message is a task, its bytes stay in
 * place until the task is done, and ipc_queue_give_back is its task_done
 * (it completes the calling thread's oldest unfinished task on the handle,
 * as ipc_queue_task_done does: borrow and give back in order). After
 * give_back the bytes may be reused at once. A consumer killed while it
 * holds a borrowed message has an unfinished task: it is queued again,
 * like every task of a dead consumer, so nothing is lost. On a plain Queue
 * a message leaves the storage as it is got, so there is nothing to lend:
 * IPC_ENOTSUP (use a JoinableQueue, or ipc_queue_get).
 * borrow: the length | the errors of ipc_queue_get except IPC_EMSGSIZE
 * (*msg is NULL on every error) | IPC_ENOTSUP. give_back: 0 | the errors
 * of ipc_queue_task_done | IPC_ENOTSUP. */
IPC_API ssize_t ipc_queue_borrow(ipc_queue *q, const void **msg,
				 int timeout_ms);
IPC_API int ipc_queue_give_back(ipc_queue *q);

/* Drop this handle. The unfinished tasks of every thread that consumed
 * through it (JoinableQueue) are queued again, as if they had died. A
 * zero-copy reservation of the calling thread is cancelled. Closed while
 * another live thread of the process is a consumer on it, or is the
 * queue's fast producer through it (the first thread to put, until a
 * second producer appears), the handle's mapping stays in place until the
 * process exits (that thread's robust-mutex list runs through it), so
 * close such handles from their last consumer or producer thread, or after
 * those threads exit, to free it. A producer's close does not wait for a
 * peer stopped holding the producers' lock; a JoinableQueue consumer's
 * close takes the consumers' lock to queue its tasks again, and so waits
 * while a peer is stopped holding that one. */
IPC_API void ipc_queue_close(ipc_queue *q);

/* ------------------------------------------------------------------------
 * PriorityQueue — byte messages with an int64_t priority between any
 * number of processes; get returns the lowest priority value first, and
 * among equal priorities the oldest (FIFO). (SimpleQueue needs no type of
 * its own: it is a Queue, ipc_queue_new.)
 *
 * It holds up to maxsize messages of up to max_msg_size bytes each (each
 * takes a slot of that size, whatever its length).
 *
 * Crash safety, as for Queue: any producer or consumer may be killed at
 * any instruction. A message is wholly in the queue or not at all (never
 * torn, duplicated or invented), qsize matches the contents, and priority
 * order holds afterwards; blocked peers keep working. A message whose put
 * returned 0 is delivered, unless the consumer that got it died after
 * taking it. (Internally: the next process to lock it after a death
 * rebuilds its indexes from the slots.)
 */
typedef struct ipc_pqueue ipc_pqueue;

#define IPC_PQUEUE_MAX_ITEMS ((size_t)1 << 20)
#define IPC_PQUEUE_MAX_MSG ((size_t)1 << 20)
#define IPC_PQUEUE_MAX_BYTES ((size_t)1 << 32) /* the whole segment */

/* An anonymous PriorityQueue. maxsize 0: 1024; max_msg_size 0: 4096.
 * 0 | IPC_EINVAL (NULL q, a size over its maximum, or maxsize slots of
 * max_msg_size over IPC_PQUEUE_MAX_BYTES) | IPC_ENOMEM. */
IPC_API int ipc_pqueue_new(ipc_pqueue **q, size_t maxsize, size_t max_msg_size);

/* Make or open a named one. The sizes apply when the call creates it (0:
 * the defaults); opening an existing one with a size (not 0) that differs
 * from its own is IPC_EINVAL. Other errors as ipc_queue_open. */
IPC_API int ipc_pqueue_open(ipc_pqueue **q, const char *name, int flags,
			    size_t maxsize, size_t max_msg_size);

/* Add a copy of msg[0..len) with a priority. 0 | IPC_EAGAIN (IPC_NOWAIT,
 * full) | IPC_ETIMEDOUT (full) | IPC_EMSGSIZE (len > max_msg_size)
 * | IPC_ECLOSED (shut down) | IPC_EINVAL. */
IPC_API int ipc_pqueue_put(ipc_pqueue *q, int64_t priority, const void *msg,
			   size_t len, int timeout_ms);

/* Remove the message of lowest priority (the oldest among equals) into
 * buf[0..cap), its priority into *priority (if not NULL): its length
 * | IPC_EAGAIN / IPC_ETIMEDOUT (empty) | IPC_EMSGSIZE (cap too small; it
 * stays) | IPC_ECLOSED (shut down and drained) | IPC_EINVAL. */
IPC_API ssize_t ipc_pqueue_get(ipc_pqueue *q, int64_t *priority, void *buf,
			       size_t cap, int timeout_ms);

/* As ipc_pqueue_get, into a malloc'd buffer the caller frees (*msg NULL on
 * error; a 0-byte message still gets a buffer). */
IPC_API ssize_t ipc_pqueue_get_alloc(ipc_pqueue *q, int64_t *priority,
				     void **msg, int timeout_ms);

/* Messages queued (a snapshot), or IPC_EINVAL | IPC_ENOTRECOVERABLE
 * (its lock damaged). It waits for a live peer holding the lock. */
IPC_API long ipc_pqueue_qsize(ipc_pqueue *q);

/* Shut it down for every process: puts fail with IPC_ECLOSED, gets return
 * what is left (in priority order) and then IPC_ECLOSED; blocked callers
 * wake. */
IPC_API int ipc_pqueue_shutdown(ipc_pqueue *q);
IPC_API void ipc_pqueue_close(ipc_pqueue *q);

/* ------------------------------------------------------------------------
 * Pipe and Connection — two connected ends that send byte messages to each
 * other (Python's multiprocessing.Pipe).
 *
 * ipc_pipe_new makes both ends in the calling process; fork (or
 * ipc_process_start) gives a child its copy, and each process closes the
 * end it does not use, as with a kernel pipe. Each direction is a Queue in
 * shared memory (attr sizes it, as for ipc_queue_open), so messages are
 * whole, in order, never torn or duplicated, and the Queue's speed applies.
 *
 * Closed ends. An end is closed once no process holds it: every holder
 * called ipc_conn_close or died (the kernel counts holders through file
 * locks; nothing is guessed from pids). Then the other end's receives
 * return the messages still queued and then IPC_ECLOSED (end of file), and
 * its sends fail with IPC_ECLOSED. A clean close is seen at once; a death
 * within about a tenth of a second by a receiver or a waiting sender, and
 * by any sender within that time of its next send (a send that lands in
 * the window is lost with the dead peer, as a write into a pipe whose
 * reader is dying is). A process that inherited an end and never uses it
 * keeps it open: close it.
 *
 * A message is lost only with a receiver killed after taking it.
 *
 * Named pipes (ipc_pipe_open): unrelated processes open end 0 and end 1 of
 * a name. An end nobody has opened yet is not closed: a receive waits for
 * it. A pipe's ends close once; after that the name serves no new
 * conversation: ipc_pipe_unlink it and make a new one.
 */
typedef struct ipc_conn ipc_conn;

/* Make a pipe. duplex: both ends send and receive; else *c1 only receives
 * and *c2 only sends (Python's Pipe(False)). attr NULL: 1 MiB per
 * direction, messages up to 256 KiB. 0 | IPC_EINVAL (NULL c1 or c2, a
 * joinable attr, sizes out of range) | IPC_ENOMEM | IPC_EMFILE
 * | IPC_EIO (the kernel refused the lock file: no memfd, no /proc). */
IPC_API int ipc_pipe_new(ipc_conn **c1, ipc_conn **c2, bool duplex,
			 const ipc_queue_attr *attr);

/* Make or open end `end` (0 or 1) of the named pipe `name` (1 to 197
 * characters, as for other names). A one-way pipe's end 0 receives and end
 * 1 sends. attr applies when the call creates the pipe (as for
 * ipc_queue_open). 0 | IPC_EINVAL (NULL c, end not 0 or 1, a bad or long
 * name, a joinable attr, duplex not as the pipe was made) | IPC_ENOENT
 * (no IPC_CREATE, no such pipe) | IPC_EEXIST (IPC_EXCL) | IPC_EPROTO (the
 * name holds another kind of object) | IPC_EACCES. Any number of processes
 * may open the same end; each closes its handle with ipc_conn_close. */
IPC_API int ipc_pipe_open(ipc_conn **c, const char *name, int flags, int end,
			  bool duplex, const ipc_queue_attr *attr);

/* Remove a named pipe's names ("<name>", "<name>.p0", "<name>.p1"). Open
 * handles keep working. 0 | IPC_ENOENT | IPC_EINVAL. */
IPC_API int ipc_pipe_unlink(const char *name);

/* Send a copy of msg[0..len). 0 | IPC_EAGAIN (IPC_NOWAIT, full)
 * | IPC_ETIMEDOUT (full) | IPC_EMSGSIZE | IPC_ECLOSED (the other end is
 * closed) | IPC_EPERM (a receive-only end) | IPC_EINVAL. */
IPC_API int ipc_conn_send(ipc_conn *c, const void *msg, size_t len,
			  int timeout_ms);

/* Receive the next message into buf[0..cap): its length | IPC_EAGAIN /
 * IPC_ETIMEDOUT (nothing came) | IPC_EMSGSIZE (cap too small; the message
 * stays) | IPC_ECLOSED (the other end is closed and everything it sent was
 * received) | IPC_EPERM (a send-only end) | IPC_EINVAL. */
IPC_API ssize_t ipc_conn_recv(ipc_conn *c, void *buf, size_t cap,
			      int timeout_ms);

/* As ipc_conn_recv, into a malloc'd buffer the caller frees (*msg NULL on
 * error; a 0-byte message still gets a buffer). */
IPC_API ssize_t ipc_conn_recv_alloc(ipc_conn *c, void **msg, int timeout_ms);

/* Wait until a receive would not block: 0 (a message waits, or the other
 * end is closed and a receive returns IPC_ECLOSED) | IPC_EAGAIN
 * | IPC_ETIMEDOUT | IPC_EPERM | IPC_EINVAL. A poll that had to wait holds
 * the message it waited for in this handle for the next receive by this
 * process. */
IPC_API int ipc_conn_poll(ipc_conn *c, int timeout_ms);

/* Whether this end may receive / send (false for NULL). */
IPC_API bool ipc_conn_readable(ipc_conn *c);
IPC_API bool ipc_conn_writable(ipc_conn *c);

/* Drop this process's hold on the end, and free the handle. */
IPC_API void ipc_conn_close(ipc_conn *c);

/* ------------------------------------------------------------------------
 * Shared memory — a block of bytes that processes map (Python's
 * multiprocessing.shared_memory.SharedMemory).
 *
 * The block's bytes start zeroed; libipc never reads or writes them, so
 * what they hold and how access to them is ordered is the program's
 * business (use a Lock, or an Array below for typed atomic elements). The
 * buffer is 64-byte aligned and stays at one address for the life of the
 * handle. A process that dies while writing leaves whatever it wrote.
 */
typedef struct ipc_shm ipc_shm;

#define IPC_SHM_MAX_SIZE ((size_t)1 << 40)

/* An anonymous block of size bytes, shared with children forked later.
 * 0 | IPC_EINVAL (NULL m, size 0 or over IPC_SHM_MAX_SIZE) | IPC_ENOMEM. */
IPC_API int ipc_shm_new(ipc_shm **m, size_t size);

/* Make or open a named block. size applies when the call creates it (then
 * it must be 1 .. IPC_SHM_MAX_SIZE); opening an existing block with size 0
 * accepts its size, any other size that differs is IPC_EINVAL. IPC_ENOENT
 * (no IPC_CREATE and no such name) | IPC_EEXIST (IPC_EXCL) | IPC_EPROTO
 * (the name holds another kind of object) | IPC_EACCES. */
IPC_API int ipc_shm_open(ipc_shm **m, const char *name, int flags, size_t size);

/* The block's first byte (NULL for NULL), its size in bytes (0 for NULL),
 * its name without a leading '/' (NULL for an anonymous block or NULL). The
 * pointers are valid until ipc_shm_close. */
IPC_API void *ipc_shm_buf(ipc_shm *m);
IPC_API size_t ipc_shm_size(ipc_shm *m);
IPC_API const char *ipc_shm_name(ipc_shm *m);

/* Unmap it; the name lives on until ipc_unlink. */
IPC_API void ipc_shm_close(ipc_shm *m);

/* ------------------------------------------------------------------------
 * Value and Array — typed elements in shared memory with an attached lock
 * (Python's multiprocessing.Value and Array; get_lock() is
 * ipc_array_acquire / ipc_array_release). A Value is an Array of one
 * element, and the ipc_value_* functions are the same calls on index 0.
 *
 * Elements start zeroed. Two ways to update them:
 *   - the atomic calls (load, store, add, cas) for the integer types: each
 *     is one indivisible step (sequentially consistent), no lock needed,
 *     and a process killed during one did it entirely or not at all;
 *   - any access through ipc_array_data() while holding the lock. The lock
 *     is a robust mutex: if its holder dies, the next acquirer gets
 *     IPC_EOWNERDEAD with the lock held, and must assume the elements it
 *     guards may be half-updated.
 * A plain `data[i]++` without the lock loses updates between processes,
 * as `v.value += 1` does in Python without get_lock().
 *
 * Integer values travel as int64_t: load sign- or zero-extends the element;
 * store and cas refuse (IPC_EINVAL) a value the type cannot hold; add wraps
 * modulo 2^bits like C unsigned arithmetic. IPC_TYPE_U64 elements travel as
 * their bit pattern (values of 2^63 and above come back negative).
 */
typedef struct ipc_array ipc_array;
typedef struct ipc_array ipc_value;

typedef enum ipc_type {
	IPC_TYPE_I8 = 1, /* Python 'b' */
	IPC_TYPE_U8,	 /* 'B' */
	IPC_TYPE_I16,	 /* 'h' */
	IPC_TYPE_U16,	 /* 'H' */
	IPC_TYPE_I32,	 /* 'i' */
	IPC_TYPE_U32,	 /* 'I' */
	IPC_TYPE_I64,	 /* 'q' ('l' on LP64) */
	IPC_TYPE_U64,	 /* 'Q' */
	IPC_TYPE_FLOAT,	 /* 'f': no atomic calls (IPC_EINVAL); use the lock */
	IPC_TYPE_DOUBLE, /* 'd': likewise */
} ipc_type;

/* An anonymous Array of n elements. 0 | IPC_EINVAL (NULL a, unknown type,
 * n 0, or n elements over IPC_SHM_MAX_SIZE bytes) | IPC_ENOMEM. */
IPC_API int ipc_array_new(ipc_array **a, ipc_type type, size_t n);

/* Make or open a named Array. type must match the existing array's
 * (else IPC_EPROTO); n applies when the call creates it; opening an
 * existing one with n 0 accepts its length, any other n that differs is
 * IPC_EINVAL. Other errors as ipc_shm_open (a raw block's name is
 * IPC_EPROTO). */
IPC_API int ipc_array_open(ipc_array **a, const char *name, int flags,
			   ipc_type type, size_t n);

/* The first element (NULL for NULL), the element count (0 for NULL), the
 * type (0 for NULL), the name (NULL if anonymous). */
IPC_API void *ipc_array_data(ipc_array *a);
IPC_API size_t ipc_array_len(ipc_array *a);
IPC_API ipc_type ipc_array_type(ipc_array *a);
IPC_API const char *ipc_array_name(ipc_array *a);

/* The attached lock: same contract and returns as ipc_lock_acquire /
 * ipc_lock_release (IPC_EOWNERDEAD, IPC_EDEADLK, IPC_EPERM). */
IPC_API int ipc_array_acquire(ipc_array *a, int timeout_ms);
IPC_API int ipc_array_release(ipc_array *a);

/* Atomic operations on element i of an integer Array. All return 0, or
 * IPC_EINVAL for NULL a, i out of range, a float type, or (store, cas) a
 * value the type cannot hold; load also for NULL out.
 *   load:  *out = a[i]
 *   store: a[i] = v
 *   add:   a[i] += delta; *old (if not NULL) = the value before
 *   cas:   if a[i] == *expected then a[i] = desired and 0; else
 *          *expected = a[i] and IPC_EAGAIN (an *expected the type cannot
 *          hold never matches: IPC_EAGAIN, *expected left as it was). */
IPC_API int ipc_array_load(ipc_array *a, size_t i, int64_t *out);
IPC_API int ipc_array_store(ipc_array *a, size_t i, int64_t v);
IPC_API int ipc_array_add(ipc_array *a, size_t i, int64_t delta, int64_t *old);
IPC_API int ipc_array_cas(ipc_array *a, size_t i, int64_t *expected,
			  int64_t desired);
IPC_API void ipc_array_close(ipc_array *a);

/* Value: an Array of one element. */
static inline int ipc_value_new(ipc_value **v, ipc_type type)
{
	return ipc_array_new(v, type, 1);
}
static inline int ipc_value_open(ipc_value **v, const char *name, int flags,
				 ipc_type type)
{
	return ipc_array_open(v, name, flags, type, 1);
}
static inline int ipc_value_load(ipc_value *v, int64_t *out)
{
	return ipc_array_load(v, 0, out);
}
static inline int ipc_value_store(ipc_value *v, int64_t x)
{
	return ipc_array_store(v, 0, x);
}
static inline int ipc_value_add(ipc_value *v, int64_t delta, int64_t *old)
{
	return ipc_array_add(v, 0, delta, old);
}
static inline int ipc_value_acquire(ipc_value *v, int timeout_ms)
{
	return ipc_array_acquire(v, timeout_ms);
}
static inline int ipc_value_release(ipc_value *v)
{
	return ipc_array_release(v);
}
static inline void *ipc_value_data(ipc_value *v)
{
	return ipc_array_data(v);
}
static inline void ipc_value_close(ipc_value *v)
{
	ipc_array_close(v);
}

/* ------------------------------------------------------------------------
 * Process — run a function in a child process, like Python's Process with
 * the fork start method.
 *
 * The child is a fork() of the caller: it sees the caller's memory as it
 * was at the fork (and every libipc object made before it), runs fn(arg)
 * and exits with fn's return value (0..255). Its name is visible to the
 * child (ipc_current_process_name) and to ps/top (first 15 bytes).
 *
 * libipc only ever waits for the pids it started, through pidfds, so
 * children the program forks itself are never reaped behind its back.
 *
 * Daemon children, as in Python: when the main process returns from main()
 * or calls exit(), its daemon children are terminated (SIGTERM) and its
 * other children joined. A daemon child also dies (SIGKILL) if the thread
 * that started it exits — in particular if its parent is SIGKILLed — and it
 * cannot start children of its own (IPC_EPERM).
 */
typedef struct ipc_process ipc_process;

typedef int (*ipc_main_fn)(void *arg); /* its return value: the exit code */

typedef struct ipc_process_attr {
	const char
		*name; /* NULL: "Process-N" (N counts this process's starts) */
	bool daemon;
} ipc_process_attr;

/* 0 | IPC_EINVAL (NULL p or fn, name over 255 bytes) | IPC_EPERM (the
 * caller is a daemon) | IPC_EAGAIN / IPC_ENOMEM (fork failed). */
IPC_API int ipc_process_start(ipc_process **p, ipc_main_fn fn, void *arg,
			      const ipc_process_attr *attr);

/* Wait for it to end: 0 | IPC_EAGAIN (IPC_NOWAIT) | IPC_ETIMEDOUT. */
IPC_API int ipc_process_join(ipc_process *p, int timeout_ms);

IPC_API bool ipc_process_is_alive(ipc_process *p); /* false for NULL */

/* *code = its exit code, or -N if a signal N killed it. 0 | IPC_EAGAIN
 * (still running) | IPC_EINVAL. */
IPC_API int ipc_process_exitcode(ipc_process *p, int *code);

/* Send SIGTERM / SIGKILL. 0 even if it has already ended | IPC_EINVAL
 * (NULL p). */
IPC_API int ipc_process_terminate(ipc_process *p);
IPC_API int ipc_process_kill(ipc_process *p);

IPC_API pid_t ipc_process_pid(ipc_process *p); /* -1 for NULL */

/* Python's Process.sentinel: a file descriptor (the process's pidfd) that
 * poll, select and epoll report readable (POLLIN) once the process has
 * ended, and stays readable; for event loops (libuv, epoll) and ipc_wait.
 * It belongs to the handle: do not close it, do not read from it; it is
 * valid until ipc_process_free, and closed on exec (FD_CLOEXEC). A child
 * forked afterwards inherits it, and sees this same process end.
 * >= 0 | IPC_EINVAL (NULL p). */
IPC_API int ipc_process_sentinel(ipc_process *p);
/* Its name; "" for NULL. The string lives as long as the handle: it is
 * freed by ipc_process_free, so copy it to keep it longer. */
IPC_API const char *ipc_process_name(ipc_process *p);
IPC_API bool ipc_process_daemon(ipc_process *p);

/* Release the handle. A process still running is detached: it runs on,
 * leaves ipc_active_children, and is still reaped (and, being a daemon,
 * terminated) when this process exits. */
IPC_API void ipc_process_free(ipc_process *p);

/* "MainProcess" in a program's first process, else the child's name. The
 * string is libipc's and lives as long as the process. */
IPC_API const char *ipc_current_process_name(void);

/* Reap the children that have ended, then store up to cap handles of the
 * live ones (not freed) in out; returns how many are live. */
IPC_API size_t ipc_active_children(ipc_process **out, size_t cap);

/* ------------------------------------------------------------------------
 * Waiting on many — block until any of several queues, connections,
 * events, processes or file descriptors is ready (Python's
 * multiprocessing.connection.wait).
 *
 * Fill an array of items, each with its kind and its object, and call
 * ipc_wait. Nothing is taken: a ready queue still holds its message, a
 * ready connection its message, until the caller gets it (another process
 * may get it first: then a get with IPC_NOWAIT returns IPC_EAGAIN, and the
 * loop waits again). Ready means:
 *
 *   IPC_WAIT_QUEUE    .queue: a get would not block (a message is queued,
 *                     or the queue is shut down and drained, or broken).
 *   IPC_WAIT_CONN     .conn: a receive would not block (a message, or end
 *                     of file: the peer closed or died). A send-only end
 *                     is IPC_EPERM.
 *   IPC_WAIT_EVENT    .event: set, or set and cleared again during the
 *                     wait (as ipc_event_wait returns 0 then).
 *   IPC_WAIT_PROCESS  .process: it has ended (ipc_process_join would not
 *                     block); through ipc_process_sentinel.
 *   IPC_WAIT_FD       .fd with .events (poll(2) bits, <poll.h>): poll(2)
 *                     reports one of them, or POLLERR / POLLHUP / POLLNVAL.
 *                     A socket, a pipe, an eventfd, another pidfd...
 *
 * A wake-up comes within a few milliseconds of the change, with no busy
 * polling: it sleeps in one futex_waitv (Linux 5.16) over the objects'
 * futex words, or one poll(2) over the descriptors, or, when both kinds are
 * in the set, both at once, with a helper thread in poll that ipc_wait
 * starts and joins within the call (it blocks all signals; nothing is left
 * running and no descriptor is left open when ipc_wait returns). A
 * connection whose peer dies is found within about a tenth of a second, as
 * by ipc_conn_recv.
 *
 * Thread and crash behaviour: ipc_wait holds no lock while it sleeps; a
 * process killed inside it leaves the objects as they were. Several
 * threads and processes may wait on the same objects at once; a waiter
 * never takes a wake-up meant for a blocked get or receive.
 */
enum ipc_wait_kind {
	IPC_WAIT_QUEUE = 1,
	IPC_WAIT_CONN = 2,
	IPC_WAIT_EVENT = 3,
	IPC_WAIT_PROCESS = 4,
	IPC_WAIT_FD = 5,
};

typedef struct ipc_wait_item {
	int kind; /* enum ipc_wait_kind */
	union {
		ipc_queue *queue;
		ipc_conn *conn;
		ipc_event *event;
		ipc_process *process;
		int fd;
	};
	short events;  /* IPC_WAIT_FD: the poll(2) events to wait for */
	short revents; /* out: IPC_WAIT_FD: poll's revents; others: POLLIN
			  when ready; 0 when not */
	bool ready;    /* out */
} ipc_wait_item;

/* Most items one ipc_wait takes. */
#define IPC_WAIT_MAX 64

/* Wait until at least one of items[0..n) is ready, or timeout_ms passes.
 * Every item's ready and revents are set on return (all false unless the
 * return is a count).
 * The number of ready items (1..n) | IPC_EAGAIN (IPC_NOWAIT, none ready)
 * | IPC_ETIMEDOUT | IPC_EINVAL (NULL items, n 0 or over IPC_WAIT_MAX, an
 * unknown kind, a NULL object, a negative fd or an fd item with no events,
 * a bad timeout: nothing waited) | IPC_EPERM (a send-only connection)
 * | IPC_ENOTSUP (a remote queue or a remote Event, which cannot be
 * watched; or a kernel before 5.16, without futex_waitv, when an event, queue
 * or connection is in the set) | IPC_ENOMEM (no memory or thread for the
 * helper) | IPC_EMFILE (no descriptor for the helper's eventfd)
 * | another negative code from a queue's backend (its segment damaged:
 * IPC_ENOTRECOVERABLE) or from the kernel's poll or futex_waitv (e.g.
 * IPC_EINVAL for more fds than RLIMIT_NOFILE), returned at once rather
 * than retried. */
IPC_API int ipc_wait(ipc_wait_item *items, size_t n, int timeout_ms);

/* ------------------------------------------------------------------------
 * Pool — a fixed set of worker processes that run functions for you, like
 * Python's multiprocessing.Pool.
 *
 * Functions run in the workers, which are fork()s of the process that made
 * the pool: a function pointer, and any pointer it follows, must have
 * existed before ipc_pool_new — or the data must travel in the items and
 * arguments, which are copied. The pool is driven by the process that made
 * it; its functions may be called from several threads.
 *
 * Worker death (SIGKILL, OOM, a crash inside fn): the pool notices within
 * about a tenth of a second while a call waits, the work the dead worker
 * held fails with IPC_ECHILD (a call never hangs), a new worker takes its
 * place, and later calls succeed. That work is not retried: a function
 * that crashes its worker would crash the next one too. What fails is said
 * per call: a map as a whole, an apply its result, a starmap or imap only
 * the items of the dead worker's chunk.
 *
 * Task errors: an ipc_task_fn's negative return value is that task's (or
 * item's) result, handed to its caller; the pool goes on.
 */
typedef struct ipc_pool ipc_pool;
typedef struct ipc_result ipc_result;

typedef struct ipc_pool_attr {
	int processes;		     /* 0: the number of online CPUs */
	void (*initializer)(void *); /* run once in each new worker */
	void *initarg;
	unsigned maxtasksperchild; /* 0: no limit; else replaced after */
} ipc_pool_attr;

#define IPC_POOL_MAX_PROCESSES 256

/* attr NULL: defaults. IPC_EINVAL for processes < 0 or over the maximum. */
IPC_API int ipc_pool_new(ipc_pool **pool, const ipc_pool_attr *attr);

typedef void (*ipc_map_fn)(const void *in, void *out);

/* out[i] = fn(in[i]) for n items of in_size bytes, results of out_size
 * bytes, in input order; chunksize items per task (0: n / (4 * processes),
 * at least 1). 0 | IPC_ECHILD (a worker died; items whose chunk finished
 * are in out) | IPC_EINVAL (NULL fn, in or out with n > 0, zero in_size,
 * closed pool) | IPC_EMSGSIZE (one item over 1 MiB). */
IPC_API int ipc_pool_map(ipc_pool *pool, ipc_map_fn fn, const void *in,
			 size_t in_size, void *out, size_t out_size, size_t n,
			 size_t chunksize);

/* Run fn(arg copy, len, out, cap) in a worker; its return value (a length
 * written to out, or a negative error of the caller's choosing) comes back
 * through ipc_result_get. cap is 64 KiB. */
typedef ssize_t (*ipc_task_fn)(const void *arg, size_t len, void *out,
			       size_t cap);
IPC_API int ipc_pool_apply_async(ipc_pool *pool, ipc_task_fn fn,
				 const void *arg, size_t len, ipc_result **r);

/* Wait for the result: fn's return value, with that many bytes copied to
 * out | IPC_EMSGSIZE (cap too small; still ready) | IPC_EAGAIN /
 * IPC_ETIMEDOUT | IPC_ECHILD (its worker died) | IPC_ECLOSED (the pool was
 * terminated first). */
IPC_API ssize_t ipc_result_get(ipc_result *r, void *out, size_t cap,
			       int timeout_ms);
IPC_API bool ipc_result_ready(ipc_result *r);
IPC_API void ipc_result_free(ipc_result *r); /* before or after get */

/* Wait until the result is ready, without taking it (AsyncResult.wait):
 * 0 | IPC_EAGAIN | IPC_ETIMEDOUT | IPC_EINVAL. */
IPC_API int ipc_result_wait(ipc_result *r, int timeout_ms);

/* Ready, and fn's return value (or the map's) is not negative
 * (AsyncResult.successful). false while not ready, and for NULL. */
IPC_API bool ipc_result_successful(ipc_result *r);

/* apply (blocking): ipc_pool_apply_async, then ipc_result_get with no
 * time limit. Returns what ipc_result_get returns, or the apply_async
 * error. */
IPC_API ssize_t ipc_pool_apply(ipc_pool *pool, ipc_task_fn fn, const void *arg,
			       size_t len, void *out, size_t cap);

/* Callbacks (Python's callback / error_callback). When the result becomes
 * ready, callback(ctx, r, status) runs if status >= 0, else
 * error_callback(ctx, r, status) (IPC_ECHILD, IPC_ECLOSED, or fn's own
 * negative return); either may be NULL. They run in the pool's process, in
 * whichever thread next waits on the pool (ipc_result_get / wait / ready,
 * ipc_imap_next, ipc_pool_map, ipc_pool_close / join / terminate, ...),
 * after that call has released the pool's lock: one at a time, never
 * concurrently with another callback of the pool. A callback may call any
 * libipc function, ipc_result_get(r, ...) and ipc_result_free(r) included,
 * except ipc_pool_free of its own pool. A result freed before its callback
 * ran never gets it. */
typedef void (*ipc_result_cb)(void *ctx, ipc_result *r, ssize_t status);
typedef struct ipc_pool_callbacks {
	ipc_result_cb callback;
	ipc_result_cb error_callback;
	void *ctx;
} ipc_pool_callbacks;

/* apply_async with callbacks (cb NULL: none). Returns as apply_async. */
IPC_API int ipc_pool_apply_cb(ipc_pool *pool, ipc_task_fn fn, const void *arg,
			      size_t len, const ipc_pool_callbacks *cb,
			      ipc_result **r);

/* map without waiting: returns at once with *r, whose ipc_result_get
 * returns what ipc_pool_map would (0 | IPC_ECHILD | IPC_ECLOSED). in and
 * out must stay valid until then: the items are read, and results written,
 * while the pool works. Chunks are handed to the workers whenever this
 * process waits on the pool, so wait on *r (or any pool call) to make
 * progress. Errors as ipc_pool_map, and IPC_EINVAL for NULL r. */
IPC_API int ipc_pool_map_async(ipc_pool *pool, ipc_map_fn fn, const void *in,
			       size_t in_size, void *out, size_t out_size,
			       size_t n, size_t chunksize,
			       const ipc_pool_callbacks *cb, ipc_result **r);

/* starmap: fn(args[i].arg, args[i].len, out + i * out_size, out_size) for
 * n items of any length (a packed record of several arguments, as Python's
 * starmap unpacks a tuple), one task per item; status[i] = fn's return
 * value (the bytes it wrote to its slot, or its own negative error), or
 * IPC_ECHILD if the worker running item i died. The other items run on.
 * 0 | IPC_ECHILD (some item's worker died; see status) | IPC_ECLOSED
 * (terminated meanwhile) | IPC_EINVAL (NULL fn, args or status with
 * n > 0, NULL out with out_size > 0, a NULL arg with len > 0, closed pool)
 * | IPC_EMSGSIZE (an argument over 1 MiB, or out_size over 1 MiB - 8).
 * A return value over out_size makes that item's status IPC_EMSGSIZE. */
typedef struct ipc_pool_args {
	const void *arg;
	size_t len;
} ipc_pool_args;
IPC_API int ipc_pool_starmap(ipc_pool *pool, ipc_task_fn fn,
			     const ipc_pool_args *args, size_t n, void *out,
			     size_t out_size, ssize_t *status);

/* imap and imap_unordered: results one by one, as they come, for
 * fn(in + i * in_size, in_size, result, out_size) over n items. imap
 * returns them in input order, imap_unordered in the order they finish.
 * Lazy: only about 4 chunks per worker are in flight or waiting to be
 * taken at a time, so in must stay valid until the iterator is freed.
 * chunksize 0 is 1 (as in Python). 0 | IPC_EINVAL (NULL fn, in with n > 0
 * or it, zero in_size, closed pool) | IPC_EMSGSIZE | IPC_ENOMEM. Items not
 * yet sent when the pool is closed fail with IPC_ECLOSED. */
typedef struct ipc_imap ipc_imap;
IPC_API int ipc_pool_imap(ipc_pool *pool, ipc_task_fn fn, const void *in,
			  size_t in_size, size_t n, size_t out_size,
			  size_t chunksize, ipc_imap **it);
IPC_API int ipc_pool_imap_unordered(ipc_pool *pool, ipc_task_fn fn,
				    const void *in, size_t in_size, size_t n,
				    size_t out_size, size_t chunksize,
				    ipc_imap **it);

/* The next item: 0 with *index = its input index and *status = fn's return
 * value (that many bytes are in out) or IPC_ECHILD (its worker died) or
 * IPC_ECLOSED (the pool was terminated) | IPC_ECLOSED (all n items were
 * returned: the end, Python's StopIteration) | IPC_EAGAIN | IPC_ETIMEDOUT
 * | IPC_EMSGSIZE (cap smaller than the item's result; it stays next)
 * | IPC_EINVAL. */
IPC_API int ipc_imap_next(ipc_imap *it, size_t *index, ssize_t *status,
			  void *out, size_t cap, int timeout_ms);

/* Release the iterator; results still to come are dropped. */
IPC_API void ipc_imap_free(ipc_imap *it);

/* The number of worker processes, or IPC_EINVAL for NULL. */
IPC_API int ipc_pool_processes(ipc_pool *pool);

/* No more tasks; workers exit once the queued ones are done. The chunks
 * of a map_async or starmap still being handed out are handed out first
 * (close waits for room in the task queue); an imap's chunks not yet sent
 * fail with IPC_ECLOSED. */
IPC_API int ipc_pool_close(ipc_pool *pool);
/* Stop now: kill the workers (SIGKILL) and wait for them; pending results
 * fail with IPC_ECLOSED. 0 (also when already terminated) | IPC_EINVAL
 * (NULL pool). */
IPC_API int ipc_pool_terminate(ipc_pool *pool);
/* Wait for the workers to exit: 0 | IPC_EINVAL (neither closed nor
 * terminated). */
IPC_API int ipc_pool_join(ipc_pool *pool);
/* Terminate if still running, and release everything. */
IPC_API void ipc_pool_free(ipc_pool *pool);

/* ------------------------------------------------------------------------
 * Named objects: lifetime and cleanup.
 *
 * A named object is the file /dev/shm/libipc.<name> (an mqueue-backend
 * queue also has the message queue /libipc.<name>). It lives until the name
 * is removed or the machine reboots, outliving every process that used it,
 * crashed or not; anonymous objects vanish with the last process mapping
 * them. What survives a crash of every user is everything in the object:
 * queued messages, an Event's flag, a Semaphore's value, a Lock a dead
 * process held (the next acquirer gets IPC_EOWNERDEAD), a broken Barrier.
 * ipc_queue_shutdown is a state of the object: a named queue shut down
 * stays shut down for every later open of the name until it is removed. To
 * start fresh, ipc_unlink(name) and then create with IPC_CREATE | IPC_EXCL
 * (processes still holding the old object keep it, unseen by new openers).
 * The safe cleanup is ipcctl gc (ipcctl(1)), or ipc_unlink_unused below:
 * it removes only objects no live process has open, never one being opened.
 *
 * Who has them open.
 * Every open handle of a named object (ipc_X_open, an mqueue-backend
 * queue's companion segment included) holds a lock that the kernel drops
 * when the handle is closed, when the process execs, and when it dies by
 * any means, SIGKILL included. A process counts once however many handles
 * it has; a forked child that uses a handle it inherited counts under its
 * parent's pid, and keeps the object counted while either lives. Each open
 * handle costs one file descriptor. The count is the kernel's: a pid is
 * only the label it is shown under, never probed. An open that meets a
 * concurrent ipc_unlink_unused of its name waits for it (it takes a few
 * system calls) at most about 2 s — longer only if the remover is stopped
 * — and then fails with IPC_EBUSY.
 */

#define IPC_STAT_MAX_PIDS 64

/* A JoinableQueue consumer, as ipc_stat sees it. */
typedef struct ipc_consumer_info {
	pid_t pid;  /* the process that registered it (informational) */
	bool alive; /* its thread is alive (the kernel says: robust mutex) */
	long tasks; /* tasks it got and has not task_done'd; -1 unknown */
} ipc_consumer_info;

/* What ipc_stat reports. Every field that does not apply to the object's
 * kind is -1 (kind, problem, size, mode, uid, creator_pid and created_ns
 * are 0 / NULL instead). The live state is a snapshot of shared words read
 * without any lock: exact for an idle object, a moment's view otherwise. */
typedef struct ipc_object_info {
	int kind;	     /* IPC_KIND_*; 0 when problem is set */
	const char *problem; /* NULL for a sound object, else a static phrase:
				"foreign" (not a libipc file), "truncated",
				"other ABI version", "unfinished", "unknown
				kind", "not a regular file", "corrupt" (the
				kind's own fields are out of range) */
	unsigned long long size;       /* bytes of the file */
	unsigned mode;		       /* permission bits */
	uid_t uid;		       /* owner */
	pid_t creator_pid;	       /* informational: may be long gone */
	unsigned long long created_ns; /* CLOCK_REALTIME at creation */
	int users; /* live processes that have it open; -1 if unknown */
	pid_t user_pids[IPC_STAT_MAX_PIDS]; /* the first of them */

	/* Queues (both backends). */
	long depth;	   /* messages waiting */
	long maxsize;	   /* most messages held; 0: no item limit */
	long max_msg_size; /* largest message */
	long bytes_used;   /* shm backend: bytes of storage in use */
	long capacity;	   /* shm backend: bytes of storage */
	int shut_down;	   /* 1 after ipc_queue_shutdown */
	long unfinished; /* JoinableQueue: tasks put and not done; -1 unknown */
	int n_consumers; /* JoinableQueue: registered consumers */
	ipc_consumer_info consumers[IPC_QUEUE_MAX_CONSUMERS];

	/* Sleepers the object counts: a queue's getters + putters +
	 * joiners, a Semaphore's or Condition's waiters. */
	long waiters;
	/* Lock, RLock, Condition, Barrier: the process whose thread holds the
	 * (internal) mutex, 0 when free; holder_died is 1 when its holder
	 * died holding it and nobody has acquired it since. */
	pid_t holder;
	int holder_died;
	int is_set;	/* Event */
	long value;	/* Semaphore */
	long max;	/* Semaphore: 0 unbounded */
	long parties;	/* Barrier */
	long n_waiting; /* Barrier: parties waiting now */
	int broken;	/* Barrier */
} ipc_object_info;

#define IPC_KIND_LOCK 1
#define IPC_KIND_RLOCK 2
#define IPC_KIND_EVENT 3
#define IPC_KIND_COND 4
#define IPC_KIND_SEM 5
#define IPC_KIND_BARRIER 6
#define IPC_KIND_QUEUE 7
#define IPC_KIND_MQUEUE 8  /* a queue with IPC_BACKEND_MQUEUE */
#define IPC_KIND_SHM 9	   /* a shared memory block (ipc_shm) */
#define IPC_KIND_ARRAY 10  /* a Value or Array */
#define IPC_KIND_PQUEUE 11 /* a PriorityQueue */

/* "lock", "rlock", "event", "cond", "sem", "barrier", "queue", "mqueue",
 * "shm", "array", "pqueue"; "unknown" otherwise. Never NULL. ipc_stat
 * reports the users of a shm block, Value, Array or PriorityQueue but no
 * live state (those fields stay -1). */
IPC_API const char *ipc_kind_name(int kind);

/* Describe the named object without opening it as a user: it reads the
 * file with pread, never maps it, never takes or waits for any of the
 * object's locks, and is safe on corrupt, truncated and foreign files
 * (every field read is range-checked before use).
 * 0 (info filled) | IPC_EPROTO (the file is not a sound libipc object;
 * info->problem says why, and the file's size, mode and owner are filled)
 * | IPC_ENOENT | IPC_EACCES | IPC_EINVAL (bad name, NULL info). On every
 * error but a NULL info, info is filled as far as known (users -1 when
 * not counted). The
 * calling process counts among info->users if it has the object open. */
IPC_API int ipc_stat(const char *name, ipc_object_info *info);

/* Remove the name if no live process has the object open, atomically with
 * respect to processes opening it at the same moment: such an opener either
 * counts (and the name stays) or finds the name gone and, with IPC_CREATE,
 * makes a new object. An mqueue-backend queue loses its message queue too
 * (a plain mq_open user of that queue is not counted).
 * 0 (removed) | IPC_EBUSY (in use, or being opened) | IPC_ENOENT
 * | IPC_EPROTO (not a libipc file: left alone) | IPC_EACCES | IPC_EINVAL. */
IPC_API int ipc_unlink_unused(const char *name);

/* ------------------------------------------------------------------------
 * Across hosts — serve local Queues, Events, Locks, Semaphores and Barriers
 * at a nanomsg URL; reach them from other processes and machines with
 * ordinary handles.
 *
 * A server (ipc_server_start) serves objects by name from background
 * threads; a client (ipc_queue_connect, ipc_event_connect,
 * ipc_lock_connect, ipc_sem_connect, ipc_barrier_connect) gets a handle of
 * the object's own type on which every call of that type works with the
 * local meaning, timeouts and error codes, and closes with the type's
 * ipc_X_close. A client blocked in a remote wait never delays another
 * client: each client handle has its own thread on the server.
 * URLs are nanomsg's: "tcp://10.0.0.1:5555", "tcp://127.0.0.1:5555",
 * "ipc:///tmp/jobs.sock". The format on the wire is docs/protocol.md.
 *
 * Security. With an authkey (any bytes, the same on both ends), connecting
 * runs a mutual challenge-response — each side proves it holds the key
 * without sending it — and every later frame is encrypted and
 * authenticated (libsodium), with sequence numbers against replay. A client
 * whose key differs gets IPC_EAUTH and the server accepts nothing from it.
 * Without a key nothing is encrypted, and a server refuses (IPC_EPERM) to
 * listen anywhere but loopback, ipc:// or inproc:// unless `insecure` is
 * set.
 *
 * Delivery. A put that returns 0 is stored exactly once while the server
 * runs: the client retries lost frames with the same sequence number (a call
 * with IPC_FOREVER keeps resending that same request until the server answers
 * it) and the server executes each number once — also when the client was cut
 * off for longer than lease_ms and the server ended its session: a resend of
 * the put last executed there gets that put's reply (the server remembers the
 * last request of the newest 256 sessions whose lease expired; a resend that
 * arrives only after 256 more leases expired is stored again). The table of
 * executed numbers is in the server's memory, so after a server is killed and
 * restarted, the put each producer handle had in flight at the kill may be
 * stored twice (at most
 * one put, or one ipc_queue_put_many request of up to 4096 messages, per
 * handle; none was seen in the tests). A put that fails with
 * IPC_ETIMEDOUT because the network or the server went away may or may not have
 * been stored. A message got by a remote consumer whose reply was lost on the
 * way is handed to that consumer's next get, or put back when it goes away; so
 * is the message of a consumer's last get if it goes away (closes, dies, loses
 * its lease) before any later call confirmed it arrived — delivery of a remote
 * get is at-least-once. On a JoinableQueue a remote consumer's unfinished tasks
 * are leased: when it closes its handle, dies, or is cut off for lease_ms, they
 * are queued again (as for a local consumer that dies), so join() completes. A
 * remote consumer is the handle, not the thread.
 *
 * Batches. ipc_queue_put_many and ipc_queue_get_many on a connected queue
 * carry up to 4096 messages (about 1 MiB) per network round trip, each
 * such request deduplicated as one (a batch is stored once, wholly or as
 * far as it was put); a longer batch takes several. This is how a remote
 * producer or consumer reaches raw nanomsg's message rate.
 *
 * Failure. Every call returns within its timeout when the server or the
 * network is gone: IPC_ETIMEDOUT (IPC_ECONNREFUSED when nothing listens at
 * the address). Calls that do not block locally (qsize, task_done,
 * shutdown, IPC_NOWAIT tries...) wait up to attr->timeout_ms for the
 * server's answer; a remote Barrier wait given IPC_DEFAULT_TIMEOUT first
 * asks the server for that default, which may take as long. The handle
 * reconnects by itself when the server comes back, also after a server restart;
 * tasks leased in a session the server lost were requeued by the server's side,
 * and task_done for them returns 0 without effect.
 *
 * Remote Event, Lock, Semaphore and Barrier. The server runs each call
 * on its local object for the client handle. A remote Lock's holder is the
 * client handle, not a thread: share a handle between threads only as one
 * holder (acquiring it again through the same handle is IPC_EDEADLK, and
 * any thread may release it through that handle). What a handle holds is
 * leased like a consumer's tasks: when it closes, dies or is cut off for
 * lease_ms, the server releases its Lock and gives back the Semaphore
 * units it acquired and did not release (acquires less releases made
 * through that handle), and a Barrier wait it is in breaks the barrier
 * (every waiter gets IPC_EBROKEN, as when a local party dies). An acquire
 * whose reply is lost and that the caller reports failed (IPC_ETIMEDOUT)
 * is undone by the server at the handle's next call. After a lost lease
 * (or a server restart) the handle holds nothing: release returns
 * IPC_EPERM (Lock) or adds a unit (Semaphore). ipc_cond over a remote
 * Lock is not supported; ipc_event_set on a remote Event is not
 * async-signal-safe. Event waits, and Lock and Semaphore acquires,
 * wait on the server in slices of a second; a set-and-clear that falls
 * between two slices goes unseen (a local waiter would return 0).
 *
 * nanomsg is not fork-safe: make servers and connected handles after fork,
 * never use one in a child forked after it was made.
 */
typedef struct ipc_server ipc_server;

typedef struct ipc_net_attr {
	const void *authkey; /* shared secret; NULL with authkey_len 0: none */
	size_t authkey_len;
	int timeout_ms; /* client: longest wait for one answer; 0: 5000 */
	bool insecure;	/* server: allow a keyless non-loopback URL */
	int lease_ms;	/* server: a silent client's lease; 0: 10000 */
	/* server: called from its threads with one line per connect, auth
	 * failure, lease expiry and dropped frame; NULL: silent. */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
} ipc_net_attr;

/* Listen at url (attr NULL: defaults) and serve from background threads.
 * 0 | IPC_EINVAL (NULL url, a bad URL, a key pointer missing)
 * | IPC_EPERM (no authkey, the URL is not local and insecure is unset)
 * | IPC_EBUSY (address in use) | IPC_ENOMEM. */
IPC_API int ipc_server_start(ipc_server **srv, const char *url,
			     const ipc_net_attr *attr);

/* Serve q (a local handle, kept open by the caller until ipc_server_stop)
 * under name (1..200 of [A-Za-z0-9._/-]). May be called while serving.
 * 0 | IPC_EINVAL | IPC_EEXIST (name taken) | IPC_ENOMEM (64 objects)
 * | IPC_ENOTSUP (a queue this server cannot serve). */
IPC_API int ipc_server_add_queue(ipc_server *srv, const char *name,
				 ipc_queue *q);

/* Serve a local Event, Lock, Semaphore or Barrier under name, as
 * ipc_server_add_queue does a queue (kept open by the caller until
 * ipc_server_stop). 0 | IPC_EINVAL (NULL srv, name or object; a bad name)
 * | IPC_EEXIST (name taken by an object of any kind) | IPC_ENOMEM (64
 * objects). */
IPC_API int ipc_server_add_event(ipc_server *srv, const char *name,
				 ipc_event *ev);
IPC_API int ipc_server_add_lock(ipc_server *srv, const char *name,
				ipc_lock *lk);
IPC_API int ipc_server_add_sem(ipc_server *srv, const char *name, ipc_sem *s);
IPC_API int ipc_server_add_barrier(ipc_server *srv, const char *name,
				   ipc_barrier *b);

/* Stop serving and free srv: blocked remote calls end within about a
 * second, every client's unfinished tasks are requeued, Locks and
 * Semaphore units held by clients are released, and a Barrier with a
 * remote client waiting is broken; clients see IPC_ETIMEDOUT until a
 * server serves the name again. NULL: no-op. */
IPC_API void ipc_server_stop(ipc_server *srv);

/* Connect to the queue served as name at url. 0 | IPC_EINVAL
 * | IPC_ETIMEDOUT / IPC_ECONNREFUSED (no server answered within
 * attr->timeout_ms) | IPC_EAUTH (keys differ, or one side has none)
 * | IPC_ENOENT (the server does not serve name) | IPC_EBUSY (server full, or
 * this handshake was discarded by a flood of unfinished ones: try again)
 * | IPC_ENOMEM. Close with ipc_queue_close, which ends the lease. */
IPC_API int ipc_queue_connect(ipc_queue **q, const char *url, const char *name,
			      const ipc_net_attr *attr);

/* Connect to the Event, Lock, Semaphore or Barrier served as name at url:
 * a handle of that type (close it with ipc_event_close, ipc_lock_close,
 * ...; closing ends the lease). The same returns as ipc_queue_connect,
 * and IPC_EPROTO when name is served but is an object of another kind.
 * Every call on the handle may also return IPC_ETIMEDOUT or
 * IPC_ECONNREFUSED when the server cannot be reached (within the call's
 * timeout, or attr->timeout_ms for calls that do not wait), and IPC_EPROTO
 * for an answer it cannot return; ipc_event_is_set and ipc_barrier_broken
 * then return false, ipc_barrier_parties and ipc_barrier_n_waiting 0. */
IPC_API int ipc_event_connect(ipc_event **ev, const char *url, const char *name,
			      const ipc_net_attr *attr);
IPC_API int ipc_lock_connect(ipc_lock **lk, const char *url, const char *name,
			     const ipc_net_attr *attr);
IPC_API int ipc_sem_connect(ipc_sem **s, const char *url, const char *name,
			    const ipc_net_attr *attr);
IPC_API int ipc_barrier_connect(ipc_barrier **b, const char *url,
				const char *name, const ipc_net_attr *attr);

#ifdef __cplusplus
}
#endif
#endif /* LIBIPC_IPC_H */
