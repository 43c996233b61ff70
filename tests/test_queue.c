/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c — Queue and JoinableQueue between real processes: FIFO,
 * sizes, timeouts, limits, shutdown, bad input, task accounting, and
 * consumers that die.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_queue *q;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "queue");
	q = NULL;
}

static void teardown(void)
{
	ipc_queue_close(q);
	ipc_unlink(name);
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 60);

static int put_str(const char *s)
{
	return ipc_queue_put(q, s, strlen(s), IPC_NOWAIT);
}

Test(queue, fifo_round_trip_with_qsize)
{
	char buf[64];

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert(ipc_queue_empty(q));
	cr_assert_eq(put_str("one"), 0);
	cr_assert_eq(put_str("two"), 0);
	cr_assert_eq(put_str(""), 0);
	cr_assert_eq(ipc_queue_qsize(q), 3);
	cr_assert_not(ipc_queue_empty(q));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "one", 3), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "two", 3), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 0, "empty message");
	cr_assert_eq(ipc_queue_qsize(q), 0);
	cr_assert(ipc_queue_empty(q));
}

/* A 0-byte message may come from NULL and go into NULL (ipc.h allows a
 * NULL msg with len 0 and a NULL buf with cap 0): the locked put, the
 * biased producer's fast put (the second and later puts), both gets.
 * Under UBSan a memcpy of 0 bytes from or to NULL is an error. */
Test(queue, empty_messages_from_null_and_into_null)
{
	void *m = NULL;

	for (int joinable = 0; joinable < 2; joinable++) {
		cr_assert_eq(joinable ? ipc_joinable_queue_new(&q, 0)
				      : ipc_queue_new(&q, 0),
			     0);
		for (int i = 0; i < 4; i++)
			cr_assert_eq(ipc_queue_put(q, NULL, 0, IPC_NOWAIT), 0,
				     "put %d", i);
		cr_assert_eq(ipc_queue_qsize(q), 4);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(ipc_queue_get(q, NULL, 0, IPC_NOWAIT), 0,
				     "get %d", i);
		cr_assert_eq(ipc_queue_get_alloc(q, &m, IPC_NOWAIT), 0);
		cr_assert_not_null(m, "a 0-byte message still gets a buffer");
		free(m);
		for (int i = 0; joinable && i < 4; i++)
			cr_assert_eq(ipc_queue_task_done(q), 0);
		cr_assert_eq(ipc_queue_get(q, NULL, 0, IPC_NOWAIT), IPC_EAGAIN);
		ipc_queue_close(q);
		q = NULL;
	}
}

Test(queue, empty_get_nowait_is_eagain_and_timeout_is_etimedout)
{
	char buf[8];
	long t0;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 70), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 69);
}

