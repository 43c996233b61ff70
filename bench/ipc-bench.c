/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench — libipc's Queue side by side with the alternatives, in one run
 * on one machine, reported as ratios.
 *
 *   bench/ipc-bench [--quick] [--csv FILE]
 *
 * Transports, each between two processes pinned to different CPUs when
 * there are two:
 *   ring     a spinning single-producer/single-consumer lock-free ring in
 *            shared memory with fixed slots: no locks, no syscalls, no crash
 *            safety — the floor any shared-memory queue is measured against
 *   libipc   ipc_queue_put / ipc_queue_get (shared-memory backend)
 *   libipc-mq the same calls on the POSIX mqueue backend
 *   mq       POSIX message queue (mq_send / mq_receive)
 *   pipe     a pipe, fixed-size frames
 *   ipc-pipe libipc's Pipe (ipc_pipe_new, one-way): ipc_conn_send / recv
 *
 * Measurements:
 *   stream   one producer sends N messages of a size to one consumer:
 *            messages per second (the consumer's clock, first to last);
 *   latency  ping-pong of 64-byte messages over two channels, both peers
 *            awake: one-way latency = round trip / 2, p50 / p99 / p99.9.
 *
 * Across hosts: 64-byte messages over tcp loopback, raw nanomsg PUSH/PULL
 * beside a remote libipc queue (connected handle -> ipc_server -> local
 * consumer, authenticated and encrypted, every put acknowledged).
 *
 * Numbers depend on the machine and its load; the claim is the ratio to
 * the ring and to mq measured in the same run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libipc/ipc.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <pthread.h>

#define MAX_MSG 4096

/* ---- A channel: one direction between two processes ------------------- */

struct channel;
struct transport {
	const char *name;
	int (*open)(struct channel *c, size_t msg_size);
	void (*send)(struct channel *c, const void *buf, size_t len);
	size_t (*recv)(struct channel *c, void *buf, size_t cap);
	void (*close)(struct channel *c);
};

/* The floor: a single-producer single-consumer byte ring with the same
 * capacity and record format as libipc's ([u64 length][payload padded to
 * 8], 1 MiB), spinning, with cached indices — and no locks, no wake-ups, no
 * crash safety. */
#define RING_BYTES (1u << 20)
struct spsc {
	_Atomic uint64_t head __attribute__((aligned(64)));
	uint64_t tail_cache;
	_Atomic uint64_t tail __attribute__((aligned(64)));
	uint64_t head_cache;
	uint8_t data[RING_BYTES] __attribute__((aligned(64)));
};

struct channel {
	const struct transport *t;
	ipc_queue *q;
	mqd_t mq;
	char mq_name[64];
	int fds[2];
	struct spsc *ring;
	ipc_conn *conn_rx, *conn_tx;
};

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* ring */
static int ring_open(struct channel *c, size_t msg_size)
{
	(void)msg_size;
	c->ring = mmap(NULL, sizeof(struct spsc), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return c->ring == MAP_FAILED ? -1 : 0;
}

static void ring_copy_in(struct spsc *r, uint64_t pos, const void *src,
			 size_t len)
{
	size_t off = pos % RING_BYTES, first = RING_BYTES - off;
	if (len <= first) {
		memcpy(r->data + off, src, len);
	} else {
		memcpy(r->data + off, src, first);
		memcpy(r->data, (const uint8_t *)src + first, len - first);
	}
}

static void ring_copy_out(struct spsc *r, uint64_t pos, void *dst, size_t len)
{
	size_t off = pos % RING_BYTES, first = RING_BYTES - off;
	if (len <= first) {
		memcpy(dst, r->data + off, len);
	} else {
		memcpy(dst, r->data + off, first);
		memcpy((uint8_t *)dst + first, r->data, len - first);
	}
}

static void ring_send(struct channel *c, const void *buf, size_t len)
{
	struct spsc *r = c->ring;
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t need = 8 + ((len + 7) & ~(size_t)7);

	while (RING_BYTES - (t - r->head_cache) < need)
		r->head_cache =
			atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t len64 = len;
	memcpy(r->data + t % RING_BYTES, &len64, 8);
	ring_copy_in(r, t + 8, buf, len);
	atomic_store_explicit(&r->tail, t + need, memory_order_release);
}

static size_t ring_recv(struct channel *c, void *buf, size_t cap)
{
	struct spsc *r = c->ring;
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t len;

	while (h == r->tail_cache)
		r->tail_cache =
			atomic_load_explicit(&r->tail, memory_order_acquire);
	memcpy(&len, r->data + h % RING_BYTES, 8);
	ring_copy_out(r, h + 8, buf, len < cap ? len : cap);
	atomic_store_explicit(&r->head, h + 8 + ((len + 7) & ~(uint64_t)7),
			      memory_order_release);
	return len;
}

static void ring_close(struct channel *c)
{
	munmap(c->ring, sizeof(struct spsc));
}

/* libipc */
static int ipc_open(struct channel *c, size_t msg_size)
{
	ipc_queue_attr attr = { .capacity = 1 << 20, .max_msg_size = MAX_MSG };
	(void)msg_size;
	return ipc_queue_open(&c->q, NULL, 0, &attr);
}

static void ipc_send(struct channel *c, const void *buf, size_t len)
{
	if (ipc_queue_put(c->q, buf, len, IPC_FOREVER) != 0)
		die("ipc_queue_put");
}

static size_t ipc_recv(struct channel *c, void *buf, size_t cap)
{
	ssize_t n = ipc_queue_get(c->q, buf, cap, IPC_FOREVER);
	if (n < 0)
		die("ipc_queue_get");
	return (size_t)n;
}

static void ipc_close(struct channel *c)
{
	ipc_queue_close(c->q);
}

/* libipc with the POSIX mqueue backend: the same mq as below, behind the
 * queue API (each message one mq message). */
static int ipc_mq_open(struct channel *c, size_t msg_size)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 256,
				.max_msg_size = msg_size };
	int rc = ipc_queue_open(&c->q, NULL, 0, &attr);

	if (rc == IPC_EINVAL) {
		attr.maxsize = 10; /* the unprivileged default limit */
		rc = ipc_queue_open(&c->q, NULL, 0, &attr);
	}
	return rc;
}

