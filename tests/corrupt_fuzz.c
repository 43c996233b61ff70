/* SPDX-License-Identifier: MIT */
/*
 * corrupt_fuzz.c — random damage to live segments of every kind of object,
 * then use: counts crashes, hangs and undocumented return codes.
 *
 *   tests/corrupt_fuzz [--count N] [--first R] [--seed S] [--flips F]
 *                      [--kinds K,K,...|all] [--hang-ms MS] [--verbose]
 *
 * For each of N rounds per kind, the parent makes a named object, uses it
 * a little (so its state is that of a live object: locked and unlocked,
 * messages in a ring, a consumer registered) and closes it. It then maps
 * the object's file and XORs 1..F random bytes (default 4) with random
 * non-zero values: three in four within bytes 64..1023 (the control lines
 * after the header, where the indices, counts and mutexes live), the others
 * anywhere in the file, header included. A child process then opens the object
 * by name and runs a fixed workload on it in which every call has a short
 * timeout, checking that each return is a documented code (or a value in
 * range). The round counts as
 *
 *   crash  the child died by a signal (SIGSEGV, SIGBUS, SIGABRT, ...);
 *   hang   the child had not finished --hang-ms (default 20 s) after it
 *          started (it is then killed) — its own calls wait a few hundred
 *          ms at most;
 *   code   a call returned something outside the IPC_ERRORS table, or a
 *          length or index out of range;
 *
 * and the figure reported per kind is each of those per 10 000 rounds. The
 * run fails if any is non-zero. Rounds are reproducible: round r of a run
 * with seed S uses its own generator seeded from (S, kind, r), printed with
 * --verbose and on every failure, so one bad round can be replayed alone
 * with --seed S --first r --count 1 --kinds K.
 *
 * `make check` runs DEFAULT_COUNT rounds of the DEFAULT_KINDS; longer runs
 * are by hand: `tests/corrupt_fuzz --count 10000 --kinds all`. Output is
 * TAP, one test per kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

/* The kinds `make check` fuzzes: all of them. */
#define DEFAULT_KINDS                                                       \
	"lock,rlock,event,cond,sem,bsem,barrier,queue,jqueue,pqueue,array," \
	"shm,pipe"
#define DEFAULT_COUNT 40
#define HANG_MS 20000 /* default for --hang-ms */

/* Child exit codes besides 0 (opened and used). */
#define CODE_BAD 3     /* a return outside the contract */
#define CODE_REFUSED 4 /* the open refused the damaged object: fine */

/* ---- A small seeded generator (splitmix64) ------------------------------ */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n)
{
	return n ? rng_next() % n : 0;
}

/* ---- Return checks inside the child ------------------------------------- */

static bool known(long rc)
{
	return rc >= 0 || strcmp(ipc_err_name((int)rc), "IPC_EUNKNOWN") != 0;
}

#define EXPECT(cond)                         \
	do {                                 \
		if (!(cond)) {               \
			bad_line = __LINE__; \
			return CODE_BAD;     \
		}                            \
	} while (0)
#define CALL(expr) EXPECT(known((long)(expr)))

static int bad_line;
static bool verbose;
static int hang_ms = HANG_MS;

/* ---- Kinds: make, use a little, and the child's workload ---------------- */

struct kind {
	const char *name;
	int (*make)(const char *name); /* create, use, close: 0 or a code */
	int (*work)(const char *name); /* in the child: 0 or CODE_BAD */
	/* The segments an object is made of, as suffixes of its name (NULL:
	 * the name alone); each round damages one of them. */
	const char *const *parts;
	int (*unlink)(const char *name); /* NULL: ipc_unlink */
};

static int lock_make(const char *nm)
{
	ipc_lock *lk;
	int rc = ipc_lock_open(&lk, nm, IPC_CREATE | IPC_EXCL);

	if (rc != 0)
		return rc;
	ipc_lock_acquire(lk, 1000);
	ipc_lock_release(lk);
	ipc_lock_close(lk);
	return 0;
}

