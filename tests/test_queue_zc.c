/* SPDX-License-Identifier: MIT */
/*
 * test_queue_zc.c — zero copy: ipc_queue_reserve / commit / cancel (a
 * message written in place, also across the ring's end) and
 * ipc_queue_borrow / give_back (a JoinableQueue task read in place, its
 * bytes kept while it is lent); bad use refused; backends that cannot
 * lend say IPC_ENOTSUP; a borrower that dies gives its task back.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"
#include "tests/queue_helpers.h"

TestSuite(zc, .init = tq_setup, .fini = tq_teardown, .timeout = 60);

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7);
}

static bool filled(const uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 131 + i * 7))
			return false;
	return true;
}

static void open_small(bool joinable)
{
	ipc_queue_attr attr = { .capacity = 4096,
				.max_msg_size = 1500,
				.joinable = joinable };

	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
}

/* ---- reserve and commit ---------------------------------------------------
 */

/* A 4 KiB ring and messages up to 1500 bytes: the reservations wrap
 * around the end again and again, and each is one contiguous buffer. */
Test(zc, committed_messages_arrive_whole_also_across_the_end)
{
	static uint8_t got[1500];

	open_small(false);
	for (unsigned i = 0; i < 300; i++) {
		size_t len = 1 + (i * 397) % 1500;
		void *buf;
		cr_assert_eq(ipc_queue_reserve(tq, len, &buf, 1000), 0);
		fill(buf, len, i);
		cr_assert_eq(ipc_queue_commit(tq, len), 0);
		cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 1000),
			     (ssize_t)len, "message %u", i);
		cr_assert(filled(got, len, i), "message %u whole", i);
	}
}

Test(zc, commit_may_be_shorter_than_the_reservation)
{
	char got[64];
	void *buf;

	open_small(false);
	cr_assert_eq(ipc_queue_reserve(tq, 1000, &buf, 0), 0);
	memcpy(buf, "short", 5);
	cr_assert_eq(ipc_queue_commit(tq, 5), 0);
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 0), 5);
	cr_assert_eq(memcmp(got, "short", 5), 0);
}

Test(zc, cancel_leaves_nothing_and_the_queue_goes_on)
{
	char got[64];
	void *buf;

	open_small(false);
	cr_assert_eq(ipc_queue_reserve(tq, 100, &buf, 0), 0);
	memset(buf, 'x', 100);
	cr_assert_eq(ipc_queue_cancel(tq), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	cr_assert_eq(ipc_queue_put(tq, "after", 5, 0), 0);
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 0), 5);
	cr_assert_eq(memcmp(got, "after", 5), 0);
}

Test(zc, bad_use_is_refused_and_loses_nothing)
{
	static char x[1] = "x";
	struct iovec v = { x, 1 };
	void *buf = &buf;

	cr_assert_eq(ipc_queue_reserve(NULL, 1, &buf, 0), IPC_EINVAL);
	open_small(false);
	cr_assert_eq(ipc_queue_reserve(tq, 1, NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_reserve(tq, 1501, &buf, 0), IPC_EMSGSIZE);
	cr_assert_null(buf, "*buf NULL on error");
	cr_assert_eq(ipc_queue_commit(tq, 1), IPC_EINVAL, "no reservation");
	cr_assert_eq(ipc_queue_cancel(tq), IPC_EINVAL);
	cr_assert_eq(ipc_queue_reserve(tq, 10, &buf, 0), 0);
	memcpy(buf, "0123456789", 10);
	cr_assert_eq(ipc_queue_reserve(tq, 10, &buf, 0), IPC_EBUSY);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, 0), IPC_EBUSY,
		     "the reserving thread's puts wait for its commit");
	cr_assert_eq(ipc_queue_put_many(tq, &v, 1, 0), IPC_EBUSY);
	cr_assert_eq(ipc_queue_commit(tq, 11), IPC_EINVAL, "over reserved");
	cr_assert_eq(ipc_queue_qsize(tq), 0);
	cr_assert_eq(ipc_queue_commit(tq, 10), 0, "still open: commits");
	cr_assert_eq(ipc_queue_qsize(tq), 1);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, 0), 0);
}

