/*
 * The request parser's state machine: a head is gathered and checked
 * whole (http_req_check.c), passed on canonically (http_req_emit.c), and
 * its body framed by llhttp and re-emitted chunk by chunk.
 */
#include "http_req.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_req_int.h"

static int on_headers_complete(llhttp_t *p);
static int on_message_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t len);
static int on_chunk_header(llhttp_t *p);
static int on_chunk_complete(llhttp_t *p);
static int emit(struct http_req *r, const void *p, size_t n);

static void
parser_start(struct http_req *r)
{
	llhttp_init(&r->parser, HTTP_REQUEST, &r->settings);
	r->parser.data = r;
}

static int
on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = p->data;

	/* Extensions are dropped, but a flood of them is refused. */
	r->chunk_ext += len;
	return r->chunk_ext > CHUNK_EXT_MAX_BYTES ? -1 : 0;
}

void
http_req_init(struct http_req *r, const struct http_limits *limits)
{
	size_t head_max = limits ? limits->head_max_bytes : HEAD_MAX_BYTES;
	size_t fields_max = limits ? limits->fields_max : HEAD_MAX_FIELDS;

	memset(r, 0, sizeof *r);
	llhttp_settings_init(&r->settings);
	buf_init(&r->head, head_max < HEAD_MAX_BYTES_CAP ? head_max : HEAD_MAX_BYTES_CAP);
	r->fields_max = fields_max < HEAD_FIELDS_CAP ? fields_max : HEAD_FIELDS_CAP;
	r->settings.on_chunk_extension_name = on_chunk_extension;
	r->settings.on_chunk_extension_value = on_chunk_extension;
	r->settings.on_headers_complete = on_headers_complete;
	r->settings.on_message_complete = on_message_complete;
	r->settings.on_body = on_body;
	r->settings.on_chunk_header = on_chunk_header;
	r->settings.on_chunk_complete = on_chunk_complete;
	parser_start(r);
	r->state = S_HEAD;
}

void
http_req_free(struct http_req *r)
{
	buf_free(&r->head);
}

bool
http_req_in_head(const struct http_req *r)
{
	return r->state == S_HEAD && buf_len(&r->head) > 0;
}

bool
http_req_in_body(const struct http_req *r)
{
	return r->state == S_BODY || (r->state == S_ERROR && r->error_in_body);
}

size_t
http_req_body_left(const struct http_req *r)
{
	if (r->state != S_BODY || r->chunked || r->complete || r->parser.content_length <= 1)
		return 0;
	return (size_t)(r->parser.content_length - 1);
}

void
http_req_body_skip(struct http_req *r, size_t n)
{
	/* llhttp counts a sized body down in content_length. */
	r->parser.content_length -= n;
}

enum http_req_event
http_req_fail(struct http_req *r, int status, const char *reason)
{
	r->error_in_body = r->state == S_BODY;
	r->state = S_ERROR;
	r->status = status;
	r->reason = reason;
	return HTTP_REQ_ERROR;
}

/* --- llhttp callbacks: body framing, re-emitted canonically --- */

static int
on_headers_complete(llhttp_t *p)
{
	struct http_req *r = p->data;

	r->chunked = (p->flags & F_CHUNKED) != 0;
	/* A request's framing never depends on Upgrade: the body (if any)
	 * is read; what follows waits for the response. */
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct http_req *r = p->data;

	if (r->chunked && emit(r, "0\r\n\r\n", 5) == -1)
		return -1;
	r->complete = true;
	return HPE_PAUSED;
}

static int
emit(struct http_req *r, const void *p, size_t n)
{
	if (r->out == NULL)
		return 0;
	return buf_append(r->out, p, n) == 0 ? 0 : -1;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	return emit(p->data, at, len);
}

static int
on_chunk_header(llhttp_t *p)
{
	struct http_req *r = p->data;
	char line[32];
	int n;

	r->chunk_ext = 0;
	if (p->content_length == 0) {
		r->last_chunk = true;    /* trailers follow; they are dropped */
		return 0;
	}
	n = snprintf(line, sizeof line, "%llx\r\n", (unsigned long long)p->content_length);
	return emit(r, line, (size_t)n);
}

static int
on_chunk_complete(llhttp_t *p)
{
	struct http_req *r = p->data;

	if (r->last_chunk)
		return 0;
	return emit(r, "\r\n", 2);
}

static enum http_req_event
parse_head(struct http_req *r)
{
	llhttp_errno_t err;

	r->out = NULL;
	r->chunked = r->last_chunk = r->complete = false;
	err = llhttp_execute(&r->parser, (const char *)buf_data(&r->head),
	                     buf_len(&r->head));
	if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
		if (!r->complete)
			return http_req_fail(r, 400, "malformed request");
		return HTTP_REQ_MORE;
	}
	if (err != HPE_OK)
		return http_req_fail(r, 400, llhttp_get_error_reason(&r->parser) ?
		            llhttp_get_error_reason(&r->parser) : "malformed request");
	return HTTP_REQ_MORE;
}

