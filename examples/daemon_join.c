/* SPDX-License-Identifier: MIT */
/*
 * daemon_join.c — daemon and non-daemon processes, and join(timeout).
 *
 * The daemon would work for 2 s; the non-daemon finishes at once. Main
 * joins the daemon with a 0.5 s timeout, sees it still alive, and returns
 * from main: libipc then terminates the daemon (it never logs "exiting")
 * and would have waited for any non-daemon child still running.
 */
#include "example.h"

static int daemon_fn(void *arg)
{
	(void)arg;
	ex_log("starting");
	ex_sleep_ms(2000);
	ex_log("exiting"); /* never printed: terminated at main's exit */
	return 0;
}

static int non_daemon_fn(void *arg)
{
	(void)arg;
	ex_log("starting");
	ex_log("exiting");
	return 0;
}

int main(void)
{
	ipc_process_attr dattr = { .name = "daemon", .daemon = true };
	ipc_process_attr nattr = { .name = "non-daemon" };
	ipc_process *d, *n;

	ex_check(ipc_process_start(&d, daemon_fn, NULL, &dattr), "start");
	ex_check(ipc_process_start(&n, non_daemon_fn, NULL, &nattr), "start");
	int rc = ipc_process_join(d, 500);
	ex_log("join(daemon, 0.5 s): %s; daemon alive: %s", ipc_err_name(rc),
	       ipc_process_is_alive(d) ? "yes" : "no");
	ex_check(ipc_process_join(n, IPC_FOREVER), "join");
	ex_log("non-daemon joined; returning from main, daemon still running");
	return 0; /* at exit: the daemon is terminated */
}