/* The drop waits for the producers' lock, which the reservation holds:
 * the reserving thread is refused, and nothing is shut down or dropped. */
Test(zc, shutdown_immediate_under_ones_own_reservation_is_refused)
{
	void *buf;
	char got[8];

	open_small(false);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, 0), 0);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 0), 0);
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), IPC_EBUSY);
	memcpy(buf, "y", 1);
	cr_assert_eq(ipc_queue_commit(tq, 1), 0, "not shut down");
	cr_assert_eq(ipc_queue_shutdown_immediate(tq), 0);
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 0), IPC_ECLOSED,
		     "both dropped");
}

/* The reservation holds the queue's producers' lock: a put or a drop by
 * the same thread through a second handle of the queue is refused with
 * IPC_EBUSY too, never a deadlock or an undocumented code. */
Test(zc, own_reservation_refuses_puts_through_another_handle_too)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 1500 };
	ipc_queue *q2;
	void *buf;
	char got[8];

	t_name(tq_name, sizeof(tq_name), "zc2"); /* unlinked by tq_teardown */
	cr_assert_eq(ipc_queue_open(&tq, tq_name, IPC_CREATE, &attr), 0);
	cr_assert_eq(ipc_queue_open(&q2, tq_name, 0, NULL), 0);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 0), 0);
	cr_assert_eq(ipc_queue_put(q2, "z", 1, IPC_NOWAIT), IPC_EBUSY);
	cr_assert_eq(ipc_queue_put(q2, "z", 1, 200), IPC_EBUSY);
	cr_assert_eq(ipc_queue_shutdown_immediate(q2), IPC_EBUSY);
	memcpy(buf, "y", 1);
	cr_assert_eq(ipc_queue_commit(tq, 1), 0);
	{
		int prc = ipc_queue_put(q2, "z", 1, IPC_NOWAIT);
		cr_assert_eq(prc, 0, "put after commit: %d", prc);
	}
	cr_assert_eq(ipc_queue_get(q2, got, sizeof(got), 0), 1);
	cr_assert_eq(got[0], 'y');
	cr_assert_eq(ipc_queue_get(q2, got, sizeof(got), 0), 1);
	cr_assert_eq(got[0], 'z');
	ipc_queue_close(q2);
}

Test(zc, reserve_waits_for_room_like_put)
{
	ipc_queue_attr attr = { .maxsize = 1 };
	void *buf;

	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
	cr_assert_eq(ipc_queue_put(tq, "a", 1, 0), 0);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 50), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_shutdown(tq), 0);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 0), IPC_ECLOSED);
}

static int child_put_b(void *arg)
{
	(void)arg;
	return ipc_queue_put(tq, "b", 1, 10000) == 0 ? 0 : 1;
}

/* Another producer waits for the commit, then goes after it. */
Test(zc, other_producers_wait_for_the_commit)
{
	char got[8];
	void *buf;
	pid_t c;

	open_small(false);
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 0), 0);
	c = t_spawn(child_put_b, NULL);
	cr_assert(t_blocked_in_futex(c, 10000), "the producer waits");
	*(char *)buf = 'a';
	cr_assert_eq(ipc_queue_commit(tq, 1), 0);
	cr_assert_eq(t_reap(c, 10000), 0);
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 1000), 1);
	cr_assert_eq(got[0], 'a', "the reserved message first");
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 1000), 1);
	cr_assert_eq(got[0], 'b');
}

