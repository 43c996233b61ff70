/* SPDX-License-Identifier: MIT */
/*
 * test_net.c — remote queues over tcp loopback: every queue operation
 * through a connected handle, authentication, timeouts with the server
 * gone, reconnection after a restart, leases of a killed remote consumer,
 * and a server that survives garbage.
 *
 * nanomsg is not fork-safe: a test that needs a remote client in another
 * process forks it before this process makes any nanomsg socket, and the
 * child connects only after it is told to.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static const char key[] = "correct horse battery staple";
static const char other_key[] = "correct horse battery stapler";

static ipc_server *srv;
static ipc_queue *local, *remote;
static pid_t serve_pid; /* an ipc-serve a failed test left running */
/* What a test's ipc-serve uses, removed by teardown whether or not the
 * test got to its own cleanup (a failed assertion ends the test early). */
static char serve_qname[64], serve_keyfile[128], serve_sock[160];
static char url[64];

static void setup(void)
{
	srv = NULL;
	local = remote = NULL;
}

static void teardown(void)
{
	ipc_queue_close(remote);
	ipc_server_stop(srv);
	ipc_queue_close(local);
	if (serve_pid > 0)
		t_kill(serve_pid);
	serve_pid = 0;
	if (serve_qname[0] != '\0')
		ipc_unlink(serve_qname);
	if (serve_keyfile[0] != '\0')
		unlink(serve_keyfile);
	if (serve_sock[0] != '\0')
		unlink(serve_sock);
	serve_qname[0] = serve_keyfile[0] = serve_sock[0] = '\0';
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(net, .init = setup, .fini = teardown, .timeout = 90);

static volatile int auth_failures;

static void count_auth_failures(void *arg, const char *msg)
{
	(void)arg;
	if (strstr(msg, "authentication failure") != NULL)
		__atomic_add_fetch(&auth_failures, 1, __ATOMIC_SEQ_CST);
}

static ipc_net_attr keyed(const char *k)
{
	return (ipc_net_attr){ .authkey = k,
			       .authkey_len = k ? strlen(k) : 0,
			       .timeout_ms = 5000,
			       .lease_ms = 600 };
}

/* Start a server on a free loopback port (other tests run in parallel). */
static int serve(ipc_server **s, const ipc_net_attr *a)
{
	return t_net_serve(s, a, url, sizeof(url));
}

static void serve_queue(bool joinable, const ipc_net_attr *a)
{
	cr_assert_eq(joinable ? ipc_joinable_queue_new(&local, 0)
			      : ipc_queue_new(&local, 0),
		     0);
	cr_assert_eq(serve(&srv, a), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "jobs", local), 0);
}

Test(net, put_get_round_trip_keyless_and_keyed)
{
	for (int k = 0; k < 2; k++) {
		ipc_net_attr a = keyed(k ? key : NULL);
		char buf[64];
		void *m = NULL;

		serve_queue(false, &a);
		cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
		cr_assert(ipc_queue_empty(remote));
		cr_assert_eq(ipc_queue_put(remote, "one", 3, IPC_NOWAIT), 0);
		cr_assert_eq(ipc_queue_put(remote, "", 0, 1000), 0);
		cr_assert_eq(ipc_queue_put(local, "three", 5, 0), 0);
		cr_assert_eq(ipc_queue_qsize(remote), 3);
		cr_assert_not(ipc_queue_empty(remote));
		cr_assert_not(ipc_queue_full(remote));
		cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), 0), 3);
		cr_assert_eq(memcmp(buf, "one", 3), 0);
		cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 0);
		cr_assert_eq(ipc_queue_get_alloc(remote, &m, 1000), 5);
		cr_assert_eq(memcmp(m, "three", 5), 0);
		free(m);
		cr_assert_eq(ipc_queue_qsize(remote), 0);
		ipc_queue_close(remote);
		ipc_server_stop(srv);
		ipc_queue_close(local);
		remote = NULL;
		srv = NULL;
		local = NULL;
	}
}

Test(net, get_times_out_and_nowait_is_eagain)
{
	ipc_net_attr a = keyed(key);
	char buf[8];
	long t0;

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 300),
		     IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 250, "waited for the timeout");
	/* Longer than one server-side slice: the client repeats slices. */
	t0 = t_now_ms();
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1500),
		     IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 1400);
}

Test(net, bad_arguments_and_limits_keep_local_errors)
{
	ipc_net_attr a = keyed(key);
	ipc_queue_attr qa = { .capacity = 4096,
			      .max_msg_size = 100,
			      .maxsize = 2 };
	char buf[200] = { 0 };

	cr_assert_eq(ipc_queue_open(&local, NULL, 0, &qa), 0);
	cr_assert_eq(serve(&srv, &a), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "small", local), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "small", local), IPC_EEXIST);
	cr_assert_eq(ipc_server_add_queue(srv, "bad name", local), IPC_EINVAL);
	cr_assert_eq(ipc_queue_connect(&remote, url, "nosuch", &a), IPC_ENOENT);
	cr_assert_null(remote);
	cr_assert_eq(ipc_queue_connect(&remote, url, "small", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, buf, 101, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_put(remote, NULL, 1, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_put(remote, buf, 100, 0), 0);
	cr_assert_eq(ipc_queue_put(remote, buf, 10, 0), 0);
	cr_assert(ipc_queue_full(remote));
	cr_assert_eq(ipc_queue_put(remote, buf, 10, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_put(remote, buf, 10, 300), IPC_ETIMEDOUT);
	/* Too small a buffer: IPC_EMSGSIZE and the message stays queued. */
	cr_assert_eq(ipc_queue_get(remote, buf, 50, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_qsize(remote), 2);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 0), 100);
	cr_assert_eq(ipc_queue_task_done(remote), IPC_EINVAL, "not joinable");
	cr_assert_eq(ipc_queue_join(remote, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_unfinished(remote), IPC_EINVAL);
}

Test(net, put_many_stores_every_message_once_in_order)
{
	enum { N = 5000 }; /* more than one request's worth */
	static struct iovec iov[N];
	static char msgs[N][8];
	ipc_net_attr a = keyed(key);
	char buf[16];

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	for (int i = 0; i < N; i++) {
		iov[i].iov_base = msgs[i];
		iov[i].iov_len =
			(size_t)snprintf(msgs[i], sizeof(msgs[i]), "%d", i) *
			(i % 7 != 3); /* some empty */
	}
	cr_assert_eq(ipc_queue_put_many(remote, iov, N, 10000), N);
	cr_assert_eq(ipc_queue_qsize(local), N);
	for (int i = 0; i < N; i++) {
		ssize_t n = ipc_queue_get(local, buf, sizeof(buf), 0);
		cr_assert_eq(n, (ssize_t)iov[i].iov_len, "message %d", i);
		cr_assert_eq(memcmp(buf, msgs[i], (size_t)n), 0);
	}
	cr_assert_eq(ipc_queue_qsize(local), 0, "each stored once");
}

Test(net, put_many_stops_when_full_and_keeps_local_errors)
{
	ipc_net_attr a = keyed(key);
	ipc_queue_attr qa = { .max_msg_size = 100, .maxsize = 3 };
	char big[101] = { 0 }, buf[8], abc[] = "abcde";
	struct iovec iov[5], bad[2] = { { abc, 1 }, { big, sizeof(big) } };

	for (int i = 0; i < 5; i++)
		iov[i] = (struct iovec){ abc + i, 1 };

	cr_assert_eq(ipc_queue_open(&local, NULL, 0, &qa), 0);
	cr_assert_eq(serve(&srv, &a), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "jobs", local), 0);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put_many(remote, bad, 2, 0), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_put_many(remote, iov, 0, 0), IPC_EINVAL);
	cr_assert_eq(ipc_queue_qsize(local), 0, "refused whole");
	cr_assert_eq(ipc_queue_put_many(remote, iov, 5, IPC_NOWAIT), 3);
	cr_assert_eq(ipc_queue_put_many(remote, iov + 3, 2, IPC_NOWAIT),
		     IPC_EAGAIN);
	cr_assert_eq(ipc_queue_put_many(remote, iov + 3, 2, 300),
		     IPC_ETIMEDOUT);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), 0), 1);
		cr_assert_eq(buf[0], 'a' + i);
	}
	cr_assert_eq(ipc_queue_shutdown(local), 0);
	cr_assert_eq(ipc_queue_put_many(remote, iov, 5, 1000), IPC_ECLOSED);
}

