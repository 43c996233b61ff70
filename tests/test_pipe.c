/* SPDX-License-Identifier: MIT */
/*
 * test_pipe.c — Pipe and Connection between real processes: ping-pong,
 * one-way ends, end of file after a close or the death of every holder,
 * poll, sizes, timeouts and bad input.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_conn *a, *b;

static void teardown(void)
{
	ipc_conn_close(a);
	ipc_conn_close(b);
	a = b = NULL;
}

TestSuite(pipe, .fini = teardown, .timeout = 60);

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Child: echo every message back with its first byte incremented, until
 * end of file. */
static int echo(void *arg)
{
	char buf[256];
	ssize_t n;
	(void)arg;
	ipc_conn_close(a); /* the child uses b only */
	a = NULL;
	while ((n = ipc_conn_recv(b, buf, sizeof(buf), 20000)) >= 0) {
		T_CHECK(n > 0, 1);
		buf[0]++;
		T_CHECK(ipc_conn_send(b, buf, (size_t)n, 20000) == 0, 2);
	}
	return n == IPC_ECLOSED ? 0 : 3;
}

Test(pipe, duplex_ping_pong_with_a_child_then_end_of_file)
{
	char msg[64], back[64];
	pid_t kid;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	cr_assert(ipc_conn_readable(a) && ipc_conn_writable(a));
	kid = t_spawn(echo, NULL);
	ipc_conn_close(b);
	b = NULL;
	for (int i = 0; i < 2000; i++) {
		int len = snprintf(msg, sizeof(msg), "%cping %d", 'a' + i % 20,
				   i);
		cr_assert_eq(ipc_conn_send(a, msg, (size_t)len, 10000), 0);
		cr_assert_eq(ipc_conn_recv(a, back, sizeof(back), 10000), len);
		cr_assert_eq(back[0], msg[0] + 1);
		cr_assert_eq(memcmp(back + 1, msg + 1, (size_t)len - 1), 0);
	}
	ipc_conn_close(a); /* the child's recv sees end of file */
	a = NULL;
	cr_assert_eq(t_reap(kid, 20000), 0);
}

Test(pipe, one_way_ends_refuse_the_other_direction)
{
	char buf[8];

	cr_assert_eq(ipc_pipe_new(&a, &b, false, NULL), 0);
	cr_assert(ipc_conn_readable(a) && !ipc_conn_writable(a));
	cr_assert(!ipc_conn_readable(b) && ipc_conn_writable(b));
	cr_assert_eq(ipc_conn_send(a, "x", 1, 0), IPC_EPERM);
	cr_assert_eq(ipc_conn_recv(b, buf, sizeof(buf), 0), IPC_EPERM);
	cr_assert_eq(ipc_conn_poll(b, 0), IPC_EPERM);
	cr_assert_eq(ipc_conn_send(b, "xyz", 3, 0), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "xyz", 3), 0);
}

Test(pipe, close_gives_the_peer_what_was_sent_then_eclosed)
{
	char buf[8];

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	cr_assert_eq(ipc_conn_send(b, "one", 3, 0), 0);
	cr_assert_eq(ipc_conn_send(b, "two", 3, 0), 0);
	ipc_conn_close(b);
	b = NULL;
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "one", 3), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "two", 3), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), IPC_FOREVER),
		     IPC_ECLOSED, "end of file, not a hang");
	cr_assert_eq(ipc_conn_send(a, "x", 1, IPC_FOREVER), IPC_ECLOSED);
	cr_assert_eq(ipc_conn_poll(a, IPC_FOREVER), 0, "EOF is readable");
}

static int hold_b_then_wait(void *arg)
{
	volatile int *ready = arg;
	ipc_conn_close(a);
	a = NULL;
	T_CHECK(ipc_conn_send(b, "last", 4, 1000) == 0, 1);
	__atomic_store_n(ready, 1, __ATOMIC_RELEASE);
	pause(); /* until killed */
	return 2;
}

/* Make the pipe; a child holds the only b, sends "last" and waits to be
 * killed; this process has received "last". */
static pid_t start_holder_of_b(void)
{
	int *ready = t_shared(sizeof(int));
	char buf[8];
	pid_t kid;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	kid = t_spawn(hold_b_then_wait, ready);
	ipc_conn_close(b);
	b = NULL;
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 10000), 4);
	return kid;
}

Test(pipe, killed_holder_gives_a_blocked_receiver_end_of_file)
{
	pid_t kid = start_holder_of_b();
	char buf[8];

	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 100), IPC_ETIMEDOUT,
		     "the holder is alive: no EOF yet");
	cr_assert_eq(t_kill(kid), -SIGKILL);
	long t0 = t_now_ms();
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 20000), IPC_ECLOSED);
	cr_assert_lt(t_now_ms() - t0, 15000, "noticed well before the limit");
	cr_assert_eq(ipc_conn_send(a, "x", 1, 0), IPC_ECLOSED);
}

