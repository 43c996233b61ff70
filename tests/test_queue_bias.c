/* SPDX-License-Identifier: MIT */
/*
 * test_queue_bias.c — the biased (fast) producer when producers take turns
 * on one CPU: a revoker running on the CPU of the owner's last put needs
 * no barrier (tested with membarrier(2) denied), a producer takes the fast
 * path back while the revoked owner has not run since (another
 * registration), every registration held by stopped owners leaves the
 * locked path working, producers sharing one CPU lose nothing, a handle
 * closed after its owner's thread id came back leaves the new owner
 * revocable, and a revoked owner gives its registration up on the locked
 * path.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define HAVE_RSEQ 1
#endif
#endif

#include "libipc/ipc.h"
#include "libipc/queue/ring.h"
#include "tests/helpers.h"

static ipc_queue *q;
static char name[128];
static struct ring_shm *shm;
static size_t shm_len;

static void teardown(void)
{
	t_unmap_segment(shm, shm_len);
	ipc_queue_close(q);
	ipc_unlink(name);
	cr_expect_eq(t_leaked_segments(), 0);
}

TestSuite(bias, .fini = teardown, .timeout = 120);

struct msg {
	uint32_t producer, seq, check;
};

static struct msg make(uint32_t p, uint32_t seq)
{
	return (struct msg){ p, seq, p * 2654435761u ^ seq };
}

/* The named queue q and the test's own mapping of its segment. */
static void open_queue(const char *tag, size_t capacity)
{
	ipc_queue_attr attr = { .capacity = capacity };

	t_name(name, sizeof(name), tag);
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &attr), 0);
	shm = t_map_segment(name, &shm_len);
	cr_assert_not_null(shm);
}

/* The first CPU this process may run on: every child pins itself there. */
static int one_cpu(void)
{
	cpu_set_t set;

	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	cr_assert_fail("no CPU");
	return -1;
}

static bool pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 &&
	       sched_getcpu() == cpu;
}

/* Make membarrier(2) fail with EPERM in the calling process, as a seccomp
 * sandbox that does not know it would. */
static bool deny_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 &&
	       syscall(SYS_membarrier, 0, 0, 0) == -1 && errno == EPERM;
}

static int probe_deny(void *arg)
{
	(void)arg;
	return deny_membarrier() ? 0 : 1;
}

/* The same-CPU revocation needs the kernel's per-thread CPU number
 * (rseq), and this test needs seccomp to deny the barrier. */
static void require_rseq_and_seccomp(void)
{
#ifdef HAVE_RSEQ
	if (__rseq_size == 0)
		cr_skip_test("glibc registered no rseq area");
#else
	cr_skip_test("no <sys/rseq.h>");
#endif
	if (t_reap(t_spawn(probe_deny, NULL), 10000) != 0)
		cr_skip_test("seccomp cannot deny membarrier here");
	if (!(shm->q_flags & RING_F_BIAS))
		cr_skip_test("no membarrier(2): no producer is ever biased");
}

struct turns {
	int cpu;
	volatile int
		put[RING_BIAS_SLOTS + 2]; /* producer i finished its part */
	volatile int go;		  /* put the last message */
	volatile uint32_t slot[RING_BIAS_SLOTS + 2]; /* the one i took */
};
static struct turns *tu;

/* Producer p: pinned to tu->cpu, puts n messages (seq 0 .. n-1), says so,
 * waits for go, then puts seq n. The first producer puts two: the first
 * put makes it the owner, the second is a fast one, which records its
 * CPU. */
static int turn_producer(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg;
	uint32_t n = p == 0 ? 2 : RING_REBIAS_PUTS + 10;

	T_CHECK(pin(tu->cpu), 10);
	for (uint32_t i = 0; i < n; i++) {
		struct msg m = make(p, i);
		T_CHECK(ipc_queue_put(q, &m, sizeof(m), 10000) == 0, 11);
	}
	tu->slot[p] = atomic_load(&shm->q_bias_slot);
	__atomic_store_n(&tu->put[p], 1, __ATOMIC_SEQ_CST);
	T_CHECK(t_wait_count(&tu->go, 1, 60000), 12);
	struct msg m = make(p, n);
	T_CHECK(ipc_queue_put(q, &m, sizeof(m), 10000) == 0, 13);
	return 0;
}

