/* SPDX-License-Identifier: MIT */
/*
 * enumerate_children.c — listing and joining the active children (the
 * classic threading.enumerate() example, for processes), with log lines
 * that carry the process name and pid.
 */
#include "example.h"

static int worker(void *arg)
{
	long pause = (long)arg;

	ex_log("sleeping %ld ms", pause);
	ex_sleep_ms(pause);
	ex_log("ending");
	return 0;
}

int main(void)
{
	ipc_process *kids[8];
	size_t n;

	for (long i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "Process-%ld", i + 1);
		ex_spawn(name, worker, (void *)(100 + 100 * i));
	}
	n = ipc_active_children(kids, 8);
	ex_log("%zu active children", n);
	for (size_t i = 0; i < n; i++)
		ex_log("  %s (pid %d)", ipc_process_name(kids[i]),
		       (int)ipc_process_pid(kids[i]));
	for (size_t i = 0; i < n; i++) {
		ex_log("joining %s", ipc_process_name(kids[i]));
		ex_join(kids[i]);
	}
	ex_log("%zu active children", ipc_active_children(NULL, 0));
	return 0;
}
