#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
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

/* A byte of a host name or IPv4 address. */
static int
host_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
	       ch == '.';
}

int
proto_dialed_make(char *out, size_t size, int tls, const char *host, int port)
{
	char lower[PROTO_DIALED_BYTES];
	size_t i, n = strlen(host);
	int len;

	if (n == 0 || n >= sizeof lower || port < 1 || port > 65535)
		return -1;
	for (i = 0; i < n; i++) {
		lower[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
		if (!host_char((unsigned char)lower[i]))
			return -1;
	}
	lower[n] = '\0';
	len = snprintf(out, size, "%s://%s:%d", tls ? "wss" : "ws", lower, port);
	return len > 0 && (size_t)len < size && (size_t)len < PROTO_DIALED_BYTES ? 0 : -1;
}

int
proto_dialed_parse(const char *url, char *out, size_t size)
{
	char host[PROTO_DIALED_BYTES];
	const char *p;
	size_t hlen;
	long port;
	int tls;

	tls = strncmp(url, "wss://", 6) == 0;
	if (!tls && strncmp(url, "ws://", 5) != 0)
		return -1;
	p = url + (tls ? 6 : 5);
	port = tls ? 443 : 80;
	hlen = strcspn(p, ":/");
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	p += hlen;
	if (*p == ':') {
		char *e;
		if (p[1] < '0' || p[1] > '9')
			return -1;
		port = strtol(p + 1, &e, 10);
		if (port < 1 || port > 65535)
			return -1;
		p = e;
	}
	if (*p != '\0' && *p != '/')
		return -1;
	return proto_dialed_make(out, size, tls, host, (int)port);
}

size_t
proto_auth_encode(uint8_t *out, size_t cap, const uint8_t *pk, const uint8_t *sig,
                  const uint8_t *binding, const char *dialed)
{
	size_t dlen = strlen(dialed),
	       head = IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES + IDENTITY_BINDING_BYTES;

	if (dlen == 0 || dlen >= PROTO_DIALED_BYTES || head + dlen > cap)
		return 0;
	memcpy(out, pk, IDENTITY_PK_BYTES);
	memcpy(out + IDENTITY_PK_BYTES, sig, IDENTITY_SIG_BYTES);
	memcpy(out + IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES, binding, IDENTITY_BINDING_BYTES);
	memcpy(out + head, dialed, dlen);
	return head + dlen;
}

int
proto_auth_decode(const uint8_t *p, size_t len, struct proto_auth *a)
{
	size_t head = IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES + IDENTITY_BINDING_BYTES,
	       dlen;
	char canon[PROTO_DIALED_BYTES];

	if (len <= head || len - head >= PROTO_DIALED_BYTES)
		return -1;
	dlen = len - head;
	a->pk = p;
	a->sig = p + IDENTITY_PK_BYTES;
	a->binding = p + IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES;
	if (memchr(p + head, '\0', dlen))
		return -1;
	memcpy(a->dialed, p + head, dlen);
	a->dialed[dlen] = '\0';
	/* Only the canonical form: one server, one way to write it. */
	if (proto_dialed_parse(a->dialed, canon, sizeof canon) == -1 ||
	    strcmp(canon, a->dialed) != 0)
		return -1;
	return 0;
}

void
proto_text_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	unsigned char c;

	if (size == 0)
		return;
	for (; *in; in++) {
		c = (unsigned char)*in;
		if (c >= 0x20 && c <= 0x7e && c != '\\') {
			if (n + 1 >= size)
				break;
			out[n++] = (char)c;
			continue;
		}
		if (n + 4 >= size)
			break;
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 15];
	}
	out[n] = '\0';
}

int
proto_text_ok(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return 1;
}

void
proto_text_defang(char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
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

struct kv_bad {
	char *key;
	size_t size;
};

static int
kv_printable(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
	struct kv_bad *bad = ctx;
	char text[PROTO_VALUE_BYTES];
	size_t i;

	for (i = 0; i < klen + 1 + vlen; i++) {
		uint8_t c = k[i];    /* the key, '=', the value: one run of bytes */
		if (c < 0x20 || c > 0x7e) {
			snprintf(text, sizeof text, "%.*s", (int)(klen < 64 ? klen : 64),
			         (const char *)k);
			proto_text_escape(text, bad->key, bad->size);
			return 1;
		}
	}
	return 0;
}

int
proto_kv_printable(const uint8_t *p, size_t len, char *key, size_t size)
{
	struct kv_bad bad = { key, size };

	if (size)
		key[0] = '\0';
	return kv_walk(p, len, kv_printable, &bad) == 0 ? 0 : -1;
}
