/* SPDX-License-Identifier: MIT */
/*
 * shm.c — shared memory blocks (Python's shared_memory.SharedMemory) and
 * typed Value / Array objects with an attached lock (multiprocessing.Value,
 * multiprocessing.Array).
 *
 * Both are one segment layout. After the common header comes a line of
 * fields the creator writes once (element count, type, element size), then
 * a line holding a robust mutex (the Value/Array lock; unused by a raw
 * block), then the data at SHM_DATA_OFF, 64-byte aligned so that every
 * element is naturally aligned and the atomic operations below are single
 * instructions. A raw block and an Array are different segment kinds, so
 * opening one as the other is IPC_EPROTO.
 *
 * Nothing in the data area is trusted or interpreted by libipc: it is the
 * user's. An opener trusts the count only after checking that count *
 * element size fits the segment it mapped.
 *
 * Crash safety: the atomic operations cannot be torn by a crash (each is one
 * instruction on a naturally aligned word); the lock is a robust mutex, so a
 * holder that dies hands it on with IPC_EOWNERDEAD and the new holder knows
 * the elements it guards may be half-updated. Plain writes to the data
 * through the pointer are the user's business, as with any shared memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/sync/sync.h"

#define SHM_DATA_OFF 192

struct shm_layout {
	struct ipc__seg_hdr hdr;
	uint64_t s_count;     /* elements (bytes for a raw block); constant */
	uint32_t s_type;      /* enum ipc_type; 0 for a raw block; constant */
	uint32_t s_elem_size; /* bytes per element; constant */
	uint8_t s_reserved[48];
	pthread_mutex_t s_mutex IPC__ALIGNED; /* the Value/Array lock */
};
_Static_assert(offsetof(struct shm_layout, s_count) == IPC__CACHELINE,
	       "constants on the second line");
_Static_assert(offsetof(struct shm_layout, s_mutex) == 2 * IPC__CACHELINE,
	       "mutex on its own line");
_Static_assert(sizeof(struct shm_layout) <= SHM_DATA_OFF,
	       "data after the mutex line");

/* What a creator asks for and an opener expects. count 0 from an opener
 * accepts the existing object's count. */
struct shm_spec {
	uint32_t type;
	uint32_t elem_size;
	uint64_t count;
};

/* One handle type behind the public names. It starts with a mutex
 * object, so that the Value/Array lock is lock.c's acquire and release. */
struct shmobj {
	struct ipc__mutexobj m; /* first: its seg is the handle's segment */
	struct shm_layout *l;
	uint8_t *data;
	size_t count;
	size_t elem_size;
	int type;
	char *name; /* NULL for an anonymous object */
};

struct ipc_shm {
	struct shmobj o;
};
struct ipc_array {
	struct shmobj o;
};

static size_t type_size(int type)
{
	switch (type) {
	case IPC_TYPE_I8:
	case IPC_TYPE_U8:
		return 1;
	case IPC_TYPE_I16:
	case IPC_TYPE_U16:
		return 2;
	case IPC_TYPE_I32:
	case IPC_TYPE_U32:
	case IPC_TYPE_FLOAT:
		return 4;
	case IPC_TYPE_I64:
	case IPC_TYPE_U64:
	case IPC_TYPE_DOUBLE:
		return 8;
	default:
		return 0;
	}
}

static int shm_init(void *base, size_t size, const void *arg)
{
	struct shm_layout *l = base;
	const struct shm_spec *sp = arg;

	(void)size;
	l->s_count = sp->count;
	l->s_type = sp->type;
	l->s_elem_size = sp->elem_size;
	return ipc__mutex_init(&l->s_mutex, false);
}

static int shm_check(const void *base, size_t size, const void *arg)
{
	const struct shm_layout *l = base;
	const struct shm_spec *sp = arg;

	if (l->s_type != sp->type || l->s_elem_size != sp->elem_size ||
	    l->s_elem_size == 0)
		return -EPROTO;
	if (l->s_count == 0 ||
	    l->s_count > (size - SHM_DATA_OFF) / l->s_elem_size)
		return -EPROTO; /* the count does not fit what was mapped */
	if (sp->count != 0 && sp->count != l->s_count)
		return -EINVAL;
	return 0;
}

static const struct ipc__seg_type shm_type = {
	.kind = IPC__KIND_SHM,
	.min_size = SHM_DATA_OFF + 1,
	.init = shm_init,
	.check = shm_check,
};

static const struct ipc__seg_type array_type = {
	.kind = IPC__KIND_ARRAY,
	.min_size = SHM_DATA_OFF + 1,
	.init = shm_init,
	.check = shm_check,
};

