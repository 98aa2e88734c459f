/*
 * The tunnel's frame decoder and the handshake payload decoders behind it,
 * on any bytes a peer might send, fed in pieces the fuzzer picks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "proto.h"

static int
on_data(void *ctx, uint32_t stream, const uint8_t *p, size_t n)
{
	return 0;
}

static int
on_control(void *ctx, uint8_t type, uint32_t stream, const uint8_t *p, size_t len)
{
	struct proto_challenge ch;
	struct proto_auth a;
	char value[PROTO_VALUE_BYTES], msg[PROTO_MESSAGE_BYTES], peer[PREAMBLE_MAX_BYTES + 1];
	char canon[PROTO_DIALED_BYTES], escaped[4 * PROTO_VALUE_BYTES + 1];
	size_t i;
	uint16_t code;
	uint32_t tunnel;

	switch (type) {
	case FRAME_CHALLENGE:
		/* a decoded challenge always names its server */
		if (proto_challenge_decode(p, len, &ch) == 0 && strlen(ch.server) == 0)
			abort();
		return 0;
	case FRAME_AUTH:
		/* a decoded AUTH names its server in the one canonical form */
		if (proto_auth_decode(p, len, &a) == 0 &&
		    (proto_dialed_parse(a.dialed, canon, sizeof canon) != 0 ||
		     strcmp(canon, a.dialed) != 0))
			abort();
		return 0;
	case FRAME_BIND:
	case FRAME_BOUND:
		if (proto_kv_check(p, len) == 0) {
			(void)proto_kv_get(p, len, "name", value, sizeof value);
			(void)proto_kv_get(p, len, "url", value, 16);
			/* what passes the check, and any value escaped, is printable */
			if (proto_kv_printable(p, len, value, sizeof value) == 0)
				for (i = 0; i < len; i++)
					if (p[i] != '\n' && (p[i] < 0x20 || p[i] > 0x7e))
						abort();
			if (proto_kv_get(p, len, "target", value, sizeof value) == 1) {
				proto_text_escape(value, escaped, sizeof escaped);
				for (i = 0; escaped[i]; i++)
					if (escaped[i] < 0x20 || escaped[i] > 0x7e)
						abort();
			}
		}
		return 0;
	case FRAME_ERROR:
	case FRAME_RST:
		if (proto_code_decode(p, len, &code, msg) == 0 && strnlen(msg, sizeof msg) == sizeof msg)
			abort();    /* the message is always terminated */
		return 0;
	case FRAME_OPEN:
		(void)proto_open_decode(p, len, &tunnel, peer, sizeof peer);
		return 0;
	default:
		return 0;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct frame_handlers h = { on_data, on_control };
	struct frame_decoder d;
	size_t step, off;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	data++;
	size--;
	frame_decoder_init(&d);
	for (off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		if (frame_feed(&d, data + off, n, &h, NULL) == -1)
			break;
	}
	frame_decoder_free(&d);
	return 0;
}
