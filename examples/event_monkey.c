/* SPDX-License-Identifier: MIT */
/*
 * event_monkey.c — Event between processes (the classic Python "monkey" and
 * "autotest").
 *
 * The monkey process must not start before the autotest process has done
 * its work: it blocks in ipc_event_wait until autotest calls ipc_event_set.
 * An Event is a flag that any number of processes wait on; set() wakes them
 * all, clear() lowers it again, is_set() peeks.
 */
#include "example.h"

static ipc_event *ready;

static int monkey(void *arg)
{
	(void)arg;
	ex_log("waiting for event starting");
	int rc = ipc_event_wait(ready, 10000); /* Python: e.wait(timeout=10) */
	ex_check(rc, "ipc_event_wait");
	ex_log("event status is %s, then start monkey work",
	       ipc_event_is_set(ready) ? "set" : "clear");
	return 0;
}

static int autotest(void *arg)
{
	(void)arg;
	ex_log("start autotest task");
	ex_sleep_ms(300); /* the "test run" */
	ex_check(ipc_event_set(ready), "ipc_event_set");
	ex_log("autotest task ending");
	return 0;
}

int main(void)
{
	ipc_process *m, *a;

	/* Anonymous: shared with every child forked after this line. */
	ex_check(ipc_event_new(&ready), "ipc_event_new");
	m = ex_spawn("monkey", monkey, NULL);
	a = ex_spawn("autotest", autotest, NULL);
	int rc = ex_join(m) | ex_join(a);
	ipc_event_close(ready);
	return rc;
}