Test(queue, maxsize_bounds_items_then_eagain_and_etimedout)
{
	char buf[8];

	cr_assert_eq(ipc_queue_new(&q, 2), 0);
	cr_assert_eq(put_str("a"), 0);
	cr_assert_not(ipc_queue_full(q));
	cr_assert_eq(put_str("b"), 0);
	cr_assert(ipc_queue_full(q));
	cr_assert_eq(put_str("c"), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_put(q, "c", 1, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_qsize(q), 2);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(put_str("c"), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(buf[0], 'b');
}

Test(queue, oversized_put_and_small_get_buffer_are_emsgsize_and_lose_nothing)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 100 };
	char big[200], buf[100];

	memset(big, 'x', sizeof(big));
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	cr_assert_eq(ipc_queue_put(q, big, 101, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_put(q, big, 100, 0), 0);
	cr_assert_eq(ipc_queue_get(q, buf, 99, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_qsize(q), 1, "left queued");
	cr_assert_eq(ipc_queue_get(q, buf, 100, 0), 100);
	cr_assert_eq(memcmp(buf, big, 100), 0);
}

Test(queue, get_alloc_returns_a_malloced_copy)
{
	void *msg = (void *)1;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(put_str("hello"), 0);
	cr_assert_eq(put_str(""), 0);
	cr_assert_eq(ipc_queue_get_alloc(q, &msg, 0), 5);
	cr_assert_eq(memcmp(msg, "hello", 5), 0);
	free(msg);
	cr_assert_eq(ipc_queue_get_alloc(q, &msg, 0), 0);
	cr_assert_not_null(msg, "a buffer even for an empty message");
	free(msg);
	cr_assert_eq(ipc_queue_get_alloc(q, &msg, 0), IPC_EAGAIN);
	cr_assert_null(msg);
}

Test(queue, bad_input_is_einval_or_enotsup)
{
	ipc_queue_attr attr = { 0 };
	char buf[4];

	cr_assert_eq(ipc_queue_new(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_put(NULL, "x", 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_get(NULL, buf, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_get_alloc(NULL, NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_qsize(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_queue_task_done(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_queue_join(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_shutdown(NULL), IPC_EINVAL);
	attr.capacity = IPC_QUEUE_MAX_CAPACITY + 1;
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), IPC_EINVAL);
	attr.capacity = 4096;
	attr.max_msg_size = 4096;
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), IPC_EINVAL);
	attr.max_msg_size = 0;
	attr.backend = IPC_BACKEND_MQUEUE;
	attr.maxsize = (size_t)1 << 32;
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), IPC_EINVAL);
	attr.maxsize = 0;
	attr.backend = 42;
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), IPC_EINVAL);
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_put(q, NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_get(q, NULL, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_put(q, "x", 1, -7), IPC_EINVAL);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "not joinable");
	cr_assert_eq(ipc_queue_join(q, 0), IPC_EINVAL, "not joinable");
	cr_assert_eq(ipc_queue_unfinished(q), IPC_EINVAL);
}

/* Varied sizes through a small ring: every byte survives the wrap. */
Test(queue, wraps_around_a_small_ring_without_corruption)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 1000 };
	unsigned char out[1000], in[1000];

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < 5000; i++) {
		size_t len = (size_t)(i * 7919) % 1000;
		for (size_t k = 0; k < len; k++)
			out[k] = (unsigned char)(i + k * 31);
		cr_assert_eq(ipc_queue_put(q, out, len, 0), 0, "put %d", i);
		if (i % 3 == 2)
			continue; /* let a few accumulate */
		while (ipc_queue_qsize(q) > 0) {
			ssize_t n = ipc_queue_get(q, in, sizeof(in), 0);
			cr_assert_geq(n, 0);
		}
	}
	/* Deterministic replay: one message in, one out, compare. */
	for (int i = 0; i < 3000; i++) {
		size_t len = (size_t)(i * 104729) % 1000;
		for (size_t k = 0; k < len; k++)
			out[k] = (unsigned char)(i ^ (k * 13));
		cr_assert_eq(ipc_queue_put(q, out, len, 0), 0);
		cr_assert_eq(ipc_queue_get(q, in, sizeof(in), 0), (ssize_t)len);
		cr_assert_eq(memcmp(in, out, len), 0, "message %d", i);
	}
}

/* Small messages are copied inline, not by memcpy (ring.h, ring_copy):
 * every length from 0 to 200 arrives byte for byte, and the get writes
 * exactly that many bytes into the caller's buffer, not one past them,
 * also when the record wraps around the ring's end. */
Test(queue, every_small_length_copies_exactly_its_bytes)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 256 };
	unsigned char out[256], in[256 + 16];

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int lap = 0; lap < 40; lap++) {
		for (size_t len = 0; len <= 200; len++) {
			for (size_t k = 0; k < len; k++)
				out[k] =
					(unsigned char)(lap * 7 + len + k * 13);
			memset(in, 0xA5, sizeof(in));
			cr_assert_eq(ipc_queue_put(q, out, len, IPC_NOWAIT), 0);
			cr_assert_eq(ipc_queue_get(q, in, len, IPC_NOWAIT),
				     (ssize_t)len, "lap %d length %zu", lap,
				     len);
			cr_assert_eq(memcmp(in, out, len), 0,
				     "lap %d length %zu", lap, len);
			for (size_t k = len; k < sizeof(in); k++)
				cr_assert_eq(in[k], 0xA5,
					     "length %zu wrote byte %zu", len,
					     k);
		}
	}
}

/* A timed put or get starts its clock only when it first has to wait
 * (ipc__deadline_later): each way of waiting must still start it and end
 * the call with IPC_ETIMEDOUT no sooner than the timeout after the call
 * began. A deadline never started would sleep for ever (the suite's
 * timeout fails it); one read before it started would end at once. */
struct lock_hold {
	volatile int held, done;
};
static struct lock_hold *pm_hold;

