/* SPDX-License-Identifier: MIT */
/*
 * lock_counter.c — Lock between processes (the classic Python Counter).
 *
 * Two worker processes increment one counter that lives in shared memory.
 * The increment is a read, an add and a write: without the Lock, two
 * processes can read the same value and one increment is lost. Each worker
 * does a couple of slow, logged increments like the Python version, then a
 * burst of 100000 to make lost updates impossible to miss; the total is exact.
 *
 * If a worker died holding the lock, the next acquire would return
 * IPC_EOWNERDEAD — with the lock held — so the counter could be checked
 * and repaired; the example shows where that goes.
 */
#include <stdatomic.h>
#include <sys/mman.h>

#include "example.h"

#define BURST 100000

struct counter {
	ipc_lock *lock; /* the handle is inherited by fork */
	long *value;	/* in shared memory */
};

static void increment(struct counter *c, bool chatty)
{
	if (chatty)
		ex_log("waiting for lock");
	int rc = ipc_lock_acquire(c->lock, IPC_FOREVER);
	if (rc == IPC_EOWNERDEAD)
		ex_log("previous holder died; the counter may need repair");
	else
		ex_check(rc, "ipc_lock_acquire");
	if (chatty)
		ex_log("acquired lock");
	*c->value += 1;
	ex_check(ipc_lock_release(c->lock), "ipc_lock_release");
}

static int worker(void *arg)
{
	struct counter *c = arg;

	srand((unsigned)getpid());
	for (int i = 0; i < 2; i++) {
		long pause = 50 + rand() % 150;
		ex_log("sleeping %ld ms", pause);
		ex_sleep_ms(pause);
		increment(c, true);
	}
	for (int i = 0; i < BURST; i++)
		increment(c, false);
	ex_log("Done");
	return 0;
}

int main(void)
{
	struct counter c;
	ipc_process *w[2];

	c.value = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.value == MAP_FAILED)
		return 1;
	ex_check(ipc_lock_new(&c.lock), "ipc_lock_new");
	for (int i = 0; i < 2; i++) {
		char name[16];
		snprintf(name, sizeof(name), "Process-%d", i + 1);
		w[i] = ex_spawn(name, worker, &c);
	}
	ex_log("waiting for worker processes");
	for (int i = 0; i < 2; i++)
		if (ex_join(w[i]) != 0)
			return 1;
	ex_log("Counter %ld (expected %d)", *c.value, 2 * (2 + BURST));
	ipc_lock_close(c.lock);
	return *c.value == 2 * (2 + BURST) ? 0 : 1;
}