/* Closing the handle cancels its reservation: another handle can put. */
Test(zc, close_cancels_the_reservation)
{
	ipc_queue *other;
	void *buf;

	t_name(tq_name, sizeof(tq_name), "zc-close");
	cr_assert_eq(ipc_queue_open(&other, tq_name, IPC_CREATE, NULL), 0);
	cr_assert_eq(ipc_queue_open(&tq, tq_name, 0, NULL), 0);
	cr_assert_eq(ipc_queue_reserve(other, 10, &buf, 0), 0);
	ipc_queue_close(other);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, 1000), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 1);
}

Test(zc, mqueue_cannot_lend)
{
	const void *msg;
	void *buf;

	tq_open(TQ_MQUEUE, 0, 0, "zc-mq");
	cr_assert_eq(ipc_queue_reserve(tq, 1, &buf, 0), IPC_ENOTSUP);
	cr_assert_eq(ipc_queue_borrow(tq, &msg, 0), IPC_ENOTSUP);
	cr_assert_eq(ipc_queue_give_back(tq), IPC_ENOTSUP);
}

/* ---- borrow and give back -------------------------------------------------
 */

Test(zc, plain_queue_cannot_lend)
{
	const void *msg = &msg;

	open_small(false);
	cr_assert_eq(ipc_queue_put(tq, "x", 1, 0), 0);
	cr_assert_eq(ipc_queue_borrow(tq, &msg, 0), IPC_ENOTSUP);
	cr_assert_null(msg);
	cr_assert_eq(ipc_queue_qsize(tq), 1, "the message stays");
}

Test(zc, borrowed_tasks_are_whole_in_place_also_across_the_end)
{
	static uint8_t out[1500];

	open_small(true);
	for (unsigned i = 0; i < 300; i++) {
		size_t len = 1 + (i * 397) % 1500;
		const void *msg;
		fill(out, len, i);
		cr_assert_eq(ipc_queue_put(tq, out, len, 1000), 0);
		cr_assert_eq(ipc_queue_borrow(tq, &msg, 1000), (ssize_t)len);
		cr_assert(filled(msg, len, i), "task %u whole in place", i);
		cr_assert_eq(ipc_queue_unfinished(tq), 1);
		cr_assert_eq(ipc_queue_give_back(tq), 0);
	}
	cr_assert_eq(ipc_queue_join(tq, 0), 0);
	cr_assert_eq(ipc_queue_give_back(tq), IPC_EINVAL, "none lent");
}

/* While lent, the bytes stay: producers fill the rest of the ring around
 * them and never write over them. */
Test(zc, a_lent_message_is_not_overwritten_by_later_puts)
{
	static uint8_t out[1000];
	const void *msg;
	int puts = 0;

	open_small(true);
	fill(out, sizeof(out), 7);
	cr_assert_eq(ipc_queue_put(tq, out, sizeof(out), 0), 0);
	cr_assert_eq(ipc_queue_borrow(tq, &msg, 0), 1000);
	fill(out, sizeof(out), 8);
	while (ipc_queue_put(tq, out, sizeof(out), IPC_NOWAIT) == 0)
		puts++;
	cr_assert_eq(puts, 3,
		     "4 records of 1008 bytes fill 4096: the lent one keeps "
		     "its room");
	cr_assert(filled(msg, 1000, 7), "the lent bytes are intact");
	cr_assert_eq(ipc_queue_give_back(tq), 0);
	cr_assert_eq(ipc_queue_put(tq, out, sizeof(out), IPC_NOWAIT), 0,
		     "given back: its room is free");
}

static volatile int *lent;

static int child_borrow_and_hang(void *arg)
{
	const void *msg;

	(void)arg;
	if (ipc_queue_borrow(tq, &msg, 10000) != 5)
		return 1;
	*lent = 1;
	for (;;)
		pause();
}