static int hold_producers_lock(void *arg)
{
	void *buf;

	(void)arg;
	/* An open reservation holds the producers' lock (ring_zc.c). */
	T_CHECK(ipc_queue_reserve(q, 8, &buf, 10000) == 0, 1);
	__atomic_store_n(&pm_hold->held, 1, __ATOMIC_SEQ_CST);
	T_CHECK(t_wait_count(&pm_hold->done, 1, 20000), 2);
	T_CHECK(ipc_queue_cancel(q) == 0, 3);
	return 0;
}

static void assert_times_out(long t0, ssize_t rc, const char *what)
{
	cr_assert_eq(rc, IPC_ETIMEDOUT, "%s", what);
	cr_assert_geq(t_now_ms() - t0, 100, "%s ended early", what);
}

Test(queue, timed_put_and_get_time_out_on_every_way_of_waiting)
{
	ipc_queue *jq;
	char buf[8];
	pid_t kid;
	long t0;

	/* A get that sleeps on an empty Queue, and on an empty
	 * JoinableQueue (whose get first takes the consumers' lock). */
	cr_assert_eq(ipc_queue_new(&q, 1), 0);
	t0 = t_now_ms();
	assert_times_out(t0, ipc_queue_get(q, buf, sizeof(buf), 100),
			 "get, empty Queue");
	cr_assert_eq(ipc_joinable_queue_new(&jq, 0), 0);
	t0 = t_now_ms();
	assert_times_out(t0, ipc_queue_get(jq, buf, sizeof(buf), 100),
			 "get, empty JoinableQueue");
	ipc_queue_close(jq);

	/* A put that waits for room: the first put made this process the
	 * queue's biased producer, so the second one is a fast put that
	 * finds the queue full (maxsize 1) and sleeps. */
	cr_assert_eq(ipc_queue_put(q, "a", 1, 100), 0);
	t0 = t_now_ms();
	assert_times_out(t0, ipc_queue_put(q, "b", 1, 100), "put, full");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 100), 1);
	cr_assert_eq(buf[0], 'a');
	ipc_queue_close(q);

	/* A put that waits for the producers' lock, held by another
	 * process: a timed lock, not a futex sleep. */
	pm_hold = t_shared(sizeof(*pm_hold));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = t_spawn(hold_producers_lock, NULL);
	cr_assert(t_wait_count(&pm_hold->held, 1, 10000));
	t0 = t_now_ms();
	assert_times_out(t0, ipc_queue_put(q, "c", 1, 100),
			 "put, producers' lock held");
	pm_hold->done = 1;
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0, "nothing put");
}

/* ---- Between processes ------------------------------------------------- */

#define PRODUCERS 2
#define CONSUMERS 3
#define PER_PRODUCER 20000

struct msg {
	uint32_t producer, seq, check;
};

static volatile uint8_t *seen; /* [PRODUCERS * PER_PRODUCER] */

static int producer(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < PER_PRODUCER; i++) {
		struct msg m = { p, i, p * 2654435761u ^ i };
		if (ipc_queue_put(q, &m, sizeof(m), 20000) != 0)
			return 1;
	}
	return 0;
}

static int consumer(void *arg)
{
	uint32_t last[PRODUCERS];
	struct msg m;
	(void)arg;

	memset(last, 0xff, sizeof(last));
	for (;;) {
		ssize_t n = ipc_queue_get(q, &m, sizeof(m), 20000);
		if (n == IPC_ECLOSED)
			return 0;
		if (n != sizeof(m) || m.producer >= PRODUCERS ||
		    m.seq >= PER_PRODUCER ||
		    m.check != (m.producer * 2654435761u ^ m.seq))
			return 2; /* torn or invented */
		if (last[m.producer] != UINT32_MAX && m.seq <= last[m.producer])
			return 3; /* out of order for its producer */
		last[m.producer] = m.seq;
		__atomic_add_fetch(&seen[m.producer * PER_PRODUCER + m.seq], 1,
				   __ATOMIC_RELAXED);
	}
}

