/* SPDX-License-Identifier: MIT */
/*
 * The workloads, each one producer and one consumer loop for every
 * transport: one-way stream, the producers x consumers grid, the one-core
 * stream (with a second, strace'd run for syscall counts), ping-pong
 * latency and wake-up latency after 1 ms idle.
 *
 * Streams are time-bounded: every producer sends until one window after
 * the first producer started (stream_stop), then the last producer to
 * finish sends one end marker per consumer.
 * Every queue here is FIFO, so each consumer sees its marker only after
 * every data message has been taken. Throughput is timed at the receivers:
 * from the earliest producer start to the last consumer's marker, all
 * messages received (and checked: length and producer tag) divided by that
 * time. A single-pair stream first sends a warm-up (connections made,
 * pages faulted in) and starts its clock only once the consumer has taken
 * all of it, with the queue empty. CPU time is getrusage of every peer
 * (all its threads) over its measured loop, summed.
 */
#include "bench.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MSG_DATA = 0, MSG_END = 1 };

static int channel_seq;

static bool setup_channel(struct channel *c, const struct transport *t,
			  size_t size, const char *workload, const char *param)
{
	char note[128] = "";

	*c = (struct channel){ .t = t, .msg_size = size, .tag = channel_seq++ };
	if (t->max_size != 0 && size > t->max_size) {
		result_note(workload, t->name, param,
			    "over its largest message");
		return false;
	}
	if (t->setup(c, note) != 0) {
		result_note(workload, t->name, param,
			    note[0] ? note : "setup failed");
		return false;
	}
	return true;
}

/* ---- streams ---------------------------------------------------------- */
struct stream_sh {
	size_t size;
	double window;
	int warmup, np, nc;
	int ack[2]; /* consumer -> producer: warm-up taken */
	_Atomic int producers_done;
	_Atomic double stop; /* every producer's end: see stream_stop */
	double t_start[BENCH_MAX_PEERS], t_end[BENCH_MAX_PEERS];
	long sent[BENCH_MAX_PEERS], got[BENCH_MAX_PEERS];
	long from[BENCH_MAX_PEERS][BENCH_MAX_PEERS]; /* [consumer][producer] */
	double cpu[2 * BENCH_MAX_PEERS];
};

/* Batches of 64 messages, or of 256 KiB when messages are larger. */
#define BATCH_MAX 64

static size_t batch_size(size_t size)
{
	size_t b = ((size_t)256 << 10) / size;

	return b < 1 ? 1 : b > BATCH_MAX ? BATCH_MAX : b;
}

/* The batch consumer: the same checks per message; the end marker is the
 * last message of its batch (one producer, one consumer, FIFO). */
static int batch_consume(struct channel *c, struct stream_sh *sh, long *from,
			 long *got)
{
	size_t b = batch_size(sh->size);
	unsigned char *bufs = malloc(b * sh->size);
	struct iovec iov[BATCH_MAX];

	if (bufs == NULL)
		return 3;
	for (;;) {
		for (size_t j = 0; j < b; j++)
			iov[j] =
				(struct iovec){ bufs + j * sh->size, sh->size };
		size_t n = c->t->recv_many(c, iov, b);
		for (size_t j = 0; j < n; j++) {
			const unsigned char *m = iov[j].iov_base;
			if (iov[j].iov_len != sh->size || m[1] >= sh->np)
				goto bad;
			if (m[0] == MSG_END) {
				free(bufs);
				return j + 1 == n ? 0 : 6;
			}
			from[m[1]]++;
			(*got)++;
		}
	}
bad:
	free(bufs);
	return 6;
}

/* When every producer stops sending: one window after the first producer
 * started. One common end, not a window from each producer's own start:
 * with more peers than CPUs, a producer that starts late would otherwise
 * run on alone past the others' end, with the consumers to itself, and
 * the per-producer counts would measure the start-up order. */
static double stream_stop(struct stream_sh *sh, double start)
{
	double none = 0, stop = start + sh->window;

	if (atomic_compare_exchange_strong(&sh->stop, &none, stop))
		return stop;
	return none;
}

