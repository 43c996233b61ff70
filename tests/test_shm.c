/* SPDX-License-Identifier: MIT */
/*
 * test_shm.c — shared memory blocks, Value and Array between real
 * processes: sharing, named opening, bad input, atomic counters by many
 * processes, and a lock holder that dies.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libipc/ipc.h"
#include "tests/helpers.h"

static char name[128];

static void setup(void)
{
	t_name(name, sizeof(name), "shm");
}

static void teardown(void)
{
	ipc_unlink(name);
}

TestSuite(shm, .init = setup, .fini = teardown, .timeout = 30);
TestSuite(array, .init = setup, .fini = teardown, .timeout = 60);

/* ---- Raw blocks -------------------------------------------------------- */

Test(shm, new_block_is_zeroed_aligned_and_reports_its_size)
{
	ipc_shm *m;
	uint8_t *p;

	cr_assert_eq(ipc_shm_new(&m, 10000), 0);
	cr_assert_eq(ipc_shm_size(m), 10000);
	cr_assert_null(ipc_shm_name(m), "anonymous");
	p = ipc_shm_buf(m);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % 64, 0);
	for (size_t i = 0; i < 10000; i++)
		cr_assert_eq(p[i], 0);
	p[9999] = 7; /* the whole size is writable */
	ipc_shm_close(m);
}

static ipc_shm *anon;

static int write_pattern(void *arg)
{
	uint8_t *p = ipc_shm_buf(anon);
	(void)arg;
	for (size_t i = 0; i < ipc_shm_size(anon); i++)
		p[i] = (uint8_t)(i * 7);
	return 0;
}

Test(shm, anonymous_block_is_shared_with_a_child)
{
	uint8_t *p;

	cr_assert_eq(ipc_shm_new(&anon, 4096), 0);
	cr_assert_eq(t_reap(t_spawn(write_pattern, NULL), 10000), 0);
	p = ipc_shm_buf(anon);
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(p[i], (uint8_t)(i * 7));
	ipc_shm_close(anon);
}

static int open_by_name_and_write(void *arg)
{
	ipc_shm *m;
	(void)arg;
	T_CHECK(ipc_shm_open(&m, name, 0, 0) == 0, 1);
	T_CHECK(ipc_shm_size(m) == 333, 2);
	T_CHECK(strcmp(ipc_shm_name(m), name) == 0, 3);
	memcpy(ipc_shm_buf(m), "hello", 6);
	ipc_shm_close(m);
	return 0;
}

Test(shm, named_block_is_opened_by_name_in_another_process)
{
	ipc_shm *m;

	cr_assert_eq(ipc_shm_open(&m, name, IPC_CREATE | IPC_EXCL, 333), 0);
	cr_assert_str_eq(ipc_shm_name(m), name);
	cr_assert_eq(t_reap(t_spawn(open_by_name_and_write, NULL), 10000), 0);
	cr_assert_str_eq(ipc_shm_buf(m), "hello");
	ipc_shm_close(m);
	/* The name outlives every handle until unlinked. */
	cr_assert_eq(ipc_shm_open(&m, name, 0, 333), 0);
	cr_assert_str_eq(ipc_shm_buf(m), "hello");
	ipc_shm_close(m);
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_ENOENT);
	cr_assert_null(m);
}

Test(shm, bad_sizes_names_and_flags_are_rejected)
{
	ipc_shm *m = (ipc_shm *)1;

	cr_assert_eq(ipc_shm_new(NULL, 10), IPC_EINVAL);
	cr_assert_eq(ipc_shm_new(&m, 0), IPC_EINVAL);
	cr_assert_null(m);
	cr_assert_eq(ipc_shm_new(&m, IPC_SHM_MAX_SIZE + 1), IPC_EINVAL);
	cr_assert_eq(ipc_shm_open(&m, NULL, IPC_CREATE, 10), IPC_EINVAL);
	cr_assert_eq(ipc_shm_open(&m, "bad/name", IPC_CREATE, 10), IPC_EINVAL);
	cr_assert_eq(ipc_shm_open(&m, "", IPC_CREATE, 10), IPC_EINVAL);
	cr_assert_eq(ipc_shm_open(&m, name, IPC_CREATE, 0), IPC_EINVAL,
		     "creating needs a size");
	cr_assert_eq(ipc_shm_open(&m, name, IPC_EXCL, 10), IPC_EINVAL,
		     "IPC_EXCL without IPC_CREATE");
	cr_assert_eq(ipc_shm_open(&m, name, 0x40000, 10), IPC_EINVAL);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_ENOENT);
	cr_assert_eq(ipc_shm_size(NULL), 0);
	cr_assert_null(ipc_shm_buf(NULL));
	cr_assert_null(ipc_shm_name(NULL));
	ipc_shm_close(NULL);
}