Test(queue, many_producers_many_consumers_exactly_once_in_order)
{
	pid_t prods[PRODUCERS], cons[CONSUMERS];
	ipc_queue_attr attr = { .capacity = 16384 };

	seen = t_shared(PRODUCERS * PER_PRODUCER);
	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	for (int i = 0; i < CONSUMERS; i++)
		cons[i] = t_spawn(consumer, NULL);
	for (int i = 0; i < PRODUCERS; i++)
		prods[i] = t_spawn(producer, (void *)(uintptr_t)i);
	for (int i = 0; i < PRODUCERS; i++)
		cr_assert_eq(t_reap(prods[i], 40000), 0, "producer %d", i);
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	for (int i = 0; i < CONSUMERS; i++)
		cr_assert_eq(t_reap(cons[i], 40000), 0, "consumer %d", i);
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
		cr_assert_eq(seen[i], 1, "message %d seen %d times", i,
			     seen[i]);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

static int get_one(void *arg)
{
	char buf[16];
	(void)arg;
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 20000);
	if (n == IPC_ECLOSED)
		return 50;
	return n == 5 && memcmp(buf, "wake!", 5) == 0 ? 0 : 1;
}

Test(queue, blocked_getter_is_woken_by_a_put)
{
	pid_t kid;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	kid = t_spawn(get_one, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000));
	cr_assert_eq(put_str("wake!"), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
}

Test(queue, killed_getter_does_not_swallow_a_message)
{
	pid_t a, b;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	a = t_spawn(get_one, NULL);
	b = t_spawn(get_one, NULL);
	cr_assert(t_blocked_in_futex(a, 10000));
	cr_assert(t_blocked_in_futex(b, 10000));
	cr_assert_eq(t_kill(a), -SIGKILL);
	cr_assert_eq(put_str("wake!"), 0);
	cr_assert_eq(t_reap(b, 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

static int put_blocked(void *arg)
{
	(void)arg;
	return ipc_queue_put(q, "x", 1, 20000) == IPC_ECLOSED ? 0 : 1;
}

Test(queue, shutdown_fails_puts_drains_gets_and_wakes_the_blocked)
{
	char buf[8];
	pid_t getter, putter;
	ipc_queue *full;

	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	getter = t_spawn(get_one, NULL);
	cr_assert(t_blocked_in_futex(getter, 10000));
	cr_assert_eq(ipc_queue_new(&full, 1), 0);
	cr_assert_eq(ipc_queue_put(full, "x", 1, 0), 0);
	ipc_queue *keep = q;
	q = full;
	putter = t_spawn(put_blocked, NULL);
	cr_assert(t_blocked_in_futex(putter, 10000));
	cr_assert_eq(ipc_queue_shutdown(full), 0);
	cr_assert_eq(t_reap(putter, 10000), 0, "blocked put got IPC_ECLOSED");
	cr_assert_eq(ipc_queue_get(full, buf, sizeof(buf), 0), 1, "drains");
	cr_assert_eq(ipc_queue_get(full, buf, sizeof(buf), 0), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_put(full, "y", 1, 0), IPC_ECLOSED);
	ipc_queue_close(full);
	q = keep;
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	cr_assert_eq(t_reap(getter, 10000), 50, "blocked get got IPC_ECLOSED");
}

static int named_put(void *arg)
{
	ipc_queue *mine;
	(void)arg;
	if (ipc_queue_open(&mine, name, 0, NULL) != 0)
		return 1;
	int rc = ipc_queue_put(mine, "wake!", 5, 1000);
	ipc_queue_close(mine);
	return rc == 0 ? 0 : 2;
}

Test(queue, named_queue_is_shared_and_kinds_are_checked)
{
	ipc_queue_attr joinable = { .joinable = true };
	ipc_queue *other;
	ipc_event *ev;
	char buf[8];

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, NULL), 0);
	cr_assert_eq(ipc_queue_open(&other, name, 0, &joinable), IPC_EPROTO,
		     "a plain queue is not joinable");
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO);
	cr_assert_eq(t_reap(t_spawn(named_put, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 1000), 5);
	cr_assert_eq(memcmp(buf, "wake!", 5), 0);
}

Test(queue, a_joinable_queue_opened_as_a_plain_one_is_eproto)
{
	ipc_queue_attr plain = { .capacity = 8192 };
	ipc_queue_attr joinable = { .joinable = true };
	ipc_queue *other = NULL;

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &joinable),
		     0);
	cr_assert_eq(ipc_queue_open(&other, name, 0, &plain), IPC_EPROTO);
	cr_assert_null(other);
	cr_assert_eq(ipc_queue_open(&other, name, 0, NULL), 0,
		     "NULL attr accepts either kind");
	ipc_queue_close(other);
}

struct handover {
	volatile int owner_halfway, go;
};
static struct handover *ho;

/* The queue's first producer (its fast, biased one) puts 0..999, pausing
 * half-way while another producer takes the fast path away. */
