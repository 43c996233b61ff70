/* SPDX-License-Identifier: MIT */
/*
 * test_queue_batch.c — ipc_queue_put_many and ipc_queue_get_many on the
 * shm backend (Queue and JoinableQueue: native batches) and the mqueue
 * backend (the facade's loop): whole messages, in order, each once;
 * partial batches; the first message waited for, the rest not; bad input
 * refused before anything moves; and real processes streaming batches
 * through a small queue, one and several producers and consumers.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

TestSuite(batch, .init = tq_setup, .fini = tq_teardown, .timeout = 120);

#define MSG_CAP 128

/* n messages numbered from `first`, in bufs (n * MSG_CAP bytes). */
static void make_batch(struct iovec *v, char *bufs, int first, int n)
{
	for (int i = 0; i < n; i++) {
		v[i].iov_base = bufs + (size_t)i * MSG_CAP;
		v[i].iov_len = tq_msg(v[i].iov_base, first + i);
	}
}

/* n receive buffers of MSG_CAP bytes each. */
static void make_room(struct iovec *v, char *bufs, int n)
{
	for (int i = 0; i < n; i++) {
		v[i].iov_base = bufs + (size_t)i * MSG_CAP;
		v[i].iov_len = MSG_CAP;
	}
}

/* Is v[0..n) messages first, first+1, ...? */
static bool batch_is(const struct iovec *v, int first, int n)
{
	char ref[MSG_CAP];

	for (int i = 0; i < n; i++) {
		size_t len = tq_msg(ref, first + i);
		if (v[i].iov_len != len || memcmp(v[i].iov_base, ref, len))
			return false;
	}
	return true;
}

/* ---- in order, whole, once ------------------------------------------------
 */

static void round_trip(enum tq_kind k)
{
	static char out[100 * MSG_CAP], in[7 * MSG_CAP];
	struct iovec vo[100], vi[7];
	int next = 0;

	tq_open(k, k >= TQ_MQUEUE ? 10 : 0, MSG_CAP, "batch-rt");
	make_batch(vo, out, 0, 100);
	for (int sent = 0; sent < 100; sent += 10) {
		cr_assert_eq(ipc_queue_put_many(tq, vo + sent, 10, 1000), 10);
		while (next < sent + 10) {
			ssize_t got;
			make_room(vi, in, 7);
			got = ipc_queue_get_many(tq, vi, 7, 1000);
			cr_assert_gt(got, 0, "got %zd", got);
			cr_assert(batch_is(vi, next, (int)got),
				  "messages %d.. whole and in order", next);
			next += (int)got;
			for (ssize_t t = 0; tq_joinable(k) && t < got; t++)
				cr_assert_eq(ipc_queue_task_done(tq), 0);
		}
	}
	cr_assert_eq(next, 100);
	cr_assert_eq(ipc_queue_qsize(tq), 0, "nothing left over");
	if (tq_joinable(k))
		cr_assert_eq(ipc_queue_join(tq, IPC_NOWAIT), 0);
}

Test(batch, shm_round_trip_keeps_order_and_bytes)
{
	round_trip(TQ_SHM);
}

Test(batch, joinable_round_trip_keeps_order_and_bytes)
{
	round_trip(TQ_SHM_JOINABLE);
}

Test(batch, mqueue_round_trip_keeps_order_and_bytes)
{
	round_trip(TQ_MQUEUE);
}

/* More than one CAS's worth in one get_many; zero-length messages too. */
Test(batch, shm_large_batches_and_empty_messages)
{
	static char out[300 * MSG_CAP], in[300 * MSG_CAP];
	struct iovec vo[300], vi[300];

	tq_open(TQ_SHM, 0, MSG_CAP, "batch-large");
	make_batch(vo, out, 1000, 300);
	vo[17].iov_len = 0;
	vo[17].iov_base = NULL;
	cr_assert_eq(ipc_queue_put_many(tq, vo, 300, 1000), 300);
	cr_assert_eq(ipc_queue_qsize(tq), 300);
	make_room(vi, in, 300);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 300, 1000), 300);
	cr_assert(batch_is(vi, 1000, 17));
	cr_assert_eq(vi[17].iov_len, 0, "the empty message");
	cr_assert(batch_is(vi + 18, 1018, 282));
}

/* ---- partial batches ------------------------------------------------------
 */