Test(pipe, send_to_a_killed_peer_fails_eclosed)
{
	pid_t kid = start_holder_of_b();
	int rc = 0;

	cr_assert_eq(t_kill(kid), -SIGKILL);
	/* Sends may land until the death is noticed (at most a recheck
	 * period later), then fail; a full pipe would also end the loop. */
	long t0 = t_now_ms();
	while ((rc = ipc_conn_send(a, "x", 1, 1000)) == 0 &&
	       t_now_ms() - t0 < 20000)
		usleep(1000);
	cr_assert_eq(rc, IPC_ECLOSED);
}

static int hold_b_until_told(void *arg)
{
	volatile int *go = arg;
	ipc_conn_close(a);
	a = NULL;
	T_CHECK(t_wait_count(go, 1, 20000), 1);
	ipc_conn_close(b); /* the parent still holds its copy */
	b = NULL;
	return 0;
}

Test(pipe, an_end_is_open_while_any_process_holds_it)
{
	int *go = t_shared(sizeof(int));
	char buf[8];
	pid_t kid;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	kid = t_spawn(hold_b_until_told, go);
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 300), IPC_ETIMEDOUT,
		     "this process still holds b");
	cr_assert_eq(ipc_conn_send(b, "hi", 2, 0), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 2);
	ipc_conn_close(b);
	b = NULL;
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), IPC_ECLOSED);
}

static int hold_b_idle(void *arg)
{
	int *ready = arg;
	ipc_conn_close(a);
	a = NULL;
	__atomic_store_n(ready, 1, __ATOMIC_RELEASE);
	pause(); /* holds b, reads nothing, until killed */
	return 1;
}

Test(pipe, sender_blocked_on_a_full_pipe_wakes_when_the_receiver_dies)
{
	/* 504-byte messages take 512-byte records: eight fill the 4 KiB
	 * exactly. (A put that finds some room, but less than its record
	 * needs, busy-loops past its timeout in the queue today.) */
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 504 };
	int *ready = t_shared(sizeof(int));
	char msg[504] = { 0 };
	pid_t kid;
	int rc;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, &attr), 0);
	kid = t_spawn(hold_b_idle, ready);
	ipc_conn_close(b);
	b = NULL;
	cr_assert(t_wait_count(ready, 1, 10000));
	while ((rc = ipc_conn_send(a, msg, sizeof(msg), IPC_NOWAIT)) == 0)
		;
	cr_assert_eq(rc, IPC_EAGAIN, "full");
	cr_assert_eq(ipc_conn_send(a, msg, sizeof(msg), 50), IPC_ETIMEDOUT);
	cr_assert_eq(t_kill(kid), -SIGKILL);
	cr_assert_eq(ipc_conn_send(a, msg, sizeof(msg), 20000), IPC_ECLOSED);
}

/* In a child with every file descriptor in use, making a pipe must fail
 * with a code of the table, never a raw errno. */
static int pipe_without_descriptors(void *arg)
{
	struct rlimit rl = { 16, 16 };
	ipc_conn *c1, *c2;
	int rc;

	(void)arg;
	T_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, 1);
	while (open("/dev/null", O_RDONLY) >= 0)
		;
	T_CHECK(errno == EMFILE, 2);
	rc = ipc_pipe_new(&c1, &c2, true, NULL);
	T_CHECK(strcmp(ipc_err_name(rc), "IPC_EUNKNOWN") != 0, 3);
	T_CHECK(rc == IPC_EMFILE, 4);
	return 0;
}

Test(pipe, out_of_file_descriptors_is_emfile)
{
	cr_assert_eq(t_reap(t_spawn(pipe_without_descriptors, NULL), 10000), 0);
}

Test(pipe, timeouts_sizes_and_recv_alloc)
{
	ipc_queue_attr attr = { .capacity = 4096, .max_msg_size = 100 };
	char big[101] = { 0 }, buf[8];
	void *m;
	long t0;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, &attr), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 250), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 249, "waited the whole timeout");
	cr_assert_eq(ipc_conn_send(b, big, sizeof(big), 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_conn_send(b, big, 100, 0), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_conn_recv_alloc(a, &m, 0), 100, "it stayed");
	free(m);
	cr_assert_eq(ipc_conn_send(b, NULL, 0, 0), 0);
	cr_assert_eq(ipc_conn_recv_alloc(a, &m, 0), 0);
	cr_assert_not_null(m, "a 0-byte message still gets a buffer");
	free(m);
	cr_assert_eq(ipc_conn_recv_alloc(a, &m, 0), IPC_EAGAIN);
	cr_assert_null(m);
}

