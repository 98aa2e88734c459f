/* Frames: encoding, decoding in pieces of any size, and malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bounds.h"
#include "frame.h"

struct seen {
	char log[4096];
	size_t data;
};

static int
on_data(void *ctx, uint32_t stream, const uint8_t *p, size_t n)
{
	struct seen *s = ctx;

	s->data += n;
	return 0;
}

static int
on_control(void *ctx, uint8_t type, uint32_t stream, const uint8_t *p, size_t len)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof s->log - n, "%s:%u:%.*s;", frame_type_name(type),
	         stream, (int)len, (const char *)p);
	return 0;
}

static const struct frame_handlers handlers = { on_data, on_control };

static void
test_decode_in_any_pieces(void **state)
{
	static uint8_t data[70000];
	struct buf b;
	size_t step;

	buf_init(&b, 1 << 20);
	frame_append(&b, FRAME_BIND, 1, "name=a\n", 7);
	frame_append(&b, FRAME_DATA, 7, data, FRAME_PAYLOAD_MAX_BYTES);
	frame_append(&b, FRAME_FIN, 7, NULL, 0);
	frame_append(&b, FRAME_DATA, 9, NULL, 0);
	frame_append(&b, FRAME_RST, 9, "\0\2bye", 5);
	for (step = 1; step < 20000; step = step * 3 + 1) {
		struct frame_decoder d;
		struct seen s = { "", 0 };
		size_t off;

		frame_decoder_init(&d);
		for (off = 0; off < buf_len(&b); off += step) {
			size_t n = buf_len(&b) - off < step ? buf_len(&b) - off : step;
			assert_int_equal(frame_feed(&d, buf_data(&b) + off, n, &handlers, &s), 0);
		}
		assert_int_equal(s.data, FRAME_PAYLOAD_MAX_BYTES);
		assert_memory_equal(s.log, "BIND:1:name=a\n;FIN:7:;RST:9:", 28);
		frame_decoder_free(&d);
	}
	buf_free(&b);
}

static void
test_oversized_frames_refused(void **state)
{
	struct frame_decoder d;
	struct seen s = { "", 0 };
	uint8_t hdr[FRAME_HEADER_BYTES];

	frame_decoder_init(&d);
	frame_header(hdr, FRAME_DATA, 1, FRAME_PAYLOAD_MAX_BYTES + 1);
	assert_int_equal(frame_feed(&d, hdr, sizeof hdr, &handlers, &s), -1);
	assert_non_null(d.error);
	frame_decoder_free(&d);

	frame_decoder_init(&d);
	frame_header(hdr, FRAME_BIND, 1, FRAME_CONTROL_MAX_BYTES + 1);
	assert_int_equal(frame_feed(&d, hdr, sizeof hdr, &handlers, &s), -1);
	frame_decoder_free(&d);
}

static void
test_append_refuses_oversize(void **state)
{
	static uint8_t big[FRAME_PAYLOAD_MAX_BYTES + 1];
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(frame_append(&b, FRAME_DATA, 1, big, sizeof big), -1);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_in_any_pieces),
		cmocka_unit_test(test_oversized_frames_refused),
		cmocka_unit_test(test_append_refuses_oversize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
