/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench internals: the transport table, the workloads that drive every
 * transport through the same producer and consumer code, and the results
 * store that the output formats read.
 *
 * A transport is one direction between processes. The parent sets it up
 * (shared memory, a queue, a pipe, a name or URL), then forks the peers;
 * each peer attaches to its end after the fork (nanomsg and ZeroMQ are not
 * fork-safe, so their sockets exist only in the peers), sends or receives,
 * and detaches. The parent never sends or receives itself.
 */
#ifndef IPC_BENCH_H
#define IPC_BENCH_H

#include <mqueue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <libipc/ipc.h>

#define BENCH_MAX_MSG ((size_t)1 << 20) /* the largest stream size */
/* The bytes of a message that the workloads write and read: [0] MSG_DATA
 * or MSG_END, [1] the producer's index, [4, 8) a sequence number and
 * [8, 16) the sender's CLOCK_MONOTONIC stamp (the wake-up). A transport
 * that does not copy whole messages through the caller's buffer (zero
 * copy) must still carry these. */
#define BENCH_HDR 16
#define BENCH_MAX_PEERS 8

enum bench_role { ROLE_SEND, ROLE_RECV };

struct spsc; /* the spinning ring, transports_shm.c */
struct bench_boost_mq;

/* One channel. The parent's setup fills the fields the peers share; each
 * peer's attach fills the rest in its own process. */
struct channel {
	const struct transport *t;
	size_t msg_size;  /* the largest message sent on it */
	int nsend, nrecv; /* peers on each side (the grid has several) */
	int tag;	  /* distinguishes channels of one run in names */
	ipc_queue *q;
	mqd_t mq;
	int fds[2];
	struct spsc *ring;
	ipc_conn *conn_rx, *conn_tx;
	int sock;   /* nanomsg socket, or a file descriptor */
	void *zctx; /* ZeroMQ */
	void *zsock;
	struct bench_boost_mq *bq;
	ipc_server *srv;
	char name[108]; /* an mq, Boost queue or socket name; or a URL */
};

#define T_MPMC 0x1   /* several producers and consumers at once */
#define T_SPINS 0x2  /* never sleeps: the wake-up row measures a spin */
#define T_FRAMED 0x4 /* a byte stream: the reader knows the frame size */
/* Every send returns once the receiving side has stored the message, and
 * the receiving end must outlive every sending end's close (a server and
 * its clients): each peer closes its sending ends of it as soon as its
 * work is done, and receiving ends are detached only after every peer
 * has (peers.c). */
#define T_ACKED 0x8

struct transport {
	const char *name;
	const char *what; /* one line for the legend */
	unsigned flags;
	/* In the parent, before any fork: 0, or a negative code and a note
	 * (why the row is skipped) in note[0..120). */
	int (*setup)(struct channel *c, char *note);
	/* In a peer, after the fork. */
	int (*attach)(struct channel *c, enum bench_role role);
	/* Exactly one message; the receive returns its length. A failure
	 * ends the peer with exit code 3 (the row is then reported failed). */
	void (*send)(struct channel *c, const void *buf, size_t len);
	size_t (*recv)(struct channel *c, void *buf, size_t cap);
	void (*detach)(struct channel *c, enum bench_role role);
	void (*teardown)(struct channel *c); /* in the parent */
	size_t max_size;		     /* 0: BENCH_MAX_MSG */
	/* Batch calls, where the transport has them (NULL otherwise): all n
	 * messages sent; up to n received (at least one), each iov_len set
	 * to its message's length. One consumer only: a batch may take more
	 * than one end marker. */
	void (*send_many)(struct channel *c, const struct iovec *msgs,
			  size_t n);
	size_t (*recv_many)(struct channel *c, struct iovec *msgs, size_t n);
};

extern const struct transport *const bench_transports[];
int bench_attach_nothing(struct channel *c, enum bench_role role);
const struct transport *bench_transport(const char *name);

size_t bench_capacity(size_t msg_size); /* shared-memory storage per row */

/* transports_shm.c: all n messages through ipc_queue_put_many on c->q
 * (each call waits up to timeout_ms), and one ipc_queue_get_many. Shared
 * by the shm and remote batch rows. */
void bench_queue_put_all(struct channel *c, const struct iovec *msgs, size_t n,
			 int timeout_ms);
size_t bench_queue_get_many(struct channel *c, struct iovec *msgs, size_t n);

/* ---- util.c ---------------------------------------------------------- */
double bench_now(void);
double bench_cpu_self(void); /* user + system seconds of this process */
void bench_die(const char *what) __attribute__((noreturn));
void bench_pin(int cpu); /* -1: every CPU */
int bench_ncpu(void);
double bench_median(double *v, int n);
double bench_percentile(double *sorted, long n, double p);
void bench_sort(double *v, long n);
void *bench_shared(size_t size); /* zeroed MAP_SHARED memory */
void bench_unshare(void *p, size_t size);
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_progress_end(void);
void bench_machine(char *out, size_t cap); /* CPU, cores, kernel, glibc */

/* ---- peers.c: forking, pinning, the start handshake -------------------- */
enum bench_pinning {
	PIN_SPREAD, /* producers on CPU 0, consumers on CPU 1 (if there) */
	PIN_ONE,    /* everybody on the last CPU */
	PIN_NONE
};

struct peer_set;
typedef int (*peer_fn)(struct channel *c, int index, void *arg);

