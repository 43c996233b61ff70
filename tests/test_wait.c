/* SPDX-License-Identifier: MIT */
/*
 * test_wait.c — ipc_wait over events, processes (their sentinels) and
 * plain file descriptors, with real processes; timeouts, bad input, and
 * no helper thread or descriptor left behind.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

TestSuite(wait, .timeout = 30);

#define LONG_WAIT_MS 20000 /* a wait that must not time out */

/* Entries in a /proc/self directory: threads (task) or descriptors (fd). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static ipc_event *ev;

static int set_event(void *arg)
{
	(void)arg;
	return ipc_event_set(ev) == 0 ? 0 : 1;
}

Test(wait, bad_input_is_einval_and_waits_for_nothing)
{
	ipc_wait_item it[IPC_WAIT_MAX + 1];

	cr_assert_eq(ipc_event_new(&ev), 0);
	for (int i = 0; i <= IPC_WAIT_MAX; i++)
		it[i] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = ev };
	cr_assert_eq(ipc_wait(NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_wait(it, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_wait(it, IPC_WAIT_MAX + 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_wait(it, IPC_WAIT_MAX, 0), IPC_EAGAIN, "at the max");
	cr_assert_eq(ipc_wait(it, 1, -2), IPC_EINVAL, "bad timeout");
	it[1] = (ipc_wait_item){ .kind = 99, .event = ev };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL, "unknown kind");
	it[1] = (ipc_wait_item){ .kind = 0 };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL, "kind 0");
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = NULL };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL, "NULL object");
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_QUEUE, .queue = NULL };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL);
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_CONN, .conn = NULL };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL);
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_PROCESS, .process = NULL };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL);
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_FD,
				 .fd = -1,
				 .events = POLLIN };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL, "negative fd");
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_FD, .fd = 0, .events = 0 };
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL, "no events");
	/* Even with a ready item in the set, bad input waits for nothing. */
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_wait(it, 2, 0), IPC_EINVAL);
	cr_assert_not(it[0].ready);
	cr_assert_eq(ipc_process_sentinel(NULL), IPC_EINVAL);
	ipc_event_close(ev);
}

/* Nothing ready: a try is IPC_EAGAIN, a timeout IPC_ETIMEDOUT after the
 * time asked, with words and fds mixed (the helper-thread case); no thread
 * and no descriptor is left behind. */
Test(wait, nothing_ready_times_out_and_leaves_no_thread_or_fd)
{
	int p[2], threads, fds;
	ipc_wait_item it[2];
	long t0;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(pipe(p), 0);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = ev };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_FD,
				 .fd = p[0],
				 .events = POLLIN };
	threads = count_entries("/proc/self/task");
	fds = count_entries("/proc/self/fd");
	cr_assert_eq(ipc_wait(it, 2, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_wait(it, 2, 80), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 79);
	cr_assert_not(it[0].ready);
	cr_assert_not(it[1].ready);
	t0 = t_now_ms();
	cr_assert_eq(ipc_wait(it, 1, 60), IPC_ETIMEDOUT, "words only");
	cr_assert_geq(t_now_ms() - t0, 59);
	t0 = t_now_ms();
	cr_assert_eq(ipc_wait(&it[1], 1, 60), IPC_ETIMEDOUT, "fds only");
	cr_assert_geq(t_now_ms() - t0, 59);
	cr_assert_eq(count_entries("/proc/self/task"), threads);
	cr_assert_eq(count_entries("/proc/self/fd"), fds);
	close(p[0]);
	close(p[1]);
	ipc_event_close(ev);
}

Test(wait, event_set_by_another_process_wakes_the_waiter)
{
	int p[2];
	ipc_wait_item it[2];
	pid_t kid;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(pipe(p), 0);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_FD,
				 .fd = p[0],
				 .events = POLLIN };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = ev };
	kid = t_spawn(set_event, NULL);
	cr_assert_eq(ipc_wait(it, 2, 20000), 1);
	cr_assert_not(it[0].ready);
	cr_assert(it[1].ready);
	cr_assert_eq(it[1].revents, POLLIN);
	cr_assert_eq(t_reap(kid, 10000), 0);
	cr_assert_eq(ipc_wait(&it[1], 1, IPC_NOWAIT), 1, "still set");
	close(p[0]);
	close(p[1]);
	ipc_event_close(ev);
}

