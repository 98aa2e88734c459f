#include "wsclient.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "identity.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void
ws_init(struct ws *w)
{
	memset(w, 0, sizeof *w);
	buf_init(&w->response, WS_RESPONSE_MAX_BYTES);
	w->hdr_need = 2;
}

void
ws_free(struct ws *w)
{
	buf_free(&w->response);
}

int
ws_request(struct ws *w, const char *host, int port, const char *path,
           const char *subprotocol, char *out, size_t size)
{
	uint8_t nonce[16];
	int n;

	identity_random(nonce, sizeof nonce);
	EVP_EncodeBlock((unsigned char *)w->key, nonce, sizeof nonce);
	n = snprintf(out, size,
	             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
	             path, host, port, w->key, subprotocol);
	return n > 0 && (size_t)n < size ? n : -1;
}

/* The value of a header field in a response head (NUL-terminated), or NULL. */
static const char *
field(const char *head, const char *name, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1, *end = strstr(v, "\r\n");
			while (*v == ' ' || *v == '\t')
				v++;
			*len = (size_t)(end - v);
			while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
				(*len)--;
			return v;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

static bool
field_is(const char *head, const char *name, const char *want)
{
	size_t len;
	const char *v = field(head, name, &len);

	return v && len == strlen(want) && strncasecmp(v, want, len) == 0;
}

/* Whether the response's subprotocol is one of the offered list's. */
static bool
chosen_from(const char *head, const char *offered)
{
	size_t len, n;
	const char *v = field(head, "Sec-WebSocket-Protocol", &len), *p = offered;

	while (v && *p) {
		p += strspn(p, ", ");
		n = strcspn(p, ", ");
		if (n && n == len && strncasecmp(p, v, len) == 0)
			return true;
		p += n;
	}
	return false;
}

int
ws_response(struct ws *w, const uint8_t *p, size_t n, const char *subprotocol,
            size_t *used)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	char text[WS_RESPONSE_MAX_BYTES + 1], material[96], accept[32];
	const uint8_t *end;
	size_t before = buf_len(&w->response), head_len;
	unsigned int dlen;

	if (buf_append(&w->response, p, n) == -1) {
		w->error = "the server's answer to the upgrade is too long";
		return -1;
	}
	end = memmem(buf_data(&w->response), buf_len(&w->response), "\r\n\r\n", 4);
	if (end == NULL) {
		*used = n;
		return 0;
	}
	head_len = (size_t)(end - buf_data(&w->response)) + 4;
	*used = head_len - before;
	memcpy(text, buf_data(&w->response), head_len);
	text[head_len] = '\0';
	buf_free(&w->response);
	if (strncmp(text, "HTTP/1.1 101 ", 13) != 0) {
		w->error = strncmp(text, "HTTP/1.", 7) == 0 ?
		           "the server answered the upgrade with an error (is this an expose server?)" :
		           "the server does not speak HTTP (is this an expose server?)";
		return -1;
	}
	snprintf(material, sizeof material, "%s%s", w->key, WS_GUID);
	EVP_Digest(material, strlen(material), digest, &dlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)accept, digest, (int)dlen);
	if (!field_is(text, "Upgrade", "websocket") ||
	    !field_is(text, "Sec-WebSocket-Accept", accept)) {
		w->error = "the server's upgrade answer does not prove the handshake";
		return -1;
	}
	if (!chosen_from(text, subprotocol)) {
		w->error = "the server does not speak this client's protocol version";
		return -1;
	}
	w->open = true;
	return 1;
}

void
ws_mask(uint8_t *p, size_t n, const uint8_t key[4])
{
	uint64_t k8, v;
	size_t i = 0;

	memcpy(&k8, key, 4);
	memcpy((uint8_t *)&k8 + 4, key, 4);
	for (; i + 8 <= n; i += 8) {
		memcpy(&v, p + i, 8);
		v ^= k8;
		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] ^= key[i & 3];
}

/*
 * Masking keys must be unpredictable to whoever supplies the payload (RFC
 * 6455 section 10.3), but need not cost a system call each: they come
 * from a ChaCha20 keystream (libsodium's deterministic generator) seeded
 * once from the kernel.  Each refill also yields the next seed and the
 * used one is overwritten, so keys already sent cannot be recomputed from
 * memory.  (The client never forks, so no two processes share a stream.)
 */
#define MASK_KEYS_PER_REFILL 64

static struct {
	uint8_t seed[randombytes_SEEDBYTES];
	uint8_t keys[4 * MASK_KEYS_PER_REFILL];
	size_t next;
	bool seeded;
} masks;

