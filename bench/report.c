/* SPDX-License-Identifier: MIT */
/*
 * The terminal report and the targets of the speed issue, each checked
 * against ratios measured in this run. Every figure printed is the median
 * of the run's repetitions; "-" is a row not measured (the notes at the
 * end say why).
 */
#include "bench.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Where the report goes: stdout, or a Markdown file's fenced block. */
static FILE *rep;

const char *const stream_rows[] = {
	"ring",	     "libipc",	 "libipc-batch",  "libipc-zc",
	"libipc-mq", "ipc-pipe", "libipc-remote", "libipc-remote-batch",
	"mq",	     "pipe",	 "unix",	  "nn-ipc",
	"nn-tcp",    "zmq-ipc",	 "boost-mq",	  "py-queue",
	"py-pipe",   NULL,
};
const char *const grid_rows[] = { "libipc", "libipc-jq", "mq", "py-queue",
				  NULL };
const char *const grid_params[] = { "1x1", "1x4", "4x1", "4x4", NULL };
const char *const onecore_rows[] = { "libipc", "boost-mq", "mq", "pipe", NULL };
const char *const prim_rows[] = { "lock",    "lock-contended", "event", "sem",
				  "barrier", "joinable",       NULL };

/* 12.3M style: three significant digits. */
const char *fmt_num(char *buf, size_t cap, double v)
{
	static const char *const sfx[] = { "", "k", "M", "G" };
	int i = 0;

	if (isnan(v))
		return snprintf(buf, cap, "-"), buf;
	while (fabs(v) >= 1000 && i < 3) {
		v /= 1000;
		i++;
	}
	snprintf(buf, cap,
		 fabs(v) >= 100	 ? "%.0f%s"
		 : fabs(v) >= 10 ? "%.1f%s"
				 : "%.2f%s",
		 v, sfx[i]);
	return buf;
}

/* A cell: "failed" when sanity.c failed it (the notes say why), "-" when
 * it was not measured, else its median. */
static const char *fig(char *b, size_t cap, const char *w, const char *t,
		       const char *p, const char *metric)
{
	if (result_failed(w, t, p))
		return snprintf(b, cap, "failed"), b;
	return fmt_num(b, cap, result_get(w, t, p, metric));
}

/* The same with a fixed number of decimals and a suffix. */
static const char *fig_fixed(char *b, size_t cap, const char *w, const char *t,
			     const char *p, const char *metric, int prec,
			     const char *suffix)
{
	double v = result_get(w, t, p, metric);

	if (result_failed(w, t, p))
		snprintf(b, cap, "failed");
	else if (isnan(v))
		snprintf(b, cap, "-");
	else
		snprintf(b, cap, "%.*f%s", prec, v, suffix);
	return b;
}

/* A ratio of two cells' medians: "failed" when either cell failed. */
static const char *ratio_cell(char *b, size_t cap, const char *w, const char *p,
			      const char *metric, const char *a,
			      const char *over)
{
	double v = result_get(w, a, p, metric) / result_get(w, over, p, metric);

	if (result_failed(w, a, p) || result_failed(w, over, p))
		snprintf(b, cap, "failed");
	else if (isnan(v))
		snprintf(b, cap, "-");
	else
		snprintf(b, cap, "%.2fx", v);
	return b;
}

static void stream_table(const char *title, const char *metric, bool ratio)
{
	char b[32];

	fprintf(rep, "\n%s\n%-20s", title, "");
	for (int s = 0; s < bench_nsizes; s++) {
		char p[24];
		snprintf(p, sizeof(p),
			 bench_sizes[s] >= 1024 ? "%zu KiB" : "%zu B",
			 bench_sizes[s] >= 1024 ? bench_sizes[s] / 1024
						: bench_sizes[s]);
		fprintf(rep, "%10s", p);
	}
	fprintf(rep, "\n");
	for (int t = 0; stream_rows[t] != NULL; t++) {
		if (!result_measured("stream", stream_rows[t]))
			continue;
		fprintf(rep, "%-20s", stream_rows[t]);
		for (int s = 0; s < bench_nsizes; s++) {
			char p[24];
			snprintf(p, sizeof(p), "%zu", bench_sizes[s]);
			fprintf(rep, "%10s",
				ratio ? ratio_cell(b, sizeof(b), "stream", p,
						   metric, "libipc",
						   stream_rows[t])
				      : fig(b, sizeof(b), "stream",
					    stream_rows[t], p, metric));
		}
		fprintf(rep, "\n");
	}
}

