/* SPDX-License-Identifier: MIT */
/*
 * test_corrupt_queue.c — Queue and JoinableQueue whose shared memory a
 * peer has damaged. Each test makes a live named queue, maps its segment a
 * second time as a hostile peer would, writes garbage into one field that
 * libipc reads as an index or a length (head, tail, free, a record length
 * or state, the requeued count, the intent record, the geometry, the
 * consumer slots), and then uses the queue in a child: the child must not
 * die by a signal, hang, or read outside the mapping, and each call must
 * return the documented code — IPC_ENOTRECOVERABLE once the damage is
 * seen (the queue is then broken for everyone), IPC_EPROTO from an open.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "libipc/queue/ring.h"
#include "tests/helpers.h"

static ipc_queue *q;
static char name[128];
static struct ring_shm *shm; /* our own, "hostile", mapping */
static size_t shm_len;
static uint8_t *ring_data;

static void setup(void)
{
	t_name(name, sizeof(name), "corruptq");
	q = NULL;
	shm = NULL;
}

static void teardown(void)
{
	if (shm != NULL)
		munmap(shm, shm_len);
	ipc_queue_close(q);
	ipc_unlink(name);
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(corruptq, .init = setup, .fini = teardown, .timeout = 60);

static size_t make_msg(char *buf, int n)
{
	size_t len = (size_t)snprintf(buf, 32, "m%d:", n);
	for (; len < 40; len++)
		buf[len] = (char)('a' + (n + len) % 26);
	return len;
}

/* A 4 KiB named queue holding `n` 40-byte messages, and our own mapping of
 * its segment. */
static void make_queue(bool joinable, size_t maxsize, int n)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.joinable = joinable,
				.maxsize = maxsize };
	char path[256], buf[64];
	struct stat st;
	int fd;

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE, &attr), 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(ipc_queue_put(q, buf, make_msg(buf, i), 0), 0);
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	shm_len = (size_t)st.st_size;
	shm = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(shm, MAP_FAILED);
	ring_data = (uint8_t *)shm + shm->q_data_off;
}

static struct rec_hdr *rec(uint32_t pos)
{
	return (struct rec_hdr *)(ring_data + (pos & (shm->q_capacity - 1)));
}

static uint32_t head_pos(void)
{
	return (uint32_t)atomic_load(&shm->q_head);
}

/* Run fn in a child; it must exit 0 (no signal, no hang). */
static void in_child_with(int (*fn)(void *), void *arg)
{
	int rc = t_reap(t_spawn(fn, arg), 15000);

	cr_assert_eq(rc, 0, "child: %d (%s)", rc,
		     rc == T_REAP_TIMEOUT ? "hung"
		     : rc < 0		  ? "killed by a signal"
					  : "wrong code at that check");
}

static void in_child(int (*fn)(void *))
{
	in_child_with(fn, NULL);
}

/* A call returns `code` (well within its timeout: a spin never does). */
#define EXPECT(call, code, id)                        \
	do {                                          \
		long t0_ = t_now_ms();                \
		T_CHECK((call) == (code), id);        \
		T_CHECK(t_now_ms() - t0_ < 5000, id); \
	} while (0)

static int broken_everywhere(void)
{
	char buf[64];
	void *m = NULL;

	EXPECT(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
	       IPC_ENOTRECOVERABLE, 20);
	EXPECT(ipc_queue_get_alloc(q, &m, 200), IPC_ENOTRECOVERABLE, 21);
	T_CHECK(m == NULL, 22);
	EXPECT(ipc_queue_put(q, "x", 1, 200), IPC_ENOTRECOVERABLE, 23);
	T_CHECK(ipc_queue_qsize(q) >= 0, 24);
	return 0;
}

/* The first get sees the damage; then every call says so. */
static int get_sees_damage(void *arg)
{
	void *m = NULL;

	(void)arg;
	EXPECT(ipc_queue_get_alloc(q, &m, 200), IPC_ENOTRECOVERABLE, 1);
	T_CHECK(m == NULL, 2);
	return broken_everywhere();
}

