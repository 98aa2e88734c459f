#include "seal.h"

#include <stdlib.h>
#include <string.h>

int
seal_init(struct seal *s, enum seal_role role)
{
	memset(s, 0, sizeof *s);
	s->role = role;
	buf_init(&s->in, SEAL_RECORD_MAX);
	if ((s->plain = malloc(SEAL_PLAIN_MAX)) == NULL)
		return -1;
	crypto_kx_keypair(s->pk, s->sk);
	return 0;
}

void
seal_free(struct seal *s)
{
	buf_free(&s->in);
	free(s->plain);
	sodium_memzero(s, sizeof *s);
}

static void
nonce_of(uint64_t n, uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(n >> (8 * i));
}

size_t
seal_record(struct seal *s, const uint8_t *plain, size_t n, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;
	size_t c = n + SEAL_TAG_BYTES;

	out[0] = (uint8_t)(c >> 24);
	out[1] = (uint8_t)(c >> 16);
	out[2] = (uint8_t)(c >> 8);
	out[3] = (uint8_t)c;
	nonce_of(s->tx_n++, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_LEN_BYTES, &clen, plain, n,
	                                           NULL, 0, NULL, nonce, s->tx);
	return SEAL_LEN_BYTES + (size_t)clen;
}

/* The other side's key is all here: each direction's key from the two. */
static int
seal_keys(struct seal *s)
{
	int rc = s->role == SEAL_DIALER ?
	         crypto_kx_client_session_keys(s->rx, s->tx, s->pk, s->sk, s->their_pk) :
	         crypto_kx_server_session_keys(s->rx, s->tx, s->pk, s->sk, s->their_pk);

	sodium_memzero(s->sk, sizeof s->sk);
	s->ready = rc == 0;
	return rc == 0 ? 0 : -1;
}

/* The first whole record in s->in, opened and handed on: 1, 0 when it is
 * not all here, -1 with *why. */
static int
open_one(struct seal *s, int (*got)(void *, const uint8_t *, size_t), void *ctx,
         const char **why)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	const uint8_t *p = buf_data(&s->in);
	unsigned long long n;
	size_t c;

	if (buf_len(&s->in) < SEAL_LEN_BYTES)
		return 0;
	c = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (c < SEAL_TAG_BYTES || c > SEAL_PLAIN_MAX + SEAL_TAG_BYTES) {
		*why = "sealed record of an impossible length";
		return -1;
	}
	if (buf_len(&s->in) < SEAL_LEN_BYTES + c)
		return 0;
	nonce_of(s->rx_n++, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(s->plain, &n, NULL, p + SEAL_LEN_BYTES,
	                                               c, NULL, 0, nonce, s->rx) != 0) {
		*why = "sealed record does not open (changed, replayed or out of order)";
		return -1;
	}
	buf_consume(&s->in, SEAL_LEN_BYTES + c);
	if (got(ctx, s->plain, (size_t)n) == -1) {
		*why = NULL;
		return -1;
	}
	return 1;
}

int
seal_feed(struct seal *s, const uint8_t *in, size_t len,
          int (*got)(void *ctx, const uint8_t *plain, size_t n), void *ctx,
          const char **why)
{
	size_t take;
	int rc;

	*why = NULL;
	if (s->their_pk_len < SEAL_PK_BYTES) {
		take = SEAL_PK_BYTES - s->their_pk_len;
		take = take < len ? take : len;
		memcpy(s->their_pk + s->their_pk_len, in, take);
		s->their_pk_len += take;
		in += take;
		len -= take;
		if (s->their_pk_len == SEAL_PK_BYTES && seal_keys(s) == -1) {
			*why = "its key exchange key is not usable";
			return -1;
		}
	}
	while (len > 0) {
		take = buf_room(&s->in) < len ? buf_room(&s->in) : len;
		if (buf_append(&s->in, in, take) == -1) {
			*why = "out of memory";
			return -1;
		}
		in += take;
		len -= take;
		while ((rc = open_one(s, got, ctx, why)) == 1)
			;
		if (rc == -1)
			return -1;
	}
	return 0;
}
