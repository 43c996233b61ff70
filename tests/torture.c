/* SPDX-License-Identifier: MIT */
/*
 * torture.c — producers and consumers SIGKILLed at random, replaced, and
 * every message accounted for afterwards.
 *
 *   tests/torture [--kills N] [--messages M] [--producers P]
 *                 [--consumers C] [--seed S] [--stop-ms T]
 *
 * A JoinableQueue in a small ring (so it wraps and fills) carries M
 * numbered messages whose bytes are derived from their number. Producers
 * take numbers from a shared counter, mark them attempted, put them, and
 * mark them acknowledged when put returns 0. Consumers check every message
 * byte for byte, count it as seen, and call task_done. Meanwhile the parent
 * kills a random producer or consumer N times (at a random moment) and
 * starts a replacement. At the end it joins the queue and checks:
 *
 *   - every acknowledged message was seen (none lost);
 *   - every seen message was attempted (none invented), none was torn;
 *   - messages seen twice are at most the number of consumers killed
 *     (a consumer killed between its get and its task_done: the task is
 *     requeued, which is the JoinableQueue's at-least-once promise);
 *   - no task is handed out again after its task_done returned;
 *   - join returns, and only once every acknowledged task was done; qsize
 *     and unfinished end at 0.
 *
 * --stop-ms T also stops a random worker (SIGSTOP) for up to T ms before
 * each kill; TORTURE_STOPS_ONLY=1 in the environment stops without
 * killing.
 *
 * `make check` runs a short seeded version; the seed is printed so that a
 * failure can be replayed. Output is TAP.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

#define MAX_WORKERS 16

struct shared {
	_Atomic uint32_t next_id;
	_Atomic uint32_t bad;
	_Atomic uint32_t
		redelivered; /* seen again after its task_done returned */
	uint8_t attempted[];
	/* then acked[M], seen[M] */
};

static ipc_queue *q;
static bool queue_plain; /* a Queue: only producers are killed */
static struct shared *sh;
static uint8_t *acked, *seen, *predone, *postdone;
static uint32_t messages;
static unsigned stop_ms; /* --stop-ms: also stop a random worker this long */

static size_t make_msg(uint8_t *buf, uint32_t id)
{
	size_t len = 8 + (id * 2654435761u) % 500;

	memcpy(buf, &id, 4);
	for (size_t k = 4; k < len; k++)
		buf[k] = (uint8_t)(id * 31 + k * 7);
	return len;
}

static int producer(void *arg)
{
	uint8_t buf[512];
	(void)arg;

	for (;;) {
		uint32_t id = atomic_fetch_add(&sh->next_id, 1);
		if (id >= messages)
			return 0;
		sh->attempted[id] = 1;
		int rc = ipc_queue_put(q, buf, make_msg(buf, id), 30000);
		if (rc != 0)
			return rc == IPC_ECLOSED ? 0 : 1;
		acked[id] = 1;
	}
}

/* Some work per task (a few microseconds), so that kills also land while a
 * consumer holds a got but unfinished task. */
static void work(const uint8_t *buf, size_t len)
{
	volatile uint32_t h = 2166136261u;

	for (int round = 0; round < 8; round++)
		for (size_t k = 0; k < len; k++)
			h = (h ^ buf[k]) * 16777619u;
}

