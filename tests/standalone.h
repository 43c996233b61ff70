/* SPDX-License-Identifier: MIT */
/*
 * standalone.h — a stand-in for the part of Criterion a test file uses,
 * for builds Criterion cannot run in: its sandbox's fixed-address arena
 * fails under ThreadSanitizer (Criterion issue 274). A file written for
 * Criterion includes this instead when T_STANDALONE is defined and gets
 * the same tests as a plain program: each test runs in a forked child
 * (fresh statics, as under Criterion) with an alarm for its timeout, and
 * the results are printed as TAP. Only the assertion forms the threaded
 * tests use are provided; the message arguments are accepted and ignored
 * in favour of the failed expression and its line.
 */
#ifndef LIBIPC_TESTS_STANDALONE_H
#define LIBIPC_TESTS_STANDALONE_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct t_suite {
	void (*init)(void);
	void (*fini)(void);
	unsigned timeout;
};

struct t_test {
	const char *name;
	void (*fn)(void);
};

#define T_MAX_TESTS 64
static struct t_test t_tests[T_MAX_TESTS];
static int t_ntests;

#define TestSuite(suite, ...) \
	static const struct t_suite t_suite_opts = { __VA_ARGS__ }

#define Test(suite, name)                                           \
	static void suite##_##name(void);                           \
	__attribute__((constructor)) static void t_reg_##name(void) \
	{                                                           \
		if (t_ntests < T_MAX_TESTS)                         \
			t_tests[t_ntests++] =                       \
				(struct t_test){ #suite "::" #name, \
						 suite##_##name };  \
	}                                                           \
	static void suite##_##name(void)

/* The message arguments are dropped: a dummy last argument keeps every
 * "..." non-empty, as ISO C wants. */
#define T_FIRST_(a, ...) a
#define T_EQ_(a, b, ...) ((a) == (b))
#define T_GEQ_(a, b, ...) ((a) >= (b))
#define T_ASSERT_(ok)                                                          \
	do {                                                                   \
		if (!(ok)) {                                                   \
			fprintf(stderr, "%s:%d: assertion failed\n", __FILE__, \
				__LINE__);                                     \
			_exit(1);                                              \
		}                                                              \
	} while (0)
#define cr_assert(...) T_ASSERT_(T_FIRST_(__VA_ARGS__, 0))
#define cr_expect(...) T_ASSERT_(T_FIRST_(__VA_ARGS__, 0))
#define cr_assert_eq(...) T_ASSERT_(T_EQ_(__VA_ARGS__, 0))
#define cr_expect_eq(...) T_ASSERT_(T_EQ_(__VA_ARGS__, 0))
#define cr_assert_geq(...) T_ASSERT_(T_GEQ_(__VA_ARGS__, 0))

/* Defined by the test file's TestSuite. */
static const struct t_suite t_suite_opts;

static int t_run_one(const struct t_test *t)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		alarm(t_suite_opts.timeout ? t_suite_opts.timeout : 60);
		if (t_suite_opts.init != NULL)
			t_suite_opts.init();
		t->fn();
		if (t_suite_opts.fini != NULL)
			t_suite_opts.fini();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int failed = 0;

	printf("1..%d\n", t_ntests);
	for (int i = 0; i < t_ntests; i++) {
		const struct t_test *t = &t_tests[i];
		if (argc > 1 && strstr(t->name, argv[1]) == NULL) {
			printf("ok %d - %s # SKIP not selected\n", i + 1,
			       t->name);
			continue;
		}
		fflush(stdout);
		if (t_run_one(t) == 0) {
			printf("ok %d - %s\n", i + 1, t->name);
		} else {
			printf("not ok %d - %s\n", i + 1, t->name);
			failed++;
		}
	}
	return failed ? 1 : 0;
}

#endif
