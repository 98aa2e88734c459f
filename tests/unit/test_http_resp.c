/*
 * The edge's view of the app's responses: where each one ends, table-
 * driven.  A response that has no body by RFC 9112 section 6.3 (to HEAD,
 * 1xx, 204, 304) ends at its head whatever its Content-Length or
 * Transfer-Encoding says, so the edge pairs the next response with the
 * next request as the visitor does; and the verdict is the same whether
 * the bytes arrive at once or one at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http_resp.h"

#define EVENTS_MAX 8

struct seen {
	int n;
	enum http_resp_event ev[EVENTS_MAX];
	int status[EVENTS_MAX];
	size_t end[EVENTS_MAX];    /* offset in the input where it ended */
	bool error;
};

/* Feeds input in pieces of step bytes (0 = all at once), then the close. */
static void
run(const char *input, bool head, size_t step, struct seen *s)
{
	struct http_resp r;
	size_t len = strlen(input), off = 0, n, used;
	enum http_resp_event ev;

	memset(s, 0, sizeof *s);
	http_resp_init(&r);
	http_resp_expect(&r, head);
	while (off < len && !s->error) {
		n = step && len - off > step ? step : len - off;
		while (n > 0) {
			ev = http_resp_feed(&r, (const uint8_t *)input + off, n, &used);
			off += used;
			n -= used;
			if (ev == HTTP_RESP_ERROR) {
				s->error = true;
				break;
			}
			if (ev == HTTP_RESP_MORE)
				continue;
			assert_true(s->n < EVENTS_MAX);
			s->ev[s->n] = ev;
			s->status[s->n] = r.status;
			s->end[s->n++] = off;
			if (ev == HTTP_RESP_COMPLETE)
				http_resp_expect(&r, false);    /* the next answers a GET */
			if (ev == HTTP_RESP_UPGRADED)
				return;
		}
	}
	if (!s->error && (ev = http_resp_finish(&r)) != HTTP_RESP_MORE &&
	    ev != HTTP_RESP_ERROR && s->n < EVENTS_MAX) {
		s->ev[s->n] = ev;
		s->status[s->n] = r.status;
		s->end[s->n++] = off;
	}
}

#define NEXT "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

struct bodyless_case {
	const char *name;
	const char *first;         /* a head with no body after it */
	bool head;                 /* it answers HEAD */
	enum http_resp_event ev;
};