static int first_producer(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < 1000; i++) {
		struct msg m = { 0, i, 0 * 2654435761u ^ i };
		if (i == 500) {
			__atomic_store_n(&ho->owner_halfway, 1,
					 __ATOMIC_SEQ_CST);
			if (!t_wait_count(&ho->go, 1, 10000))
				return 1;
		}
		if (ipc_queue_put(q, &m, sizeof(m), 10000) != 0)
			return 2;
	}
	return 0;
}

Test(queue, second_producer_revokes_a_live_fast_producer_and_nothing_is_lost)
{
	uint32_t next[2] = { 0, 0 };
	struct msg m;
	pid_t owner;

	ho = t_shared(sizeof(*ho));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	owner = t_spawn(first_producer, NULL);
	cr_assert(t_wait_count(&ho->owner_halfway, 1, 10000));
	for (uint32_t i = 0; i < 100; i++) {
		struct msg mine = { 1, i, 1 * 2654435761u ^ i };
		cr_assert_eq(ipc_queue_put(q, &mine, sizeof(mine), 1000), 0);
	}
	ho->go = 1;
	cr_assert_eq(t_reap(owner, 10000), 0);
	for (int k = 0; k < 1100; k++) {
		cr_assert_eq(ipc_queue_get(q, &m, sizeof(m), 1000), sizeof(m));
		cr_assert(m.producer < 2);
		cr_assert_eq(m.seq, next[m.producer], "in order per producer");
		cr_assert_eq(m.check, m.producer * 2654435761u ^ m.seq);
		next[m.producer]++;
	}
	cr_assert_eq(next[0], 1000);
	cr_assert_eq(next[1], 100);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

/* Producers that take turns, each putting a long streak alone: every
 * streak takes the fast path back from the producer before it (a
 * revocation, then RING_REBIAS_PUTS locked puts, then the biased path). */
#define TURNS 6
#define STREAK 1000
static volatile int *turn;

static int streak_producer(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg, seq = 0;

	for (int t = (int)p; t < TURNS; t += 2) {
		T_CHECK(t_wait_count(turn, t, 20000), 1);
		for (int i = 0; i < STREAK; i++, seq++) {
			struct msg m = { p, seq, p * 2654435761u ^ seq };
			T_CHECK(ipc_queue_put(q, &m, sizeof(m), 10000) == 0, 2);
		}
		__atomic_store_n(turn, t + 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

Test(queue, producers_taking_turns_in_long_streaks_lose_nothing)
{
	uint32_t next[2] = { 0, 0 };
	pid_t kids[2];
	struct msg m;

	turn = t_shared(sizeof(int));
	cr_assert_eq(ipc_queue_new(&q, 0), 0);
	for (uintptr_t p = 0; p < 2; p++)
		kids[p] = t_spawn(streak_producer, (void *)p);
	for (int p = 0; p < 2; p++)
		cr_assert_eq(t_reap(kids[p], 40000), 0, "producer %d", p);
	for (int k = 0; k < TURNS * STREAK; k++) {
		cr_assert_eq(ipc_queue_get(q, &m, sizeof(m), IPC_NOWAIT),
			     sizeof(m));
		cr_assert(m.producer < 2);
		cr_assert_eq(m.seq, next[m.producer], "in order per producer");
		cr_assert_eq(m.check, m.producer * 2654435761u ^ m.seq);
		cr_assert_eq(m.seq / STREAK * 2 + m.producer,
			     (uint32_t)(k / STREAK), "streaks in turn");
		next[m.producer]++;
	}
	cr_assert_eq(next[0], TURNS / 2 * STREAK);
	cr_assert_eq(next[1], TURNS / 2 * STREAK);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

/* ---- JoinableQueue ------------------------------------------------------ */

Test(queue, task_done_counts_and_join_waits_for_all)
{
	char buf[8];

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "no task yet");
	cr_assert_eq(ipc_queue_join(q, 0), 0, "nothing to wait for");
	cr_assert_eq(put_str("a"), 0);
	cr_assert_eq(put_str("b"), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 2);
	cr_assert_eq(ipc_queue_join(q, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_join(q, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_unfinished(q), 2, "got is not done");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "one too many");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 0), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
}

/* task_done completes the calling consumer's *oldest* task: only that
 * frees its record's space. Four 1016-byte messages (1024-byte records)
 * fill a 4 KiB ring exactly, so a put fits again only once the record at
 * the start of the ring is done. Consumer A (this handle) takes records 1,
 * 3 and 4, consumer B (a second handle on the same queue) takes record 2
 * in between, so A's search for its oldest task must step over B's. */
Test(queue, task_done_completes_the_oldest_task_of_its_consumer)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char msg[1016], buf[1016];
	ipc_queue *b;

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &attr), 0);
	cr_assert_eq(ipc_queue_open(&b, name, 0, NULL), 0);
	for (int i = 0; i < 4; i++) {
		memset(msg, '1' + i, sizeof(msg));
		cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	}
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), IPC_EAGAIN,
		     "the ring is full");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(buf[0], '1');
	cr_assert_eq(ipc_queue_get(b, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(buf[0], '2');
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(buf[0], '3');
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(buf[0], '4');

	/* A's oldest is record 1: done, its space is free. */
	cr_assert_eq(ipc_queue_task_done(q), 0);
	memset(msg, '5', sizeof(msg));
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0,
		     "record 1 was done, not 3 or 4");
	/* A's next two are 3 and 4; B's record 2 still holds the space. */
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), IPC_EINVAL, "A has none left");
	cr_assert_eq(ipc_queue_unfinished(q), 2, "B's task and the new one");
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), IPC_EAGAIN,
		     "record 2 is not done");
	cr_assert_eq(ipc_queue_task_done(b), 0);
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0,
		     "records 2 to 4 are free now");
	/* A takes the new records, and its oldest is again done first. */
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	ipc_queue_close(b);
}

