/* SPDX-License-Identifier: MIT */
/*
 * test_net_sync.c — remote Event, Lock, Semaphore and Barrier over tcp
 * loopback: every operation through a connected handle with its local
 * return codes, leases (a closed or SIGKILLed holder's Lock and units come
 * back, a vanished Barrier party breaks the barrier), a blocked remote wait
 * that does not stall other clients, and the failures of connecting and of
 * a server that goes away.
 *
 * The local objects are anonymous (nothing in /dev/shm to clean up). A
 * remote client in another process is tests/net_peer, exec'd (nanomsg is
 * not fork-safe).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static const char key[] = "remote sync objects";
static char url[64];
static ipc_server *srv;
static ipc_event *lev, *rev;
static ipc_lock *llk, *rlk, *rlk2;
static ipc_sem *lsem, *rsem;
static ipc_barrier *lbar, *rbar;
static pid_t peer;
/* Names and files a test made, removed by teardown even after a failed
 * assertion. */
static char names[4][64], sock_path[128];

static void setup(void)
{
	srv = NULL;
	lev = rev = NULL;
	llk = rlk = rlk2 = NULL;
	lsem = rsem = NULL;
	lbar = rbar = NULL;
	peer = 0;
}

static void teardown(void)
{
	ipc_event_close(rev);
	ipc_lock_close(rlk);
	ipc_lock_close(rlk2);
	ipc_sem_close(rsem);
	ipc_barrier_close(rbar);
	if (peer > 0) /* a client, or an ipc-serve its handles used */
		t_kill(peer);
	ipc_server_stop(srv);
	ipc_event_close(lev);
	ipc_lock_close(llk);
	ipc_sem_close(lsem);
	ipc_barrier_close(lbar);
	for (int i = 0; i < 4; i++)
		if (names[i][0] != '\0')
			ipc_unlink(names[i]);
	if (sock_path[0] != '\0')
		unlink(sock_path);
	memset(names, 0, sizeof(names));
	sock_path[0] = '\0';
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(net_sync, .init = setup, .fini = teardown, .timeout = 90);

/* Leases of 2 s: short enough for the expiry tests, long enough that a
 * loaded machine's live clients keep theirs. */
static ipc_net_attr attr(void)
{
	return (ipc_net_attr){ .authkey = key,
			       .authkey_len = strlen(key),
			       .timeout_ms = 5000,
			       .lease_ms = 2000 };
}

static void start(const ipc_net_attr *a)
{
	cr_assert_eq(t_net_serve(&srv, a, url, sizeof(url)), 0);
}

struct waiter {
	pthread_t t;
	_Atomic int done;
	int rc;
	int timeout_ms;
	int (*fn)(void *obj, int timeout_ms);
	void *obj;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = w->fn(w->obj, w->timeout_ms);
	atomic_store(&w->done, 1);
	return NULL;
}

static int do_event_wait(void *o, int ms)
{
	return ipc_event_wait(o, ms);
}
static int do_lock_acquire(void *o, int ms)
{
	return ipc_lock_acquire(o, ms);
}
static int do_barrier_wait(void *o, int ms)
{
	return ipc_barrier_wait(o, ms);
}

static void waiter_start(struct waiter *w, int (*fn)(void *, int), void *obj,
			 int timeout_ms)
{
	*w = (struct waiter){ .fn = fn, .obj = obj, .timeout_ms = timeout_ms };
	cr_assert_eq(pthread_create(&w->t, NULL, waiter_main, w), 0);
}

static int waiter_join(struct waiter *w)
{
	pthread_join(w->t, NULL);
	return w->rc;
}

/* Poll until the barrier has want waiters, at most timeout_ms. */
static bool wait_n_waiting(ipc_barrier *b, unsigned want, int timeout_ms)
{
	long end = t_now_ms() + timeout_ms;

	while (ipc_barrier_n_waiting(b) != want) {
		if (t_now_ms() > end)
			return false;
		usleep(5000);
	}
	return true;
}

/* ---- Event ------------------------------------------------------------- */

Test(net_sync, event_operations_keep_local_semantics)
{
	ipc_net_attr a = attr();
	struct waiter w;

	start(&a);
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	cr_assert_eq(ipc_event_connect(&rev, url, "ev", &a), 0);
	cr_assert_not(ipc_event_is_set(rev));
	cr_assert_eq(ipc_event_wait(rev, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_event_wait(rev, 200), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_event_wait(rev, -5), IPC_EINVAL);
	cr_assert_eq(ipc_event_set(rev), 0);
	cr_assert(ipc_event_is_set(lev), "a remote set is seen locally");
	cr_assert(ipc_event_is_set(rev));
	cr_assert_eq(ipc_event_wait(rev, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_event_set(rev), 0, "setting a set event is 0");
	cr_assert_eq(ipc_event_clear(lev), 0);
	cr_assert_not(ipc_event_is_set(rev), "a local clear is seen remotely");
	cr_assert_eq(ipc_event_clear(rev), 0);
	/* A remote waiter wakes when a local process sets it. */
	waiter_start(&w, do_event_wait, rev, 30000);
	cr_assert_eq(ipc_event_set(lev), 0);
	cr_assert_eq(waiter_join(&w), 0);
}

/* ipc_wait sleeps on an event's word in this host's memory: a remote
 * Event has none, so it is refused like a remote queue, not read. */
Test(net_sync, remote_event_in_ipc_wait_is_enotsup)
{
	ipc_net_attr a = attr();
	ipc_wait_item item = { .kind = IPC_WAIT_EVENT };

	start(&a);
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	cr_assert_eq(ipc_event_connect(&rev, url, "ev", &a), 0);
	cr_assert_eq(ipc_event_set(lev), 0);
	item.event = rev;
	cr_assert_eq(ipc_wait(&item, 1, IPC_NOWAIT), IPC_ENOTSUP);
	cr_assert_not(item.ready);
}

/* ---- Lock -------------------------------------------------------------- */

static void serve_lock(const ipc_net_attr *a)
{
	start(a);
	cr_assert_eq(ipc_lock_new(&llk), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", llk), 0);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "lk", a), 0);
	cr_assert_eq(ipc_lock_connect(&rlk2, url, "lk", a), 0);
}

/* A Semaphore of value and max served as "sem", and rsem on it (the
 * server runs already). */
static void add_sem(const ipc_net_attr *a, unsigned value, unsigned max)
{
	cr_assert_eq(ipc_sem_new(&lsem, value, max), 0);
	cr_assert_eq(ipc_server_add_sem(srv, "sem", lsem), 0);
	cr_assert_eq(ipc_sem_connect(&rsem, url, "sem", a), 0);
}

Test(net_sync, lock_operations_keep_local_semantics)
{
	ipc_net_attr a = attr();

	serve_lock(&a);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), IPC_EDEADLK,
		     "the handle already holds it");
	cr_assert_eq(ipc_lock_acquire(rlk2, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_lock_acquire(rlk2, 200), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), IPC_EAGAIN,
		     "held remotely: held for local processes too");
	cr_assert_eq(ipc_lock_release(rlk2), IPC_EPERM);
	cr_assert_eq(ipc_lock_release(rlk), 0);
	cr_assert_eq(ipc_lock_release(rlk), IPC_EPERM);
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, 150), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_lock_release(llk), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, -7), IPC_EINVAL);
	cr_assert_eq(ipc_lock_acquire(rlk2, 5000), 0);
	cr_assert_eq(ipc_lock_release(rlk2), 0);
}