Test(shm, exclusive_create_and_size_mismatch)
{
	ipc_shm *m, *m2;

	cr_assert_eq(ipc_shm_open(&m, name, IPC_CREATE, 100), 0);
	cr_assert_eq(ipc_shm_open(&m2, name, IPC_CREATE | IPC_EXCL, 100),
		     IPC_EEXIST);
	cr_assert_eq(ipc_shm_open(&m2, name, IPC_CREATE, 100), 0,
		     "open-or-create with the same size");
	ipc_shm_close(m2);
	cr_assert_eq(ipc_shm_open(&m2, name, 0, 200), IPC_EINVAL);
	cr_assert_null(m2);
	ipc_shm_close(m);
}

Test(shm, other_kinds_and_truncated_files_are_eproto)
{
	char path[300];
	ipc_shm *m;
	ipc_array *a;
	ipc_lock *lk;
	int fd;

	cr_assert_eq(ipc_lock_open(&lk, name, IPC_CREATE), 0);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_EPROTO);
	cr_assert_eq(ipc_array_open(&a, name, 0, IPC_TYPE_I32, 0), IPC_EPROTO);
	ipc_lock_close(lk);
	cr_assert_eq(ipc_unlink(name), 0);

	cr_assert_eq(ipc_array_open(&a, name, IPC_CREATE, IPC_TYPE_I32, 4), 0);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_EPROTO,
		     "an Array is not a raw block");
	ipc_array_close(a);
	cr_assert_eq(ipc_unlink(name), 0);

	cr_assert_eq(ipc_shm_open(&m, name, IPC_CREATE, 4096), 0);
	ipc_shm_close(m);
	snprintf(path, sizeof(path), "/dev/shm/libipc.%s", name);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 100), 0); /* cut inside the layout */
	close(fd);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_EPROTO);
	fd = open(path, O_WRONLY);
	cr_assert_eq(ftruncate(fd, 1000), 0); /* cut inside the data */
	close(fd);
	cr_assert_eq(ipc_shm_open(&m, name, 0, 0), IPC_EPROTO);
}

/* ---- Value and Array --------------------------------------------------- */

static ipc_value *val;

#define ADDS 20000

static int add_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++)
		T_CHECK(ipc_value_add(val, 1, NULL) == 0, 1);
	return 0;
}

Test(array, atomic_add_by_ten_processes_loses_nothing)
{
	pid_t kids[10];
	int64_t v = -1;

	cr_assert_eq(ipc_value_new(&val, IPC_TYPE_I64), 0);
	for (int i = 0; i < 10; i++)
		kids[i] = t_spawn(add_many, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(t_reap(kids[i], 60000), 0);
	cr_assert_eq(ipc_value_load(val, &v), 0);
	cr_assert_eq(v, 10 * ADDS);
	ipc_value_close(val);
}

static int locked_increment(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++) {
		volatile int32_t *p = ipc_value_data(val);
		T_CHECK(ipc_value_acquire(val, 20000) == 0, 1);
		*p = *p + 1;
		T_CHECK(ipc_value_release(val) == 0, 2);
	}
	return 0;
}

