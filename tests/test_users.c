/* SPDX-License-Identifier: MIT */
/*
 * test_users.c — who has a named object open (ipc_stat's users count,
 * kept by the kernel), removing the unused ones (ipc_unlink_unused, also
 * against a process that opens the name at that moment), and reading
 * corrupt, truncated and foreign files without harm.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static char name[128];
static char path[160];

static void setup(void)
{
	t_name(name, sizeof(name), "users");
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
}

static void teardown(void)
{
	ipc_unlink(name);
	cr_assert_eq(t_leaked_segments(), 0, "no shm segment left");
	cr_assert_eq(t_zombie_children(), 0, "no zombie left behind");
}

TestSuite(users, .init = setup, .fini = teardown, .timeout = 60);

static int users_of(const char *n)
{
	ipc_object_info info;
	int rc = ipc_stat(n, &info);

	return rc == 0 ? info.users : rc;
}

static volatile int *ready;

static int child_hold_event(void *arg)
{
	ipc_event *ev = NULL;

	(void)arg;
	T_CHECK(ipc_event_open(&ev, name, 0) == 0, 10);
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	pause();
	return 11;
}

Test(users, count_follows_opens_closes_and_sigkill)
{
	ipc_object_info info;
	ipc_event *ev = NULL, *again = NULL;
	pid_t a, b;

	ready = t_shared(sizeof(int));
	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE | 0640), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.kind, IPC_KIND_EVENT);
	cr_assert_str_eq(ipc_kind_name(info.kind), "event");
	cr_assert_null(info.problem);
	cr_assert_eq(info.mode, 0640);
	cr_assert_eq(info.uid, geteuid());
	cr_assert_eq(info.creator_pid, getpid());
	cr_assert_gt(info.created_ns, 0);
	cr_assert_eq(info.users, 1);
	cr_assert_eq(info.user_pids[0], getpid());
	cr_assert_eq(info.depth, -1);
	cr_assert_eq(info.is_set, 0);
	cr_assert_eq(ipc_event_open(&again, name, 0), 0);
	cr_assert_eq(users_of(name), 1, "a process counts once");
	ipc_event_close(again);
	cr_assert_eq(users_of(name), 1);
	a = t_spawn(child_hold_event, NULL);
	b = t_spawn(child_hold_event, NULL);
	cr_assert(t_wait_count(ready, 2, 10000));
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.users, 3);
	bool seen_a = false;
	for (int i = 0; i < 3; i++)
		seen_a = seen_a || info.user_pids[i] == a;
	cr_assert(seen_a, "the holders' pids are listed");
	cr_assert_eq(t_kill(a), -SIGKILL);
	cr_assert_eq(users_of(name), 2, "the kernel dropped the dead one");
	cr_assert_eq(ipc_unlink_unused(name), IPC_EBUSY);
	cr_assert_eq(t_kill(b), -SIGKILL);
	ipc_event_close(ev);
	cr_assert_eq(users_of(name), 0);
	cr_assert_eq(ipc_unlink_unused(name), 0);
	cr_assert_eq(ipc_stat(name, &info), IPC_ENOENT);
	cr_assert_eq(info.users, -1);
	cr_assert_eq(ipc_unlink_unused(name), IPC_ENOENT);
}

static ipc_lock *inherited;

static int child_keep_inherited(void *arg)
{
	(void)arg;
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	pause();
	ipc_lock_close(inherited);
	return 0;
}

Test(users, forked_child_shares_its_parents_handle)
{
	pid_t pid;

	ready = t_shared(sizeof(int));
	cr_assert_eq(ipc_lock_open(&inherited, name, IPC_CREATE), 0);
	pid = t_spawn(child_keep_inherited, NULL);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert_eq(users_of(name), 1, "one handle, shared by the fork");
	ipc_lock_close(inherited);
	cr_assert_eq(users_of(name), 1, "the child still has it");
	ipc_object_info info;
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.user_pids[0], getpid(), "under its parent's pid");
	cr_assert_eq(t_kill(pid), -SIGKILL);
	cr_assert_eq(users_of(name), 0);
}

Test(users, mqueue_backend_reports_depth)
{
	ipc_queue_attr attr = { .backend = IPC_BACKEND_MQUEUE,
				.maxsize = 5,
				.max_msg_size = 32 };
	ipc_object_info info;
	ipc_queue *q = NULL;

	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE, &attr), 0);
	cr_assert_eq(ipc_queue_put(q, "a", 1, 0), 0);
	cr_assert_eq(ipc_queue_put(q, "b", 1, 0), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.kind, IPC_KIND_MQUEUE);
	cr_assert_eq(info.users, 1);
	cr_assert_eq(info.depth, 2);
	cr_assert_eq(info.maxsize, 5);
	cr_assert_eq(info.max_msg_size, 32);
	cr_assert_eq(info.shut_down, 0);
	cr_assert_eq(info.unfinished, -1, "not joinable");
	ipc_queue_close(q);
	cr_assert_eq(ipc_unlink_unused(name), 0);
	cr_assert_eq(ipc_queue_open(&q, name, 0, &attr), IPC_ENOENT,
		     "the mq went with its companion");
}

static void write_file(const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(users, foreign_truncated_and_corrupt_files_are_reported)
{
	ipc_object_info info;
	ipc_event *ev = NULL;
	unsigned char hdr[64];
	int fd;

	write_file("hello, not libipc", 17);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO);
	cr_assert_str_eq(info.problem, "foreign");
	cr_assert_eq(info.size, 17);
	cr_assert_eq(info.users, -1);
	cr_assert_eq(ipc_unlink_unused(name), IPC_EPROTO, "left alone");
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO);
	unlink(path);

	write_file("", 0);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO);
	cr_assert_str_eq(info.problem, "foreign");
	unlink(path);

	/* A real header cut short, then one whose size lies. */
	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), 0);
	ipc_event_close(ev);
	fd = open(path, O_RDWR);
	cr_assert_eq(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	cr_assert_eq(ftruncate(fd, 20), 0);
	close(fd);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO);
	cr_assert_str_eq(info.problem, "truncated");
	cr_assert_eq(info.users, 0);
	fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO, "h_size > file");
	cr_assert_str_eq(info.problem, "truncated");
	hdr[4] = 99; /* ABI version */
	fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO);
	cr_assert_str_eq(info.problem, "other ABI version");
	cr_assert_eq(ipc_unlink_unused(name), IPC_EPROTO, "not our ABI");
	cr_assert_eq(truncate(path, 20), 0);
	cr_assert_eq(ipc_unlink_unused(name), 0, "ours, damaged, unused");

	cr_assert_eq(symlink("/etc/passwd", path), 0);
	cr_assert_eq(ipc_stat(name, &info), IPC_EPROTO, "links not followed");
	unlink(path);
	memset(&info, 0, sizeof(info));
	cr_assert_eq(ipc_stat("bad/name", &info), IPC_EINVAL);
	cr_assert_eq(info.users, -1, "filled even on error");
	cr_assert_eq(ipc_stat(name, NULL), IPC_EINVAL);
	cr_assert_str_eq(ipc_kind_name(0), "unknown");
}