static int send_later(void *arg)
{
	(void)arg;
	ipc_conn_close(a);
	a = NULL;
	usleep(100000);
	T_CHECK(ipc_conn_send(b, "first", 5, 1000) == 0, 1);
	T_CHECK(ipc_conn_send(b, "second", 6, 1000) == 0, 2);
	return 0;
}

Test(pipe, poll_waits_without_losing_or_reordering_messages)
{
	char buf[16];
	pid_t kid;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	cr_assert_eq(ipc_conn_poll(a, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_conn_poll(a, 50), IPC_ETIMEDOUT);
	kid = t_spawn(send_later, NULL);
	cr_assert_eq(ipc_conn_poll(a, 20000), 0, "a message came");
	cr_assert_eq(ipc_conn_poll(a, 0), 0, "and is still there");
	cr_assert_eq(ipc_conn_recv(a, buf, 2, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "first", 5), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 10000), 6);
	cr_assert_eq(memcmp(buf, "second", 6), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
}

Test(pipe, bad_input_is_einval)
{
	char buf[4];
	void *m;

	cr_assert_eq(ipc_pipe_new(NULL, &b, true, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_pipe_new(&a, NULL, true, NULL), IPC_EINVAL);
	cr_assert_null(a);
	cr_assert_eq(ipc_pipe_new(&a, &b, true,
				  &(ipc_queue_attr){ .joinable = true }),
		     IPC_EINVAL);
	cr_assert_eq(
		ipc_pipe_new(&a, &b, true,
			     &(ipc_queue_attr){ .capacity = (size_t)1 << 31 }),
		IPC_EINVAL);
	cr_assert_null(a);
	cr_assert_null(b);
	cr_assert_eq(ipc_conn_send(NULL, "x", 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_recv(NULL, buf, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_recv_alloc(NULL, &m, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_poll(NULL, 0), IPC_EINVAL);
	cr_assert(!ipc_conn_readable(NULL) && !ipc_conn_writable(NULL));
	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	cr_assert_eq(ipc_conn_send(a, NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_recv(a, NULL, 4, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_recv_alloc(a, NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_conn_recv(a, buf, 4, -2), IPC_EINVAL);
	cr_assert_eq(ipc_conn_send(a, "x", 1, -2), IPC_EINVAL);
	ipc_conn_close(NULL);
}

Test(pipe, closing_both_ends_releases_every_descriptor)
{
	int before = open_fds();

	for (int i = 0; i < 20; i++) {
		cr_assert_eq(ipc_pipe_new(&a, &b, i % 2 == 0, NULL), 0);
		ipc_conn_close(a);
		ipc_conn_close(b);
		a = b = NULL;
	}
	cr_assert_eq(open_fds(), before);
}

/* ---- Named pipes -------------------------------------------------------- */

static char pname[128];

static int named_echo_once(void *arg)
{
	ipc_conn *mine;
	char buf[16];
	ssize_t n;
	(void)arg;
	T_CHECK(ipc_pipe_open(&mine, pname, 0, 1, true, NULL) == 0, 1);
	n = ipc_conn_recv(mine, buf, sizeof(buf), 20000);
	T_CHECK(n == 4, 2);
	T_CHECK(ipc_conn_send(mine, "pong", 4, 1000) == 0, 3);
	ipc_conn_close(mine); /* the parent sees end of file */
	return 0;
}

Test(pipe, named_pipe_between_processes_that_open_it_by_name)
{
	char buf[16];
	pid_t kid;

	t_name(pname, sizeof(pname), "pipe");
	cr_assert_eq(
		ipc_pipe_open(&a, pname, IPC_CREATE | IPC_EXCL, 0, true, NULL),
		0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 100), IPC_ETIMEDOUT,
		     "end 1 was never opened: not closed, just quiet");
	kid = t_spawn(named_echo_once, NULL);
	cr_assert_eq(ipc_conn_send(a, "ping", 4, 1000), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 20000), 4);
	cr_assert_eq(memcmp(buf, "pong", 4), 0);
	cr_assert_eq(t_reap(kid, 20000), 0);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 20000), IPC_ECLOSED);
	cr_assert_eq(ipc_pipe_unlink(pname), 0);
	cr_assert_eq(t_leaked_segments(), 0, "all three names removed");
	cr_assert_eq(ipc_pipe_unlink(pname), IPC_ENOENT);
}

static int named_holder(void *arg)
{
	ipc_conn *mine;
	int *ready = arg;
	T_CHECK(ipc_pipe_open(&mine, pname, 0, 1, false, NULL) == 0, 1);
	T_CHECK(ipc_conn_send(mine, "x", 1, 1000) == 0, 2);
	__atomic_store_n(ready, 1, __ATOMIC_RELEASE);
	pause();
	return 3;
}

Test(pipe, named_one_way_pipe_and_a_killed_peer)
{
	int *ready = t_shared(sizeof(int));
	char buf[4];
	pid_t kid;

	t_name(pname, sizeof(pname), "pipe1");
	cr_assert_eq(ipc_pipe_open(&a, pname, IPC_CREATE, 0, false, NULL), 0);
	cr_assert(ipc_conn_readable(a) && !ipc_conn_writable(a));
	kid = t_spawn(named_holder, ready);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 10000), 1);
	cr_assert_eq(t_kill(kid), -SIGKILL);
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 20000), IPC_ECLOSED);
	cr_assert_eq(ipc_pipe_unlink(pname), 0);
	cr_assert_eq(t_leaked_segments(), 0);
}