static int stream_producer(struct channel *c, int p, void *arg)
{
	struct stream_sh *sh = arg;
	unsigned char *buf = malloc(sh->size);
	long mask = sh->size >= 4096 ? 0 : 63, i;
	double cpu0, stop;
	char b;

	if (buf == NULL)
		return 3;
	memset(buf, 'x', sh->size);
	buf[0] = MSG_DATA;
	buf[1] = (unsigned char)p;
	for (int w = 0; w < sh->warmup; w++)
		c->t->send(c, buf, sh->size);
	if (sh->warmup > 0 && read(sh->ack[0], &b, 1) != 1)
		return 3;
	cpu0 = bench_cpu_self();
	sh->t_start[p] = bench_now();
	stop = stream_stop(sh, sh->t_start[p]);
	/* The clock is read every 64 small messages: a read per message
	 * would cost the fastest rows a fifth of their rate. */
	if (c->t->send_many != NULL) {
		struct iovec iov[BATCH_MAX];
		size_t nb = batch_size(sh->size);
		for (size_t j = 0; j < nb; j++)
			iov[j] = (struct iovec){ buf, sh->size };
		for (i = 0; bench_now() < stop; i += (long)nb)
			c->t->send_many(c, iov, nb);
	} else {
		for (i = 0;; i++) {
			if ((i & mask) == 0 && bench_now() >= stop)
				break;
			c->t->send(c, buf, sh->size);
		}
	}
	sh->sent[p] = i;
	if (atomic_fetch_add(&sh->producers_done, 1) == sh->np - 1) {
		buf[0] = MSG_END;
		for (int k = 0; k < sh->nc; k++)
			c->t->send(c, buf, sh->size);
	}
	peer_wait_released(); /* background threads may still be sending */
	sh->cpu[p] = bench_cpu_self() - cpu0;
	free(buf);
	return 0;
}

static int stream_consumer(struct channel *c, int k, void *arg)
{
	struct stream_sh *sh = arg;
	unsigned char *buf = malloc(BENCH_MAX_MSG);
	long from[BENCH_MAX_PEERS] = { 0 }, got = 0;
	double cpu0;

	if (buf == NULL)
		return 3;
	for (int w = 0; w < sh->warmup; w++)
		if (c->t->recv(c, buf, BENCH_MAX_MSG) != sh->size)
			return 6;
	if (sh->warmup > 0 && write(sh->ack[1], "a", 1) != 1)
		return 3;
	cpu0 = bench_cpu_self();
	if (c->t->recv_many != NULL) {
		if (batch_consume(c, sh, from, &got) != 0)
			return 6;
	} else {
		for (;;) {
			size_t n = c->t->recv(c, buf, BENCH_MAX_MSG);
			if (n != sh->size || buf[1] >= sh->np)
				return 6; /* not what was sent */
			if (buf[0] == MSG_END)
				break;
			from[buf[1]]++;
			got++;
		}
	}
	sh->t_end[k] = bench_now();
	sh->cpu[sh->np + k] = bench_cpu_self() - cpu0;
	sh->got[k] = got;
	memcpy(sh->from[k], from, sizeof(from));
	free(buf);
	return 0;
}

struct stream_out {
	double rate, cpu_per_msg;
	double seconds; /* the receivers' clock: first start to last end */
	double wall;	/* the parent's clock: the go to every peer's exit */
	long msgs;
	long per_producer[BENCH_MAX_PEERS];
	int warmup;
	double sys[3];
};

