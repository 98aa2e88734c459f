/* The client's HTTP follower: bytes pass unchanged unless rewriting is on,
 * in pieces of any size; exchanges are reported whole; rewrites touch
 * only what they should. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "exchange.h"

static int64_t fake_now;
static int64_t now(void) { return fake_now++; }

struct seen {
	int n;
	char last[600];
	int status;
	size_t req_body, resp_body;
	enum exchange_end end;
	uint64_t req_bytes, resp_bytes;
	bool upgraded;
	char order[256];        /* the paths, in the order they ended */
};

static void
done(void *ctx, struct exchange *x)
{
	struct seen *s = ctx;

	s->n++;
	snprintf(s->last, sizeof s->last, "%s %s", x->method, x->path);
	s->status = x->status;
	s->req_body = buf_len(&x->request_body);
	s->resp_body = buf_len(&x->response_body);
	s->end = x->end;
	s->req_bytes = x->request_bytes;
	s->resp_bytes = x->response_bytes;
	s->upgraded = x->upgraded;
	snprintf(s->order + strlen(s->order), sizeof s->order - strlen(s->order), "%.16s",
	         x->path);
	exchange_free(x);
}

/* Feeds req then resp in pieces of step bytes; returns what came out. */
static void
run(const struct exchange_options *o, const char *req, const char *resp, size_t step,
    struct buf *out_req, struct buf *out_resp, struct seen *s)
{
	struct exchange_stream *x = exchange_stream_new(o, now, done, s);
	size_t i, n;

	for (i = 0; i < strlen(req); i += n) {
		n = step && strlen(req) - i > step ? step : strlen(req) - i;
		assert_int_equal(exchange_request(x, (const uint8_t *)req + i, n, out_req), n);
	}
	for (i = 0; i < strlen(resp); i += n) {
		n = step && strlen(resp) - i > step ? step : strlen(resp) - i;
		assert_int_equal(exchange_response(x, (const uint8_t *)resp + i, n, out_resp), 0);
	}
	exchange_stream_end(x, EXCHANGE_CUT);
	exchange_stream_free(x);
}

static void
feed_req(struct exchange_stream *x, const char *p, struct buf *out)
{
	assert_int_equal(exchange_request(x, (const uint8_t *)p, strlen(p), out),
	                 (ssize_t)strlen(p));
}

static void
feed_resp(struct exchange_stream *x, const char *p, struct buf *out)
{
	assert_int_equal(exchange_response(x, (const uint8_t *)p, strlen(p), out), 0);
}

static const char *REQ =
	"POST /a?b=1 HTTP/1.1\r\nHost: app.example.net\r\nOrigin: https://app.example.net\r\n"
	"Content-Length: 5\r\n\r\nhello"
	"GET /second HTTP/1.1\r\nHost: app.example.net\r\n\r\n";
static const char *RESP =
	"HTTP/1.1 302 Found\r\nLocation: http://localhost:3000/next?x=1\r\n"
	"Set-Cookie: s=1; Domain=localhost; Path=/; HttpOnly\r\nContent-Length: 3\r\n\r\nabc"
	"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n"
	"Transfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n";

static void
test_pass_through_unchanged_in_any_pieces(void **state)
{
	struct exchange_options o = { .capture_bytes = 0 };
	size_t step;

	for (step = 0; step < 40; step += step < 5 ? 1 : 7) {
		struct buf a, b;
		struct seen s = { 0 };
		buf_init(&a, 1 << 16);
		buf_init(&b, 1 << 16);
		run(&o, REQ, RESP, step, &a, &b, &s);
		assert_int_equal(buf_len(&a), strlen(REQ));
		assert_memory_equal(buf_data(&a), REQ, strlen(REQ));
		assert_int_equal(buf_len(&b), strlen(RESP));
		assert_memory_equal(buf_data(&b), RESP, strlen(RESP));
		assert_int_equal(s.n, 2);
		assert_string_equal(s.last, "GET /second");
		assert_int_equal(s.status, 200);
		buf_free(&a);
		buf_free(&b);
	}
}