static void iov_bufs(struct iovec *iov, char (*bufs)[16], int n, size_t cap)
{
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ bufs[i], cap };
}

Test(net, get_many_takes_what_is_queued_and_keeps_local_errors)
{
	ipc_net_attr a = keyed(key);
	char bufs[100][16];
	struct iovec iov[100];

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	iov_bufs(iov, bufs, 4, 16);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 4, IPC_NOWAIT),
		     IPC_EAGAIN);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 4, 200), IPC_ETIMEDOUT);
	for (int i = 0; i < 10; i++) {
		char m[16];
		int len = snprintf(m, sizeof(m), "msg%d", i * 11);
		cr_assert_eq(ipc_queue_put(local, m, (size_t)len, 0), 0);
	}
	cr_assert_eq(ipc_queue_get_many(remote, iov, 4, 1000), 4);
	cr_assert_eq(iov[0].iov_len, 4);
	cr_assert_eq(memcmp(bufs[0], "msg0", 4), 0);
	cr_assert_eq(iov[3].iov_len, 5);
	cr_assert_eq(memcmp(bufs[3], "msg33", 5), 0);
	iov_bufs(iov, bufs, 100, 16);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 100, 1000), 6,
		     "only what is queued");
	cr_assert_eq(memcmp(bufs[5], "msg99", 5), 0);
	cr_assert_eq(ipc_queue_qsize(local), 0);
	/* A message that does not fit its buffer stays queued. */
	cr_assert_eq(ipc_queue_put(local, "ab", 2, 0), 0);
	cr_assert_eq(ipc_queue_put(local, "0123456789", 10, 0), 0);
	iov_bufs(iov, bufs, 2, 4);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 2, 1000), 1);
	cr_assert_eq(iov[0].iov_len, 2);
	iov_bufs(iov, bufs, 2, 4);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 2, 1000), IPC_EMSGSIZE);
	cr_assert_eq(ipc_queue_qsize(local), 1);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 0, 0), IPC_EINVAL);
	iov_bufs(iov, bufs, 1, 16);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 1, 0), 1);
	cr_assert_eq(iov[0].iov_len, 10);
	cr_assert_eq(ipc_queue_shutdown(local), 0);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 1, 1000), IPC_ECLOSED);
}

Test(net, get_many_on_a_joinable_queue_gets_one_task_each)
{
	ipc_net_attr a = keyed(key);
	char bufs[8][16];
	struct iovec iov[8];

	serve_queue(true, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_queue_put(local, "t", 1, 0), 0);
	iov_bufs(iov, bufs, 8, 16);
	cr_assert_eq(ipc_queue_get_many(remote, iov, 8, 1000), 3);
	cr_assert_eq(ipc_queue_unfinished(local), 3);
	cr_assert_eq(ipc_queue_join(local, 0), IPC_EAGAIN);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_task_done(remote), IPC_EINVAL);
	cr_assert_eq(ipc_queue_join(local, 1000), 0);
}

Test(net, shutdown_reaches_local_and_remote)
{
	ipc_net_attr a = keyed(NULL);
	char buf[8];

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, "x", 1, 0), 0);
	cr_assert_eq(ipc_queue_shutdown(remote), 0);
	cr_assert_eq(ipc_queue_put(local, "y", 1, 0), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_put(remote, "y", 1, 0), IPC_ECLOSED);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 1);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000),
		     IPC_ECLOSED);
}

struct blocked {
	ipc_queue *q;
	ssize_t rc;
	char buf[16];
	volatile int done;
};

static void *blocked_get(void *arg)
{
	struct blocked *b = arg;

	b->rc = ipc_queue_get(b->q, b->buf, sizeof(b->buf), 20000);
	b->done = 1;
	return NULL;
}

Test(net, remote_get_wakes_on_put_and_does_not_stall_other_clients)
{
	ipc_net_attr a = keyed(key);
	ipc_queue *other = NULL, *local2 = NULL;
	struct blocked b = { 0 };
	pthread_t t;
	char buf[16];

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_new(&local2, 0), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "other", local2), 0);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_connect(&other, url, "other", &a), 0);
	b.q = remote;
	cr_assert_eq(pthread_create(&t, NULL, blocked_get, &b), 0);
	/* While that client waits on the server, another one is served. */
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(ipc_queue_put(other, "ping", 4, 1000), 0);
		cr_assert_eq(ipc_queue_get(other, buf, sizeof(buf), 1000), 4);
	}
	cr_assert_eq(b.done, 0, "the blocked get is still waiting");
	cr_assert_eq(ipc_queue_put(local, "wake", 4, 0), 0);
	pthread_join(t, NULL);
	cr_assert_eq(b.rc, 4);
	cr_assert_eq(memcmp(b.buf, "wake", 4), 0);
	ipc_queue_close(other);
	ipc_server_stop(srv);
	srv = NULL;
	ipc_queue_close(local2);
}

Test(net, joinable_task_done_and_join_remote)
{
	ipc_net_attr a = keyed(key);
	char buf[8];

	serve_queue(true, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, "t1", 2, 0), 0);
	cr_assert_eq(ipc_queue_put(remote, "t2", 2, 0), 0);
	cr_assert_eq(ipc_queue_unfinished(remote), 2);
	cr_assert_eq(ipc_queue_join(remote, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_queue_join(remote, 300), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 2);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 2);
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_unfinished(local), 1);
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_task_done(remote), IPC_EINVAL,
		     "more task_done than gets");
	cr_assert_eq(ipc_queue_join(remote, 1000), 0);
	cr_assert_eq(ipc_queue_join(local, 0), 0);
}

/* A joinable queue served with a key and one task "t1" taken by a remote
 * consumer. */
static void remote_holds_one_task(void)
{
	ipc_net_attr a = keyed(key);
	char buf[8];

	serve_queue(true, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(local, "t1", 2, 0), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 2);
	cr_assert_eq(ipc_queue_qsize(local), 0);
}

/* The task "t1" comes back to the local queue; finishing it ends join. */
static void local_redoes_requeued_task(void)
{
	char buf[8];

	cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), 20000), 2,
		     "the task came back");
	cr_assert_eq(memcmp(buf, "t1", 2), 0);
	cr_assert_eq(ipc_queue_task_done(local), 0);
	cr_assert_eq(ipc_queue_join(local, 20000), 0);
}

Test(net, closing_a_remote_consumer_requeues_its_tasks)
{
	remote_holds_one_task();
	ipc_queue_close(remote);
	remote = NULL;
	local_redoes_requeued_task();
}

