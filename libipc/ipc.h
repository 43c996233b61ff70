/*
 * libipc — inter-process Queue, JoinableQueue, Lock, RLock, Event,
 * Condition, Semaphore and Barrier for C, after Python's multiprocessing.
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
 *   - A NULL handle or a NULL out-pointer is IPC_EINVAL, never a crash.
 *   - timeout_ms: IPC_FOREVER (-1) blocks, IPC_NOWAIT (0) tries once and
 *     returns IPC_EAGAIN when it would block, a positive value waits at most
 *     that many milliseconds (CLOCK_MONOTONIC) and then returns
 *     IPC_ETIMEDOUT. Any other negative value is IPC_EINVAL.
 *   - Any process using an object may be killed at any instruction (SIGKILL,
 *     the OOM killer). The others never deadlock and never see an object in
 *     a broken state; what each object does about the dead process is said
 *     in its section.
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
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IPC_API __attribute__((visibility("default")))
#else
#define IPC_API
#endif

/* ------------------------------------------------------------------------
 * Errors
 *
 * Codes equal -errno where a POSIX meaning fits; library codes sit far from
 * errno. IPC_ERRORS(X) lists them all, so that a program can build its own
 * table: X(NAME, value, "message").
 */
#define IPC_ERRORS(X)                                                      \
	X(IPC_EPERM, -1, "operation not permitted")                        \
	X(IPC_ENOENT, -2, "no such object")                                \
	X(IPC_ECHILD, -10, "a child process died")                         \
	X(IPC_EAGAIN, -11, "resource temporarily unavailable")             \
	X(IPC_ENOMEM, -12, "out of memory")                                \
	X(IPC_EACCES, -13, "permission denied")                            \
	X(IPC_EBUSY, -16, "resource busy")                                 \
	X(IPC_EEXIST, -17, "object already exists")                        \
	X(IPC_EDEADLK, -35, "the calling thread already holds it")         \
	X(IPC_EINVAL, -22, "invalid argument")                             \
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

/* ipc_X_open flags. The low nine bits are the permission bits of a created
 * object (0 means 0600), as with open(2): IPC_CREATE | 0660. The umask does
 * not apply. */
#define IPC_CREATE 0x1000 /* make it if it does not exist */
#define IPC_EXCL 0x2000	  /* with IPC_CREATE: IPC_EEXIST if it exists */
#define IPC_MODE_MASK 0777

/* Remove a name. Processes that have the object open keep using it; a later
 * ipc_X_open of the name makes a new object. IPC_ENOENT if there is none,
 * IPC_EINVAL for a bad name. */
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

/* 0 | IPC_EOWNERDEAD (acquired; the previous holder died holding it)
 *   | IPC_EAGAIN (IPC_NOWAIT and held) | IPC_ETIMEDOUT
 *   | IPC_EDEADLK (the calling thread already holds it) */
IPC_API int ipc_lock_acquire(ipc_lock *lk, int timeout_ms);

/* 0 | IPC_EPERM when the calling thread does not hold it. */
IPC_API int ipc_lock_release(ipc_lock *lk);
IPC_API void ipc_lock_close(ipc_lock *lk);

/* ------------------------------------------------------------------------
 * RLock — a Lock its holder may acquire again; it is free once released as
 * many times as acquired. Same returns as Lock; a dead holder's count is
 * dropped and the next acquirer gets IPC_EOWNERDEAD with a count of one.
 */
typedef struct ipc_rlock ipc_rlock;

IPC_API int ipc_rlock_new(ipc_rlock **lk);
IPC_API int ipc_rlock_open(ipc_rlock **lk, const char *name, int flags);
IPC_API int ipc_rlock_acquire(ipc_rlock *lk, int timeout_ms);
IPC_API int ipc_rlock_release(ipc_rlock *lk);
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
IPC_API int ipc_event_set(ipc_event *ev);
IPC_API int ipc_event_clear(ipc_event *ev);
IPC_API bool ipc_event_is_set(ipc_event *ev); /* false for NULL */

