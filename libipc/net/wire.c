/* SPDX-License-Identifier: MIT */
/*
 * wire.c — the frame codec.
 *
 * Everything a peer sends is untrusted: a decoder here never reads a byte
 * that it has not first proved present, never believes a length field that
 * disagrees with the bytes received, and turns every malformed input into
 * -EPROTO. Integers are little-endian and read byte by byte, so alignment
 * and host byte order never matter. The layouts are in docs/protocol.md;
 * fuzz/fuzz_wire.c feeds this file random bytes.
 */
#include <errno.h>
#include <string.h>

#include "libipc/net/net.h"

void ipc__frame_put_header(uint8_t *out, const struct ipc__frame *f)
{
	ipc__put_le32(out, IPC__NET_MAGIC);
	out[4] = IPC__NET_VERSION;
	out[5] = f->type;
	out[6] = (uint8_t)f->flags;
	out[7] = (uint8_t)(f->flags >> 8);
	ipc__put_le32(out + 8, f->len);
	ipc__put_le32(out + 12, 0);
	ipc__put_le64(out + 16, f->sid);
	ipc__put_le64(out + 24, f->seq);
}

int ipc__frame_decode(const uint8_t *buf, size_t len, struct ipc__frame *f)
{
	uint32_t plen;

	if (buf == NULL || len < IPC__NET_HDR || len > IPC__NET_MAX_FRAME)
		return -EPROTO;
	if (ipc__get_le32(buf) != IPC__NET_MAGIC || buf[4] != IPC__NET_VERSION)
		return -EPROTO;
	if (buf[5] < IPC__F_HELLO || buf[5] > IPC__F_NOSESSION)
		return -EPROTO;
	f->type = buf[5];
	f->flags = (uint16_t)(buf[6] | buf[7] << 8);
	if (f->flags & ~IPC__FF_SEALED)
		return -EPROTO;
	plen = ipc__get_le32(buf + 8);
	if (ipc__get_le32(buf + 12) != 0 || plen != len - IPC__NET_HDR)
		return -EPROTO;
	f->sid = ipc__get_le64(buf + 16);
	f->seq = ipc__get_le64(buf + 24);
	f->payload = buf + IPC__NET_HDR;
	f->len = plen;
	/* Only bodies may be sealed; handshake frames are plaintext. */
	if ((f->flags & IPC__FF_SEALED) && f->type != IPC__F_REQ &&
	    f->type != IPC__F_REP)
		return -EPROTO;
	return 0;
}

int ipc__op_kind(uint16_t op)
{
	/* The last op of each kind's block of ten. */
	static const uint16_t last[] = {
		[0] = IPC__OP_CLOSE,
		[IPC__NK_QUEUE] = IPC__OP_Q_GET_MANY,
		[IPC__NK_EVENT] = IPC__OP_EV_WAIT,
		[IPC__NK_LOCK] = IPC__OP_LK_LOCKED,
		[IPC__NK_SEM] = IPC__OP_SEM_RELEASE_N,
		[IPC__NK_BARRIER] = IPC__OP_BAR_TIMEOUT,
	};
	unsigned kind = op / 10u;

	if (op == 0 || kind > IPC__NK_LAST || op > last[kind])
		return -1;
	return (int)kind;
}

void ipc__body_put(uint8_t *out, const struct ipc__body *b)
{
	out[0] = (uint8_t)b->op;
	out[1] = (uint8_t)(b->op >> 8);
	out[2] = (uint8_t)b->flags;
	out[3] = (uint8_t)(b->flags >> 8);
	ipc__put_le32(out + 4, (uint32_t)b->arg);
	ipc__put_le64(out + 8, (uint64_t)b->val);
}

int ipc__body_decode(const uint8_t *p, size_t plen, struct ipc__body *b)
{
	if (p == NULL || plen < IPC__NET_BODY_HDR ||
	    plen - IPC__NET_BODY_HDR > IPC__NET_MAX_MSG)
		return -EPROTO;
	b->op = (uint16_t)(p[0] | p[1] << 8);
	b->flags = (uint16_t)(p[2] | p[3] << 8);
	if (ipc__op_kind(b->op) < 0)
		return -EPROTO;
	if ((b->flags >> IPC__BF_LOST_RUN_SHIFT) != 0 &&
	    !(b->flags & IPC__BF_PREV_LOST))
		return -EPROTO;
	b->arg = (int32_t)ipc__get_le32(p + 4);
	b->val = (int64_t)ipc__get_le64(p + 8);
	b->data = p + IPC__NET_BODY_HDR;
	b->len = (uint32_t)(plen - IPC__NET_BODY_HDR);
	return 0;
}

size_t ipc__batch_size(const struct iovec *msgs, size_t n)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += 4 + msgs[i].iov_len;
	return bytes;
}

void ipc__batch_put(uint8_t *out, const struct iovec *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ipc__put_le32(out, (uint32_t)msgs[i].iov_len);
		if (msgs[i].iov_len > 0)
			memcpy(out + 4, msgs[i].iov_base, msgs[i].iov_len);
		out += 4 + msgs[i].iov_len;
	}
}

int ipc__batch_decode(const uint8_t *data, size_t len, size_t n,
		      struct iovec *out)
{
	size_t off = 0;

	if (n == 0 || n > IPC__NET_BATCH_MAX || (data == NULL && len > 0))
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		size_t m;
		if (len - off < 4)
			return -EPROTO;
		m = ipc__get_le32(data + off);
		off += 4;
		if (m > len - off)
			return -EPROTO;
		out[i].iov_base = (void *)(uintptr_t)(data + off);
		out[i].iov_len = m;
		off += m;
	}
	return off == len ? 0 : -EPROTO;
}

size_t ipc__hello_put(uint8_t *out, const struct ipc__hello *h)
{
	size_t n = strlen(h->name);

	memcpy(out, h->client_id, IPC__NET_ID);
	memcpy(out + IPC__NET_ID, h->nonce, IPC__NET_NONCE);
	out[IPC__NET_ID + IPC__NET_NONCE] = h->kind;
	out[IPC__NET_ID + IPC__NET_NONCE + 1] = h->keyed;
	out[IPC__NET_ID + IPC__NET_NONCE + 2] = (uint8_t)n;
	out[IPC__NET_ID + IPC__NET_NONCE + 3] = 0;
	memcpy(out + IPC__HELLO_FIXED, h->name, n);
	return IPC__HELLO_FIXED + n;
}

static bool name_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	       c == '/';
}

int ipc__hello_decode(const uint8_t *p, size_t len, struct ipc__hello *h)
{
	size_t n;

	if (p == NULL || len < IPC__HELLO_FIXED)
		return -EPROTO;
	n = p[IPC__NET_ID + IPC__NET_NONCE + 2];
	if (n == 0 || n > IPC__NET_NAME_MAX || len != IPC__HELLO_FIXED + n ||
	    p[IPC__NET_ID + IPC__NET_NONCE + 3] != 0)
		return -EPROTO;
	memcpy(h->client_id, p, IPC__NET_ID);
	memcpy(h->nonce, p + IPC__NET_ID, IPC__NET_NONCE);
	h->kind = p[IPC__NET_ID + IPC__NET_NONCE];
	h->keyed = p[IPC__NET_ID + IPC__NET_NONCE + 1];
	if (h->kind < IPC__NK_QUEUE || h->kind > IPC__NK_LAST || h->keyed > 1)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (!name_char_ok(p[IPC__HELLO_FIXED + i]))
			return -EPROTO;
		h->name[i] = (char)p[IPC__HELLO_FIXED + i];
	}
	h->name[n] = '\0';
	return 0;
}