/* One run; false (and a note on the result) when the row failed. */
static bool stream_once(const struct transport *t, size_t size, int np, int nc,
			double window, enum bench_pinning pin,
			bool count_syscalls, const char *workload,
			const char *param, struct stream_out *out)
{
	struct stream_sh *sh = bench_shared(sizeof(*sh));
	struct channel c;
	struct peer_set *ps;
	struct syscount sc;
	bool counting = false, ok = false;
	char note[128] = "";

	memset(out, 0, sizeof(*out));
	out->sys[0] = out->sys[1] = out->sys[2] = -1;
	if (!setup_channel(&c, t, size, workload, param))
		goto out;
	sh->size = size;
	sh->window = window;
	sh->np = np;
	sh->nc = nc;
	/* A warm-up of about 1 MiB, 2 .. 1000 messages. */
	sh->warmup =
		np == 1 && nc == 1
			? (int)fmax(2, fmin(1000, (1 << 20) / (double)size))
			: 0;
	out->warmup = sh->warmup;
	if (pipe(sh->ack) != 0)
		bench_die("pipe");
	c.nsend = np;
	c.nrecv = nc;
	ps = peers_start(&c, 1, np, stream_producer, nc, stream_consumer, sh,
			 pin);
	if (ps == NULL) {
		result_fail(workload, t->name, param,
			    "a peer failed to attach");
		goto close_ack;
	}
	if (count_syscalls) {
		pid_t pids[2 * BENCH_MAX_PEERS];
		int n = peers_pids(ps, pids, 2 * BENCH_MAX_PEERS);
		counting = syscount_start(&sc, pids, n, note);
		if (!counting)
			result_note(workload, t->name, param, note);
	}
	double go = bench_now();
	peers_go(ps);
	int finished = peers_finish(ps);
	out->wall = bench_now() - go;
	if (finished != 0) {
		result_fail(workload, t->name, param,
			    "a peer failed (wrong message, or a call failed)");
		if (counting)
			syscount_finish(&sc, out->sys);
		goto close_ack;
	}
	if (counting)
		syscount_finish(&sc, out->sys);
	double t0 = INFINITY, t1 = 0, cpu = 0;
	long sent = 0;
	for (int p = 0; p < np; p++) {
		t0 = fmin(t0, sh->t_start[p]);
		sent += sh->sent[p];
		for (int k = 0; k < nc; k++)
			out->per_producer[p] += sh->from[k][p];
	}
	for (int k = 0; k < nc; k++) {
		t1 = fmax(t1, sh->t_end[k]);
		out->msgs += sh->got[k];
	}
	for (int i = 0; i < np + nc; i++)
		cpu += sh->cpu[i];
	if (out->msgs != sent || out->msgs == 0 || t1 <= t0) {
		result_fail(workload, t->name, param, "messages lost");
		goto close_ack;
	}
	out->seconds = t1 - t0;
	out->rate = (double)out->msgs / out->seconds;
	out->cpu_per_msg = cpu / (double)out->msgs;
	ok = true;
close_ack:
	close(sh->ack[0]);
	close(sh->ack[1]);
out:
	bench_unshare(sh, sizeof(*sh));
	return ok;
}

static void size_param(char *p, size_t cap, size_t size)
{
	snprintf(p, cap, "%zu", size);
}

/* What sanity.c checks a run's figures against: its message count, the
 * receivers' and the parent's clocks, and the producers' window. */
static void add_run(const char *workload, const char *name, const char *param,
		    const struct stream_out *r, double window)
{
	result_add(workload, name, param, "msgs", (double)r->msgs);
	result_add(workload, name, param, "seconds", r->seconds);
	result_add(workload, name, param, "wall_s", r->wall);
	result_add(workload, name, param, "window_s", window);
}

void run_stream(const struct bench_opts *o, const struct transport *t,
		size_t size)
{
	struct stream_out r;
	char param[24];

	size_param(param, sizeof(param), size);
	if (!stream_once(t, size, 1, 1, o->window, PIN_SPREAD, false, "stream",
			 param, &r))
		return;
	result_add("stream", t->name, param, "msgs_per_s", r.rate);
	result_add("stream", t->name, param, "MB_per_s",
		   r.rate * (double)size / 1e6);
	result_add("stream", t->name, param, "cpu_us_per_msg",
		   r.cpu_per_msg * 1e6);
	add_run("stream", t->name, param, &r, o->window);
}

void run_grid(const struct bench_opts *o, const struct transport *t, int np,
	      int nc)
{
	struct stream_out r;
	char param[24], metric[24];
	long lo = -1, hi = 0;

	snprintf(param, sizeof(param), "%dx%d", np, nc);
	if (!stream_once(t, 64, np, nc, o->grid_window, PIN_NONE, false, "grid",
			 param, &r))
		return;
	result_add("grid", t->name, param, "msgs_per_s", r.rate);
	add_run("grid", t->name, param, &r, o->grid_window);
	for (int p = 0; p < np; p++) {
		snprintf(metric, sizeof(metric), "producer%d", p);
		result_add("grid", t->name, param, metric,
			   (double)r.per_producer[p]);
		lo = lo < 0 || r.per_producer[p] < lo ? r.per_producer[p] : lo;
		hi = r.per_producer[p] > hi ? r.per_producer[p] : hi;
	}
	result_add("grid", t->name, param, "max_over_min",
		   lo > 0 ? (double)hi / (double)lo : INFINITY);
}

/* Both peers on one CPU: 64 B stream; then the same row again under
 * strace for its syscalls per message. */