/* 0 once set | IPC_EAGAIN | IPC_ETIMEDOUT */
IPC_API int ipc_event_wait(ipc_event *ev, int timeout_ms);
IPC_API void ipc_event_close(ipc_event *ev);

/* ------------------------------------------------------------------------
 * Condition — a condition variable with its own robust lock.
 *
 * Hold the lock (ipc_cond_acquire) around ipc_cond_wait and ipc_cond_notify.
 * As with every condition variable, a wait may return 0 without a notify
 * that was meant for it (a notify(1) can wake a second waiter that was just
 * going to sleep): loop on your predicate, or use ipc_cond_wait_for. A
 * waiter that dies never swallows a notify meant for the living, and a
 * notifier killed mid-call either notified or did nothing.
 */
typedef struct ipc_cond ipc_cond;

IPC_API int ipc_cond_new(ipc_cond **c);
IPC_API int ipc_cond_open(ipc_cond **c, const char *name, int flags);

/* Same returns as ipc_lock_acquire. */
IPC_API int ipc_cond_acquire(ipc_cond *c, int timeout_ms);

/* 0 | IPC_EPERM when the calling thread does not hold the lock. */
IPC_API int ipc_cond_release(ipc_cond *c);

/* Release the lock, sleep until notified or timed out, reacquire the lock
 * (with no time limit, as Python does) and return:
 * 0 | IPC_ETIMEDOUT | IPC_EAGAIN (IPC_NOWAIT) | IPC_EOWNERDEAD (notified or
 * timed out, and reacquiring found that a holder died with the lock)
 * | IPC_EPERM (the caller does not hold the lock; nothing happened). */
IPC_API int ipc_cond_wait(ipc_cond *c, int timeout_ms);

/* Wait until pred(arg) is true, evaluating it with the lock held: first
 * before any wait, then after each wake-up. 0 once it is true
 * | IPC_ETIMEDOUT (or IPC_EAGAIN) with it still false | IPC_EPERM | IPC_EINVAL
 * (NULL pred). IPC_EOWNERDEAD from a reacquire is returned at once. */
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

/* 0 | IPC_EAGAIN | IPC_ETIMEDOUT */
IPC_API int ipc_sem_acquire(ipc_sem *s, int timeout_ms);

/* 0 | IPC_EINVAL (a BoundedSemaphore already at max, or the value at
 * IPC_SEM_VALUE_MAX) */
IPC_API int ipc_sem_release(ipc_sem *s);

/* The current value (a snapshot), or IPC_EINVAL for NULL. */
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

/* index | IPC_EBROKEN | IPC_ETIMEDOUT | IPC_EAGAIN (IPC_NOWAIT, not last) */
IPC_API int ipc_barrier_wait(ipc_barrier *b, int timeout_ms);

/* Break it: current and future waiters get IPC_EBROKEN until reset. */
IPC_API int ipc_barrier_abort(ipc_barrier *b);

/* Back to the empty, unbroken state; current waiters get IPC_EBROKEN. */
IPC_API int ipc_barrier_reset(ipc_barrier *b);
IPC_API unsigned ipc_barrier_parties(ipc_barrier *b);	/* 0 for NULL */
IPC_API unsigned ipc_barrier_n_waiting(ipc_barrier *b); /* 0 for NULL */
IPC_API bool ipc_barrier_broken(ipc_barrier *b);	/* false for NULL */
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
 * On a JoinableQueue, a consumer is the thread that first calls get on a
 * handle; its tasks are its own: task_done completes the oldest unfinished
 * task of that consumer (call it once per get, as in Python).
 */
typedef struct ipc_queue ipc_queue;

#define IPC_BACKEND_SHM 0    /* shared-memory ring (default) */
#define IPC_BACKEND_MQUEUE 1 /* POSIX message queue (not in this release) */

typedef struct ipc_queue_attr {
	size_t maxsize;	 /* most messages held; 0: only capacity bounds it */
	size_t capacity; /* bytes of storage (rounded up to a power of two,
			    at least 4 KiB); 0: 1 MiB */
	size_t max_msg_size; /* largest message; 0: capacity / 4 */
	bool joinable;	     /* task_done()/join() allowed */
	int backend;	     /* IPC_BACKEND_SHM */
	unsigned mode; /* named: permission bits; 0: from flags, or 0600 */
} ipc_queue_attr;