/* A task done frees its record's space for full() and for a put that
 * cannot wait, even when that task_done took no lock and left the record
 * for others to free. */
Test(queue, a_done_task_frees_its_space_for_full_and_a_nowait_put)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1016,
				.joinable = true };
	char msg[1016] = { 0 }, buf[1016];

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &attr), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	cr_assert(ipc_queue_full(q));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert(ipc_queue_full(q), "got is not done");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert(!ipc_queue_full(q), "the done task's space is free");
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0);
	cr_assert(ipc_queue_full(q));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1016);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT), 0,
		     "a put that cannot wait frees it itself");
}

static int worker(void *arg)
{
	char buf[64];
	(void)arg;
	for (;;) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 20000);
		if (n == IPC_ECLOSED)
			return 0;
		if (n < 0)
			return 1;
		if (ipc_queue_task_done(q) != 0)
			return 2;
	}
}

Test(queue, join_returns_once_workers_finish_every_task)
{
	pid_t kids[3];

	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(worker, NULL);
	for (int i = 0; i < 3000; i++)
		cr_assert_eq(ipc_queue_put(q, "task", 4, 10000), 0);
	cr_assert_eq(ipc_queue_join(q, 20000), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0);
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0);
}

struct holder {
	volatile int got;
};
static struct holder *hold;

/* Get one task and hang on to it without task_done. */
static int take_and_hold(void *arg)
{
	char buf[64];
	(void)arg;
	if (ipc_queue_get(q, buf, sizeof(buf), 10000) < 0)
		return 1;
	__atomic_store_n(&hold->got, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

static int take_and_finish(void *arg)
{
	char buf[64];
	(void)arg;
	ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 10000);
	if (n != 4 || memcmp(buf, "job1", 4) != 0)
		return 1;
	return ipc_queue_task_done(q) == 0 ? 0 : 2;
}

Test(queue, task_of_a_killed_consumer_is_requeued_and_join_completes)
{
	pid_t a, b;

	hold = t_shared(sizeof(*hold));
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_str("job1"), 0);
	a = t_spawn(take_and_hold, NULL);
	cr_assert(t_wait_count(&hold->got, 1, 10000));
	cr_assert_eq(ipc_queue_qsize(q), 0);
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	cr_assert_eq(t_kill(a), -SIGKILL);
	/* A second consumer, blocked on the empty queue, notices the death on
	 * its periodic look and gets the task again. */
	b = t_spawn(take_and_finish, NULL);
	cr_assert_eq(t_reap(b, 10000), 0);
	cr_assert_eq(ipc_queue_join(q, 5000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 0);
}

Test(queue, joiner_alone_requeues_a_dead_consumers_task)
{
	pid_t a;
	char buf[8];

	hold = t_shared(sizeof(*hold));
	cr_assert_eq(ipc_joinable_queue_new(&q, 0), 0);
	cr_assert_eq(put_str("job1"), 0);
	a = t_spawn(take_and_hold, NULL);
	cr_assert(t_wait_count(&hold->got, 1, 10000));
	cr_assert_eq(t_kill(a), -SIGKILL);
	cr_assert_eq(ipc_queue_join(q, 300), IPC_ETIMEDOUT, "not done yet");
	cr_assert_eq(ipc_queue_qsize(q), 1, "but queued again");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 4);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 0), 0);
}