static int shmobj_make(struct shmobj **out, size_t handle_size,
		       const struct ipc__seg_type *st, const char *name,
		       int flags, int type, size_t count)
{
	struct shm_spec sp = { (uint32_t)type, 0, count };
	struct shmobj *o;
	size_t esz = type == 0 ? 1 : type_size(type);
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (esz == 0 || count > IPC_SHM_MAX_SIZE / esz)
		return -EINVAL;
	/* Creating needs a count; opening with IPC_CREATE may create. */
	if (count == 0 && (name == NULL || (flags & IPC_CREATE)))
		return -EINVAL;
	sp.elem_size = (uint32_t)esz;
	rc = ipc__handle_new((void **)&o, handle_size, st, name, flags,
			     SHM_DATA_OFF + count * esz, &sp);
	if (rc != 0)
		return rc;
	o->l = o->m.seg.base;
	o->data = (uint8_t *)o->m.seg.base + SHM_DATA_OFF;
	o->m.mutex = &o->l->s_mutex;
	o->m.point_acquired = "array.acquire.held";
	o->m.point_release = "array.release.before";
	o->count = (size_t)o->l->s_count;
	o->elem_size = esz;
	o->type = type;
	if (name != NULL) {
		o->name = strdup(name[0] == '/' ? name + 1 : name);
		if (o->name == NULL) {
			ipc__handle_free(o);
			return -ENOMEM;
		}
	}
	*out = o;
	return 0;
}

static void shmobj_free(struct shmobj *o)
{
	if (o == NULL)
		return;
	free(o->name);
	ipc__handle_free(o);
}

/* ---- Raw blocks -------------------------------------------------------- */

int ipc_shm_new(ipc_shm **m, size_t size)
{
	return shmobj_make((struct shmobj **)m, sizeof(ipc_shm), &shm_type,
			   NULL, 0, 0, size);
}

int ipc_shm_open(ipc_shm **m, const char *name, int flags, size_t size)
{
	if (name == NULL) {
		if (m != NULL)
			*m = NULL;
		return -EINVAL;
	}
	return shmobj_make((struct shmobj **)m, sizeof(ipc_shm), &shm_type,
			   name, flags, 0, size);
}

void *ipc_shm_buf(ipc_shm *m)
{
	return m != NULL ? m->o.data : NULL;
}

size_t ipc_shm_size(ipc_shm *m)
{
	return m != NULL ? m->o.count : 0;
}

const char *ipc_shm_name(ipc_shm *m)
{
	return m != NULL ? m->o.name : NULL;
}

void ipc_shm_close(ipc_shm *m)
{
	shmobj_free(m != NULL ? &m->o : NULL);
}

/* ---- Value and Array --------------------------------------------------- */

int ipc_array_new(ipc_array **a, ipc_type type, size_t n)
{
	if (type_size(type) == 0) {
		if (a != NULL)
			*a = NULL;
		return -EINVAL;
	}
	return shmobj_make((struct shmobj **)a, sizeof(ipc_array), &array_type,
			   NULL, 0, type, n);
}

int ipc_array_open(ipc_array **a, const char *name, int flags, ipc_type type,
		   size_t n)
{
	if (name == NULL || type_size(type) == 0) {
		if (a != NULL)
			*a = NULL;
		return -EINVAL;
	}
	return shmobj_make((struct shmobj **)a, sizeof(ipc_array), &array_type,
			   name, flags, type, n);
}

void *ipc_array_data(ipc_array *a)
{
	return a != NULL ? a->o.data : NULL;
}

size_t ipc_array_len(ipc_array *a)
{
	return a != NULL ? a->o.count : 0;
}

ipc_type ipc_array_type(ipc_array *a)
{
	return a != NULL ? (ipc_type)a->o.type : (ipc_type)0;
}

const char *ipc_array_name(ipc_array *a)
{
	return a != NULL ? a->o.name : NULL;
}

int ipc_array_acquire(ipc_array *a, int timeout_ms)
{
	return ipc__mutexobj_acquire(a != NULL ? &a->o.m : NULL, timeout_ms);
}

int ipc_array_release(ipc_array *a)
{
	return ipc__mutexobj_release(a != NULL ? &a->o.m : NULL);
}

/* The element's address if i is in range and the type is an integer type
 * (the atomic operations' precondition), else NULL. */
static void *int_elem(ipc_array *a, size_t i)
{
	if (a == NULL || i >= a->o.count || a->o.type == IPC_TYPE_FLOAT ||
	    a->o.type == IPC_TYPE_DOUBLE)
		return NULL;
	return a->o.data + i * a->o.elem_size;
}

static bool fits(int type, int64_t v)
{
	switch (type) {
	case IPC_TYPE_I8:
		return v >= INT8_MIN && v <= INT8_MAX;
	case IPC_TYPE_U8:
		return v >= 0 && v <= UINT8_MAX;
	case IPC_TYPE_I16:
		return v >= INT16_MIN && v <= INT16_MAX;
	case IPC_TYPE_U16:
		return v >= 0 && v <= UINT16_MAX;
	case IPC_TYPE_I32:
		return v >= INT32_MIN && v <= INT32_MAX;
	case IPC_TYPE_U32:
		return v >= 0 && v <= UINT32_MAX;
	default:
		return true; /* 64-bit: every bit pattern */
	}
}

