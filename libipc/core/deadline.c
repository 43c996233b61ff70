/* SPDX-License-Identifier: MIT */
/*
 * deadline.c — relative timeouts turned into absolute CLOCK_MONOTONIC
 * deadlines.
 *
 * Every blocking call converts its timeout_ms once, on entry (or, for the
 * queue's put and get, at the first look: IPC__DL_LATER, see core.h, so
 * that a call that never waits never reads the clock). Loops that wake up
 * and sleep again (spurious futex wake-ups, lost races, the periodic
 * re-check) then all aim at the same point in time, so a timeout never
 * stretches however often a waiter wakes. The monotonic clock does not jump
 * when the wall clock is set.
 */
#include <errno.h>

#include "libipc/core/core.h"

static void timespec_add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int timespec_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

const struct ipc__deadline ipc__forever = { .kind = IPC__DL_FOREVER };

int ipc__deadline_start(struct ipc__deadline *dl, int timeout_ms)
{
	if (timeout_ms <= 0)
		return timeout_ms < IPC_FOREVER
			       ? -EINVAL
			       : ipc__deadline_init(dl, timeout_ms);
	dl->kind = IPC__DL_AT;
	clock_gettime(CLOCK_MONOTONIC, &dl->at);
	timespec_add_ms(&dl->at, timeout_ms);
	return 0;
}

void ipc__deadline_start_later(const struct ipc__deadline *dl)
{
	/* Not a const object (see core.h): the cast only undoes the const of
	 * the pointer every reader is given. */
	struct ipc__deadline *w = (struct ipc__deadline *)(uintptr_t)dl;

	ipc__deadline_start(w, w->ms > 0 ? w->ms : 1);
}

bool ipc__deadline_passed(const struct ipc__deadline *dl)
{
	struct timespec now;

	ipc__deadline_anchor(dl);
	switch (dl->kind) {
	case IPC__DL_NOWAIT:
		return true;
	case IPC__DL_FOREVER:
		return false;
	case IPC__DL_AT:
	case IPC__DL_LATER: /* anchored above: not reached */
		break;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	return timespec_cmp(&now, &dl->at) >= 0;
}

int ipc__deadline_error(const struct ipc__deadline *dl)
{
	return dl->kind == IPC__DL_NOWAIT ? -EAGAIN : -ETIMEDOUT;
}

void ipc__deadline_capped(struct ipc__deadline *out,
			  const struct ipc__deadline *dl, int ms)
{
	ipc__deadline_anchor(dl);
	out->kind = IPC__DL_AT;
	clock_gettime(CLOCK_MONOTONIC, &out->at);
	timespec_add_ms(&out->at, ms);
	if (dl->kind == IPC__DL_NOWAIT)
		out->at = (struct timespec){ 0, 0 };
	else if (dl->kind == IPC__DL_AT && timespec_cmp(&dl->at, &out->at) < 0)
		out->at = dl->at;
}

bool ipc__deadline_nap(const struct ipc__deadline *dl, long ns)
{
	struct timespec at;

	if (dl->kind == IPC__DL_NOWAIT)
		return true;
	ipc__deadline_anchor(dl);
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_nsec += ns;
	while (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	if (dl->kind == IPC__DL_AT && timespec_cmp(&dl->at, &at) < 0)
		at = dl->at;
	/* Absolute, so that a signal handler run meanwhile (EINTR) never
	 * stretches it; any other error ends the nap early. */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
	       EINTR)
		;
	return ipc__deadline_passed(dl);
}

int ipc__deadline_ms(const struct ipc__deadline *dl)
{
	struct timespec now;
	long long ms;

	if (dl->kind == IPC__DL_FOREVER)
		return -1;
	if (dl->kind == IPC__DL_NOWAIT)
		return 0;
	ipc__deadline_anchor(dl);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(dl->at.tv_sec - now.tv_sec) * 1000 +
	     (dl->at.tv_nsec - now.tv_nsec + 999999) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}
