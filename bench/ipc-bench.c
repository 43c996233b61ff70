/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench — libipc beside every alternative, in one run on one machine,
 * reported as absolute numbers and as ratios measured in the same run.
 *
 *   ipc-bench [--quick | --full] [--reps N] [--window SECONDS]
 *             [--only stream,latency,wakeup,grid,onecore,prim,pool]
 *             [--rows ROW,...]
 *             [--csv FILE] [--json FILE] [--markdown FILE] [--plots DIR]
 *
 * Every transport (transports.c) runs through the same producer and
 * consumer loops (workloads.c); Python's multiprocessing runs the same
 * method in bench/mp_bench.py. Repetitions are interleaved — every row of
 * a workload once, then every row again — so that a slow moment of the
 * machine hits all rows alike, and each figure is the median. The table
 * goes to stdout, a progress line to stderr.
 *
 * --quick (the default): 3 repetitions of 0.1 s windows, under two
 * minutes on two cores. --full: 5 repetitions of 0.5 s. The grid runs
 * 0.5 s windows in both (unless --window is given): its 4x4 cell puts 8
 * processes on the CPUs, and in 0.1 s on two CPUs each runs only about
 * ten times (40 to 90 preemptions per producer in 0.5 s were measured),
 * so the spread of the per-producer counts there measures which runs
 * each producer happened to get more than the queue (docs/benchmarks.md,
 * "Reading the grid").
 */
#include "bench.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

const size_t bench_sizes[] = { 8, 64, 1024, 4096, 65536, 1048576 };
const int bench_nsizes = sizeof(bench_sizes) / sizeof(bench_sizes[0]);

static const char *const c_stream_rows[] = {
	"ring",	     "libipc",	 "libipc-batch",  "libipc-zc",
	"libipc-mq", "ipc-pipe", "libipc-remote", "libipc-remote-batch",
	"mq",	     "pipe",	 "unix",	  "nn-ipc",
	"nn-tcp",    "zmq-ipc",	 "boost-mq",	  NULL,
};
static const char *const py_kinds[] = { "queue", "pipe", NULL };

/* Is name in the comma-separated list (NULL: everything is)? */
static bool listed(const char *list, const char *name)
{
	const char *p = list;
	size_t n = strlen(name);

	if (p == NULL)
		return true;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			return true;
		p += n;
	}
	return false;
}

static bool want(const struct bench_opts *o, const char *workload)
{
	return listed(o->only, workload);
}

/* The transport of a row, or NULL: a row left out by --rows, or one this
 * build does not have (no ZeroMQ or Boost at configure time), which gets
 * a note instead of numbers. */
static const struct transport *row(const struct bench_opts *o,
				   const char *workload, const char *name,
				   const char *param)
{
	const struct transport *t = bench_transport(name);

	if (!listed(o->rows, name))
		return NULL;
	if (t == NULL)
		result_note(workload, name, param,
			    "not built: the library was not found at "
			    "configure time");
	return t;
}

#define PY_JOBS 16

static void stream_all(const struct bench_opts *o, int rep)
{
	struct py_job py[PY_JOBS];
	int npy = 0;
	char p[24];

	for (int s = 0; s < bench_nsizes; s++) {
		size_t size = bench_sizes[s];
		snprintf(p, sizeof(p), "%zu", size);
		for (int i = 0; c_stream_rows[i] != NULL; i++) {
			const struct transport *t =
				row(o, "stream", c_stream_rows[i], p);
			if (t == NULL)
				continue;
			bench_progress("[%d/%d] stream %zu B: %s", rep + 1,
				       o->reps, size, t->name);
			run_stream(o, t, size);
		}
		for (int k = 0; py_kinds[k] != NULL; k++) {
			char name[24];
			snprintf(name, sizeof(name), "py-%s", py_kinds[k]);
			if (!listed(o->rows, name))
				continue;
			python_job(py, &npy, PY_JOBS, "stream", name, p,
				   "stream %s %zu %.3f", py_kinds[k], size,
				   o->window);
		}
	}
	bench_progress("[%d/%d] stream: Python", rep + 1, o->reps);
	python_run_all(py, npy);
}

/* The 64 B stream targets ask for the median of at least five interleaved
 * runs: with fewer repetitions, their rows get the missing ones at 64 B
 * only, still interleaved (every such row once, then again). */
static const char *const target_rows[] = { "ring", "libipc", "mq", NULL };

