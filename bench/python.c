/* SPDX-License-Identifier: MIT */
/*
 * Python's multiprocessing rows: ipc-bench runs bench/mp_bench.py (the same
 * method in Python, see its header) and records each key=value line it
 * prints. Without python3 the rows are skipped with a note.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IPC_BENCH_PY
#define IPC_BENCH_PY "bench/mp_bench.py"
#endif

static const char *script(void)
{
	const char *env = getenv("IPC_BENCH_PY");

	return env != NULL && env[0] != '\0' ? env : IPC_BENCH_PY;
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

bool python_run(const char *workload, const char *transport, const char *param,
		const char *args)
{
	char cmd[1024], line[256], note[128], key[32][24];
	double val[32];
	int n = 0;
	FILE *f;

	if (!python_available(note)) {
		result_note(workload, transport, param, note);
		return false;
	}
	snprintf(cmd, sizeof(cmd), "python3 '%s' %s 2>/dev/null", script(),
		 args);
	fflush(NULL);
	f = popen(cmd, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '=');
		if (eq == NULL || n == 32)
			continue;
		*eq = '\0';
		line[sizeof(key[n]) - 1] = '\0';
		memcpy(key[n], line, sizeof(key[n]));
		val[n++] = strtod(eq + 1, NULL);
	}
	/* All or nothing: a helper that failed halfway records no values. */
	if (pclose(f) != 0 || n == 0) {
		result_note(workload, transport, param,
			    "the Python helper failed");
		return false;
	}
	for (int i = 0; i < n; i++)
		result_add(workload, transport, param, key[i], val[i]);
	return true;
}
