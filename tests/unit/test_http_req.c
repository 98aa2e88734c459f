/*
 * The edge's request parser, table-driven: every malformed head gets its
 * status, every accepted one is re-emitted canonically, and the verdict
 * is the same whether the bytes arrive at once or one at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http_req.h"

struct outcome {
	int status;            /* 0 = accepted */
	char out[8192];        /* canonical bytes for the app */
	int requests;          /* heads accepted */
};

/* Feeds input in pieces of step bytes (0 = all at once), the way the edge
 * does: bytes the parser leaves wait and are offered again with more. */
static void
run(const char *input, size_t len, size_t step, struct outcome *o)
{
	struct http_req r;
	struct buf out, in;
	size_t off = 0, used, n;
	enum http_req_event ev = HTTP_REQ_MORE;

	memset(o, 0, sizeof *o);
	http_req_init(&r, NULL);
	buf_init(&out, 1 << 20);
	buf_init(&in, 1 << 20);
	while (off < len) {
		n = step && len - off > step ? step : len - off;
		buf_append(&in, input + off, n);
		off += n;
		for (;;) {
			ev = http_req_feed(&r, buf_data(&in), buf_len(&in), &used, &out);
			buf_consume(&in, used);
			if (ev == HTTP_REQ_ERROR) {
				o->status = r.status;
				goto done;
			}
			if (ev == HTTP_REQ_HEAD) {
				o->requests++;
				assert_int_equal(http_req_emit_head(&r, &out, "192.0.2.9", "http"), 0);
				continue;
			}
			if (ev == HTTP_REQ_UPGRADE)
				goto done;
			if (ev == HTTP_REQ_MORE)
				break;
		}
	}
done:
	snprintf(o->out, sizeof o->out, "%.*s", (int)buf_len(&out), (const char *)buf_data(&out));
	buf_free(&out);
	buf_free(&in);
	http_req_free(&r);
}

struct reject_case {
	const char *name;
	const char *req;
	int status;
};

#define H "Host: a.example.com\r\n"