/* Get every message of producers 0 .. np-1: each producer's in order,
 * whole, counted. */
static void expect_all(uint32_t np, const uint32_t *count)
{
	uint32_t next[RING_BIAS_SLOTS + 2] = { 0 }, total = 0;
	struct msg m;

	for (uint32_t p = 0; p < np; p++)
		total += count[p];
	for (uint32_t k = 0; k < total; k++) {
		cr_assert_eq(ipc_queue_get(q, &m, sizeof(m), 1000), sizeof(m));
		cr_assert_lt(m.producer, np);
		cr_assert_eq(m.seq, next[m.producer], "in order per producer");
		cr_assert_eq(m.check, make(m.producer, m.seq).check, "whole");
		next[m.producer]++;
	}
	for (uint32_t p = 0; p < np; p++)
		cr_assert_eq(next[p], count[p], "producer %u", p);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

static int32_t reg_owner(uint32_t slot)
{
	return (int32_t)(__atomic_load_n((unsigned *)&shm->q_bias[slot]
						 .b_reg.__data.__lock,
					 __ATOMIC_SEQ_CST) &
			 0x3fffffffu); /* FUTEX_TID_MASK */
}

/* The owner put on CPU c and is stopped between puts; a second producer
 * on c, whose membarrier(2) is denied, revokes it at once: the owner is
 * not running, so the request alone suffices (without that, the owner
 * never answers and the put times out). */
static int revoke_denied(void *arg)
{
	(void)arg;
	T_CHECK(pin(tu->cpu), 20);
	T_CHECK(deny_membarrier(), 21);
	for (uint32_t i = 0; i < 2; i++) {
		struct msg m = make(1, i);
		T_CHECK(ipc_queue_put(q, &m, sizeof(m), 5000) == 0, 22 + i);
	}
	T_CHECK(atomic_load(&shm->q_bias_state) == BIAS_OFF, 24);
	return 0;
}

Test(bias, a_revoker_on_the_stopped_owners_cpu_needs_no_barrier)
{
	uint32_t count[2] = { 3, 2 };
	pid_t owner;

	open_queue("bias-samecpu", 0);
	require_rseq_and_seccomp();
	tu = t_shared(sizeof(*tu));
	tu->cpu = one_cpu();
	owner = t_spawn(turn_producer, (void *)0);
	cr_assert(t_wait_count(&tu->put[0], 1, 10000));
	cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OWNED);
	cr_assert(t_stop(owner, 10000));
	cr_assert_eq(t_reap(t_spawn(revoke_denied, NULL), 20000), 0);
	kill(owner, SIGCONT);
	tu->go = 1;
	cr_assert_eq(t_reap(owner, 20000), 0);
	expect_all(2, count);
}

/* Producer 1 revokes the stopped owner and, after RING_REBIAS_PUTS locked
 * puts, takes the fast path back through another registration, although
 * the owner still holds its own (it has not run since). */
Test(bias, the_fast_path_is_taken_back_while_the_revoked_owner_has_not_run)
{
	uint32_t count[2] = { 3, RING_REBIAS_PUTS + 11 };
	pid_t kid[2];

	open_queue("bias-takeback", 0);
	tu = t_shared(sizeof(*tu));
	tu->cpu = one_cpu();
	if (!(shm->q_flags & RING_F_BIAS))
		cr_skip_test("no membarrier(2): no producer is ever biased");
	kid[0] = t_spawn(turn_producer, (void *)0);
	cr_assert(t_wait_count(&tu->put[0], 1, 10000));
	cr_assert(t_stop(kid[0], 10000));
	kid[1] = t_spawn(turn_producer, (void *)1);
	cr_assert(t_wait_count(&tu->put[1], 1, 30000));
	cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OWNED);
	cr_assert_neq(tu->slot[1], tu->slot[0]);
	cr_assert_eq(reg_owner(tu->slot[1]), kid[1], "producer 1 owns");
	cr_assert_eq(reg_owner(tu->slot[0]), kid[0], "0 still holds its own");
	kill(kid[0], SIGCONT);
	tu->go = 1;
	for (int p = 0; p < 2; p++)
		cr_assert_eq(t_reap(kid[p], 30000), 0, "producer %d", p);
	expect_all(2, count);
}

