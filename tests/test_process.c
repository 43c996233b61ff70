/* SPDX-License-Identifier: MIT */
/*
 * test_process.c — Process: names, exit codes, join with a timeout,
 * terminate and kill, daemon semantics at exit and on the parent's death,
 * active children, bad input, and no zombie left behind.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

struct shared {
	char name[64], child_name[64];
	volatile int ready, go, done, exiting;
	pid_t daemon_pid, worker_pid;
};
static struct shared *sh;

static void setup(void)
{
	sh = t_shared(sizeof(*sh));
}

static void teardown(void)
{
	/* Whatever a test started is reaped by the time it ends. */
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
}

TestSuite(process, .init = setup, .fini = teardown, .timeout = 30);

static int return_arg(void *arg)
{
	return (int)(long)arg;
}

static int wait_forever(void *arg)
{
	(void)arg;
	__atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return 0;
}

Test(process, exit_codes_are_return_values_or_minus_the_signal)
{
	ipc_process *p;
	int code = 42;

	cr_assert_eq(ipc_process_start(&p, return_arg, (void *)0, NULL), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 0);
	ipc_process_free(p);

	cr_assert_eq(ipc_process_start(&p, return_arg, (void *)3, NULL), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 3);
	ipc_process_free(p);

	cr_assert_eq(ipc_process_start(&p, wait_forever, NULL, NULL), 0);
	cr_assert(t_wait_count(&sh->ready, 1, 10000));
	cr_assert_eq(ipc_process_terminate(p), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, -SIGTERM);
	cr_assert_eq(ipc_process_terminate(p), 0, "signalling the dead is ok");
	ipc_process_free(p);

	cr_assert_eq(ipc_process_start(&p, wait_forever, NULL, NULL), 0);
	cr_assert_eq(ipc_process_kill(p), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, -SIGKILL);
	ipc_process_free(p);
}

Test(process, join_times_out_while_it_runs)
{
	ipc_process *p;
	int code;
	long t0;

	cr_assert_eq(ipc_process_start(&p, wait_forever, NULL, NULL), 0);
	cr_assert_eq(ipc_process_join(p, IPC_NOWAIT), IPC_EAGAIN);
	t0 = t_now_ms();
	cr_assert_eq(ipc_process_join(p, 80), IPC_ETIMEDOUT);
	cr_assert_geq(t_now_ms() - t0, 79);
	cr_assert(ipc_process_is_alive(p));
	cr_assert_eq(ipc_process_exitcode(p, &code), IPC_EAGAIN);
	cr_assert_gt(ipc_process_pid(p), 0);
	cr_assert_eq(ipc_process_kill(p), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_not(ipc_process_is_alive(p));
	ipc_process_free(p);
}

static int record_names(void *arg)
{
	ipc_process *kid;
	(void)arg;
	snprintf(sh->name, sizeof(sh->name), "%s", ipc_current_process_name());
	if (ipc_process_start(&kid, return_arg, (void *)0, NULL) != 0)
		return 1;
	snprintf(sh->child_name, sizeof(sh->child_name), "%s",
		 ipc_process_name(kid));
	ipc_process_join(kid, 10000);
	ipc_process_free(kid);
	return 0;
}

Test(process, names_default_to_process_n_and_are_seen_by_the_child)
{
	ipc_process *a, *b;
	ipc_process_attr boss = { .name = "Boss" };

	cr_assert_str_eq(ipc_current_process_name(), "MainProcess");
	cr_assert_eq(ipc_process_start(&a, record_names, NULL, NULL), 0);
	cr_assert_str_eq(ipc_process_name(a), "Process-1");
	cr_assert_eq(ipc_process_join(a, 10000), 0);
	cr_assert_str_eq(sh->name, "Process-1", "the child knows its name");
	cr_assert_str_eq(sh->child_name, "Process-1:1", "its child's name");
	cr_assert_eq(ipc_process_start(&b, record_names, NULL, &boss), 0);
	cr_assert_str_eq(ipc_process_name(b), "Boss");
	cr_assert_eq(ipc_process_join(b, 10000), 0);
	cr_assert_str_eq(sh->name, "Boss");
	ipc_process_free(a);
	ipc_process_free(b);
}

Test(process, name_is_visible_to_ps)
{
	ipc_process *p;
	ipc_process_attr attr = { .name = "Boss-service" };
	char path[64], comm[64] = "";

	cr_assert_eq(ipc_process_start(&p, wait_forever, NULL, &attr), 0);
	cr_assert(t_wait_count(&sh->ready, 1, 10000));
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)ipc_process_pid(p));
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	cr_assert_str_eq(comm, "Boss-service\n");
	ipc_process_kill(p);
	ipc_process_join(p, 10000);
	ipc_process_free(p);
}

