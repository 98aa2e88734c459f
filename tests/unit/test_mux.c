/* Streams over one websocket: credit bounds what is sent, WINDOW frames
 * return it, FIN follows the data, and streams take turns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bounds.h"
#include "frame.h"
#include "mux.h"

static uint8_t msg[MESSAGE_MAX_BYTES];

struct tally {
	size_t data[4];
	int fins[4];
	uint32_t window[4];
	uint32_t order[64];
	int norder;
};

static int
on_data(void *ctx, uint32_t stream, const uint8_t *p, size_t n)
{
	struct tally *t = ctx;

	t->data[stream] += n;
	if (t->norder < 64)
		t->order[t->norder++] = stream;
	return 0;
}

static int
on_control(void *ctx, uint8_t type, uint32_t stream, const uint8_t *p, size_t len)
{
	struct tally *t = ctx;

	if (type == FRAME_FIN)
		t->fins[stream]++;
	if (type == FRAME_WINDOW)
		t->window[stream] += frame_get32(p);
	return 0;
}

static const struct frame_handlers handlers = { on_data, on_control };

/* Drains everything the mux will send now into a tally. */
static void
drain(struct mux *m, struct tally *t)
{
	struct frame_decoder d;
	size_t n;

	frame_decoder_init(&d);
	while ((n = mux_fill(m, msg, sizeof msg)) > 0)
		assert_int_equal(frame_feed(&d, msg, n, &handlers, t), 0);
	frame_decoder_free(&d);
}

static void
test_credit_bounds_sending(void **state)
{
	static uint8_t data[STREAM_WINDOW_BYTES + FRAME_PAYLOAD_MAX_BYTES];
	struct mux m;
	struct mux_stream s;
	struct tally t = { 0 };

	mux_init(&m);
	mux_stream_init(&m, &s, 1);
	assert_int_equal(mux_stream_want(&s), STREAM_WINDOW_BYTES);
	assert_int_equal(mux_stream_send(&s, data, sizeof data), 0);
	assert_int_equal(mux_stream_want(&s), 0);
	drain(&m, &t);
	assert_int_equal(t.data[1], STREAM_WINDOW_BYTES);   /* no more than the credit */
	assert_false(mux_pending(&m));
	assert_int_equal(mux_stream_window(&s, FRAME_PAYLOAD_MAX_BYTES), 0);
	drain(&m, &t);
	assert_int_equal(t.data[1], sizeof data);
	/* More credit than a window is a protocol error. */
	assert_int_equal(mux_stream_window(&s, STREAM_WINDOW_BYTES + 1), -1);
	mux_stream_free(&s);
	mux_free(&m);
}

static void
test_receiver_grants_credit_as_it_drains(void **state)
{
	static uint8_t data[STREAM_WINDOW_BYTES];
	struct mux m;
	struct mux_stream s;
	struct tally t = { 0 };

	mux_init(&m);
	mux_stream_init(&m, &s, 2);
	assert_int_equal(mux_stream_recv(&s, data, STREAM_WINDOW_BYTES), 0);
	assert_int_equal(mux_stream_recv(&s, data, 1), -1);   /* past the credit */
	mux_stream_drained(&s, STREAM_WINDOW_UPDATE_BYTES - 1);
	drain(&m, &t);
	assert_int_equal(t.window[2], 0);
	mux_stream_drained(&s, 1);
	drain(&m, &t);
	assert_int_equal(t.window[2], STREAM_WINDOW_UPDATE_BYTES);
	mux_stream_free(&s);
	mux_free(&m);
}

static void
test_fin_follows_data(void **state)
{
	struct mux m;
	struct mux_stream s;
	struct tally t = { 0 };

	mux_init(&m);
	mux_stream_init(&m, &s, 3);
	mux_stream_send(&s, "abc", 3);
	mux_stream_fin(&s);
	assert_int_equal(mux_stream_want(&s), 0);
	drain(&m, &t);
	assert_int_equal(t.data[3], 3);
	assert_int_equal(t.fins[3], 1);
	assert_true(s.fin_sent);
	mux_stream_free(&s);
	mux_free(&m);
}

static void
test_streams_take_turns(void **state)
{
	static uint8_t data[4 * FRAME_PAYLOAD_MAX_BYTES];
	struct mux m;
	struct mux_stream a, b;
	struct tally t = { 0 };
	int i;

	mux_init(&m);
	mux_stream_init(&m, &a, 1);
	mux_stream_init(&m, &b, 2);
	mux_stream_send(&a, data, sizeof data);
	mux_stream_send(&b, data, sizeof data);
	drain(&m, &t);
	assert_true(t.norder >= 6);
	for (i = 0; i + 1 < 6; i++)
		assert_int_not_equal(t.order[i], t.order[i + 1]);
	mux_stream_free(&a);
	mux_stream_free(&b);
	mux_free(&m);
}