Test(array, lock_makes_plain_increments_by_ten_processes_exact)
{
	pid_t kids[10];

	cr_assert_eq(ipc_value_new(&val, IPC_TYPE_I32), 0);
	for (int i = 0; i < 10; i++)
		kids[i] = t_spawn(locked_increment, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(t_reap(kids[i], 60000), 0);
	cr_assert_eq(*(int32_t *)ipc_value_data(val), 10 * ADDS);
	ipc_value_close(val);
}

Test(array, store_load_ranges_and_wrapping_per_type)
{
	ipc_array *a;
	int64_t v, old;

	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_I8, 3), 0);
	cr_assert_eq(ipc_array_len(a), 3);
	cr_assert_eq(ipc_array_type(a), IPC_TYPE_I8);
	cr_assert_eq(ipc_array_store(a, 0, -128), 0);
	cr_assert_eq(ipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, -128, "sign-extended");
	cr_assert_eq(ipc_array_store(a, 1, 128), IPC_EINVAL);
	cr_assert_eq(ipc_array_store(a, 1, -129), IPC_EINVAL);
	cr_assert_eq(ipc_array_load(a, 1, &v), 0);
	cr_assert_eq(v, 0, "a refused store changes nothing");
	cr_assert_eq(ipc_array_store(a, 2, 127), 0);
	cr_assert_eq(ipc_array_add(a, 2, 1, &old), 0);
	cr_assert_eq(old, 127);
	cr_assert_eq(ipc_array_load(a, 2, &v), 0);
	cr_assert_eq(v, -128, "add wraps");
	cr_assert_eq(ipc_array_store(a, 3, 0), IPC_EINVAL, "index 3 of 3");
	cr_assert_eq(ipc_array_load(a, 3, &v), IPC_EINVAL);
	cr_assert_eq(ipc_array_add(a, 99, 1, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_array_load(a, 0, NULL), IPC_EINVAL);
	ipc_array_close(a);

	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_U16, 2), 0);
	cr_assert_eq(ipc_array_store(a, 0, 65535), 0);
	cr_assert_eq(ipc_array_load(a, 0, &v), 0);
	cr_assert_eq(v, 65535, "zero-extended");
	cr_assert_eq(ipc_array_store(a, 0, -1), IPC_EINVAL);
	cr_assert_eq(ipc_array_add(a, 1, -1, NULL), 0);
	cr_assert_eq(ipc_array_load(a, 1, &v), 0);
	cr_assert_eq(v, 65535, "0 - 1 wraps to the maximum");
	ipc_array_close(a);

	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_U64, 1), 0);
	cr_assert_eq(ipc_array_store(a, 0, -1), 0, "all ones");
	cr_assert_eq(*(uint64_t *)ipc_array_data(a), UINT64_MAX);
	ipc_array_close(a);
}

Test(array, compare_and_swap)
{
	ipc_array *a;
	int64_t e = 0;

	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_U32, 1), 0);
	cr_assert_eq(ipc_array_cas(a, 0, &e, 5), 0);
	e = 4;
	cr_assert_eq(ipc_array_cas(a, 0, &e, 9), IPC_EAGAIN);
	cr_assert_eq(e, 5, "the current value comes back");
	cr_assert_eq(ipc_array_cas(a, 0, &e, 1LL << 32), IPC_EINVAL);
	cr_assert_eq(ipc_array_cas(a, 0, NULL, 1), IPC_EINVAL);
	e = -1;
	cr_assert_eq(ipc_array_cas(a, 0, &e, 1), IPC_EAGAIN);
	cr_assert_eq(*(uint32_t *)ipc_array_data(a), 5);
	ipc_array_close(a);
}

Test(array, float_types_have_the_lock_but_no_atomic_calls)
{
	ipc_array *a;
	int64_t v;

	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_DOUBLE, 4), 0);
	cr_assert_eq(ipc_array_load(a, 0, &v), IPC_EINVAL);
	cr_assert_eq(ipc_array_store(a, 0, 1), IPC_EINVAL);
	cr_assert_eq(ipc_array_add(a, 0, 1, NULL), IPC_EINVAL);
	cr_assert_eq(ipc_array_acquire(a, IPC_NOWAIT), 0);
	((double *)ipc_array_data(a))[3] = 2.5;
	cr_assert_eq(ipc_array_release(a), 0);
	cr_assert_eq(((double *)ipc_array_data(a))[3], 2.5);
	ipc_array_close(a);
}