/* gc against an opener: the opener creates-or-opens the name, marks the
 * object, and opens it a second time by name; the second handle must be
 * the same object (the mark is there) however the remover interleaves. */
struct race {
	int stop;
	int removed;
};

static int child_remove_loop(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST))
		if (ipc_unlink_unused(name) == 0)
			__atomic_add_fetch(&r->removed, 1, __ATOMIC_SEQ_CST);
	return 0;
}

Test(users, unlink_unused_never_removes_an_object_being_opened)
{
	struct race *r = t_shared(sizeof(*r));
	int bad = 0, rounds = 2000;
	pid_t pid = t_spawn(child_remove_loop, r);

	for (int i = 0; i < rounds; i++) {
		ipc_event *a = NULL, *b = NULL;
		int removed = __atomic_load_n(&r->removed, __ATOMIC_SEQ_CST);
		cr_assert_eq(ipc_event_open(&a, name, IPC_CREATE), 0);
		ipc_event_set(a);
		if (ipc_event_open(&b, name, 0) != 0 || !ipc_event_is_set(b))
			bad++;
		ipc_event_clear(a);
		ipc_event_close(b);
		ipc_event_close(a);
		/* Now and then let the remover win a round, so that both
		 * orders are exercised whatever the machine's speed. */
		if (i % 20 == 0)
			cr_assert(
				t_wait_count(&r->removed, removed + 1, 10000));
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(t_reap(pid, 10000), 0);
	cr_assert_eq(bad, 0, "an object in use was removed");
}

/* ------------------------------------------------------------------------
 * Live state per kind
 */

static int child_hold_lock(void *arg)
{
	ipc_lock *lk = NULL;

	(void)arg;
	T_CHECK(ipc_lock_open(&lk, name, 0) == 0, 10);
	T_CHECK(ipc_lock_acquire(lk, 10000) == 0, 11);
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	pause();
	return 12;
}

Test(users, lock_holder_and_its_death_are_seen)
{
	ipc_object_info info;
	ipc_lock *lk = NULL;
	pid_t pid;

	ready = t_shared(sizeof(int));
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.holder, 0, "free");
	cr_assert_eq(info.holder_died, 0);
	pid = t_spawn(child_hold_lock, NULL);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.holder, pid);
	cr_assert_eq(t_kill(pid), -SIGKILL);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.holder, 0);
	cr_assert_eq(info.holder_died, 1, "the kernel marked it");
	cr_assert_eq(ipc_lock_acquire(lk, 1000), IPC_EOWNERDEAD);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.holder, getpid());
	cr_assert_eq(info.holder_died, 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	ipc_lock_close(lk);
}

