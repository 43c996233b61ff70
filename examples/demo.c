/* SPDX-License-Identifier: MIT */
/*
 * demo.c — libipc's flagship demo: a producer/consumer pipeline that
 * survives a consumer being SIGKILLed mid-task.
 *
 *   examples/demo [--items N] [--producers P] [--consumers C]
 *                 [--kill-one | --crash]
 *
 *   producers --(JoinableQueue: work items)--> consumers
 *   consumers --(Queue: results)--> main
 *   an Event starts everyone together; a Lock guards a shared tally.
 *
 * Each work item is 4 KiB of data generated from its number; a consumer
 * hashes it (FNV-1a), records the hash in the tally under the Lock, sends
 * {number, hash} back on the results queue and calls task_done. The main
 * process shows live progress, then checks the result against hashes it
 * computes itself.
 *
 * The crash acts make the failure certain instead of leaving it to timing:
 *
 *   act 1 (--kill-one, --crash): the first consumer to get an item
 *     numbered a third of the way through announces the item and stops
 *     there, between get and task_done; main SIGKILLs it. The
 *     JoinableQueue queues that task again and another consumer does it.
 *   act 2 (--crash): the first consumer to record an item numbered two
 *     thirds of the way through adds its hash to the sum under the tally
 *     Lock, announces itself and stops before it has counted the item;
 *     main SIGKILLs it holding the Lock with the tally half-updated. The
 *     next acquirer gets IPC_EOWNERDEAD and repairs the tally from its
 *     per-item records; the task the victim held is requeued as in act 1.
 *
 * The consumers pick the victims by item number, so each act happens in
 * every run, however the processes are scheduled.
 *
 * A result already sent may come twice (at-least-once); main counts each
 * item once. The summary reports how many tasks were requeued and how many
 * times the tally was repaired; with --crash both are at least 1, or the
 * demo fails.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "example.h"

#define ITEM_SIZE 4096
#define MAX_WORKERS 32

struct item {
	uint32_t id;
	uint8_t data[ITEM_SIZE];
};

struct result {
	uint32_t id;
	uint64_t hash;
};

/* Shared memory guarded by tally_lock. ck[id] is written before done[id],
 * so after a crash the sums can be rebuilt from the done items. */
struct tally {
	uint64_t sum;
	uint32_t count;
	uint32_t repairs;
	_Atomic uint32_t next_id;	/* producers take numbers from here */
	_Atomic uint32_t requeued;	/* items got a second time */
	int32_t acts;			/* crash acts to play, 0..2 */
	_Atomic int32_t claimed[3];	/* [act]: a consumer took the part */
	_Atomic int32_t victim_pid[3];	/* [act]: set once it has stopped */
	_Atomic int32_t victim_item[3]; /* [act]: the task it holds */
	_Atomic int32_t *got_by;	/* [items]: pid of the last getter */
	uint8_t *done;			/* [items] */
	uint64_t *ck;			/* [items] */
};

static uint32_t n_items = 200000;
static ipc_queue *work, *results;
static ipc_event *go;
static ipc_lock *tally_lock;
static struct tally *tally;

static void generate(uint32_t id, uint8_t *out)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);

	for (int i = 0; i < ITEM_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(out + i, &x, 8);
	}
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static int producer(void *arg)
{
	struct item it;
	(void)arg;

	ex_check(ipc_event_wait(go, 10000), "wait for start");
	for (;;) {
		it.id = atomic_fetch_add(&tally->next_id, 1);
		if (it.id >= n_items)
			return 0;
		generate(it.id, it.data);
		ex_check(ipc_queue_put(work, &it, sizeof(it), IPC_FOREVER),
			 "put work");
	}
}

/* Rebuild the tally from the per-item records: what a process does when it
 * finds that the previous holder of the Lock died mid-update. */
static void repair_tally(void)
{
	tally->sum = 0;
	tally->count = 0;
	for (uint32_t id = 0; id < n_items; id++)
		if (tally->done[id]) {
			tally->sum += tally->ck[id];
			tally->count++;
		}
	tally->repairs++;
}

/* Crash act `act` (1 or 2) at item id: the first consumer to get there
 * with an item at least act thirds of the way through plays the victim.
 * It announces the task it holds and stops until main's SIGKILL. */
static void maybe_stop_for_act(int act, uint32_t id)
{
	int32_t no = 0;

	if (act > tally->acts || id < n_items / 3 * (uint32_t)act ||
	    !atomic_compare_exchange_strong(&tally->claimed[act], &no, 1))
		return;
	atomic_store(&tally->victim_item[act], (int32_t)id);
	atomic_store(&tally->victim_pid[act], (int32_t)getpid());
	for (;;)
		pause(); /* main's SIGKILL ends this */
}

