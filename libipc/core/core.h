/* SPDX-License-Identifier: MIT */
/*
 * core.h — libipc's platform layer, internal to the library.
 *
 * Everything that touches the kernel directly lives below this header:
 * deadlines on CLOCK_MONOTONIC, futex wait/wake on shared 32-bit words,
 * robust process-shared mutexes with a repair hook, shared-memory segments
 * with a self-describing header, and the crash points of the test build.
 * The objects in sync/ and queue/ are written against this header only.
 *
 * Internal functions return 0 or a negative errno (equal to the IPC_E*
 * code where one exists); they are named ipc__* and hidden from the
 * library's exported symbols.
 */
#ifndef LIBIPC_CORE_H
#define LIBIPC_CORE_H

#include "config.h" /* IPC_ENABLE_CRASHPOINTS, HAVE_* */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "libipc/ipc.h"

/* glibc 2.35 and later register an rseq area per thread (ipc__cpu_now). */
#if defined(__has_include) && (defined(__x86_64__) || defined(__aarch64__))
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define IPC__HAVE_RSEQ 1
#endif
#endif
#ifndef IPC__HAVE_RSEQ
#define IPC__HAVE_RSEQ 0
#endif

/* Built with ThreadSanitizer? (Its annotations are used where the kernel,
 * which TSan cannot see, does what a program's store would: mutex.c,
 * futex.c.) */
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

#define IPC__CACHELINE 64
#define IPC__ALIGNED __attribute__((aligned(IPC__CACHELINE)))

/* How long a blocked waiter sleeps at most before it looks at the shared
 * state again on its own. Wake-ups never depend on it: it bounds the delay
 * that a waker killed between its state change and its FUTEX_WAKE can cause,
 * and how soon a Barrier notices a dead party. */
#ifdef IPC_ENABLE_CRASHPOINTS
/* The crash-point test build reads it from IPC_TEST_RECHECK_MS (default
 * 100), so that a test can make it an hour and prove that a wake-up it
 * checks does not depend on the re-check (crashpoint.c). */
int ipc__recheck_ms(void);
#define IPC__RECHECK_MS ipc__recheck_ms()
#else
#define IPC__RECHECK_MS 100
#endif

/* A system call's errno (positive; 0 gives 0) as a negative code of the
 * IPC_ERRORS table: the same value where the table has it, the closest code
 * where it does not, -EIO for anything else. Every errno that reaches the
 * public API passes through here. */
int ipc__sys_error(int e);

/* ------------------------------------------------------------------------
 * Deadlines: a timeout_ms argument turned into one absolute point on
 * CLOCK_MONOTONIC, so that loops that wake and sleep again never stretch it.
 */
enum ipc__dl_kind {
	IPC__DL_NOWAIT,
	IPC__DL_FOREVER,
	IPC__DL_AT,
	IPC__DL_LATER, /* ms from the first look: see ipc__deadline_later */
};

struct ipc__deadline {
	enum ipc__dl_kind kind;
	int ms;		    /* IPC__DL_LATER: the timeout, not yet started */
	struct timespec at; /* CLOCK_MONOTONIC, for IPC__DL_AT */
};

/* A deadline that never passes, for waits that must not time out. */
extern const struct ipc__deadline ipc__forever;

/* A positive timeout_ms from now (deadline.c; -EINVAL for timeout_ms
 * < -1). Callers use ipc__deadline_init. */
int ipc__deadline_start(struct ipc__deadline *dl, int timeout_ms);

/* dl from a timeout_ms argument: 0, or -EINVAL for timeout_ms < -1.
 * Inline, because every put and get starts with it: IPC_FOREVER and
 * IPC_NOWAIT cost no call and no clock read. */
static inline int ipc__deadline_init(struct ipc__deadline *dl, int timeout_ms)
{
	if (timeout_ms == IPC_FOREVER) {
		dl->kind = IPC__DL_FOREVER;
		return 0;
	}
	if (timeout_ms == IPC_NOWAIT) {
		dl->kind = IPC__DL_NOWAIT;
		return 0;
	}
	return ipc__deadline_start(dl, timeout_ms);
}

/* As ipc__deadline_init, but a positive timeout starts only when a
 * deadline function first looks at dl (ipc__deadline_passed, _ms,
 * _capped, a futex wait or a timed lock): a call that finds what it wants
 * at once never reads the clock. The wait then ends timeout_ms after that
 * first look, which comes after the call's first attempt; that attempt
 * does not wait (a wait looks first), so the timeout is stretched by the
 * attempt's own running time only. For the calls whose first attempt is
 * short and usually succeeds: the queue's put and get. dl must stay with
 * the thread that made it (the first look writes it). */