static void stream_targets(const struct bench_opts *o, int rep)
{
	struct py_job py[1];
	int npy = 0;

	for (int i = 0; target_rows[i] != NULL; i++) {
		const struct transport *t =
			row(o, "stream", target_rows[i], "64");
		if (t == NULL)
			continue;
		bench_progress("[%d/%d] stream 64 B (targets): %s", rep + 1,
			       BENCH_TARGET_REPS, t->name);
		run_stream(o, t, 64);
	}
	if (listed(o->rows, "py-queue"))
		python_job(py, &npy, 1, "stream", "py-queue", "64",
			   "stream queue 64 %.3f", o->window);
	python_run_all(py, npy);
}

static void latency_all(const struct bench_opts *o, int rep, bool wakeup)
{
	const char *w = wakeup ? "wakeup" : "latency";
	struct py_job py[PY_JOBS];
	int npy = 0;

	for (int i = 0; c_stream_rows[i] != NULL; i++) {
		const struct transport *t = row(o, w, c_stream_rows[i], "64");
		if (t == NULL || t->send_many != NULL)
			continue; /* batches only stream */
		bench_progress("[%d/%d] %s: %s", rep + 1, o->reps, w, t->name);
		if (wakeup)
			run_wakeup(o, t);
		else
			run_pingpong(o, t);
	}
	for (int k = 0; py_kinds[k] != NULL; k++) {
		char name[24];
		snprintf(name, sizeof(name), "py-%s", py_kinds[k]);
		if (!listed(o->rows, name))
			continue;
		if (wakeup)
			python_job(py, &npy, PY_JOBS, w, name, "64",
				   "wakeup %s %d", py_kinds[k],
				   o->quick ? 200 : 1000);
		else
			python_job(py, &npy, PY_JOBS, w, name, "64",
				   "latency %s %.3f", py_kinds[k], o->window);
	}
	bench_progress("[%d/%d] %s: Python", rep + 1, o->reps, w);
	python_run_all(py, npy);
}

static void grid_all(const struct bench_opts *o, int rep)
{
	static const int shape[][2] = {
		{ 1, 1 }, { 1, 4 }, { 4, 1 }, { 4, 4 }
	};
	struct py_job py[PY_JOBS];
	int npy = 0;

	for (int g = 0; g < 4; g++) {
		for (int i = 0; grid_rows[i] != NULL; i++) {
			if (strcmp(grid_rows[i], "py-queue") == 0 &&
			    listed(o->rows, grid_rows[i])) {
				python_job(py, &npy, PY_JOBS, "grid",
					   "py-queue", grid_params[g],
					   "grid %d %d %.3f", shape[g][0],
					   shape[g][1], o->grid_window);
				continue;
			}
			bench_progress("[%d/%d] grid %s: %s", rep + 1, o->reps,
				       grid_params[g], grid_rows[i]);
			const struct transport *t =
				row(o, "grid", grid_rows[i], grid_params[g]);
			if (t != NULL)
				run_grid(o, t, shape[g][0], shape[g][1]);
		}
	}
	bench_progress("[%d/%d] grid: Python", rep + 1, o->reps);
	python_run_all(py, npy);
}

static void onecore_all(const struct bench_opts *o, int rep)
{
	for (int i = 0; onecore_rows[i] != NULL; i++) {
		const struct transport *t =
			row(o, "onecore", onecore_rows[i], "64");
		if (t == NULL)
			continue;
		bench_progress("[%d/%d] one core: %s", rep + 1, o->reps,
			       t->name);
		run_onecore(o, t);
	}
}

static const char *const workloads[] = { "stream",  "latency", "wakeup", "grid",
					 "onecore", "prim",    "pool" };
#define NWORKLOADS ((int)(sizeof(workloads) / sizeof(workloads[0])))

static void run_workload(const struct bench_opts *o, int w, int rep)
{
	switch (w) {
	case 0:
		if (rep < o->reps)
			stream_all(o, rep);
		else
			stream_targets(o, rep);
		break;
	case 1:
		latency_all(o, rep, false);
		break;
	case 2:
		latency_all(o, rep, true);
		break;
	case 3:
		grid_all(o, rep);
		break;
	case 4:
		onecore_all(o, rep);
		break;
	case 5:
		bench_progress("[%d/%d] primitives", rep + 1, o->reps);
		run_primitives(o);
		break;
	default:
		run_pool(o);
		break;
	}
}