/* Run tests/net_peer in a fresh process (see net_peer.c for why) with its
 * stdout on *out. */
static pid_t spawn_peer(int *out, const char *mode, const char *k)
{
	return t_net_peer(out, mode, url, "jobs", k, NULL);
}

/* Poll until q holds at least want messages, at most timeout_ms. */
static bool t_wait_count_long(ipc_queue *q, long want, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;

	while (ipc_queue_qsize(q) < want) {
		if (t_now_ms() > end)
			return false;
		usleep(2000);
	}
	return true;
}

Test(net, killed_remote_consumer_task_is_requeued_and_join_returns)
{
	ipc_net_attr a = keyed(key);
	char buf[64];
	pid_t pid;
	int fd;

	serve_queue(true, &a);
	cr_assert_eq(ipc_queue_put(local, "t1", 2, 0), 0);
	pid = spawn_peer(&fd, "hold", key);
	cr_assert_gt(pid, 0);
	cr_assert(t_read_line(fd, buf, sizeof(buf), 20000),
		  "the remote consumer took the task");
	cr_assert_str_eq(buf, "got 2");
	cr_assert_eq(ipc_queue_qsize(local), 0);
	cr_assert_eq(ipc_queue_unfinished(local), 1);
	cr_assert_eq(t_kill(pid), -SIGKILL);
	close(fd);
	/* Its lease (600 ms) runs out; the server requeues the task. */
	local_redoes_requeued_task();
}

Test(net, idle_remote_consumer_keeps_its_lease)
{
	char buf[8];

	remote_holds_one_task();
	/* Three leases of silence from the caller: the handle's own
	 * heartbeat keeps the task ours, so nothing is requeued. */
	cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), 1800),
		     IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_unfinished(local), 1);
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_join(local, 1000), 0);
}

Test(net, wrong_key_is_eauth_and_key_mismatch_too)
{
	ipc_net_attr a = keyed(key), wrong = keyed(other_key),
		     none = keyed(NULL);
	ipc_server *open_srv = NULL;
	char open_url[64];

	a.log = count_auth_failures;
	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &wrong),
		     IPC_EAUTH);
	cr_assert_null(remote);
	cr_assert(t_wait_count(&auth_failures, 1, 10000),
		  "the server logged the failure");
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &none), IPC_EAUTH);
	/* A keyed client refuses a server that cannot prove the key. */
	memcpy(open_url, url, sizeof(url));
	cr_assert_eq(serve(&open_srv, &none), 0);
	cr_assert_eq(ipc_server_add_queue(open_srv, "jobs", local), 0);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), IPC_EAUTH);
	ipc_server_stop(open_srv);
	/* The right key still works on the first server. */
	cr_assert_eq(ipc_queue_connect(&remote, open_url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, "ok", 2, 0), 0);
	cr_assert_eq(ipc_queue_qsize(local), 1);
}

Test(net, keyless_server_refuses_non_loopback)
{
	ipc_net_attr none = keyed(NULL);

	cr_assert_eq(ipc_server_start(&srv, "tcp://10.255.255.1:5555", &none),
		     IPC_EPERM);
	cr_assert_null(srv);
	cr_assert_eq(ipc_server_start(&srv, "tcp://*:5555", &none), IPC_EPERM);
	cr_assert_eq(ipc_server_start(&srv, NULL, &none), IPC_EINVAL);
	cr_assert_eq(ipc_server_start(NULL, "ipc:///tmp/x", &none), IPC_EINVAL);
	cr_assert_eq(ipc_queue_connect(&remote, NULL, "jobs", &none),
		     IPC_EINVAL);
	cr_assert_eq(ipc_queue_connect(&remote, "tcp://127.0.0.1:1", "", &none),
		     IPC_EINVAL);
}

Test(net, server_down_fails_within_the_timeout)
{
	ipc_net_attr a = keyed(key);
	char buf[8];
	long t0;
	int rc;

	a.timeout_ms = 700;
	/* Nothing listens at this port (bound and stopped just now). */
	serve_queue(false, &a);
	ipc_server_stop(srv);
	srv = NULL;
	t0 = t_now_ms();
	rc = ipc_queue_connect(&remote, url, "jobs", &a);
	cr_assert(rc == IPC_ECONNREFUSED || rc == IPC_ETIMEDOUT, "rc %d", rc);
	cr_assert_lt(t_now_ms() - t0, 700 + 2000, "bounded by the timeout");

	/* A connected handle whose server goes away. */
	cr_assert_eq(serve(&srv, &a), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "jobs", local), 0);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	ipc_server_stop(srv);
	srv = NULL;
	t0 = t_now_ms();
	rc = ipc_queue_get(remote, buf, sizeof(buf), 400);
	cr_assert(rc == IPC_ECONNREFUSED || rc == IPC_ETIMEDOUT, "rc %d", rc);
	cr_assert_lt(t_now_ms() - t0, 400 + 2000);
	t0 = t_now_ms();
	rc = (int)ipc_queue_qsize(remote);
	cr_assert(rc == IPC_ECONNREFUSED || rc == IPC_ETIMEDOUT, "rc %d", rc);
	cr_assert_lt(t_now_ms() - t0, 700 + 2000);
}

Test(net, client_reconnects_after_server_restart)
{
	ipc_net_attr a = keyed(key);
	char buf[8];

	serve_queue(true, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, "a", 1, 1000), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 1);
	ipc_server_stop(srv); /* requeues the task "a" */
	srv = NULL;
	cr_assert_eq(ipc_server_start(&srv, url, &a), 0);
	cr_assert_eq(ipc_server_add_queue(srv, "jobs", local), 0);
	cr_assert_eq(ipc_queue_put(remote, "b", 1, 10000), 0,
		     "the same handle works again");
	cr_assert_eq(ipc_queue_qsize(local), 2, "a requeued, b put once");
	/* task_done for the task of the lost session: accepted, no effect. */
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_unfinished(local), 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 1);
		cr_assert_eq(ipc_queue_task_done(remote), 0);
	}
	cr_assert_eq(ipc_queue_join(local, 1000), 0);
}

/* Raw bytes thrown at the server from a plain nanomsg REQ socket. */
static void send_raw(int s, const void *buf, size_t len)
{
	int ms = 300;
	void *reply = NULL;

	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &ms, sizeof(ms));
	cr_assert_geq(nn_send(s, buf, len, 0), 0);
	if (nn_recv(s, &reply, NN_MSG, 0) >= 0)
		nn_freemsg(reply);
}

Test(net, garbage_frames_leave_the_server_serving_others)
{
	ipc_net_attr a = keyed(key);
	uint8_t frame[64] = { 0x49, 0x50, 0x43, 0x4e, 1, 4 };
	char junk[1000];
	char buf[8];
	int s;

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	s = nn_socket(AF_SP, NN_REQ);
	cr_assert_geq(s, 0);
	cr_assert_geq(nn_connect(s, url), 0);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	send_raw(s, junk, sizeof(junk)); /* garbage */
	send_raw(s, frame, 10);		 /* truncated header */
	frame[8] = 200;			 /* length lies */
	send_raw(s, frame, sizeof(frame));
	frame[8] = 32; /* a REQ for no session */
	send_raw(s, frame, sizeof(frame));
	frame[5] = 1; /* a HELLO with junk */
	send_raw(s, frame, sizeof(frame));
	send_raw(s, "", 0);
	nn_close(s);
	cr_assert_eq(ipc_queue_put(remote, "ok", 2, 1000), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 1000), 2);
}