void run_onecore(const struct bench_opts *o, const struct transport *t)
{
	struct stream_out r;

	if (!stream_once(t, 64, 1, 1, o->window, PIN_ONE, false, "onecore",
			 "64", &r))
		return;
	result_add("onecore", t->name, "64", "msgs_per_s", r.rate);
	result_add("onecore", t->name, "64", "cpu_us_per_msg",
		   r.cpu_per_msg * 1e6);
	add_run("onecore", t->name, "64", &r, o->window);
	if (!stream_once(t, 64, 1, 1, o->window, PIN_ONE, true, "onecore", "64",
			 &r) ||
	    r.sys[SC_ALL] < 0)
		return;
	/* The counted run's messages include its warm-up. */
	double msgs = (double)(r.msgs + r.warmup);
	result_add("onecore", t->name, "64", "syscalls_per_msg",
		   r.sys[SC_ALL] / msgs);
	result_add("onecore", t->name, "64", "futex_per_msg",
		   r.sys[SC_FUTEX] / msgs);
	result_add("onecore", t->name, "64", "membarrier_calls",
		   r.sys[SC_MEMBARRIER]);
	result_add("onecore", t->name, "64", "counted_msgs", msgs);
}

/* ---- ping-pong latency -------------------------------------------------- */
#define PP_SIZE 64
#define PP_WARMUP 1000
#define PP_MAX_SAMPLES (1L << 21)
/* The histogram: bin i counts [2^(i/2), 2^((i+1)/2)) x 100 ns, the first
 * also everything below, the last everything above (about 100 ms). */
#define HIST_BINS 40

struct latency_sh {
	double window;
	int rounds;   /* wake-up: samples wanted */
	double t_go;  /* the parent's clock just before the go */
	char why[96]; /* a peer's reason for failing the run */
	long n;
	double p50, p99, p999, max;
	long hist[HIST_BINS];
	double samples[1100];
};