/* "took 96 s (stream 60.1, latency 6.0, ... s)" */
static void describe_time(struct bench_opts *o, double total,
			  const double *took)
{
	size_t len = (size_t)snprintf(o->took, sizeof(o->took), "took %.0f s (",
				      total);
	const char *sep = "";

	for (int w = 0; w < NWORKLOADS && len < sizeof(o->took); w++) {
		if (!want(o, workloads[w]))
			continue;
		len += (size_t)snprintf(o->took + len, sizeof(o->took) - len,
					"%s%s %.1f", sep, workloads[w],
					took[w]);
		sep = ", ";
	}
	if (len < sizeof(o->took))
		snprintf(o->took + len, sizeof(o->took) - len, " s)");
}

/* POSIX mq of large messages needs more than the default 800 KiB
 * RLIMIT_MSGQUEUE; raise it as far as allowed (root: without limit). */
static void raise_mq_limit(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0 &&
	    getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--quick | --full] [--reps N] [--window SECONDS]\n"
		"          [--only stream,latency,wakeup,grid,onecore,prim,"
		"pool]\n"
		"          [--rows ROW,...] (the rows of the tables, e.g. "
		"libipc,ring,py-queue)\n"
		"          [--csv FILE] [--json FILE] [--markdown FILE] "
		"[--plots DIR]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .quick = true, .reps = 3, .window = 0.1 };
	const char *csv = NULL, *json = NULL, *plots = NULL, *md = NULL;
	char machine[512], cmdline[1024] = "ipc-bench";
	int reps = 0;
	double window = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t len = strlen(cmdline);
		snprintf(cmdline + len, sizeof(cmdline) - len, " %s", a);
		if (strcmp(a, "--quick") == 0) {
			o.quick = true;
		} else if (strcmp(a, "--full") == 0) {
			o.quick = false;
		} else if (v != NULL && strcmp(a, "--reps") == 0) {
			reps = atoi(v);
		} else if (v != NULL && strcmp(a, "--window") == 0) {
			window = atof(v);
		} else if (v != NULL && strcmp(a, "--only") == 0) {
			o.only = v;
		} else if (v != NULL && strcmp(a, "--rows") == 0) {
			o.rows = v;
		} else if (v != NULL && strcmp(a, "--csv") == 0) {
			csv = v;
		} else if (v != NULL && strcmp(a, "--json") == 0) {
			json = v;
		} else if (v != NULL && strcmp(a, "--markdown") == 0) {
			md = v;
		} else if (v != NULL && strcmp(a, "--plots") == 0) {
			plots = v;
		} else {
			usage(argv[0]);
		}
		if (strncmp(a, "--", 2) == 0 && strcmp(a, "--quick") != 0 &&
		    strcmp(a, "--full") != 0) {
			len = strlen(cmdline);
			snprintf(cmdline + len, sizeof(cmdline) - len, " %s",
				 v);
			i++;
		}
	}
	o.reps = reps > 0 ? reps : o.quick ? 3 : 5;
	if (o.reps > BENCH_MAX_REPS)
		o.reps = BENCH_MAX_REPS;
	o.window = window > 0 ? window : o.quick ? 0.1 : 0.5;
	o.grid_window = window > 0 ? window : 0.5;
	raise_mq_limit();
	bench_machine(machine, sizeof(machine));

	o.load_start = bench_loadavg();
	double start = bench_now(), took[NWORKLOADS] = { 0 };
	int all_reps = o.reps > BENCH_TARGET_REPS ? o.reps : BENCH_TARGET_REPS;
	for (int rep = 0; rep < all_reps; rep++) {
		for (int w = 0; w < NWORKLOADS; w++) {
			if (!want(&o, workloads[w]) ||
			    (rep >= o.reps && w != 0))
				continue;
			double t0 = bench_now();
			run_workload(&o, w, rep);
			took[w] += bench_now() - t0;
		}
	}
	bench_progress_end();
	o.load_end = bench_loadavg();
	describe_time(&o, bench_now() - start, took);
	int failed = results_sanity();
	if (failed > 0)
		fprintf(stderr,
			"ipc-bench: %d cells failed their sanity checks (see "
			"the notes)\n",
			failed);
	report_terminal(stdout, machine, &o);
	fflush(stdout);
	if (csv != NULL && report_csv(csv) != 0)
		perror(csv);
	if (json != NULL && report_json(json, machine, cmdline, &o) != 0)
		perror(json);
	if (md != NULL && report_markdown(md, machine, &o, cmdline) != 0)
		perror(md);
	if (plots != NULL && report_plots(plots) < 0)
		fprintf(stderr, "ipc-bench: gnuplot failed on %s/plots.gp\n",
			plots);
	return 0;
}
