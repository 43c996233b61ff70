/* SPDX-License-Identifier: MIT */
/*
 * test_net_wire.c — the frame codec and the crypto layer on their own:
 * every malformed frame is IPC_EPROTO, a sealed frame opens only under its
 * own key, direction, session and sequence number, and the handshake
 * proofs check only with the same key.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libipc/net/net.h"

static struct ipc__body body(const char *data)
{
	return (struct ipc__body){ .op = IPC__OP_Q_PUT,
				   .arg = 250,
				   .val = -1,
				   .data = (const uint8_t *)data,
				   .len = (uint32_t)strlen(data) };
}

Test(wire, unsealed_frame_round_trips)
{
	struct ipc__body b = body("hello"), out;
	struct ipc__frame f;
	uint8_t *frame, *plain;
	size_t len;

	cr_assert_eq(ipc__frame_build(&frame, &len, IPC__F_REQ, NULL,
				      IPC__DIR_C2S, 7, 9, &b),
		     0);
	cr_assert_eq(len, IPC__NET_HDR + IPC__NET_BODY_HDR + 5);
	cr_assert_eq(ipc__frame_decode(frame, len, &f), 0);
	cr_assert_eq(f.type, IPC__F_REQ);
	cr_assert_eq(f.sid, 7);
	cr_assert_eq(f.seq, 9);
	cr_assert_eq(
		ipc__frame_open(&f, frame, NULL, IPC__DIR_C2S, &plain, &out),
		0);
	cr_assert_eq(out.op, IPC__OP_Q_PUT);
	cr_assert_eq(out.arg, 250);
	cr_assert_eq(out.val, -1);
	cr_assert_eq(out.len, 5);
	cr_assert_eq(memcmp(out.data, "hello", 5), 0);
	free(plain);
	free(frame);
}

Test(wire, malformed_frames_are_eproto)
{
	struct ipc__body b = body("abc");
	struct ipc__frame f;
	uint8_t *frame, copy[128];
	size_t len;

	cr_assert_eq(ipc__frame_build(&frame, &len, IPC__F_REQ, NULL,
				      IPC__DIR_C2S, 1, 1, &b),
		     0);
	for (size_t n = 0; n < len; n++) /* every truncation */
		cr_assert_eq(ipc__frame_decode(frame, n, &f), -EPROTO, "n %zu",
			     n);
	memcpy(copy, frame, len);
	copy[len] = 0; /* one byte too many */
	cr_assert_eq(ipc__frame_decode(copy, len + 1, &f), -EPROTO);
	for (size_t i = 0; i < 16; i++) {
		if (i >= 8 && i < 12)
			continue; /* length: below */
		memcpy(copy, frame, len);
		copy[i] ^= 0x40; /* magic, version, type, flags, reserved */
		cr_assert_eq(ipc__frame_decode(copy, len, &f), -EPROTO,
			     "byte %zu", i);
	}
	memcpy(copy, frame, len);
	ipc__put_le32(copy + 8, 0xffffffffu);
	cr_assert_eq(ipc__frame_decode(copy, len, &f), -EPROTO);
	cr_assert_eq(ipc__frame_decode(NULL, 0, &f), -EPROTO);
	cr_assert_eq(ipc__frame_decode(frame, IPC__NET_MAX_FRAME + 1, &f),
		     -EPROTO, "oversized is refused before it is read");
	/* A body too short or with an unknown op. */
	memcpy(copy, frame, len);
	cr_assert_eq(ipc__body_decode(copy + IPC__NET_HDR, 15, &b), -EPROTO);
	/* A run of lost replies only with PREV_LOST. */
	copy[IPC__NET_HDR + 2] = 0x2;
	cr_assert_eq(
		ipc__body_decode(copy + IPC__NET_HDR, len - IPC__NET_HDR, &b),
		-EPROTO);
	copy[IPC__NET_HDR + 2] = 0x5;
	cr_assert_eq(
		ipc__body_decode(copy + IPC__NET_HDR, len - IPC__NET_HDR, &b),
		0);
	cr_assert_eq(b.flags >> IPC__BF_LOST_RUN_SHIFT, 2);
	copy[IPC__NET_HDR + 2] = 0;
	copy[IPC__NET_HDR] = 99;
	cr_assert_eq(
		ipc__body_decode(copy + IPC__NET_HDR, len - IPC__NET_HDR, &b),
		-EPROTO);
	free(frame);
}

