/* SPDX-License-Identifier: MIT */
/*
 * Peer processes of one measured run, and the handshake that starts them
 * together.
 *
 * Channel 0 goes from the senders to the receivers; channels 1.. go back
 * (the ping-pong's reply). A peer attaches its receiving ends first and
 * reports ready; once every peer has, it attaches its sending ends (a
 * nanomsg or ZeroMQ connect, a remote queue's handshake: they find the
 * other side listening), reports ready again and waits for the go. So the
 * parent can start syscall counters between the last ready and the go, and
 * nobody's clock starts while another peer is still setting up.
 *
 * The end: receivers exit once they have seen their end marker; then the
 * parent releases the senders, which detach only now — closing a nanomsg
 * or ZeroMQ socket before the receiver has drained it could drop the tail.
 * Transports whose every send is acknowledged once stored (T_ACKED: the
 * remote queue) go the other way round: a server must outlive its
 * clients' closes (a close is a round trip, which waits a second for a
 * server that has stopped) and the acknowledgement of their last put, so
 * every peer closes its sending ends of those as soon as its work is done
 * and counts them in shared memory, and a receiving end is detached only
 * once the count is complete.
 * Every wait of the parent is bounded, and a stuck run is killed and
 * reported failed rather than hanging the benchmark.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER_SETUP_TIMEOUT_MS 30000
#define PEER_RUN_TIMEOUT_S 120.0

struct peer_set {
	struct channel *c;
	int nch, nsend, nrecv;
	pid_t pid[BENCH_MAX_PEERS * 2];
	bool reaped[BENCH_MAX_PEERS * 2];
	int status[BENCH_MAX_PEERS * 2];
	int ready[2], phase[2], go[2], done[2];
	/* T_ACKED sending ends closed, and how many there are. */
	_Atomic int *acked_closed;
	int acked_sends;
};

#define ACKED_CLOSE_TIMEOUT_S 30.0

static void write_bytes(int fd, int n)
{
	char b[2 * BENCH_MAX_PEERS];

	memset(b, 'g', sizeof(b));
	while (n > 0) {
		ssize_t w = write(fd, b, (size_t)n);
		if (w < 0 && errno != EINTR)
			return;
		if (w > 0)
			n -= (int)w;
	}
}

static int read_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(fd, &b, 1);
		if (n == 1)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

static void attach_ends(struct peer_set *ps, bool sender, enum bench_role want)
{
	for (int i = 0; i < ps->nch; i++) {
		/* channel 0 forward, the others back */
		enum bench_role r = (i == 0) == sender ? ROLE_SEND : ROLE_RECV;
		if (r == want && ps->c[i].t->attach(&ps->c[i], r) != 0)
			_exit(4);
	}
}

/* In a peer: its peer set and side, for peer_wait_released. */
static struct peer_set *peer_self;
static bool peer_sender;
static bool peer_acked_closed;

static bool acked(const struct channel *c)
{
	return (c->t->flags & T_ACKED) != 0;
}

/* Close this peer's sending ends of T_ACKED transports (every message
 * they carried has been acknowledged as stored), once, and count them. */
static void close_acked_sends(void)
{
	struct peer_set *ps = peer_self;

	if (ps == NULL || peer_acked_closed)
		return;
	peer_acked_closed = true;
	for (int i = 0; i < ps->nch; i++) {
		bool sends = (i == 0) == peer_sender;
		if (sends && acked(&ps->c[i])) {
			if (ps->c[i].t->detach != NULL)
				ps->c[i].t->detach(&ps->c[i], ROLE_SEND);
			atomic_fetch_add(ps->acked_closed, 1);
		}
	}
}

/* Until every peer has closed its T_ACKED sending ends; bounded (a peer
 * that failed is killed by the parent). */
