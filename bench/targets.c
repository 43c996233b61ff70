/* SPDX-License-Identifier: MIT */
/*
 * The targets of the speed issue, each a ratio (or a count) of medians
 * measured in this run. A target whose rows were not measured (a skipped
 * workload, a missing library, a call that does not exist yet) or whose
 * cell failed (sanity.c) is "n/a", never met.
 */
#include "bench.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double ratio(const char *w, const char *a, const char *b,
		    const char *param, const char *metric)
{
	return result_get(w, a, param, metric) /
	       result_get(w, b, param, metric);
}

/* At least (or, with at_most, at most) the threshold. */
static void check(struct target *t, const char *name, double v, double thr,
		  bool at_most, int prec, const char *pre, const char *suf)
{
	t->name = name;
	t->value = v;
	if (isnan(v)) {
		t->met = -1;
		snprintf(t->measured, sizeof(t->measured),
			 "not measured, or a cell failed (see the notes)");
		return;
	}
	t->met = at_most ? v <= thr : v >= thr;
	snprintf(t->measured, sizeof(t->measured), "%s%.*f%s", pre, prec, v,
		 suf);
}

/* A target on the 64 B stream ratio of a to b, which the issue defines
 * over the median of at least BENCH_TARGET_REPS interleaved runs: with
 * fewer (a workload cut short, --reps with --only), no verdict. */
static void check_stream64(struct target *t, const char *name, const char *a,
			   const char *b, double thr, int prec)
{
	int ra = result_reps("stream", a, "64", "msgs_per_s");
	int rb = result_reps("stream", b, "64", "msgs_per_s");
	int reps = ra < rb ? ra : rb;

	check(t, name, ratio("stream", a, b, "64", "msgs_per_s"), thr, false,
	      prec, "", "x");
	if (t->met >= 0 && reps < BENCH_TARGET_REPS) {
		t->met = -1;
		snprintf(t->measured, sizeof(t->measured),
			 "%.*fx from %d repetitions (the target asks for %d)",
			 prec, t->value, reps, BENCH_TARGET_REPS);
	}
}

int targets_check(struct target *out)
{
	int n = 0;
	double v, v2;

	check_stream64(&out[n++],
		       "64 B stream: libipc >= 0.5x the spinning ring",
		       "libipc", "ring", 0.5, 2);
	check_stream64(&out[n++], "64 B stream: libipc >= 100x Python mp.Queue",
		       "libipc", "py-queue", 100, 1);
	check_stream64(&out[n++], "64 B stream: libipc >= 10x POSIX mq",
		       "libipc", "mq", 10, 1);
	check(&out[n++], "one core: libipc >= 1x Boost message_queue",
	      ratio("onecore", "libipc", "boost-mq", "64", "msgs_per_s"), 1,
	      false, 2, "", "x");
	check(&out[n++], "one core: libipc <= 0.01 syscalls per message",
	      result_get("onecore", "libipc", "64", "syscalls_per_msg"), 0.01,
	      true, 4, "", " per message");
	check(&out[n++], "one core: no membarrier call (1 producer)",
	      result_get("onecore", "libipc", "64", "membarrier_calls"), 0,
	      true, 0, "", " calls");
	check(&out[n++], "64 B batch calls >= 1x the spinning ring",
	      ratio("stream", "libipc-batch", "ring", "64", "msgs_per_s"), 1,
	      false, 2, "", "x");
	v = ratio("stream", "libipc-zc", "libipc", "65536", "msgs_per_s");
	v2 = ratio("stream", "libipc-zc", "libipc", "1048576", "msgs_per_s");
	check(&out[n++], "zero-copy >= 1.5x copying at 64 KiB and 1 MiB",
	      fmin(v, v2), 1.5, false, 2, "", "x (the lower of the two)");
	v = result_get("grid", "libipc", "4x4", "msgs_per_s") /
	    result_get("grid", "libipc", "1x1", "msgs_per_s");
	check(&out[n++], "4x4 libipc total >= 1x its 1x1", v, 1, false, 2, "",
	      "x");
	check(&out[n++], "4x4 libipc: per-producer counts within 2x",
	      result_get("grid", "libipc", "4x4", "max_over_min"), 2, true, 2,
	      "max/min ", "");
	v = result_get("grid", "libipc-jq", "4x4", "msgs_per_s") /
	    result_get("grid", "libipc-jq", "1x1", "msgs_per_s");
	check(&out[n++], "4x4 JoinableQueue total >= 1x its 1x1", v, 1, false,
	      2, "", "x");
	check(&out[n++], "4x4 JoinableQueue: per-producer counts within 2x",
	      result_get("grid", "libipc-jq", "4x4", "max_over_min"), 2, true,
	      2, "max/min ", "");
	/* Batching inside the client is how the remote queue meets it (each
	 * acknowledged put is a round trip); single puts are in the table. */
	check(&out[n++], "64 B remote queue (put_many) >= 1x raw nanomsg tcp",
	      ratio("stream", "libipc-remote-batch", "nn-tcp", "64",
		    "msgs_per_s"),
	      1, false, 3, "", "x");
	return n;
}