static const struct bodyless_case bodyless[] = {
	{ "304 with Content-Length",
	  "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n",
	  false, HTTP_RESP_COMPLETE },
	{ "204 with Content-Length",
	  "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, HTTP_RESP_COMPLETE },
	{ "204 chunked",
	  "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false,
	  HTTP_RESP_COMPLETE },
	{ "304 chunked",
	  "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false,
	  HTTP_RESP_COMPLETE },
	{ "HEAD with Content-Length",
	  "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, HTTP_RESP_COMPLETE },
	{ "100 with Content-Length",
	  "HTTP/1.1 100 Continue\r\nContent-Length: 7\r\n\r\n", false, HTTP_RESP_INTERIM },
	{ "103 with Content-Length",
	  "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Length: 9\r\n\r\n",
	  false, HTTP_RESP_INTERIM },
	{ "102 chunked",
	  "HTTP/1.1 102 Processing\r\nTransfer-Encoding: chunked\r\n\r\n", false,
	  HTTP_RESP_INTERIM },
};

static void
test_bodyless_responses_end_at_their_head(void **state)
{
	char input[512];
	struct seen s;
	size_t i, step, first;

	for (i = 0; i < sizeof bodyless / sizeof bodyless[0]; i++) {
		const struct bodyless_case *c = &bodyless[i];
		first = strlen(c->first);
		snprintf(input, sizeof input, "%s%s", c->first, NEXT);
		for (step = 0; step < 8; step++) {
			run(input, c->head, step, &s);
			assert_false(s.error);
			assert_int_equal(s.n, 2);
			assert_int_equal(s.ev[0], c->ev);
			assert_int_equal(s.end[0], first);
			assert_int_equal(s.ev[1], HTTP_RESP_COMPLETE);
			assert_int_equal(s.status[1], 200);
			assert_int_equal(s.end[1], strlen(input));
		}
	}
}

static void
test_bodies_still_framed_by_their_fields(void **state)
{
	const char *input = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
	                    "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
	                    "1\r\nx\r\n0\r\n\r\n" NEXT;
	struct seen s;

	run(input, false, 0, &s);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.status[0], 200);
	assert_int_equal(s.status[1], 404);
	assert_int_equal(s.end[2], strlen(input));
}

static void
test_close_delimited_ends_at_close(void **state)
{
	const char *input = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
	                    "all of this is body HTTP/1.1 200 OK\r\n\r\n";
	struct http_resp r;
	size_t used;

	http_resp_init(&r);
	assert_int_equal(http_resp_feed(&r, (const uint8_t *)input, strlen(input), &used),
	                 HTTP_RESP_MORE);
	assert_int_equal(used, strlen(input));
	assert_int_equal(http_resp_finish(&r), HTTP_RESP_COMPLETE);
	assert_false(r.keep_alive);     /* nothing may follow it */
}

static void
test_101_upgrades_even_with_a_length(void **state)
{
	const char *input = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nContent-Length: 4\r\n\r\n\x81\x02hi";
	struct seen s;

	run(input, false, 0, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ev[0], HTTP_RESP_UPGRADED);
	assert_int_equal(s.end[0], strlen(input) - 4);
}

static void
test_bodyless_table(void **state)
{
	assert_true(http_resp_bodyless(100, false));
	assert_true(http_resp_bodyless(199, false));
	assert_true(http_resp_bodyless(204, false));
	assert_true(http_resp_bodyless(304, false));
	assert_true(http_resp_bodyless(200, true));
	assert_false(http_resp_bodyless(200, false));
	assert_false(http_resp_bodyless(205, false));
	assert_false(http_resp_bodyless(404, false));
}

/* Body bytes passed unwatched (spliced) are counted down: the response
 * still ends at its last byte, and the next one pairs as before. */
static void
test_sized_body_skipped_but_last_byte(void **state)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123";
	const char *rest = "9HTTP/1.1 204 No Content\r\n\r\n";
	struct http_resp r;
	size_t used;

	http_resp_init(&r);
	assert_int_equal(http_resp_body_left(&r), 0);    /* no head yet */
	assert_int_equal(http_resp_feed(&r, (const uint8_t *)head, strlen(head), &used),
	                 HTTP_RESP_MORE);
	assert_int_equal(http_resp_body_left(&r), 5);    /* 6 left, the last one fed */
	http_resp_body_skip(&r, 5);
	assert_int_equal(http_resp_body_left(&r), 0);
	assert_int_equal(http_resp_feed(&r, (const uint8_t *)rest, strlen(rest), &used),
	                 HTTP_RESP_COMPLETE);
	assert_int_equal(used, 1);
	assert_int_equal(r.status, 200);
	assert_int_equal(http_resp_feed(&r, (const uint8_t *)rest + 1, strlen(rest) - 1, &used),
	                 HTTP_RESP_COMPLETE);
	assert_int_equal(r.status, 204);
	assert_int_equal(http_resp_body_left(&r), 0);
}

static void
test_only_plain_bodies_may_pass_unwatched(void **state)
{
	static const struct { const char *in; bool head; size_t left; } t[] = {
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, 0 },  /* HEAD */
		{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, 0 },
		{ "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", false, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", false, 1 },
		{ "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nab", false, SIZE_MAX },
	};
	struct http_resp r;
	size_t i, used;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		http_resp_init(&r);
		http_resp_expect(&r, t[i].head);
		(void)http_resp_feed(&r, (const uint8_t *)t[i].in, strlen(t[i].in), &used);
		assert_int_equal(http_resp_body_left(&r), t[i].left);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bodyless_responses_end_at_their_head),
		cmocka_unit_test(test_bodies_still_framed_by_their_fields),
		cmocka_unit_test(test_close_delimited_ends_at_close),
		cmocka_unit_test(test_101_upgrades_even_with_a_length),
		cmocka_unit_test(test_bodyless_table),
		cmocka_unit_test(test_sized_body_skipped_but_last_byte),
		cmocka_unit_test(test_only_plain_bodies_may_pass_unwatched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