static void record(uint32_t id, uint64_t hash)
{
	int rc = ipc_lock_acquire(tally_lock, IPC_FOREVER);

	if (rc == IPC_EOWNERDEAD) /* held, but the tally may be half-done */
		repair_tally();
	else
		ex_check(rc, "lock");
	if (!tally->done[id]) { /* a redelivered task counts once */
		tally->ck[id] = hash;
		tally->sum += hash;
		maybe_stop_for_act(2, id); /* dies with the sum half-updated */
		tally->done[id] = 1;
		tally->count++;
	}
	ex_check(ipc_lock_release(tally_lock), "unlock");
}

static int consumer(void *arg)
{
	struct item it;
	(void)arg;

	ex_check(ipc_event_wait(go, 10000), "wait for start");
	for (;;) {
		ssize_t n = ipc_queue_get(work, &it, sizeof(it), IPC_FOREVER);
		if (n == IPC_ECLOSED)
			return 0;
		ex_check((int)n, "get work");
		/* Got before? Then its first consumer died: it was requeued. */
		if (atomic_exchange(&tally->got_by[it.id], (int32_t)getpid()))
			atomic_fetch_add(&tally->requeued, 1);
		maybe_stop_for_act(1, it.id); /* dies holding this task */
		struct result r = { it.id, fnv1a(it.data, ITEM_SIZE) };
		record(r.id, r.hash);
		ex_check(ipc_queue_put(results, &r, sizeof(r), IPC_FOREVER),
			 "put result");
		ex_check(ipc_queue_task_done(work), "task_done");
	}
}

static void *shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* If act's victim has stopped at its point, SIGKILL it and return 1;
 * else 0. */
static int kill_victim(ipc_process **cons, int n_cons, int act, uint32_t got,
		       bool tty)
{
	int32_t pid = atomic_load(&tally->victim_pid[act]);

	if (pid == 0)
		return 0;
	for (int i = 0; i < n_cons; i++) {
		if (cons[i] == NULL || ipc_process_pid(cons[i]) != pid)
			continue;
		ipc_process_kill(cons[i]);
		ex_join(cons[i]);
		cons[i] = NULL;
		atomic_store(&tally->victim_pid[act], -1); /* done */
		printf("%s  -- act %d: SIGKILLed consumer-%d (pid %d) at %u "
		       "items, %s item %d\n",
		       tty ? "\n" : "", act, i, (int)pid, got,
		       act == 1 ? "holding the task of"
				: "holding the tally Lock, half-way through "
				  "recording",
		       (int)atomic_load(&tally->victim_item[act]));
		return 1;
	}
	fprintf(stderr, "demo: the victim pid %d is not a consumer\n",
		(int)pid);
	for (int i = 0; i < n_cons; i++)
		ipc_process_kill(cons[i]); /* else exit() would wait for them */
	exit(1);
}