/* Sign- or zero-extend an element's bits to int64_t. */
static int64_t widen(int type, uint64_t bits)
{
	switch (type) {
	case IPC_TYPE_I8:
		return (int8_t)bits;
	case IPC_TYPE_U8:
		return (uint8_t)bits;
	case IPC_TYPE_I16:
		return (int16_t)bits;
	case IPC_TYPE_U16:
		return (uint16_t)bits;
	case IPC_TYPE_I32:
		return (int32_t)bits;
	case IPC_TYPE_U32:
		return (uint32_t)bits;
	default:
		return (int64_t)bits;
	}
}

/* The memory order of every operation is seq_cst: these replace a lock in
 * user code, which expects them to order its other accesses too. */
int ipc_array_load(ipc_array *a, size_t i, int64_t *out)
{
	void *p = int_elem(a, i);
	uint64_t bits;

	if (p == NULL || out == NULL)
		return -EINVAL;
	switch (a->o.elem_size) {
	case 1:
		bits = __atomic_load_n((uint8_t *)p, __ATOMIC_SEQ_CST);
		break;
	case 2:
		bits = __atomic_load_n((uint16_t *)p, __ATOMIC_SEQ_CST);
		break;
	case 4:
		bits = __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST);
		break;
	default:
		bits = __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
		break;
	}
	*out = widen(a->o.type, bits);
	return 0;
}

int ipc_array_store(ipc_array *a, size_t i, int64_t v)
{
	void *p = int_elem(a, i);

	if (p == NULL || !fits(a->o.type, v))
		return -EINVAL;
	switch (a->o.elem_size) {
	case 1:
		__atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_SEQ_CST);
		break;
	case 2:
		__atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST);
		break;
	case 4:
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST);
		break;
	default:
		__atomic_store_n((uint64_t *)p, (uint64_t)v, __ATOMIC_SEQ_CST);
		break;
	}
	return 0;
}

int ipc_array_add(ipc_array *a, size_t i, int64_t delta, int64_t *old)
{
	void *p = int_elem(a, i);
	uint64_t bits, d = (uint64_t)delta;

	if (p == NULL)
		return -EINVAL;
	/* Unsigned arithmetic: the element wraps modulo 2^bits. */
	switch (a->o.elem_size) {
	case 1:
		bits = __atomic_fetch_add((uint8_t *)p, (uint8_t)d,
					  __ATOMIC_SEQ_CST);
		break;
	case 2:
		bits = __atomic_fetch_add((uint16_t *)p, (uint16_t)d,
					  __ATOMIC_SEQ_CST);
		break;
	case 4:
		bits = __atomic_fetch_add((uint32_t *)p, (uint32_t)d,
					  __ATOMIC_SEQ_CST);
		break;
	default:
		bits = __atomic_fetch_add((uint64_t *)p, d, __ATOMIC_SEQ_CST);
		break;
	}
	if (old != NULL)
		*old = widen(a->o.type, bits);
	return 0;
}

/* One compare-and-swap on an element of type T; *expected gets the value
 * found. */
#define CAS_AS(T, p, expected, desired, type)                                 \
	__extension__({                                                       \
		T e_ = (T) * (expected);                                      \
		bool ok_ = __atomic_compare_exchange_n(                       \
			(T *)(p), &e_, (T)(desired), false, __ATOMIC_SEQ_CST, \
			__ATOMIC_SEQ_CST);                                    \
		*(expected) = widen((type), e_);                              \
		ok_;                                                          \
	})

int ipc_array_cas(ipc_array *a, size_t i, int64_t *expected, int64_t desired)
{
	void *p = int_elem(a, i);
	bool ok;

	if (p == NULL || expected == NULL || !fits(a->o.type, desired))
		return -EINVAL;
	if (!fits(a->o.type, *expected))
		return -EAGAIN; /* the element can never hold it */
	switch (a->o.elem_size) {
	case 1:
		ok = CAS_AS(uint8_t, p, expected, desired, a->o.type);
		break;
	case 2:
		ok = CAS_AS(uint16_t, p, expected, desired, a->o.type);
		break;
	case 4:
		ok = CAS_AS(uint32_t, p, expected, desired, a->o.type);
		break;
	default:
		ok = CAS_AS(uint64_t, p, expected, desired, a->o.type);
		break;
	}
	return ok ? 0 : -EAGAIN;
}

void ipc_array_close(ipc_array *a)
{
	shmobj_free(a != NULL ? &a->o : NULL);
}
