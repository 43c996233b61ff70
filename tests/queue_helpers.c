/* SPDX-License-Identifier: MIT */
/*
 * queue_helpers.c — see queue_helpers.h.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "tests/queue_helpers.h"

ipc_queue *tq;
char tq_name[128];

void tq_setup(void)
{
	tq = NULL;
	tq_name[0] = '\0';
}

void tq_teardown(void)
{
	ipc_queue_close(tq);
	tq = NULL;
	if (tq_name[0] != '\0')
		ipc_unlink(tq_name);
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

bool tq_joinable(enum tq_kind k)
{
	return k == TQ_SHM_JOINABLE || k == TQ_MQUEUE_JOINABLE;
}

void tq_open(enum tq_kind k, size_t maxsize, size_t max_msg, const char *tag)
{
	ipc_queue_attr attr = { .joinable = tq_joinable(k),
				.maxsize = maxsize,
				.max_msg_size = max_msg };

	if (k == TQ_MQUEUE || k == TQ_MQUEUE_JOINABLE) {
		attr.backend = IPC_BACKEND_MQUEUE;
		attr.maxsize = maxsize ? maxsize : 8;
		attr.max_msg_size = max_msg ? max_msg : 128;
		t_name(tq_name, sizeof(tq_name), tag);
		cr_assert_eq(ipc_queue_open(&tq, tq_name, IPC_CREATE, &attr),
			     0);
		return;
	}
	cr_assert_eq(ipc_queue_open(&tq, NULL, 0, &attr), 0);
}

size_t tq_msg(char *buf, int n)
{
	size_t len = (size_t)snprintf(buf, 32, "m%d:", n % 100000);

	for (int k = 0; k < 20 + n % 40; k++)
		buf[len++] = (char)('a' + (n + k) % 26);
	return len;
}

void tq_expect(int want)
{
	char buf[128], ref[128];
	ssize_t n = ipc_queue_get(tq, buf, sizeof(buf), 1000);
	size_t len = tq_msg(ref, want);

	cr_assert_eq(n, (ssize_t)len, "message %d: length %zd", want, n);
	cr_assert_eq(memcmp(buf, ref, len), 0, "message %d intact", want);
}

void tq_expect_closed(void)
{
	char buf[128];

	cr_assert_eq(ipc_queue_get(tq, buf, sizeof(buf), 1000), IPC_ECLOSED);
}

void tq_die_at(const char *point, const char *skip, int (*fn)(void *),
	       void *arg)
{
	cr_assert_eq(t_reap(t_spawn_at_point(point, skip, fn, arg), 10000),
		     -SIGKILL, "child did not die at %s", point);
}

/* pid's state letter in /proc (0 if it cannot be read). */
static char proc_state(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f != NULL) {
		if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
			state = 0;
		fclose(f);
	}
	return state;
}

bool tq_asleep(pid_t pid)
{
	/* The system calls a queue sleeps in: a futex wait (shm), or the
	 * mqueue backend's timed receive or send. Other sleeps on the way
	 * there (a revoking producer's naps, its membarrier) are not the
	 * sleep a test waits for. The call is read before and after the
	 * state, so that a process passing through is not taken for one
	 * that sleeps. */
	static const long nrs[] = { SYS_futex, SYS_mq_timedreceive,
				    SYS_mq_timedsend };
	long until = t_now_ms() + 10000;

	do {
		for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++)
			if (t_blocked_in_syscall(pid, nrs[i], 0) &&
			    proc_state(pid) == 'S' &&
			    t_blocked_in_syscall(pid, nrs[i], 0))
				return true;
		usleep(1000);
	} while (t_now_ms() < until);
	return false;
}