static void latency_table(const char *workload, const char *title)
{
	static const char *const m[] = { "p50_us", "p99_us", "p999_us",
					 "max_us" };
	char b[32];

	fprintf(rep, "\n%s\n%-20s%10s%10s%10s%10s%10s%14s\n", title, "",
		"p50 us", "p99 us", "p99.9 us", "max us", "samples",
		"p50 / libipc");
	for (int t = 0; stream_rows[t] != NULL; t++) {
		if (!result_measured(workload, stream_rows[t]))
			continue;
		fprintf(rep, "%-20s", stream_rows[t]);
		for (int i = 0; i < 4; i++)
			fprintf(rep, "%10s",
				fig(b, sizeof(b), workload, stream_rows[t],
				    "64", m[i]));
		fprintf(rep, "%10s",
			fig(b, sizeof(b), workload, stream_rows[t], "64",
			    "samples"));
		fprintf(rep, "%14s\n",
			ratio_cell(b, sizeof(b), workload, "64", "p50_us",
				   stream_rows[t], "libipc"));
	}
}

static void grid_table(void)
{
	char b[32];

	fprintf(rep,
		"\nProducers x consumers, 64 B, total msgs/s (max/min of the "
		"per-producer counts)\n%-14s",
		"");
	for (int g = 0; grid_params[g] != NULL; g++)
		fprintf(rep, "%18s", grid_params[g]);
	fprintf(rep, "\n");
	for (int t = 0; grid_rows[t] != NULL; t++) {
		if (!result_measured("grid", grid_rows[t]))
			continue;
		fprintf(rep, "%-14s", grid_rows[t]);
		for (int g = 0; grid_params[g] != NULL; g++) {
			char cell[40];
			const char *p = grid_params[g];
			if (result_failed("grid", grid_rows[t], p) ||
			    isnan(result_get("grid", grid_rows[t], p,
					     "msgs_per_s")))
				snprintf(cell, sizeof(cell), "%s",
					 fig(b, sizeof(b), "grid", grid_rows[t],
					     p, "msgs_per_s"));
			else
				snprintf(cell, sizeof(cell), "%s (%.2f)",
					 fig(b, sizeof(b), "grid", grid_rows[t],
					     p, "msgs_per_s"),
					 result_get("grid", grid_rows[t], p,
						    "max_over_min"));
			fprintf(rep, "%18s", cell);
		}
		fprintf(rep, "\n");
	}
}

static void onecore_table(void)
{
	char b[6][32];

	fprintf(rep,
		"\nOne core (producer and consumer pinned to one CPU), 64 B "
		"stream\n%-14s%10s%12s%14s%12s%12s%14s\n",
		"", "msgs/s", "cpu us/msg", "syscalls/msg", "futex/msg",
		"membarrier", "libipc / row");
	for (int t = 0; onecore_rows[t] != NULL; t++) {
		const char *r = onecore_rows[t];
		if (!result_measured("onecore", r))
			continue;
		fprintf(rep, "%-14s%10s%12s%14s%12s%12s%14s\n", r,
			fig(b[0], 32, "onecore", r, "64", "msgs_per_s"),
			fig(b[1], 32, "onecore", r, "64", "cpu_us_per_msg"),
			fig_fixed(b[2], 32, "onecore", r, "64",
				  "syscalls_per_msg", 4, ""),
			fig_fixed(b[3], 32, "onecore", r, "64", "futex_per_msg",
				  4, ""),
			fig(b[4], 32, "onecore", r, "64", "membarrier_calls"),
			ratio_cell(b[5], 32, "onecore", "64", "msgs_per_s",
				   "libipc", r));
	}
	fprintf(rep,
		"(syscalls: a second run of each row under strace -f -c, both "
		"processes and their threads, warm-up and about ten handshake "
		"calls per process included)\n");
}

static const char *prim_metric(const char *name)
{
	return strcmp(name, "lock") == 0	     ? "ns_per_op"
	       : strcmp(name, "lock-contended") == 0 ? "ops_per_s"
	       : strcmp(name, "barrier") == 0	     ? "us_per_round"
	       : strcmp(name, "joinable") == 0	     ? "us_per_cycle"
						     : "us_per_wake";
}

/* One line of the primitives: libipc, Python, and how many times better
 * libipc is (more_is_better: a rate; else a time). */