Test(wire, sealed_frame_opens_only_under_its_own_parameters)
{
	struct ipc__body b = body("secret marker"), out;
	uint8_t k1[32], k2[32], *frame, *plain;
	struct ipc__frame f;
	size_t len;

	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	cr_assert_eq(ipc__frame_build(&frame, &len, IPC__F_REQ, k1,
				      IPC__DIR_C2S, 5, 42, &b),
		     0);
	cr_assert_null(memmem(frame, len, "secret marker", 13),
		       "no plaintext on the wire");
	cr_assert_eq(ipc__frame_decode(frame, len, &f), 0);
	cr_assert_eq(ipc__frame_open(&f, frame, k1, IPC__DIR_C2S, &plain, &out),
		     0);
	cr_assert_eq(memcmp(out.data, "secret marker", 13), 0);
	free(plain);
	cr_assert_eq(ipc__frame_open(&f, frame, k2, IPC__DIR_C2S, &plain, &out),
		     IPC_EAUTH, "other key");
	cr_assert_eq(ipc__frame_open(&f, frame, k1, IPC__DIR_S2C, &plain, &out),
		     IPC_EAUTH, "reflected to the other direction");
	cr_assert_eq(
		ipc__frame_open(&f, frame, NULL, IPC__DIR_C2S, &plain, &out),
		IPC_EAUTH, "sealed frame where none was expected");
	/* Replaying it under another sequence number or session. */
	ipc__put_le64(frame + 24, 43);
	cr_assert_eq(ipc__frame_decode(frame, len, &f), 0);
	cr_assert_eq(ipc__frame_open(&f, frame, k1, IPC__DIR_C2S, &plain, &out),
		     IPC_EAUTH);
	ipc__put_le64(frame + 24, 42);
	ipc__put_le64(frame + 16, 6);
	cr_assert_eq(ipc__frame_decode(frame, len, &f), 0);
	cr_assert_eq(ipc__frame_open(&f, frame, k1, IPC__DIR_C2S, &plain, &out),
		     IPC_EAUTH);
	ipc__put_le64(frame + 16, 5);
	frame[len - 1] ^= 1; /* a flipped bit */
	cr_assert_eq(ipc__frame_decode(frame, len, &f), 0);
	cr_assert_eq(ipc__frame_open(&f, frame, k1, IPC__DIR_C2S, &plain, &out),
		     IPC_EAUTH);
	free(frame);
}

Test(wire, proofs_check_only_with_the_same_key)
{
	struct ipc__keys a, b;
	uint8_t id[IPC__NET_ID] = { 1 }, nc[IPC__NET_NONCE] = { 2 },
		ns[IPC__NET_NONCE] = { 3 }, proof[IPC__NET_PROOF];
	struct ipc__session_keys ska, skb;

	cr_assert_eq(ipc__keys_init(&a, "key", 3), 0);
	cr_assert_eq(ipc__keys_init(&b, "kez", 3), 0);
	ipc__proof(proof, &a, 'C', id, nc, ns, 77);
	cr_assert_eq(ipc__proof_check(proof, &a, 'C', id, nc, ns, 77), 0);
	cr_assert_eq(ipc__proof_check(proof, &b, 'C', id, nc, ns, 77),
		     IPC_EAUTH);
	cr_assert_eq(ipc__proof_check(proof, &a, 'S', id, nc, ns, 77),
		     IPC_EAUTH, "a client proof is no server proof");
	cr_assert_eq(ipc__proof_check(proof, &a, 'C', id, nc, ns, 78),
		     IPC_EAUTH);
	ipc__session_keys(&ska, &a, id, nc, ns, 77);
	ipc__session_keys(&skb, &b, id, nc, ns, 77);
	cr_assert_neq(memcmp(ska.c2s, ska.s2c, 32), 0);
	cr_assert_neq(memcmp(ska.c2s, skb.c2s, 32), 0);
}