/* Set and cleared again while the waiter sleeps: ready, as
 * ipc_event_wait returns 0 then. The waiter is a child asleep in
 * futex_waitv before the parent sets and clears. */
static int wait_event_only(void *arg)
{
	ipc_wait_item it = { .kind = IPC_WAIT_EVENT, .event = ev };

	(void)arg;
	return ipc_wait(&it, 1, 20000) == 1 && it.ready ? 0 : 1;
}

Test(wait, event_set_and_cleared_during_the_wait_counts_as_ready)
{
	pid_t kid;

	cr_assert_eq(ipc_event_new(&ev), 0);
	kid = t_spawn(wait_event_only, NULL);
	cr_assert(t_blocked_in_syscall(kid, SYS_futex_waitv, 10000));
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_event_clear(ev), 0);
	cr_assert_eq(t_reap(kid, 10000), 0);
	ipc_event_close(ev);
}

static int exit_when_set(void *arg)
{
	(void)arg;
	return ipc_event_wait(ev, 20000) == 0 ? 3 : 1;
}

/* A child's exit wakes a waiter on its sentinel, mixed with an event that
 * stays clear (words and fds: the helper thread). */
Test(wait, child_exit_wakes_a_waiter_on_its_sentinel)
{
	ipc_event *never;
	ipc_process *p;
	ipc_wait_item it[2];
	int code, fd;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(ipc_event_new(&never), 0);
	cr_assert_eq(ipc_process_start(&p, exit_when_set, NULL, NULL), 0);
	fd = ipc_process_sentinel(p);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ipc_process_sentinel(p), fd, "the same descriptor");
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = never };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_PROCESS, .process = p };
	cr_assert_eq(ipc_wait(it, 2, IPC_NOWAIT), IPC_EAGAIN, "running");
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_wait(it, 2, 20000), 1);
	cr_assert(it[1].ready);
	cr_assert_not(it[0].ready);
	cr_assert_eq(ipc_process_join(p, IPC_NOWAIT), 0, "join won't block");
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 3);
	cr_assert_eq(ipc_wait(&it[1], 1, IPC_NOWAIT), 1, "stays ready");
	ipc_process_free(p);
	ipc_event_close(never);
	ipc_event_close(ev);
}

static int sock_fd;

static int write_a_byte(void *arg)
{
	(void)arg;
	if (ipc_event_wait(ev, 20000) != 0)
		return 1;
	return write(sock_fd, "x", 1) == 1 ? 0 : 2;
}

/* A socket joins the set: a peer process's write makes it ready. */
Test(wait, socket_fd_becomes_ready_when_the_peer_writes)
{
	int sv[2];
	ipc_event *never;
	ipc_wait_item it[2];
	pid_t kid;
	char c;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(ipc_event_new(&never), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sock_fd = sv[1];
	kid = t_spawn(write_a_byte, NULL);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_FD,
				 .fd = sv[0],
				 .events = POLLIN };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = never };
	cr_assert_eq(ipc_wait(it, 2, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_wait(it, 2, 20000), 1);
	cr_assert(it[0].ready);
	cr_assert(it[0].revents & POLLIN);
	cr_assert_eq(read(sv[0], &c, 1), 1);
	cr_assert_eq(c, 'x');
	cr_assert_eq(t_reap(kid, 10000), 0);
	/* POLLOUT is reported as asked for. */
	it[0].events = POLLOUT;
	cr_assert_eq(ipc_wait(it, 1, IPC_NOWAIT), 1);
	cr_assert(it[0].revents & POLLOUT);
	close(sv[0]);
	close(sv[1]);
	ipc_event_close(never);
	ipc_event_close(ev);
}

/* Several ready at once: the count, and each item's flag. */
Test(wait, counts_every_ready_item)
{
	ipc_event *a, *b, *c;
	ipc_wait_item it[3];

	cr_assert_eq(ipc_event_new(&a), 0);
	cr_assert_eq(ipc_event_new(&b), 0);
	cr_assert_eq(ipc_event_new(&c), 0);
	cr_assert_eq(ipc_event_set(a), 0);
	cr_assert_eq(ipc_event_set(c), 0);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = a };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = b };
	it[2] = (ipc_wait_item){ .kind = IPC_WAIT_EVENT, .event = c };
	cr_assert_eq(ipc_wait(it, 3, 1000), 2);
	cr_assert(it[0].ready);
	cr_assert_not(it[1].ready);
	cr_assert(it[2].ready);
	ipc_event_close(a);
	ipc_event_close(b);
	ipc_event_close(c);
}