static int consumer(void *arg)
{
	uint8_t buf[512], ref[512];
	(void)arg;

	for (;;) {
		ssize_t n = ipc_queue_get(q, buf, sizeof(buf), 30000);
		uint32_t id;
		if (n == IPC_ECLOSED)
			return 0;
		if (n < 4) {
			printf("# consumer %d: get returned %zd (%s)\n",
			       (int)getpid(), n, ipc_err_name((int)n));
			fflush(stdout);
			return 2;
		}
		memcpy(&id, buf, 4);
		if (id >= messages || (size_t)n != make_msg(ref, id) ||
		    memcmp(buf, ref, (size_t)n) != 0)
			atomic_fetch_add(&sh->bad, 1);
		else {
			if (__atomic_load_n(&postdone[id], __ATOMIC_SEQ_CST)) {
				atomic_fetch_add(&sh->redelivered, 1);
				printf("# id %u redelivered after its "
				       "task_done returned\n",
				       id);
				fflush(stdout);
			}
			__atomic_add_fetch(&seen[id], 1, __ATOMIC_RELAXED);
		}
		work(buf, (size_t)n); /* a kill here leaves a task unfinished */
		if (id < messages)
			__atomic_store_n(&predone[id], 1, __ATOMIC_SEQ_CST);
		if (!queue_plain && ipc_queue_task_done(q) != 0)
			return 3;
		if (id < messages)
			__atomic_store_n(&postdone[id], 1, __ATOMIC_SEQ_CST);
	}
}

struct worker {
	pid_t pid;
	bool is_producer;
};

static int run(unsigned kills, unsigned nprod, unsigned ncons,
	       unsigned long seed, int tap_index, bool plain);

int main(int argc, char **argv)
{
	unsigned kills = 30, nprod = 0, ncons = 3;
	bool plain = false;
	unsigned long seed =
		(unsigned long)time(NULL) ^ (unsigned long)getpid();

	messages = 20000;
	for (int i = 1; i + 1 < argc; i += 2) {
		unsigned long v = strtoul(argv[i + 1], NULL, 10);
		if (strcmp(argv[i], "--kills") == 0)
			kills = (unsigned)v;
		else if (strcmp(argv[i], "--messages") == 0)
			messages = (uint32_t)v;
		else if (strcmp(argv[i], "--producers") == 0)
			nprod = (unsigned)v;
		else if (strcmp(argv[i], "--consumers") == 0)
			ncons = (unsigned)v;
		else if (strcmp(argv[i], "--seed") == 0)
			seed = v;
		else if (strcmp(argv[i], "--stop-ms") == 0)
			stop_ms = (unsigned)v;
		else if (strcmp(argv[i], "--plain") == 0)
			plain = v != 0;
	}
	if (ncons == 0 || nprod + ncons > MAX_WORKERS) {
		fprintf(stderr, "torture: 1..%d workers in all\n", MAX_WORKERS);
		return 2;
	}
	if (nprod != 0) {
		printf("1..1\n");
		return run(kills, nprod, ncons, seed, 1, plain);
	}
	/* By default: one producer (the fast path, its owner killed too),
	 * then three (the locked path, contended). */
	printf("1..3\n");
	int failed = run(kills, 1, ncons, seed, 1, false);
	failed |= run(kills, 3, ncons, seed + 1, 2, false);
	failed |= run(kills, 2, ncons, seed + 2, 3, true);
	return failed;
}