static const struct reject_case rejects[] = {
	{ "cl_and_te", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "te_and_cl", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400 },
	{ "cl_twice_same", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400 },
	{ "cl_twice_differ", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400 },
	{ "cl_list", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\nhello", 400 },
	{ "cl_plus", "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\nhello", 400 },
	{ "cl_negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400 },
	{ "cl_hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\nhello", 400 },
	{ "cl_overflow", "POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", 400 },
	{ "te_twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "te_chunked_twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "te_not_last", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400 },
	{ "te_gzip_only", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400 },
	{ "te_gzip_chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501 },
	{ "te_xchunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", 400 },
	{ "te_on_http10", "POST / HTTP/1.0\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "chunk_size_bad", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400 },
	{ "chunk_size_overflow", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400 },
	{ "chunk_no_crlf_after_data", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400 },
	{ "chunk_bare_lf", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400 },
	{ "obs_fold", "GET / HTTP/1.1\r\n" H "X-A: one\r\n two\r\n\r\n", 400 },
	{ "obs_fold_tab", "GET / HTTP/1.1\r\n" H "X-A: one\r\n\ttwo\r\n\r\n", 400 },
	{ "fold_te", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n chunked\r\n\r\n", 400 },
	{ "space_before_colon", "GET / HTTP/1.1\r\n" H "Content-Length : 0\r\n\r\n", 400 },
	{ "tab_before_colon", "GET / HTTP/1.1\r\n" H "X-A\t: 1\r\n\r\n", 400 },
	{ "space_in_name", "GET / HTTP/1.1\r\n" H "Con tent-Length: 0\r\n\r\n", 400 },
	{ "empty_name", "GET / HTTP/1.1\r\n" H ": x\r\n\r\n", 400 },
	{ "no_colon", "GET / HTTP/1.1\r\n" H "garbage\r\n\r\n", 400 },
	{ "bare_lf_head", "GET / HTTP/1.1\n" H "\r\n", 400 },
	{ "bare_lf_end", "GET / HTTP/1.1\r\n" H "\n\n", 400 },
	{ "bare_cr", "GET / HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n", 400 },
	{ "nul_in_value", "GET / HTTP/1.1\r\n" H "X-A: a\0b\r\n\r\n", 400 },
	{ "ctl_in_value", "GET / HTTP/1.1\r\n" H "X-A: a\x01" "b\r\n\r\n", 400 },
	{ "del_in_value", "GET / HTTP/1.1\r\n" H "X-A: a\x7f" "b\r\n\r\n", 400 },
	{ "ctl_in_target", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400 },
	{ "tab_in_target", "GET /a\tb HTTP/1.1\r\n" H "\r\n", 400 },
	{ "space_in_target", "GET /a b HTTP/1.1\r\n" H "\r\n", 400 },
	{ "no_host", "GET / HTTP/1.1\r\n\r\n", 400 },
	{ "no_host_10", "GET / HTTP/1.0\r\n\r\n", 400 },
	{ "two_hosts", "GET / HTTP/1.1\r\n" H "Host: b.example.com\r\n\r\n", 400 },
	{ "http09", "GET /\r\n\r\n", 400 },
	{ "http2_version", "GET / HTTP/2.0\r\n" H "\r\n", 505 },
	{ "http12_version", "GET / HTTP/1.2\r\n" H "\r\n", 505 },
	{ "http_99", "GET / HTTP/9.9\r\n" H "\r\n", 505 },
	{ "version_lower", "GET / http/1.1\r\n" H "\r\n", 400 },
	{ "version_long", "GET / HTTP/1.10\r\n" H "\r\n", 400 },
	{ "h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505 },
	{ "two_spaces", "GET  / HTTP/1.1\r\n" H "\r\n", 400 },
	{ "leading_space", " GET / HTTP/1.1\r\n" H "\r\n", 400 },
	{ "lowercase_method", "get / HTTP/1.1\r\n" H "\r\n", 400 },
	{ "unknown_method", "FROB / HTTP/1.1\r\n" H "\r\n", 400 },
	{ "connect", "CONNECT a.example.com:443 HTTP/1.1\r\n" H "\r\n", 405 },
	{ "star_get", "GET * HTTP/1.1\r\n" H "\r\n", 400 },
	{ "absolute_other_host", "GET http://b.example.com/ HTTP/1.1\r\n" H "\r\n", 400 },
	{ "absolute_other_port", "GET http://a.example.com:81/ HTTP/1.1\r\n" H "\r\n", 400 },
	{ "absolute_userinfo", "GET http://u@a.example.com/ HTTP/1.1\r\n" H "\r\n", 400 },
	{ "absolute_ftp", "GET ftp://a.example.com/ HTTP/1.1\r\n" H "\r\n", 400 },
	{ "relative_target", "GET a/b HTTP/1.1\r\n" H "\r\n", 400 },
	{ "empty_line_only", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400 },
	{ "te_quoted", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n", 400 },
	{ "te_chunk", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunk\r\n\r\n", 400 },
	{ "te_param", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", 400 },
	{ "te_empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \r\n\r\n", 400 },
	{ "te_identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", 400 },
	{ "te_chunked_identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, identity\r\n\r\n", 400 },
	{ "te_vtab", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 400 },
	{ "te_underscore_twin", "POST / HTTP/1.1\r\n" H "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400 },
	{ "cl_underscore_twin", "POST / HTTP/1.1\r\n" H "Content_Length: 5\r\n\r\n", 400 },
	{ "host_underscore_twin", "GET / HTTP/1.1\r\n" H "X_Forwarded_Host: evil\r\n\r\n", 400 },
	{ "xff_underscore_twin", "GET / HTTP/1.1\r\n" H "X_Forwarded_For: 1.2.3.4\r\n\r\n", 400 },
	{ "expect_bogus", "POST / HTTP/1.1\r\n" H "Expect: bogus\r\nContent-Length: 0\r\n\r\n", 417 },
	{ "chunk_size_0x", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400 },
	{ "chunk_size_plus", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400 },
	{ "chunk_size_space", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400 },
	{ "chunk_spill", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhello!!\r\n0\r\n\r\n", 400 },
	{ "chunk_bare_semicolon", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400 },
	{ "chunk_ext_bare_cr", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", 400 },
	{ "version_one_digit", "GET / HTTP/1\r\n" H "\r\n", 400 },
	{ "version_space", "GET / HTTP/ 1.1\r\n" H "\r\n", 400 },
	{ "version_leading_zero", "GET / HTTP/01.01\r\n" H "\r\n", 400 },
	{ "tab_delimiter", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400 },
	{ "no_target", "GET HTTP/1.1\r\n" H "\r\n", 400 },
	{ "non_ascii_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400 },
	{ "name_with_slash", "GET / HTTP/1.1\r\n" H "X/Y: 1\r\n\r\n", 400 },
	{ "name_with_quote", "GET / HTTP/1.1\r\n" H "X\"Y: 1\r\n\r\n", 400 },
	{ "name_non_ascii", "GET / HTTP/1.1\r\n" H "X\xe9: 1\r\n\r\n", 400 },
	{ "first_field_folded", "GET / HTTP/1.1\r\n X: 1\r\n" H "\r\n", 400 },
	{ "whitespace_only_line", "GET / HTTP/1.1\r\n" H " \r\n\r\n", 400 },
};

static void
test_rejects(void **state)
{
	struct outcome o;
	size_t i, step;

	for (i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
		size_t len = strlen(rejects[i].req);
		/* Cases with a NUL byte are written out with it. */
		if (strcmp(rejects[i].name, "nul_in_value") == 0)
			len = strlen("GET / HTTP/1.1\r\n" H "X-A: a") + 1 + strlen("b\r\n\r\n");
		for (step = 0; step <= 1; step++) {
			run(rejects[i].req, len, step, &o);
			if (o.status != rejects[i].status)
				fail_msg("%s (step %zu): status %d, want %d", rejects[i].name,
				         step, o.status, rejects[i].status);
		}
	}
}

static void
test_too_many_fields_431(void **state)
{
	char req[16384];
	struct outcome o;
	int i, n = sprintf(req, "GET / HTTP/1.1\r\n" H);

	for (i = 0; i < HEAD_MAX_FIELDS; i++)
		n += sprintf(req + n, "X-%d: v\r\n", i);
	strcpy(req + n, "\r\n");
	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 431);
}

static void
test_head_too_large_431(void **state)
{
	static char req[HEAD_MAX_BYTES + 256];
	struct outcome o;
	int n = sprintf(req, "GET / HTTP/1.1\r\n" H "X-Big: ");

	memset(req + n, 'a', HEAD_MAX_BYTES);
	strcpy(req + n + HEAD_MAX_BYTES, "\r\n\r\n");
	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 431);
}

static void
test_uri_too_long_414(void **state)
{
	static char req[URI_MAX_BYTES + 256];
	struct outcome o;
	int n = sprintf(req, "GET /");

	memset(req + n, 'a', URI_MAX_BYTES + 1);
	strcpy(req + n + URI_MAX_BYTES + 1, " HTTP/1.1\r\n" H "\r\n");
	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 414);
}

static void
test_uri_8000_accepted(void **state)
{
	static char req[9000];
	struct outcome o;
	int n = sprintf(req, "GET /");

	memset(req + n, 'a', 7999);
	strcpy(req + n + 7999, " HTTP/1.1\r\n" H "\r\n");
	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.requests, 1);
}

static void
test_forwarded_fields(void **state)
{
	const char *req = "GET /x?y=1 HTTP/1.1\r\n" H
	    "X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Host: evil\r\n"
	    "X-Forwarded-Proto: https\r\nForwarded: for=1.1.1.1\r\n"
	    "X-Real-IP: 4.4.4.4\r\n"
	    "Connection: keep-alive, X-Forwarded-For\r\nAccept: */*\r\n\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.out,
	    "GET /x?y=1 HTTP/1.1\r\nHost: a.example.com\r\nAccept: */*\r\n"
	    "Connection: keep-alive\r\n"
	    "X-Forwarded-For: 2.2.2.2, 192.0.2.9\r\nX-Forwarded-Proto: http\r\n"
	    "X-Forwarded-Host: a.example.com\r\n\r\n");
}

static void
test_every_pipelined_request_gets_forwarded_fields(void **state)
{
	const char *req = "GET /1 HTTP/1.1\r\n" H "\r\nGET /2 HTTP/1.1\r\n" H "\r\n";
	struct outcome o;
	const char *p;
	int n = 0;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.requests, 2);
	for (p = o.out; (p = strstr(p, "X-Forwarded-For: 192.0.2.9\r\n")); p++)
		n++;
	assert_int_equal(n, 2);
}

static void
test_chunked_body_rechunked(void **state)
{
	const char *req = "POST /u HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n"
	    "0005;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n";
	struct outcome o1, o2;

	run(req, strlen(req), 0, &o1);
	run(req, strlen(req), 1, &o2);
	assert_int_equal(o1.status, 0);
	assert_non_null(strstr(o1.out, "Transfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(o1.out, "\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"));
	assert_string_equal(o1.out, o2.out);
}

static void
test_content_length_body(void **state)
{
	const char *req = "POST /u HTTP/1.1\r\n" H "Content-Length: 005\r\n\r\nhelloGET";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "Content-Length: 5\r\n"));
	assert_non_null(strstr(o.out, "\r\n\r\nhello"));
	assert_null(strstr(o.out, "GET"));    /* the rest waits for a head */
}

static void
test_absolute_form_to_origin_form(void **state)
{
	const char *req = "GET http://A.example.com:80/p?q HTTP/1.1\r\n" H "\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_memory_equal(o.out, "GET /p?q HTTP/1.1\r\n", 19);
}

static void
test_h2c_upgrade_stripped(void **state)
{
	const char *req = "GET / HTTP/1.1\r\n" H "Connection: Upgrade, HTTP2-Settings\r\n"
	    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_null(strstr(o.out, "h2c"));
	assert_null(strstr(o.out, "HTTP2-Settings"));
	assert_null(strstr(o.out, "Upgrade"));
}

static void
test_websocket_upgrade_waits(void **state)
{
	const char *req = "GET /ws HTTP/1.1\r\n" H "Connection: Upgrade\r\nUpgrade: websocket\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	    "GET /smuggled HTTP/1.1\r\n" H "\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.requests, 1);
	assert_non_null(strstr(o.out, "Connection: Upgrade\r\n"));
	assert_non_null(strstr(o.out, "Upgrade: websocket\r\n"));
	assert_null(strstr(o.out, "smuggled"));
}

static void
test_connection_close_stops_reading(void **state)
{
	const char *req = "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\nxxxx\r\n\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.requests, 1);
	assert_null(strstr(o.out, "xxxx"));
}

static void
test_te_list_forms_accepted(void **state)
{
	static const char *const forms[] = { "Chunked", "chunked ", "\tchunked", "CHUNKED" };
	char req[256];
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		snprintf(req, sizeof req, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: %s\r\n\r\n"
		         "5\r\nhello\r\n0\r\n\r\n", forms[i]);
		run(req, strlen(req), 0, &o);
		if (o.status != 0)
			fail_msg("'%s': status %d", forms[i], o.status);
		assert_non_null(strstr(o.out, "Transfer-Encoding: chunked\r\n"));
		assert_non_null(strstr(o.out, "5\r\nhello\r\n0\r\n\r\n"));
	}
}

static void
test_chunk_extension_flood_400(void **state)
{
	static char req[CHUNK_EXT_MAX_BYTES + 512];
	struct outcome o;
	int n = sprintf(req, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a=");

	memset(req + n, 'b', CHUNK_EXT_MAX_BYTES + 1);
	strcpy(req + n + CHUNK_EXT_MAX_BYTES + 1, "\r\nhello\r\n0\r\n\r\n");
	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 400);
}

static void
test_get_with_body_forwarded_whole(void **state)
{
	const char *req = "GET / HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\n" H "\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.requests, 2);
	assert_non_null(strstr(o.out, "\r\n\r\nhelloGET /x HTTP/1.1\r\n"));
}

static void
test_trailers_never_merged(void **state)
{
	const char *req = "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
	    "0\r\nHost: evil\r\nContent-Length: 9\r\nAuthorization: x\r\n\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_null(strstr(o.out, "evil"));
	assert_null(strstr(o.out, "Authorization"));
}

static void
test_limits_are_settable(void **state)
{
	struct http_limits lim = { .head_max_bytes = 1024, .fields_max = 2 };
	const char *req = "GET / HTTP/1.1\r\n" H "A: 1\r\nB: 2\r\n\r\n";
	struct http_req r;
	struct buf out;
	size_t used;

	http_req_init(&r, &lim);
	buf_init(&out, 4096);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)req, strlen(req), &used, &out),
	                 HTTP_REQ_ERROR);
	assert_int_equal(r.status, 431);
	buf_free(&out);
	http_req_free(&r);
}

static void
test_options_star(void **state)
{
	const char *req = "OPTIONS * HTTP/1.1\r\n" H "\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.requests, 1);
}

static void
test_leading_empty_lines_ignored(void **state)
{
	const char *req = "\r\nGET / HTTP/1.1\r\n" H "\r\n";
	struct outcome o;

	run(req, strlen(req), 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.requests, 1);
}

/* Body bytes the edge splices to the app are counted down: the request
 * still ends at its last byte, and the next request parses as before. */
static void
test_sized_body_skipped_but_last_byte(void **state)
{
	const char *req = "POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 8\r\n\r\n01";
	const char *rest = "7GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
	struct http_req r;
	struct buf out;
	size_t used;

	http_req_init(&r, NULL);
	buf_init(&out, 1 << 16);
	assert_int_equal(http_req_body_left(&r), 0);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)req, strlen(req), &used, &out),
	                 HTTP_REQ_HEAD);
	assert_int_equal(http_req_emit_head(&r, &out, "192.0.2.9", "http"), 0);
	assert_int_equal(http_req_body_left(&r), 7);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)req + used, strlen(req) - used,
	                               &used, &out), HTTP_REQ_MORE);
	assert_int_equal(http_req_body_left(&r), 5);     /* 6 left, the last one fed */
	http_req_body_skip(&r, 5);
	assert_int_equal(http_req_body_left(&r), 0);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)rest, strlen(rest), &used, &out),
	                 HTTP_REQ_COMPLETE);
	assert_int_equal(used, 1);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)rest + 1, strlen(rest) - 1,
	                               &used, &out), HTTP_REQ_HEAD);
	assert_int_equal(http_req_body_left(&r), 0);     /* a GET: no body */
	http_req_free(&r);
	buf_free(&out);
}

