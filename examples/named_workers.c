/* SPDX-License-Identifier: MIT */
/*
 * named_workers.c — naming processes (the classic Python first example).
 *
 * A name set at start ("Boss", "Boss-service") shows in every log line and
 * in ps/top; without one, libipc numbers processes like Python does
 * ("Process-2" here, the second one this program started).
 */
#include "example.h"

static int worker(void *arg)
{
	(void)arg;
	ex_log("%s: starting", ipc_current_process_name());
	ex_sleep_ms(200);
	ex_log("%s: exiting", ipc_current_process_name());
	return 0;
}

int main(void)
{
	ipc_process *a = ex_spawn("Boss", worker, NULL);
	ipc_process *b, *c = NULL;

	ex_check(ipc_process_start(&b, worker, NULL, NULL), "start");
	c = ex_spawn("Boss-service", worker, NULL);
	ex_log("started %s, %s and %s", ipc_process_name(a),
	       ipc_process_name(b), ipc_process_name(c));
	return ex_join(a) | ex_join(b) | ex_join(c);
}
