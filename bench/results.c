/* SPDX-License-Identifier: MIT */
/*
 * The results store: one record per (workload, transport, parameter,
 * metric), holding the value of every repetition; the reports print the
 * median. A row that could not be measured keeps a note saying why.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_RESULTS 8192

static struct result results[MAX_RESULTS];
static int nresults;

static struct result *find(const char *workload, const char *transport,
			   const char *param, const char *metric, bool make)
{
	for (int i = 0; i < nresults; i++) {
		struct result *r = &results[i];
		if (strcmp(r->workload, workload) == 0 &&
		    strcmp(r->transport, transport) == 0 &&
		    strcmp(r->param, param) == 0 &&
		    strcmp(r->metric, metric) == 0)
			return r;
	}
	if (!make || nresults == MAX_RESULTS)
		return NULL;
	struct result *r = &results[nresults++];
	snprintf(r->workload, sizeof(r->workload), "%s", workload);
	snprintf(r->transport, sizeof(r->transport), "%s", transport);
	snprintf(r->param, sizeof(r->param), "%s", param);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	return r;
}

struct result *result_add(const char *workload, const char *transport,
			  const char *param, const char *metric, double v)
{
	struct result *r = find(workload, transport, param, metric, true);

	if (r != NULL && r->n < BENCH_MAX_REPS)
		r->v[r->n++] = v;
	return r;
}

/* Notes live on a record of metric "note" with no values. */
void result_note(const char *workload, const char *transport, const char *param,
		 const char *note)
{
	struct result *r = find(workload, transport, param, "note", true);

	if (r != NULL && r->note[0] == '\0')
		snprintf(r->note, sizeof(r->note), "%s", note);
}

void result_fail(const char *workload, const char *transport, const char *param,
		 const char *note)
{
	struct result *r = find(workload, transport, param, "note", true);

	/* After any note already there (a repetition that failed earlier). */
	if (r != NULL && r->note[0] != '\0' && strstr(r->note, note) == NULL) {
		size_t len = strlen(r->note);
		snprintf(r->note + len, sizeof(r->note) - len, "; %s", note);
	} else if (r != NULL) {
		snprintf(r->note, sizeof(r->note), "%s", note);
	}
	for (int i = 0; i < nresults; i++)
		if (strcmp(results[i].workload, workload) == 0 &&
		    strcmp(results[i].transport, transport) == 0 &&
		    strcmp(results[i].param, param) == 0)
			results[i].failed = true;
}

bool result_failed(const char *workload, const char *transport,
		   const char *param)
{
	struct result *r = find(workload, transport, param, "note", false);

	return r != NULL && r->failed;
}

double result_get(const char *workload, const char *transport,
		  const char *param, const char *metric)
{
	struct result *r = find(workload, transport, param, metric, false);

	/* The cell's note record carries the verdict for metrics recorded
	 * after it failed, too. */
	if (r == NULL || r->n == 0 || r->failed ||
	    result_failed(workload, transport, param))
		return NAN;
	return bench_median(r->v, r->n);
}

int result_reps(const char *workload, const char *transport, const char *param,
		const char *metric)
{
	struct result *r = find(workload, transport, param, metric, false);

	return r == NULL ? 0 : r->n;
}

const char *result_note_of(const char *workload, const char *transport,
			   const char *param)
{
	struct result *r = find(workload, transport, param, "note", false);

	return r == NULL ? NULL : r->note;
}

struct result *result_all(int *n)
{
	*n = nresults;
	return results;
}

bool result_measured(const char *workload, const char *transport)
{
	for (int i = 0; i < nresults; i++)
		if ((results[i].n > 0 || results[i].failed) &&
		    strcmp(results[i].workload, workload) == 0 &&
		    (transport == NULL ||
		     strcmp(results[i].transport, transport) == 0))
			return true;
	return false;
}