Test(net_sync, blocked_remote_acquire_does_not_stall_other_clients)
{
	ipc_net_attr a = attr();
	struct waiter w;

	serve_lock(&a);
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	cr_assert_eq(ipc_event_connect(&rev, url, "ev", &a), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), 0);
	waiter_start(&w, do_lock_acquire, rlk2, 60000);
	/* While that acquire waits on the server, other clients are served,
	 * again and again. */
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(ipc_event_set(rev), 0);
		cr_assert(ipc_event_is_set(rev));
		cr_assert_eq(ipc_event_clear(rev), 0);
		cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), IPC_EDEADLK);
	}
	cr_assert_eq(atomic_load(&w.done), 0, "rlk still holds the lock");
	cr_assert_eq(ipc_lock_release(rlk), 0);
	cr_assert_eq(waiter_join(&w), 0, "the waiter got it once released");
	cr_assert_eq(ipc_lock_release(rlk2), 0);
}

Test(net_sync, lock_of_a_closed_handle_is_released)
{
	ipc_net_attr a = attr();

	serve_lock(&a);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), 0);
	ipc_lock_close(rlk);
	rlk = NULL;
	cr_assert_eq(ipc_lock_acquire(llk, 20000), 0);
	cr_assert_eq(ipc_lock_release(llk), 0);
}