static int put_sees_damage(void *arg)
{
	char buf[64];

	(void)arg;
	for (int i = 0; i < 200; i++) {
		int rc = ipc_queue_put(q, buf, make_msg(buf, i), IPC_NOWAIT);
		if (rc == IPC_ENOTRECOVERABLE)
			return broken_everywhere();
		T_CHECK(rc == 0, 1);
	}
	return 2; /* 200 puts into 4 KiB never noticed */
}

/* ---- Queue -------------------------------------------------------------- */

Test(corruptq, queue_head_past_the_tail_is_seen_by_get)
{
	make_queue(false, 0, 3);
	atomic_store(&shm->q_head, atomic_load(&shm->q_tail) + 64);
	in_child(get_sees_damage);
}

Test(corruptq, queue_record_length_over_the_maximum_is_seen_by_get)
{
	make_queue(false, 0, 3);
	rec(head_pos())->r_len = 60000;
	in_child(get_sees_damage);
}

Test(corruptq, queue_record_longer_than_the_queued_bytes_is_seen_by_get)
{
	make_queue(false, 0, 1);
	rec(head_pos())->r_len = 1000; /* under max_msg, over the 48 queued */
	in_child(get_sees_damage);
}

Test(corruptq, queue_tail_half_a_lap_ahead_is_seen_by_get_and_put)
{
	make_queue(false, 0, 3);
	atomic_store(&shm->q_tail, atomic_load(&shm->q_tail) + (1u << 31));
	in_child(get_sees_damage);
}

Test(corruptq, queue_tail_before_the_head_is_seen_by_put)
{
	make_queue(false, 0, 3);
	atomic_store(&shm->q_tail, atomic_load(&shm->q_head) - 64);
	in_child(put_sees_damage);
}

/* Every position is a multiple of 8: one that is not would put a record
 * header's atomics at a misaligned address (UBSan's report, and a split
 * lock on x86). */
Test(corruptq, queue_head_off_a_record_boundary_is_seen_by_get)
{
	make_queue(false, 0, 3);
	atomic_store(&shm->q_head, atomic_load(&shm->q_head) + 3);
	in_child(get_sees_damage);
}

Test(corruptq, queue_tail_off_a_record_boundary_is_seen_by_put)
{
	make_queue(false, 0, 3);
	atomic_store(&shm->q_tail, atomic_load(&shm->q_tail) + 5);
	in_child(put_sees_damage);
}

Test(corruptq, joinable_head_off_a_record_boundary_is_seen_by_get)
{
	make_queue(true, 0, 3);
	atomic_store(&shm->q_head, atomic_load(&shm->q_head) + 2);
	in_child(get_sees_damage);
}

Test(corruptq, queue_item_count_beyond_the_capacity_is_seen_by_put)
{
	make_queue(false, 10, 3);
	/* 1003 items in 4 KiB: more than 8-byte records can hold. */
	atomic_store(&shm->q_tail,
		     atomic_load(&shm->q_tail) + ((uint64_t)1000 << 32));
	in_child(put_sees_damage);
}

/* ---- JoinableQueue --------------------------------------------------------
 */

Test(corruptq, joinable_record_length_over_the_maximum_is_seen_by_get)
{
	make_queue(true, 0, 3);
	rec(head_pos())->r_len = 60000;
	in_child(get_sees_damage);
}

Test(corruptq, joinable_record_state_not_ready_at_head_is_seen_by_get)
{
	make_queue(true, 0, 3);
	atomic_store(&rec(head_pos())->r_state, REC_DONE);
	in_child(get_sees_damage);
}

Test(corruptq, joinable_requeued_count_with_no_such_task_is_seen_by_get)
{
	make_queue(true, 0, 1);
	atomic_store(&shm->q_requeued, 5);
	in_child(get_sees_damage);
}

static int get_then_task_done_sees_damage(void *arg)
{
	char buf[64];

	(void)arg;
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 0) == 40, 1);
	EXPECT(ipc_queue_task_done(q), IPC_ENOTRECOVERABLE, 2);
	EXPECT(ipc_queue_join(q, 200), IPC_ENOTRECOVERABLE, 3);
	return broken_everywhere();
}

Test(corruptq, joinable_free_past_the_head_is_seen_by_task_done)
{
	make_queue(true, 0, 3);
	atomic_store(&shm->q_free, head_pos() + 64);
	in_child(get_then_task_done_sees_damage);
}