static void partial_when_full(enum tq_kind k)
{
	static char out[25 * MSG_CAP], in[25 * MSG_CAP];
	struct iovec vo[25], vi[25];

	tq_open(k, 10, MSG_CAP, "batch-full");
	make_batch(vo, out, 0, 25);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 25, IPC_NOWAIT), 10,
		     "as many as fit");
	cr_assert_eq(ipc_queue_put_many(tq, vo + 10, 15, IPC_NOWAIT),
		     IPC_EAGAIN, "none fits: the first one's error");
	cr_assert_eq(ipc_queue_put_many(tq, vo + 10, 15, 50), IPC_ETIMEDOUT);
	make_room(vi, in, 25);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 25, IPC_NOWAIT), 10);
	cr_assert(batch_is(vi, 0, 10));
	make_room(vi, in, 25);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 25, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 25, 50), IPC_ETIMEDOUT);
}

Test(batch, shm_partial_batch_when_full)
{
	partial_when_full(TQ_SHM);
}

Test(batch, mqueue_partial_batch_when_full)
{
	partial_when_full(TQ_MQUEUE);
}

/* A message too long for its buffer stops the batch and stays queued. */
Test(batch, shm_a_message_that_does_not_fit_ends_the_batch)
{
	static char out[4 * MSG_CAP], in[4 * MSG_CAP];
	struct iovec vo[4], vi[4];

	tq_open(TQ_SHM, 0, MSG_CAP, "batch-fit");
	make_batch(vo, out, 0, 4);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 4, 1000), 4);
	make_room(vi, in, 4);
	vi[0].iov_len = 3;
	cr_assert_eq(ipc_queue_get_many(tq, vi, 4, IPC_NOWAIT), IPC_EMSGSIZE,
		     "the first does not fit");
	make_room(vi, in, 4);
	vi[2].iov_len = 3;
	cr_assert_eq(ipc_queue_get_many(tq, vi, 4, IPC_NOWAIT), 2);
	cr_assert(batch_is(vi, 0, 2));
	make_room(vi, in, 4);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 4, IPC_NOWAIT), 2);
	cr_assert(batch_is(vi, 2, 2), "message 2 stayed queued");
}

/* ---- bad input and shutdown -----------------------------------------------
 */

Test(batch, bad_arguments_are_refused_before_anything_moves)
{
	static char out[3 * MSG_CAP], big[8192];
	struct iovec vo[3] = { { out, 1 }, { out, 1 }, { out, 1 } };

	cr_assert_eq(ipc_queue_put_many(NULL, vo, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_get_many(NULL, vo, 1, 0), IPC_EINVAL);
	tq_open(TQ_SHM, 0, MSG_CAP, "batch-bad");
	make_batch(vo, out, 0, 3);
	cr_assert_eq(ipc_queue_put_many(tq, NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_get_many(tq, vo, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 1, -7), IPC_EINVAL);
	vo[2].iov_base = NULL;
	cr_assert_eq(ipc_queue_put_many(tq, vo, 3, 0), IPC_EINVAL);
	vo[2].iov_base = big;
	vo[2].iov_len = sizeof(big);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 3, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_qsize(tq), 0, "nothing was put");
}

Test(batch, shm_shutdown_stops_puts_and_lets_gets_drain)
{
	static char out[3 * MSG_CAP], in[3 * MSG_CAP];
	struct iovec vo[3], vi[3];

	tq_open(TQ_SHM, 0, MSG_CAP, "batch-shut");
	make_batch(vo, out, 0, 3);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 2, 0), 2);
	cr_assert_eq(ipc_queue_shutdown(tq), 0);
	cr_assert_eq(ipc_queue_put_many(tq, vo, 3, 0), IPC_ECLOSED);
	make_room(vi, in, 3);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 3, 0), 2);
	make_room(vi, in, 3);
	cr_assert_eq(ipc_queue_get_many(tq, vi, 3, 1000), IPC_ECLOSED);
}

/* ---- waiting --------------------------------------------------------------
 */

static int child_put_two_later(void *arg)
{
	char out[2 * MSG_CAP];
	struct iovec vo[2];

	(void)arg;
	make_batch(vo, out, 40, 2);
	return ipc_queue_put_many(tq, vo, 2, 10000) == 2 ? 0 : 1;
}

