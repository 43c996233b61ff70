/* SPDX-License-Identifier: MIT */
/*
 * test_info.c — version, CPU count and parent pid.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h" /* PACKAGE_VERSION, from configure.ac */
#include "libipc/ipc.h"
#include "tests/helpers.h"

TestSuite(info, .timeout = 30);

Test(info, version_macros_match_the_library_and_the_package)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d.%d.%d", IPC_VERSION_MAJOR,
		 IPC_VERSION_MINOR, IPC_VERSION_PATCH);
	cr_assert_str_eq(buf, IPC_VERSION_STRING);
	cr_assert_str_eq(IPC_VERSION_STRING, PACKAGE_VERSION,
			 "ipc.h and configure.ac agree");
	cr_assert_str_eq(ipc_version(), IPC_VERSION_STRING);
	cr_assert_eq(ipc_version_number(), IPC_VERSION_NUMBER);
	cr_assert_eq(IPC_VERSION_NUMBER, IPC_VERSION_MAJOR * 10000 +
						 IPC_VERSION_MINOR * 100 +
						 IPC_VERSION_PATCH);
}

Test(info, cpu_count_is_the_online_cpus)
{
	cr_assert_geq(ipc_cpu_count(), 1);
	cr_assert_eq(ipc_cpu_count(), (int)sysconf(_SC_NPROCESSORS_ONLN));
}

static pid_t *seen;

static int report_parent(void *arg)
{
	(void)arg;
	seen[0] = ipc_parent_pid();
	return 0;
}

static int report_grandchild(void *arg)
{
	ipc_process *p;
	(void)arg;
	seen[1] = getpid();
	if (ipc_process_start(&p, report_parent, NULL, NULL) != 0 ||
	    ipc_process_join(p, 10000) != 0)
		return 1;
	ipc_process_free(p);
	return 0;
}

Test(info, parent_pid_is_the_forking_process)
{
	ipc_process *p;
	int code = -1;

	seen = t_shared(2 * sizeof(pid_t));
	cr_assert_eq(ipc_process_start(&p, report_parent, NULL, NULL), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	ipc_process_free(p);
	cr_assert_eq(seen[0], getpid());

	cr_assert_eq(t_reap(t_spawn(report_parent, NULL), 10000), 0);
	cr_assert_eq(seen[0], getpid(), "a plain fork() counts too");

	cr_assert_eq(ipc_process_start(&p, report_grandchild, NULL, NULL), 0);
	cr_assert_eq(ipc_process_join(p, 10000), 0);
	cr_assert_eq(ipc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 0);
	ipc_process_free(p);
	cr_assert_eq(seen[0], seen[1], "a grandchild's parent is the child");
}