static void
mask_key(uint8_t key[4])
{
	if (!masks.seeded || masks.next == sizeof masks.keys) {
		uint8_t out[sizeof masks.keys + randombytes_SEEDBYTES];

		if (!masks.seeded) {
			identity_random(masks.seed, sizeof masks.seed);
			masks.seeded = true;
		}
		randombytes_buf_deterministic(out, sizeof out, masks.seed);
		memcpy(masks.keys, out, sizeof masks.keys);
		memcpy(masks.seed, out + sizeof masks.keys, sizeof masks.seed);
		sodium_memzero(out, sizeof out);
		masks.next = 0;
	}
	memcpy(key, masks.keys + masks.next, 4);
	masks.next += 4;
}

uint8_t *
ws_frame(uint8_t *payload, size_t len, enum ws_opcode op, size_t *frame_len)
{
	uint8_t key[4], *h;
	size_t hlen;

	mask_key(key);
	ws_mask(payload, len, key);
	hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
	h = payload - hlen - 4;
	h[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		h[1] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
	} else {
		int i;
		h[1] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(h + hlen, key, 4);
	*frame_len = hlen + 4 + len;
	return h;
}

static int
fail(struct ws *w, const char *why)
{
	w->error = why;
	return -1;
}

/* A complete header: what kind of frame, how long. */
static int
frame_start(struct ws *w)
{
	uint8_t b0 = w->hdr[0], b1 = w->hdr[1];
	uint64_t len = b1 & 0x7f;
	int i;

	if (b0 & 0x70)
		return fail(w, "a frame with reserved bits set");
	if (b1 & 0x80)
		return fail(w, "a masked frame from the server");
	if (len == 126 && w->hdr_len < 4) {
		w->hdr_need = 4;
		return 0;
	}
	if (len == 127 && w->hdr_len < 10) {
		w->hdr_need = 10;
		return 0;
	}
	if (len == 126)
		len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
	else if (len == 127)
		for (len = 0, i = 0; i < 8; i++)
			len = len << 8 | w->hdr[2 + i];
	w->opcode = b0 & 0x0f;
	w->fin = (b0 & 0x80) != 0;
	w->remaining = len;
	w->hdr_len = 0;
	w->hdr_need = 2;
	w->control_len = 0;
	if (w->opcode >= WS_CLOSE) {
		if (w->opcode > WS_PONG)
			return fail(w, "a frame with an unknown opcode");
		if (!w->fin || len > WS_CONTROL_MAX_BYTES)
			return fail(w, "a malformed control frame");
		return 1;
	}
	if (w->opcode == WS_TEXT)
		return fail(w, "a text frame (the tunnel speaks binary)");
	if (w->opcode != WS_BINARY && w->opcode != WS_CONTINUATION)
		return fail(w, "a frame with an unknown opcode");
	if ((w->opcode == WS_CONTINUATION) != w->in_message)
		return fail(w, "a continuation frame out of place");
	w->in_message = !w->fin;
	return 1;
}

int
ws_feed(struct ws *w, const uint8_t *p, size_t n, const struct ws_handlers *h, void *ctx)
{
	size_t take;
	int rc;

	while (n > 0) {
		if (w->remaining == 0 && w->hdr_len < w->hdr_need) {
			take = w->hdr_need - w->hdr_len;
			if (take > n)
				take = n;
			memcpy(w->hdr + w->hdr_len, p, take);
			w->hdr_len += take;
			p += take;
			n -= take;
			if (w->hdr_len < w->hdr_need)
				return 0;
			rc = frame_start(w);
			if (rc == -1)
				return -1;
			if (rc == 0)
				continue;
			if (w->remaining > 0)
				continue;
			/* an empty frame */
			if (w->opcode >= WS_CLOSE && h->control(ctx, w->opcode, w->control, 0) == -1)
				return fail(w, w->error ? w->error : "refused");
			continue;
		}
		take = w->remaining < n ? (size_t)w->remaining : n;
		if (w->opcode >= WS_CLOSE) {
			memcpy(w->control + w->control_len, p, take);
			w->control_len += take;
		} else if (take && h->data(ctx, p, take) == -1) {
			return fail(w, w->error ? w->error : "refused");
		}
		p += take;
		n -= take;
		w->remaining -= take;
		if (w->remaining == 0 && w->opcode >= WS_CLOSE &&
		    h->control(ctx, w->opcode, w->control, w->control_len) == -1)
			return fail(w, w->error ? w->error : "refused");
	}
	return 0;
}
