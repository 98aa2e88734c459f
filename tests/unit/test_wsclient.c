/* The client's websocket: masking, frame headers, and the server's frames
 * fed in pieces of any size, malformed ones refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "wsclient.h"

#define BIG_BYTES 70000    /* needs the 8-byte length */

struct seen {
	uint8_t data[BIG_BYTES * 2];
	size_t data_len;
	char log[512];
};

static int
on_data(void *ctx, const uint8_t *p, size_t n)
{
	struct seen *s = ctx;

	assert_true(s->data_len + n <= sizeof s->data);
	memcpy(s->data + s->data_len, p, n);
	s->data_len += n;
	return 0;
}

static int
on_control(void *ctx, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct seen *s = ctx;
	size_t used = strlen(s->log);

	assert_non_null(p);    /* even for an empty payload */
	snprintf(s->log + used, sizeof s->log - used, "%x:%.*s;", op, (int)n, (const char *)p);
	return 0;
}

static const struct ws_handlers handlers = { on_data, on_control };

/* A server frame (unmasked) of len bytes of payload. */
static size_t
server_frame(uint8_t *out, uint8_t b0, const uint8_t *payload, size_t len)
{
	size_t h = 2;
	int i;

	out[0] = b0;
	if (len < 126) {
		out[1] = (uint8_t)len;
	} else if (len < 65536) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		h = 4;
	} else {
		out[1] = 127;
		for (i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	if (len > 0)
		memcpy(out + h, payload, len);
	return h + len;
}

static void
mask_matches_bytewise(void **state)
{
	const uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
	uint8_t a[67], b[67];
	size_t n, i;

	for (n = 0; n <= sizeof a; n++) {
		for (i = 0; i < n; i++)
			a[i] = b[i] = (uint8_t)(i * 7 + n);
		ws_mask(a, n, key);
		for (i = 0; i < n; i++)
			assert_int_equal(a[i], (uint8_t)(b[i] ^ key[i % 4]));
	}
}

static void
frame_header_lengths(void **state)
{
	static uint8_t buf[WS_HEADER_MAX_BYTES + BIG_BYTES];
	const size_t lens[] = { 0, 125, 126, 65535, 65536, BIG_BYTES };
	const size_t heads[] = { 6, 6, 8, 8, 14, 14 };
	size_t i, flen;

	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint8_t *payload = buf + WS_HEADER_MAX_BYTES;
		uint8_t *f = ws_frame(payload, lens[i], WS_BINARY, &flen);
		assert_int_equal(flen, heads[i] + lens[i]);
		assert_ptr_equal(f + heads[i], payload);
		assert_int_equal(f[0], 0x82);
		assert_true(f[1] & 0x80);    /* masked, as a client must */
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Every frame gets a key of its own, also across the generator's refills:
 * among 10,000 frames, 32-bit keys drawn at random repeat about 0.01 times. */
#define KEY_FRAMES 10000
static void
masking_keys_do_not_repeat(void **state)
{
	static uint32_t keys[KEY_FRAMES];
	uint8_t buf[WS_HEADER_MAX_BYTES + 8];
	size_t i, flen, repeats = 0;

	for (i = 0; i < KEY_FRAMES; i++) {
		uint8_t *f = ws_frame(buf + WS_HEADER_MAX_BYTES, 8, WS_BINARY, &flen);
		assert_int_equal(flen, 6 + 8);
		memcpy(&keys[i], f + 2, 4);
	}
	qsort(keys, KEY_FRAMES, sizeof keys[0], cmp_u32);
	for (i = 1; i < KEY_FRAMES; i++)
		repeats += keys[i] == keys[i - 1];
	assert_true(repeats <= 2);
}

/* The same stream of frames split at every offset gives the same result. */
static void
frames_in_any_pieces(void **state)
{
	static uint8_t stream[BIG_BYTES + 512], payload[BIG_BYTES];
	static struct seen whole, split;
	size_t n = 0, cut, i;
	struct ws w;

	for (i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 31);
	n += server_frame(stream + n, 0x02, payload, 300);           /* binary, not final */
	n += server_frame(stream + n, 0x89, NULL, 0);                /* empty ping between */
	n += server_frame(stream + n, 0x80, payload + 300, 100);     /* continuation, final */
	n += server_frame(stream + n, 0x89, (const uint8_t *)"hi", 2);
	n += server_frame(stream + n, 0x82, payload, sizeof payload);
	n += server_frame(stream + n, 0x8a, NULL, 0);                /* pong */

	memset(&whole, 0, sizeof whole);
	ws_init(&w);
	assert_int_equal(ws_feed(&w, stream, n, &handlers, &whole), 0);
	ws_free(&w);
	assert_int_equal(whole.data_len, 400 + sizeof payload);
	assert_memory_equal(whole.data, payload, 400);
	assert_memory_equal(whole.data + 400, payload, sizeof payload);
	assert_string_equal(whole.log, "9:;9:hi;a:;");

	for (cut = 1; cut < n; cut += cut < 64 ? 1 : 997) {
		memset(&split, 0, sizeof split);
		ws_init(&w);
		assert_int_equal(ws_feed(&w, stream, cut, &handlers, &split), 0);
		assert_int_equal(ws_feed(&w, stream + cut, n - cut, &handlers, &split), 0);
		ws_free(&w);
		assert_int_equal(split.data_len, whole.data_len);
		assert_memory_equal(split.data, whole.data, whole.data_len);
		assert_string_equal(split.log, whole.log);
	}
}

static void
refuses(const uint8_t *frame, size_t n, const char *why)
{
	struct seen s;
	struct ws w;

	memset(&s, 0, sizeof s);
	ws_init(&w);
	assert_int_equal(ws_feed(&w, frame, n, &handlers, &s), -1);
	assert_non_null(w.error);
	assert_string_equal(w.error, why);
	ws_free(&w);
}

static void
malformed_frames_refused(void **state)
{
	uint8_t f[200], big[126] = { 0 };

	refuses((const uint8_t[]){ 0x82, 0x81, 1, 2, 3, 4, 0 }, 7,
	        "a masked frame from the server");
	refuses((const uint8_t[]){ 0xc2, 0x00 }, 2, "a frame with reserved bits set");
	refuses((const uint8_t[]){ 0x81, 0x00 }, 2, "a text frame (the tunnel speaks binary)");
	refuses((const uint8_t[]){ 0x83, 0x00 }, 2, "a frame with an unknown opcode");
	refuses((const uint8_t[]){ 0x8b, 0x00 }, 2, "a frame with an unknown opcode");
	refuses((const uint8_t[]){ 0x09, 0x00 }, 2, "a malformed control frame");
	refuses((const uint8_t[]){ 0x80, 0x00 }, 2, "a continuation frame out of place");
	refuses(f, server_frame(f, 0x89, big, sizeof big), "a malformed control frame");
	refuses((const uint8_t[]){ 0x02, 0x00, 0x82, 0x00 }, 4,
	        "a continuation frame out of place");
}

/* The upgrade answered with the subprotocol chosen; what ws_response says. */
static int
answer_choosing(const char *chosen)
{
	static const char offered[] = "expose.2, expose.1";
	char req[512], resp[512], material[96], accept[32];
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	size_t used;
	struct ws w;
	int rc;

	ws_init(&w);
	assert_true(ws_request(&w, "h", 1, "/", offered, req, sizeof req) > 0);
	assert_non_null(strstr(req, "\r\nSec-WebSocket-Protocol: expose.2, expose.1\r\n"));
	snprintf(material, sizeof material, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", w.key);
	EVP_Digest(material, strlen(material), digest, &dlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)accept, digest, (int)dlen);
	snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
	         "Sec-WebSocket-Protocol: %s\r\n\r\n", accept, chosen);
	rc = ws_response(&w, (const uint8_t *)resp, strlen(resp), offered, &used);
	ws_free(&w);
	return rc;
}

static void
server_must_choose_an_offered_subprotocol(void **state)
{
	assert_int_equal(answer_choosing("expose.2"), 1);
	assert_int_equal(answer_choosing("expose.1"), 1);
	assert_int_equal(answer_choosing("expose.3"), -1);
	assert_int_equal(answer_choosing("expose"), -1);
	assert_int_equal(answer_choosing("expose.2, expose.1"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mask_matches_bytewise),
		cmocka_unit_test(frame_header_lengths),
		cmocka_unit_test(masking_keys_do_not_repeat),
		cmocka_unit_test(frames_in_any_pieces),
		cmocka_unit_test(malformed_frames_refused),
		cmocka_unit_test(server_must_choose_an_offered_subprotocol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