Test(net_sync, server_stop_releases_what_remote_clients_hold)
{
	ipc_net_attr a = attr();

	serve_lock(&a);
	add_sem(&a, 1, 0);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), 0);
	ipc_server_stop(srv);
	srv = NULL;
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), 0,
		     "released (not abandoned) by the stopping server");
	cr_assert_eq(ipc_lock_release(llk), 0);
	cr_assert_eq(ipc_sem_value(lsem), 1);
}

Test(net_sync, lock_of_a_killed_holder_is_released_when_its_lease_expires)
{
	ipc_net_attr a = attr();
	char line[64];
	int fd;

	start(&a);
	cr_assert_eq(ipc_lock_new(&llk), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", llk), 0);
	peer = t_net_peer(&fd, "lockhold", url, "lk", key, NULL);
	cr_assert_gt(peer, 0);
	cr_assert(t_read_line(fd, line, sizeof(line), 30000),
		  "the remote client took the lock");
	cr_assert_str_eq(line, "held");
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(t_kill(peer), -SIGKILL);
	peer = 0;
	close(fd);
	/* No renewals come: the lease (2 s) expires and the server's thread
	 * for that client releases the lock — a plain 0, since it was
	 * released, not abandoned. */
	cr_assert_eq(ipc_lock_acquire(llk, 30000), 0);
	cr_assert_eq(ipc_lock_release(llk), 0);
}

/* ---- Semaphore --------------------------------------------------------- */

Test(net_sync, semaphore_operations_keep_local_semantics)
{
	ipc_net_attr a = attr();

	start(&a);
	add_sem(&a, 2, 3);
	cr_assert_eq(ipc_sem_value(rsem), 2);
	cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_acquire(rsem, 1000), 0);
	cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_acquire(rsem, 150), IPC_ETIMEDOUT);
	cr_assert_eq(ipc_sem_acquire(rsem, -3), IPC_EINVAL);
	cr_assert_eq(ipc_sem_value(lsem), 0);
	cr_assert_eq(ipc_sem_release(lsem), 0);
	cr_assert_eq(ipc_sem_value(rsem), 1, "a local release seen remotely");
	cr_assert_eq(ipc_sem_release(rsem), 0);
	cr_assert_eq(ipc_sem_release(rsem), 0);
	cr_assert_eq(ipc_sem_value(lsem), 3);
	cr_assert_eq(ipc_sem_release(rsem), IPC_EINVAL, "past the bound");
	cr_assert_eq(ipc_sem_value(rsem), 3);
}

/* A handle's held units are its acquires less its releases, release_n
 * counting n: closing gives back exactly the rest, never more. */
Test(net_sync, closing_gives_back_acquires_less_release_n_exactly)
{
	ipc_net_attr a = attr();

	start(&a);
	add_sem(&a, 3, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_sem_release_n(rsem, 2), 0);
	cr_assert_eq(ipc_sem_value(lsem), 2);
	ipc_sem_close(rsem);
	rsem = NULL;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_sem_acquire(lsem, 20000), 0,
			     "the unit still held came back");
	cr_assert_eq(ipc_sem_value(lsem), 0, "and only that one");
	/* A handle that releases more than it acquired holds nothing. */
	cr_assert_eq(ipc_sem_connect(&rsem, url, "sem", &a), 0);
	cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_sem_release_n(rsem, 4), 0);
	ipc_sem_close(rsem);
	rsem = NULL;
	ipc_server_stop(srv); /* every session has ended and given back */
	srv = NULL;
	cr_assert_eq(ipc_sem_value(lsem), 4, "nothing given back twice");
}