static void wait_acked_closed(struct peer_set *ps)
{
	struct timespec ms = { 0, 1000000 };
	double end = bench_now() + ACKED_CLOSE_TIMEOUT_S;

	while (atomic_load(ps->acked_closed) < ps->acked_sends &&
	       bench_now() < end)
		nanosleep(&ms, NULL); /* the others are closing: let them run */
}

static void detach_ends(struct peer_set *ps, bool sender)
{
	close_acked_sends();
	for (int i = 0; i < ps->nch; i++) {
		enum bench_role r = (i == 0) == sender ? ROLE_SEND : ROLE_RECV;
		if (ps->c[i].t->detach == NULL ||
		    (r == ROLE_SEND && acked(&ps->c[i])))
			continue; /* closed already */
		if (r == ROLE_RECV && acked(&ps->c[i]))
			wait_acked_closed(ps);
		ps->c[i].t->detach(&ps->c[i], r);
	}
}

/* In a peer: the release pipe, once; -1 once it has been read. */
static int peer_done_fd = -1;

void peer_wait_released(void)
{
	close_acked_sends(); /* the receivers wait for them before leaving */
	if (peer_done_fd >= 0)
		(void)read_byte(peer_done_fd, -1);
	peer_done_fd = -1;
}

static void peer_main(struct peer_set *ps, bool sender, int index, peer_fn fn,
		      void *arg, enum bench_pinning pin)
{
	int rc;

	close(ps->ready[0]);
	close(ps->phase[1]);
	close(ps->go[1]);
	close(ps->done[1]);
	if (pin == PIN_SPREAD)
		bench_pin(sender ? 0 : 1);
	else if (pin == PIN_ONE)
		bench_pin(bench_ncpu() - 1);
	attach_ends(ps, sender, ROLE_RECV);
	write_bytes(ps->ready[1], 1);
	if (read_byte(ps->phase[0], -1) != 0)
		_exit(5);
	attach_ends(ps, sender, ROLE_SEND);
	write_bytes(ps->ready[1], 1);
	if (read_byte(ps->go[0], -1) != 0)
		_exit(5);
	peer_done_fd = sender ? ps->done[0] : -1;
	peer_self = ps;
	peer_sender = sender;
	rc = fn(ps->c, index, arg);
	peer_wait_released();
	detach_ends(ps, sender);
	_exit(rc);
}

static bool all_ready(struct peer_set *ps)
{
	int n = ps->nsend + ps->nrecv;

	for (int i = 0; i < n; i++)
		if (read_byte(ps->ready[0], PEER_SETUP_TIMEOUT_MS) != 0)
			return false;
	return true;
}

static void kill_all(struct peer_set *ps)
{
	for (int i = 0; i < ps->nsend + ps->nrecv; i++)
		if (!ps->reaped[i] && ps->pid[i] > 0)
			kill(ps->pid[i], SIGKILL);
}

static void close_pipes(struct peer_set *ps)
{
	int *fds[] = { ps->ready, ps->phase, ps->go, ps->done };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fds[i][0] >= 0)
			close(fds[i][0]);
		if (fds[i][1] >= 0)
			close(fds[i][1]);
		fds[i][0] = fds[i][1] = -1;
	}
}

/* Wait until peers [from, to) have exited, or the deadline; false if one
 * is late or any peer has failed (then the others would wait forever). */
static bool reap_range(struct peer_set *ps, int from, int to, double deadline)
{
	int n = ps->nsend + ps->nrecv;

	for (;;) {
		bool left = false;
		for (int i = 0; i < n; i++) {
			if (!ps->reaped[i] &&
			    waitpid(ps->pid[i], &ps->status[i], WNOHANG) ==
				    ps->pid[i])
				ps->reaped[i] = true;
			if (ps->reaped[i] && (!WIFEXITED(ps->status[i]) ||
					      WEXITSTATUS(ps->status[i]) != 0))
				return false;
			if (!ps->reaped[i] && i >= from && i < to)
				left = true;
		}
		if (!left)
			return true;
		if (bench_now() > deadline)
			return false;
		usleep(2000); /* the parent only waits; the peers do the work */
	}
}

