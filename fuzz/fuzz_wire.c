/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wire.c — libFuzzer target for the frame decoder (libipc/net/wire.c)
 * and the opening of frames (libipc/net/auth.c).
 *
 * Every input goes through what the server does with bytes from the
 * network: decode the header; for a HELLO decode the hello; for a REQ or
 * REP open it both keyless and under a fixed key, and split a PUT_MANY's
 * batch. Nothing may crash, read
 * out of bounds (ASan) or leak (LSan), and whatever decodes must agree
 * with its own length fields.
 */
#include <stdlib.h>
#include <string.h>

#include "libipc/net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

/* A PUT_MANY body's batch, as the server splits it: every message it
 * yields lies inside the body, and together they cover it exactly. */
static void check_batch(const struct ipc__body *b)
{
	static struct iovec iov[IPC__NET_BATCH_MAX];
	size_t sum = 0;

	if (b->val < 1 || b->val > IPC__NET_BATCH_MAX ||
	    ipc__batch_decode(b->data, b->len, (size_t)b->val, iov) != 0)
		return;
	for (int64_t i = 0; i < b->val; i++) {
		const uint8_t *p = iov[i].iov_base;
		if (p < b->data || p + iov[i].iov_len > b->data + b->len)
			abort();
		if (iov[i].iov_len > 0)
			sink = p[0] + p[iov[i].iov_len - 1];
		sum += 4 + iov[i].iov_len;
	}
	if (sum != b->len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = { 7 };
	struct ipc__frame f;
	struct ipc__hello h;
	struct ipc__body b;
	uint8_t *plain;

	if (ipc__frame_decode(data, size, &f) != 0)
		return 0;
	if (f.len != size - IPC__NET_HDR || f.payload != data + IPC__NET_HDR)
		abort();
	if (f.type == IPC__F_HELLO &&
	    ipc__hello_decode(f.payload, f.len, &h) == 0 && strlen(h.name) == 0)
		abort();
	if (f.type == IPC__F_REQ || f.type == IPC__F_REP) {
		const uint8_t *keys[2] = { NULL, key };
		for (int i = 0; i < 2; i++) {
			if (ipc__frame_open(&f, data, keys[i], IPC__DIR_C2S,
					    &plain, &b) != 0)
				continue;
			if (b.len > IPC__NET_MAX_MSG || b.op == 0 ||
			    ipc__op_kind(b.op) < 0)
				abort();
			/* A run of lost replies comes only with PREV_LOST. */
			if ((b.flags >> IPC__BF_LOST_RUN_SHIFT) != 0 &&
			    !(b.flags & IPC__BF_PREV_LOST))
				abort();
			if (b.len > 0) /* ASan checks both ends are ours */
				sink = b.data[0] + b.data[b.len - 1];
			if (b.op == IPC__OP_Q_PUT_MANY)
				check_batch(&b);
			free(plain);
		}
	}
	return 0;
}