/* One producer more than there are registrations, each stopped after it
 * took one: the last finds none free, stays on the locked path, and loses
 * nothing; once they run again, every producer puts once more. */
Test(bias, with_every_registration_held_by_a_stopped_owner_puts_take_the_lock)
{
	enum { N = RING_BIAS_SLOTS + 1 };
	uint32_t count[N];
	pid_t kid[N];

	open_queue("bias-allheld", 1 << 20);
	tu = t_shared(sizeof(*tu));
	tu->cpu = one_cpu();
	if (!(shm->q_flags & RING_F_BIAS))
		cr_skip_test("no membarrier(2): no producer is ever biased");
	for (uint32_t p = 0; p < N; p++) {
		count[p] = (p == 0 ? 2 : RING_REBIAS_PUTS + 10) + 1;
		kid[p] = t_spawn(turn_producer, (void *)(uintptr_t)p);
		cr_assert(t_wait_count(&tu->put[p], 1, 30000), "producer %u",
			  p);
		if (p < RING_BIAS_SLOTS) {
			cr_assert_eq(atomic_load(&shm->q_bias_state),
				     BIAS_OWNED, "producer %u took one", p);
			cr_assert_eq(reg_owner(tu->slot[p]), kid[p]);
		}
		cr_assert(t_stop(kid[p], 10000));
	}
	cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OFF,
		     "none free for the last producer");
	for (uint32_t s = 0; s < RING_BIAS_SLOTS; s++) {
		bool held = false;
		for (uint32_t p = 0; p < RING_BIAS_SLOTS; p++)
			held |= reg_owner(s) == kid[p];
		cr_assert(held, "registration %u held by a stopped producer",
			  s);
	}
	for (uint32_t p = 0; p < N; p++)
		kill(kid[p], SIGCONT);
	tu->go = 1;
	for (uint32_t p = 0; p < N; p++)
		cr_assert_eq(t_reap(kid[p], 30000), 0, "producer %u", p);
	expect_all(N, count);
}

/* Four producers pinned to one CPU (they take turns, each revoking the
 * one before it and taking the fast path back), a small ring that fills,
 * and this process consuming: every message once, whole, in order per
 * producer. */
#define TURN_PRODUCERS 4
#define TURN_MSGS 30000

static int busy_producer(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg;

	T_CHECK(pin(tu->cpu), 30);
	for (uint32_t i = 0; i < TURN_MSGS; i++) {
		struct msg m = make(p, i);
		T_CHECK(ipc_queue_put(q, &m, sizeof(m), 20000) == 0, 31);
	}
	return 0;
}

Test(bias, producers_taking_turns_on_one_cpu_lose_nothing)
{
	uint32_t count[TURN_PRODUCERS];
	pid_t kid[TURN_PRODUCERS];

	open_queue("bias-oneCPU", 4096);
	tu = t_shared(sizeof(*tu));
	tu->cpu = one_cpu();
	for (uint32_t p = 0; p < TURN_PRODUCERS; p++) {
		count[p] = TURN_MSGS;
		kid[p] = t_spawn(busy_producer, (void *)(uintptr_t)p);
	}
	expect_all(TURN_PRODUCERS, count);
	for (uint32_t p = 0; p < TURN_PRODUCERS; p++)
		cr_assert_eq(t_reap(kid[p], 30000), 0, "producer %u", p);
}

/* Thread ids come back: a thread of ours that owned through one handle
 * and exited left its id in that handle's record of who holds what, and a
 * later thread with the same id (the kernel reuses ids after pid_max) may
 * own the same registration through another handle. Closing the first
 * handle from a third thread must not turn the fast path off without
 * revoking that live owner, or it goes on putting fast beside the locked
 * path and the two write one record. */