Test(net_sync, semaphore_units_of_closed_and_killed_clients_come_back)
{
	ipc_net_attr a = attr();
	char line[64];
	int fd;

	start(&a);
	add_sem(&a, 2, 0);
	cr_assert_eq(ipc_sem_acquire(rsem, IPC_NOWAIT), 0);
	ipc_sem_close(rsem);
	rsem = NULL;
	cr_assert_eq(ipc_sem_acquire(lsem, 20000), 0, "a closed handle's unit");
	cr_assert_eq(ipc_sem_acquire(lsem, 20000), 0);
	cr_assert_eq(ipc_sem_release(lsem), 0); /* one left, for the peer */
	peer = t_net_peer(&fd, "semhold", url, "sem", key, NULL);
	cr_assert_gt(peer, 0);
	cr_assert(t_read_line(fd, line, sizeof(line), 30000));
	cr_assert_str_eq(line, "held");
	cr_assert_eq(ipc_sem_value(lsem), 0);
	cr_assert_eq(t_kill(peer), -SIGKILL);
	peer = 0;
	close(fd);
	cr_assert_eq(ipc_sem_acquire(lsem, 30000), 0,
		     "a killed client's unit, at its lease's expiry");
	cr_assert_eq(ipc_sem_value(lsem), 0, "exactly one came back");
}

/* ---- Barrier ----------------------------------------------------------- */

static void serve_barrier(const ipc_net_attr *a, unsigned parties)
{
	start(a);
	cr_assert_eq(ipc_barrier_new(&lbar, parties), 0);
	cr_assert_eq(ipc_server_add_barrier(srv, "bar", lbar), 0);
	cr_assert_eq(ipc_barrier_connect(&rbar, url, "bar", a), 0);
}

Test(net_sync, barrier_operations_keep_local_semantics)
{
	ipc_net_attr a = attr();
	struct waiter w;
	int idx;

	serve_barrier(&a, 2);
	cr_assert_eq(ipc_barrier_parties(rbar), 2);
	cr_assert_eq(ipc_barrier_n_waiting(rbar), 0);
	cr_assert_not(ipc_barrier_broken(rbar));
	cr_assert_eq(ipc_barrier_wait(rbar, -3), IPC_EINVAL);
	/* A round of one local and one remote party. */
	waiter_start(&w, do_barrier_wait, lbar, 30000);
	cr_assert(wait_n_waiting(rbar, 1, 20000), "the local party waits");
	idx = ipc_barrier_wait(rbar, 30000);
	cr_assert(idx == 0 || idx == 1, "index %d", idx);
	cr_assert_eq(waiter_join(&w) + idx, 1, "indices 0 and 1");
	/* The remote wait is the first of the round this time. */
	waiter_start(&w, do_barrier_wait, rbar, 30000);
	cr_assert(wait_n_waiting(lbar, 1, 20000), "the remote party waits");
	cr_assert_eq(ipc_barrier_wait(lbar, 30000), 1);
	cr_assert_eq(waiter_join(&w), 0);
	/* A remote wait that times out breaks it, for everyone. */
	cr_assert_eq(ipc_barrier_wait(rbar, 300), IPC_ETIMEDOUT);
	cr_assert(ipc_barrier_broken(lbar));
	cr_assert(ipc_barrier_broken(rbar));
	cr_assert_eq(ipc_barrier_wait(rbar, IPC_NOWAIT), IPC_EBROKEN);
	cr_assert_eq(ipc_barrier_reset(rbar), 0);
	cr_assert_not(ipc_barrier_broken(lbar));
	cr_assert_eq(ipc_barrier_abort(rbar), 0);
	cr_assert(ipc_barrier_broken(lbar));
	cr_assert_eq(ipc_barrier_wait(lbar, IPC_NOWAIT), IPC_EBROKEN);
	cr_assert_eq(ipc_barrier_reset(lbar), 0);
	cr_assert_not(ipc_barrier_broken(rbar));
}

/* The calls added to the local objects work on remote handles too:
 * release(n), locked(), a barrier's default timeout. */