static inline int ipc__deadline_later(struct ipc__deadline *dl, int timeout_ms)
{
	if (timeout_ms <= 0)
		return ipc__deadline_init(dl, timeout_ms);
	dl->kind = IPC__DL_LATER;
	dl->ms = timeout_ms;
	return 0;
}

/* Start an IPC__DL_LATER deadline now (it becomes IPC__DL_AT); nothing
 * for the others. Every reader of dl->at calls it first. dl is written
 * through the const pointer: a LATER deadline is never a const object
 * (only ipc__deadline_later makes one, in its caller's variable). */
void ipc__deadline_start_later(const struct ipc__deadline *dl);
static inline void ipc__deadline_anchor(const struct ipc__deadline *dl)
{
	if (dl->kind == IPC__DL_LATER)
		ipc__deadline_start_later(dl);
}

/* True once an IPC__DL_AT (or LATER) deadline has passed; always for
 * NOWAIT, never for FOREVER. */
bool ipc__deadline_passed(const struct ipc__deadline *dl);

/* The error a wait that ran out of time returns: -EAGAIN for IPC_NOWAIT,
 * -ETIMEDOUT otherwise. */
int ipc__deadline_error(const struct ipc__deadline *dl);

/* Milliseconds left, rounded up, for poll(): -1 for FOREVER, 0 for NOWAIT
 * or a passed deadline. */
int ipc__deadline_ms(const struct ipc__deadline *dl);

/* Sleep for ns nanoseconds (below a second), or until dl if that comes
 * first; at once for IPC_NOWAIT. True if dl has passed when it returns
 * (always for NOWAIT, never for FOREVER). For a short pause that is not a
 * wait for anything in particular: nobody wakes it. */
bool ipc__deadline_nap(const struct ipc__deadline *dl, long ns);

/* The earlier of dl and now + ms, as an IPC__DL_AT deadline. */
void ipc__deadline_capped(struct ipc__deadline *out,
			  const struct ipc__deadline *dl, int ms);

/* ------------------------------------------------------------------------
 * Futex wait and wake on a 32-bit word in shared memory (never
 * FUTEX_PRIVATE_FLAG: the word is shared between processes).
 */

/* Sleep while *word == expected, until woken or dl passes.
 * 0: woken, the word differed, or a signal interrupted (callers re-check
 * their state in every case) | -ETIMEDOUT: dl passed. */
int ipc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		    const struct ipc__deadline *dl);

/* Wake up to n sleepers on word. */
void ipc__futex_wake(_Atomic uint32_t *word, int n);

/* Atomically, in one system call: change the word, then wake up to n
 * sleepers on it. A caller killed during the call did both or neither.
 * Operands are at most 2047, and the word must stay below 2^31 (callers
 * wrap it): above, the kernel may wake one sleeper more than n.
 *   add_wake: *word += add;  or_wake: *word |= bits;  set_wake: *word = value
 */
void ipc__futex_add_wake(_Atomic uint32_t *word, uint32_t add, int n);
void ipc__futex_or_wake(_Atomic uint32_t *word, uint32_t bits, int n);
void ipc__futex_set_wake(_Atomic uint32_t *word, uint32_t value, int n);

/* Order an earlier store before a later load, where a robust mutex unlock
 * lies between them. glibc releases a robust mutex with an atomic exchange
 * (it must read and clear the word at once to learn about waiters); on x86
 * every atomic read-modify-write is a full barrier, so only the compiler
 * needs fencing there. Elsewhere this is a real seq_cst fence. */
