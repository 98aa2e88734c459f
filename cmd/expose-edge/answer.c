/*
 * The requests in flight on a connection (a pipeline of at most
 * PIPELINE_MAX_REQUESTS) and the edge's own answers: error pages, owed
 * answers, and the access log line each request ends with.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edge.h"
#include "log.h"
#include "page.h"

struct pending *
pending_oldest(struct edge *e)
{
	return e->queue_len ? &e->queue[e->queue_head] : NULL;
}

/* The time of an access line, formatted once a second: a kept-alive
 * connection logs many requests a second, and formatting the date took a
 * third of the instructions of its line. */
static const char *
access_time(void)
{
	static char text[CLOCK_UTC_TEXT_BYTES];
	static time_t at = -1;
	time_t now = time(NULL);

	if (now != at) {
		clock_utc_text(now, text, sizeof text);
		at = now;
	}
	return text;
}

/* The access log line of a request answered with status. */
static void
edge_access_line(struct edge *e, const struct pending *p, int status)
{
	char raw[64] = "";
	size_t bytes = p->bytes;

	/* An upgraded connection is logged at its close: bytes counts the
	 * 101's head and what followed to the visitor; raw_in and raw_out,
	 * what passed each way after the 101. */
	if (e->raw) {
		bytes += e->raw_down;
		snprintf(raw, sizeof raw, " raw_in=%zu raw_out=%zu", e->raw_up, e->raw_down);
	}
	log_info("access time=%s name=%s addr=%s method=%s path=%s status=%d bytes=%zu ms=%lld%s",
	         access_time(), e->name[0] ? e->name : "-", e->peer, p->method, p->path, status,
	         bytes, (long long)(clock_ms() - p->start_ms), raw);
}

/* status is the answer meant; once a response's head went out, its own
 * status is what the visitor got. */
void
pending_pop(struct edge *e, int status)
{
	struct pending *p = pending_oldest(e);

	if (p == NULL)
		return;
	edge_access_line(e, p, p->answered && p->status ? p->status : status);
	e->queue_head = (e->queue_head + 1) % PIPELINE_MAX_REQUESTS;
	e->queue_len--;
	p = pending_oldest(e);
	http_resp_expect(&e->resp, p ? p->is_head : false);
}

void
pending_flush(struct edge *e)
{
	struct pending *p = pending_oldest(e);

	/* An upgraded connection's line, now that it closes.  Requests that
	 * got nothing are not logged (as behind a response that ran to the
	 * close): no status was sent. */
	if (e->raw && p)
		pending_pop(e, 101);
	else if (p && p->answered)
		pending_pop(e, 0);
}

/* Writes the edge's own response now: nothing else is owed first. */
void
edge_answer_with(struct edge *e, int status, const char *detail, const char *extra)
{
	struct pending none = { .start_ms = clock_ms(), .method = "-", .path = "-" };
	struct pending *p = pending_oldest(e) ? pending_oldest(e) : &none;
	size_t before = buf_len(&e->to_visitor);

	if (p == &none && e->req.info.method_len) {
		/* A request refused before it was passed on: log what it asked. */
		snprintf(none.method, sizeof none.method, "%.*s", (int)e->req.info.method_len,
		         e->req.info.method);
		snprintf(none.path, sizeof none.path, "%.*s", (int)e->req.info.target_len,
		         e->req.info.target);
	}

	if (p != &none && p->answered) {
		/* Its response is under way: the close is all we can say. */
		pending_pop(e, status);
	} else if (page_error(&e->to_visitor, status, detail, extra) == -1) {
		log_warn("no room for a %d page", status);
	} else {
		p->bytes = buf_len(&e->to_visitor) - before;
		if (p != &none)
			pending_pop(e, status);
	}
	if (p == &none)
		edge_access_line(e, p, status);
	e->closing = true;
	e->close_deadline_ms = clock_ms() + LINGER_TIMEOUT_MS;
}

void
edge_answer(struct edge *e, int status, const char *detail)
{
	edge_answer_with(e, status, detail, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

void
edge_answer_owed(struct edge *e)
{
	edge_answer_with(e, e->error_status, e->error_text,
	            e->error_extra[0] ? e->error_extra : NULL);
}

/* An error in the request being read.  Responses owed to earlier
 * requests go first; this answer after them.  When the error is in a body,
 * its request was already passed on: it will never be answered by the app,
 * so it is owed this answer instead. */
void
edge_fail_with(struct edge *e, int status, const char *detail, const char *extra)
{
	if (e->error_status == 0) {
		e->error_status = status;
		e->error_owed = http_req_in_body(&e->req) ? 1 : 0;
		snprintf(e->error_text, sizeof e->error_text, "%s", detail);
		snprintf(e->error_extra, sizeof e->error_extra, "%s", extra ? extra : "");
	}
	if (e->queue_len <= e->error_owed)
		edge_answer_owed(e);
}

void
edge_fail(struct edge *e, int status, const char *detail)
{
	edge_fail_with(e, status, detail, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

/* n bytes of p into out as a string, cut to fit: what snprintf's "%.*s"
 * does, for a fraction of its instructions (once per request). */
static void
copy_cut(char *out, size_t size, const char *p, size_t n)
{
	if (n > size - 1)
		n = size - 1;
	if (n > 0)
		memcpy(out, p, n);
	out[n] = '\0';
}

void
pending_push(struct edge *e)
{
	struct pending *p;
	const struct http_req_head *h = &e->req.info;

	p = &e->queue[(e->queue_head + e->queue_len) % PIPELINE_MAX_REQUESTS];
	memset(p, 0, sizeof *p);
	p->start_ms = clock_ms();
	p->is_head = h->is_head;
	p->upgrade = h->upgrade;
	copy_cut(p->method, sizeof p->method, h->method, h->method_len);
	copy_cut(p->path, sizeof p->path, h->target, h->target_len);
	if (e->queue_len++ == 0)
		http_resp_expect(&e->resp, p->is_head);
}
