/* SPDX-License-Identifier: MIT */
/*
 * ring_stat.c — ipc_stat's view of a shared-memory queue: depth, bytes in
 * use, sleepers, shutdown, and for a JoinableQueue its consumers with the
 * tasks each holds. It works on copies read with pread, never on the live
 * mapping, and takes no lock, so it is a snapshot: exact for an idle queue,
 * a moment's view (possibly torn between words) of a busy one. Every field
 * is range-checked before it steers a read; a record walk that does not add
 * up (a put or get moved the queue meanwhile) leaves the task counts
 * unknown rather than wrong.
 */
#include <errno.h>
#include <stdlib.h>

#include "libipc/queue/ring.h"

/* Walking the records costs a read of the whole storage; beyond this the
 * per-consumer task counts are left unknown. */
#define WALK_MAX_CAPACITY ((uint32_t)16 << 20)

/* Count each consumer's TAKEN records in [from, to); idx maps a slot to
 * its entry in info->consumers (-1: not listed). */
static void count_tasks(int fd, const struct ring_shm *q, uint32_t from,
			uint32_t to, const int *idx, ipc_object_info *info)
{
	uint32_t mask = q->q_capacity - 1, steps = 0;
	uint8_t *data;

	if (q->q_capacity > WALK_MAX_CAPACITY || to - from > q->q_capacity)
		return;
	data = malloc(q->q_capacity);
	if (data == NULL ||
	    ipc__pread_full(fd, data, q->q_capacity, (off_t)q->q_data_off) !=
		    q->q_capacity) {
		free(data);
		return;
	}
	for (int i = 0; i < info->n_consumers; i++)
		info->consumers[i].tasks = 0;
	for (uint32_t pos = from; pos != to; steps++) {
		const struct rec_hdr *h = (const void *)(data + (pos & mask));
		uint32_t state =
			atomic_load_explicit(&h->r_state, memory_order_relaxed);
		uint32_t slot = state & (REC_TAKEN - 1u);
		if (h->r_len > q->q_max_msg || rec_size(h->r_len) > to - pos ||
		    steps > q->q_capacity / REC_HDR) {
			for (int i = 0; i < info->n_consumers; i++)
				info->consumers[i].tasks = -1; /* raced */
			break;
		}
		if ((REC_OWNER(state) & ~(REC_TAKEN - 1u)) == REC_TAKEN &&
		    slot < q->q_nslots && idx[slot] >= 0)
			info->consumers[idx[slot]].tasks++;
		pos += rec_size(h->r_len);
	}
	free(data);
}

int ipc__ring_describe(int fd, const void *seg, size_t len,
		       ipc_object_info *info)
{
	const struct ring_shm *q = seg;
	int idx[IPC_QUEUE_MAX_CONSUMERS];
	uint64_t head, tail;
	uint32_t free_pos, waiters, done, hw;

	if (len < sizeof(*q) || q->q_capacity < MIN_CAPACITY ||
	    (q->q_capacity & (q->q_capacity - 1)) != 0 ||
	    q->q_capacity > IPC_QUEUE_MAX_CAPACITY || q->q_joinable > 1 ||
	    q->q_nslots > IPC_QUEUE_MAX_CONSUMERS)
		return -EPROTO;
	head = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	tail = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	free_pos =
		w_pos(atomic_load_explicit(&q->q_free, memory_order_relaxed));
	info->depth = (long)(w_items(tail) - w_items(head));
	info->bytes_used = (long)(w_pos(tail) - free_pos);
	if (info->bytes_used > (long)q->q_capacity || info->depth < 0)
		info->depth = info->bytes_used = -1; /* torn snapshot */
	info->capacity = q->q_capacity;
	info->maxsize = q->q_maxsize;
	info->max_msg_size = q->q_max_msg;
	info->shut_down = atomic_load(&q->q_closed) != 0;
	waiters = atomic_load(&q->q_get_waiters);
	info->waiters =
		(long)(waiters % RING_WATCHER + waiters / RING_WATCHER) +
		atomic_load(&q->q_put_waiters) +
		atomic_load(&q->q_join_waiters);
	if (!q->q_joinable)
		return 0;
	done = atomic_load(&q->q_done);
	info->unfinished = -1; /* unknown until the slots' counts are in */
	if (q->q_slots_off > len ||
	    len - q->q_slots_off < q->q_nslots * sizeof(struct ring_slot))
		return 0; /* slots beyond what was read: no consumer list */
	/* The tasks done without the lock count in their slots (see struct
	 * ring_slot). */
	hw = atomic_load(&q->q_slots_hw);
	for (uint32_t i = 0; i < hw && i < q->q_nslots; i++)
		done += atomic_load(
			&((const struct ring_slot *)((const uint8_t *)seg +
						     q->q_slots_off))[i]
				 .s_done);
	/* The copy is read tail first: a task put and done after that read
	 * can make the count go below 0 (a torn snapshot: unknown). */
	info->unfinished = (int32_t)(w_items(tail) - done) < 0
				   ? -1
				   : (long)(uint32_t)(w_items(tail) - done);
	info->n_consumers = 0;
	for (uint32_t i = 0; i < q->q_nslots; i++) {
		const struct ring_slot *s =
			(const void *)((const uint8_t *)seg + q->q_slots_off +
				       i * sizeof(struct ring_slot));
		ipc_object_info m = { .holder = -1 };
		idx[i] = -1;
		if (atomic_load(&s->s_state) != SLOT_ACTIVE)
			continue;
		ipc__mutex_peek(&s->s_reg, &m);
		idx[i] = info->n_consumers;
		info->consumers[info->n_consumers++] =
			(ipc_consumer_info){ s->s_pid, m.holder > 0, -1 };
	}
	count_tasks(fd, q, free_pos, w_pos(head), idx, info);
	return 0;
}