/* ---- queues and connections (through the queue's watch op) ------------ */

static ipc_queue *wq;

static int put_one_when_set(void *arg)
{
	(void)arg;
	if (ipc_event_wait(ev, 20000) != 0)
		return 1;
	return ipc_queue_put(wq, "job", 3, 10000) == 0 ? 0 : 2;
}

/* A producer process's put wakes a waiter on the queue (and a sentinel
 * and a pipe fd beside it); the message is still queued afterwards. */
static void producer_put_wakes(const ipc_queue_attr *attr, const char *qname)
{
	ipc_process *p;
	ipc_wait_item it[2];
	char buf[64]; /* an mqueue receive wants room for its largest */

	cr_assert_eq(ipc_event_new(&ev), 0);
	if (attr != NULL)
		cr_assert_eq(ipc_queue_open(&wq, qname, IPC_CREATE, attr), 0);
	else
		cr_assert_eq(ipc_queue_new(&wq, 0), 0);
	cr_assert_eq(ipc_process_start(&p, put_one_when_set, NULL, NULL), 0);
	it[0] = (ipc_wait_item){ .kind = IPC_WAIT_QUEUE, .queue = wq };
	it[1] = (ipc_wait_item){ .kind = IPC_WAIT_PROCESS, .process = p };
	cr_assert_eq(ipc_wait(it, 2, IPC_NOWAIT), IPC_EAGAIN, "empty");
	cr_assert_eq(ipc_event_set(ev), 0);
	/* The put comes before the producer's end: a round may see the end
	 * first, the next one the message. */
	while (!it[0].ready)
		cr_assert_geq(ipc_wait(it, 2, 20000), 1);
	cr_assert_eq(ipc_queue_get(wq, buf, sizeof(buf), IPC_NOWAIT), 3,
		     "not taken by the wait");
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	ipc_process_free(p);
	ipc_queue_close(wq);
	ipc_event_close(ev);
}

Test(wait, producer_put_wakes_a_waiter_on_a_queue)
{
	producer_put_wakes(NULL, NULL);
}

Test(wait, producer_put_wakes_a_waiter_on_an_mqueue_queue)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 4,
				.max_msg_size = 64 };
	char qname[128];

	t_name(qname, sizeof(qname), "wait-mq");
	producer_put_wakes(&attr, qname);
	ipc_unlink(qname);
}

