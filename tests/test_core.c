/* SPDX-License-Identifier: MIT */
/*
 * test_core.c — errors, names, and the segment format: what every object
 * relies on when it is created or opened by name.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static char name[128], path[256];

static void setup(void)
{
	t_name(name, sizeof(name), "core");
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
}

static void teardown(void)
{
	ipc_unlink(name);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 30);

Test(core, error_names_and_messages_come_from_one_table)
{
	cr_assert_str_eq(ipc_err_name(IPC_ETIMEDOUT), "IPC_ETIMEDOUT");
	cr_assert_str_eq(ipc_strerror(IPC_ETIMEDOUT), "timed out");
	cr_assert_str_eq(ipc_err_name(IPC_EBROKEN), "IPC_EBROKEN");
	cr_assert_str_eq(ipc_strerror(IPC_EOWNERDEAD), "previous owner died");
	cr_assert_str_eq(ipc_err_name(0), "IPC_OK");
	cr_assert_str_eq(ipc_strerror(0), "success");
	cr_assert_str_eq(ipc_err_name(-424242), "IPC_EUNKNOWN");
	cr_assert_str_eq(ipc_strerror(12345), "unknown error");
	cr_assert_eq(IPC_EAGAIN, -EAGAIN);
	cr_assert_eq(IPC_ETIMEDOUT, -ETIMEDOUT);
	cr_assert_eq(IPC_EOWNERDEAD, -EOWNERDEAD);
	cr_assert_lt(IPC_ECLOSED, -4095, "library codes sit far from errno");
}

Test(core, ipc_ok_counts_ownerdead_as_success_and_nothing_else_negative)
{
	cr_assert(IPC_OK(0));
	cr_assert(IPC_OK(4096), "a length or count");
	cr_assert(IPC_OK(IPC_EOWNERDEAD), "acquired; the holder died");
#define T_NOT_OK(name, value, msg) \
	cr_assert(!IPC_OK(name) || (name) == IPC_EOWNERDEAD, #name);
	IPC_ERRORS(T_NOT_OK)
#undef T_NOT_OK
	cr_assert(!IPC_OK(-EMFILE), "a passed-through errno");
}

Test(core, bad_names_are_einval)
{
	char longname[300];

	memset(longname, 'a', 201);
	longname[201] = '\0';
	cr_assert_eq(ipc_unlink(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_unlink(""), IPC_EINVAL);
	cr_assert_eq(ipc_unlink("/"), IPC_EINVAL);
	cr_assert_eq(ipc_unlink("a/b"), IPC_EINVAL);
	cr_assert_eq(ipc_unlink("two words"), IPC_EINVAL);
	cr_assert_eq(ipc_unlink("."), IPC_EINVAL);
	cr_assert_eq(ipc_unlink(".."), IPC_EINVAL);
	cr_assert_eq(ipc_unlink("caf\xc3\xa9"), IPC_EINVAL);
	cr_assert_eq(ipc_unlink(longname), IPC_EINVAL);
	longname[200] = '\0';
	cr_assert_eq(ipc_unlink(longname), IPC_ENOENT, "200 chars is legal");
}

Test(core, open_without_create_is_enoent)
{
	ipc_event *ev = (ipc_event *)0x1;

	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_ENOENT);
	cr_assert_null(ev, "out-pointer cleared on failure");
	cr_assert_eq(ipc_unlink(name), IPC_ENOENT);
}

Test(core, bad_flags_are_einval)
{
	ipc_event *ev;

	cr_assert_eq(ipc_event_open(&ev, name, IPC_EXCL), IPC_EINVAL);
	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE | 0x40000),
		     IPC_EINVAL);
	cr_assert_eq(ipc_event_open(NULL, name, IPC_CREATE), IPC_EINVAL);
	cr_assert_eq(ipc_event_open(&ev, NULL, IPC_CREATE), IPC_EINVAL);
	cr_assert_eq(ipc_event_new(NULL), IPC_EINVAL);
}

Test(core, excl_on_existing_is_eexist_and_leading_slash_is_the_same_name)
{
	ipc_event *a, *b;
	char slashed[140];

	snprintf(slashed, sizeof(slashed), "/%s", name);
	cr_assert_eq(ipc_event_open(&a, name, IPC_CREATE | IPC_EXCL), 0);
	cr_assert_eq(ipc_event_open(&b, slashed, IPC_CREATE | IPC_EXCL),
		     IPC_EEXIST);
	cr_assert_eq(ipc_event_open(&b, slashed, 0), 0);
	cr_assert_eq(ipc_event_set(a), 0);
	cr_assert(ipc_event_is_set(b), "both handles see one object");
	ipc_event_close(a);
	ipc_event_close(b);
}

Test(core, default_mode_is_0600_and_mode_bits_are_applied)
{
	ipc_lock *lk;
	struct stat st;

	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	ipc_lock_close(lk);
	ipc_unlink(name);
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE | 0640), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);
	ipc_lock_close(lk);
}

Test(core, wrong_kind_is_eproto)
{
	ipc_event *ev;
	ipc_lock *lk;
	ipc_rlock *rl;
	ipc_sem *s;

	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), 0);
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), IPC_EPROTO);
	cr_assert_eq(ipc_rlock_open(&rl, name, 0), IPC_EPROTO);
	cr_assert_eq(ipc_sem_open(&s, name, 0, 1, 0), IPC_EPROTO);
	ipc_event_close(ev);
}

static void write_file(const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(core, truncated_and_garbage_segments_are_eproto)
{
	ipc_event *ev;
	unsigned char junk[4096];

	write_file("", 0);
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO, "empty file");
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	write_file(junk, sizeof(junk));
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO, "garbage");
	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), IPC_EPROTO,
		     "create does not clobber a foreign file");

	/* A real event cut short: the header is intact but its size lies. */
	ipc_unlink(name);
	cr_assert_eq(ipc_event_open(&ev, name, IPC_CREATE), 0);
	ipc_event_close(ev);
	cr_assert_eq(truncate(path, 64), 0);
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO, "truncated");
	cr_assert_eq(truncate(path, 10), 0);
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO, "half header");
}

