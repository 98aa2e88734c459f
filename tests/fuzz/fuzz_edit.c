/*
 * The inspector's replay edits (cmd/expose/edit.c): whatever JSON a web
 * page posts, the result is nothing, or one well-formed HTTP/1.1 request
 * that fits its buffer: a token method, an origin-form path, token field
 * names, values without control characters, our own framing, and exactly
 * Content-Length bytes of body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edit.h"

#define OUT_LIMIT (80 * 1024)

static const char HEAD[] = "POST /captured?q=1 HTTP/1.1\r\nHost: localhost:3000\r\n"
                           "Cookie: a=b\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n";

static int
tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Checks out as a request; aborts on anything malformed. */
static void
check(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n, *eol;
	long length = -1;
	size_t i;

	/* request line: METHOD SP /path SP HTTP/1.1 CRLF */
	for (i = 0; p + i < end && tchar(p[i]); i++)
		;
	if (i == 0 || p + i >= end || p[i] != ' ' || p[i + 1] != '/')
		abort();
	eol = memmem(p, n, "\r\n", 2);
	if (eol == NULL || eol - p < 12 || memcmp(eol - 9, " HTTP/1.1", 9) != 0)
		abort();
	for (const uint8_t *q = p + i + 1; q < eol - 9; q++)
		if (*q <= 0x20 || *q >= 0x7f)
			abort();
	/* fields until the empty line */
	for (p = eol + 2; p < end && !(p[0] == '\r'); p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			abort();
		for (i = 0; p + i < eol && tchar(p[i]); i++)
			;
		if (i == 0 || p[i] != ':')
			abort();
		for (const uint8_t *q = p + i + 1; q < eol; q++)
			if ((*q < 0x20 && *q != '\t') || *q == 0x7f)
				abort();
		if (i == 14 && strncasecmp((const char *)p, "content-length", 14) == 0) {
			if (length != -1)
				abort();     /* one framing field, ours */
			length = strtol((const char *)p + 15, NULL, 10);
		}
	}
	if (p + 2 > end || p[1] != '\n' || length < 0 || (long)(end - p - 2) != length)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf head, body, out;
	const char *why = NULL;

	buf_init(&head, sizeof HEAD);
	buf_init(&body, 16);
	buf_init(&out, OUT_LIMIT);
	buf_append(&head, HEAD, sizeof HEAD - 1);
	buf_append(&body, "data", 4);
	struct edit_source src = { .method = "POST", .path = "/captured?q=1", .head = &head,
	                           .body = &body, .body_bytes = 4 };
	if (edit_build(&src, (const char *)data, size, &out, &why) == 0)
		check(buf_data(&out), buf_len(&out));
	else if (why == NULL)
		abort();
	buf_free(&head);
	buf_free(&body);
	buf_free(&out);
	return 0;
}