/* ---- ipc-serve --------------------------------------------------------- */

static pid_t spawn_serve(const char *sock_url, const char *keyfile,
			 const char *qname)
{
	const char *top = getenv("top_builddir");
	char path[512];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tools/ipc-serve", top ? top : ".");
	snprintf(serve_qname, sizeof(serve_qname), "%s", qname);
	snprintf(serve_keyfile, sizeof(serve_keyfile), "%s", keyfile);
	if (strncmp(sock_url, "ipc://", 6) == 0)
		snprintf(serve_sock, sizeof(serve_sock), "%s", sock_url + 6);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(path, path, sock_url, "--key-file", keyfile, "--lease",
		      "1000", "--joinable-queue", qname, (char *)NULL);
		_exit(127);
	}
	serve_pid = pid;
	return pid;
}

/* End a test's ipc-serve and remove what it used. */
static void serve_cleanup(pid_t server, const char *qname, const char *keyfile,
			  const char *sock_url)
{
	cr_assert_eq(t_kill(server), -SIGKILL);
	serve_pid = 0;
	ipc_queue_close(remote);
	remote = NULL;
	ipc_unlink(qname);
	unlink(keyfile);
	unlink(sock_url + strlen("ipc://"));
	serve_qname[0] = serve_keyfile[0] = serve_sock[0] = '\0';
}

/* A producer in another process (net_peer put) streams while ipc-serve is
 * SIGKILLed and restarted on the same named queue: no acknowledged put is
 * lost, duplicates are at most the puts in flight at the kill, the task a
 * remote consumer held is requeued by the queue's own dead-consumer repair,
 * and the consumer's handle reconnects by itself. */
Test(net, ipc_serve_killed_and_restarted_mid_stream)
{
	char qname[64], keyfile[128], sock_url[160], line[64], buf[64];
	ipc_net_attr a = keyed(key);
	const long n = 3000;
	static char seen[3000];
	long acked, stored = 0, dups = 0;
	pid_t server, producer;
	int fd, status;
	FILE *kf;
	const char *top = getenv("top_builddir");
	char path[512];
	int pfd[2];

	t_name(qname, sizeof(qname), "net-srvkill");
	snprintf(keyfile, sizeof(keyfile), "/tmp/libipc-test-%d.key",
		 (int)getpid());
	snprintf(sock_url, sizeof(sock_url), "ipc:///tmp/libipc-test-%d.sock",
		 (int)getpid());
	kf = fopen(keyfile, "w");
	cr_assert_not_null(kf);
	fputs(key, kf);
	fclose(kf);
	ipc_queue_attr qa = { .joinable = true, .capacity = 1 << 20 };
	cr_assert_eq(ipc_queue_open(&local, qname, IPC_CREATE, &qa), 0);
	server = spawn_serve(sock_url, keyfile, qname);
	cr_assert_gt(server, 0);
	/* The consumer: connect (retrying while ipc-serve starts), hold one
	 * task. */
	for (int i = 0; i < 100; i++)
		if (ipc_queue_connect(&remote, sock_url, qname, &a) == 0)
			break;
	cr_assert_not_null(remote, "connected to ipc-serve");
	cr_assert_eq(ipc_queue_put(remote, "held", 4, 5000), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 5000), 4);
	/* The producer. */
	snprintf(path, sizeof(path), "%s/tests/net_peer", top ? top : ".");
	cr_assert_eq(pipe(pfd), 0);
	producer = fork();
	if (producer == 0) {
		char count[16];
		snprintf(count, sizeof(count), "%ld", n);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(path, path, "put", sock_url, qname, key, count,
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	fd = pfd[0];
	cr_assert(t_wait_count_long(local, n / 3, 30000), "stream started");
	cr_assert_eq(t_kill(server), -SIGKILL);
	server = spawn_serve(sock_url, keyfile, qname);
	cr_assert(t_read_line(fd, line, sizeof(line), 60000), "producer done");
	acked = atol(line);
	cr_assert_eq(waitpid(producer, &status, 0), producer);
	close(fd);
	/* The held task came back (repair of the dead server's slot) and the
	 * consumer's handle works again; its task_done for the lost session
	 * is accepted. */
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	for (;;) {
		ssize_t len = ipc_queue_get(local, buf, sizeof(buf), 2000);
		if (len < 0)
			break;
		cr_assert_eq(ipc_queue_task_done(local), 0);
		if (len == 4 && memcmp(buf, "held", 4) == 0)
			continue;
		buf[len] = '\0';
		long i = atol(buf + 1);
		cr_assert(i >= 0 && i < n);
		if (seen[i]++)
			dups++;
		else
			stored++;
	}
	cr_assert_eq(acked, n, "every put was acknowledged in the end");
	cr_assert_eq(stored, n, "no acknowledged put lost");
	cr_log_info("server SIGKILL mid-stream: %ld puts, %ld duplicates", n,
		    dups);
	cr_assert_leq(dups, 1, "duplicates bounded by the puts in flight");
	cr_assert_eq(ipc_queue_join(local, 5000), 0);
	serve_cleanup(server, qname, keyfile, sock_url);
}

/* ---- A fault proxy that cuts connections mid-frame ----------------------- */

struct proxy {
	int listen_fd;
	int target_port;
	int cuts_left; /* connections still to cut */
	int cuts_done;
	_Atomic bool drop_replies; /* discard server -> client bytes */
	_Atomic bool cut_now;	   /* cut the current connection */
	_Atomic bool blackhole;	   /* deliver nothing: cut, refuse new ones */
	_Atomic int up_reads;	   /* client -> server chunks forwarded */
	_Atomic bool stop;
	pthread_t thread;
};

/* Forward between a and b; after `budget` bytes in one direction (which
 * alternates), forward only the part of the chunk that fits and cut both
 * sides — mid-frame, since budgets are not frame multiples. budget < 0:
 * no cut. */
static void proxy_pipe(struct proxy *p, int a, int b, long budget, int dir)
{
	char buf[4096];

	while (!atomic_load(&p->stop)) {
		struct pollfd pf[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
		if (atomic_exchange(&p->cut_now, false))
			return;
		if (poll(pf, 2, 20) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int from = i ? b : a, to = i ? a : b;
			ssize_t n;
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(from, buf, sizeof(buf));
			if (n <= 0)
				return;
			if (i == 0)
				atomic_fetch_add(&p->up_reads, 1);
			if (atomic_load(&p->blackhole))
				return; /* dropped, and the connection cut */
			if (i == 1 && atomic_load(&p->drop_replies))
				continue; /* swallowed: the stream is now torn
					   */
			if (budget >= 0 && i == dir) {
				if (n > budget)
					n = budget;
				budget -= n;
			}
			if (n > 0 && write(to, buf, (size_t)n) != n)
				return;
			if (budget == 0)
				return; /* the cut */
		}
	}
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;

	for (int k = 0; !atomic_load(&p->stop); k++) {
		struct pollfd pf = { p->listen_fd, POLLIN, 0 };
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons(p->target_port),
					  .sin_addr.s_addr =
						  htonl(INADDR_LOOPBACK) };
		int c, s;
		if (poll(&pf, 1, 100) <= 0)
			continue;
		c = accept(p->listen_fd, NULL, NULL);
		if (c < 0)
			continue;
		if (atomic_load(&p->blackhole)) {
			close(c);
			continue;
		}
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s >= 0 &&
		    connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			long budget = -1;
			if (p->cuts_left > 0) {
				p->cuts_left--;
				p->cuts_done++;
				budget = 40 + (k * 137) % 700;
			}
			proxy_pipe(p, c, s, budget, k % 2);
		}
		if (s >= 0)
			close(s);
		close(c);
	}
	return NULL;
}