Test(corruptq, joinable_free_a_lap_behind_is_seen_by_put)
{
	make_queue(true, 0, 3);
	atomic_store(&shm->q_free, head_pos() - 8192);
	in_child(put_sees_damage);
}

/* A peer that dies holding the consumers' lock makes the next get run the
 * repair, which must check what it rolls forward. */
static int lock_consumers_and_die(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&shm->q_cmutex);
	_exit(0);
}

static int get_fails_the_repair(void *arg)
{
	char buf[64];

	(void)arg;
	EXPECT(ipc_queue_get(q, buf, sizeof(buf), 200), IPC_ENOTRECOVERABLE, 1);
	return broken_everywhere();
}

Test(corruptq, joinable_intent_record_naming_no_record_fails_the_repair)
{
	make_queue(true, 0, 3);
	cr_assert_eq(t_reap(t_spawn(lock_consumers_and_die, NULL), 10000), 0);
	shm->q_intent_pos = head_pos() + 12; /* not a record boundary */
	shm->q_intent = INTENT_TASK_DONE;
	in_child(get_fails_the_repair);
}

Test(corruptq, joinable_unknown_intent_fails_the_repair)
{
	make_queue(true, 0, 3);
	cr_assert_eq(t_reap(t_spawn(lock_consumers_and_die, NULL), 10000), 0);
	shm->q_intent = 77;
	in_child(get_fails_the_repair);
}

Test(corruptq, joinable_head_record_length_fails_the_repair)
{
	make_queue(true, 0, 3);
	cr_assert_eq(t_reap(t_spawn(lock_consumers_and_die, NULL), 10000), 0);
	atomic_store(&rec(head_pos())->r_state, REC_TAKEN);
	rec(head_pos())->r_len = 60000;
	in_child(get_fails_the_repair);
}

/* The consumers' lock word rewritten to name an owner that does not exist
 * (an id above any pid_max; or no id with the waiters bit): task_done and
 * close, which wait for that lock with no deadline, must find out that it
 * can never be released instead of waiting for ever. */
#define GHOST_TID 0x3ffffff0u
#define FUTEX_WAITERS_BIT 0x80000000u

static int task_done_and_close_see_a_ghost_lock(void *arg)
{
	char buf[64];

	(void)arg;
	EXPECT(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), IPC_EAGAIN, 1);
	EXPECT(ipc_queue_task_done(q), IPC_ENOTRECOVERABLE, 2);
	ipc_queue_close(q); /* returns: the test would hang otherwise */
	q = NULL;
	return 0;
}

Test(corruptq, joinable_consumer_lock_of_a_ghost_owner_is_seen_by_task_done)
{
	static const uint32_t words[] = { GHOST_TID,
					  GHOST_TID | FUTEX_WAITERS_BIT,
					  FUTEX_WAITERS_BIT };

	make_queue(true, 0, 3);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		shm->q_cmutex.__data.__lock = (int)words[i];
		in_child(task_done_and_close_see_a_ghost_lock);
	}
}

/* The queue's other robust mutexes (the biased producer's registration,
 * each consumer slot's) are tried, not locked: their kinds are checked
 * all the same, since glibc trusts a kind and asserts on a garbage one
 * (priority-protection paths). Kinds it was never told to make here:
 * plain, priority-inheritance, priority-protection, and garbage. */
static const int bad_kinds[] = {
	0, 1, 32 | 16 | 128, 64 | 128, 0x7fffffff, -1
};

static bool documented(long rc)
{
	return rc >= 0 || strcmp(ipc_err_name((int)rc), "IPC_EUNKNOWN") != 0;
}

static int put_get_close_keep_codes(void *arg)
{
	char buf[64];

	(void)arg;
	T_CHECK(documented(ipc_queue_put(q, "x", 1, 200)), 1);
	T_CHECK(documented(ipc_queue_put(q, "y", 1, IPC_NOWAIT)), 2);
	T_CHECK(documented(ipc_queue_get(q, buf, sizeof(buf), 200)), 3);
	T_CHECK(documented(ipc_queue_task_done(q)), 4);
	ipc_queue_close(q);
	return 0;
}