Test(net_sync, release_n_locked_and_default_timeout_work_remotely)
{
	ipc_net_attr a = attr();
	ipc_barrier_attr ba = { .timeout_ms = 300 };

	serve_lock(&a);
	cr_assert_eq(ipc_lock_locked(rlk), 0);
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_locked(rlk), 1, "held locally, seen remotely");
	cr_assert_eq(ipc_lock_release(llk), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_lock_locked(llk), 1, "held remotely, seen locally");
	cr_assert_eq(ipc_lock_release(rlk), 0);
	cr_assert_eq(ipc_lock_locked(rlk2), 0);

	add_sem(&a, 0, 5);
	cr_assert_eq(ipc_sem_release_n(rsem, 3), 0);
	cr_assert_eq(ipc_sem_value(lsem), 3);
	cr_assert_eq(ipc_sem_release_n(rsem, 3), IPC_EINVAL,
		     "past the bound: all or nothing");
	cr_assert_eq(ipc_sem_value(lsem), 3, "nothing released");
	cr_assert_eq(ipc_sem_release_n(rsem, 0), IPC_EINVAL);
	cr_assert_eq(ipc_sem_release_n(rsem, 2), 0);
	cr_assert_eq(ipc_sem_value(rsem), 5);

	cr_assert_eq(ipc_barrier_new_attr(&lbar, 2, &ba), 0);
	cr_assert_eq(ipc_server_add_barrier(srv, "bar", lbar), 0);
	cr_assert_eq(ipc_barrier_connect(&rbar, url, "bar", &a), 0);
	cr_assert_eq(ipc_barrier_default_timeout(rbar), 300);
	cr_assert_eq(ipc_barrier_wait(rbar, IPC_DEFAULT_TIMEOUT), IPC_ETIMEDOUT,
		     "the default timeout applies remotely");
	cr_assert(ipc_barrier_broken(lbar));
}

/* A remote barrier with no default timeout reports IPC_FOREVER. */
Test(net_sync, default_timeout_of_a_remote_barrier_without_one_is_forever)
{
	ipc_net_attr a = attr();

	serve_barrier(&a, 2);
	cr_assert_eq(ipc_barrier_default_timeout(rbar), IPC_FOREVER);
}

/* The longest default timeout crosses the wire without overflowing into
 * an error code (it reads as one millisecond less). */
Test(net_sync, longest_default_timeout_of_a_remote_barrier_is_not_an_error)
{
	ipc_net_attr a = attr();
	ipc_barrier_attr ba = { .timeout_ms = INT_MAX };

	start(&a);
	cr_assert_eq(ipc_barrier_new_attr(&lbar, 2, &ba), 0);
	cr_assert_eq(ipc_server_add_barrier(srv, "bar", lbar), 0);
	cr_assert_eq(ipc_barrier_connect(&rbar, url, "bar", &a), 0);
	cr_assert_eq(ipc_barrier_default_timeout(rbar), INT_MAX - 1);
}

Test(net_sync, long_remote_barrier_wait_keeps_its_lease)
{
	ipc_net_attr a = attr();
	struct waiter w;

	serve_barrier(&a, 2);
	waiter_start(&w, do_barrier_wait, rbar, IPC_FOREVER);
	cr_assert(wait_n_waiting(lbar, 1, 20000));
	/* Three leases of waiting: nanomsg's resends of the pending request
	 * renew the lease, so the barrier is not broken behind its back. */
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_event_wait(lev, 3 * 2000), IPC_ETIMEDOUT);
	cr_assert_not(ipc_barrier_broken(lbar));
	cr_assert_eq(ipc_barrier_wait(lbar, 30000), 1);
	cr_assert_eq(waiter_join(&w), 0);
}

Test(net_sync, vanished_barrier_party_breaks_the_barrier)
{
	ipc_net_attr a = attr();
	struct waiter w;
	char line[64];
	int fd;

	serve_barrier(&a, 3);
	peer = t_net_peer(&fd, "barrierwait", url, "bar", key, NULL);
	cr_assert_gt(peer, 0);
	cr_assert(wait_n_waiting(lbar, 1, 30000), "the remote party waits");
	waiter_start(&w, do_barrier_wait, lbar, 60000);
	cr_assert(wait_n_waiting(lbar, 2, 20000));
	cr_assert_eq(t_kill(peer), -SIGKILL);
	peer = 0;
	/* Its lease expires: the barrier breaks, as for a local party that
	 * dies waiting. */
	cr_assert_eq(waiter_join(&w), IPC_EBROKEN);
	cr_assert(ipc_barrier_broken(rbar));
	cr_assert_not(t_read_line(fd, line, sizeof(line), 10), "it died");
	close(fd);
}