Test(zc, a_dead_borrowers_task_is_queued_again)
{
	char got[16];

	lent = t_shared(sizeof(int));
	open_small(true);
	cr_assert_eq(ipc_queue_put(tq, "hello", 5, 0), 0);
	pid_t c = t_spawn(child_borrow_and_hang, NULL);
	cr_assert(t_wait_count(lent, 1, 10000));
	cr_assert_eq(t_kill(c), -SIGKILL);
	cr_assert_eq(ipc_queue_get(tq, got, sizeof(got), 10000), 5);
	cr_assert_eq(memcmp(got, "hello", 5), 0, "the same task, whole");
	cr_assert_eq(ipc_queue_task_done(tq), 0);
	cr_assert_eq(ipc_queue_join(tq, 1000), 0);
}

static volatile int *handoff; /* 1: the child got R; 2: it may close */

static int child_get_then_close(void *arg)
{
	char got[16];

	(void)arg;
	if (ipc_queue_get(tq, got, sizeof(got), 10000) != 8)
		return 1;
	*handoff = 1;
	if (!t_wait_count(handoff, 2, 10000))
		return 2;
	ipc_queue_close(tq); /* R is queued again, before A in the ring */
	tq = NULL;
	return 0;
}

/* Borrowed first A (after R in the ring), then R, queued again after its
 * consumer closed: giving back in borrow order gives A back, and R's
 * bytes stay lent. Completing by position instead gave R back, and the
 * puts that followed wrote over it while it was still borrowed. */
Test(zc, give_back_in_borrow_order_keeps_a_requeued_task_lent_later)
{
	const void *a, *rq;
	int puts = 0;

	handoff = t_shared(sizeof(int));
	open_small(true);
	cr_assert_eq(ipc_queue_put(tq, "RRRRRRRR", 8, 0), 0);
	pid_t c = t_spawn(child_get_then_close, NULL);
	cr_assert(t_wait_count(handoff, 1, 10000));
	cr_assert_eq(ipc_queue_put(tq, "AAAAAAAA", 8, 0), 0);
	cr_assert_eq(ipc_queue_borrow(tq, &a, 0), 8);
	cr_assert_eq(memcmp(a, "AAAAAAAA", 8), 0);
	*handoff = 2;
	cr_assert_eq(t_reap(c, 10000), 0);
	cr_assert_eq(ipc_queue_borrow(tq, &rq, 1000), 8);
	cr_assert_eq(memcmp(rq, "RRRRRRRR", 8), 0, "the requeued task");
	cr_assert_eq(ipc_queue_give_back(tq), 0); /* A's */
	while (ipc_queue_put(tq, "ZZZZZZZZ", 8, IPC_NOWAIT) == 0)
		puts++;
	cr_assert_eq(puts, 4096 / 16 - 2,
		     "R keeps its room (A's stays behind it until R is done)");
	cr_assert_eq(memcmp(rq, "RRRRRRRR", 8), 0, "R is still lent, intact");
	cr_assert_eq(ipc_queue_give_back(tq), 0); /* R's */
	cr_assert_eq(ipc_queue_unfinished(tq), puts);
}

/* ---- threads sharing a handle ---------------------------------------------
 */

/* Two threads start at once on a handle that has not used zero copy yet;
 * each borrows a task (JoinableQueue) or reserves (Queue), then gives it
 * back or commits, and exits (before the handle closes, so that a
 * consumer's slot is free again). */
static pthread_barrier_t first_use;
static bool first_use_borrows;
static _Atomic int first_use_commits;

static void *first_use_thread(void *arg)
{
	const void *msg;
	void *buf;

	(void)arg;
	pthread_barrier_wait(&first_use);
	if (first_use_borrows) {
		if (ipc_queue_borrow(tq, &msg, 1000) == 1)
			ipc_queue_give_back(tq);
	} else if (ipc_queue_reserve(tq, 8, &buf, 1000) == 0) {
		memcpy(buf, "01234567", 8);
		if (ipc_queue_commit(tq, 8) == 0)
			first_use_commits++;
	}
	return NULL;
}

/* Mappings of anonymous shared memory (an anonymous queue's segment and
 * its views): not the threads' malloc arenas, which come and go. */