Test(corruptq, queue_bias_registration_mutex_kind_damaged_is_no_crash)
{
	make_queue(false, 0, 0); /* no put yet: the first one tries it */
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		for (int s = 0; s < RING_BIAS_SLOTS; s++)
			shm->q_bias[s].b_reg.__data.__kind = bad_kinds[i];
		in_child(put_get_close_keep_codes);
	}
}

/* q_bias_slot names the owner's registration, an index into q_bias[]: a
 * getter about to sleep reads that registration's b_cpu, and a revoker
 * revokes it. Out of range, neither reads outside the array: the getter
 * still times out, and the revoker finds the queue broken. */
static int get_then_revoke_bad_slot(void *arg)
{
	char buf[64];

	(void)arg;
	for (int i = 1; i <= 2; i++)
		EXPECT(ipc_queue_get(q, buf, sizeof(buf), 200),
		       (ssize_t)make_msg(buf, i), i);
	EXPECT(ipc_queue_get(q, buf, sizeof(buf), 200), IPC_ETIMEDOUT, 3);
	EXPECT(ipc_queue_put(q, "x", 1, 200), IPC_ENOTRECOVERABLE, 4);
	return 0;
}

Test(corruptq, queue_bias_slot_out_of_range_is_broken_not_a_wild_read)
{
	const uint32_t bad[] = { RING_BIAS_SLOTS, 1000, 0x7fffffff,
				 0xffffffff };
	char buf[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_queue(false, 0, 0);
		if (!(shm->q_flags & RING_F_BIAS))
			cr_skip_test("no membarrier(2): no producer is biased");
		for (int k = 1; k <= 2; k++) /* the second one fast */
			cr_assert_eq(ipc_queue_put(q, buf, make_msg(buf, k), 0),
				     0);
		cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OWNED);
		atomic_store(&shm->q_bias_slot, bad[i]);
		in_child(get_then_revoke_bad_slot);
		munmap(shm, shm_len);
		shm = NULL;
		ipc_queue_close(q);
		q = NULL;
		ipc_unlink(name);
	}
}

/* Without RING_F_BIAS (the creator's kernel lacks membarrier(2), or the
 * flag was cleared) no producer is ever biased: every put takes the
 * producers' lock, and a second producer has nothing to revoke. */
static int put_3_locked(void *arg)
{
	char buf[64];

	(void)arg;
	T_CHECK(ipc_queue_put(q, buf, make_msg(buf, 3), 1000) == 0, 1);
	T_CHECK(atomic_load(&shm->q_bias_state) == BIAS_OFF, 2);
	return 0;
}

Test(corruptq, queue_without_the_bias_flag_never_biases_a_producer)
{
	char buf[64], ref[64];

	make_queue(false, 0, 0);
	shm->q_flags &= ~(uint32_t)RING_F_BIAS;
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(ipc_queue_put(q, buf, make_msg(buf, i), 0), 0);
	cr_assert_eq(atomic_load(&shm->q_bias_state), BIAS_OFF);
	for (int s = 0; s < RING_BIAS_SLOTS; s++) {
		cr_assert_eq(pthread_mutex_trylock(&shm->q_bias[s].b_reg), 0,
			     "no owner registered");
		pthread_mutex_unlock(&shm->q_bias[s].b_reg);
	}
	in_child(put_3_locked);
	for (int i = 1; i <= 3; i++) {
		size_t len = make_msg(ref, i);
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0),
			     (ssize_t)len);
		cr_assert_eq(memcmp(buf, ref, len), 0);
	}
}

Test(corruptq, joinable_slot_mutex_kinds_damaged_are_no_crash)
{
	struct ring_slot *slots;

	make_queue(true, 0, 3);
	slots = (struct ring_slot *)((uint8_t *)shm + shm->q_slots_off);
	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		for (uint32_t k = 0; k < shm->q_nslots; k++)
			slots[k].s_reg.__data.__kind = bad_kinds[i];
		in_child(put_get_close_keep_codes);
	}
}

/* Slots are only ever looked up through the handle's own slot count, and
 * a garbage slot state is a slot nobody uses (half of them here, so that
 * a free one is left to register in). */
