/* SPDX-License-Identifier: MIT */
/*
 * wait.c — ipc_wait: block until any of several queues, connections,
 * events, processes or file descriptors is ready (Python's
 * multiprocessing.connection.wait).
 *
 * What each kind sleeps on:
 *   queue    its backend's watch (queue.h): a futex word, or an fd to poll;
 *   conn     its receive queue's watch, with a recheck period so that a
 *            peer's death, which changes nothing the watch sees, is found;
 *   event    its futex word (set changes it and wakes, in one syscall);
 *   process  its pidfd, readable once the process has ended;
 *   fd       the caller's descriptor, with the caller's poll events.
 *
 * A round arms every item (each watch counts itself as a watcher before it
 * tests readiness, so a change after the test wakes the sleeper), polls
 * every fd once without waiting, and returns if anything is ready or the
 * deadline has passed; otherwise it sleeps, disarms and goes round again.
 * The sleep is bounded by the deadline and by the shortest recheck period
 * an item asks for; it never spins.
 *
 * Sleeping on words and fds at once. Words alone: one futex_waitv (Linux
 * 5.16) over all of them. Fds alone: one poll. Both: a helper thread polls
 * the fds (and an eventfd of ours) while this thread sleeps in futex_waitv
 * over the words and one private word of ours; the helper, when poll
 * returns, stores 1 in that word and wakes it. Whichever side wakes first,
 * this thread then writes the eventfd, joins the helper (it is never left
 * behind) and closes the eventfd (never leaked). The helper blocks every
 * signal, so signals still reach the caller's threads as before.
 *
 * Words are compared with the value armed: futex_waitv returns at once if
 * one has already moved. An Event is ready if it is set now, or if its word
 * has moved since the first round (it was set, and cleared again, while we
 * slept: ipc_event_wait returns 0 in that case too).
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libipc/core/core.h"
#include "libipc/pipe/pipe.h"
#include "libipc/queue/queue.h"
#include "libipc/sync/sync.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* One item's state across a round. */
struct slot {
	struct ipc__watch w; /* queue and conn: the backend's watch */
	bool armed;	     /* w needs an unwatch */
	_Atomic uint32_t *word;
	uint32_t val;
	bool word_private;  /* word is in this process's private memory */
	uint32_t first_val; /* event: the word at the first round */
	int fd;		    /* >= 0: polled */
	short events;
	short revents;
	bool ready;
};

struct waiter {
	ipc_wait_item *items;
	size_t n;
	struct slot slots[IPC_WAIT_MAX];
	struct pollfd pfds[IPC_WAIT_MAX + 1]; /* + the helper's eventfd */
	int pfd_slot[IPC_WAIT_MAX];	      /* pfds[k] belongs to slot */
	nfds_t npfds;
	struct futex_waitv fw[IPC_WAIT_MAX + 1]; /* + the helper's word */
	unsigned nwords;
	int recheck_ms; /* shortest period asked for, 0: none */
};