Test(batch, shm_get_many_waits_for_the_first_message)
{
	static char in[8 * MSG_CAP];
	struct iovec vi[8];
	ssize_t got;
	pid_t c;

	tq_open(TQ_SHM, 0, MSG_CAP, "batch-wait");
	c = t_spawn(child_put_two_later, NULL);
	make_room(vi, in, 8);
	got = ipc_queue_get_many(tq, vi, 8, 10000);
	cr_assert(got == 1 || got == 2, "got %zd", got);
	cr_assert(batch_is(vi, 40, (int)got));
	if (got == 1) {
		make_room(vi, in, 8);
		cr_assert_eq(ipc_queue_get_many(tq, vi, 8, 10000), 1);
		cr_assert(batch_is(vi, 41, 1));
	}
	cr_assert_eq(t_reap(c, 10000), 0);
}

/* ---- processes ------------------------------------------------------------
 */

#define STREAM_N 20000
#define PRODUCERS 2

/* Producer p puts messages p*STREAM_N .. +STREAM_N-1 in batches of 1..32
 * into a queue much smaller than the stream, so it waits for room. */
static int child_produce(void *arg)
{
	int p = (int)(intptr_t)arg, sent = 0;
	static char out[32 * MSG_CAP];
	struct iovec vo[32];

	while (sent < STREAM_N) {
		int n = 1 + (sent / 7) % 32;
		ssize_t k;
		if (n > STREAM_N - sent)
			n = STREAM_N - sent;
		make_batch(vo, out, p * STREAM_N + sent, n);
		k = ipc_queue_put_many(tq, vo, (size_t)n, 20000);
		if (k <= 0)
			return 1;
		sent += (int)k;
	}
	return 0;
}

static volatile int *seen; /* per message: how many times it was got */

static int consume(int want)
{
	static char in[16 * MSG_CAP];
	struct iovec vi[16];
	int last[PRODUCERS], got = 0;

	for (int p = 0; p < PRODUCERS; p++)
		last[p] = -1;
	while (got < want) {
		ssize_t k;
		make_room(vi, in, 16);
		k = ipc_queue_get_many(tq, vi, 16, 20000);
		if (k == IPC_ECLOSED)
			break;
		if (k <= 0)
			return 1;
		for (ssize_t i = 0; i < k; i++) {
			char ref[MSG_CAP];
			int n = atoi((char *)vi[i].iov_base + 1), p;
			if (n < 0 || n >= PRODUCERS * STREAM_N)
				return 2;
			p = n / STREAM_N;
			if (vi[i].iov_len != tq_msg(ref, n) ||
			    memcmp(vi[i].iov_base, ref, vi[i].iov_len) != 0)
				return 3; /* torn */
			if (n <= last[p])
				return 4; /* a producer's order broken */
			last[p] = n;
			__atomic_add_fetch(&seen[n], 1, __ATOMIC_RELAXED);
		}
		got += (int)k;
	}
	return 0;
}

static int child_consume(void *arg)
{
	(void)arg;
	return consume(INT32_MAX);
}

/* One producer, the parent consuming: every message once, in order. */
Test(batch, shm_stream_between_processes_through_a_small_queue)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = MSG_CAP };
	pid_t c;

	seen = t_shared(sizeof(int) * PRODUCERS * STREAM_N);
	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
	c = t_spawn(child_produce, (void *)0);
	cr_assert_eq(consume(STREAM_N), 0);
	cr_assert_eq(t_reap(c, 60000), 0);
	for (int n = 0; n < STREAM_N; n++)
		cr_assert_eq(seen[n], 1, "message %d got %d times", n, seen[n]);
}

/* Two producers, two consumers, all batching: each message exactly once,
 * each producer's messages in its order at every consumer. */
Test(batch, shm_many_producers_and_consumers_lose_and_double_nothing)
{
	ipc_queue_attr attr = { .capacity = 8192, .max_msg_size = MSG_CAP };
	pid_t prod[PRODUCERS], cons[2];

	seen = t_shared(sizeof(int) * PRODUCERS * STREAM_N);
	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
	for (int i = 0; i < 2; i++)
		cons[i] = t_spawn(child_consume, NULL);
	for (int p = 0; p < PRODUCERS; p++)
		prod[p] = t_spawn(child_produce, (void *)(intptr_t)p);
	for (int p = 0; p < PRODUCERS; p++)
		cr_assert_eq(t_reap(prod[p], 60000), 0, "producer %d", p);
	cr_assert_eq(ipc_queue_shutdown(tq), 0); /* consumers drain, stop */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(t_reap(cons[i], 60000), 0, "consumer %d", i);
	for (int n = 0; n < PRODUCERS * STREAM_N; n++)
		cr_assert_eq(seen[n], 1, "message %d got %d times", n, seen[n]);
}