Test(queue, closing_a_consumer_handle_requeues_its_tasks)
{
	ipc_queue *mine;
	char buf[8];

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE,
				    &(ipc_queue_attr){ .joinable = true }),
		     0);
	cr_assert_eq(ipc_queue_open(&mine, name, 0, NULL), 0);
	cr_assert_eq(put_str("a"), 0);
	cr_assert_eq(ipc_queue_get(mine, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_qsize(q), 0);
	ipc_queue_close(mine);
	cr_assert_eq(ipc_queue_qsize(q), 1);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 1);
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 0), 0);
}

/* ---- Waits that hold their deadline ------------------------------------ */

/* A 4 KiB ring full of 56-byte messages (64 bytes each with the header),
 * then two got: 128 bytes free, less than a 1000-byte message needs. */
static void fill_then_free_two(bool joinable)
{
	ipc_queue_attr attr = { .capacity = 4096, .joinable = joinable };
	char small[56] = { 0 }, buf[64];
	int n = 0;

	cr_assert_eq(ipc_queue_open(&q, NULL, 0, &attr), 0);
	while (ipc_queue_put(q, small, sizeof(small), IPC_NOWAIT) == 0)
		n++;
	cr_assert_eq(n, 4096 / 64);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
			     (ssize_t)sizeof(small));
		if (joinable)
			cr_assert_eq(ipc_queue_task_done(q), 0);
	}
}

static int put_big_with_timeout(void *arg)
{
	static char big[1000];
	long t0 = t_now_ms();
	int rc;

	(void)arg;
	T_CHECK(ipc_queue_put(q, big, sizeof(big), IPC_NOWAIT) == IPC_EAGAIN,
		1);
	rc = ipc_queue_put(q, big, sizeof(big), 200);
	T_CHECK(rc == IPC_ETIMEDOUT, 2);
	T_CHECK(t_now_ms() - t0 >= 200, 3);
	return 0;
}

Test(queue, put_times_out_when_free_space_is_less_than_the_message_needs)
{
	fill_then_free_two(false);
	cr_assert_eq(t_reap(t_spawn(put_big_with_timeout, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 4096 / 64 - 2, "nothing put");
}

Test(queue, joinable_put_times_out_when_free_space_is_too_small)
{
	fill_then_free_two(true);
	cr_assert_eq(t_reap(t_spawn(put_big_with_timeout, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_qsize(q), 4096 / 64 - 2, "nothing put");
}

static int put_big_forever(void *arg)
{
	static char big[1000];

	(void)arg;
	memset(big, 'B', sizeof(big));
	return ipc_queue_put(q, big, sizeof(big), IPC_FOREVER) == 0 ? 0 : 1;
}

/* The blocked put sleeps in futex() (a spinning one never does), and
 * completes once enough room is freed. */
Test(queue, put_forever_sleeps_in_the_kernel_until_there_is_room)
{
	char buf[1000];
	pid_t kid;
	ssize_t n;

	fill_then_free_two(false);
	kid = t_spawn(put_big_forever, NULL);
	cr_assert(t_blocked_in_futex(kid, 10000), "the put sleeps");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
			     56);
	cr_assert_eq(t_reap(kid, 10000), 0);
	while ((n = ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT)) == 56)
		;
	cr_assert_eq(n, 1000, "the big message came last");
	cr_assert_eq(buf[999], 'B');
}

static int put_56(void *arg)
{
	char buf[56];
	int timeout = (int)(intptr_t)arg;

	memset(buf, 'L', sizeof(buf));
	return ipc_queue_put(q, buf, sizeof(buf), timeout) == 0 ? 0 : 1;
}

/* A put asleep for room first waits for a batch of it (an eighth of the
 * ring, here 512 bytes: see ring_wait.c), but a single freed record is
 * enough for it in the end, with or without a timeout. */
static void one_freed_record_is_enough(bool joinable, int timeout_ms)
{
	char buf[64];
	pid_t kid;

	fill_then_free_two(joinable);
	memset(buf, 'f', sizeof(buf));
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ipc_queue_put(q, buf, 56, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_queue_put(q, buf, 56, IPC_NOWAIT), IPC_EAGAIN);
	kid = t_spawn(put_56, (void *)(intptr_t)timeout_ms);
	cr_assert(t_blocked_in_futex(kid, 10000), "the put sleeps");
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), 56);
	if (joinable)
		cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(t_reap(kid, 10000), 0, "the put got the one record");
	cr_assert_eq(ipc_queue_qsize(q), 4096 / 64);
	for (int i = 0; i < 4096 / 64 - 1; i++)
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT),
			     56);
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), 56);
	cr_assert_eq(buf[0], 'L', "the waiting put came last");
}

