#include "http_resp.h"

#include <stdint.h>
#include <string.h>

static int
on_message_begin(llhttp_t *p)
{
	struct http_resp *r = p->data;

	r->started = true;
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct http_resp *r = p->data;

	/* 1: llhttp reads no body, whatever the fields say. */
	if (http_resp_bodyless(p->status_code, r->head_request))
		return 1;
	r->body_sized = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED);
	r->body_to_close = !r->body_sized && llhttp_message_needs_eof(p);
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct http_resp *r = p->data;

	r->complete = true;
	r->body_sized = r->body_to_close = false;
	r->status = p->status_code;
	r->keep_alive = llhttp_should_keep_alive(p);
	return HPE_PAUSED;
}

bool
http_resp_bodyless(int status, bool head_request)
{
	return head_request || (status >= 100 && status < 200) || status == 204 ||
	       status == 304;
}

void
http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	llhttp_settings_init(&r->settings);
	r->settings.on_message_begin = on_message_begin;
	r->settings.on_headers_complete = on_headers_complete;
	r->settings.on_message_complete = on_message_complete;
	llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
	r->parser.data = r;
}

void
http_resp_expect(struct http_resp *r, bool head_request)
{
	r->head_request = head_request;
}

static enum http_resp_event
ended(struct http_resp *r)
{
	r->complete = false;
	r->started = false;
	if (r->status == 101)
		return HTTP_RESP_UPGRADED;
	if (r->status >= 100 && r->status < 200) {
		llhttp_resume(&r->parser);
		return HTTP_RESP_INTERIM;
	}
	llhttp_resume(&r->parser);
	return HTTP_RESP_COMPLETE;
}

enum http_resp_event
http_resp_feed(struct http_resp *r, const uint8_t *p, size_t n, size_t *used)
{
	llhttp_errno_t err = llhttp_execute(&r->parser, (const char *)p, n);

	if (err == HPE_OK) {
		*used = n;
		return HTTP_RESP_MORE;
	}
	if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && r->complete) {
		*used = (size_t)(llhttp_get_error_pos(&r->parser) - (const char *)p);
		return ended(r);
	}
	*used = n;
	r->reason = llhttp_get_error_reason(&r->parser);
	if (r->reason == NULL)
		r->reason = llhttp_errno_name(err);
	return HTTP_RESP_ERROR;
}

size_t
http_resp_body_left(const struct http_resp *r)
{
	if (r->body_to_close)
		return SIZE_MAX;
	if (r->body_sized && r->parser.content_length > 1)
		return (size_t)(r->parser.content_length - 1);
	return 0;
}

void
http_resp_body_skip(struct http_resp *r, size_t n)
{
	/* llhttp counts a sized body down in content_length. */
	if (r->body_sized)
		r->parser.content_length -= n;
}

enum http_resp_event
http_resp_finish(struct http_resp *r)
{
	llhttp_errno_t err = llhttp_finish(&r->parser);

	if ((err == HPE_OK || err == HPE_PAUSED) && r->complete)
		return ended(r);
	if (err == HPE_OK)
		return HTTP_RESP_MORE;
	r->reason = llhttp_get_error_reason(&r->parser);
	return HTTP_RESP_ERROR;
}
