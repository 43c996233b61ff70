/* SPDX-License-Identifier: MIT */
/*
 * Python's multiprocessing rows: ipc-bench runs bench/mp_bench.py (the same
 * method in Python, see its header) and records each key=value line it
 * prints. Without python3 the rows are skipped with a note.
 *
 * A workload hands over all its Python measurements of a repetition at
 * once: one interpreter runs them in turn (mp_bench.py batch), which
 * spares the quick profile a Python start (about a fifth of a second on a
 * loaded two-core machine) per measurement. Each measurement's own wall
 * clock, as the helper reports it, is recorded beside its figures as
 * wall_s, the bound sanity.c holds them to.
 */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IPC_BENCH_PY
#define IPC_BENCH_PY "bench/mp_bench.py"
#endif

#define PY_MAX_KEYS 32

static const char *script(void)
{
	const char *env = getenv("IPC_BENCH_PY");

	return env != NULL && env[0] != '\0' ? env : IPC_BENCH_PY;
}

#define PY_TIMEOUT "300" /* seconds for one batch */

/* coreutils' timeout(1), to bound the helper. */
static bool have_timeout(void)
{
	static int known = -1;

	if (known < 0)
		known = system("command -v timeout >/dev/null 2>&1") == 0;
	return known;
}

bool python_available(char *note)
{
	static int known = -1;

	if (known < 0)
		known = system("command -v python3 >/dev/null 2>&1") == 0 &&
			access(script(), R_OK) == 0;
	if (!known)
		snprintf(note, 120, "python3 or %s not found: skipped",
			 script());
	return known;
}

/* The key=value lines of the job being read. */
struct py_lines {
	char key[PY_MAX_KEYS][24];
	double val[PY_MAX_KEYS];
	int n;
};

static void job_commit(const struct py_job *j, const struct py_lines *l,
		       double wall)
{
	if (l->n == 0) {
		result_fail(j->workload, j->transport, j->param,
			    "the Python helper printed no figure");
		return;
	}
	for (int i = 0; i < l->n; i++)
		result_add(j->workload, j->transport, j->param, l->key[i],
			   l->val[i]);
	result_add(j->workload, j->transport, j->param, "wall_s", wall);
}

void python_run_all(const struct py_job *jobs, int n)
{
	char cmd[4096], line[256], note[128];
	struct py_lines l = { .n = 0 };
	bool *done = calloc((size_t)n, sizeof(bool));
	int cur = -1;
	size_t len;
	FILE *f;

	if (n <= 0 || done == NULL)
		goto out;
	if (!python_available(note)) {
		for (int i = 0; i < n; i++)
			result_note(jobs[i].workload, jobs[i].transport,
				    jobs[i].param, note);
		goto out;
	}
	/* A helper that hangs (a multiprocessing deadlock) is killed rather
	 * than hanging the benchmark: its unfinished jobs fail. */
	len = (size_t)snprintf(
		cmd, sizeof(cmd), "%spython3 '%s' batch",
		have_timeout() ? "timeout -k 5 " PY_TIMEOUT " " : "", script());
	for (int i = 0; i < n && len < sizeof(cmd); i++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " '%s'",
					jobs[i].args);
	if (len < sizeof(cmd))
		snprintf(cmd + len, sizeof(cmd) - len, " 2>/dev/null");
	fflush(NULL);
	f = len < sizeof(cmd) ? popen(cmd, "r") : NULL;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		int i;
		double wall;
		char *eq = strchr(line, '=');
		if (sscanf(line, "#begin %d", &i) == 1) {
			cur = i >= 0 && i < n ? i : -1;
			l.n = 0;
		} else if (sscanf(line, "#end %d %lf", &i, &wall) == 2) {
			/* All or nothing: a job that failed halfway records
			 * no values. */
			if (i == cur && !done[i])
				job_commit(&jobs[i], &l, wall);
			if (i == cur)
				done[i] = true;
			cur = -1;
		} else if (sscanf(line, "#fail %d", &i) == 1) {
			cur = -1;
		} else if (cur >= 0 && eq != NULL && l.n < PY_MAX_KEYS) {
			*eq = '\0';
			snprintf(l.key[l.n], sizeof(l.key[l.n]), "%.23s", line);
			l.val[l.n++] = strtod(eq + 1, NULL);
		}
	}
	if (f != NULL)
		pclose(f);
	for (int i = 0; i < n; i++)
		if (!done[i])
			result_fail(jobs[i].workload, jobs[i].transport,
				    jobs[i].param, "the Python helper failed");
out:
	free(done);
}

void python_job(struct py_job *jobs, int *n, int cap, const char *workload,
		const char *transport, const char *param, const char *fmt, ...)
{
	struct py_job *j = &jobs[*n];
	va_list ap;

	if (*n >= cap)
		bench_die("python_job: too many jobs");
	(*n)++;
	snprintf(j->workload, sizeof(j->workload), "%s", workload);
	snprintf(j->transport, sizeof(j->transport), "%s", transport);
	snprintf(j->param, sizeof(j->param), "%s", param);
	va_start(ap, fmt);
	vsnprintf(j->args, sizeof(j->args), fmt, ap);
	va_end(ap);
}

bool python_run(const char *workload, const char *transport, const char *param,
		const char *args)
{
	struct py_job j;
	int n = 0;

	python_job(&j, &n, 1, workload, transport, param, "%s", args);
	python_run_all(&j, 1);
	return result_measured(workload, transport) &&
	       !result_failed(workload, transport, param);
}