static void patch_u16(off_t off, uint16_t v)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, &v, sizeof(v), off), (ssize_t)sizeof(v));
	close(fd);
}

static uint16_t read_u16(off_t off)
{
	uint16_t v = 0;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &v, sizeof(v), off), (ssize_t)sizeof(v));
	close(fd);
	return v;
}

Test(core, other_abi_version_or_magic_is_eproto)
{
	ipc_sem *s;
	uint16_t abi;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 0), 0);
	ipc_sem_close(s);
	abi = read_u16(4); /* h_abi */
	patch_u16(4, 99);
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), IPC_EPROTO);
	patch_u16(4, abi);
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), 0, "restored: opens");
	ipc_sem_close(s);
	patch_u16(0, 0xdead); /* h_magic */
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), IPC_EPROTO);
}

/* ABI 1 laid out cond_shm with c_owner where c_lock_kind now is, and
 * barrier_shm with b_count where b_timeout_ms now is: a Condition or
 * Barrier made by an ABI 1 build, opened by this one, would be misread
 * (a waiting count taken for a default timeout), so it is refused. */
Test(core, segments_of_the_abi_1_layout_are_eproto)
{
	ipc_cond *c;
	ipc_barrier *b;

	cr_assert_eq(ipc_cond_open(&c, name, IPC_CREATE), 0);
	ipc_cond_close(c);
	patch_u16(4, 1);
	cr_assert_eq(ipc_cond_open(&c, name, 0), IPC_EPROTO, "Condition");
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(ipc_barrier_open(&b, name, IPC_CREATE, 2), 0);
	ipc_barrier_close(b);
	patch_u16(4, 1);
	cr_assert_eq(ipc_barrier_open(&b, name, 0, 0), IPC_EPROTO, "Barrier");
}

Test(core, symlinked_name_is_refused)
{
	ipc_event *ev;

	cr_assert_eq(symlink("/etc/passwd", path), 0);
	cr_assert_eq(ipc_event_open(&ev, name, 0), IPC_EPROTO);
}

