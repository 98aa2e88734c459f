#include "proto.h"

#include <string.h>

#include "frame.h"

size_t
proto_challenge_encode(uint8_t *out, size_t cap, uint8_t version,
                       const uint8_t nonce[IDENTITY_NONCE_BYTES], const char *server)
{
	size_t slen = strlen(server), n = 1 + IDENTITY_NONCE_BYTES + slen;

	if (n > cap || slen >= PROTO_SERVER_BYTES)
		return 0;
	out[0] = version;
	memcpy(out + 1, nonce, IDENTITY_NONCE_BYTES);
	memcpy(out + 1 + IDENTITY_NONCE_BYTES, server, slen);
	return n;
}

int
proto_challenge_decode(const uint8_t *p, size_t len, struct proto_challenge *c)
{
	size_t slen, i;

	if (len < 1 + IDENTITY_NONCE_BYTES)
		return -1;
	slen = len - 1 - IDENTITY_NONCE_BYTES;
	if (slen == 0 || slen >= PROTO_SERVER_BYTES)
		return -1;
	c->version = p[0];
	memcpy(c->nonce, p + 1, IDENTITY_NONCE_BYTES);
	for (i = 0; i < slen; i++) {
		uint8_t ch = p[1 + IDENTITY_NONCE_BYTES + i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
			return -1;
		c->server[i] = (char)ch;
	}
	c->server[slen] = '\0';
	return 0;
}

int
proto_auth_decode(const uint8_t *p, size_t len, const uint8_t **pk, const uint8_t **sig)
{
	if (len != IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES)
		return -1;
	*pk = p;
	*sig = p + IDENTITY_PK_BYTES;
	return 0;
}

/* Walks the lines of a key=value payload; calls back for each. */
static int
kv_walk(const uint8_t *p, size_t len,
        int (*fn)(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen),
        void *ctx)
{
	size_t i = 0, start, eq, rc;

	if (memchr(p, '\0', len))
		return -1;
	while (i < len) {
		start = i;
		while (i < len && p[i] != '\n')
			i++;
		if (i == start) {
			i++;
			continue;     /* an empty line */
		}
		for (eq = start; eq < i && p[eq] != '='; eq++)
			;
		if (eq == i || eq == start)
			return -1;
		rc = (size_t)fn(ctx, p + start, eq - start, p + eq + 1, i - eq - 1);
		if (rc != 0)
			return (int)rc;
		i++;
	}
	return 0;
}

struct kv_find {
	const char *key;
	char *out;
	size_t size;
	int found;
};

static int
kv_match(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
	struct kv_find *f = ctx;

	if (vlen >= PROTO_VALUE_BYTES)
		return -1;
	if (klen != strlen(f->key) || memcmp(k, f->key, klen) != 0)
		return 0;
	if (vlen >= f->size)
		return -1;
	memcpy(f->out, v, vlen);
	f->out[vlen] = '\0';
	f->found = 1;
	return 0;
}

int
proto_kv_get(const uint8_t *p, size_t len, const char *key, char *out, size_t size)
{
	struct kv_find f = { key, out, size, 0 };

	if (size)
		out[0] = '\0';
	if (kv_walk(p, len, kv_match, &f) != 0)
		return -1;
	return f.found;
}

static int
kv_ok(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
	return vlen < PROTO_VALUE_BYTES ? 0 : -1;
}

int
proto_kv_check(const uint8_t *p, size_t len)
{
	return kv_walk(p, len, kv_ok, NULL) == 0 ? 0 : -1;
}

size_t
proto_code_encode(uint8_t *out, size_t cap, uint16_t code, const char *msg)
{
	size_t n = msg ? strlen(msg) : 0;

	if (cap < 2)
		return 0;
	if (n > cap - 2)
		n = cap - 2;
	if (n > PROTO_MESSAGE_BYTES - 1)
		n = PROTO_MESSAGE_BYTES - 1;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	if (n)
		memcpy(out + 2, msg, n);
	return 2 + n;
}

int
proto_code_decode(const uint8_t *p, size_t len, uint16_t *code, char msg[PROTO_MESSAGE_BYTES])
{
	size_t n, i;

	if (len < 2)
		return -1;
	*code = (uint16_t)(p[0] << 8 | p[1]);
	n = len - 2 < PROTO_MESSAGE_BYTES - 1 ? len - 2 : PROTO_MESSAGE_BYTES - 1;
	for (i = 0; i < n; i++)
		msg[i] = (p[2 + i] >= 0x20 && p[2 + i] < 0x7f) ? (char)p[2 + i] : '?';
	msg[n] = '\0';
	return 0;
}

int
proto_open_decode(const uint8_t *p, size_t len, uint32_t *tunnel, char *peer, size_t size)
{
	size_t n, i;

	if (len < 4 || len - 4 >= size)
		return -1;
	*tunnel = frame_get32(p);
	n = len - 4;
	for (i = 0; i < n; i++) {
		if (p[4 + i] < 0x20 || p[4 + i] >= 0x7f)
			return -1;
		peer[i] = (char)p[4 + i];
	}
	peer[n] = '\0';
	return 0;
}
