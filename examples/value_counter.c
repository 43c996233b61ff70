/* SPDX-License-Identifier: MIT */
/*
 * value_counter.c — a shared Value incremented by ten processes (Python's
 * multiprocessing.Value('i', 0) and its get_lock()).
 *
 * Three rounds, each by ten processes of 20000 increments, started
 * together by an Event:
 *   1. `*v += 1` through the data pointer, without the lock: a read, an add
 *      and a write, so two processes that read the same value lose one
 *      increment. The total is usually short (how short depends on the
 *      scheduling; on one core it may even come out right).
 *   2. the same `*v += 1`, holding the Value's lock: exact.
 *   3. ipc_value_add, an atomic add, no lock: exact, and faster.
 */
#include "example.h"

#define PROCS 10
#define ADDS 20000

static ipc_value *counter;
static ipc_event *go; /* all ten start together */
static int mode;

static int worker(void *arg)
{
	volatile int32_t *v = ipc_value_data(counter);

	(void)arg;
	ex_check(ipc_event_wait(go, IPC_FOREVER), "ipc_event_wait");
	for (int i = 0; i < ADDS; i++) {
		if (mode == 1) {
			*v = *v + 1;
		} else if (mode == 2) {
			int rc = ipc_value_acquire(counter, IPC_FOREVER);
			if (rc == IPC_EOWNERDEAD)
				ex_log("a holder died; the count may be off");
			else
				ex_check(rc, "ipc_value_acquire");
			*v = *v + 1;
			ex_check(ipc_value_release(counter),
				 "ipc_value_release");
		} else {
			ex_check(ipc_value_add(counter, 1, NULL),
				 "ipc_value_add");
		}
	}
	return 0;
}

static int64_t run_round(int m)
{
	ipc_process *w[PROCS];
	int64_t total;

	mode = m; /* set before the fork: each child sees it */
	ex_check(ipc_value_store(counter, 0), "ipc_value_store");
	ex_check(ipc_event_clear(go), "ipc_event_clear");
	for (int i = 0; i < PROCS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "adder-%d", i + 1);
		w[i] = ex_spawn(name, worker, NULL);
	}
	ex_check(ipc_event_set(go), "ipc_event_set");
	for (int i = 0; i < PROCS; i++)
		if (ex_join(w[i]) != 0)
			exit(1);
	ex_check(ipc_value_load(counter, &total), "ipc_value_load");
	return total;
}

int main(void)
{
	const int64_t expected = (int64_t)PROCS * ADDS;
	int64_t plain, locked, atomic;

	ex_check(ipc_value_new(&counter, IPC_TYPE_I32), "ipc_value_new");
	ex_check(ipc_event_new(&go), "ipc_event_new");
	plain = run_round(1);
	ex_log("without the lock: %lld of %lld (%lld increments lost)",
	       (long long)plain, (long long)expected,
	       (long long)(expected - plain));
	locked = run_round(2);
	ex_log("with the lock:    %lld of %lld", (long long)locked,
	       (long long)expected);
	atomic = run_round(3);
	ex_log("ipc_value_add:    %lld of %lld", (long long)atomic,
	       (long long)expected);
	ipc_value_close(counter);
	ipc_event_close(go);
	return plain <= expected && locked == expected && atomic == expected
		       ? 0
		       : 1;
}