Test(core, unlinked_object_lives_on_for_its_users)
{
	ipc_event *old, *fresh;

	cr_assert_eq(ipc_event_open(&old, name, IPC_CREATE), 0);
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(ipc_event_set(old), 0);
	cr_assert(ipc_event_is_set(old));
	cr_assert_eq(ipc_event_open(&fresh, name, IPC_CREATE), 0);
	cr_assert_not(ipc_event_is_set(fresh), "a new object, not the old");
	ipc_event_close(old);
	ipc_event_close(fresh);
}

static int racing_creator(void *arg)
{
	ipc_sem *s;
	int rc;

	(void)arg;
	rc = ipc_sem_open(&s, name, IPC_CREATE, 0, 0);
	if (rc != 0)
		return 10 - rc;
	rc = ipc_sem_release(s);
	ipc_sem_close(s);
	return rc == 0 ? 0 : 1;
}

Test(core, racing_creators_all_share_one_object)
{
	enum { N = 8 };
	pid_t kids[N];
	ipc_sem *s;

	for (int i = 0; i < N; i++)
		kids[i] = t_spawn(racing_creator, NULL);
	for (int i = 0; i < N; i++)
		cr_assert_eq(t_reap(kids[i], 10000), 0, "creator %d", i);
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), 0);
	cr_assert_eq(ipc_sem_value(s), N, "every release hit the one sem");
	ipc_sem_close(s);
}

Test(core, bad_timeouts_are_einval)
{
	ipc_event *ev;

	cr_assert_eq(ipc_event_new(&ev), 0);
	cr_assert_eq(ipc_event_wait(ev, -2), IPC_EINVAL);
	ipc_event_close(ev);
}

Test(core, closing_null_handles_is_harmless)
{
	ipc_lock_close(NULL);
	ipc_rlock_close(NULL);
	ipc_event_close(NULL);
	ipc_cond_close(NULL);
	ipc_sem_close(NULL);
	ipc_barrier_close(NULL);
}

/* ---- A full or small /dev/shm, and file descriptors running out --------
 *
 * These run in a child that has its own mount namespace with a 1 MiB tmpfs
 * over /dev/shm, so the machine's /dev/shm is never filled. Making the
 * namespace needs CAP_SYS_ADMIN; without it the tests are skipped. */
#define SKIPPED 77

static int in_small_shm(int (*fn)(void *arg), void *arg)
{
	if (unshare(CLONE_NEWNS) != 0)
		return SKIPPED;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m,mode=1777") != 0)
		return SKIPPED;
	return fn(arg);
}

struct small_shm_job {
	int (*fn)(void *arg);
};

static int small_shm_child(void *arg)
{
	return in_small_shm(((struct small_shm_job *)arg)->fn, NULL);
}

static void run_in_small_shm(int (*fn)(void *arg))
{
	struct small_shm_job job = { fn };
	int rc = t_reap(t_spawn(small_shm_child, &job), 60000);

	if (rc == SKIPPED)
		cr_skip_test(
			"no private mount namespace (needs CAP_SYS_ADMIN)");
	cr_assert_eq(rc, 0, "child: %d (negative: killed by that signal)", rc);
}

/* Fill the tmpfs with a plain file until it refuses more. */
static int fill_shm(void)
{
	static char block[64 * 1024];
	int fd = open("/dev/shm/filler", O_CREAT | O_WRONLY, 0600);

	if (fd < 0)
		return -1;
	memset(block, 0xa5, sizeof(block));
	while (write(fd, block, sizeof(block)) > 0)
		;
	/* Whatever is left is less than a block: fill it byte by byte. */
	while (write(fd, block, 1) > 0)
		;
	close(fd);
	return 0;
}

static int create_on_full_shm(void *arg)
{
	ipc_lock *lk;
	ipc_queue *q;
	ipc_queue_attr qa = { .capacity = 64 * 1024 };

	(void)arg;
	T_CHECK(fill_shm() == 0, 1);
	T_CHECK(ipc_lock_open(&lk, "full-lock", IPC_CREATE) == IPC_ENOMEM, 2);
	T_CHECK(ipc_queue_open(&q, "full-queue", IPC_CREATE, &qa) == IPC_ENOMEM,
		3);
	T_CHECK(ipc_lock_open(&lk, "full-lock", 0) == IPC_ENOENT, 4);
	/* Room again: creation works. */
	T_CHECK(unlink("/dev/shm/filler") == 0, 5);
	T_CHECK(ipc_lock_open(&lk, "full-lock", IPC_CREATE) == 0, 6);
	T_CHECK(ipc_lock_acquire(lk, 1000) == 0, 7);
	T_CHECK(ipc_lock_release(lk) == 0, 8);
	ipc_lock_close(lk);
	return 0;
}