static int proxy_start(struct proxy *p, int target_port, int cuts)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(p, 0, sizeof(*p));
	p->target_port = target_port;
	p->cuts_left = cuts;
	p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->listen_fd < 0 ||
	    bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(p->listen_fd, 8) != 0 ||
	    getsockname(p->listen_fd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	if (pthread_create(&p->thread, NULL, proxy_main, p) != 0)
		return -1;
	return ntohs(sa.sin_port);
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
}

/* Connections cut mid-frame in both directions: every put acknowledged is
 * stored exactly once, and every message got through the cuts is
 * delivered exactly once (lost replies are resent from the server's
 * cache, or handed over on the next get). */
Test(net, connections_cut_mid_frame_keep_exactly_once)
{
	ipc_net_attr a = keyed(key);
	static char seen[400];
	char purl[64], buf[32];
	struct proxy p;
	int port;
	const int n = 400;

	serve_queue(false, &a);
	port = proxy_start(&p, atoi(strrchr(url, ':') + 1), 12);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	a.timeout_ms = 20000;
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
	for (int i = 0; i < n / 2; i++) {
		int len = snprintf(buf, sizeof(buf), "m%d", i);
		cr_assert_eq(ipc_queue_put(remote, buf, (size_t)len, 20000), 0,
			     "put %d", i);
	}
	for (int i = n / 2; i < n; i++) {
		int len = snprintf(buf, sizeof(buf), "m%d", i);
		cr_assert_eq(ipc_queue_put(local, buf, (size_t)len, 0), 0);
	}
	cr_assert_eq(ipc_queue_qsize(local), n, "every acknowledged put once");
	for (int i = 0; i < n; i++) {
		ssize_t len =
			ipc_queue_get(remote, buf, sizeof(buf) - 1, 20000);
		cr_assert_gt(len, 0, "get %d: %zd", i, len);
		buf[len] = '\0';
		int m = atoi(buf + 1);
		cr_assert(m >= 0 && m < n);
		cr_assert_eq(seen[m]++, 0, "m%d delivered twice", m);
	}
	cr_assert_eq(ipc_queue_qsize(local), 0);
	cr_log_info("fault proxy: %d connections cut mid-frame", p.cuts_done);
	cr_assert_geq(p.cuts_done, 6, "the proxy did cut");
	ipc_queue_close(remote);
	remote = NULL;
	proxy_stop(&p);
}

/* A get whose reply is lost after the server took the message: the call
 * times out. Sets that up through a proxy that drops replies. */
static void lost_get_start(struct proxy *p)
{
	ipc_net_attr a = keyed(key);
	char purl[64], buf[16];
	int port;

	/* A lease long enough that the lease keeper's renewals, whose
	 * answers the proxy would drop too, stay out of the way. */
	a.lease_ms = 60000;
	serve_queue(false, &a);
	port = proxy_start(p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(local, "only", 4, 0), 0);
	atomic_store(&p->drop_replies, true);
	/* Each get times out, its reply dropped. Under load a get may time
	 * out before its request was even sent (the handle was busy with a
	 * lease renewal whose answer was dropped too), so try again until
	 * the server has taken the message (bounded), waiting a little after
	 * each try for a request still on its way. */
	for (int try = 0; try < 10 && ipc_queue_qsize(local) != 0; try++) {
		cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 600),
			     IPC_ETIMEDOUT, "the reply never came");
		long t0 = t_now_ms();
		while (ipc_queue_qsize(local) != 0 && t_now_ms() - t0 < 2000)
			usleep(1000);
	}
	cr_assert_eq(ipc_queue_qsize(local), 0, "the server had taken it");
}

/* The message is not lost: the same consumer's next get returns it, once.
 */
static void lost_get_end(struct proxy *p)
{
	char buf[16];

	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 20000), 4,
		     "redelivered");
	cr_assert_eq(memcmp(buf, "only", 4), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN, "exactly once");
	ipc_queue_close(remote);
	remote = NULL;
	proxy_stop(p);
}

Test(net, get_reply_lost_is_redelivered_to_the_next_get)
{
	struct proxy p;

	lost_get_start(&p);
	atomic_store(&p.drop_replies, false);
	atomic_store(&p.cut_now, true); /* resync: a fresh connection */
	lost_get_end(&p);
}

/* The same, and the next two gets never reach the server (the link is
 * down): the message still comes with the first get that does. */
Test(net, get_reply_lost_survives_lost_reports)
{
	char buf[16];
	struct proxy p;

	lost_get_start(&p);
	atomic_store(&p.blackhole, true);
	atomic_store(&p.drop_replies, false);
	cr_assert_lt(ipc_queue_get(remote, buf, sizeof(buf), 300), 0);
	cr_assert_lt(ipc_queue_get(remote, buf, sizeof(buf), 300), 0);
	atomic_store(&p.blackhole, false);
	lost_get_end(&p);
}

Test(net, lost_get_many_reply_is_redelivered_in_order)
{
	ipc_net_attr a = keyed(key);
	char purl[64], bufs[8][16];
	struct iovec iov[8];
	struct proxy p;
	int port;

	a.lease_ms = 60000; /* as above: renewals stay out of the way */
	serve_queue(false, &a);
	port = proxy_start(&p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(local, "m0", 2, 0), 0);
	cr_assert_eq(ipc_queue_put(local, "m1", 2, 0), 0);
	cr_assert_eq(ipc_queue_put(local, "m2!", 3, 0), 0);
	atomic_store(&p.drop_replies, true);
	for (int try = 0; try < 10 && ipc_queue_qsize(local) != 0; try++) {
		for (int i = 0; i < 8; i++)
			iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		cr_assert_eq(ipc_queue_get_many(remote, iov, 8, 600),
			     IPC_ETIMEDOUT, "the reply never came");
		long t0 = t_now_ms();
		while (ipc_queue_qsize(local) != 0 && t_now_ms() - t0 < 2000)
			usleep(1000);
	}
	cr_assert_eq(ipc_queue_qsize(local), 0, "the server took all three");
	atomic_store(&p.drop_replies, false);
	atomic_store(&p.cut_now, true);
	/* A plain get gets the first kept message, a batch get the rest. */
	cr_assert_eq(ipc_queue_get(remote, bufs[0], sizeof(bufs[0]), 20000), 2);
	cr_assert_eq(memcmp(bufs[0], "m0", 2), 0);
	for (int i = 0; i < 8; i++)
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
	cr_assert_eq(ipc_queue_get_many(remote, iov, 8, 20000), 2);
	cr_assert_eq(iov[0].iov_len, 2);
	cr_assert_eq(memcmp(bufs[0], "m1", 2), 0);
	cr_assert_eq(iov[1].iov_len, 3);
	cr_assert_eq(memcmp(bufs[1], "m2!", 3), 0);
	cr_assert_eq(ipc_queue_get(remote, bufs[0], sizeof(bufs[0]), 0),
		     IPC_EAGAIN, "exactly once");
	ipc_queue_close(remote);
	remote = NULL;
	proxy_stop(&p);
}

/* A remote Lock acquire that succeeds on the server while its reply is
 * lost: the caller sees IPC_ETIMEDOUT and believes it holds nothing. Sets
 * that up through a proxy that drops replies, until the server holds the
 * Lock for the remote handle. */