static inline void ipc__fence_after_unlock(void)
{
#if defined(__x86_64__) || defined(__i386__)
	atomic_signal_fence(memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* Spin-wait hint for the processor. */
static inline void ipc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* For a thread-local variable on a hot path: the initial-exec TLS model,
 * one load from the thread pointer instead of a __tls_get_addr call per
 * access in a shared library. Costs a few bytes of the static TLS that
 * glibc keeps spare for libraries loaded with dlopen. */
#if defined(__GNUC__) && !defined(IPC__NO_TLS_FAST)
#define IPC__TLS_FAST __attribute__((tls_model("initial-exec")))
#else
#define IPC__TLS_FAST
#endif

/* For a function on a slower path beside a hot one: kept out of line, so
 * that the hot path's code stays short and keeps its registers.
 * IPC__COLD also says the path is rare (laid out apart, tuned for size). */
#if defined(__GNUC__)
#define IPC__NOINLINE __attribute__((noinline))
#define IPC__COLD __attribute__((noinline, cold))
#else
#define IPC__NOINLINE
#define IPC__COLD
#endif

/* For data defined in one file of the library and read inline by others:
 * a direct load, not one through the global offset table. */
#if defined(__GNUC__)
#define IPC__INTERNAL __attribute__((visibility("hidden")))
#else
#define IPC__INTERNAL
#endif

/* The calling thread among the live threads of its process, like
 * pthread_self() but without a call: the address of a thread-local byte
 * (fork.c). Like a pthread_t, a thread created after this one exits may
 * get the same value, and a forked child's thread has the value of the
 * thread that forked: callers compare the fork generation too. */
extern _Thread_local char ipc__thread_tag IPC__TLS_FAST IPC__INTERNAL;
static inline const void *ipc__thread_self(void)
{
	return &ipc__thread_tag;
}

/* The CPU the calling thread was running on a moment ago, or a negative
 * number if unknown. glibc's registered rseq area makes this one load (the
 * kernel updates it before the thread returns to user space on a new CPU);
 * without it, sched_getcpu(). */
static inline int ipc__cpu_now(void)
{
#if IPC__HAVE_RSEQ
	if (__rseq_size > 0) {
		const struct rseq *rs =
			(const struct
			 rseq *)(const void
					 *)((const char *)
						    __builtin_thread_pointer() +
					    __rseq_offset);
		return (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
	}
#endif
	return sched_getcpu();
}

/* ------------------------------------------------------------------------
 * Robust process-shared mutexes.
 */

/* Initialise a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex, error
 * checking (or recursive). */
int ipc__mutex_init(pthread_mutex_t *m, bool recursive);

/* Called with the mutex held after its previous owner died holding it.
 * Restores the object's invariants; returns 0, or a negative errno when the
 * object cannot be repaired (it is then left not recoverable). */
typedef int (*ipc__repair_fn)(void *arg);

/* Lock m before dl.
 *   -ENOTRECOVERABLE  first of all if m's kind was damaged (see mutex.c).
 *   0            locked. If the previous owner had died, repair(arg) ran
 *                and the mutex was made consistent first.
 *   -EOWNERDEAD  only when repair is NULL: locked and made consistent, the
 *                caller must know the previous owner died.
 *   -EAGAIN / -ETIMEDOUT / -EDEADLK (this thread holds it)
 *   -ENOTRECOVERABLE  repair failed now or earlier. */
int ipc__mutex_lock(pthread_mutex_t *m, const struct ipc__deadline *dl,
		    ipc__repair_fn repair, void *arg);

/* 0 | -EPERM when the calling thread does not own m
 *   | -ENOTRECOVERABLE when m's kind was damaged (m is left as it is). */
int ipc__mutex_unlock(pthread_mutex_t *m);

/* True if m's kind is one ipc__mutex_init makes. ipc__mutex_lock and
 * ipc__mutex_unlock check it (a damaged kind is -ENOTRECOVERABLE); any
 * other pthread call on a mutex in shared memory must check it first. */
bool ipc__mutex_sane(pthread_mutex_t *m);

/* pthread_mutex_trylock after that check: a positive errno, ENOTRECOVERABLE
 * for a damaged kind. */
int ipc__mutex_trylock_sane(pthread_mutex_t *m);

/* The thread id in m's lock word: its live owner, or 0 when free or when
 * the kernel found the owner dead (it clears the id then). A snapshot;
 * exact for the calling thread's own id (only the owner writes it). -1
 * where the C library keeps the owner elsewhere. */
static inline int32_t ipc__mutex_owner(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	/* Inline: every fast put asks (ipc__ring_bias_mine). 0x3fffffff is
	 * FUTEX_TID_MASK. */
	unsigned w = __atomic_load_n((unsigned *)&m->__data.__lock,
				     __ATOMIC_ACQUIRE);

	return (int32_t)(w & 0x3fffffffu);
#else
	(void)m;
	return -1;
#endif
}

/* The calling thread's kernel id. */
int32_t ipc__tid(void);

/* Asymmetric barriers (membarrier.c): the rare side of a Dekker pattern
 * calls ipc__membarrier() (slow: an RCU grace period) so that the hot side,
 * in any process, needs only a compiler barrier; or, where the hot side's
 * process called ipc__membarrier_register() (0, or -ENOTSUP / a system
 * error), ipc__membarrier_expedited() (fast). Each returns false if the
 * barrier could not be run (then nothing is ordered). Support is probed
 * once per process. */
bool ipc__membarrier_available(void);
bool ipc__membarrier(void);
int ipc__membarrier_register(void);
bool ipc__membarrier_expedited(void);

/* Incremented in every child at fork() by a handler installed when the
 * library is loaded; see fork.c. Inline: the hot paths compare it with a
 * saved generation on every call. */
extern _Atomic unsigned ipc__fork_generation IPC__INTERNAL;
static inline unsigned ipc__fork_gen(void)
{
	return atomic_load_explicit(&ipc__fork_generation,
				    memory_order_relaxed);
}

/* The calling thread's kernel id, as ipc__tid() but read from a
 * thread-local cache after the first call: a new thread's starts at 0,
 * and fork.c's child handler clears the forking thread's (the child's
 * thread has another id). */
extern _Thread_local int32_t ipc__tid_cached IPC__TLS_FAST IPC__INTERNAL;
static inline int32_t ipc__tid_self(void)
{
	if (ipc__tid_cached == 0)
		ipc__tid_cached = ipc__tid();
	return ipc__tid_cached;
}

/* ------------------------------------------------------------------------
 * Shared-memory segments.
 *
 * Each segment starts with this header. An opener trusts nothing in a
 * segment until the header says it is a finished libipc object of the
 * expected kind and ABI version whose size fits the file.
 */
#define IPC__MAGIC 0x4350494cu /* "LIPC" little-endian */
/* Bumped whenever a segment's layout or shared protocol changes, so that a
 * process of another libipc version gets IPC_EPROTO at open instead of
 * misreading the segment. 2: the queue's armed-sleeper bit, watcher count,
 * biased producer's CPU and drop intent; the Condition's lock identity; the
 * Barrier's default timeout. 3: the biased producer is revoked with
 * MEMBARRIER_CMD_GLOBAL (owners no longer register) and q_flags. 4: the
 * biased producer's eight registrations (struct ring_bias). 5: a
 * JoinableQueue's TAKEN record states carry a take generation. 6: a
 * JoinableQueue consumer slot's second line (the task_done without the
 * lock) and q_slots_hw; READY record states carry a tag of the item number,
 * claimed at head by compare-and-swap (the get without the lock). 7: a
 * queue's q_orphan_head (a dead dropper's undecided claim) and its
 * CLOSED_DROP bit (shut down by shutdown_immediate). */
#define IPC__ABI_VERSION 7u
#define IPC__INIT_READY 0x52454459u /* "REDY" */

enum ipc__kind {
	IPC__KIND_LOCK = 1,
	IPC__KIND_RLOCK = 2,
	IPC__KIND_EVENT = 3,
	IPC__KIND_COND = 4,
	IPC__KIND_SEM = 5,
	IPC__KIND_BARRIER = 6,
	IPC__KIND_QUEUE = 7,
	IPC__KIND_MQUEUE = 8,  /* the companion segment of a POSIX mq queue */
	IPC__KIND_SHM = 9,     /* shm/shm.c: a raw block */
	IPC__KIND_ARRAY = 10,  /* shm/shm.c: Value and Array */
	IPC__KIND_PQUEUE = 11, /* pqueue/pqueue.c: PriorityQueue */
	IPC__KIND_LAST = IPC__KIND_PQUEUE,
};

struct ipc__seg_hdr {
	uint32_t h_magic;      /* IPC__MAGIC */
	uint16_t h_abi;	       /* IPC__ABI_VERSION */
	uint16_t h_kind;       /* enum ipc__kind */
	uint64_t h_size;       /* bytes of the whole segment, header included */
	uint32_t h_init;       /* IPC__INIT_READY once the creator finished */
	int32_t h_creator_pid; /* informational (ipcctl) */
	uint64_t h_created_ns; /* CLOCK_REALTIME at creation, informational */
	uint8_t h_reserved[32]; /* zero */
};
_Static_assert(sizeof(struct ipc__seg_hdr) == IPC__CACHELINE,
	       "segment header is one cache line");

/* What the segment layer needs to know about one kind of object. */
struct ipc__seg_type {
	enum ipc__kind kind;
	size_t min_size; /* smallest valid h_size */
	/* Fill a zeroed segment of `size` bytes (header already written). */
	int (*init)(void *base, size_t size, const void *arg);
	/* Validate a mapped segment an opener found (header already checked);
	 * 0 or -EPROTO / -EINVAL. May be NULL. */
	int (*check)(const void *base, size_t size, const void *arg);
};

struct ipc__seg {
	void *base;  /* the mapping; base starts with struct ipc__seg_hdr */
	size_t size; /* bytes mapped */
	int fd;	     /* named: the file, holding our user slot (users.c); -1 */
};

/* An anonymous segment shared with children forked later. */
int ipc__seg_new(struct ipc__seg *seg, const struct ipc__seg_type *type,
		 size_t size, const void *arg);

/* Open or create the segment of a name (flags: IPC_CREATE, IPC_EXCL, mode).
 * A creator publishes the segment only once it is initialised (it is built
 * as an unnamed file and then linked to its name), so an opener never sees
 * a half-made object and a creator that dies half-way leaves nothing. */
int ipc__seg_open(struct ipc__seg *seg, const struct ipc__seg_type *type,
		  const char *name, int flags, size_t size, const void *arg);

void ipc__seg_close(struct ipc__seg *seg);

/* Validate a public name; write "/dev/shm/libipc.<name>" to path.
 * -EINVAL for a bad name. */
int ipc__name_path(const char *name, char *path, size_t cap);
#define IPC__PATH_MAX 256

/* ------------------------------------------------------------------------
 * Users of named segments (users.c): every open file description of a
 * named segment holds an OFD read lock on the byte 2^62 + pid of its
 * opener; the kernel drops it when the last descriptor of that description
 * closes, in particular when the process dies.
 */

/* Take a user slot on fd. path NULL: fd is a creator's unnamed file, not
 * linked yet. Otherwise, after the slot is held, check that path still
 * names fd's file: -ENOENT if a concurrent ipc_unlink_unused removed it
 * (the caller closes fd and looks the name up again). */
int ipc__users_join(int fd, const char *path);

/* Processes holding a user slot on fd's file (through descriptions other
 * than fd's), storing up to npids of their pids; or a negative errno. Never
 * blocks. */
int ipc__users_count(int fd, pid_t *pids, int npids);

/* ipc_stat's common part: open path (oflags | O_NOFOLLOW | O_NONBLOCK),
 * fill info from the file and its header (read with pread) and count its
 * users. 0 | -EPROTO (info->problem set; *fdp open if the file could be
 * opened) | -ENOENT | -EACCES. The caller closes *fdp (-1 if none). */
int ipc__stat_fd(const char *path, int oflags, ipc_object_info *info, int *fdp);

/* pread until len bytes, end of file or an error: the bytes read. */
size_t ipc__pread_full(int fd, void *buf, size_t len, off_t off);

/* Every field "does not apply": 0, or -1 where ipc.h says so. */
void ipc__info_clear(ipc_object_info *info);

/* Fill info->holder and info->holder_died from a copy of a robust mutex
 * (never the live one: reading a copy needs no lock and cannot block). */
void ipc__mutex_peek(const pthread_mutex_t *copy, ipc_object_info *info);
pid_t ipc__tid_process(int32_t tid);

/* Does process pid, or one of its ancestors (a forked child shares its
 * opener's user slot), hold a user slot on fd's file? Never blocks; true
 * when it cannot be told. */
bool ipc__users_has_lineage(int fd, pid_t pid);

/* "/libipc.<name>" for the POSIX message queue of a libipc name.
 * -EINVAL for a bad name. */
int ipc__mq_name(const char *name, char *mqname, size_t cap);

/* mq_unlink the message queue of a libipc name: 0 or a negative errno. */
int ipc__mq_unlink(const char *name);

/* ------------------------------------------------------------------------
 * Crash points: in a build configured with --enable-crashpoints,
 * IPC__CRASHPOINT("lock.acquire.after") kills the process with SIGKILL when
 * the environment variable IPC_CRASHPOINT names that point (and, if
 * IPC_CRASHPOINT_SKIP=n is set, after n passes through it). In other builds
 * it compiles to nothing.
 */
#ifdef IPC_ENABLE_CRASHPOINTS
void ipc__crashpoint(const char *name);
#define IPC__CRASHPOINT(name) ipc__crashpoint(name)
#else
#define IPC__CRASHPOINT(name) ((void)0)
#endif

/* Allocate a handle of `size` bytes (zeroed) whose first member is a
 * struct ipc__seg, and attach it to an anonymous or named segment
 * (name == NULL: anonymous). */
int ipc__handle_new(void **out, size_t handle_size,
		    const struct ipc__seg_type *type, const char *name,
		    int flags, size_t seg_size, const void *arg);
void ipc__handle_free(void *handle);

#endif /* LIBIPC_CORE_H */