static int maps_lines(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, "/dev/zero") != NULL;
	fclose(f);
	return n;
}

/* One round of the race on a fresh queue holding three messages: false
 * if the queue does not hold exactly those and the commits. */
static bool first_use_round(bool joinable)
{
	pthread_t th[2];
	char buf[16];
	long want;
	int got = 0;

	open_small(joinable);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(ipc_queue_put(tq, "zz", 2, 0), 0);
	first_use_borrows = joinable;
	first_use_commits = 0;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(
			pthread_create(&th[i], NULL, first_use_thread, NULL),
			0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	want = joinable ? 1 : 3 + first_use_commits;
	while (ipc_queue_get(tq, buf, sizeof(buf), 0) >= 0)
		got++;
	ipc_queue_close(tq);
	tq = NULL;
	return got == want;
}

/* The handle's zero-copy state is made once however many threads first
 * use it together: no view leaks past close (the mappings do not grow),
 * and no commit publishes a tail another thread's state held (every
 * message and commit is there). The race is narrow, so it runs often. */
Test(zc, threads_first_using_a_handle_at_once_share_one_state)
{
	int before = 0;

	pthread_barrier_init(&first_use, NULL, 2);
	for (int round = 0; round < 6000; round++) {
		cr_assert(first_use_round(round % 2 == 0), "round %d", round);
		if (round == 0)
			before = maps_lines();
	}
	cr_assert_eq(maps_lines(), before, "no view left mapped");
	pthread_barrier_destroy(&first_use);
}

/* A thread that exits holding a reservation leaves it to no one: a later
 * thread of the process (glibc gives it the dead one's stack, thread-local
 * storage and pthread_t) is not its holder. Its puts through the handle
 * are not refused (the next producer repairs the producer side, ipc.h),
 * its commit and cancel are IPC_EINVAL, and it may reserve anew. */
static void *reserve_and_exit(void *arg)
{
	void *buf;

	(void)arg;
	if (ipc_queue_reserve(tq, 8, &buf, 1000) != 0)
		return (void *)1;
	memcpy(buf, "deadbeef", 8);
	return NULL;
}

struct later_thread {
	int put, commit, cancel, reserve, commit2;
};

static void *later_thread_uses_the_handle(void *arg)
{
	struct later_thread *lt = arg;
	void *buf;

	lt->commit = ipc_queue_commit(tq, 8);
	lt->cancel = ipc_queue_cancel(tq);
	lt->put = ipc_queue_put(tq, "x", 1, 1000);
	lt->reserve = ipc_queue_reserve(tq, 4, &buf, 1000);
	if (lt->reserve == 0) {
		memcpy(buf, "yz", 2);
		lt->commit2 = ipc_queue_commit(tq, 2);
	}
	return NULL;
}

Test(zc, a_thread_reusing_a_dead_reservers_storage_holds_no_reservation)
{
	struct later_thread lt = { -1, -1, -1, -1, -1 };
	pthread_t t1, t2;
	void *res;
	char buf[16];

	open_small(false);
	cr_assert_eq(pthread_create(&t1, NULL, reserve_and_exit, NULL), 0);
	cr_assert_eq(pthread_join(t1, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(
		pthread_create(&t2, NULL, later_thread_uses_the_handle, &lt),
		0);
	cr_assert_eq(pthread_join(t2, NULL), 0);
	cr_assert(pthread_equal(t1, t2), "glibc reused the dead thread's");
	cr_assert_eq(lt.commit, IPC_EINVAL);
	cr_assert_eq(lt.cancel, IPC_EINVAL);
	cr_assert_eq(lt.put, 0);
	cr_assert_eq(lt.reserve, 0);
	cr_assert_eq(lt.commit2, 0);
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 1000), 1);
	cr_assert_eq(buf[0], 'x');
	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 1000), 2);
	cr_assert_eq(memcmp(buf, "yz", 2), 0);
	cr_assert_eq(ipc_queue_qsize(tq), 0);
}
