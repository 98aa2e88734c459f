/*
 * What comes back from the broker: its first line (the stream is open, or
 * why not), then the app's responses, followed to where each one ends so
 * that pipelined requests get theirs in order, or raw bytes after a 101.
 */
#include <stdio.h>
#include <string.h>

#include "edge.h"
#include "log.h"
#include "preamble.h"

static void
go_raw(struct edge *e)
{
	e->raw = true;
	e->upgrade_wait = false;
	/* What the visitor sent after the upgrade request is the new protocol. */
	e->raw_up += buf_len(&e->in);
	edge_queue(e, &e->to_broker, buf_data(&e->in), buf_len(&e->in));
	buf_consume(&e->in, buf_len(&e->in));
}

static void
on_response_end(struct edge *e, enum http_resp_event ev)
{
	struct pending *p = pending_oldest(e);

	if (ev == HTTP_RESP_INTERIM || p == NULL)
		return;
	if (ev == HTTP_RESP_UPGRADED) {
		if (!p->upgrade) {
			log_warn("app answered 101 to a request without Upgrade name=%s", e->name);
			e->closing = true;
			return;
		}
		go_raw(e);    /* logged at the close (pending_flush) */
		return;
	}
	if (p->upgrade && e->upgrade_wait) {
		/* The app said no to the upgrade: back to HTTP. */
		e->upgrade_wait = false;
		http_req_resume(&e->req);
	}
	pending_pop(e, e->resp.status);
	if (!e->resp.keep_alive) {
		/* Nothing may follow it: not the next response, not a page. */
		e->closing = true;
		return;
	}
	if (e->error_status && e->queue_len <= e->error_owed)
		edge_answer_owed(e);
}

/* Passes response bytes on, watching where each response ends. */
static void
relay_response(struct edge *e, const uint8_t *p, size_t n)
{
	enum http_resp_event ev;
	struct pending *q;
	size_t used;

	if (e->raw) {
		e->raw_down += n;
		edge_queue(e, &e->to_visitor, p, n);
		return;
	}
	while (n > 0 && !e->raw) {
		q = pending_oldest(e);
		if (q == NULL) {
			log_warn("app sent bytes nobody asked for name=%s", e->name);
			e->closing = true;
			return;
		}
		ev = http_resp_feed(&e->resp, p, n, &used);
		if (ev == HTTP_RESP_ERROR) {
			log_warn("app sent a malformed response name=%s reason=%s", e->name,
			         e->resp.reason);
			if (!q->answered)
				edge_answer(e, 502, "The app behind this tunnel sent a malformed response.");
			e->closing = true;
			return;
		}
		edge_queue(e, &e->to_visitor, p, used);
		q->answered = q->answered || used > 0;
		q->bytes += used;
		/* The status its head said: what the log says, even of a cut body. */
		if (e->resp.parser.status_code >= 200 || e->resp.parser.status_code == 101)
			q->status = e->resp.parser.status_code;
		p += used;
		n -= used;
		if (ev != HTTP_RESP_MORE)
			on_response_end(e, ev);
		if (e->closing)
			return;
	}
	if (n > 0) {
		e->raw_down += n;
		edge_queue(e, &e->to_visitor, p, n);    /* raw after a 101 */
	}
}

/* The broker's first line: the stream is open, or why not. */
static void
read_reply(struct edge *e, const uint8_t **p, size_t *n)
{
	const uint8_t *nl = memchr(*p, '\n', *n);
	size_t take = nl ? (size_t)(nl - *p) + 1 : *n;
	char line[PREAMBLE_MAX_BYTES + 1], detail[256];
	struct preamble_answer a;
	int ok;

	if (buf_append(&e->reply, *p, take) == -1) {
		edge_answer(e, 502, "The tunnel service answered oddly.");
		*n = 0;
		return;
	}
	*p += take;
	*n -= take;
	if (nl == NULL)
		return;
	snprintf(line, sizeof line, "%.*s", (int)buf_len(&e->reply) - 1,
	         (const char *)buf_data(&e->reply));
	buf_consume(&e->reply, buf_len(&e->reply));
	ok = preamble_answer_parse(line, &a) == 0;
	if (ok && a.kind == PREAMBLE_OPENED && !e->acked) {
		e->acked = true;    /* alive; OK or ERR follows */
		return;
	}
	if (ok && a.kind == PREAMBLE_OK) {
		e->replied = true;
		return;
	}
	*n = 0;
	if (!ok || a.kind != PREAMBLE_ERR)
		a.code = PREAMBLE_UNKNOWN;
	if (a.code == PREAMBLE_REFUSED) {
		snprintf(detail, sizeof detail, "The tunnel is up, but nothing answered "
		         "on %.64s on the developer's machine. Start the app, or check "
		         "the port given to expose.",
		         a.detail[0] ? a.detail : "its local port");
		edge_answer(e, 502, detail);
	} else if (a.code == PREAMBLE_THROTTLED) {
		throttle_answer(e, a.seconds, true);
	} else if (a.code == PREAMBLE_LIMIT) {
		edge_answer(e, 503, "This tunnel is serving as many requests as it may; "
		               "try again in a moment.");
	} else {
		edge_answer(e, 502, "The tunnel closed before the app answered.");
	}
}

void
response_bytes(struct edge *e, const uint8_t *p, size_t n)
{
	while (!e->replied && n > 0)
		read_reply(e, &p, &n);
	if (!e->replied)
		return;
	if (n)
		relay_response(e, p, n);
}

void
response_eof(struct edge *e)
{
	struct pending *p;

	e->broker_eof = true;
	if (!e->raw && e->replied && http_resp_finish(&e->resp) != HTTP_RESP_MORE)
		on_response_end(e, HTTP_RESP_COMPLETE);
	p = pending_oldest(e);
	/* Once a response ended the connection (its body ran to this close,
	 * or it said Connection: close), the close is all the visitor may
	 * read next: a page for a request pipelined behind it would read as
	 * more of that body.  Likewise after any other reason to close. */
	if (!e->raw && !e->closing && p && !p->answered)
		edge_answer(e, 502, e->replied ?
		       "The app closed the connection without answering." :
		       "The tunnel closed before the app answered.");
	e->closing = true;
}
