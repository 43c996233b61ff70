/* SPDX-License-Identifier: MIT */
/*
 * semaphore_pool.c — Semaphore between processes (the classic Python
 * RecordPool): ten workers, at most three at work at once.
 *
 * A BoundedSemaphore(3) admits three holders; the fourth blocks until one
 * releases. The RecordPool is a list of active worker names in shared
 * memory, guarded by a Lock, printed whenever it changes — it never shows
 * more than three names. "Bounded" means a buggy extra release is refused
 * (IPC_EINVAL) instead of silently letting a fourth worker in.
 */
#include <sys/mman.h>

#include "example.h"

#define WORKERS 10
#define SLOTS 3

struct record_pool {
	int active[WORKERS]; /* worker ids, -1 when free */
	int n_active;
	int peak;
};

static ipc_sem *sem;
static ipc_lock *lock;
static struct record_pool *pool;

static void show_pool(const char *what, int id)
{
	char list[128];
	int n = 0;

	list[0] = '\0';
	for (int i = 0; i < WORKERS; i++)
		if (pool->active[i] >= 0)
			n += snprintf(list + n, sizeof(list) - (size_t)n,
				      "%s'%d'", n ? ", " : "", pool->active[i]);
	ex_log("%s %d: [%s] is running", what, id, list);
}

static void make_active(int id)
{
	ex_check(ipc_lock_acquire(lock, IPC_FOREVER), "lock");
	pool->active[id] = id;
	if (++pool->n_active > pool->peak)
		pool->peak = pool->n_active;
	show_pool("makeActive", id);
	ipc_lock_release(lock);
}

static void make_inactive(int id)
{
	ex_check(ipc_lock_acquire(lock, IPC_FOREVER), "lock");
	pool->active[id] = -1;
	pool->n_active--;
	ex_log("%d is removed", id);
	ipc_lock_release(lock);
}

static int worker(void *arg)
{
	int id = (int)(long)arg;

	ex_check(ipc_sem_acquire(sem, 30000), "ipc_sem_acquire");
	make_active(id);
	ex_sleep_ms(150); /* the work */
	make_inactive(id);
	ex_check(ipc_sem_release(sem), "ipc_sem_release");
	return 0;
}

int main(void)
{
	ipc_process *kids[WORKERS];
	int rc = 0;

	pool = mmap(NULL, sizeof(*pool), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pool == MAP_FAILED)
		return 1;
	for (int i = 0; i < WORKERS; i++)
		pool->active[i] = -1;
	ex_check(ipc_sem_new(&sem, SLOTS, SLOTS), "ipc_sem_new");
	ex_check(ipc_lock_new(&lock), "ipc_lock_new");
	for (int i = 0; i < WORKERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", i);
		kids[i] = ex_spawn(name, worker, (void *)(long)i);
	}
	for (int i = 0; i < WORKERS; i++)
		rc |= ex_join(kids[i]);
	ex_log("peak of %d workers at once, %d allowed", pool->peak, SLOTS);
	int extra = ipc_sem_release(sem);
	ex_log("an extra release is refused: %s", ipc_err_name(extra));
	ipc_sem_close(sem);
	ipc_lock_close(lock);
	return rc != 0 || pool->peak > SLOTS || extra != IPC_EINVAL;
}