static int use_normally(void *arg)
{
	char buf[64];

	(void)arg;
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 0) == 40, 1);
	T_CHECK(ipc_queue_task_done(q) == 0, 2);
	/* A sleeper's slices reap, walking the slots. */
	T_CHECK(ipc_queue_join(q, 300) == IPC_ETIMEDOUT, 3);
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 0) == 40, 4);
	T_CHECK(ipc_queue_task_done(q) == 0, 5);
	return 0;
}

Test(corruptq, joinable_slot_count_and_states_rewritten_are_not_trusted)
{
	struct ring_slot *slots;

	make_queue(true, 0, 3);
	slots = (struct ring_slot *)((uint8_t *)shm + shm->q_slots_off);
	shm->q_nslots = 1u << 30;
	for (uint32_t i = 0; i < IPC_QUEUE_MAX_CONSUMERS / 2; i++)
		atomic_store(&slots[i].s_state, 0xdead0000u + i);
	in_child(use_normally);
}

/* ---- Geometry ---------------------------------------------------------------
 */

static int open_is_eproto(void *arg)
{
	ipc_queue *other = NULL;

	(void)arg;
	T_CHECK(ipc_queue_open(&other, name, 0, NULL) == IPC_EPROTO, 1);
	T_CHECK(other == NULL, 2);
	return 0;
}

Test(corruptq, open_refuses_a_max_message_size_that_wraps_32_bits)
{
	make_queue(false, 0, 0);
	shm->q_max_msg = 0xfffffff9u; /* + 8, rounded up to 8: 2^32 + 8 */
	in_child(open_is_eproto);
}

Test(corruptq, open_refuses_a_slot_count_or_capacity_rewritten)
{
	make_queue(true, 0, 0);
	shm->q_nslots = 1u << 30;
	in_child(open_is_eproto);
	shm->q_nslots = IPC_QUEUE_MAX_CONSUMERS;
	shm->q_capacity = 1u << 30;
	in_child(open_is_eproto);
}

/* A handle keeps the geometry it validated at open: rewriting the
 * segment's copy does not widen the bounds it checks lengths against. */
Test(corruptq, geometry_rewritten_under_an_open_handle_is_not_trusted)
{
	make_queue(false, 0, 3);
	shm->q_capacity = 1u << 30;
	shm->q_max_msg = 0xfffffff0u;
	rec(head_pos())->r_len = 60000;
	in_child(get_sees_damage);
}

/* ---- PriorityQueue ------------------------------------------------------ */

/* Its layout (pqueue.c, private): five lines of header, then the heap and
 * the free stack (maxsize uint32_t each), then the slots, each a 24-byte
 * header (state, length, priority, sequence) and max_msg bytes. */
#define PQ_N 16
#define PQ_MSG 64
#define PQ_MAX_MSG_OFF 68
#define PQ_SLOT_SIZE_OFF 72
#define PQ_HEAP_OFF 320
#define PQ_SLOTS_OFF (PQ_HEAP_OFF + ((PQ_N * 8 + 63) & ~63))
#define PQ_SLOT(i) (PQ_SLOTS_OFF + (i) * (24 + PQ_MSG))

static ipc_pqueue *pq;

/* A PriorityQueue holding five messages of priorities 5, 4, 3, 2, 1 (in
 * slots 0..4), and our mapping of it. */
static uint8_t *make_pqueue(void)
{
	uint8_t *base;

	cr_assert_eq(ipc_pqueue_open(&pq, name, IPC_CREATE, PQ_N, PQ_MSG), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ipc_pqueue_put(pq, 5 - i, "abcde", 5, 0), 0);
	base = t_map_segment(name, &shm_len);
	cr_assert_not_null(base);
	shm = (struct ring_shm *)(void *)base; /* unmapped by teardown */
	return base;
}

/* Gets priorities from..5 in order, then the queue is empty. */
static int pq_gets_in_order(void *arg)
{
	int from = (int)(intptr_t)arg;
	char buf[PQ_MSG];
	int64_t prio;

	for (int p = from; p <= 5; p++) {
		T_CHECK(ipc_pqueue_get(pq, &prio, buf, sizeof(buf), 0) == 5,
			10 + p);
		T_CHECK(prio == p, 20 + p);
	}
	T_CHECK(ipc_pqueue_get(pq, &prio, buf, sizeof(buf), 0) == IPC_EAGAIN,
		30);
	T_CHECK(ipc_pqueue_qsize(pq) == 0, 31);
	ipc_pqueue_close(pq);
	return 0;
}

