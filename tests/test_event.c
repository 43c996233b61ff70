/* SPDX-License-Identifier: MIT */
/*
 * test_event.c — Event between processes: set/clear/wait, timeouts, many
 * waiters, a set that is cleared again at once, and a killed waiter.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/time.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static ipc_event *ev;
static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "event");
	cr_assert_eq(ipc_event_new(&ev), 0);
}

static void teardown(void)
{
	ipc_event_close(ev);
	ipc_unlink(name);
}

TestSuite(event, .init = setup, .fini = teardown, .timeout = 30);

Test(event, starts_clear_and_follows_set_and_clear)
{
	cr_assert_not(ipc_event_is_set(ev));
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert(ipc_event_is_set(ev));
	cr_assert_eq(ipc_event_set(ev), 0, "setting twice is fine");
	cr_assert_eq(ipc_event_wait(ev, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_event_wait(ev, IPC_FOREVER), 0, "set: no block");
	cr_assert_eq(ipc_event_clear(ev), 0);
	cr_assert_not(ipc_event_is_set(ev));
	cr_assert_eq(ipc_event_clear(ev), 0, "clearing twice is fine");
}

Test(event, wait_on_clear_event_nowait_is_eagain_and_timeout_is_etimedout)
{
	long t0;

	cr_assert_eq(ipc_event_wait(ev, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_event_wait(ev, 80), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 79);
}

static void set_from_handler(int sig)
{
	(void)sig;
	ipc_event_set(ev); /* documented as async-signal-safe */
}

Test(event, set_from_a_signal_handler_wakes_a_waiting_thread)
{
	struct sigaction sa = { .sa_handler = set_from_handler };
	struct itimerval it = { .it_value = { 0, 20000 } }; /* 20 ms, once */

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	/* The handler most likely interrupts this very wait, which must then
	 * see the flag (or the signal lands first and the flag is set). */
	cr_assert_eq(ipc_event_wait(ev, 10000), 0);
	cr_assert(ipc_event_is_set(ev));
	signal(SIGALRM, SIG_DFL);
}

Test(event, null_handles_are_einval)
{
	cr_assert_eq(ipc_event_set(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_event_clear(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_event_wait(NULL, 0), IPC_EINVAL);
	cr_assert_not(ipc_event_is_set(NULL));
}

static int wait_long(void *arg)
{
	(void)arg;
	int rc = ipc_event_wait(ev, 20000);
	return rc == 0 ? 0 : (rc == IPC_ETIMEDOUT ? 2 : 3);
}

Test(event, set_wakes_every_waiting_process)
{
	enum { N = 5 };
	pid_t kids[N];

	for (int i = 0; i < N; i++)
		kids[i] = t_spawn(wait_long, NULL);
	for (int i = 0; i < N; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(ipc_event_set(ev), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0, "waiter %d", i);
}

Test(event, waiters_see_a_set_that_was_cleared_again_at_once)
{
	enum { N = 3 };
	pid_t kids[N];

	for (int i = 0; i < N; i++)
		kids[i] = t_spawn(wait_long, NULL);
	for (int i = 0; i < N; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_event_clear(ev), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0, "waiter %d", i);
	cr_assert_not(ipc_event_is_set(ev));
}

Test(event, killed_waiter_does_not_stop_the_others_waking)
{
	pid_t kids[3];

	for (int i = 0; i < 3; i++)
		kids[i] = t_spawn(wait_long, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert(t_blocked_in_futex(kids[i], 10000));
	cr_assert_eq(t_kill(kids[1]), -SIGKILL);
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(t_reap(kids[0], 10000), 0);
	cr_assert_eq(t_reap(kids[2], 10000), 0);
	cr_assert_eq(ipc_event_clear(ev), 0);
	kids[0] = t_spawn(wait_long, NULL);
	cr_assert(t_blocked_in_futex(kids[0], 10000));
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(t_reap(kids[0], 10000), 0, "and later rounds too");
}

static int open_and_set(void *arg)
{
	ipc_event *mine;
	(void)arg;
	if (ipc_event_open(&mine, name, 0) != 0)
		return 1;
	ipc_event_set(mine);
	ipc_event_close(mine);
	return 0;
}

Test(event, named_event_set_by_a_process_that_opened_it)
{
	ipc_event *named;

	cr_assert_eq(ipc_event_open(&named, name, IPC_CREATE), 0);
	cr_assert_eq(t_reap(t_spawn(open_and_set, NULL), 10000), 0);
	cr_assert_eq(ipc_event_wait(named, 5000), 0);
	ipc_event_close(named);
}