#define IPC_QUEUE_MAX_CAPACITY ((size_t)1 << 30)
#define IPC_QUEUE_MAX_CONSUMERS 128 /* JoinableQueue consumers at once */

/* An anonymous Queue / JoinableQueue with default attributes (1 MiB) and
 * the given item limit (0: none). IPC_EINVAL for maxsize over 2^31. */
IPC_API int ipc_queue_new(ipc_queue **q, size_t maxsize);
IPC_API int ipc_joinable_queue_new(ipc_queue **q, size_t maxsize);

/* Make or open a queue. name NULL: anonymous. attr NULL: defaults. Opening
 * an existing queue ignores attr's sizes (the queue keeps its own) except
 * `joinable`, which must match (else IPC_EINVAL). IPC_EINVAL for sizes out
 * of range or max_msg_size + 8 over capacity; IPC_ENOTSUP for a backend
 * this build lacks. */
IPC_API int ipc_queue_open(ipc_queue **q, const char *name, int flags,
			   const ipc_queue_attr *attr);

/* Append a copy of msg[0..len). 0 | IPC_EAGAIN (IPC_NOWAIT, full)
 * | IPC_ETIMEDOUT (full) | IPC_EMSGSIZE (len > max_msg_size)
 * | IPC_ECLOSED (shut down) | IPC_EINVAL (NULL msg with len > 0). */
IPC_API int ipc_queue_put(ipc_queue *q, const void *msg, size_t len,
			  int timeout_ms);

/* Remove the oldest message into buf[0..cap): its length
 * | IPC_EAGAIN / IPC_ETIMEDOUT (empty) | IPC_EMSGSIZE (cap too small; the
 * message stays queued) | IPC_ECLOSED (shut down and drained)
 * | IPC_EBUSY (JoinableQueue: IPC_QUEUE_MAX_CONSUMERS consumers already). */
IPC_API ssize_t ipc_queue_get(ipc_queue *q, void *buf, size_t cap,
			      int timeout_ms);

/* As ipc_queue_get, into a malloc'd buffer the caller frees (*msg is
 * NULL on error; a 0-byte message still gets a buffer). */
IPC_API ssize_t ipc_queue_get_alloc(ipc_queue *q, void **msg, int timeout_ms);

/* JoinableQueue: the caller finished its oldest unfinished task.
 * 0 | IPC_EINVAL (no unfinished task of this consumer, or not joinable). */
IPC_API int ipc_queue_task_done(ipc_queue *q);

/* JoinableQueue: wait until every message ever put has been task_done.
 * 0 | IPC_EAGAIN | IPC_ETIMEDOUT | IPC_EINVAL (not joinable). */
IPC_API int ipc_queue_join(ipc_queue *q, int timeout_ms);

/* Messages waiting to be got (a snapshot), or IPC_EINVAL. */
IPC_API long ipc_queue_qsize(ipc_queue *q);
IPC_API bool ipc_queue_empty(ipc_queue *q); /* true for NULL */
IPC_API bool ipc_queue_full(ipc_queue *q);  /* false for NULL */

/* JoinableQueue: tasks put and not yet done (a snapshot), or IPC_EINVAL. */
IPC_API long ipc_queue_unfinished(ipc_queue *q);

/* Shut the queue down for every process: puts fail with IPC_ECLOSED, gets
 * return what is left and then IPC_ECLOSED; blocked callers wake. */
IPC_API int ipc_queue_shutdown(ipc_queue *q);

/* Drop this handle. A JoinableQueue consumer's unfinished tasks are queued
 * again (as if it had died). */
IPC_API void ipc_queue_close(ipc_queue *q);

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

/* Send SIGTERM / SIGKILL. 0 even if it has already ended. */
IPC_API int ipc_process_terminate(ipc_process *p);
IPC_API int ipc_process_kill(ipc_process *p);