Test(net_sync, server_stop_breaks_a_barrier_with_a_remote_waiter)
{
	ipc_net_attr a = attr();
	struct waiter w;
	long t0;
	int rc;

	serve_barrier(&a, 2);
	waiter_start(&w, do_barrier_wait, rbar, 60000);
	cr_assert(wait_n_waiting(lbar, 1, 20000));
	t0 = t_now_ms();
	ipc_server_stop(srv);
	srv = NULL;
	/* The server's thread for that client was in the wait: stopping
	 * breaks the barrier (the party left) instead of waiting it out. */
	cr_assert(ipc_barrier_broken(lbar), "the remote party left");
	cr_assert_lt(t_now_ms() - t0, 30000, "stop did not wait out the wait");
	cr_assert_eq(ipc_barrier_reset(lbar), 0);
	/* The remote waiter's answer may be lost with the server: then it
	 * gives up at its own deadline. */
	rc = waiter_join(&w);
	cr_assert(rc == IPC_EBROKEN || rc == IPC_ETIMEDOUT ||
			  rc == IPC_ECONNREFUSED,
		  "rc %d", rc);
}

/* ---- Connecting and failures ------------------------------------------- */

Test(net_sync, connect_errors)
{
	ipc_net_attr a = attr(), wrong = attr(), none = attr();

	wrong.authkey = "not the key";
	wrong.authkey_len = strlen(wrong.authkey);
	none.authkey = NULL;
	none.authkey_len = 0;
	start(&a);
	cr_assert_eq(ipc_lock_new(&llk), 0);
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", llk), 0);
	cr_assert_eq(ipc_server_add_event(srv, "lk", lev), IPC_EEXIST);
	cr_assert_eq(ipc_server_add_event(srv, "bad name", lev), IPC_EINVAL);
	cr_assert_eq(ipc_server_add_event(srv, "ev", NULL), IPC_EINVAL);
	cr_assert_eq(ipc_server_add_lock(NULL, "x", llk), IPC_EINVAL);
	cr_assert_eq(ipc_server_add_sem(srv, NULL, lsem), IPC_EINVAL);
	cr_assert_eq(ipc_server_add_barrier(srv, "b", NULL), IPC_EINVAL);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	cr_assert_eq(ipc_lock_connect(NULL, url, "lk", &a), IPC_EINVAL);
	cr_assert_eq(ipc_lock_connect(&rlk, NULL, "lk", &a), IPC_EINVAL);
	cr_assert_null(rlk);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "nothing", &a), IPC_ENOENT);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "ev", &a), IPC_EPROTO,
		     "served, but an Event");
	cr_assert_eq(ipc_sem_connect(&rsem, url, "lk", &a), IPC_EPROTO);
	cr_assert_eq(ipc_barrier_connect(&rbar, url, "ev", &a), IPC_EPROTO);
	cr_assert_eq(ipc_event_connect(&rev, url, "lk", &a), IPC_EPROTO);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "lk", &wrong), IPC_EAUTH);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "lk", &none), IPC_EAUTH);
	cr_assert_null(rlk);
	cr_assert_eq(ipc_lock_connect(&rlk, url, "lk", &a), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, 1000), 0);
	cr_assert_eq(ipc_lock_release(rlk), 0);
}