Test(queue, put_asleep_for_room_takes_a_single_freed_record)
{
	one_freed_record_is_enough(false, IPC_FOREVER);
}

Test(queue, timed_put_asleep_for_room_takes_a_single_freed_record)
{
	one_freed_record_is_enough(false, 5000);
}

Test(queue, joinable_put_asleep_for_room_takes_a_single_done_record)
{
	one_freed_record_is_enough(true, IPC_FOREVER);
}

static int put_once(void *arg)
{
	(void)arg;
	return ipc_queue_put(q, "c", 1, 10000) == 0 ? 0 : 1;
}

/* The first producer owns the fast path, holding a robust mutex in the
 * segment; another producer revokes it. Closing the queue must release
 * that mutex: a robust mutex left held in an unmapped segment stays on the
 * thread's robust list, and the thread's next robust lock writes into the
 * unmapped page (SIGSEGV). */
Test(queue, close_after_a_revoked_fast_path_leaves_no_robust_mutex_held)
{
	ipc_queue *q2;
	ipc_lock *lk;
	char buf[4];

	cr_assert_eq(ipc_queue_new(&q2, 0), 0);
	ipc_queue_close(q); /* the suite's queue: use q2 through q */
	q = q2;
	cr_assert_eq(ipc_queue_put(q, "p", 1, IPC_NOWAIT), 0);
	cr_assert_eq(t_reap(t_spawn(put_once, NULL), 10000), 0);
	cr_assert_eq(ipc_queue_put(q, "p", 1, IPC_NOWAIT), 0, "after revoke");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), IPC_NOWAIT), 1);
	ipc_queue_close(q);
	q = NULL;
	cr_assert_eq(ipc_lock_new(&lk), 0);
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), 0, "no crash here");
	cr_assert_eq(ipc_lock_release(lk), 0);
	ipc_lock_close(lk);
}

/* A consumer got A, then R (queued again, and before A in the ring), and
 * did one task_done: that was A's, the task it got first. Closing then
 * queues R again, not A: completing by ring order instead finished R,
 * which the consumer never finished, and A ran twice. Each handle is a
 * consumer of its own, also in one thread. */
Test(queue, task_done_completes_the_task_got_first_before_a_requeued_one)
{
	ipc_queue_attr attr = { .capacity = 4096, .joinable = true };
	char got[16];
	ipc_queue *q2, *q3;

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE | IPC_EXCL, &attr), 0);
	cr_assert_eq(ipc_queue_open(&q2, name, 0, NULL), 0);
	cr_assert_eq(ipc_queue_open(&q3, name, 0, NULL), 0);
	cr_assert_eq(ipc_queue_put(q, "R", 1, 0), 0);
	cr_assert_eq(ipc_queue_get(q3, got, sizeof(got), 0), 1);
	cr_assert_eq(ipc_queue_put(q, "A", 1, 0), 0);
	cr_assert_eq(ipc_queue_get(q2, got, sizeof(got), 0), 1);
	cr_assert_eq(got[0], 'A');
	ipc_queue_close(q3); /* R is queued again, before A in the ring */
	cr_assert_eq(ipc_queue_get(q2, got, sizeof(got), 0), 1);
	cr_assert_eq(got[0], 'R', "the requeued task");
	cr_assert_eq(ipc_queue_task_done(q2), 0); /* A's */
	ipc_queue_close(q2);			  /* R goes back */
	cr_assert_eq(ipc_queue_unfinished(q), 1);
	cr_assert_eq(ipc_queue_get(q, got, sizeof(got), 0), 1);
	cr_assert_eq(got[0], 'R', "the unfinished task is R, not A");
	cr_assert_eq(ipc_queue_task_done(q), 0);
	cr_assert_eq(ipc_queue_join(q, 1000), 0);
}