Test(process, bad_input_is_einval)
{
	ipc_process *p = (ipc_process *)1;
	char long_name[300];
	int code;

	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ipc_process_attr attr = { .name = long_name };
	cr_assert_eq(ipc_process_start(NULL, return_arg, NULL, NULL),
		     IPC_EINVAL);
	cr_assert_eq(ipc_process_start(&p, NULL, NULL, NULL), IPC_EINVAL);
	cr_assert_null(p);
	cr_assert_eq(ipc_process_start(&p, return_arg, NULL, &attr),
		     IPC_EINVAL);
	cr_assert_eq(ipc_process_join(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_process_exitcode(NULL, &code), IPC_EINVAL);
	cr_assert_eq(ipc_process_terminate(NULL), IPC_EINVAL);
	cr_assert_not(ipc_process_is_alive(NULL));
	cr_assert_eq(ipc_process_pid(NULL), -1);
	cr_assert_str_eq(ipc_process_name(NULL), "");
	ipc_process_free(NULL);
}

static int daemon_tries_to_fork(void *arg)
{
	ipc_process *kid;
	(void)arg;
	int rc = ipc_process_start(&kid, return_arg, NULL, NULL);
	return rc == IPC_EPERM ? 0 : 1;
}

Test(process, a_daemon_cannot_start_children)
{
	ipc_process *p;
	ipc_process_attr attr = { .daemon = true };
	int code = -1;

	cr_assert_eq(ipc_process_start(&p, daemon_tries_to_fork, NULL, &attr),
		     0);
	cr_assert(ipc_process_daemon(p));
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 0, "its start returned IPC_EPERM");
	ipc_process_free(p);
}

Test(process, active_children_lists_the_live_ones)
{
	ipc_process *p[3], *out[8];

	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipc_process_start(&p[i], wait_forever, NULL, NULL),
			     0);
	cr_assert_eq(ipc_active_children(out, 8), 3);
	for (int i = 0; i < 3; i++) {
		bool found = false;
		for (int k = 0; k < 3; k++)
			found |= out[k] == p[i];
		cr_assert(found, "child %d listed", i);
	}
	cr_assert_eq(ipc_active_children(NULL, 0), 3, "counts without out");
	ipc_process_kill(p[0]);
	cr_assert_eq(ipc_process_join(p[0], 10000), 0);
	cr_assert_eq(ipc_active_children(out, 8), 2);
	pid_t detached = ipc_process_pid(p[1]);
	ipc_process_free(p[1]); /* detached while running */
	cr_assert_eq(ipc_active_children(out, 1), 1, "cap respected");
	cr_assert_eq(out[0], p[2]);
	ipc_process_kill(p[2]);
	ipc_process_join(p[2], 10000);
	cr_assert_eq(ipc_active_children(out, 8), 0);
	/* p[1] still runs, detached (and would hold up this process's exit,
	 * being no daemon): kill it by its pid; the registry reaps it. */
	cr_assert_eq(kill(detached, SIGKILL), 0);
	long end = t_now_ms() + 10000;
	while (kill(detached, 0) == 0 && t_now_ms() < end) {
		ipc_active_children(NULL, 0); /* sweeps detached handles */
		usleep(1000);
	}
	cr_assert_eq(kill(detached, 0), -1, "reaped by the registry");
	ipc_process_free(p[0]);
	ipc_process_free(p[2]);
	cr_assert_eq(t_zombie_children(), 0);
}