static int check_item(const ipc_wait_item *it)
{
	switch (it->kind) {
	case IPC_WAIT_QUEUE:
		return it->queue != NULL ? 0 : -EINVAL;
	case IPC_WAIT_CONN:
		return it->conn != NULL ? 0 : -EINVAL;
	case IPC_WAIT_EVENT:
		return it->event != NULL ? 0 : -EINVAL;
	case IPC_WAIT_PROCESS:
		return it->process != NULL ? 0 : -EINVAL;
	case IPC_WAIT_FD:
		return it->fd >= 0 && it->events != 0 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static void take_watch(struct slot *s)
{
	s->armed = true;
	if (s->w.fd >= 0) {
		s->fd = s->w.fd;
		s->events = s->w.events;
	} else {
		s->word = s->w.word;
		s->val = s->w.val;
		s->word_private = !s->w.shared;
	}
}

/* Arm one item: 1 ready, 0 armed, negative IPC_E*. */
static int arm(struct slot *s, const ipc_wait_item *it, bool first)
{
	int rc;

	s->armed = false;
	s->word = NULL;
	s->word_private = false;
	s->fd = -1;
	s->revents = 0;
	switch (it->kind) {
	case IPC_WAIT_QUEUE:
		rc = ipc__queue_watch(it->queue, &s->w);
		if (rc >= 0)
			take_watch(s);
		return rc;
	case IPC_WAIT_CONN:
		rc = ipc__conn_watch(it->conn, &s->w);
		if (rc >= 0)
			take_watch(s);
		return rc;
	case IPC_WAIT_EVENT:
		rc = ipc__event_watch(it->event, &s->word, &s->val);
		if (first)
			s->first_val = s->val;
		else if (rc == 0 && s->val != s->first_val)
			rc = 1; /* set and cleared again while we slept */
		return rc;
	case IPC_WAIT_PROCESS:
		s->fd = ipc_process_sentinel(it->process);
		s->events = POLLIN;
		return s->fd >= 0 ? 0 : -EINVAL;
	default: /* IPC_WAIT_FD */
		s->fd = it->fd;
		s->events = it->events;
		return 0;
	}
}

static void disarm(struct waiter *wt)
{
	for (size_t i = 0; i < wt->n; i++) {
		struct slot *s = &wt->slots[i];
		if (!s->armed)
			continue;
		if (wt->items[i].kind == IPC_WAIT_QUEUE)
			ipc__queue_unwatch(wt->items[i].queue, &s->w);
		else
			ipc__conn_unwatch(wt->items[i].conn, &s->w);
		s->armed = false;
	}
}

/* Arm every item and collect what to sleep on: the number ready, or a
 * negative IPC_E* (everything disarmed then). */
static int arm_all(struct waiter *wt, bool first)
{
	int ready = 0;

	wt->npfds = 0;
	wt->nwords = 0;
	wt->recheck_ms = 0;
	for (size_t i = 0; i < wt->n; i++) {
		struct slot *s = &wt->slots[i];
		int rc = arm(s, &wt->items[i], first);
		if (rc < 0) {
			disarm(wt);
			return rc;
		}
		s->ready = rc == 1;
		ready += s->ready;
		if (s->armed && s->w.recheck_ms > 0 &&
		    (wt->recheck_ms == 0 || s->w.recheck_ms < wt->recheck_ms))
			wt->recheck_ms = s->w.recheck_ms;
		if (s->fd >= 0) {
			wt->pfds[wt->npfds] =
				(struct pollfd){ s->fd, s->events, 0 };
			wt->pfd_slot[wt->npfds++] = (int)i;
		} else if (s->word != NULL) {
			wt->fw[wt->nwords++] = (struct futex_waitv){
				.val = s->val,
				.uaddr = (uintptr_t)s->word,
				.flags = FUTEX_32 |
					 (s->word_private ? FUTEX_PRIVATE_FLAG
							  : 0),
			};
		}
	}
	return ready;
}

/* Poll the fds once without waiting; mark the ready ones. */
static int poll_now(struct waiter *wt)
{
	int ready = 0;

	if (wt->npfds == 0)
		return 0;
	if (poll(wt->pfds, wt->npfds, 0) <= 0)
		return 0;
	for (nfds_t k = 0; k < wt->npfds; k++) {
		struct slot *s = &wt->slots[wt->pfd_slot[k]];
		if (wt->pfds[k].revents == 0)
			continue;
		s->revents = wt->pfds[k].revents;
		if (!s->ready)
			ready++;
		s->ready = true;
	}
	return ready;
}

/* futex_waitv until a word moves, a wake, or `at` (NULL: no limit). */
static int sleep_words(struct waiter *wt, unsigned n, const struct timespec *at)
{
	long rc = syscall(SYS_futex_waitv, wt->fw, n, 0, at, CLOCK_MONOTONIC);

	if (rc >= 0)
		return 0;
	if (errno == ENOSYS)
		return -ENOTSUP;
	if (errno == EAGAIN || errno == ETIMEDOUT || errno == EINTR)
		return 0; /* a word moved, the slice ended, a signal: look again
			   */
	/* Anything else would fail again at once: return it rather than
	 * loop without sleeping until the deadline. */
	return ipc__sys_error(errno);
}

struct helper {
	struct pollfd *pfds;
	nfds_t n; /* the last one is the eventfd */
	_Atomic uint32_t word;
	int err; /* poll's errno, or 0 */
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	while (poll(h->pfds, h->n, -1) < 0) {
		if (errno != EINTR) {
			h->err = errno; /* read after pthread_join */
			break;
		}
	}
	atomic_store(&h->word, 1);
	ipc__futex_wake(&h->word, 1);
	return NULL;
}

/* Words and fds at once: see the top of the file. */
static int sleep_both(struct waiter *wt, const struct timespec *at)
{
	struct helper h = { .pfds = wt->pfds, .n = wt->npfds + 1 };
	sigset_t all, old;
	pthread_t th;
	uint64_t one = 1;
	int efd, rc;

	efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		return ipc__sys_error(errno);
	atomic_init(&h.word, 0);
	wt->pfds[wt->npfds] = (struct pollfd){ efd, POLLIN, 0 };
	wt->fw[wt->nwords] = (struct futex_waitv){ .val = 0,
						   .uaddr = (uintptr_t)&h.word,
						   .flags = FUTEX_32 };
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, NULL, helper_main, &h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(efd);
		return rc == EAGAIN ? -ENOMEM : ipc__sys_error(rc);
	}
	rc = sleep_words(wt, wt->nwords + 1, at);
	while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(th, NULL);
	close(efd);
	if (rc == 0 && h.err != 0)
		return ipc__sys_error(h.err);
	return rc;
}

/* Sleep until something may have changed, or dl (capped by the recheck
 * period) passes. */
static int sleep_once(struct waiter *wt, const struct ipc__deadline *dl)
{
	struct ipc__deadline slice = *dl;
	const struct timespec *at;

	if (wt->recheck_ms > 0)
		ipc__deadline_capped(&slice, dl, wt->recheck_ms);
	at = slice.kind == IPC__DL_AT ? &slice.at : NULL;
	if (wt->nwords == 0) {
		if (poll(wt->pfds, wt->npfds, ipc__deadline_ms(&slice)) < 0 &&
		    errno != EINTR)
			return ipc__sys_error(errno);
		return 0;
	}
	if (wt->npfds == 0)
		return sleep_words(wt, wt->nwords, at);
	return sleep_both(wt, at);
}

static int finish(struct waiter *wt, int ready)
{
	for (size_t i = 0; i < wt->n; i++) {
		struct slot *s = &wt->slots[i];
		ipc_wait_item *it = &wt->items[i];
		it->ready = ready > 0 && s->ready;
		it->revents = !it->ready		? 0
			      : it->kind == IPC_WAIT_FD ? s->revents
							: POLLIN;
	}
	disarm(wt);
	return ready;
}

int ipc_wait(ipc_wait_item *items, size_t n, int timeout_ms)
{
	struct ipc__deadline dl;
	struct waiter *wt;
	int rc;

	if (items == NULL || n == 0 || n > IPC_WAIT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		items[i].ready = false;
		items[i].revents = 0;
		rc = check_item(&items[i]);
		if (rc != 0)
			return rc;
	}
	rc = ipc__deadline_init(&dl, timeout_ms);
	if (rc != 0)
		return rc;
	wt = calloc(1, sizeof(*wt));
	if (wt == NULL)
		return -ENOMEM;
	wt->items = items;
	wt->n = n;
	for (bool first = true;; first = false) {
		rc = arm_all(wt, first);
		if (rc < 0)
			break;
		rc += poll_now(wt);
		if (rc > 0) {
			rc = finish(wt, rc);
			break;
		}
		if (ipc__deadline_passed(&dl)) {
			finish(wt, 0);
			rc = ipc__deadline_error(&dl);
			break;
		}
		rc = sleep_once(wt, &dl);
		disarm(wt);
		if (rc < 0)
			break;
	}
	free(wt);
	return rc;
}