static int run(unsigned kills, unsigned nprod, unsigned ncons,
	       unsigned long seed, int tap_index, bool plain)
{
	unsigned consumer_kills = 0, dup = 0, lost = 0, invented = 0;
	struct worker w[MAX_WORKERS];
	ipc_queue_attr attr = { .capacity = 65536, .joinable = !plain };
	unsigned nw;
	int failed = 0;

	printf("# torture --kills %u --messages %u --producers %u "
	       "--consumers %u --seed %lu --plain %d\n",
	       kills, messages, nprod, ncons, seed, plain);
	queue_plain = plain;
	fflush(stdout);
	srandom((unsigned)seed);

	sh = mmap(NULL, sizeof(*sh) + 5 * (size_t)messages,
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	acked = sh->attempted + messages;
	seen = acked + messages;
	predone = seen + messages;
	postdone = predone + messages;
	if (ipc_queue_open(&q, NULL, 0, &attr) != 0)
		return 1;

	nw = nprod + ncons;
	for (unsigned i = 0; i < nw; i++) {
		w[i].is_producer = i < nprod;
		w[i].pid =
			t_spawn(w[i].is_producer ? producer : consumer, NULL);
	}
	for (unsigned k = 0; k < kills; k++) {
		/* A Queue may lose a message with a killed consumer (it is
		 * allowed to), which the accounting could not tell from a bug:
		 * there, only producers are killed, and nothing may be lost or
		 * seen twice. */
		unsigned i = (unsigned)random() % (plain ? nprod : nw);
		struct timespec ts = { 0, (random() % 3000) * 1000L };
		nanosleep(&ts, NULL); /* a random moment, not synchronisation */
		if (stop_ms) {
			unsigned s2 = (unsigned)random() % nw;
			struct timespec st = {
				0, (random() % (stop_ms * 1000)) * 1000L
			};
			kill(w[s2].pid, SIGSTOP);
			nanosleep(&st, NULL);
			kill(w[s2].pid, SIGCONT);
			nanosleep(&ts, NULL);
			if (getenv("TORTURE_STOPS_ONLY"))
				continue;
		}
		kill(w[i].pid, SIGKILL);
		int rc = t_reap(w[i].pid, 30000);
		if (rc != -SIGKILL && rc != 0) {
			printf("# worker exited with %d\n", rc);
			failed = 1;
		}
		if (!w[i].is_producer && rc == -SIGKILL)
			consumer_kills++;
		w[i].pid =
			t_spawn(w[i].is_producer ? producer : consumer, NULL);
	}
	for (unsigned i = 0; i < nprod; i++)
		if (t_reap(w[i].pid, 60000) != 0) {
			printf("# producer %u failed\n", i);
			failed = 1;
		}
	int jrc = 0;
	if (plain) {
		long end = t_now_ms() + 60000;
		while (ipc_queue_qsize(q) > 0 && t_now_ms() < end)
			usleep(1000); /* a Queue has no join: wait for it to
					 drain */
	} else {
		jrc = ipc_queue_join(q, 60000);
		if (jrc == 0) {
			unsigned early = 0;
			for (uint32_t id = 0; id < messages; id++)
				if (acked[id] &&
				    !__atomic_load_n(&predone[id],
						     __ATOMIC_SEQ_CST))
					early++;
			if (early) {
				printf("# join returned with %u acked tasks "
				       "never task_done'd\n",
				       early);
				failed = 1;
			}
		}
	}
	if (jrc != 0) {
		printf("# join: %s\n", ipc_err_name(jrc));
		failed = 1;
	}
	ipc_queue_shutdown(q);
	for (unsigned i = nprod; i < nw; i++)
		if (t_reap(w[i].pid, 60000) != 0) {
			printf("# consumer %u failed\n", i);
			failed = 1;
		}

	for (uint32_t id = 0; id < messages; id++) {
		if (acked[id] && !seen[id])
			lost++;
		if (seen[id] && !sh->attempted[id])
			invented++;
		if (seen[id] > 1)
			dup += seen[id] - 1u;
	}
	printf("# %u kills (%u consumers), lost %u, invented %u, torn %u, "
	       "seen twice %u, qsize %ld, unfinished %ld\n",
	       kills, consumer_kills, lost, invented,
	       (unsigned)atomic_load(&sh->bad), dup, ipc_queue_qsize(q),
	       plain ? 0 : ipc_queue_unfinished(q));
	if (atomic_load(&sh->redelivered)) {
		printf("# %u redelivered after task_done\n",
		       atomic_load(&sh->redelivered));
		failed = 1;
	}
	if (lost || invented || atomic_load(&sh->bad) || dup > consumer_kills ||
	    ipc_queue_qsize(q) != 0 || (!plain && ipc_queue_unfinished(q) != 0))
		failed = 1;
	printf("%s %d - torture, %s, %u producer(s): every acknowledged "
	       "message accounted for\n",
	       failed ? "not ok" : "ok", tap_index,
	       plain ? "Queue" : "JoinableQueue", nprod);
	ipc_queue_close(q);
	munmap(sh, sizeof(*sh) + 5 * (size_t)messages);
	return failed;
}