struct lost_acquire {
	ipc_lock *lk, *rlk;
	struct proxy p;
};

static void lost_acquire_start(struct lost_acquire *la)
{
	ipc_net_attr a = keyed(key);
	char purl[64];
	int port;

	a.lease_ms = 60000; /* renewals and expiry stay out of the way */
	cr_assert_eq(ipc_lock_new(&la->lk), 0);
	cr_assert_eq(serve(&srv, &a), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", la->lk), 0);
	port = proxy_start(&la->p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_lock_connect(&la->rlk, purl, "lk", &a), 0);
	atomic_store(&la->p.drop_replies, true);
	/* Retry until the server has acquired it for us (bounded): under
	 * load an acquire may time out before its request was sent. */
	for (int try = 0; try < 10; try++) {
		int rc;
		cr_assert_eq(ipc_lock_acquire(la->rlk, 600), IPC_ETIMEDOUT);
		long t0 = t_now_ms();
		while ((rc = ipc_lock_acquire(la->lk, IPC_NOWAIT)) == 0 &&
		       t_now_ms() - t0 < 2000) {
			ipc_lock_release(la->lk);
			usleep(1000);
		}
		if (rc == IPC_EAGAIN)
			break;
		ipc_lock_release(la->lk);
	}
	cr_assert_eq(ipc_lock_acquire(la->lk, IPC_NOWAIT), IPC_EAGAIN,
		     "the server holds it for the remote handle");
}

/* The local Lock is free again (the server released it); tear down. */
static void lost_acquire_end(struct lost_acquire *la)
{
	cr_assert_eq(ipc_lock_acquire(la->lk, 10000), 0);
	cr_assert_eq(ipc_lock_release(la->lk), 0);
	ipc_lock_close(la->rlk);
	proxy_stop(&la->p);
	ipc_server_stop(srv);
	srv = NULL;
	ipc_lock_close(la->lk);
}

/* The server must release the lock at the handle's next call. */
Test(net, lost_acquire_reply_is_undone_at_the_next_call)
{
	struct lost_acquire la;

	lost_acquire_start(&la);
	atomic_store(&la.p.drop_replies, false);
	atomic_store(&la.p.cut_now, true);
	cr_assert_eq(ipc_lock_release(la.rlk), IPC_EPERM,
		     "undone before this call ran");
	lost_acquire_end(&la);
}

/* The same, and then the requests that report the reply lost never reach
 * the server either (the link is down for two calls): the report must
 * outlive them, or the server keeps the Lock for a handle that believes it
 * holds nothing, and no one can take it until the lease ends. */
Test(net, lost_acquire_reply_is_undone_after_its_report_is_lost_too)
{
	struct lost_acquire la;

	lost_acquire_start(&la);
	atomic_store(&la.p.blackhole, true);
	atomic_store(&la.p.drop_replies, false);
	cr_assert_lt(ipc_lock_acquire(la.rlk, 300), 0, "the link is down");
	cr_assert_lt(ipc_lock_acquire(la.rlk, 300), 0, "the link is down");
	atomic_store(&la.p.blackhole, false);
	cr_assert_eq(ipc_lock_locked(la.rlk), 0, "undone before this call ran");
	lost_acquire_end(&la);
}

/* Closing a handle whose server stopped answering costs at most about a
 * second (ipc_queue_close), also while the lease keeper's renewal is
 * waiting for its answer: the renewal gives way, as it does to a call. */
Test(net, close_does_not_wait_out_a_renewal_in_flight)
{
	ipc_net_attr a = keyed(key);
	char purl[64];
	struct proxy p;
	long t0;
	int port, reads;

	a.lease_ms = 12000; /* a renewal after 4 s, waiting up to 4 s */
	serve_queue(false, &a);
	port = proxy_start(&p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
	atomic_store(&p.blackhole, true);
	reads = atomic_load(&p.up_reads);
	t0 = t_now_ms();
	while (atomic_load(&p.up_reads) == reads && t_now_ms() - t0 < 30000)
		usleep(1000);
	cr_assert_neq(atomic_load(&p.up_reads), reads, "a renewal went out");
	t0 = t_now_ms();
	ipc_queue_close(remote);
	remote = NULL;
	cr_assert_lt(t_now_ms() - t0, 2500, "closed in %ld ms",
		     t_now_ms() - t0);
	proxy_stop(&p);
}

/* A call in a thread of its own, whose result the test waits for. */
struct bg_call {
	ipc_queue *q;
	ipc_lock *lk;
	int timeout_ms;
	char buf[16];
	_Atomic long rc;
	_Atomic bool done;
};

static void *bg_put(void *arg)
{
	struct bg_call *bc = arg;

	atomic_store(&bc->rc, ipc_queue_put(bc->q, "once", 4, bc->timeout_ms));
	atomic_store(&bc->done, true);
	return NULL;
}

static void *bg_get(void *arg)
{
	struct bg_call *bc = arg;

	atomic_store(&bc->rc,
		     (long)ipc_queue_get(bc->q, bc->buf, sizeof(bc->buf),
					 bc->timeout_ms));
	atomic_store(&bc->done, true);
	return NULL;
}

static void *bg_acquire(void *arg)
{
	struct bg_call *bc = arg;

	atomic_store(&bc->rc, ipc_lock_acquire(bc->lk, bc->timeout_ms));
	atomic_store(&bc->done, true);
	return NULL;
}

static void bg_join(pthread_t t, struct bg_call *bc)
{
	long until = t_now_ms() + 30000;

	while (!atomic_load(&bc->done) && t_now_ms() < until)
		usleep(10000);
	cr_assert(atomic_load(&bc->done), "the call returned");
	pthread_join(t, NULL);
}

/* A put(IPC_FOREVER) whose reply is lost: the client gives up on the
 * exchange and tries again, and that retry is the same request, answered
 * from the server's dedupe cache — the put acknowledged with 0 is stored
 * once, not once per retry. */
Test(net, forever_put_with_lost_replies_is_stored_once)
{
	ipc_net_attr a = keyed(key);
	char purl[64], buf[16];
	struct bg_call bc = { .timeout_ms = IPC_FOREVER };
	struct proxy p;
	pthread_t t;
	long until;
	int port, base;

	a.timeout_ms = 400;
	a.lease_ms = 60000; /* no lease keeper PING during the test */
	serve_queue(false, &a);
	port = proxy_start(&p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
	atomic_store(&p.drop_replies, true);
	base = atomic_load(&p.up_reads);
	bc.q = remote;
	cr_assert_eq(pthread_create(&t, NULL, bg_put, &bc), 0);
	/* Stored by the first request, and the client's retry (after it gave
	 * up on the reply) has reached the server. */
	until = t_now_ms() + 30000;
	while ((ipc_queue_qsize(local) < 1 ||
		atomic_load(&p.up_reads) < base + 3) &&
	       t_now_ms() < until)
		usleep(10000);
	cr_assert_geq(atomic_load(&p.up_reads), base + 3,
		      "the client retried twice");
	atomic_store(&p.drop_replies, false);
	atomic_store(&p.cut_now, true); /* resync: a fresh connection */
	bg_join(t, &bc);		/* the put returns once replies flow */
	cr_assert_eq(atomic_load(&bc.rc), 0);
	cr_assert_eq(ipc_queue_qsize(local), 1, "stored exactly once");
	cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), IPC_NOWAIT), 4);
	ipc_queue_close(remote);
	remote = NULL;
	proxy_stop(&p);
}

/* ---- A session that ends while its last reply is lost -------------------- */

static _Atomic int leases_expired;

