/* SPDX-License-Identifier: MIT */
/*
 * layout.h — the shared-memory layouts of Lock, RLock, Event, Condition,
 * Semaphore and Barrier, internal.
 *
 * A segment is a file format (see each object's .c file for what every
 * field means and who writes it). The layouts sit in one header so that
 * the corruption tests can damage exactly the field they mean to, by
 * offsetof, instead of guessing offsets; nothing outside libipc/sync and
 * tests/corrupt includes it.
 *
 * Every field below can be written by any process that maps the segment.
 * The code reads each one as untrusted: fields fixed at creation are read
 * once, checked and kept in the handle; indices and counts are checked
 * against those before use (docs/design.md, "Trust model").
 */
#ifndef LIBIPC_SYNC_LAYOUT_H
#define LIBIPC_SYNC_LAYOUT_H

#include <stddef.h>

#include "libipc/core/core.h"

/* Lock and RLock (lock.c). */
struct lock_shm {
	struct ipc__seg_hdr hdr;
	pthread_mutex_t l_mutex IPC__ALIGNED;
};
_Static_assert(offsetof(struct lock_shm, l_mutex) == IPC__CACHELINE,
	       "mutex on its own line");

/* Event (event.c). */
#define EV_SET 1u
#define EV_CLEAR_STEP 2u
#define EV_MASK 0x7fffffffu /* bit 31 stays clear: see ipc__futex_or_wake */

struct event_shm {
	struct ipc__seg_hdr hdr;
	/* Read with acquire loads, changed by CAS (clear) or FUTEX_WAKE_OP
	 * (set), both full barriers. */
	_Atomic uint32_t e_word IPC__ALIGNED;
};

/* Condition (cond.c). */
#define COND_SEQ_WRAP 0x7fffffffu

struct cond_shm {
	struct ipc__seg_hdr hdr;
	pthread_mutex_t c_mutex IPC__ALIGNED;
	/* The lock the Condition is built on, fixed at creation: 0 for
	 * c_mutex, else IPC__KIND_LOCK or IPC__KIND_RLOCK and the identity
	 * (creator pid, creation time) from that lock's segment header. */
	uint32_t c_lock_kind;
	int32_t c_lock_pid;
	uint64_t c_lock_created_ns;
	_Atomic uint32_t c_seq IPC__ALIGNED;
	_Atomic uint32_t c_waiters;
};

/* Semaphore and BoundedSemaphore (sem.c). */
struct sem_shm {
	struct ipc__seg_hdr hdr;
	_Atomic uint32_t s_value IPC__ALIGNED;
	_Atomic uint32_t s_waiters;
	uint32_t s_max;
};

/* Barrier (barrier.c). */
enum { SLOT_WAITING = 0, SLOT_RELEASED = 1, SLOT_BROKEN = 2 };

struct barrier_slot {
	pthread_mutex_t s_lock;
	uint32_t s_gen;		   /* round the holder waits in */
	_Atomic uint32_t s_result; /* SLOT_*; release store, acquire load */
} IPC__ALIGNED;

struct barrier_shm {
	struct ipc__seg_hdr hdr;
	pthread_mutex_t b_mutex IPC__ALIGNED;
	uint32_t b_parties;
	int32_t b_timeout_ms; /* default wait timeout; fixed at creation */
	_Atomic uint32_t b_count;
	_Atomic uint32_t b_broken;
	_Atomic uint32_t b_gen IPC__ALIGNED;
	struct barrier_slot b_slots[] IPC__ALIGNED;
};

#endif /* LIBIPC_SYNC_LAYOUT_H */