static int child_sem_acquire(void *arg)
{
	ipc_sem *s = NULL;

	(void)arg;
	T_CHECK(ipc_sem_open(&s, name, 0, 0, 0) == 0, 10);
	T_CHECK(ipc_sem_acquire(s, 20000) == 0, 11);
	ipc_sem_close(s);
	return 0;
}

Test(users, event_sem_and_barrier_state)
{
	ipc_object_info info;
	ipc_event *ev = NULL;
	ipc_sem *s = NULL;
	ipc_barrier *b = NULL;
	char n2[140], n3[140];
	pid_t pid;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 0, 3), 0);
	pid = t_spawn(child_sem_acquire, NULL);
	cr_assert(t_blocked_in_futex(pid, 10000));
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.value, 0);
	cr_assert_eq(info.max, 3);
	cr_assert_eq(info.waiters, 1);
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(t_reap(pid, 10000), 0);
	cr_assert_eq(ipc_sem_release(s), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.value, 1);
	ipc_sem_close(s);

	snprintf(n2, sizeof(n2), "%s-ev", name);
	cr_assert_eq(ipc_event_open(&ev, n2, IPC_CREATE), 0);
	cr_assert_eq(ipc_event_set(ev), 0);
	cr_assert_eq(ipc_stat(n2, &info), 0);
	cr_assert_eq(info.is_set, 1);
	cr_assert_eq(ipc_event_clear(ev), 0);
	cr_assert_eq(ipc_stat(n2, &info), 0);
	cr_assert_eq(info.is_set, 0);
	ipc_event_close(ev);
	ipc_unlink(n2);

	snprintf(n3, sizeof(n3), "%s-bar", name);
	cr_assert_eq(ipc_barrier_open(&b, n3, IPC_CREATE, 3), 0);
	cr_assert_eq(ipc_barrier_wait(b, IPC_NOWAIT), IPC_EAGAIN);
	cr_assert_eq(ipc_stat(n3, &info), 0);
	cr_assert_eq(info.parties, 3);
	cr_assert_eq(info.broken, 0);
	cr_assert_eq(ipc_barrier_abort(b), 0);
	cr_assert_eq(ipc_stat(n3, &info), 0);
	cr_assert_eq(info.broken, 1);
	cr_assert_eq(info.n_waiting, 0);
	ipc_barrier_close(b);
	ipc_unlink(n3);
}