/* One websocket message carries up to a window of DATA, in frames the
 * decoder takes (none past FRAME_PAYLOAD_MAX_BYTES), streams alternating;
 * a stream queues its credit and one read more (and a held head), not a
 * byte past that. */
static void
test_message_carries_a_window(void **state)
{
	static uint8_t data[MUX_OUT_MAX_BYTES];
	static uint8_t big[MUX_MESSAGE_BYTES];
	struct frame_decoder d;
	struct mux m;
	struct mux_stream a, b;
	struct tally t = { 0 };
	size_t n;
	int i;

	mux_init(&m);
	mux_stream_init(&m, &a, 1);
	mux_stream_init(&m, &b, 2);
	assert_int_equal(mux_stream_send(&a, data, sizeof data), 0);
	assert_int_equal(mux_stream_send(&a, data, 1), -1);
	assert_int_equal(mux_stream_send(&b, data, STREAM_WINDOW_BYTES), 0);
	n = mux_fill(&m, big, sizeof big);
	assert_true(n > 3 * (FRAME_HEADER_BYTES + FRAME_PAYLOAD_MAX_BYTES));
	frame_decoder_init(&d);
	assert_int_equal(frame_feed(&d, big, n, &handlers, &t), 0);
	frame_decoder_free(&d);
	assert_int_equal(t.data[1] + t.data[2] + t.norder * FRAME_HEADER_BYTES, n);
	assert_true(t.norder >= 4);
	for (i = 0; i + 1 < t.norder; i++)
		assert_int_not_equal(t.order[i], t.order[i + 1]);
	mux_stream_free(&a);
	mux_stream_free(&b);
	mux_free(&m);
}

/* Bytes a filter wrote into out itself are framed like sent ones, under
 * the same credit. */
static void
test_appended_bytes_go_like_sent_ones(void **state)
{
	struct mux m;
	struct mux_stream s;
	struct tally t = { 0 };

	mux_init(&m);
	mux_stream_init(&m, &s, 3);
	assert_false(mux_pending(&m));
	assert_int_equal(buf_append(&s.out, "abc", 3), 0);
	assert_false(mux_pending(&m));
	mux_stream_appended(&s);
	assert_true(mux_pending(&m));
	assert_int_equal(mux_stream_want(&s), STREAM_WINDOW_BYTES - 3);
	drain(&m, &t);
	assert_int_equal(t.data[3], 3);
	assert_int_equal(s.credit, STREAM_WINDOW_BYTES - 3);
	mux_stream_free(&s);
	mux_free(&m);
}

/* Streams that got DATA are handed to the owner once each until it asks
 * again; a freed one is not handed out. */
static void
test_arrived_streams_once_each(void **state)
{
	struct mux m;
	struct mux_stream a, b, c;

	mux_init(&m);
	mux_stream_init(&m, &a, 1);
	mux_stream_init(&m, &b, 2);
	mux_stream_init(&m, &c, 3);
	assert_null(mux_arrived(&m));
	assert_int_equal(mux_stream_recv(&a, (const uint8_t *)"x", 1), 0);
	assert_int_equal(mux_stream_recv(&b, (const uint8_t *)"y", 1), 0);
	assert_int_equal(mux_stream_recv(&a, (const uint8_t *)"z", 1), 0);
	assert_int_equal(mux_stream_recv(&c, (const uint8_t *)"w", 1), 0);
	mux_stream_free(&b);
	assert_ptr_equal(mux_arrived(&m), &c);
	assert_ptr_equal(mux_arrived(&m), &a);
	assert_null(mux_arrived(&m));
	assert_int_equal(mux_stream_recv(&a, (const uint8_t *)"v", 1), 0);
	assert_ptr_equal(mux_arrived(&m), &a);
	assert_null(mux_arrived(&m));
	mux_stream_free(&a);
	mux_stream_free(&c);
	mux_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credit_bounds_sending),
		cmocka_unit_test(test_receiver_grants_credit_as_it_drains),
		cmocka_unit_test(test_fin_follows_data),
		cmocka_unit_test(test_streams_take_turns),
		cmocka_unit_test(test_message_carries_a_window),
		cmocka_unit_test(test_appended_bytes_go_like_sent_ones),
		cmocka_unit_test(test_arrived_streams_once_each),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