static void count_expired_leases(void *arg, const char *msg)
{
	(void)arg;
	if (strstr(msg, "lease expired") != NULL)
		atomic_fetch_add(&leases_expired, 1);
}

/* A queue served with a short lease, and a remote handle on it through a
 * fault proxy. */
static void lease_proxy_start(struct proxy *p)
{
	ipc_net_attr a = keyed(key);
	char purl[64];
	int port;

	a.log = count_expired_leases;
	serve_queue(false, &a);
	port = proxy_start(p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_queue_connect(&remote, purl, "jobs", &a), 0);
}

/* The request in flight has run on the server and its reply was dropped:
 * now cut the client off until the server expires the session's lease,
 * then let it through again. nanomsg reconnects and resends the request
 * under its old session, which the server no longer has. */
static void lease_proxy_expire(struct proxy *p)
{
	int base = atomic_load(&leases_expired);
	long until = t_now_ms() + 30000;

	atomic_store(&p->blackhole, true);
	while (atomic_load(&leases_expired) == base && t_now_ms() < until)
		usleep(10000);
	cr_assert_gt(atomic_load(&leases_expired), base, "the lease expired");
	atomic_store(&p->drop_replies, false);
	atomic_store(&p->blackhole, false);
}

/* Run call (a bg_put or bg_get on the remote handle) with its reply
 * dropped until the local queue holds `ran` messages (the call ran on the
 * server), expire the session, and wait for the call to return. */
static void lease_proxy_call(struct proxy *p, struct bg_call *bc,
			     void *(*call)(void *), long ran)
{
	long until = t_now_ms() + 30000;
	pthread_t t;

	atomic_store(&p->drop_replies, true);
	bc->q = remote;
	bc->timeout_ms = 30000;
	cr_assert_eq(pthread_create(&t, NULL, call, bc), 0);
	while (ipc_queue_qsize(local) != ran && t_now_ms() < until)
		usleep(1000);
	cr_assert_eq(ipc_queue_qsize(local), ran, "the call ran on the server");
	lease_proxy_expire(p);
	bg_join(t, bc);
	ipc_queue_close(remote);
	remote = NULL;
	proxy_stop(p);
}

/* A put stored on the server whose reply is lost, and the session's lease
 * expires before the client is heard again: the resend of that put, under
 * the ended session, must be answered with the put's reply, not with
 * NOSESSION — the client would store it again in a new session. */
Test(net, put_whose_reply_is_lost_when_its_session_expires_is_stored_once)
{
	struct bg_call bc = { 0 };
	struct proxy p;
	char buf[16];

	lease_proxy_start(&p);
	lease_proxy_call(&p, &bc, bg_put, 1);
	cr_assert_eq(atomic_load(&bc.rc), 0, "the put was acknowledged");
	cr_assert_eq(ipc_queue_qsize(local), 1, "stored exactly once");
	cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), IPC_NOWAIT), 4);
}

/* The same for a get: the ended session put the message back (nobody
 * confirmed that the reply arrived), so the resend is not answered from
 * the reply: the client gets the message again in a new session, and it
 * is delivered once, not once from the reply and once from the queue. */
Test(net, get_whose_reply_is_lost_when_its_session_expires_is_delivered_once)
{
	struct bg_call bc = { 0 };
	struct proxy p;

	lease_proxy_start(&p);
	cr_assert_eq(ipc_queue_put(local, "only", 4, 0), 0);
	lease_proxy_call(&p, &bc, bg_get, 0);
	cr_assert_eq(atomic_load(&bc.rc), 4, "the get returned the message");
	cr_assert_eq(memcmp(bc.buf, "only", 4), 0);
	cr_assert_eq(ipc_queue_qsize(local), 0, "delivered once");
}

/* The same for a Lock acquire: the ended session released the Lock, so
 * the resend is not told that it holds it; the client acquires it again in
 * a new session, and then it does hold it. */
Test(net, acquire_whose_reply_is_lost_when_its_session_expires_holds_the_lock)
{
	ipc_net_attr a = keyed(key);
	struct bg_call bc = { .timeout_ms = 30000 };
	ipc_lock *lk, *rlk;
	struct proxy p;
	char purl[64];
	pthread_t t;
	long until;
	int port, rc;

	a.log = count_expired_leases;
	cr_assert_eq(ipc_lock_new(&lk), 0);
	cr_assert_eq(serve(&srv, &a), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", lk), 0);
	port = proxy_start(&p, atoi(strrchr(url, ':') + 1), 0);
	cr_assert_gt(port, 0);
	snprintf(purl, sizeof(purl), "tcp://127.0.0.1:%d", port);
	cr_assert_eq(ipc_lock_connect(&rlk, purl, "lk", &a), 0);
	atomic_store(&p.drop_replies, true);
	bc.lk = rlk;
	cr_assert_eq(pthread_create(&t, NULL, bg_acquire, &bc), 0);
	/* Until the server holds it for the remote handle (a local try that
	 * wins gives it straight back). */
	until = t_now_ms() + 30000;
	while ((rc = ipc_lock_acquire(lk, IPC_NOWAIT)) == 0 &&
	       t_now_ms() < until) {
		ipc_lock_release(lk);
		usleep(1000);
	}
	cr_assert_eq(rc, IPC_EAGAIN, "the acquire ran on the server");
	lease_proxy_expire(&p);
	bg_join(t, &bc);
	cr_assert_eq(atomic_load(&bc.rc), 0, "acquired");
	cr_assert_eq(ipc_lock_acquire(lk, IPC_NOWAIT), IPC_EAGAIN,
		     "and the server holds it for the remote handle");
	cr_assert_eq(ipc_lock_release(rlk), 0);
	cr_assert_eq(ipc_lock_acquire(lk, 10000), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	ipc_lock_close(rlk);
	proxy_stop(&p);
	ipc_server_stop(srv);
	srv = NULL;
	ipc_lock_close(lk);
}

/* Some thread of process pid waits in a futex inside the shared memory of
 * queue qname (its session thread blocked in the local get), within
 * timeout_ms. */
static bool waits_on_queue(pid_t pid, const char *qname, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;
	char path[320], line[512];

	do {
		unsigned long lo[16], hi[16];
		int nmap = 0;
		bool found = false;
		struct dirent *e;
		DIR *d;
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
		f = fopen(path, "r");
		while (f != NULL && nmap < 16 && fgets(line, sizeof(line), f))
			if (strstr(line, qname) != NULL &&
			    sscanf(line, "%lx-%lx", &lo[nmap], &hi[nmap]) == 2)
				nmap++;
		if (f != NULL)
			fclose(f);
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		d = nmap > 0 ? opendir(path) : NULL;
		while (d != NULL && !found && (e = readdir(d)) != NULL) {
			unsigned long addr;
			long nr;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall",
				 (int)pid, e->d_name);
			f = fopen(path, "r");
			if (f == NULL)
				continue;
			if (fscanf(f, "%ld %lx", &nr, &addr) == 2 &&
			    nr == SYS_futex)
				for (int i = 0; i < nmap; i++)
					found |= addr >= lo[i] && addr < hi[i];
			fclose(f);
		}
		if (d != NULL)
			closedir(d);
		if (found)
			return true;
		usleep(1000);
	} while (t_now_ms() < end);
	return false;
}

struct timed_get {
	ipc_queue *q;
	int timeout_ms;
	_Atomic long rc;
	_Atomic bool done;
};

static void *timed_getter(void *arg)
{
	struct timed_get *g = arg;
	char buf[16];

	atomic_store(&g->rc, (long)ipc_queue_get(g->q, buf, sizeof(buf),
						 g->timeout_ms));
	atomic_store(&g->done, true);
	return NULL;
}

/* A get N waits on the server when ipc-serve is stopped; a message arrives
 * and N takes it, but its reply comes too late for the client, whose next
 * gets (N+1, N+2, both reporting the lost reply) queue up behind N and the
 * newer replaces the older unexecuted one. The message N took is still the
 * client's: its next get delivers it, and join() completes. */
Test(net, lost_get_reply_survives_superseded_requests)
{
	char qname[64], keyfile[128], sock_url[160], buf[16];
	ipc_net_attr a = keyed(key);
	ipc_queue_attr qa = { .joinable = true };
	struct timed_get g = { 0 };
	pthread_t t;
	pid_t server;
	long until;
	FILE *kf;

	t_name(qname, sizeof(qname), "net-supersede");
	snprintf(keyfile, sizeof(keyfile), "/tmp/libipc-test-%d-ss.key",
		 (int)getpid());
	snprintf(sock_url, sizeof(sock_url),
		 "ipc:///tmp/libipc-test-%d-ss.sock", (int)getpid());
	kf = fopen(keyfile, "w");
	cr_assert_not_null(kf);
	fputs(key, kf);
	fclose(kf);
	cr_assert_eq(ipc_queue_open(&local, qname, IPC_CREATE, &qa), 0);
	server = spawn_serve(sock_url, keyfile, qname);
	cr_assert_gt(server, 0);
	a.timeout_ms = 300;
	for (int i = 0; i < 100; i++)
		if (ipc_queue_connect(&remote, sock_url, qname, &a) == 0)
			break;
	cr_assert_not_null(remote, "connected to ipc-serve");
	g.q = remote;
	g.timeout_ms = 3000;
	cr_assert_eq(pthread_create(&t, NULL, timed_getter, &g), 0);
	cr_assert(waits_on_queue(server, qname, 20000),
		  "the server's session waits in the local get");
	cr_assert(t_stop(server, 10000), "ipc-serve stopped");
	cr_assert_eq(ipc_queue_put(local, "M", 1, 0), 0);
	until = t_now_ms() + 30000;
	while (!atomic_load(&g.done) && t_now_ms() < until)
		usleep(10000);
	cr_assert(atomic_load(&g.done), "the get ends within its timeout");
	pthread_join(t, NULL);
	cr_assert_eq(atomic_load(&g.rc), IPC_ETIMEDOUT, "the get gave %ld (%s)",
		     atomic_load(&g.rc), ipc_err_name((int)atomic_load(&g.rc)));
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 300),
		     IPC_ETIMEDOUT);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 300),
		     IPC_ETIMEDOUT);
	cr_assert_eq(kill(server, SIGCONT), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), 10000), 1,
		     "the message whose reply was lost is delivered");
	cr_assert_eq(buf[0], 'M');
	cr_assert_eq(ipc_queue_task_done(remote), 0);
	cr_assert_eq(ipc_queue_join(local, 10000), 0);
	cr_assert_eq(ipc_queue_get(remote, buf, sizeof(buf), IPC_NOWAIT),
		     IPC_EAGAIN, "exactly once");
	serve_cleanup(server, qname, keyfile, sock_url);
}

