/* SPDX-License-Identifier: MIT */
/*
 * The last check before any report: a figure that cannot be true is never
 * printed. Each cell (a workload, a row, a parameter) is checked
 * repetition by repetition against what every run records beside its
 * figures: its message or sample count, the receivers' clock, the
 * parent's wall clock around the run (from the go to the last peer's
 * exit, or around the Python helper) and the producers' window. One
 * impossible repetition fails the whole cell — the method that produced
 * it is broken for that row, so the other repetitions prove nothing —
 * and the report prints "failed" with the reason in its notes.
 *
 * What is impossible:
 *   - any value that is not a number, infinite or negative (a max/min
 *     ratio of per-producer counts is infinite when a producer was
 *     starved outright: that one is true, and kept);
 *   - a latency cell with no samples, a zero p50, percentiles out of
 *     order, or a maximum beyond the run's own wall-clock duration;
 *   - a throughput cell with no message, whose rate is not its message
 *     count over its time, whose time is longer than the run's wall clock
 *     or shorter than the producers' window (every producer sends until
 *     its window is over, and the receivers stop later), or whose
 *     per-producer counts do not add up to its message count;
 *   - a kernel transport (POSIX mq, pipe) counted at fewer than two
 *     system calls per message: each message is a send and a receive.
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The record of metric in the cell's workload, row and parameter. */
static const struct result *sibling(const struct result *cell,
				    const char *metric)
{
	int n;
	struct result *r = result_all(&n);

	for (int i = 0; i < n; i++)
		if (strcmp(r[i].workload, cell->workload) == 0 &&
		    strcmp(r[i].transport, cell->transport) == 0 &&
		    strcmp(r[i].param, cell->param) == 0 &&
		    strcmp(r[i].metric, metric) == 0)
			return &r[i];
	return NULL;
}

/* The k-th repetition of a metric of the cell, or NaN. */
static double rep_of(const struct result *cell, const char *metric, int k)
{
	const struct result *r = sibling(cell, metric);

	return r != NULL && k < r->n ? r->v[k] : NAN;
}

/* The number of repetitions of a metric of the cell. */
static int reps_of(const struct result *cell, const char *metric)
{
	const struct result *r = sibling(cell, metric);

	return r != NULL ? r->n : 0;
}

static bool fail(char *why, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Always false: the reason, in why. */
static bool fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int len = snprintf(why, cap, "impossible figure, not reported: ");

	va_start(ap, fmt);
	vsnprintf(why + len, cap - (size_t)len, fmt, ap);
	va_end(ap);
	return false;
}

static bool latency_ok(const struct result *c, char *why, size_t cap)
{
	int reps = reps_of(c, "p50_us");

	for (int k = 0; k < reps; k++) {
		double n = rep_of(c, "samples", k),
		       p50 = rep_of(c, "p50_us", k);
		double p99 = rep_of(c, "p99_us", k);
		double p999 = rep_of(c, "p999_us", k);
		double max = rep_of(c, "max_us", k);
		double wall = rep_of(c, "wall_s", k) * 1e6;
		if (!(n >= 1))
			return fail(why, cap, "%.0f samples", n);
		if (!(p50 > 0))
			return fail(why, cap, "p50 %g us", p50);
		if (!(p50 <= p99 && p99 <= p999 && p999 <= max))
			return fail(why, cap,
				    "percentiles out of order (p50 %g, max %g "
				    "us)",
				    p50, max);
		if (!(max <= wall))
			return fail(why, cap,
				    "a latency of %g us in a run of %g us", max,
				    wall);
	}
	return true;
}

/* The sum of the per-producer counts of repetition k (NaN: none). */
static double producers_sum(const struct result *c, int k)
{
	double sum = NAN;

	for (int p = 0; p < BENCH_MAX_PEERS; p++) {
		char m[24];
		snprintf(m, sizeof(m), "producer%d", p);
		double v = rep_of(c, m, k);
		if (!isnan(v))
			sum = isnan(sum) ? v : sum + v;
	}
	return sum;
}

static bool throughput_ok(const struct result *c, char *why, size_t cap)
{
	int reps = reps_of(c, "msgs_per_s");

	for (int k = 0; k < reps; k++) {
		double rate = rep_of(c, "msgs_per_s", k);
		double msgs = rep_of(c, "msgs", k), s = rep_of(c, "seconds", k);
		double wall = rep_of(c, "wall_s", k);
		double window = rep_of(c, "window_s", k);
		double per = producers_sum(c, k);
		if (!(msgs >= 1 && s > 0))
			return fail(why, cap, "%.0f messages in %g s", msgs, s);
		if (!(fabs(rate * s - msgs) <= 1e-6 * msgs + 1))
			return fail(why, cap,
				    "%g msgs/s is not %g messages over its "
				    "time",
				    rate, msgs);
		if (!(s <= wall))
			return fail(why, cap,
				    "timed %g s in a run of %g s (wall clock)",
				    s, wall);
		if (!isnan(window) && !(s >= window))
			return fail(why, cap,
				    "timed %g s, shorter than the %g s window",
				    s, window);
		if (!isnan(per) && per != msgs)
			return fail(why, cap,
				    "per-producer counts add up to %.0f, not "
				    "%.0f",
				    per, msgs);
	}
	return true;
}

static bool syscalls_ok(const struct result *c, char *why, size_t cap)
{
	double v = result_get(c->workload, c->transport, c->param,
			      "syscalls_per_msg");

	if ((strcmp(c->transport, "mq") == 0 ||
	     strcmp(c->transport, "pipe") == 0) &&
	    !isnan(v) && v < 2)
		return fail(why, cap,
			    "%g system calls per message through the kernel "
			    "(at least 2)",
			    v);
	return true;
}

static bool values_ok(const struct result *r, char *why, size_t cap)
{
	for (int k = 0; k < r->n; k++) {
		double v = r->v[k];
		if (isinf(v) && v > 0 && strcmp(r->metric, "max_over_min") == 0)
			continue; /* a producer that got nothing through */
		if (!isfinite(v) || v < 0)
			return fail(why, cap, "%s = %g", r->metric, v);
	}
	return true;
}

int results_sanity(void)
{
	int n, failed = 0;
	struct result *r = result_all(&n);
	char why[160];

	for (int i = 0; i < n; i++) {
		struct result *c = &r[i];
		bool ok = true;
		if (c->n == 0 || c->failed)
			continue;
		ok = values_ok(c, why, sizeof(why));
		if (ok && strcmp(c->metric, "p50_us") == 0)
			ok = latency_ok(c, why, sizeof(why));
		if (ok && strcmp(c->metric, "msgs_per_s") == 0 &&
		    strcmp(c->workload, "prim") != 0)
			ok = throughput_ok(c, why, sizeof(why)) &&
			     syscalls_ok(c, why, sizeof(why));
		if (!ok) {
			result_fail(c->workload, c->transport, c->param, why);
			failed++;
		}
	}
	return failed;
}