static void summarize(struct latency_sh *sh, double *s, long n)
{
	bench_sort(s, n);
	sh->n = n;
	sh->p50 = bench_percentile(s, n, 50);
	sh->p99 = bench_percentile(s, n, 99);
	sh->p999 = bench_percentile(s, n, 99.9);
	sh->max = n > 0 ? s[n - 1] : NAN;
	for (long i = 0; i < n; i++) {
		int b = s[i] <= 0.1 ? 0 : (int)floor(2 * log2(s[i] / 0.1));
		sh->hist[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
	}
}

static int pp_initiator(struct channel *c, int index, void *arg)
{
	struct latency_sh *sh = arg;
	unsigned char buf[PP_SIZE] = { 0 };
	double *s = malloc(sizeof(double) * PP_MAX_SAMPLES), stop;
	long n = 0;

	(void)index;
	if (s == NULL)
		return 3;
	for (int i = 0; i < PP_WARMUP; i++) {
		c[0].t->send(&c[0], buf, PP_SIZE);
		c[1].t->recv(&c[1], buf, PP_SIZE);
	}
	stop = bench_now() + sh->window;
	while (n < PP_MAX_SAMPLES) {
		double t0 = bench_now();
		c[0].t->send(&c[0], buf, PP_SIZE);
		if (c[1].t->recv(&c[1], buf, PP_SIZE) != PP_SIZE)
			return 6;
		double t1 = bench_now();
		s[n++] = (t1 - t0) * 1e6 / 2; /* one way, microseconds */
		if (t1 >= stop)
			break;
	}
	buf[0] = MSG_END;
	c[0].t->send(&c[0], buf, PP_SIZE);
	summarize(sh, s, n);
	free(s);
	return 0;
}

static int pp_echo(struct channel *c, int index, void *arg)
{
	unsigned char buf[PP_SIZE];

	(void)index;
	(void)arg;
	for (;;) {
		if (c[0].t->recv(&c[0], buf, PP_SIZE) != PP_SIZE)
			return 6;
		if (buf[0] == MSG_END)
			return 0;
		c[1].t->send(&c[1], buf, PP_SIZE);
	}
}

static void add_latency(const char *workload, const char *name,
			const struct latency_sh *sh)
{
	result_add(workload, name, "64", "p50_us", sh->p50);
	result_add(workload, name, "64", "p99_us", sh->p99);
	result_add(workload, name, "64", "p999_us", sh->p999);
	result_add(workload, name, "64", "max_us", sh->max);
	result_add(workload, name, "64", "samples", (double)sh->n);
	for (int b = 0; b < HIST_BINS; b++) {
		char metric[24];
		snprintf(metric, sizeof(metric), "hist_from_%.0fns",
			 100 * pow(2, b / 2.0));
		result_add(workload, name, "hist", metric, (double)sh->hist[b]);
	}
}

static void latency_run(const struct bench_opts *o, const struct transport *t,
			const char *workload, peer_fn first, peer_fn second,
			int nch)
{
	struct latency_sh *sh = bench_shared(sizeof(*sh));
	struct channel c[2];
	struct peer_set *ps;

	sh->window = o->window;
	sh->rounds = o->quick ? 200 : 1000;
	if (!setup_channel(&c[0], t, PP_SIZE, workload, "64"))
		goto out;
	if (nch == 2 && !setup_channel(&c[1], t, PP_SIZE, workload, "64")) {
		t->teardown(&c[0]);
		goto out;
	}
	ps = peers_start(c, nch, 1, first, 1, second, sh, PIN_SPREAD);
	if (ps == NULL) {
		result_fail(workload, t->name, "64", "a peer failed to attach");
		goto out;
	}
	sh->t_go = bench_now();
	peers_go(ps);
	if (peers_finish(ps) != 0) {
		result_fail(workload, t->name, "64",
			    sh->why[0] ? sh->why : "a peer failed");
	} else {
		add_latency(workload, t->name, sh);
		result_add(workload, t->name, "64", "wall_s",
			   bench_now() - sh->t_go);
	}
out:
	bench_unshare(sh, sizeof(*sh));
}

void run_pingpong(const struct bench_opts *o, const struct transport *t)
{
	latency_run(o, t, "latency", pp_initiator, pp_echo, 2);
}

/* ---- wake-up after 1 ms idle -------------------------------------------
 * The sender sleeps 1 ms, stamps the message with the clock and sends it;
 * the receiver, asleep in its receive all that time (unless the transport
 * spins), takes the difference. One-way, timed at the receiver. */
#define WAKE_WARMUP 10

static int wake_sender(struct channel *c, int index, void *arg)
{
	struct latency_sh *sh = arg;
	unsigned char buf[PP_SIZE] = { 0 };
	struct timespec ms = { 0, 1000000 };

	(void)index;
	for (uint32_t i = 0; i < (uint32_t)sh->rounds + WAKE_WARMUP; i++) {
		nanosleep(&ms, NULL);
		double t = bench_now();
		memcpy(buf + 4, &i, sizeof(i));
		memcpy(buf + 8, &t, sizeof(t));
		c->t->send(c, buf, PP_SIZE);
	}
	buf[0] = MSG_END;
	c->t->send(c, buf, PP_SIZE);
	return 0;
}

/* Every message must carry its sequence number and a stamp taken after
 * the go and before its arrival: a transport that lost the stamp (or a
 * clock that is not the sender's) fails the run instead of measuring the
 * time since boot. */
static int wake_receiver(struct channel *c, int index, void *arg)
{
	struct latency_sh *sh = arg;
	unsigned char buf[PP_SIZE] = { 0 };
	long n = 0;

	(void)index;
	for (uint32_t i = 0;; i++) {
		uint32_t seq;
		double t;
		memset(buf, 0xff, sizeof(buf)); /* no stamp of the last one */
		if (c->t->recv(c, buf, PP_SIZE) != PP_SIZE)
			return 6;
		double now = bench_now();
		if (buf[0] == MSG_END)
			break;
		memcpy(&seq, buf + 4, sizeof(seq));
		memcpy(&t, buf + 8, sizeof(t));
		if (seq != i) {
			snprintf(sh->why, sizeof(sh->why),
				 "message %u carried sequence number %u: the "
				 "stamp did not travel",
				 i, seq);
			return 6;
		}
		if (!(t >= sh->t_go && t <= now)) {
			snprintf(sh->why, sizeof(sh->why),
				 "message %u stamped %.6f s, outside the run "
				 "(%.6f .. %.6f s)",
				 i, t, sh->t_go, now);
			return 6;
		}
		if (i >= WAKE_WARMUP && n < 1100)
			sh->samples[n++] = (now - t) * 1e6;
	}
	summarize(sh, sh->samples, n);
	return 0;
}

void run_wakeup(const struct bench_opts *o, const struct transport *t)
{
	latency_run(o, t, "wakeup", wake_sender, wake_receiver, 1);
}