/* POSIX mq */
static int mq_open_chan(struct channel *c, size_t msg_size)
{
	static int seq;
	struct mq_attr attr = { .mq_maxmsg = 256,
				.mq_msgsize = (long)msg_size };

	snprintf(c->mq_name, sizeof(c->mq_name), "/ipc-bench.%d.%d",
		 (int)getpid(), seq++);
	c->mq = mq_open(c->mq_name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (c->mq == (mqd_t)-1 && errno == EINVAL) {
		attr.mq_maxmsg = 10; /* the unprivileged default limit */
		c->mq = mq_open(c->mq_name, O_RDWR | O_CREAT | O_EXCL, 0600,
				&attr);
	}
	if (c->mq == (mqd_t)-1)
		return -1;
	mq_unlink(c->mq_name);
	return 0;
}

static void mq_send_chan(struct channel *c, const void *buf, size_t len)
{
	while (mq_send(c->mq, buf, len, 0) != 0)
		if (errno != EINTR)
			die("mq_send");
}

static size_t mq_recv_chan(struct channel *c, void *buf, size_t cap)
{
	char tmp[MAX_MSG + 64];
	ssize_t n;

	while ((n = mq_receive(c->mq, tmp, sizeof(tmp), NULL)) < 0)
		if (errno != EINTR)
			die("mq_receive");
	memcpy(buf, tmp, (size_t)n < cap ? (size_t)n : cap);
	return (size_t)n;
}

static void mq_close_chan(struct channel *c)
{
	mq_close(c->mq);
}

/* libipc Pipe: a one-way ipc_pipe_new, sized like the libipc row */
static int conn_open(struct channel *c, size_t msg_size)
{
	ipc_queue_attr attr = { .capacity = 1 << 20, .max_msg_size = MAX_MSG };
	(void)msg_size;
	return ipc_pipe_new(&c->conn_rx, &c->conn_tx, false, &attr);
}

static void conn_send(struct channel *c, const void *buf, size_t len)
{
	if (ipc_conn_send(c->conn_tx, buf, len, IPC_FOREVER) != 0)
		die("ipc_conn_send");
}

static size_t conn_recv(struct channel *c, void *buf, size_t cap)
{
	ssize_t n = ipc_conn_recv(c->conn_rx, buf, cap, IPC_FOREVER);
	if (n < 0)
		die("ipc_conn_recv");
	return (size_t)n;
}

static void conn_close(struct channel *c)
{
	ipc_conn_close(c->conn_rx);
	ipc_conn_close(c->conn_tx);
}

/* pipe: the reader knows the frame size (stream benchmarks use one size) */
static size_t pipe_frame;

static int pipe_open(struct channel *c, size_t msg_size)
{
	pipe_frame = msg_size;
	return pipe(c->fds);
}

static void pipe_send(struct channel *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(c->fds[1], p, len);
		if (n < 0 && errno != EINTR)
			die("write");
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
}

static size_t pipe_recv(struct channel *c, void *buf, size_t cap)
{
	size_t got = 0, want = pipe_frame < cap ? pipe_frame : cap;
	while (got < want) {
		ssize_t n = read(c->fds[0], (char *)buf + got, want - got);
		if (n < 0 && errno != EINTR)
			die("read");
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

static void pipe_close(struct channel *c)
{
	close(c->fds[0]);
	close(c->fds[1]);
}

/* Rows of the table below, named so that the ratios printed from them
 * cannot drift when a row is added. */
enum { T_RING, T_LIBIPC, T_LIBIPC_MQ, T_MQ, T_PIPE, T_IPC_PIPE };
static const struct transport transports[] = {
	[T_RING] = { "ring", ring_open, ring_send, ring_recv, ring_close },
	[T_LIBIPC] = { "libipc", ipc_open, ipc_send, ipc_recv, ipc_close },
	[T_LIBIPC_MQ] = { "libipc-mq", ipc_mq_open, ipc_send, ipc_recv,
			  ipc_close },
	[T_MQ] = { "mq", mq_open_chan, mq_send_chan, mq_recv_chan,
		   mq_close_chan },
	[T_PIPE] = { "pipe", pipe_open, pipe_send, pipe_recv, pipe_close },
	[T_IPC_PIPE] = { "ipc-pipe", conn_open, conn_send, conn_recv,
			 conn_close },
};
#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* ---- Measurement -----------------------------------------------------------
 */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pin(int cpu)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % (int)ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static pid_t child(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	return pid;
}

static void reap(pid_t pid)
{
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ipc-bench: a child failed\n");
		exit(2);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Messages per second from one producer to one consumer: from the
 * producer's first send to the consumer's last receive, so that no queue
 * looks faster by buffering ahead. */
static double stream(const struct transport *t, size_t size, long n)
{
	struct channel c = { .t = t };
	double *clock; /* [0] producer start, [1] consumer end */
	char buf[MAX_MSG];
	pid_t pid;

	if (t->open(&c, size) != 0)
		return -1;
	clock = mmap(NULL, 2 * sizeof(double), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(buf, 'x', sizeof(buf));
	pid = child();
	if (pid == 0) { /* consumer */
		pin(1);
		for (long i = 0; i < n; i++)
			t->recv(&c, buf, sizeof(buf));
		clock[1] = now_s();
		_exit(0);
	}
	pin(0);
	clock[0] = now_s();
	for (long i = 0; i < n; i++)
		t->send(&c, buf, size);
	reap(pid);
	t->close(&c);
	double r = (double)n / (clock[1] - clock[0]);
	munmap(clock, 2 * sizeof(double));
	return r;
}

struct latency {
	double p50, p99, p999;
};

/* One-way latency in microseconds, ping-pong with both peers awake. */
static struct latency pingpong(const struct transport *t, long rounds)
{
	struct channel ab = { .t = t }, ba = { .t = t };
	struct latency out = { -1, -1, -1 };
	char buf[64] = { 0 };
	double *samples;
	pid_t pid;

	if (t->open(&ab, 64) != 0 || t->open(&ba, 64) != 0)
		return out;
	samples = malloc(sizeof(double) * (size_t)rounds);
	pid = child();
	if (pid == 0) { /* echo */
		pin(1);
		for (long i = 0; i < rounds + 1000; i++) {
			t->recv(&ab, buf, sizeof(buf));
			t->send(&ba, buf, 64);
		}
		_exit(0);
	}
	pin(0);
	for (long i = 0; i < rounds + 1000; i++) {
		double t0 = now_s();
		t->send(&ab, buf, 64);
		t->recv(&ba, buf, sizeof(buf));
		if (i >= 1000) /* warm-up */
			samples[i - 1000] = (now_s() - t0) * 1e6 / 2;
	}
	reap(pid);
	t->close(&ab);
	t->close(&ba);
	qsort(samples, (size_t)rounds, sizeof(double), cmp_double);
	out.p50 = samples[rounds / 2];
	out.p99 = samples[rounds * 99 / 100];
	out.p999 = samples[rounds * 999 / 1000];
	free(samples);
	return out;
}

/* ---- Pool.map of squares --------------------------------------------- */

static void unpin(void)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void square(const void *in, void *out)
{
	int64_t x = *(const int64_t *)in;
	*(int64_t *)out = x * x;
}

/* Items per second of ipc_pool_map(square) over n items, default chunks,
 * one worker per CPU; the same work as the Python version below. */
static double pool_libipc(long n)
{
	int64_t *in = malloc(sizeof(int64_t) * (size_t)n);
	int64_t *out = malloc(sizeof(int64_t) * (size_t)n);
	ipc_pool *pool;
	double t0, rate = -1;

	if (in == NULL || out == NULL || ipc_pool_new(&pool, NULL) != 0)
		die("pool");
	for (long i = 0; i < n; i++)
		in[i] = i;
	ipc_pool_map(pool, square, in, 8, out, 8, 1000, 0); /* warm-up */
	t0 = now_s();
	if (ipc_pool_map(pool, square, in, 8, out, 8, (size_t)n, 0) == 0 &&
	    out[n - 1] == (int64_t)(n - 1) * (n - 1))
		rate = (double)n / (now_s() - t0);
	ipc_pool_free(pool);
	free(in);
	free(out);
	return rate;
}

/* The same with Python's multiprocessing.Pool, if python3 is there. */
/* Run a Python script with one integer argument; the positive number it
 * prints, or -1 (no python3, or it failed). */
static double run_python(const char *script, long arg)
{
	char cmd[2048], line[64] = "";
	double v = -1;
	FILE *f;

	if (system("command -v python3 >/dev/null 2>&1") != 0)
		return -1;
	if ((size_t)snprintf(cmd, sizeof(cmd),
			     "python3 -c \"%s\" %ld 2>/dev/null", script,
			     arg) >= sizeof(cmd))
		return -1;
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) != NULL)
		v = strtod(line, NULL);
	pclose(f);
	return v > 0 ? v : -1;
}

/* Python's multiprocessing.Pipe: one-way latency p50 in microseconds of
 * a 64-byte send_bytes/recv_bytes ping-pong, measured like pingpong()
 * (both peers awake, round trip / 2); -1 without python3. */
static double pipe_python(long rounds)
{
	static const char script[] =
		"import multiprocessing as mp, sys, time\n"
		"def echo(c, n):\n"
		"    for _ in range(n): c.send_bytes(c.recv_bytes())\n"
		"if __name__ == '__main__':\n"
		"    n = int(sys.argv[1])\n"
		"    a, b = mp.Pipe()\n"
		"    p = mp.Process(target=echo, args=(b, n + 1000))\n"
		"    p.start()\n"
		"    m = bytes(64)\n"
		"    s = []\n"
		"    for i in range(n + 1000):\n"
		"        t = time.perf_counter()\n"
		"        a.send_bytes(m)\n"
		"        a.recv_bytes()\n"
		"        if i >= 1000: s.append((time.perf_counter() - t) * "
		"5e5)\n"
		"    p.join()\n"
		"    s.sort()\n"
		"    print(s[len(s) // 2])\n";
	return run_python(script, rounds);
}

static double pool_python(long n)
{
	static const char script[] = "import multiprocessing, sys, time\n"
				     "def sq(x): return x * x\n"
				     "if __name__ == '__main__':\n"
				     "    n = int(sys.argv[1])\n"
				     "    with multiprocessing.Pool() as p:\n"
				     "        p.map(sq, range(1000))\n"
				     "        t = time.perf_counter()\n"
				     "        r = p.map(sq, range(n))\n"
				     "        dt = time.perf_counter() - t\n"
				     "    assert r[-1] == (n - 1) ** 2\n"
				     "    print(n / dt)\n";
	return run_python(script, n);
}

/* The median of `repeat` stream runs: a single run lands in one of two
 * regimes (producer ahead, or consumer on its heels) almost at random. */
static double stream_median(const struct transport *t, size_t size, long n,
			    int repeat)
{
	double r[9];

	for (int i = 0; i < repeat; i++)
		r[i] = stream(t, size, n);
	qsort(r, (size_t)repeat, sizeof(double), cmp_double);
	return r[repeat / 2];
}

/* ---- Across hosts: the remote queue beside raw nanomsg, tcp loopback ---- */

/* Each runs in a fresh child (nanomsg is not fork-safe, and this process
 * forks for every other measurement) with both ends as threads: 64-byte
 * messages, first put to last get on the consumer's side. */
#define NET_KEY "ipc-bench key"

struct net_sink {
	int sock; /* nanomsg PULL, or -1 for the local queue */
	ipc_queue *q;
	long n;
	double t_end;
};

static void *net_sink_main(void *arg)
{
	struct net_sink *k = arg;
	char buf[MAX_MSG];

	for (long i = 0; i < k->n; i++) {
		if (k->sock >= 0) {
			if (nn_recv(k->sock, buf, sizeof(buf), 0) < 0)
				die("nn_recv");
		} else if (ipc_queue_get(k->q, buf, sizeof(buf), 30000) < 0) {
			die("remote bench: get");
		}
	}
	k->t_end = now_s();
	return NULL;
}

static int net_port(int i)
{
	return 21000 + (int)((getpid() + i * 7) % 20000);
}

/* Raw nanomsg PUSH -> PULL: no acks, no encryption. */
static double net_pushpull(long n)
{
	struct net_sink k = { .n = n };
	char url[64], msg[64] = { 0 };
	pthread_t t;
	double t0;
	int push, i = 0;

	k.sock = nn_socket(AF_SP, NN_PULL);
	do
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", net_port(i++));
	while (nn_bind(k.sock, url) < 0 && i < 100);
	push = nn_socket(AF_SP, NN_PUSH);
	if (k.sock < 0 || push < 0 || nn_connect(push, url) < 0)
		die("nanomsg");
	pthread_create(&t, NULL, net_sink_main, &k);
	t0 = now_s();
	for (long j = 0; j < n; j++)
		if (nn_send(push, msg, sizeof(msg), 0) < 0)
			die("nn_send");
	pthread_join(t, NULL);
	nn_close(push);
	nn_close(k.sock);
	return (double)n / (k.t_end - t0);
}

/* libipc: ipc_queue_put on a connected handle (authenticated, encrypted,
 * each put acknowledged) -> the served queue -> a local consumer. */
static double net_remote_queue(long n)
{
	ipc_net_attr a = { .authkey = NET_KEY, .authkey_len = strlen(NET_KEY) };
	struct net_sink k = { .sock = -1, .n = n };
	ipc_server *srv = NULL;
	ipc_queue *remote;
	char url[64], msg[64] = { 0 };
	pthread_t t;
	double t0;
	int rc = IPC_EBUSY;

	if (ipc_queue_new(&k.q, 0) != 0)
		die("ipc_queue_new");
	for (int i = 0; i < 100 && rc == IPC_EBUSY; i++) {
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", net_port(i));
		rc = ipc_server_start(&srv, url, &a);
	}
	if (rc != 0 || ipc_server_add_queue(srv, "bench", k.q) != 0 ||
	    ipc_queue_connect(&remote, url, "bench", &a) != 0)
		die("remote bench: setup");
	pthread_create(&t, NULL, net_sink_main, &k);
	t0 = now_s();
	for (long j = 0; j < n; j++)
		if (ipc_queue_put(remote, msg, sizeof(msg), 30000) != 0)
			die("remote bench: put");
	pthread_join(t, NULL);
	ipc_queue_close(remote);
	ipc_server_stop(srv);
	ipc_queue_close(k.q);
	return (double)n / (k.t_end - t0);
}

static double in_child(double (*fn)(long), long n)
{
	double r = 0;
	int fd[2];
	pid_t pid;

	if (pipe(fd) != 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		r = fn(n);
		if (write(fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = 0;
	close(fd[0]);
	reap(pid);
	return r;
}

/* One line of ratios of row a to row b: throughput at 64 B and 4 KiB, p50
 * latency. */
static void ratio_row(const char *label, double rate[][2],
		      const struct latency *lat, size_t a, size_t b)
{
	printf("%-15s throughput 64 B %.2fx, 4 KiB %.2fx; latency p50 %.2fx\n",
	       label, rate[a][0] / rate[b][0], rate[a][1] / rate[b][1],
	       lat[a].p50 / lat[b].p50);
}

int main(int argc, char **argv)
{
	bool quick = false;
	const char *csv_path = NULL;
	static const size_t sizes[] = { 64, 4096 };
	double rate[NTRANSPORTS][2];
	struct latency lat[NTRANSPORTS];
	FILE *csv = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc)
			csv_path = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--quick] [--csv FILE]\n",
				argv[0]);
			return 2;
		}
	}
	long n64 = quick ? 200000 : 1000000, n4k = quick ? 50000 : 200000;
	long rounds = quick ? 20000 : 200000;
	int repeat = quick ? 1 : 5;

	printf("ipc-bench: 1 producer -> 1 consumer, %ld CPUs%s; stream: "
	       "median of %d runs\n",
	       sysconf(_SC_NPROCESSORS_ONLN), quick ? " (quick)" : "", repeat);
	for (size_t t = 0; t < NTRANSPORTS; t++) {
		for (int s = 0; s < 2; s++) {
			long n = sizes[s] == 64 ? n64 : n4k;
			if (strcmp(transports[t].name, "mq") == 0 ||
			    strcmp(transports[t].name, "pipe") == 0)
				n /= 4; /* slower: keep the run short */
			rate[t][s] = stream_median(&transports[t], sizes[s], n,
						   repeat);
		}
		lat[t] = pingpong(
			&transports[t],
			strcmp(transports[t].name, "mq") == 0 ||
					strcmp(transports[t].name, "pipe") == 0
				? rounds / 4
				: rounds);
	}

	printf("\n%-8s %14s %14s %10s %10s %10s\n", "", "64 B msg/s",
	       "4 KiB msg/s", "p50 us", "p99 us", "p99.9 us");
	for (size_t t = 0; t < NTRANSPORTS; t++)
		printf("%-8s %14.0f %14.0f %10.2f %10.2f %10.2f\n",
		       transports[t].name, rate[t][0], rate[t][1], lat[t].p50,
		       lat[t].p99, lat[t].p999);

	/* Ratios: libipc against the floor (ring) and against mq and pipe. */
	ratio_row("libipc / ring", rate, lat, T_LIBIPC, T_RING);
	ratio_row("libipc / mq", rate, lat, T_LIBIPC, T_MQ);
	ratio_row("libipc / pipe", rate, lat, T_LIBIPC, T_PIPE);
	ratio_row("libipc-mq / mq", rate, lat, T_LIBIPC_MQ, T_MQ);
	ratio_row("ipc-pipe / pipe", rate, lat, T_IPC_PIPE, T_PIPE);

	unpin();
	double py_pipe = pipe_python(rounds / 4);
	if (py_pipe > 0)
		printf("ipc-pipe / Python multiprocessing.Pipe latency p50 "
		       "%.2fx (%.2f us vs %.2f us, 64 B ping-pong)\n",
		       lat[T_IPC_PIPE].p50 / py_pipe, lat[T_IPC_PIPE].p50,
		       py_pipe);
	else
		printf("(python3 not found: no Pipe comparison)\n");
	long pool_n = quick ? 100000 : 1000000;
	double pool_c = pool_libipc(pool_n), pool_py = pool_python(pool_n);
	printf("\nPool.map of squares over %ld items, one worker per CPU:\n"
	       "  libipc %.0f items/s",
	       pool_n, pool_c);
	if (pool_py > 0)
		printf(", Python multiprocessing.Pool %.0f items/s: %.1fx\n",
		       pool_py, pool_c / pool_py);
	else
		printf(" (python3 not found: no comparison)\n");

	long net_n = quick ? 20000 : 100000;
	double nn_rate = in_child(net_pushpull, net_n * 5);
	double rq_rate = in_child(net_remote_queue, net_n);
	printf("\nAcross hosts, tcp loopback, 64 B, %ld messages:\n"
	       "  raw nanomsg PUSH/PULL (no acks, no encryption) %.0f msg/s\n"
	       "  libipc remote queue (acked puts, encrypted)     %.0f msg/s: "
	       "%.3fx\n",
	       net_n, nn_rate, rq_rate, nn_rate > 0 ? rq_rate / nn_rate : 0);

	if (csv_path != NULL) {
		csv = fopen(csv_path, "w");
		if (csv == NULL)
			die(csv_path);
		fprintf(csv, "transport,msgs_per_s_64B,msgs_per_s_4KiB,"
			     "p50_us,p99_us,p999_us\n");
		for (size_t t = 0; t < NTRANSPORTS; t++)
			fprintf(csv, "%s,%.0f,%.0f,%.3f,%.3f,%.3f\n",
				transports[t].name, rate[t][0], rate[t][1],
				lat[t].p50, lat[t].p99, lat[t].p999);
		fprintf(csv,
			"# pool map squares items/s: libipc %.0f, "
			"python %.0f\n",
			pool_c, pool_py);
		fprintf(csv, "# pipe 64 B p50 us: ipc-pipe %.3f, python %.3f\n",
			lat[T_IPC_PIPE].p50, py_pipe);
		fprintf(csv,
			"# tcp loopback 64 B msg/s: nanomsg push/pull %.0f, "
			"libipc remote queue %.0f\n",
			nn_rate, rq_rate);
		fclose(csv);
		printf("\nwrote %s\n", csv_path);
	}
	return 0;
}