#define REUSE_MSGS 20000

struct reuse {
	int32_t target;	 /* the id thread A had */
	uint32_t slot_a; /* the registration A took */
	uint32_t slot_c; /* the one C, with A's id, took */
	atomic_int hunt; /* a hunter: 1 not the id, 2 C owns */
	atomic_int closed;
	atomic_int fails;
	uint32_t helper_seq;
};
static struct reuse re;
static ipc_queue *q2;

static int32_t my_tid(void)
{
	return (int32_t)syscall(SYS_gettid);
}

static void reuse_put(ipc_queue *h, uint32_t p, uint32_t seq)
{
	struct msg m = make(p, seq);

	if (ipc_queue_put(h, &m, sizeof(m), 10000) != 0)
		re.fails++;
}

/* A (producer 2): owns through q, puts fast once, exits holding it. */
static void *reuse_a(void *arg)
{
	(void)arg;
	re.target = my_tid();
	reuse_put(q, 2, 0);
	reuse_put(q, 2, 1);
	re.slot_a = atomic_load(&shm->q_bias_slot);
	return NULL;
}

/* A helper (producer 3) moves q_bias_slot on by one through q2: revokes
 * the dead owner before it, takes the next registration, exits. */
static void *reuse_helper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		reuse_put(q2, 3, re.helper_seq++);
	return NULL;
}

/* A hunter: returns at once unless it got A's id; then it is C (producer
 * 1): it owns through q2, and after q is closed puts REUSE_MSGS more. */
static void *reuse_hunter(void *arg)
{
	(void)arg;
	if (my_tid() != re.target) {
		atomic_store(&re.hunt, 1);
		return NULL;
	}
	for (uint32_t i = 0; i < 3; i++)
		reuse_put(q2, 1, i);
	re.slot_c = atomic_load(&shm->q_bias_slot);
	atomic_store(&re.hunt, 2);
	while (atomic_load(&re.closed) == 0)
		sched_yield(); /* the main thread bounds this wait */
	for (uint32_t i = 0; i < REUSE_MSGS; i++)
		reuse_put(q2, 1, 3 + i);
	return NULL;
}

static long pid_max(void)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	long v = 0;

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

Test(bias,
     closing_a_handle_whose_owner_id_was_reused_leaves_the_new_owner_revocable)
{
	uint32_t count[4] = { REUSE_MSGS, 3 + REUSE_MSGS, 2, 0 };
	struct timespec t0, t;
	pthread_t a, c;
	bool found = false;

	open_queue("bias-tidreuse", 1 << 20);
	if (!(shm->q_flags & RING_F_BIAS))
		cr_skip_test("no membarrier(2): no producer is ever biased");
	if (pid_max() <= 0 || pid_max() > (1 << 17))
		cr_skip_test("pid_max %ld: ids take too long to come back",
			     pid_max());
	cr_assert_eq(ipc_queue_open(&q2, name, 0, NULL), 0);
	cr_assert_eq(pthread_create(&a, NULL, reuse_a, NULL), 0);
	cr_assert_eq(pthread_join(a, NULL), 0);
	cr_assert_eq(reg_owner(re.slot_a), 0, "A died holding it");
	/* Bring q_bias_slot to the registration before A's, so that C's take
	 * (which looks from the one after the current) finds A's first. */
	for (int i = 0;
	     i < 2 * RING_BIAS_SLOTS &&
	     atomic_load(&shm->q_bias_slot) !=
		     (re.slot_a + RING_BIAS_SLOTS - 1) % RING_BIAS_SLOTS;
	     i++) {
		cr_assert_eq(pthread_create(&a, NULL, reuse_helper, NULL), 0);
		cr_assert_eq(pthread_join(a, NULL), 0);
	}
	cr_assert_eq(atomic_load(&shm->q_bias_slot),
		     (re.slot_a + RING_BIAS_SLOTS - 1) % RING_BIAS_SLOTS);
	count[3] = re.helper_seq;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (t = t0; !found && t.tv_sec - t0.tv_sec < 60;
	     clock_gettime(CLOCK_MONOTONIC, &t)) {
		atomic_store(&re.hunt, 0);
		cr_assert_eq(pthread_create(&c, NULL, reuse_hunter, NULL), 0);
		while (atomic_load(&re.hunt) == 0)
			sched_yield();
		found = atomic_load(&re.hunt) == 2;
		if (!found)
			cr_assert_eq(pthread_join(c, NULL), 0);
	}
	if (!found)
		cr_skip_test("no thread got A's id back within 60 s");
	cr_assert_eq(re.slot_c, re.slot_a, "C took A's registration");
	cr_assert_eq(reg_owner(re.slot_c), re.target, "C owns it");
	ipc_queue_close(q);
	q = NULL;
	cr_expect(
		!(atomic_load(&shm->q_bias_state) == BIAS_OFF &&
		  atomic_load(&shm->q_bias[re.slot_c].b_revoke) == REVOKE_NONE),
		"the fast path turned off, its live owner not revoked");
	/* C puts fast while this thread puts through q2: every message once,
	 * whole, in order per producer. */
	atomic_store(&re.closed, 1);
	for (uint32_t i = 0; i < REUSE_MSGS; i++)
		reuse_put(q2, 0, i);
	cr_assert_eq(pthread_join(c, NULL), 0);
	cr_assert_eq(re.fails, 0);
	q = q2;
	q2 = NULL;
	expect_all(4, count);
}