Test(corruptq, pqueue_heap_index_out_of_range_rebuilds_from_the_slots)
{
	uint8_t *base = make_pqueue();
	uint32_t *heap = (uint32_t *)(void *)(base + PQ_HEAP_OFF);

	for (int k = 1; k < 5; k++)
		heap[k] = 0xfffffff0u - (uint32_t)k;
	in_child_with(pq_gets_in_order, (void *)(intptr_t)1);
	ipc_pqueue_close(pq);
}

Test(corruptq, pqueue_slot_length_over_the_maximum_loses_only_that_message)
{
	uint8_t *base = make_pqueue();

	/* Slot 4 holds priority 1, the next to get. */
	*(uint32_t *)(void *)(base + PQ_SLOT(4) + 4) = 60000;
	in_child_with(pq_gets_in_order, (void *)(intptr_t)2);
	ipc_pqueue_close(pq);
}

static int pq_geometry_kept(void *arg)
{
	char buf[PQ_MSG + 1] = { 0 };
	int64_t prio;

	(void)arg;
	T_CHECK(ipc_pqueue_put(pq, 0, buf, PQ_MSG + 1, 0) == IPC_EMSGSIZE, 1);
	T_CHECK(ipc_pqueue_put(pq, 0, buf, PQ_MSG, 0) == 0, 2);
	T_CHECK(ipc_pqueue_get(pq, &prio, buf, sizeof(buf), 0) == PQ_MSG, 3);
	T_CHECK(prio == 0, 4);
	return pq_gets_in_order((void *)(intptr_t)1);
}

Test(corruptq, pqueue_geometry_rewritten_under_an_open_handle_is_not_trusted)
{
	uint8_t *base = make_pqueue();

	*(uint32_t *)(void *)(base + PQ_MAX_MSG_OFF) = 0xffffffffu;
	*(uint64_t *)(void *)(base + PQ_SLOT_SIZE_OFF) = 1ull << 40;
	in_child_with(pq_geometry_kept, NULL);
	ipc_pqueue_close(pq);
}

/* A queued record's state damaged to REQUEUED or DROPPED, with no requeued
 * task counted and the queue not shut down: the get sees damage (or
 * returns message 0), never skips the record silently (message 0 lost,
 * the free position stuck behind it). */
static int get_m0_or_damage(void *arg)
{
	char buf[64], ref[64];
	ssize_t n;

	(void)arg;
	n = ipc_queue_get(q, buf, sizeof(buf), 200);
	if (n == IPC_ENOTRECOVERABLE)
		return 0;
	if (n > 0 && (size_t)n == make_msg(ref, 0) &&
	    memcmp(buf, ref, (size_t)n) == 0)
		return 0;
	return 7;
}

Test(corruptq, joinable_queued_state_damaged_to_requeued_is_seen)
{
	make_queue(true, 0, 3);
	atomic_store(&rec(head_pos())->r_state, REC_REQUEUED);
	in_child(get_m0_or_damage);
}

Test(corruptq, joinable_queued_state_damaged_to_dropped_is_seen)
{
	make_queue(true, 0, 3);
	atomic_store(&rec(head_pos())->r_state, REC_DROPPED);
	in_child(get_m0_or_damage);
}

/* FREE_FROZEN written into q_free while nobody holds q_cmutex, with only
 * lock-free consumers: the first put short of room sees the lock free and
 * thaws it, instead of frees stopping for ever. */