/* The "main process" of the exit test: starts a daemon and a non-daemon
 * child, then exit()s. Its atexit handling must terminate the daemon and
 * wait for the other. */
static int nondaemon_child(void *arg)
{
	(void)arg;
	if (!t_wait_count(&sh->go, 1, 20000))
		return 1;
	__atomic_store_n(&sh->done, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int main_that_exits(void *arg)
{
	ipc_process *d, *w;
	ipc_process_attr dattr = { .daemon = true };
	(void)arg;
	if (ipc_process_start(&d, wait_forever, NULL, &dattr) != 0 ||
	    ipc_process_start(&w, nondaemon_child, NULL, NULL) != 0)
		exit(2);
	sh->daemon_pid = ipc_process_pid(d);
	sh->worker_pid = ipc_process_pid(w);
	__atomic_store_n(&sh->exiting, 1, __ATOMIC_SEQ_CST);
	exit(0); /* atexit: terminate d, join w */
}

Test(process, at_exit_daemons_are_terminated_and_others_joined)
{
	pid_t m = t_spawn(main_that_exits, NULL);

	cr_assert(t_wait_count(&sh->exiting, 1, 10000));
	/* m is waiting for its non-daemon child in poll(), not gone. */
	cr_assert(t_blocked_in_syscall(m, SYS_poll, 10000));
	cr_assert_not(t_has_exited(m));
	cr_assert_eq(sh->done, 0);
	sh->go = 1;
	cr_assert_eq(t_reap(m, 10000), 0);
	cr_assert_eq(sh->done, 1, "joined the non-daemon child first");
	cr_assert_eq(kill(sh->daemon_pid, 0), -1, "the daemon is gone");
}

static int main_with_daemon(void *arg)
{
	ipc_process *d;
	ipc_process_attr dattr = { .daemon = true };
	(void)arg;
	if (ipc_process_start(&d, wait_forever, NULL, &dattr) != 0)
		return 2;
	sh->daemon_pid = ipc_process_pid(d);
	__atomic_store_n(&sh->exiting, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return 0;
}

Test(process, daemon_dies_when_its_parent_is_sigkilled)
{
	pid_t m = t_spawn(main_with_daemon, NULL);
	long end;

	cr_assert(t_wait_count(&sh->exiting, 1, 10000));
	cr_assert(t_wait_count(&sh->ready, 1, 10000), "the daemon runs");
	cr_assert_eq(t_kill(m), -SIGKILL);
	end = t_now_ms() + 10000;
	while (kill(sh->daemon_pid, 0) == 0 && !t_has_exited(sh->daemon_pid) &&
	       t_now_ms() < end)
		usleep(1000);
	cr_assert(kill(sh->daemon_pid, 0) != 0 || t_has_exited(sh->daemon_pid),
		  "PR_SET_PDEATHSIG took the daemon down");
}

static int fork_by_hand(void *arg)
{
	(void)arg;
	pid_t own = fork();
	if (own == 0)
		_exit(9);
	ipc_process *p;
	if (ipc_process_start(&p, return_arg, (void *)4, NULL) != 0)
		return 1;
	ipc_process_join(p, 10000);
	int code = -1;
	ipc_process_exitcode(p, &code);
	ipc_process_free(p);
	int status;
	/* Our own fork()ed child is still ours to reap. */
	if (waitpid(own, &status, 0) != own || WEXITSTATUS(status) != 9)
		return 2;
	return code == 4 ? 0 : 3;
}

Test(process, children_forked_by_hand_are_not_reaped_by_libipc)
{
	cr_assert_eq(t_reap(t_spawn(fork_by_hand, NULL), 10000), 0);
}