Test(wait, shut_down_queue_is_ready)
{
	ipc_wait_item it;

	cr_assert_eq(ipc_queue_new(&wq, 0), 0);
	it = (ipc_wait_item){ .kind = IPC_WAIT_QUEUE, .queue = wq };
	cr_assert_eq(ipc_wait(&it, 1, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_shutdown(wq), 0);
	cr_assert_eq(ipc_wait(&it, 1, 1000), 1, "a get returns ECLOSED");
	ipc_queue_close(wq);
}

static ipc_conn *ca, *cb;

static int send_when_set(void *arg)
{
	(void)arg;
	ipc_conn_close(ca);
	if (ipc_event_wait(ev, 20000) != 0)
		return 1;
	return ipc_conn_send(cb, "hi", 2, 10000) == 0 ? 0 : 2;
}

static int die_when_set(void *arg)
{
	(void)arg;
	ipc_conn_close(ca);
	if (ipc_event_wait(ev, 20000) != 0)
		return 1;
	kill(getpid(), SIGKILL);
	return 2;
}

Test(wait, connection_message_from_a_process_wakes_the_waiter)
{
	ipc_wait_item it;
	char buf[8];
	pid_t kid;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(ipc_pipe_new(&ca, &cb, true, NULL), 0);
	kid = t_spawn(send_when_set, NULL);
	it = (ipc_wait_item){ .kind = IPC_WAIT_CONN, .conn = ca };
	cr_assert_eq(ipc_wait(&it, 1, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_wait(&it, 1, 20000), 1);
	cr_assert_eq(ipc_conn_recv(ca, buf, sizeof(buf), IPC_NOWAIT), 2);
	cr_assert_eq(t_reap(kid, 10000), 0);
	ipc_conn_close(ca);
	ipc_conn_close(cb);
	ipc_event_close(ev);
}

/* The only holder of the peer end is killed while we wait: end of file
 * is ready. */
Test(wait, dead_pipe_peer_makes_the_connection_ready_with_eof)
{
	ipc_wait_item it;
	ipc_conn *ro, *wo;
	char buf[8];
	pid_t kid;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(ipc_pipe_new(&ca, &cb, true, NULL), 0);
	kid = t_spawn(die_when_set, NULL);
	ipc_conn_close(cb); /* now only the child holds it */
	it = (ipc_wait_item){ .kind = IPC_WAIT_CONN, .conn = ca };
	cr_assert_eq(ipc_wait(&it, 1, IPC_NOWAIT), IPC_EAGAIN, "held");
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_wait(&it, 1, 20000), 1);
	cr_assert_eq(ipc_conn_recv(ca, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_ECLOSED);
	cr_assert_eq(t_reap(kid, 10000), -SIGKILL);
	ipc_conn_close(ca);
	ipc_event_close(ev);
	/* A send-only end cannot be waited on. */
	cr_assert_eq(ipc_pipe_new(&ro, &wo, false, NULL), 0);
	it = (ipc_wait_item){ .kind = IPC_WAIT_CONN, .conn = wo };
	cr_assert_eq(ipc_wait(&it, 1, IPC_NOWAIT), IPC_EPERM);
	ipc_conn_close(ro);
	ipc_conn_close(wo);
}

/* ---- crash and sharing behaviour -------------------------------------- */

static int watch_queue_forever(void *arg)
{
	ipc_wait_item it = { .kind = IPC_WAIT_QUEUE, .queue = wq };

	(void)arg;
	return ipc_wait(&it, 1, LONG_WAIT_MS) == 1 ? 0 : 1;
}

static int get_one(void *arg)
{
	char buf[8];

	(void)arg;
	return ipc_queue_get(wq, buf, sizeof(buf), LONG_WAIT_MS) == 3 ? 0 : 1;
}

/* A waiter killed inside ipc_wait holds nothing: a getter blocked later
 * is still woken by the next put. */
Test(wait, waiter_killed_inside_ipc_wait_changes_nothing)
{
	pid_t w, g;

	cr_assert_eq(ipc_queue_new(&wq, 0), 0);
	w = t_spawn(watch_queue_forever, NULL);
	cr_assert(t_blocked_in_syscall(w, SYS_futex_waitv, 10000));
	cr_assert_eq(t_kill(w), -SIGKILL);
	g = t_spawn(get_one, NULL);
	cr_assert(t_blocked_in_futex(g, 10000));
	cr_assert_eq(ipc_queue_put(wq, "job", 3, IPC_NOWAIT), 0);
	cr_assert_eq(t_reap(g, 10000), 0);
	cr_assert_eq(ipc_queue_qsize(wq), 0);
	ipc_queue_close(wq);
}

/* Two processes watching a queue never take the wake-up meant for a
 * getter blocked on it: one put reaches the getter. (A watcher woken
 * after the getter took the message waits on: nothing is taken, so it
 * may find nothing; the test ends it.) */
Test(wait, watchers_never_take_a_blocked_getters_wake_up)
{
	pid_t w[2], g;

	/* Sleepers re-check only hourly (in the crash-point test build):
	 * a missed wake-up hangs them, and the test fails. */
	setenv("IPC_TEST_RECHECK_MS", "3600000", 1);
	cr_assert_eq(ipc_queue_new(&wq, 0), 0);
	for (int i = 0; i < 2; i++) {
		w[i] = t_spawn(watch_queue_forever, NULL);
		cr_assert(t_blocked_in_syscall(w[i], SYS_futex_waitv, 10000));
	}
	g = t_spawn(get_one, NULL);
	cr_assert(t_blocked_in_futex(g, 10000));
	cr_assert_eq(ipc_queue_put(wq, "job", 3, IPC_NOWAIT), 0);
	cr_assert_eq(t_reap(g, 10000), 0, "the getter got it");
	cr_assert_eq(ipc_queue_qsize(wq), 0);
	for (int i = 0; i < 2; i++)
		t_kill(w[i]);
	ipc_queue_close(wq);
}