/* A HELLO frame as anyone can send it (no key needed): header, 48 random
 * bytes (client id and nonce), version 1, keyed flag, the name. */
static size_t hello_frame(uint8_t *fr, size_t cap, const char *name, int i,
			  bool keyed_hello)
{
	size_t n = strlen(name), len = 32 + 52 + n;
	uint32_t v[2] = { 0x4e435049u, (uint32_t)(52 + n) };

	cr_assert_leq(len, cap);
	memset(fr, 0, len);
	for (int k = 0; k < 4; k++) {
		fr[k] = (uint8_t)(v[0] >> (8 * k));
		fr[8 + k] = (uint8_t)(v[1] >> (8 * k));
	}
	fr[4] = 1;
	fr[5] = 1;
	fr[24] = 1;
	for (int k = 0; k < 48; k++)
		fr[32 + k] = (uint8_t)(i * 131 + k * 7 + 1);
	fr[32 + 48] = 1;
	fr[32 + 49] = keyed_hello;
	fr[32 + 50] = (uint8_t)n;
	memcpy(fr + 32 + 52, name, n);
	return len;
}

/* Send N HELLOs for "jobs" from N sockets (closed by the caller) and read
 * each answer: how many were answered. */
static int hello_flood(int *socks, int n, bool keyed_hello)
{
	int answered = 0;

	for (int i = 0; i < n; i++) {
		uint8_t fr[128];
		size_t len =
			hello_frame(fr, sizeof(fr), "jobs", i, keyed_hello);
		int ms = 5000;
		void *reply = NULL;
		socks[i] = nn_socket(AF_SP, NN_REQ);
		cr_assert_geq(socks[i], 0);
		cr_assert_geq(nn_connect(socks[i], url), 0);
		nn_setsockopt(socks[i], NN_SOL_SOCKET, NN_SNDTIMEO, &ms,
			      sizeof(ms));
		nn_setsockopt(socks[i], NN_SOL_SOCKET, NN_RCVTIMEO, &ms,
			      sizeof(ms));
		cr_assert_eq(nn_send(socks[i], fr, len, 0), (int)len);
		/* The answer (a challenge, or a refusal) shows it was seen. */
		if (nn_recv(socks[i], &reply, NN_MSG, 0) >= 0) {
			answered++;
			nn_freemsg(reply);
		}
	}
	return answered;
}

/* 300 handshakes begun and never finished (more than the session table
 * holds): the server still lets in a client that has the key. */
Test(net, hello_flood_does_not_lock_out_keyed_clients)
{
	enum { N = 300 };
	ipc_net_attr a = keyed(key);
	static int socks[N];

	serve_queue(false, &a);
	cr_assert_eq(hello_flood(socks, N, true), N,
		     "every hello was answered");
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0,
		     "a client with the key still gets in");
	cr_assert_eq(ipc_queue_put(remote, "x", 1, 5000), 0);
	for (int i = 0; i < N; i++)
		nn_close(socks[i]);
}

/* A keyless server opens a session at HELLO: 300 sessions opened and never
 * used (more than the table holds) must not lock out a new client, nor end
 * a session in use. */
Test(net, hello_flood_does_not_lock_out_keyless_clients)
{
	enum { N = 300 };
	ipc_net_attr a = keyed(NULL);
	static int socks[N];
	ipc_queue *late = NULL;
	char buf[8];

	serve_queue(false, &a);
	cr_assert_eq(ipc_queue_connect(&remote, url, "jobs", &a), 0);
	cr_assert_eq(ipc_queue_put(remote, "a", 1, 5000), 0);
	cr_assert_eq(hello_flood(socks, N, false), N,
		     "every hello was answered");
	cr_assert_eq(ipc_queue_connect(&late, url, "jobs", &a), 0,
		     "a new client still gets in");
	cr_assert_eq(ipc_queue_put(late, "b", 1, 5000), 0);
	cr_assert_eq(ipc_queue_put(remote, "c", 1, 5000), 0);
	ipc_queue_close(late);
	cr_assert_eq(ipc_queue_qsize(local), 3);
	cr_assert_eq(ipc_queue_get(local, buf, sizeof(buf), 0), 1);
	for (int i = 0; i < N; i++)
		nn_close(socks[i]);
}