/* Finds the end of the head in the bytes added since the last scan. */
static enum http_req_event
read_head(struct http_req *r, const uint8_t *p, size_t n, size_t *used)
{
	const uint8_t *h;
	size_t len, i, before = buf_len(&r->head), take;

	/* Empty lines before a request line are ignored (RFC 9112 2.2).  A
	 * lone CR at the end waits for its LF: the verdict must not depend on
	 * how the bytes were split. */
	if (before == 0) {
		for (i = 0; i + 1 < n && p[i] == '\r' && p[i + 1] == '\n'; i += 2)
			;
		*used += i;
		p += i;
		n -= i;
		if (n == 0 || (n == 1 && p[0] == '\r'))
			return HTTP_REQ_MORE;
		memset(&r->info, 0, sizeof r->info);    /* a new request begins */
	}
	take = n < buf_room(&r->head) ? n : buf_room(&r->head);
	if (buf_append(&r->head, p, take) == -1)
		return http_req_fail(r, 431, "request head too large");
	h = buf_data(&r->head);
	len = buf_len(&r->head);
	for (i = r->scanned; i < len; i++) {
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			return http_req_fail(r, 400, "bare LF in the request head");
		if (i > 0 && h[i - 1] == '\r' && h[i] != '\n')
			return http_req_fail(r, 400, "bare CR in the request head");
		if (h[i] == '\0')
			return http_req_fail(r, 400, "NUL in the request head");
		if (h[i] == '\n' && i >= 3 && h[i - 2] == '\n') {
			/* The head ends here; later bytes are the body's. */
			r->head.len = i + 1;
			*used += i + 1 - before;
			r->scanned = 0;
			return HTTP_REQ_HEAD;
		}
	}
	r->scanned = len;
	*used += take;
	if (buf_room(&r->head) == 0) {
		if (memchr(h, '\n', len) == NULL)
			return http_req_fail(r, 414, "request target too long");
		return http_req_fail(r, 431, "request head too large");
	}
	return HTTP_REQ_MORE;
}

static enum http_req_event
head_ready(struct http_req *r)
{
	enum http_req_event ev;

	memset(&r->info, 0, sizeof r->info);
	if ((ev = http_req_scan_head(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = parse_head(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = http_req_check_head(r)) != HTTP_REQ_MORE)
		return ev;
	r->state = S_HEAD_READY;
	return HTTP_REQ_HEAD;
}

/* The message is complete: what comes next on the connection. */
static enum http_req_event
message_done(struct http_req *r)
{
	buf_consume(&r->head, buf_len(&r->head));
	r->complete = false;
	if (r->info.upgrade) {
		r->state = S_UPGRADE;
		return HTTP_REQ_UPGRADE;
	}
	if (!r->info.keep_alive) {
		r->state = S_CLOSED;
		return HTTP_REQ_COMPLETE;
	}
	llhttp_resume(&r->parser);
	r->state = S_HEAD;
	return HTTP_REQ_COMPLETE;
}

static enum http_req_event
read_body(struct http_req *r, const uint8_t *p, size_t n, size_t *used,
          struct buf *out)
{
	llhttp_errno_t err;

	r->out = out;
	err = llhttp_execute(&r->parser, (const char *)p, n);
	r->out = NULL;
	if (err == HPE_OK) {
		*used += n;
		return HTTP_REQ_MORE;
	}
	if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && r->complete) {
		*used += (size_t)(llhttp_get_error_pos(&r->parser) - (const char *)p);
		return message_done(r);
	}
	if (err == HPE_USER && r->chunk_ext > CHUNK_EXT_MAX_BYTES)
		return http_req_fail(r, 400, "chunk extensions too long");
	if (err == HPE_USER)
		return http_req_fail(r, 500, "edge buffer full");
	return http_req_fail(r, 400, llhttp_get_error_reason(&r->parser) ?
	            llhttp_get_error_reason(&r->parser) : "malformed body");
}

enum http_req_event
http_req_feed(struct http_req *r, const uint8_t *p, size_t n, size_t *used,
              struct buf *out)
{
	enum http_req_event ev;

	*used = 0;
	switch (r->state) {
	case S_HEAD:
		ev = read_head(r, p, n, used);
		if (ev != HTTP_REQ_HEAD)
			return ev;
		return head_ready(r);
	case S_HEAD_READY:
		return HTTP_REQ_HEAD;
	case S_BODY:
		if (r->complete)
			return message_done(r);
		if (n == 0)
			return HTTP_REQ_MORE;
		return read_body(r, p, n, used, out);
	case S_CLOSED:
		/* Bytes after the last request are never forwarded. */
		*used = n;
		return HTTP_REQ_MORE;
	case S_UPGRADE:
		return HTTP_REQ_MORE;
	default:
		return HTTP_REQ_ERROR;
	}
}

void
http_req_resume(struct http_req *r)
{
	if (r->state != S_UPGRADE)
		return;
	/* The upgrade was refused; the next bytes start a new request. */
	parser_start(r);
	r->state = r->info.keep_alive ? S_HEAD : S_CLOSED;
}