static void teardown(struct peer_set *ps)
{
	for (int i = 0; i < ps->nch; i++)
		if (ps->c[i].t->teardown != NULL)
			ps->c[i].t->teardown(&ps->c[i]);
}

static int finish_all(struct peer_set *ps, bool ok)
{
	int n = ps->nsend + ps->nrecv, rc = ok ? 0 : -1;

	if (!ok)
		kill_all(ps);
	for (int i = 0; i < n; i++) /* all exited, or killed just now */
		if (!ps->reaped[i] &&
		    waitpid(ps->pid[i], &ps->status[i], 0) == ps->pid[i])
			ps->reaped[i] = true;
	for (int i = 0; i < n; i++)
		if (!ps->reaped[i] || !WIFEXITED(ps->status[i]) ||
		    WEXITSTATUS(ps->status[i]) != 0)
			rc = -1;
	close_pipes(ps);
	teardown(ps);
	bench_unshare(ps->acked_closed, sizeof(*ps->acked_closed));
	free(ps);
	return rc;
}

struct peer_set *peers_start(struct channel *c, int nch, int nsend,
			     peer_fn send_fn, int nrecv, peer_fn recv_fn,
			     void *arg, enum bench_pinning pin)
{
	struct peer_set *ps = calloc(1, sizeof(*ps));

	if (ps == NULL || nsend + nrecv > 2 * BENCH_MAX_PEERS)
		bench_die("peers");
	*ps = (struct peer_set){
		.c = c, .nch = nch, .nsend = nsend, .nrecv = nrecv
	};
	ps->acked_closed = bench_shared(sizeof(*ps->acked_closed));
	/* Channel 0's senders are the senders, the others' the receivers. */
	for (int i = 0; i < nch; i++)
		if (acked(&c[i]))
			ps->acked_sends += i == 0 ? nsend : nrecv;
	if (pipe(ps->ready) || pipe(ps->phase) || pipe(ps->go) ||
	    pipe(ps->done))
		bench_die("pipe");
	fflush(NULL);
	/* pid[0 .. nsend) senders, then receivers */
	for (int i = 0; i < nsend + nrecv; i++) {
		bool sender = i < nsend;
		pid_t pid = fork();
		if (pid < 0) {
			ps->nsend = sender ? i : nsend;
			ps->nrecv = sender ? 0 : i - nsend;
			finish_all(ps, false);
			return NULL;
		}
		if (pid == 0)
			peer_main(ps, sender, sender ? i : i - nsend,
				  sender ? send_fn : recv_fn, arg, pin);
		ps->pid[i] = pid;
	}
	close(ps->ready[1]);
	ps->ready[1] = -1;
	if (!all_ready(ps)) {
		finish_all(ps, false);
		return NULL;
	}
	write_bytes(ps->phase[1], nsend + nrecv);
	if (!all_ready(ps)) {
		finish_all(ps, false);
		return NULL;
	}
	return ps;
}

int peers_pids(struct peer_set *ps, pid_t *pids, int cap)
{
	int n = 0;

	for (int i = 0; i < ps->nsend + ps->nrecv && n < cap; i++)
		pids[n++] = ps->pid[i];
	return n;
}

void peers_go(struct peer_set *ps)
{
	write_bytes(ps->go[1], ps->nsend + ps->nrecv);
}

int peers_finish(struct peer_set *ps)
{
	double deadline = bench_now() + PEER_RUN_TIMEOUT_S;
	bool ok = reap_range(ps, ps->nsend, ps->nsend + ps->nrecv, deadline);

	if (!ok)
		fprintf(stderr, "ipc-bench: %s: a receiver did not finish\n",
			ps->nch > 0 ? ps->c[0].t->name : "primitive");
	write_bytes(ps->done[1], ps->nsend);
	if (ok)
		ok = reap_range(ps, 0, ps->nsend, bench_now() + 30);
	return finish_all(ps, ok);
}