static void
test_rewrites_for_dev_servers(void **state)
{
	struct exchange_options o = {
		.local_host = "localhost:3000", .public_host = "app.example.net",
		.public_scheme = "https", .capture_bytes = 2,
	};
	struct buf a, b;
	struct seen s = { 0 };
	char *ra, *rb;

	buf_init(&a, 1 << 16);
	buf_init(&b, 1 << 16);
	run(&o, REQ, RESP, 3, &a, &b, &s);
	buf_append(&a, "", 1);
	buf_append(&b, "", 1);
	ra = (char *)buf_data(&a);
	rb = (char *)buf_data(&b);
	assert_non_null(strstr(ra, "POST /a?b=1 HTTP/1.1\r\nHost: localhost:3000\r\n"
	                           "Origin: http://localhost:3000\r\n"));
	assert_non_null(strstr(ra, "\r\n\r\nhelloGET /second HTTP/1.1\r\nHost: localhost:3000\r\n"));
	assert_null(strstr(ra, "app.example.net"));
	assert_non_null(strstr(rb, "Location: https://app.example.net/next?x=1\r\n"));
	assert_non_null(strstr(rb, "Set-Cookie: s=1; Path=/; HttpOnly\r\n"));
	assert_non_null(strstr(rb, "Access-Control-Allow-Origin: https://app.example.net\r\n"));
	assert_null(strstr(rb, "localhost"));
	assert_non_null(strstr(rb, "3\r\nxyz\r\n0\r\n\r\n"));
	assert_int_equal(s.n, 2);
	buf_free(&a);
	buf_free(&b);
}

static void
test_other_locations_and_cookies_untouched(void **state)
{
	struct exchange_options o = {
		.local_host = "localhost:3000", .public_host = "app.example.net",
		.public_scheme = "https",
	};
	struct buf h;
	const char *head = "HTTP/1.1 302 Found\r\nLocation: https://accounts.example.com/x\r\n"
	                   "Set-Cookie: t=2; Domain=example.com\r\nLocation2: http://localhost:3000/\r\n"
	                   "Set-Cookie: u=3; Domain=localhost.evil.example\r\n"
	                   "Set-Cookie: v=4; Domain=l\r\n"
	                   "Location: http://127.0.0.1:30001/other-app\r\n"
	                   "Location: http://localhost:30001/other-app\r\n"
	                   "Access-Control-Allow-Origin: *\r\n"
	                   "Access-Control-Allow-Origin: http://localhost:3000/x\r\n\r\n";

	buf_init(&h, 1 << 16);
	buf_append(&h, head, strlen(head));
	assert_int_equal(exchange_rewrite_response(&h, &o), 0);
	assert_int_equal(buf_len(&h), strlen(head));
	assert_memory_equal(buf_data(&h), head, strlen(head));
	buf_free(&h);
}

static void
test_loopback_location_and_dotted_cookie_domain(void **state)
{
	struct exchange_options o = {
		.local_host = "localhost:3000", .public_host = "app.example.net",
		.public_scheme = "https",
	};
	const char *head = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:3000?next=1\r\n"
	                   "Set-Cookie: w=5; Domain=.LocalHost; Path=/\r\n\r\n";
	const char *want = "HTTP/1.1 302 Found\r\nLocation: https://app.example.net?next=1\r\n"
	                   "Set-Cookie: w=5; Path=/\r\n\r\n";
	struct buf h;

	buf_init(&h, 1 << 16);
	buf_append(&h, head, strlen(head));
	assert_int_equal(exchange_rewrite_response(&h, &o), 0);
	assert_int_equal(buf_len(&h), strlen(want));
	assert_memory_equal(buf_data(&h), want, strlen(want));
	buf_free(&h);
}

static void
test_captures_bodies_up_to_the_cap(void **state)
{
	struct exchange_options o = { .capture_bytes = 2 };
	struct buf a, b;
	struct seen s = { 0 };
	const char *req = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd";

	buf_init(&a, 1 << 16);
	buf_init(&b, 1 << 16);
	run(&o, req, resp, 1, &a, &b, &s);
	assert_int_equal(s.req_body, 2);
	assert_int_equal(s.resp_body, 2);
	buf_free(&a);
	buf_free(&b);
}

/* A read may bring a head and a body far past the head's bound in one
 * piece: the head is found, the body counted and passed, unchanged. */
static void
test_head_and_a_large_body_in_one_piece(void **state)
{
	static char resp[300 * 1024];
	struct exchange_options o = { .capture_bytes = 10 };
	struct buf a, b;
	struct seen s = { 0 };
	const char *req = "GET /big HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t body = sizeof resp - 1 - 64, head;

	head = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
	                        body);
	memset(resp + head, 'x', sizeof resp - 1 - head);
	resp[head + body] = '\0';
	buf_init(&a, 1 << 16);
	buf_init(&b, sizeof resp);
	run(&o, req, resp, 0, &a, &b, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.status, 200);
	assert_int_equal(s.resp_body, 10);
	assert_int_equal(s.resp_bytes, body);
	assert_int_equal(buf_len(&b), head + body);
	assert_memory_equal(buf_data(&b), resp, head + body);
	buf_free(&a);
	buf_free(&b);
}