static int lock_work(const char *nm)
{
	ipc_lock *lk;
	int rc = ipc_lock_open(&lk, nm, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	rc = ipc_lock_acquire(lk, 20);
	CALL(rc);
	if (rc == 0 || rc == IPC_EOWNERDEAD)
		CALL(ipc_lock_release(lk));
	rc = ipc_lock_acquire(lk, IPC_NOWAIT);
	CALL(rc);
	CALL(ipc_lock_release(lk));
	ipc_lock_close(lk);
	return 0;
}

static int rlock_make(const char *nm)
{
	ipc_rlock *lk;
	int rc = ipc_rlock_open(&lk, nm, IPC_CREATE | IPC_EXCL);

	if (rc != 0)
		return rc;
	ipc_rlock_acquire(lk, 1000);
	ipc_rlock_acquire(lk, 1000);
	ipc_rlock_release(lk);
	ipc_rlock_release(lk);
	ipc_rlock_close(lk);
	return 0;
}

static int rlock_work(const char *nm)
{
	ipc_rlock *lk;
	int rc = ipc_rlock_open(&lk, nm, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	for (int i = 0; i < 2; i++)
		CALL(ipc_rlock_acquire(lk, 20));
	for (int i = 0; i < 3; i++)
		CALL(ipc_rlock_release(lk));
	ipc_rlock_close(lk);
	return 0;
}

static int event_make(const char *nm)
{
	ipc_event *ev;
	int rc = ipc_event_open(&ev, nm, IPC_CREATE | IPC_EXCL);

	if (rc != 0)
		return rc;
	ipc_event_set(ev);
	ipc_event_clear(ev);
	ipc_event_close(ev);
	return 0;
}

static int event_work(const char *nm)
{
	ipc_event *ev;
	int rc = ipc_event_open(&ev, nm, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	(void)ipc_event_is_set(ev);
	CALL(ipc_event_wait(ev, IPC_NOWAIT));
	CALL(ipc_event_clear(ev));
	CALL(ipc_event_wait(ev, 10));
	CALL(ipc_event_set(ev));
	EXPECT(ipc_event_wait(ev, 10) == 0);
	ipc_event_close(ev);
	return 0;
}

static int cond_make(const char *nm)
{
	ipc_cond *c;
	int rc = ipc_cond_open(&c, nm, IPC_CREATE | IPC_EXCL);

	if (rc != 0)
		return rc;
	ipc_cond_acquire(c, 1000);
	ipc_cond_wait(c, 1);
	ipc_cond_notify_all(c);
	ipc_cond_release(c);
	ipc_cond_close(c);
	return 0;
}

static int cond_work(const char *nm)
{
	ipc_cond *c;
	int rc = ipc_cond_open(&c, nm, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	CALL(ipc_cond_notify(c, 1));
	rc = ipc_cond_acquire(c, 20);
	CALL(rc);
	if (rc == 0 || rc == IPC_EOWNERDEAD) {
		CALL(ipc_cond_notify(c, 1));
		CALL(ipc_cond_notify_all(c));
		CALL(ipc_cond_wait(c, 10));
		CALL(ipc_cond_release(c));
	}
	ipc_cond_close(c);
	return 0;
}

static int sem_make_max(const char *nm, unsigned max)
{
	ipc_sem *s;
	int rc = ipc_sem_open(&s, nm, IPC_CREATE | IPC_EXCL, 1, max);

	if (rc != 0)
		return rc;
	ipc_sem_acquire(s, 1000);
	ipc_sem_release(s);
	ipc_sem_close(s);
	return 0;
}

static int sem_make(const char *nm)
{
	return sem_make_max(nm, 0);
}

static int bsem_make(const char *nm)
{
	return sem_make_max(nm, 3);
}

static int sem_work(const char *nm)
{
	ipc_sem *s;
	int rc = ipc_sem_open(&s, nm, 0, 0, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	CALL(ipc_sem_value(s));
	CALL(ipc_sem_release(s));
	CALL(ipc_sem_acquire(s, IPC_NOWAIT));
	CALL(ipc_sem_acquire(s, 10));
	CALL(ipc_sem_value(s));
	ipc_sem_close(s);
	return 0;
}

#define BARRIER_PARTIES 3

static int barrier_make(const char *nm)
{
	ipc_barrier *b;
	int rc = ipc_barrier_open(&b, nm, IPC_CREATE | IPC_EXCL,
				  BARRIER_PARTIES);

	if (rc != 0)
		return rc;
	ipc_barrier_wait(b, 1); /* times out: a round broken and reset */
	ipc_barrier_reset(b);
	ipc_barrier_close(b);
	return 0;
}

static int barrier_work(const char *nm)
{
	ipc_barrier *b;
	unsigned parties;
	int rc = ipc_barrier_open(&b, nm, 0, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	parties = ipc_barrier_parties(b);
	EXPECT(parties >= 1 && parties <= IPC_BARRIER_MAX_PARTIES);
	EXPECT(ipc_barrier_n_waiting(b) < parties);
	(void)ipc_barrier_broken(b);
	rc = ipc_barrier_wait(b, IPC_NOWAIT);
	CALL(rc);
	EXPECT(rc < (int)parties);
	rc = ipc_barrier_wait(b, 10);
	CALL(rc);
	EXPECT(rc < (int)parties);
	CALL(ipc_barrier_reset(b));
	CALL(ipc_barrier_abort(b));
	CALL(ipc_barrier_reset(b));
	ipc_barrier_close(b);
	return 0;
}

#define QUEUE_CAPACITY 4096

static int queue_make_kind(const char *nm, bool joinable)
{
	ipc_queue_attr qa = { .capacity = QUEUE_CAPACITY,
			      .joinable = joinable };
	ipc_queue *q;
	char buf[256];
	int rc = ipc_queue_open(&q, nm, IPC_CREATE | IPC_EXCL, &qa);

	if (rc != 0)
		return rc;
	memset(buf, 'x', sizeof(buf));
	for (size_t len = 1; len < sizeof(buf); len *= 3)
		ipc_queue_put(q, buf, len, 1000);
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) >= 0 && joinable)
		ipc_queue_task_done(q);
	ipc_queue_get(q, buf, sizeof(buf), 1000); /* a task left undone */
	ipc_queue_close(q);
	return 0;
}

static int queue_make(const char *nm)
{
	return queue_make_kind(nm, false);
}

static int jqueue_make(const char *nm)
{
	return queue_make_kind(nm, true);
}

static int queue_work(const char *nm)
{
	ipc_queue *q;
	char buf[QUEUE_CAPACITY];
	void *msg;
	ssize_t n;
	int rc = ipc_queue_open(&q, nm, 0, NULL);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	memset(buf, 'y', sizeof(buf));
	CALL(ipc_queue_put(q, buf, 10, IPC_NOWAIT));
	CALL(ipc_queue_put(q, buf, 100, 10));
	CALL(ipc_queue_qsize(q));
	(void)ipc_queue_empty(q);
	(void)ipc_queue_full(q);
	for (int i = 0; i < 3; i++) {
		n = ipc_queue_get(q, buf, sizeof(buf),
				  i == 0 ? IPC_NOWAIT : 10);
		CALL(n);
		EXPECT(n <= (ssize_t)sizeof(buf));
	}
	n = ipc_queue_get_alloc(q, &msg, IPC_NOWAIT);
	CALL(n);
	EXPECT(n < 0 || msg != NULL);
	free(n >= 0 ? msg : NULL);
	CALL(ipc_queue_task_done(q));
	CALL(ipc_queue_join(q, 10));
	CALL(ipc_queue_unfinished(q));
	ipc_queue_close(q);
	return 0;
}

#define PQ_MAXSIZE 16
#define PQ_MAX_MSG 64

static int pqueue_make(const char *nm)
{
	ipc_pqueue *q;
	char buf[PQ_MAX_MSG];
	int rc = ipc_pqueue_open(&q, nm, IPC_CREATE | IPC_EXCL, PQ_MAXSIZE,
				 PQ_MAX_MSG);

	if (rc != 0)
		return rc;
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 8; i++)
		ipc_pqueue_put(q, (i * 7) % 5, buf, (size_t)i * 9, 1000);
	ipc_pqueue_get(q, NULL, buf, sizeof(buf), 1000);
	ipc_pqueue_close(q);
	return 0;
}

static int pqueue_work(const char *nm)
{
	ipc_pqueue *q;
	char buf[PQ_MAX_MSG];
	int64_t prio;
	void *msg;
	ssize_t n;
	long qs;
	int rc = ipc_pqueue_open(&q, nm, 0, 0, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	memset(buf, 'y', sizeof(buf));
	CALL(ipc_pqueue_put(q, -3, buf, 10, IPC_NOWAIT));
	CALL(ipc_pqueue_put(q, 9, buf, PQ_MAX_MSG, 10));
	qs = ipc_pqueue_qsize(q);
	CALL(qs);
	EXPECT(qs <= PQ_MAXSIZE);
	for (int i = 0; i < 3; i++) {
		n = ipc_pqueue_get(q, &prio, buf, sizeof(buf),
				   i == 0 ? IPC_NOWAIT : 10);
		CALL(n);
		EXPECT(n <= (ssize_t)sizeof(buf));
	}
	n = ipc_pqueue_get_alloc(q, &prio, &msg, IPC_NOWAIT);
	CALL(n);
	EXPECT(n < 0 || (msg != NULL && n <= PQ_MAX_MSG));
	free(n >= 0 ? msg : NULL);
	CALL(ipc_pqueue_shutdown(q));
	CALL(ipc_pqueue_get(q, NULL, buf, sizeof(buf), IPC_NOWAIT));
	ipc_pqueue_close(q);
	return 0;
}

#define ARRAY_LEN 16

static int array_make(const char *nm)
{
	ipc_array *a;
	int rc = ipc_array_open(&a, nm, IPC_CREATE | IPC_EXCL, IPC_TYPE_I64,
				ARRAY_LEN);

	if (rc != 0)
		return rc;
	ipc_array_acquire(a, 1000);
	ipc_array_release(a);
	for (size_t i = 0; i < ARRAY_LEN; i++)
		ipc_array_store(a, i, (int64_t)i * 1000);
	ipc_array_close(a);
	return 0;
}

static int array_work(const char *nm)
{
	ipc_array *a;
	int64_t v, old;
	size_t len;
	int64_t *data;
	int rc = ipc_array_open(&a, nm, 0, IPC_TYPE_I64, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	len = ipc_array_len(a);
	data = ipc_array_data(a);
	EXPECT(len >= 1 && data != NULL);
	rc = ipc_array_acquire(a, 20);
	CALL(rc);
	if (rc == 0 || rc == IPC_EOWNERDEAD) {
		for (size_t i = 0; i < len; i++)
			data[i] += 1; /* every element is inside the mapping */
		CALL(ipc_array_release(a));
	}
	for (size_t i = 0; i < len; i++) {
		CALL(ipc_array_load(a, i, &v));
		CALL(ipc_array_add(a, i, 1, &old));
		CALL(ipc_array_cas(a, i, &v, 7));
	}
	EXPECT(ipc_array_store(a, len, 1) == IPC_EINVAL);
	ipc_array_close(a);
	return 0;
}

static int shm_make(const char *nm)
{
	ipc_shm *m;
	int rc = ipc_shm_open(&m, nm, IPC_CREATE | IPC_EXCL, 3000);

	if (rc != 0)
		return rc;
	memset(ipc_shm_buf(m), 0x5a, ipc_shm_size(m));
	ipc_shm_close(m);
	return 0;
}

static int shm_work(const char *nm)
{
	ipc_shm *m;
	int rc = ipc_shm_open(&m, nm, 0, 0);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	EXPECT(ipc_shm_buf(m) != NULL && ipc_shm_size(m) >= 1);
	memset(ipc_shm_buf(m), 0xa5, ipc_shm_size(m)); /* all of it mapped */
	ipc_shm_close(m);
	return 0;
}

static int pipe_make(const char *nm)
{
	ipc_conn *c[2];
	char buf[256];
	int rc;

	for (int e = 0; e < 2; e++) {
		rc = ipc_pipe_open(&c[e], nm, e == 0 ? IPC_CREATE : 0, e, true,
				   NULL);
		if (rc != 0) {
			if (e == 1)
				ipc_conn_close(c[0]);
			return rc;
		}
	}
	memset(buf, 'x', sizeof(buf));
	for (size_t len = 1; len < sizeof(buf); len *= 3) {
		ipc_conn_send(c[0], buf, len, 1000);
		ipc_conn_send(c[1], buf, len, 1000);
	}
	ipc_conn_recv(c[0], buf, sizeof(buf), 1000);
	ipc_conn_recv(c[1], buf, sizeof(buf), 1000);
	ipc_conn_close(c[0]);
	ipc_conn_close(c[1]);
	return 0;
}

static int pipe_work(const char *nm)
{
	ipc_conn *c[2];
	char buf[512];
	void *msg;
	ssize_t n;
	int rc = ipc_pipe_open(&c[0], nm, 0, 0, true, NULL);

	CALL(rc);
	if (rc != 0)
		return CODE_REFUSED;
	rc = ipc_pipe_open(&c[1], nm, 0, 1, true, NULL);
	CALL(rc);
	if (rc != 0) {
		ipc_conn_close(c[0]);
		return CODE_REFUSED;
	}
	memset(buf, 'y', sizeof(buf));
	for (int e = 0; e < 2; e++) {
		CALL(ipc_conn_send(c[e], buf, 10, IPC_NOWAIT));
		CALL(ipc_conn_poll(c[e], IPC_NOWAIT));
		for (int i = 0; i < 3; i++) {
			n = ipc_conn_recv(c[e], buf, sizeof(buf),
					  i == 0 ? IPC_NOWAIT : 10);
			CALL(n);
			EXPECT(n <= (ssize_t)sizeof(buf));
		}
		n = ipc_conn_recv_alloc(c[e], &msg, IPC_NOWAIT);
		CALL(n);
		EXPECT(n < 0 || msg != NULL);
		free(n >= 0 ? msg : NULL);
	}
	ipc_conn_close(c[0]);
	ipc_conn_close(c[1]);
	return 0;
}

static const char *const pipe_parts[] = { "", ".p0", ".p1", NULL };

static const struct kind kinds[] = {
	{ .name = "lock", .make = lock_make, .work = lock_work },
	{ .name = "rlock", .make = rlock_make, .work = rlock_work },
	{ .name = "event", .make = event_make, .work = event_work },
	{ .name = "cond", .make = cond_make, .work = cond_work },
	{ .name = "sem", .make = sem_make, .work = sem_work },
	{ .name = "bsem", .make = bsem_make, .work = sem_work },
	{ .name = "barrier", .make = barrier_make, .work = barrier_work },
	{ .name = "queue", .make = queue_make, .work = queue_work },
	{ .name = "jqueue", .make = jqueue_make, .work = queue_work },
	{ .name = "pqueue", .make = pqueue_make, .work = pqueue_work },
	{ .name = "array", .make = array_make, .work = array_work },
	{ .name = "shm", .make = shm_make, .work = shm_work },
	{ .name = "pipe",
	  .make = pipe_make,
	  .work = pipe_work,
	  .parts = pipe_parts,
	  .unlink = ipc_pipe_unlink },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* ---- Damage ------------------------------------------------------------- */

#define HDR_BYTES 64	 /* the segment header */
#define CONTROL_END 1024 /* past it: queue storage, barrier slots */

struct flip {
	size_t off;
	uint8_t xor ;
};
#define MAX_FLIPS 64

/* XOR 1..max_flips random bytes of one of the object's files (a random
 * one of k's parts). Returns how many. */
static int damage(const struct kind *k, const char *nm, unsigned max_flips,
		  struct flip *flips)
{
	char part[160];
	size_t size, nparts = 0;
	uint8_t *base;
	int n;

	while (k->parts != NULL && k->parts[nparts] != NULL)
		nparts++;
	snprintf(part, sizeof(part), "%s%s", nm,
		 nparts ? k->parts[rng_below(nparts)] : "");
	base = t_map_segment(part, &size);

	if (base == NULL)
		return -1;
	n = 1 + (int)rng_below(max_flips);
	for (int i = 0; i < n; i++) {
		/* Three flips in four land in the object's own control lines
		 * (past the 64-byte header, which the open checks), the
		 * fourth anywhere in the file. */
		size_t lo = 0, hi = size;
		if (rng_below(4) != 0 && size > HDR_BYTES) {
			lo = HDR_BYTES;
			hi = size < CONTROL_END ? size : CONTROL_END;
		}
		flips[i].off = lo + rng_below(hi - lo);
		flips[i].xor = (uint8_t)(1 + rng_below(255));
		base[flips[i].off] ^= flips[i].xor ;
	}
	t_unmap_segment(base, size);
	return n;
}

/* ---- Rounds ------------------------------------------------------------- */

enum outcome { OK, REFUSED, CRASH, HANG, CODE, SETUP };

struct child_job {
	const struct kind *k;
	const char *name;
};

static int child_run(void *arg)
{
	const struct child_job *j = arg;
	int rc = j->k->work(j->name);

	if (rc == CODE_BAD)
		printf("# %s: unexpected return at corrupt_fuzz.c:%d\n",
		       j->k->name, bad_line);
	return rc;
}

static enum outcome round_run(const struct kind *k, unsigned long seed,
			      unsigned long r, unsigned max_flips)
{
	struct flip flips[MAX_FLIPS];
	char nm[128], tag[64];
	struct child_job job;
	int (*unlink_fn)(const char *name);
	int nflips, rc;

	rng_state = seed * 0x100000001b3ull ^ (uint64_t)(k - kinds) << 48 ^ r;
	snprintf(tag, sizeof(tag), "fuzz.%s.%lu", k->name, r);
	t_name(nm, sizeof(nm), tag);
	unlink_fn = k->unlink != NULL ? k->unlink : ipc_unlink;
	unlink_fn(nm);
	if (k->make(nm) != 0)
		return SETUP;
	nflips = damage(k, nm, max_flips, flips);
	if (nflips < 0) {
		unlink_fn(nm);
		return SETUP;
	}
	job = (struct child_job){ k, nm };
	rc = t_reap(t_spawn(child_run, &job), hang_ms);
	unlink_fn(nm);
	if (rc == CODE_REFUSED && !verbose)
		return REFUSED;
	if (rc == 0 && !verbose)
		return OK;
	printf("# %s round %lu (--seed %lu --first %lu --count 1): %s;",
	       k->name, r, seed, r,
	       rc == 0		      ? "ok"
	       : rc == CODE_REFUSED   ? "refused at open"
	       : rc == T_REAP_TIMEOUT ? "HANG"
	       : rc < 0		      ? "CRASH"
				      : "BAD CODE");
	if (rc < 0)
		printf(" signal %d (%s);", -rc, strsignal(-rc));
	for (int i = 0; i < nflips; i++)
		printf(" [%zu]^=0x%02x", flips[i].off, flips[i].xor);
	printf("\n");
	if (rc == 0 || rc == CODE_REFUSED)
		return rc == 0 ? OK : REFUSED;
	return rc == T_REAP_TIMEOUT ? HANG : rc < 0 ? CRASH : CODE;
}

static const struct kind *kind_named(const char *nm, size_t len)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (strlen(kinds[i].name) == len &&
		    strncmp(kinds[i].name, nm, len) == 0)
			return &kinds[i];
	return NULL;
}

/* Parse "a,b,c" or "all" into picked[]; false on an unknown kind. */
static bool kinds_parse(const char *list, bool *picked)
{
	memset(picked, 0, N_KINDS * sizeof(bool));
	if (strcmp(list, "all") == 0) {
		for (size_t i = 0; i < N_KINDS; i++)
			picked[i] = true;
		return true;
	}
	while (*list != '\0') {
		size_t len = strcspn(list, ",");
		const struct kind *k = kind_named(list, len);
		if (k == NULL) {
			fprintf(stderr, "corrupt_fuzz: unknown kind '%.*s'\n",
				(int)len, list);
			return false;
		}
		picked[k - kinds] = true;
		list += len;
		if (*list == ',')
			list++;
	}
	return true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: corrupt_fuzz [--count N] [--first R] [--seed S] "
		"[--flips F] [--kinds K,K,...|all] [--hang-ms MS] "
		"[--verbose]\nkinds:");
	for (size_t i = 0; i < N_KINDS; i++)
		fprintf(stderr, " %s", kinds[i].name);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	unsigned long count = DEFAULT_COUNT, first = 0;
	unsigned long seed =
		(unsigned long)time(NULL) ^ (unsigned long)getpid();
	unsigned flips = 4;
	const char *kind_list = DEFAULT_KINDS;
	bool picked[N_KINDS];
	int failed = 0, test = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
			continue;
		}
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--count") == 0)
			count = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--first") == 0)
			first = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0)
			seed = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--flips") == 0)
			flips = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--kinds") == 0)
			kind_list = argv[++i];
		else if (strcmp(argv[i], "--hang-ms") == 0)
			hang_ms = atoi(argv[++i]);
		else {
			usage();
			return 2;
		}
	}
	if (flips < 1 || flips > MAX_FLIPS || count == 0 || hang_ms < 1000 ||
	    !kinds_parse(kind_list, picked)) {
		usage();
		return 2;
	}
	printf("# corrupt_fuzz --seed %lu --first %lu --count %lu --flips %u "
	       "--kinds %s --hang-ms %d\n",
	       seed, first, count, flips, kind_list, hang_ms);
	for (size_t i = 0; i < N_KINDS; i++)
		test += picked[i];
	printf("1..%d\n", test);
	fflush(stdout);
	test = 0;
	for (size_t i = 0; i < N_KINDS; i++) {
		unsigned long n[SETUP + 1] = { 0 };
		unsigned long used;
		bool ok;
		if (!picked[i])
			continue;
		for (unsigned long r = first; r < first + count; r++) {
			n[round_run(&kinds[i], seed, r, flips)]++;
			fflush(stdout);
		}
		used = count - n[SETUP];
		ok = n[CRASH] + n[HANG] + n[CODE] == 0 && used > 0;
		failed += !ok;
		printf("%s %d - %s: %lu corruptions (%lu refused at open), "
		       "per 10000: %.0f crashes, %.0f hangs, %.0f bad codes "
		       "(%lu, %lu, %lu)\n",
		       ok ? "ok" : "not ok", ++test, kinds[i].name, used,
		       n[REFUSED],
		       used ? n[CRASH] * 10000.0 / (double)used : 0.0,
		       used ? n[HANG] * 10000.0 / (double)used : 0.0,
		       used ? n[CODE] * 10000.0 / (double)used : 0.0, n[CRASH],
		       n[HANG], n[CODE]);
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