Test(array, bad_input_is_einval)
{
	ipc_array *a = (ipc_array *)1;

	cr_assert_eq(ipc_array_new(&a, 0, 4), IPC_EINVAL);
	cr_assert_null(a);
	cr_assert_eq(ipc_array_new(&a, (ipc_type)42, 4), IPC_EINVAL);
	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_I32, 0), IPC_EINVAL);
	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_I64, IPC_SHM_MAX_SIZE / 4),
		     IPC_EINVAL);
	cr_assert_eq(ipc_array_new(NULL, IPC_TYPE_I32, 1), IPC_EINVAL);
	cr_assert_eq(ipc_array_open(&a, NULL, IPC_CREATE, IPC_TYPE_I32, 1),
		     IPC_EINVAL);
	cr_assert_eq(ipc_array_acquire(NULL, 0), IPC_EINVAL);
	cr_assert_eq(ipc_array_release(NULL), IPC_EINVAL);
	cr_assert_eq(ipc_array_store(NULL, 0, 1), IPC_EINVAL);
	cr_assert_eq(ipc_array_len(NULL), 0);
	cr_assert_null(ipc_array_data(NULL));
	cr_assert_eq(ipc_array_new(&a, IPC_TYPE_I32, 1), 0);
	cr_assert_eq(ipc_array_acquire(a, -7), IPC_EINVAL);
	cr_assert_eq(ipc_array_release(a), IPC_EPERM, "not held");
	ipc_array_close(a);
}

Test(array, named_array_checks_type_and_length)
{
	ipc_array *a, *b;
	int64_t v;

	cr_assert_eq(ipc_array_open(&a, name, IPC_CREATE, IPC_TYPE_I16, 8), 0);
	cr_assert_eq(ipc_array_store(a, 7, -3), 0);
	cr_assert_eq(ipc_array_open(&b, name, 0, IPC_TYPE_U16, 8), IPC_EPROTO);
	cr_assert_eq(ipc_array_open(&b, name, 0, IPC_TYPE_I16, 9), IPC_EINVAL);
	cr_assert_eq(ipc_value_open(&b, name, 0, IPC_TYPE_I16), IPC_EINVAL,
		     "a Value is an Array of one");
	cr_assert_eq(ipc_array_open(&b, name, 0, IPC_TYPE_I16, 0), 0);
	cr_assert_eq(ipc_array_len(b), 8);
	cr_assert_str_eq(ipc_array_name(b), name);
	cr_assert_eq(ipc_array_load(b, 7, &v), 0);
	cr_assert_eq(v, -3);
	ipc_array_close(b);
	ipc_array_close(a);
}

static int die_holding_lock(void *arg)
{
	(void)arg;
	T_CHECK(ipc_value_acquire(val, IPC_FOREVER) == 0, 1);
	*(int32_t *)ipc_value_data(val) = 12345; /* a half-done update */
	kill(getpid(), SIGKILL);
	return 2;
}

Test(array, lock_holder_killed_gives_next_acquirer_eownerdead)
{
	cr_assert_eq(ipc_value_new(&val, IPC_TYPE_I32), 0);
	cr_assert_eq(t_reap(t_spawn(die_holding_lock, NULL), 10000), -SIGKILL);
	cr_assert_eq(ipc_value_acquire(val, 5000), IPC_EOWNERDEAD);
	cr_assert_eq(*(int32_t *)ipc_value_data(val), 12345);
	cr_assert_eq(ipc_value_release(val), 0, "held and consistent");
	cr_assert_eq(ipc_value_acquire(val, IPC_NOWAIT), 0);
	cr_assert_eq(ipc_value_release(val), 0);
	ipc_value_close(val);
}

Test(array, nothing_is_left_in_dev_shm)
{
	ipc_array *a;

	cr_assert_eq(ipc_array_open(&a, name, IPC_CREATE, IPC_TYPE_U8, 10), 0);
	ipc_array_close(a);
	cr_assert_eq(ipc_unlink(name), 0);
	cr_assert_eq(t_leaked_segments(), 0);
}