static void
test_upgrade_then_raw(void **state)
{
	struct exchange_options o = {
		.local_host = "localhost:3000", .public_host = "app.example.net",
		.public_scheme = "https",
	};
	struct buf a, b;
	struct seen s = { 0 };
	const char *req = "GET /ws HTTP/1.1\r\nHost: app.example.net\r\nConnection: Upgrade\r\n"
	                  "Upgrade: websocket\r\n\r\n";
	const char *resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                   "Connection: Upgrade\r\n\r\n\x81\x05Host:";

	buf_init(&a, 1 << 16);
	buf_init(&b, 1 << 16);
	run(&o, req, resp, 0, &a, &b, &s);
	assert_int_equal(s.status, 101);
	assert_non_null(memmem(buf_data(&b), buf_len(&b), "\r\n\r\n\x81\x05Host:", 11));
	buf_free(&a);
	buf_free(&b);
}

static void
test_not_http_passes_through(void **state)
{
	struct exchange_options o = { .capture_bytes = 16 };
	struct buf a, b;
	struct seen s = { 0 };
	const char *req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *resp = "SSH-2.0-OpenSSH\r\n\r\n\x00\x01garbage";

	buf_init(&a, 1 << 16);
	buf_init(&b, 1 << 16);
	run(&o, req, resp, 4, &a, &b, &s);
	assert_int_equal(buf_len(&b), strlen(resp));
	buf_free(&a);
	buf_free(&b);
}

/* 304 and 204 with a Content-Length, and a 103 with one, have no body:
 * the next response is the next exchange's, not their body. */
static void
test_bodyless_responses_pair_with_their_requests(void **state)
{
	struct exchange_options o = { .capture_bytes = 64 };
	const char *req = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	                  "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	                  "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *resp = "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"
	                   "HTTP/1.1 103 Early Hints\r\nContent-Length: 9\r\n\r\n"
	                   "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
	                   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	size_t step;

	for (step = 0; step < 6; step++) {
		struct buf a, b;
		struct seen s = { 0 };
		buf_init(&a, 1 << 16);
		buf_init(&b, 1 << 16);
		run(&o, req, resp, step, &a, &b, &s);
		assert_int_equal(buf_len(&b), strlen(resp));
		assert_int_equal(s.n, 3);
		assert_string_equal(s.last, "GET /c");
		assert_int_equal(s.status, 200);
		assert_int_equal(s.resp_body, 2);
		buf_free(&a);
		buf_free(&b);
	}
}

/* A stream followed without rewriting, and what it reported. */
struct follow {
	struct seen s;
	struct exchange_stream *x;
	struct buf a, b;           /* what went on toward the app, and back */
};

static void
follow_start(struct follow *f)
{
	struct exchange_options o = { 0 };

	memset(f, 0, sizeof *f);
	f->x = exchange_stream_new(&o, now, done, &f->s);
	assert_non_null(f->x);
	buf_init(&f->a, 1 << 16);
	buf_init(&f->b, 1 << 16);
}

static void
follow_stop(struct follow *f)
{
	exchange_stream_free(f->x);
	buf_free(&f->a);
	buf_free(&f->b);
}

/* A pipeline deeper than the follower holds: every request is taken, in
 * turn, as responses make room, and every one is reported in order. */