/* A revoked owner that from then on puts only on the locked path (here
 * with put_many, which never takes the fast path) gives its registration
 * up there, instead of keeping it until it closes or exits (eight such
 * would keep every producer off the fast path). */
static int own_then_put_many(void *arg)
{
	struct iovec iov[3];
	struct msg m[3];

	(void)arg;
	for (uint32_t i = 0; i < 2; i++) {
		struct msg x = make(0, i);
		T_CHECK(ipc_queue_put(q, &x, sizeof(x), 10000) == 0, 1);
	}
	tu->slot[0] = atomic_load(&shm->q_bias_slot);
	__atomic_store_n(&tu->put[0], 1, __ATOMIC_SEQ_CST);
	T_CHECK(t_wait_count(&tu->go, 1, 60000), 2);
	for (uint32_t i = 0; i < 3; i++) {
		m[i] = make(0, 2 + i);
		iov[i] = (struct iovec){ &m[i], sizeof(m[i]) };
	}
	T_CHECK(ipc_queue_put_many(q, iov, 3, 10000) == 3, 3);
	__atomic_store_n(&tu->put[1], 1, __ATOMIC_SEQ_CST);
	T_CHECK(t_wait_count(&tu->go, 2, 60000), 4); /* alive while checked */
	return 0;
}

Test(bias, a_revoked_owner_gives_its_registration_up_on_the_locked_path)
{
	uint32_t count[2] = { 5, 1 };
	struct msg m = make(1, 0);
	pid_t kid;

	open_queue("bias-stale", 0);
	tu = t_shared(sizeof(*tu));
	if (!(shm->q_flags & RING_F_BIAS))
		cr_skip_test("no membarrier(2): no producer is ever biased");
	kid = t_spawn(own_then_put_many, NULL);
	cr_assert(t_wait_count(&tu->put[0], 1, 10000));
	cr_assert_eq(reg_owner(tu->slot[0]), kid, "the owner");
	cr_assert_eq(ipc_queue_put(q, &m, sizeof(m), 10000), 0); /* revokes */
	cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OFF);
	cr_assert_eq(reg_owner(tu->slot[0]), kid, "revoked, not noticed yet");
	tu->go = 1;
	cr_assert(t_wait_count(&tu->put[1], 1, 10000));
	cr_assert_eq(reg_owner(tu->slot[0]), 0, "given up on the locked path");
	tu->go = 2;
	cr_assert_eq(t_reap(kid, 10000), 0);
	expect_all(2, count);
}