Test(pipe, named_pipe_bad_input)
{
	char longname[210];
	ipc_lock *lk;

	t_name(pname, sizeof(pname), "pipe2");
	cr_assert_eq(ipc_pipe_open(NULL, pname, IPC_CREATE, 0, true, NULL),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pipe_open(&a, pname, IPC_CREATE, 2, true, NULL),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pipe_open(&a, NULL, IPC_CREATE, 0, true, NULL),
		     IPC_EINVAL);
	cr_assert_eq(ipc_pipe_open(&a, "a/b", IPC_CREATE, 0, true, NULL),
		     IPC_EINVAL);
	memset(longname, 'n', 198);
	longname[198] = '\0';
	cr_assert_eq(ipc_pipe_open(&a, longname, IPC_CREATE, 0, true, NULL),
		     IPC_EINVAL, "no room for the queues' suffix");
	cr_assert_eq(ipc_pipe_open(&a, pname, 0, 0, true, NULL), IPC_ENOENT);
	cr_assert_null(a);
	cr_assert_eq(ipc_pipe_open(&a, pname, IPC_CREATE, 0, true, NULL), 0);
	cr_assert_eq(ipc_pipe_open(&b, pname, 0, 1, false, NULL), IPC_EINVAL,
		     "made duplex");
	cr_assert_eq(
		ipc_pipe_open(&b, pname, IPC_CREATE | IPC_EXCL, 1, true, NULL),
		IPC_EEXIST);
	cr_assert_eq(ipc_pipe_open(&b, pname, 0, 1, true, NULL), 0);
	cr_assert_eq(ipc_conn_send(b, "y", 1, 0), 0);
	cr_assert_eq(ipc_conn_recv(a, longname, 4, 0), 1);
	ipc_conn_close(b);
	b = NULL;
	cr_assert_eq(ipc_conn_recv(a, longname, 4, 0), IPC_ECLOSED);
	cr_assert_eq(ipc_pipe_unlink(pname), 0);
	cr_assert_eq(ipc_lock_open(&lk, pname, IPC_CREATE), 0);
	cr_assert_eq(ipc_pipe_open(&b, pname, 0, 1, true, NULL), IPC_EPROTO);
	ipc_lock_close(lk);
	ipc_unlink(pname);
}

static int send_when_parent_sleeps(void *arg)
{
	pid_t parent = getppid();
	(void)arg;
	ipc_conn_close(a);
	a = NULL;
	/* The parent is inside poll, waiting: now the lookahead catches. */
	T_CHECK(t_blocked_in_futex(parent, 20000), 1);
	T_CHECK(ipc_conn_send(b, "first", 5, 1000) == 0, 2);
	T_CHECK(ipc_conn_send(b, "second", 6, 1000) == 0, 3);
	return 0;
}

static int recv_after_fork(void *arg)
{
	char buf[16];
	(void)arg;
	/* The lookahead ("first") belongs to the parent: not ours. */
	ssize_t n = ipc_conn_recv(a, buf, sizeof(buf), 10000);
	T_CHECK(n == 6 && memcmp(buf, "second", 6) == 0, 1);
	return 0;
}

Test(pipe, a_polled_message_stays_with_the_process_that_polled)
{
	char buf[16];
	pid_t sender, kid;

	cr_assert_eq(ipc_pipe_new(&a, &b, true, NULL), 0);
	sender = t_spawn(send_when_parent_sleeps, NULL);
	cr_assert_eq(ipc_conn_poll(a, 20000), 0);
	cr_assert_eq(t_reap(sender, 20000), 0);
	kid = t_spawn(recv_after_fork, NULL);
	cr_assert_eq(t_reap(kid, 20000), 0, "the child got the next one");
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "first", 5), 0, "the parent keeps its own");
	cr_assert_eq(ipc_conn_recv(a, buf, sizeof(buf), 0), IPC_EAGAIN);
}