Test(net_sync, server_gone_fails_within_the_timeout_and_reconnects)
{
	ipc_net_attr a = attr();
	long t0;
	int rc;

	a.timeout_ms = 700;
	serve_lock(&a);
	cr_assert_eq(ipc_event_new(&lev), 0);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	cr_assert_eq(ipc_event_connect(&rev, url, "ev", &a), 0);
	ipc_server_stop(srv);
	srv = NULL;
	t0 = t_now_ms();
	rc = ipc_lock_acquire(rlk, 400);
	cr_assert(rc == IPC_ECONNREFUSED || rc == IPC_ETIMEDOUT, "rc %d", rc);
	cr_assert_lt(t_now_ms() - t0, 400 + 2000, "bounded by the timeout");
	t0 = t_now_ms();
	rc = ipc_event_set(rev);
	cr_assert(rc == IPC_ECONNREFUSED || rc == IPC_ETIMEDOUT, "rc %d", rc);
	cr_assert_not(ipc_event_is_set(rev));
	cr_assert_lt(t_now_ms() - t0, 2 * 700 + 2000);
	/* The same objects served again at the same URL: the handles find
	 * them by themselves. */
	cr_assert_eq(ipc_server_start(&srv, url, &a), 0);
	cr_assert_eq(ipc_server_add_lock(srv, "lk", llk), 0);
	cr_assert_eq(ipc_server_add_event(srv, "ev", lev), 0);
	for (int i = 0; i < 30; i++) { /* a reconnect may take a few tries */
		rc = ipc_lock_acquire(rlk, 1000);
		if (rc == 0)
			break;
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(ipc_event_set(rev), 0);
	cr_assert(ipc_event_is_set(lev));
	cr_assert_eq(ipc_lock_release(rlk), 0);
}

/* ipc-serve serves each kind from its command line: an Event, a Lock, a
 * Semaphore made with its value and bound, a Barrier with its parties. */
Test(net_sync, ipc_serve_serves_events_locks_semaphores_and_barriers)
{
	const char *top = getenv("top_builddir");
	ipc_net_attr a = { .timeout_ms = 5000 };
	char path[512], sock_url[160], semspec[80], barspec[80];
	int rc = IPC_ETIMEDOUT;

	snprintf(path, sizeof(path), "%s/tools/ipc-serve", top ? top : ".");
	t_name(names[0], sizeof(names[0]), "srv-ev");
	t_name(names[1], sizeof(names[1]), "srv-lk");
	t_name(names[2], sizeof(names[2]), "srv-sem");
	t_name(names[3], sizeof(names[3]), "srv-bar");
	snprintf(sock_path, sizeof(sock_path), "/tmp/libipc-sync-%d.sock",
		 (int)getpid());
	snprintf(sock_url, sizeof(sock_url), "ipc://%s", sock_path);
	snprintf(semspec, sizeof(semspec), "%s:2:3", names[2]);
	snprintf(barspec, sizeof(barspec), "%s:1", names[3]);
	peer = fork();
	cr_assert_geq(peer, 0);
	if (peer == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(path, path, sock_url, "--event", names[0], "--lock",
		      names[1], "--sem", semspec, "--barrier", barspec,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && rc != 0; i++) { /* until it listens */
		rc = ipc_event_connect(&rev, sock_url, names[0], &a);
		if (rc != 0)
			usleep(50000);
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(ipc_event_set(rev), 0);
	cr_assert_eq(ipc_event_open(&lev, names[0], 0), 0);
	cr_assert(ipc_event_is_set(lev), "the named Event, served");
	cr_assert_eq(ipc_lock_connect(&rlk, sock_url, names[1], &a), 0);
	cr_assert_eq(ipc_lock_acquire(rlk, 1000), 0);
	cr_assert_eq(ipc_lock_open(&llk, names[1], 0), 0);
	cr_assert_eq(ipc_lock_acquire(llk, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_lock_release(rlk), 0);
	cr_assert_eq(ipc_sem_connect(&rsem, sock_url, names[2], &a), 0);
	cr_assert_eq(ipc_sem_value(rsem), 2, "made with VALUE");
	cr_assert_eq(ipc_sem_release(rsem), 0);
	cr_assert_eq(ipc_sem_release(rsem), IPC_EINVAL, "bounded by MAX");
	cr_assert_eq(ipc_barrier_connect(&rbar, sock_url, names[3], &a), 0);
	cr_assert_eq(ipc_barrier_parties(rbar), 1, "made with PARTIES");
	cr_assert_eq(ipc_barrier_wait(rbar, 1000), 0, "one party: passes");
	cr_assert_eq(ipc_lock_connect(&rlk2, sock_url, names[0], &a),
		     IPC_EPROTO, "an Event is not a Lock");
}