static int frozen_lock_free_cycle(void *arg)
{
	char buf[64];
	ssize_t n;
	int rc;

	(void)arg;
	if (ipc_queue_put(q, buf, make_msg(buf, 1), 0) != 0 ||
	    ipc_queue_get(q, buf, sizeof(buf), 0) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	atomic_fetch_or(&shm->q_free, FREE_FROZEN);
	for (int i = 0; i < 400; i++) {
		rc = ipc_queue_put(q, buf, make_msg(buf, i), 300);
		if (rc == IPC_ENOTRECOVERABLE)
			return 0;
		if (rc != 0)
			return 7;
		n = ipc_queue_get(q, buf, sizeof(buf), 0);
		if (n == IPC_ENOTRECOVERABLE)
			return 0;
		if (n <= 0 || ipc_queue_task_done(q) != 0)
			return 8;
	}
	return 0;
}

Test(corruptq, joinable_free_frozen_with_nobody_walking_is_thawed)
{
	make_queue(true, 0, 0);
	in_child(frozen_lock_free_cycle);
}

/* G gets 0 (registers), then wins 1 and is stopped before marking
 * it; the queue is shut down (2.. dropped). q_orphan_head is then damaged
 * to G's claim note without its low bit: the settle must not take G's
 * task from it (G's note, head | 1, is what a real claim looks like). */
static int get_twice(void *arg)
{
	char buf[64], ref[64];
	size_t len = make_msg(ref, 1);

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) != (ssize_t)len ||
	    memcmp(buf, ref, len) != 0)
		return 2;
	return ipc_queue_task_done(q) == 0 ? 0 : 3;
}

Test(corruptq, a_damaged_orphan_word_takes_no_live_winners_task)
{
	struct ring_slot *slots;
	uint64_t note = 0;
	pid_t g;
	int st = 0, rc;
	long t0 = t_now_ms();

	make_queue(true, 0, 4);
	slots = (struct ring_slot *)((uint8_t *)shm + shm->q_slots_off);
	setenv("IPC_CRASHPOINT_ACTION", "stop", 1);
	g = t_spawn_at_point("queue.get.taken", "1", get_twice, NULL);
	unsetenv("IPC_CRASHPOINT_ACTION");
	while (waitpid(g, &st, WUNTRACED | WNOHANG) == 0 &&
	       t_now_ms() - t0 < 10000)
		usleep(1000);
	cr_assert(WIFSTOPPED(st), "G won 1, not marked");
	cr_assert_eq(ipc_queue_shutdown_immediate(q), 0);
	for (uint32_t k = 0; k < shm->q_nslots; k++)
		if (atomic_load(&slots[k].s_claim) != 0)
			note = atomic_load(&slots[k].s_claim);
	cr_assert_neq(note, 0);
	atomic_store(&shm->q_orphan_head, note & ~(uint64_t)1);
	rc = ipc_queue_join(q, 50);
	cr_expect_eq(rc, IPC_ETIMEDOUT, "G holds 1: join %d, unfinished %ld",
		     rc, ipc_queue_unfinished(q));
	kill(g, SIGCONT);
	rc = t_reap(g, 10000);
	cr_assert_eq(rc, 0, "G got its task 1: %d", rc);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}

/* W gets 0 (registers), wins 1 and is killed before marking it;
 * the queue is shut down gracefully (not immediate): tasks 1 (requeued
 * when W's slot is reaped), 2 and 3 must still be got. A damaged
 * q_orphan_head naming W's claim makes the reap drop 1 instead. */
static int get_then_win(void *arg)
{
	char buf[64];

	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 1000) <= 0 ||
	    ipc_queue_task_done(q) != 0)
		return 1;
	return ipc_queue_get(q, buf, sizeof(buf), 1000) > 0 ? 0 : 2;
}

Test(corruptq, a_damaged_orphan_word_on_a_graceful_shutdown_drops_nothing)
{
	struct ring_slot *slots;
	uint64_t note = 0;
	pid_t w;
	char buf[64];
	int got = 0;

	make_queue(true, 0, 4);
	slots = (struct ring_slot *)((uint8_t *)shm + shm->q_slots_off);
	w = t_spawn_at_point("queue.get.taken", "1", get_then_win, NULL);
	cr_assert_eq(t_reap(w, 10000), -SIGKILL, "W died after winning 1");
	for (uint32_t k = 0; k < shm->q_nslots; k++)
		if (atomic_load(&slots[k].s_claim) != 0)
			note = atomic_load(&slots[k].s_claim);
	cr_assert_neq(note, 0);
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	atomic_store(&shm->q_orphan_head, note);
	(void)ipc_queue_join(q, 50); /* reaps */
	while (ipc_queue_get(q, buf, sizeof(buf), 200) > 0) {
		got++;
		cr_assert_eq(ipc_queue_task_done(q), 0);
	}
	cr_assert_eq(got, 3, "got %d of 1, 2, 3; unfinished %ld", got,
		     ipc_queue_unfinished(q));
}