Test(core, creating_on_a_full_shm_is_enomem_not_sigbus)
{
	run_in_small_shm(create_on_full_shm);
}

/* A queue four times the size of the tmpfs: before pages were reserved at
 * creation, the open succeeded and a later put died by SIGBUS. */
static int queue_larger_than_shm(void *arg)
{
	ipc_queue *q;
	ipc_queue_attr qa = { .capacity = 4 * 1024 * 1024 };
	static char msg[4096];
	int rc;

	(void)arg;
	rc = ipc_queue_open(&q, "big-queue", IPC_CREATE, &qa);
	if (rc == 0) {
		/* Fill it: this is where SIGBUS struck. */
		while (ipc_queue_put(q, msg, sizeof(msg), IPC_NOWAIT) == 0)
			;
		ipc_queue_close(q);
		return 1;
	}
	T_CHECK(rc == IPC_ENOMEM, 2);
	T_CHECK(access("/dev/shm/libipc.big-queue", F_OK) != 0, 3);
	return 0;
}

Test(core, object_larger_than_free_shm_is_enomem_not_sigbus)
{
	run_in_small_shm(queue_larger_than_shm);
}

static int open_without_descriptors(void *arg)
{
	const char *nm = arg;
	struct rlimit rl = { 16, 16 };
	ipc_lock *lk;
	int rc;

	T_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, 1);
	while (open("/dev/null", O_RDONLY) >= 0)
		;
	T_CHECK(errno == EMFILE, 2);
	rc = ipc_lock_open(&lk, nm, IPC_CREATE);
	T_CHECK(strcmp(ipc_err_name(rc), "IPC_EUNKNOWN") != 0, 3);
	T_CHECK(rc == IPC_EMFILE, 4);
	T_CHECK(ipc_lock_open(&lk, nm, 0) == IPC_EMFILE, 5);
	/* Anonymous objects need no descriptor. */
	T_CHECK(ipc_lock_new(&lk) == 0, 6);
	ipc_lock_close(lk);
	return 0;
}

Test(core, out_of_file_descriptors_is_emfile)
{
	ipc_lock *lk;

	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	ipc_lock_close(lk);
	cr_assert_eq(t_reap(t_spawn(open_without_descriptors, name), 10000), 0);
	cr_assert_str_eq(ipc_err_name(IPC_EMFILE), "IPC_EMFILE");
	cr_assert_str_eq(ipc_err_name(IPC_EIO), "IPC_EIO");
}

/* ---- Name squatting ---------------------------------------------------- */

#define OTHER_UID 65534 /* nobody */

Test(core, object_owned_by_another_user_is_eacces_unless_any_owner)
{
	ipc_lock *lk;
	ipc_sem *s;
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("needs root to give a file to another user");
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE | 0666), 0);
	ipc_lock_close(lk);
	/* Another user squats the name: the file is theirs. */
	cr_assert_eq(chown(path, OTHER_UID, OTHER_UID), 0);
	cr_assert_eq(ipc_lock_open(&lk, name, 0), IPC_EACCES);
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), IPC_EACCES);
	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 0), IPC_EACCES,
		     "refused before the kind is even looked at");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_uid, OTHER_UID, "the squatter's file is untouched");
	/* The program says it trusts any owner: the object opens and works. */
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_ANY_OWNER), 0);
	cr_assert_eq(ipc_lock_acquire(lk, 1000), 0);
	cr_assert_eq(ipc_lock_release(lk), 0);
	ipc_lock_close(lk);
	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE | IPC_ANY_OWNER), 0);
	ipc_lock_close(lk);
	/* A root-owned object is accepted by default. */
	cr_assert_eq(chown(path, 0, 0), 0);
	cr_assert_eq(ipc_lock_open(&lk, name, 0), 0);
	ipc_lock_close(lk);
}
