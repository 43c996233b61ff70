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

Test(core, other_abi_version_or_magic_is_eproto)
{
	ipc_sem *s;

	cr_assert_eq(ipc_sem_open(&s, name, IPC_CREATE, 1, 0), 0);
	ipc_sem_close(s);
	patch_u16(4, 99); /* h_abi */
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), IPC_EPROTO);
	patch_u16(4, 1);
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), 0, "restored: opens");
	ipc_sem_close(s);
	patch_u16(0, 0xdead); /* h_magic */
	cr_assert_eq(ipc_sem_open(&s, name, 0, 0, 0), IPC_EPROTO);
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