static void progress(uint32_t got, double t0, bool tty, bool final)
{
	double dt = now_s() - t0;
	int bar = (int)(30.0 * got / n_items);

	char rate[32] = "      - items/s";

	/* A rate over the first few milliseconds means nothing: wait for a
	 * tenth of a second of data. */
	if (dt >= 0.1)
		snprintf(rate, sizeof(rate), "%7.0f items/s", got / dt);
	printf("%s  [%.*s%*s] %6u/%u items  %s  queue depth %4ld%s",
	       tty ? "\r" : "", bar, "##############################", 30 - bar,
	       "", got, n_items, rate, ipc_queue_qsize(work),
	       tty && !final ? "" : "\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int n_prod = 2, n_cons = 4;
	int acts = 0, killed = 0; /* crash acts wanted / played */
	bool tty = isatty(STDOUT_FILENO);
	ipc_process *prod[MAX_WORKERS], *cons[MAX_WORKERS];
	uint32_t got = 0, dups = 0;
	uint64_t sum = 0, expect = 0;
	uint8_t *seen;
	struct result r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kill-one") == 0)
			acts = 1;
		else if (strcmp(argv[i], "--crash") == 0)
			acts = 2;
		else if (strcmp(argv[i], "--items") == 0 && i + 1 < argc)
			n_items = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--producers") == 0 && i + 1 < argc)
			n_prod = atoi(argv[++i]);
		else if (strcmp(argv[i], "--consumers") == 0 && i + 1 < argc)
			n_cons = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: examples/demo [--items N] "
					"[--producers P] [--consumers C] "
					"[--kill-one | --crash]\n");
			return 2;
		}
	}
	/* Each act needs a third of the items still ahead of it, and one
	 * consumer must outlive the acts. */
	if (n_items < (acts ? 300u : 1u) || n_prod < 1 || n_cons < 1 + acts ||
	    n_prod > MAX_WORKERS || n_cons > MAX_WORKERS) {
		fprintf(stderr,
			"demo: bad counts (the crash acts need at "
			"least 300 items and %d consumers)\n",
			1 + acts);
		return 2;
	}

	ipc_queue_attr wattr = { .capacity = 4 << 20, .joinable = true };
	ex_check(ipc_queue_open(&work, NULL, 0, &wattr), "work queue");
	ex_check(ipc_queue_new(&results, 0), "results queue");
	ex_check(ipc_event_new(&go), "event");
	ex_check(ipc_lock_new(&tally_lock), "lock");
	tally = shared(sizeof(*tally));
	tally->acts = acts;
	tally->done = shared(n_items);
	tally->got_by = shared(n_items * sizeof(int32_t));
	tally->ck = shared(n_items * sizeof(uint64_t));
	seen = calloc(n_items, 1);

	printf("libipc demo: %d producers -> JoinableQueue -> %d consumers "
	       "-> Queue -> main, %u items of %d KiB\n",
	       n_prod, n_cons, n_items, ITEM_SIZE / 1024);
	for (int i = 0; i < n_prod; i++) {
		char name[16];
		snprintf(name, sizeof(name), "producer-%d", i);
		prod[i] = ex_spawn(name, producer, NULL);
	}
	for (int i = 0; i < n_cons; i++) {
		char name[16];
		snprintf(name, sizeof(name), "consumer-%d", i);
		cons[i] = ex_spawn(name, consumer, NULL);
	}
	double t0 = now_s(), last = 0;
	ex_check(ipc_event_set(go), "start");

	while (got < n_items) {
		ssize_t n = ipc_queue_get(results, &r, sizeof(r), 200);
		if (n == sizeof(r) && r.id < n_items) {
			if (seen[r.id]++)
				dups++;
			else {
				got++;
				sum += r.hash;
			}
		} else if (n != IPC_ETIMEDOUT) {
			ex_check((int)n, "get result");
		}
		for (int a = 1; a <= acts; a++)
			if (atomic_load(&tally->victim_pid[a]) > 0)
				killed +=
					kill_victim(cons, n_cons, a, got, tty);
		if (now_s() - last > (tty ? 0.1 : 1.0)) {
			last = now_s();
			progress(got, t0, tty, false);
		}
	}
	if (killed < acts) { /* cannot happen: a consumer gets every item */
		fprintf(stderr, "demo: only %d of %d crash acts happened\n",
			killed, acts);
		ipc_queue_shutdown(work);
		for (int i = 0; i < n_cons; i++)
			ipc_process_kill(cons[i]);
		return 1;
	}
	ex_check(ipc_queue_join(work, 10000), "join");
	double dt = now_s() - t0;
	progress(got, t0, tty, true);
	ipc_queue_shutdown(work);
	for (int i = 0; i < n_prod; i++)
		ex_join(prod[i]);
	for (int i = 0; i < n_cons; i++)
		if (cons[i] != NULL)
			ex_join(cons[i]);

	/* Verify independently: regenerate every item and hash it here. */
	uint8_t buf[ITEM_SIZE];
	for (uint32_t id = 0; id < n_items; id++) {
		generate(id, buf);
		expect += fnv1a(buf, ITEM_SIZE);
	}
	if (ipc_lock_acquire(tally_lock, 1000) == IPC_EOWNERDEAD)
		repair_tally();
	uint32_t requeued = atomic_load(&tally->requeued);
	bool ok = sum == expect && tally->sum == expect &&
		  tally->count == n_items && got == n_items &&
		  ipc_queue_unfinished(work) == 0 &&
		  (acts < 1 || requeued >= 1) &&
		  (acts < 2 || tally->repairs >= 1);
	ipc_lock_release(tally_lock);

	printf("\nsummary: %u items in %.2f s = %.0f items/s (%.0f MB/s of "
	       "data)\n",
	       n_items, dt, n_items / dt,
	       n_items * (double)ITEM_SIZE / dt / 1e6);
	printf("  results total   %016llx\n  expected total  %016llx\n",
	       (unsigned long long)sum, (unsigned long long)expect);
	printf("  tally (Lock)    %u items, %016llx, repaired %u time(s)\n",
	       tally->count, (unsigned long long)tally->sum, tally->repairs);
	if (acts)
		printf("  %d consumer(s) killed mid-task: requeued %u task(s), "
		       "done again by others;\n  %u duplicate result(s) "
		       "counted once\n",
		       acts, (unsigned)requeued, dups);
	printf("  verified: %s\n", ok ? "OK" : "MISMATCH");
	ipc_queue_close(work);
	ipc_queue_close(results);
	ipc_event_close(go);
	ipc_lock_close(tally_lock);
	free(seen);
	return ok ? 0 : 1;
}