/* Fork nrecv receivers, then nsend senders, on channels c[0..nch). Each
 * peer attaches its receiving ends, waits, attaches its sending ends,
 * waits for the go, runs fn and exits with its return value. */
struct peer_set *peers_start(struct channel *c, int nch, int nsend,
			     peer_fn send_fn, int nrecv, peer_fn recv_fn,
			     void *arg, enum bench_pinning pin);
/* The pids (senders first), for the syscall counters. */
void peer_wait_released(void); /* in a sender: until the receivers exit */
int peers_pids(struct peer_set *ps, pid_t *pids, int cap);
void peers_go(struct peer_set *ps);
/* Wait for every peer; 0 when all exited 0. Tears the channels down. */
int peers_finish(struct peer_set *ps);

/* ---- syscount.c ---------------------------------------------------- */
/* Syscalls are counted by `strace -f -c` attached to the peers of a run
 * made only for counting (ptrace slows every syscall, so that run's clock
 * means nothing); the kernel's tracepoints need tracefs, which is often
 * not mounted. */
struct syscount {
	pid_t strace;
	char path[64];
};
enum { SC_ALL, SC_FUTEX, SC_MEMBARRIER };
/* Attach to these processes (and their threads); false and a note when
 * strace is missing or cannot attach. */
bool syscount_start(struct syscount *s, const pid_t *pids, int n, char *note);
/* After the peers have exited: counts of all, futex, membarrier calls
 * (-1 each when strace failed). */
void syscount_finish(struct syscount *s, double out[3]);

/* ---- results.c ------------------------------------------------------- */
#define BENCH_MAX_REPS 9
/* The 64 B stream rows that the targets compare get at least this many
 * (the "median of >= 5 interleaved runs"). */
#define BENCH_TARGET_REPS 5

struct result {
	char workload[24];
	char transport[24];
	char param[24];
	char metric[24];
	double v[BENCH_MAX_REPS];
	int n;
	bool failed; /* a value was impossible: no figure is printed */
	char note[192];
};

struct result *result_add(const char *workload, const char *transport,
			  const char *param, const char *metric, double v);
void result_note(const char *workload, const char *transport, const char *param,
		 const char *note);
/* Fail every record of (workload, transport, param): the reports print
 * "failed" and the note, never a number. */
void result_fail(const char *workload, const char *transport, const char *param,
		 const char *note);
bool result_failed(const char *workload, const char *transport,
		   const char *param);
/* The median of a record, or NaN when it was not measured or failed. */
double result_get(const char *workload, const char *transport,
		  const char *param, const char *metric);
/* The number of repetitions of a record (0: none). */
int result_reps(const char *workload, const char *transport, const char *param,
		const char *metric);
const char *result_note_of(const char *workload, const char *transport,
			   const char *param);
struct result *result_all(int *n);
/* Any value of the workload (of that transport; NULL: of any), or a cell
 * of it that failed. */
bool result_measured(const char *workload, const char *transport);

/* ---- sanity.c -------------------------------------------------------- */
/* Before any report: fail every cell holding a figure that cannot be
 * true (see sanity.c); returns the number of cells failed. */
int results_sanity(void);

/* ---- workloads.c ----------------------------------------------------- */
struct bench_opts {
	bool quick;
	int reps;
	double window;	    /* seconds per timed run */
	double grid_window; /* the same for the grid (see ipc-bench.c) */
	const char *only;   /* workloads to run (NULL: all) */
	const char *rows; /* rows to run (NULL: all; prim and pool ignore it) */
	/* How the run went, for the reports: the 1-minute load average at
	 * its start and end, and where its time went. */
	double load_start, load_end;
	char took[256];
};
double bench_loadavg(void); /* 1-minute load average, NaN if unknown */
void run_stream(const struct bench_opts *o, const struct transport *t,
		size_t size);
void run_pingpong(const struct bench_opts *o, const struct transport *t);
void run_wakeup(const struct bench_opts *o, const struct transport *t);
void run_grid(const struct bench_opts *o, const struct transport *t, int np,
	      int nc);
void run_onecore(const struct bench_opts *o, const struct transport *t);

/* ---- primitives.c ---------------------------------------------------- */
void run_primitives(const struct bench_opts *o);
void run_pool(const struct bench_opts *o);

/* ---- python.c ---------------------------------------------------------- */
bool python_available(char *note);
/* Run the helper with arguments; each "key=value" line it prints becomes
 * a result of workload/transport/param. false on failure. */
bool python_run(const char *workload, const char *transport, const char *param,
		const char *args);
/* The same for n measurements in one interpreter, in order. */
struct py_job {
	char workload[24], transport[24], param[24];
	char args[96];
};
/* Append a job to jobs[*n] (cap entries at most). */
void python_job(struct py_job *jobs, int *n, int cap, const char *workload,
		const char *transport, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
void python_run_all(const struct py_job *jobs, int n);

/* ---- report.c, plots.c ----------------------------------------------- */
void report_terminal(FILE *out, const char *machine,
		     const struct bench_opts *o);
/* The targets as a table and the terminal report in a fenced block. */
int report_markdown(const char *path, const char *machine,
		    const struct bench_opts *o, const char *cmdline);
int report_csv(const char *path);
int report_json(const char *path, const char *machine, const char *cmdline,
		const struct bench_opts *o);
int report_plots(const char *dir);

extern const size_t bench_sizes[];
extern const int bench_nsizes;

#endif