static void
test_deep_pipeline_waits_and_loses_none(void **state)
{
	struct follow f;
	char req[4096] = "", want[256] = "", line[64];
	size_t ends[20];
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	size_t off = 0, len;
	ssize_t took;
	int i, answered = 0;

	follow_start(&f);
	for (i = 0; i < 20; i++) {
		snprintf(line, sizeof line, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
		strcat(req, line);
		ends[i] = strlen(req);
		snprintf(line, sizeof line, "/%d", i);
		strcat(want, line);
	}
	len = strlen(req);
	while (off < len) {
		took = exchange_request(f.x, (const uint8_t *)req + off, len - off, &f.a);
		assert_true(took >= 0);
		off += (size_t)took;
		if (off < len) {
			/* Held back only when as many wait as are followed. */
			assert_int_equal(off, ends[f.s.n + EXCHANGE_PENDING_MAX - 1]);
			feed_resp(f.x, resp, &f.b);
			answered++;
		}
	}
	while (answered < 20) {
		feed_resp(f.x, resp, &f.b);
		answered++;
	}
	assert_int_equal(buf_len(&f.a), len);
	assert_int_equal(f.s.n, 20);
	assert_string_equal(f.s.order, want);
	exchange_stream_end(f.x, EXCHANGE_ABANDONED);
	assert_int_equal(f.s.n, 20);
	follow_stop(&f);
}

/* Expect: 100-continue answered 413 before the body: the exchange ends
 * with the response, and the next request pairs with the next response. */
static void
test_answer_before_the_body(void **state)
{
	struct follow f;

	follow_start(&f);
	feed_req(f.x, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n"
	         "Expect: 100-continue\r\n\r\n", &f.a);
	feed_resp(f.x, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!", &f.b);
	assert_int_equal(f.s.n, 1);
	assert_string_equal(f.s.last, "POST /upload");
	assert_int_equal(f.s.status, 413);
	assert_int_equal(f.s.end, EXCHANGE_COMPLETE);
	assert_int_equal(f.s.resp_bytes, 4);
	exchange_stream_end(f.x, EXCHANGE_CUT);
	assert_int_equal(f.s.n, 1);
	follow_stop(&f);
}

/* The stream's end ends what is open: a body run to the close is whole,
 * a body short of its length was cut, a visitor gone abandoned it. */
static void
test_stream_end_ends_every_exchange(void **state)
{
	static const struct {
		const char *resp;
		enum exchange_end how, want;
		int status;
		uint64_t bytes;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\n\r\nuntil the close", EXCHANGE_CUT, EXCHANGE_COMPLETE, 200, 15 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", EXCHANGE_CUT,
		  EXCHANGE_CUT, 200, 10 },
		{ "", EXCHANGE_CUT, EXCHANGE_CUT, 0, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n",
		  EXCHANGE_ABANDONED, EXCHANGE_ABANDONED, 200, 9 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n01234", EXCHANGE_ABANDONED,
		  EXCHANGE_ABANDONED, 200, 5 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct follow f;

		follow_start(&f);
		feed_req(f.x, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", &f.a);
		feed_resp(f.x, cases[i].resp, &f.b);
		assert_int_equal(f.s.n, 0);
		exchange_stream_end(f.x, cases[i].how);
		assert_int_equal(f.s.n, 1);
		assert_int_equal(f.s.end, cases[i].want);
		assert_int_equal(f.s.status, cases[i].status);
		assert_int_equal(f.s.resp_bytes, cases[i].bytes);
		exchange_stream_end(f.x, cases[i].how);    /* once only */
		assert_int_equal(f.s.n, 1);
		follow_stop(&f);
	}
}

/* A websocket's exchange ends when the connection does, with the bytes
 * that crossed it each way. */
static void
test_upgrade_ends_with_the_connection(void **state)
{
	struct follow f;

	follow_start(&f);
	feed_req(f.x, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
	         "Upgrade: websocket\r\n\r\n", &f.a);
	feed_resp(f.x, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	          "Connection: Upgrade\r\n\r\n\x81\x02hi", &f.b);
	assert_int_equal(f.s.n, 0);
	feed_req(f.x, "\x81\x85" "abcd12345", &f.a);
	feed_resp(f.x, "\x81\x03" "abc", &f.b);
	exchange_stream_end(f.x, EXCHANGE_ABANDONED);
	assert_int_equal(f.s.n, 1);
	assert_int_equal(f.s.status, 101);
	assert_true(f.s.upgraded);
	assert_int_equal(f.s.end, EXCHANGE_CLOSED);
	assert_int_equal(f.s.req_bytes, 11);
	assert_int_equal(f.s.resp_bytes, 9);
	follow_stop(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_through_unchanged_in_any_pieces),
		cmocka_unit_test(test_rewrites_for_dev_servers),
		cmocka_unit_test(test_other_locations_and_cookies_untouched),
		cmocka_unit_test(test_loopback_location_and_dotted_cookie_domain),
		cmocka_unit_test(test_captures_bodies_up_to_the_cap),
		cmocka_unit_test(test_head_and_a_large_body_in_one_piece),
		cmocka_unit_test(test_upgrade_then_raw),
		cmocka_unit_test(test_not_http_passes_through),
		cmocka_unit_test(test_bodyless_responses_pair_with_their_requests),
		cmocka_unit_test(test_deep_pipeline_waits_and_loses_none),
		cmocka_unit_test(test_answer_before_the_body),
		cmocka_unit_test(test_stream_end_ends_every_exchange),
		cmocka_unit_test(test_upgrade_ends_with_the_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
