/* SPDX-License-Identifier: MIT */
/*
 * auth.c — keys, the handshake proofs and per-frame sealing, all libsodium.
 *
 * No cryptography is written here, only composed:
 *   master   = BLAKE2b-256(authkey)                    crypto_generichash
 *   auth key = KDF(master, id 1, "ipcnet01")           crypto_kdf
 *   proof    = HMAC-SHA512-256(auth key, side | client id | nonce_c |
 *              nonce_s | sid)                          crypto_auth
 *   c2s|s2c  = BLAKE2b-512 keyed by master over (client id | nonce_c |
 *              nonce_s | sid)                          crypto_generichash
 *   frame    = XChaCha20-Poly1305(key of the direction, nonce = dir | sid |
 *              seq, associated data = the 32-byte header)
 * Fresh random nonces from both sides make every session's keys new, so a
 * frame recorded from one session means nothing in another; inside a
 * session the sequence number in the nonce and the server's dedupe window
 * (server.c) make a replayed frame either a no-op resend of the latest
 * request or a rejected stale one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nanomsg/nn.h>
#include <sodium.h>

#include "libipc/net/net.h"

int ipc__keys_init(struct ipc__keys *k, const void *authkey, size_t len)
{
	memset(k, 0, sizeof(*k));
	if (sodium_init() < 0)
		return -ENOMEM;
	if (len == 0)
		return 0;
	k->keyed = true;
	crypto_generichash(k->master, sizeof(k->master), authkey, len, NULL, 0);
	crypto_kdf_derive_from_key(k->auth, sizeof(k->auth), 1, "ipcnet01",
				   k->master);
	return 0;
}

void ipc__keys_wipe(struct ipc__keys *k)
{
	sodium_memzero(k, sizeof(*k));
}

void ipc__random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

static void proof_input(crypto_auth_hmacsha512256_state *st, char side,
			const uint8_t *client_id, const uint8_t *nonce_c,
			const uint8_t *nonce_s, uint64_t sid)
{
	uint8_t s = (uint8_t)side, sidb[8];

	ipc__put_le64(sidb, sid);
	crypto_auth_hmacsha512256_update(st, &s, 1);
	crypto_auth_hmacsha512256_update(st, client_id, IPC__NET_ID);
	crypto_auth_hmacsha512256_update(st, nonce_c, IPC__NET_NONCE);
	crypto_auth_hmacsha512256_update(st, nonce_s, IPC__NET_NONCE);
	crypto_auth_hmacsha512256_update(st, sidb, sizeof(sidb));
}

void ipc__proof(uint8_t out[IPC__NET_PROOF], const struct ipc__keys *k,
		char side, const uint8_t *client_id, const uint8_t *nonce_c,
		const uint8_t *nonce_s, uint64_t sid)
{
	crypto_auth_hmacsha512256_state st;

	crypto_auth_hmacsha512256_init(&st, k->auth, sizeof(k->auth));
	proof_input(&st, side, client_id, nonce_c, nonce_s, sid);
	crypto_auth_hmacsha512256_final(&st, out);
}

int ipc__proof_check(const uint8_t proof[IPC__NET_PROOF],
		     const struct ipc__keys *k, char side,
		     const uint8_t *client_id, const uint8_t *nonce_c,
		     const uint8_t *nonce_s, uint64_t sid)
{
	uint8_t want[IPC__NET_PROOF];
	int rc;

	ipc__proof(want, k, side, client_id, nonce_c, nonce_s, sid);
	rc = sodium_memcmp(want, proof, IPC__NET_PROOF) == 0 ? 0 : IPC_EAUTH;
	sodium_memzero(want, sizeof(want));
	return rc;
}

void ipc__session_keys(struct ipc__session_keys *sk, const struct ipc__keys *k,
		       const uint8_t *client_id, const uint8_t *nonce_c,
		       const uint8_t *nonce_s, uint64_t sid)
{
	crypto_generichash_state st;
	uint8_t out[64], sidb[8];

	ipc__put_le64(sidb, sid);
	crypto_generichash_init(&st, k->master, sizeof(k->master), sizeof(out));
	crypto_generichash_update(&st, client_id, IPC__NET_ID);
	crypto_generichash_update(&st, nonce_c, IPC__NET_NONCE);
	crypto_generichash_update(&st, nonce_s, IPC__NET_NONCE);
	crypto_generichash_update(&st, sidb, sizeof(sidb));
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(sk->c2s, out, 32);
	memcpy(sk->s2c, out + 32, 32);
	sodium_memzero(out, sizeof(out));
}

static void frame_nonce(uint8_t n[24], enum ipc__dir dir, uint64_t sid,
			uint64_t seq)
{
	memset(n, 0, 24);
	n[0] = (uint8_t)dir;
	ipc__put_le64(n + 8, sid);
	ipc__put_le64(n + 16, seq);
}

int ipc__frame_build(uint8_t **out, size_t *outlen, uint8_t type,
		     const uint8_t *key, enum ipc__dir dir, uint64_t sid,
		     uint64_t seq, const struct ipc__body *b)
{
	size_t plain_len = IPC__NET_BODY_HDR + b->len;
	size_t payload = plain_len + (key ? IPC__NET_TAG : 0);
	struct ipc__frame f = { .type = type,
				.flags = key ? IPC__FF_SEALED : 0,
				.sid = sid,
				.seq = seq,
				.len = (uint32_t)payload };
	uint8_t *buf, *plain;

	*out = NULL;
	if (b->len > IPC__NET_MAX_MSG)
		return -EMSGSIZE;
	buf = malloc(IPC__NET_HDR + payload);
	if (buf == NULL)
		return -ENOMEM;
	ipc__frame_put_header(buf, &f);
	plain = key ? malloc(plain_len) : buf + IPC__NET_HDR;
	if (plain == NULL) {
		free(buf);
		return -ENOMEM;
	}
	ipc__body_put(plain, b);
	if (b->len > 0)
		memcpy(plain + IPC__NET_BODY_HDR, b->data, b->len);
	if (key != NULL) {
		uint8_t nonce[24];
		unsigned long long clen;
		frame_nonce(nonce, dir, sid, seq);
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			buf + IPC__NET_HDR, &clen, plain, plain_len, buf,
			IPC__NET_HDR, NULL, nonce, key);
		free(plain);
	}
	*out = buf;
	*outlen = IPC__NET_HDR + payload;
	return 0;
}

int ipc__frame_open(const struct ipc__frame *f, const uint8_t *raw,
		    const uint8_t *key, enum ipc__dir dir, uint8_t **plain,
		    struct ipc__body *b)
{
	bool sealed = (f->flags & IPC__FF_SEALED) != 0;
	size_t plen;
	uint8_t *p;
	int rc;

	*plain = NULL;
	if (sealed != (key != NULL))
		return IPC_EAUTH;
	if (sealed && f->len < IPC__NET_TAG)
		return -EPROTO;
	plen = sealed ? f->len - IPC__NET_TAG : f->len;
	p = malloc(plen ? plen : 1);
	if (p == NULL)
		return -ENOMEM;
	if (sealed) {
		uint8_t nonce[24];
		unsigned long long mlen;
		frame_nonce(nonce, dir, f->sid, f->seq);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(
			    p, &mlen, NULL, f->payload, f->len, raw,
			    IPC__NET_HDR, nonce, key) != 0) {
			free(p);
			return IPC_EAUTH;
		}
	} else {
		memcpy(p, f->payload, plen);
	}
	rc = ipc__body_decode(p, plen, b);
	if (rc != 0) {
		free(p);
		return rc;
	}
	*plain = p;
	return 0;
}

int ipc__nn_error(int err)
{
	switch (err) {
	case ETIMEDOUT:
	case EAGAIN:
		return -ETIMEDOUT;
	case ECONNREFUSED:
		return -ECONNREFUSED;
	case ENOMEM:
		return -ENOMEM;
	case EINVAL:
	case EPROTONOSUPPORT:
	case EADDRNOTAVAIL:
	case ENODEV:
	case ENAMETOOLONG:
		return -EINVAL;
	case EADDRINUSE:
		return -EBUSY;
	case EACCES:
		return -EACCES;
	default:
		return -EPROTO;
	}
}

int64_t ipc__net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
