/* SPDX-License-Identifier: MIT */
/*
 * condition_release.c — Condition between processes (the classic Python
 * "release version").
 *
 * Consumers wait until a producer has made the release; the producer then
 * wakes them all with notify_all. The Python version relies on
 * sleeps so that consumers are already waiting when notifyAll() runs — a
 * consumer that starts late would wait for ever. The robust pattern, used
 * here, is to wait for a *predicate* on shared state under the Condition's
 * lock (ipc_cond_wait_for, Python's wait_for): a late consumer sees the
 * release already made and does not wait at all.
 */
#include <sys/mman.h>

#include "example.h"

struct release {
	ipc_cond *cond;
	int *version; /* 0 until released; guarded by cond's lock */
};

static struct release rel;

static bool released(void *arg)
{
	(void)arg;
	return *rel.version != 0;
}

static int consumer(void *arg)
{
	const char *who = arg;

	ex_log("[%s] waiting [release version]", who);
	ex_check(ipc_cond_acquire(rel.cond, IPC_FOREVER), "acquire");
	ex_check(ipc_cond_wait_for(rel.cond, released, NULL, 10000),
		 "ipc_cond_wait_for");
	int v = *rel.version;
	ex_check(ipc_cond_release(rel.cond), "release");
	ex_log("[%s] starting version check of v%d", who, v);
	return 0;
}

static int producer(void *arg)
{
	const char *who = arg;

	ex_log("starting produce process");
	ex_check(ipc_cond_acquire(rel.cond, IPC_FOREVER), "acquire");
	ex_log("[%s] making [release version]", who);
	ex_sleep_ms(200); /* building the release */
	*rel.version = 2;
	ex_check(ipc_cond_notify_all(rel.cond), "ipc_cond_notify_all");
	ex_check(ipc_cond_release(rel.cond), "release");
	return 0;
}

int main(void)
{
	ipc_process *kids[3];
	int rc = 0;

	rel.version = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rel.version == MAP_FAILED)
		return 1;
	ex_check(ipc_cond_new(&rel.cond), "ipc_cond_new");
	static char xiaohui[] = "xiaohui", xiaoming[] = "xiaoming",
		    xiaolong[] = "xiaolong";
	kids[0] = ex_spawn("C1", consumer, xiaohui);
	kids[1] = ex_spawn("C2", consumer, xiaoming);
	kids[2] = ex_spawn("p2", producer, xiaolong);
	for (int i = 0; i < 3; i++)
		rc |= ex_join(kids[i]);
	ipc_cond_close(rel.cond);
	return rc;
}