static int child_take_and_hang(void *arg)
{
	ipc_queue *q = NULL;
	const ipc_queue_attr *attr = arg;
	char buf[64];

	T_CHECK(ipc_queue_open(&q, name, 0, attr) == 0, 10);
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 10000) >= 0, 11);
	T_CHECK(ipc_queue_get(q, buf, sizeof(buf), 10000) >= 0, 12);
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	pause();
	return 13;
}

/* Both backends: depth, unfinished, and each consumer's tasks, alive and
 * then dead. */
static void check_joinable_state(ipc_queue_attr *attr)
{
	ipc_object_info info;
	ipc_queue *q = NULL;
	char buf[64];
	pid_t pid;

	ready = t_shared(sizeof(int));
	cr_assert_eq(ipc_queue_open(&q, name, IPC_CREATE, attr), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipc_queue_put(q, "task", 4, 0), 0);
	pid = t_spawn(child_take_and_hang, attr);
	cr_assert(t_wait_count(ready, 1, 10000));
	cr_assert_eq(ipc_queue_get(q, buf, sizeof(buf), 0), 4);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.depth, 1);
	cr_assert_eq(info.unfinished, 4);
	cr_assert_eq(info.n_consumers, 2);
	cr_assert_eq(info.consumers[0].pid, pid);
	cr_assert(info.consumers[0].alive);
	cr_assert_eq(info.consumers[0].tasks, 2);
	cr_assert_eq(info.consumers[1].pid, getpid());
	cr_assert_eq(info.consumers[1].tasks, 1);
	cr_assert_eq(t_kill(pid), -SIGKILL);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.n_consumers, 2, "not reaped yet");
	cr_assert_not(info.consumers[0].alive, "seen dead at once");
	ipc_queue_close(q);
}

Test(users, shm_queue_state_and_consumers)
{
	ipc_queue_attr attr = { .joinable = true, .capacity = 4096 };
	ipc_object_info info;
	ipc_queue *q = NULL;

	check_joinable_state(&attr);
	cr_assert_eq(ipc_queue_open(&q, name, 0, &attr), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.capacity, 4096);
	cr_assert_eq(info.bytes_used, 4 * 16, "records not freed yet");
	cr_assert_eq(ipc_queue_shutdown(q), 0);
	cr_assert_eq(ipc_stat(name, &info), 0);
	cr_assert_eq(info.shut_down, 1);
	ipc_queue_close(q);
}

Test(users, mqueue_joinable_state_and_consumers)
{
	ipc_queue_attr attr = { .joinable = true,
				.backend = IPC_BACKEND_MQUEUE,
				.maxsize = 8,
				.max_msg_size = 64 };

	check_joinable_state(&attr);
}

/* A remover that stops while it holds the gate (here: this test holding
 * the gate byte, 2^62 - 1, as ipc_unlink_unused does) must not hang
 * openers: they give up with IPC_EBUSY. */
Test(users, a_stopped_remover_does_not_hang_openers)
{
	struct flock gate = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	ipc_event *ev = NULL, *again = NULL;
	long t0;
	int fd;

	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), 0);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	gate.l_start = ((off_t)1 << 62) - 1;
	gate.l_len = 1;
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &gate), 0);
	t0 = t_now_ms();
	cr_assert_eq(ipc_event_open(&again, name, 0), IPC_EBUSY);
	cr_assert_geq(t_now_ms() - t0, 1000, "it waited first");
	close(fd); /* the remover goes away */
	cr_assert_eq(ipc_event_open(&again, name, 0), 0);
	ipc_event_close(again);
	ipc_event_close(ev);
}
