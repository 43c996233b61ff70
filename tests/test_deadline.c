/* SPDX-License-Identifier: MIT */
/*
 * test_deadline.c — the deadline helpers on their own (deadline.c is
 * compiled into this test): the nap a JoinableQueue claim takes after a
 * lost race sleeps its time, never past its deadline, and not at all
 * under IPC_NOWAIT.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "libipc/core/core.h"

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

Test(deadline, a_nap_sleeps_its_time_and_never_passes_forever)
{
	long long t0 = now_ns();

	cr_assert_not(ipc__deadline_nap(&ipc__forever, 20000));
	cr_assert_geq(now_ns() - t0, 20000, "slept %lld ns", now_ns() - t0);
}

/* 900 ms asked with 5 ms left of dl: the nap ends at dl, said passed. */
static void nap_capped_at_5_ms(struct ipc__deadline *dl)
{
	long long t0 = now_ns();

	cr_assert(ipc__deadline_nap(dl, 900000000L));
	cr_assert_geq(now_ns() - t0, 5000000LL);
	cr_assert_lt(now_ns() - t0, 800000000LL, "slept %lld ns past 5 ms",
		     now_ns() - t0);
}

Test(deadline, a_nap_stops_at_an_earlier_deadline)
{
	struct ipc__deadline dl;

	cr_assert_eq(ipc__deadline_start(&dl, 5), 0);
	nap_capped_at_5_ms(&dl);
}

Test(deadline, a_nap_starts_a_later_deadline_and_reports_it_running)
{
	struct ipc__deadline dl;

	cr_assert_eq(ipc__deadline_later(&dl, 10000), 0);
	cr_assert_not(ipc__deadline_nap(&dl, 20000));
	cr_assert_eq(dl.kind, IPC__DL_AT, "the first look started it");
	cr_assert_not(ipc__deadline_passed(&dl));
}

Test(deadline, a_nap_under_nowait_returns_at_once_as_passed)
{
	struct ipc__deadline dl;
	long long t0 = now_ns();

	cr_assert_eq(ipc__deadline_init(&dl, IPC_NOWAIT), 0);
	cr_assert(ipc__deadline_nap(&dl, 900000000L));
	cr_assert_lt(now_ns() - t0, 800000000LL, "it slept");
}

Test(deadline, a_nap_caps_itself_at_a_later_deadline_it_starts)
{
	struct ipc__deadline dl;

	/* Not started yet: the nap's look starts it, and then caps the nap
	 * at it. */
	cr_assert_eq(ipc__deadline_later(&dl, 5), 0);
	nap_capped_at_5_ms(&dl);
}