IPC_API pid_t ipc_process_pid(ipc_process *p);	      /* -1 for NULL */
IPC_API const char *ipc_process_name(ipc_process *p); /* "" for NULL */
IPC_API bool ipc_process_daemon(ipc_process *p);

/* Release the handle. A process still running is detached: it runs on,
 * leaves ipc_active_children, and is still reaped (and, being a daemon,
 * terminated) when this process exits. */
IPC_API void ipc_process_free(ipc_process *p);

/* "MainProcess" in a program's first process, else the child's name. */
IPC_API const char *ipc_current_process_name(void);

/* Reap the children that have ended, then store up to cap handles of the
 * live ones (not freed) in out; returns how many are live. */
IPC_API size_t ipc_active_children(ipc_process **out, size_t cap);

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
 * about a tenth of a second while a call waits, the call whose work the dead
 * worker held fails with IPC_ECHILD (it never hangs), a new worker takes
 * its place, and later calls succeed. That work is not retried: a function
 * that crashes its worker would crash the next one too.
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

/* No more tasks; workers exit once the queued ones are done. */
IPC_API int ipc_pool_close(ipc_pool *pool);
/* Stop now: kill the workers; pending results fail with IPC_ECLOSED. */
IPC_API int ipc_pool_terminate(ipc_pool *pool);
/* Wait for the workers to exit: 0 | IPC_EINVAL (neither closed nor
 * terminated). */
IPC_API int ipc_pool_join(ipc_pool *pool);
/* Terminate if still running, and release everything. */
IPC_API void ipc_pool_free(ipc_pool *pool);

/* ------------------------------------------------------------------------
 * Across hosts — serve local queues at a nanomsg URL; reach them from other
 * processes and machines with ordinary ipc_queue handles.
 *
 * A server (ipc_server_start) serves objects by name from background
 * threads; a client (ipc_queue_connect) gets an ipc_queue on which every
 * ipc_queue_* call works with the local meaning, timeouts and error codes.
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
 * Delivery. A put that returns 0 is stored exactly once: the client retries
 * lost frames with the same sequence number and the server executes each
 * number once. A put that fails with IPC_ETIMEDOUT because the network or
 * the server went away may or may not have been stored. A message got by a
 * remote consumer whose reply was lost on the way is handed to that
 * consumer's next get, or put back when it goes away; so is the message of
 * a consumer's last get if it goes away (closes, dies, loses its lease)
 * before any later call confirmed it arrived — delivery of a remote get is
 * at-least-once. On a JoinableQueue a
 * remote consumer's unfinished tasks are leased: when it closes its handle,
 * dies, or is cut off for lease_ms, they are queued again (as for a local
 * consumer that dies), so join() completes. A remote consumer is the
 * handle, not the thread.
 *
 * Failure. Every call returns within its timeout when the server or the
 * network is gone: IPC_ETIMEDOUT (IPC_ECONNREFUSED when nothing listens at
 * the address). Calls that do not block locally (qsize, task_done,
 * shutdown, IPC_NOWAIT tries...) wait up to attr->timeout_ms for the
 * server's answer. The handle reconnects by itself when the server comes
 * back, also after a server restart; tasks leased in a session the server
 * lost were requeued by the server's side, and task_done for them returns 0
 * without effect.
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

/* Stop serving and free srv: blocked remote calls end within about a
 * second, every client's unfinished tasks are requeued; clients see
 * IPC_ETIMEDOUT until a server serves the name again. NULL: no-op. */
IPC_API void ipc_server_stop(ipc_server *srv);

/* Connect to the queue served as name at url. 0 | IPC_EINVAL
 * | IPC_ETIMEDOUT / IPC_ECONNREFUSED (no server answered within
 * attr->timeout_ms) | IPC_EAUTH (keys differ, or one side has none)
 * | IPC_ENOENT (the server does not serve name) | IPC_EBUSY (server full)
 * | IPC_ENOMEM. Close with ipc_queue_close, which ends the lease. */
IPC_API int ipc_queue_connect(ipc_queue **q, const char *url, const char *name,
			      const ipc_net_attr *attr);

#ifdef __cplusplus
}
#endif
#endif /* LIBIPC_IPC_H */