Test(wire, hello_names_are_checked)
{
	struct ipc__hello h = { .kind = IPC__NK_QUEUE, .keyed = 1 }, out;
	uint8_t buf[IPC__HELLO_FIXED + IPC__NET_NAME_MAX];
	size_t n;

	strcpy(h.name, "jobs.1");
	n = ipc__hello_put(buf, &h);
	cr_assert_eq(ipc__hello_decode(buf, n, &out), 0);
	cr_assert_str_eq(out.name, "jobs.1");
	cr_assert_eq(ipc__hello_decode(buf, n - 1, &out), -EPROTO);
	buf[IPC__HELLO_FIXED] = ' ';
	cr_assert_eq(ipc__hello_decode(buf, n, &out), -EPROTO);
	buf[IPC__HELLO_FIXED] = 'j';
	buf[IPC__NET_ID + IPC__NET_NONCE] = 9; /* unknown kind */
	cr_assert_eq(ipc__hello_decode(buf, n, &out), -EPROTO);
}

Test(wire, batches_decode_only_when_every_byte_is_accounted_for)
{
	char ab[] = "ab", cdef[] = "cdef";
	struct iovec in[3] = { { ab, 2 }, { NULL, 0 }, { cdef, 4 } }, out[3];
	uint8_t buf[32];
	size_t n = ipc__batch_size(in, 3);

	cr_assert_eq(n, 4 * 3 + 6);
	ipc__batch_put(buf, in, 3);
	cr_assert_eq(ipc__batch_decode(buf, n, 3, out), 0);
	cr_assert_eq(out[0].iov_len, 2);
	cr_assert_eq(memcmp(out[0].iov_base, "ab", 2), 0);
	cr_assert_eq(out[1].iov_len, 0);
	cr_assert_eq(out[2].iov_len, 4);
	cr_assert_eq(memcmp(out[2].iov_base, "cdef", 4), 0);
	cr_assert_eq((uint8_t *)out[2].iov_base + 4, buf + n, "in place");
	cr_assert_eq(ipc__batch_decode(buf, n, 2, out), -EPROTO, "bytes left");
	cr_assert_eq(ipc__batch_decode(buf, n - 1, 3, out), -EPROTO, "short");
	cr_assert_eq(ipc__batch_decode(buf, 2, 1, out), -EPROTO, "no length");
	cr_assert_eq(ipc__batch_decode(buf, n, 0, out), -EPROTO);
	cr_assert_eq(ipc__batch_decode(buf, n, IPC__NET_BATCH_MAX + 1, out),
		     -EPROTO);
	ipc__put_le32(buf, 0xfffffff0u); /* a length past the end */
	cr_assert_eq(ipc__batch_decode(buf, n, 3, out), -EPROTO);
	cr_assert_eq(ipc__op_kind(IPC__OP_Q_GET_MANY), IPC__NK_QUEUE);
	cr_assert_eq(ipc__op_kind(IPC__OP_Q_GET_MANY + 1), IPC__NK_EVENT);
	cr_assert_eq(ipc__op_kind(IPC__OP_EV_WAIT + 1), -1);
	cr_assert_eq(ipc__op_kind(IPC__OP_BAR_TIMEOUT), IPC__NK_BARRIER);
	cr_assert_eq(ipc__op_kind(IPC__OP_BAR_TIMEOUT + 1), -1);
	cr_assert_eq(ipc__op_kind(IPC__OP_LK_LOCKED), IPC__NK_LOCK);
	cr_assert_eq(ipc__op_kind(IPC__OP_LK_LOCKED + 1), -1);
	cr_assert_eq(ipc__op_kind(IPC__OP_SEM_RELEASE_N), IPC__NK_SEM);
	cr_assert_eq(ipc__op_kind(IPC__OP_SEM_RELEASE_N + 1), -1);
	cr_assert_eq(ipc__op_kind(4), -1);
	cr_assert_eq(ipc__op_kind(0), -1);
	cr_assert_eq(ipc__op_kind(65535), -1);
}