static void
test_chunked_body_never_skipped(void **state)
{
	const char *req = "POST /up HTTP/1.1\r\nHost: a.example\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n5\r\nab";
	struct http_req r;
	struct buf out;
	size_t used;

	http_req_init(&r, NULL);
	buf_init(&out, 1 << 16);
	assert_int_equal(http_req_feed(&r, (const uint8_t *)req, strlen(req), &used, &out),
	                 HTTP_REQ_HEAD);
	assert_int_equal(http_req_emit_head(&r, &out, "192.0.2.9", "http"), 0);
	(void)http_req_feed(&r, (const uint8_t *)req + used, strlen(req) - used, &used, &out);
	assert_int_equal(http_req_body_left(&r), 0);
	http_req_free(&r);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_too_many_fields_431),
		cmocka_unit_test(test_head_too_large_431),
		cmocka_unit_test(test_uri_too_long_414),
		cmocka_unit_test(test_uri_8000_accepted),
		cmocka_unit_test(test_forwarded_fields),
		cmocka_unit_test(test_every_pipelined_request_gets_forwarded_fields),
		cmocka_unit_test(test_chunked_body_rechunked),
		cmocka_unit_test(test_content_length_body),
		cmocka_unit_test(test_absolute_form_to_origin_form),
		cmocka_unit_test(test_h2c_upgrade_stripped),
		cmocka_unit_test(test_websocket_upgrade_waits),
		cmocka_unit_test(test_connection_close_stops_reading),
		cmocka_unit_test(test_options_star),
		cmocka_unit_test(test_te_list_forms_accepted),
		cmocka_unit_test(test_chunk_extension_flood_400),
		cmocka_unit_test(test_get_with_body_forwarded_whole),
		cmocka_unit_test(test_trailers_never_merged),
		cmocka_unit_test(test_limits_are_settable),
		cmocka_unit_test(test_leading_empty_lines_ignored),
		cmocka_unit_test(test_sized_body_skipped_but_last_byte),
		cmocka_unit_test(test_chunked_body_never_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