static void prim_line(const char *w, const char *label, const char *param,
		      const char *m, bool more_is_better)
{
	char b[3][32];
	double c = result_get(w, "libipc", param, m);
	double p = result_get(w, "python", param, m);
	double adv = more_is_better ? c / p : p / c;

	if (result_failed(w, "libipc", param) ||
	    result_failed(w, "python", param))
		snprintf(b[2], 32, "failed");
	else if (isnan(adv))
		snprintf(b[2], 32, "-");
	else
		snprintf(b[2], 32, "%.1fx", adv);
	fprintf(rep, "%-16s%-14s%10s%10s%12s\n", label, m,
		fig(b[0], 32, w, "libipc", param, m),
		fig(b[1], 32, w, "python", param, m), b[2]);
}

static void prim_table(void)
{
	if (!result_measured("prim", "libipc") &&
	    !result_measured("pool", "libipc"))
		return;
	fprintf(rep, "\nPrimitives across processes\n%-16s%-14s%10s%10s%12s\n",
		"", "unit", "libipc", "Python", "advantage");
	for (int i = 0; prim_rows[i] != NULL; i++) {
		const char *m = prim_metric(prim_rows[i]);
		prim_line("prim", prim_rows[i], prim_rows[i], m,
			  strcmp(m, "ops_per_s") == 0);
	}
	prim_line("pool", "Pool.map", "squares", "items_per_s", true);
}

static void notes(void)
{
	int n;
	struct result *r = result_all(&n);
	bool head = false;

	for (int i = 0; i < n; i++) {
		if (r[i].note[0] == '\0')
			continue;
		if (!head)
			fprintf(rep,
				"\nNotes (rows not measured, or failed)\n");
		head = true;
		fprintf(rep, "  %s %s %s: %s\n", r[i].workload, r[i].transport,
			r[i].param, r[i].note);
	}
}

void report_terminal(FILE *out, const char *machine, const struct bench_opts *o)
{
	struct target tg[TARGETS_MAX];
	int nt = targets_check(tg);

	rep = out;
	fprintf(rep, "ipc-bench: %s\n", machine);
	fprintf(rep,
		"%s profile: every figure the median of %d interleaved "
		"repetitions (the 64 B stream of ring, libipc, mq and "
		"py-queue: %d), %.2f s windows (the grid: %.2f s), timed at "
		"the receiver\n",
		o->quick ? "quick" : "full", o->reps,
		o->reps > BENCH_TARGET_REPS ? o->reps : BENCH_TARGET_REPS,
		o->window, o->grid_window);
	fprintf(rep, "load average %.2f at the start, %.2f at the end; %s\n",
		o->load_start, o->load_end, o->took);
	if (result_measured("stream", NULL)) {
		stream_table("One-way stream, 1 producer -> 1 consumer, msgs/s",
			     "msgs_per_s", false);
		stream_table("... MB/s", "MB_per_s", false);
		stream_table("... CPU us per message (both processes)",
			     "cpu_us_per_msg", false);
		stream_table("... libipc / row (msgs/s)", "msgs_per_s", true);
	}
	if (result_measured("latency", NULL))
		latency_table("latency", "Ping-pong, 64 B, one-way latency "
					 "(round trip / 2), both peers awake");
	if (result_measured("wakeup", NULL))
		latency_table("wakeup", "Wake-up after 1 ms idle, 64 B, "
					"send -> receive (ring: spins)");
	if (result_measured("grid", NULL))
		grid_table();
	if (result_measured("onecore", NULL))
		onecore_table();
	prim_table();
	fprintf(rep, "\nTargets\n");
	for (int i = 0; i < nt; i++)
		fprintf(rep, "  %-8s %-58s %s\n",
			tg[i].met < 0 ? "n/a"
			: tg[i].met   ? "met"
				      : "NOT MET",
			tg[i].name, tg[i].measured);
	notes();
}

int report_markdown(const char *path, const char *machine,
		    const struct bench_opts *o, const char *cmdline)
{
	FILE *f = fopen(path, "w");
	struct target tg[TARGETS_MAX];
	int nt = targets_check(tg);
	char date[32];
	time_t now = time(NULL);

	if (f == NULL)
		return -1;
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	fprintf(f, "Generated by `%s` on %s.\n\n", cmdline, date);
	fprintf(f, "| target | verdict | measured |\n|---|---|---|\n");
	for (int i = 0; i < nt; i++)
		fprintf(f, "| %s | %s | %s |\n", tg[i].name,
			tg[i].met < 0 ? "n/a"
			: tg[i].met   ? "met"
				      : "**not met**",
			tg[i].measured);
	fprintf(f, "\n```\n");
	report_terminal(f, machine, o);
	fprintf(f, "```\n");
	return fclose(f);
}
