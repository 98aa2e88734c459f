/*
 * The edge's view of the app's responses (lib/http_resp.c): whatever the
 * app sends, where each response ends, and its status, must not depend
 * on how the bytes were split on arrival; and a response that has no
 * body by RFC 9112 section 6.3 (1xx, 204, 304, or to HEAD) must end at
 * its head.  The first byte: bit 0, the first response answers HEAD;
 * the rest, a split point.  Then the app's bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_resp.h"

#define EVENTS_MAX 64

struct seen {
	int n;
	enum http_resp_event ev[EVENTS_MAX];
	int status[EVENTS_MAX];
	size_t end[EVENTS_MAX];
};

static void
note(struct seen *s, enum http_resp_event ev, int status, size_t end)
{
	if (s->n == EVENTS_MAX)
		return;
	s->ev[s->n] = ev;
	s->status[s->n] = status;
	s->end[s->n++] = end;
}

/* Feeds p in pieces of at most step bytes (0: at once), as the edge does. */
static void
run(const uint8_t *p, size_t n, bool head, size_t step, struct seen *s)
{
	struct http_resp r;
	size_t off = 0, piece, used;
	enum http_resp_event ev;

	memset(s, 0, sizeof *s);
	http_resp_init(&r);
	http_resp_expect(&r, head);
	while (off < n) {
		piece = step && n - off > step ? step : n - off;
		while (piece > 0) {
			ev = http_resp_feed(&r, p + off, piece, &used);
			off += used;
			piece -= used;
			if (ev == HTTP_RESP_ERROR) {
				note(s, ev, 0, 0);
				return;
			}
			if (ev == HTTP_RESP_MORE)
				continue;
			note(s, ev, r.status, off);
			if (ev == HTTP_RESP_UPGRADED)
				return;
			if (ev == HTTP_RESP_COMPLETE)
				http_resp_expect(&r, false);
		}
	}
	ev = http_resp_finish(&r);
	if (ev != HTTP_RESP_MORE)
		note(s, ev, ev == HTTP_RESP_ERROR ? 0 : r.status, ev == HTTP_RESP_ERROR ? 0 : off);
}

/* Whether p[0..end) ends with a head's blank line: LF, then CR LF or LF. */
static bool
ends_head(const uint8_t *p, size_t end)
{
	return end >= 2 && p[end - 1] == '\n' &&
	       (p[end - 2] == '\n' || (end >= 3 && p[end - 2] == '\r' && p[end - 3] == '\n'));
}

/* A response with no body by its status (or HEAD) ends at its head. */
static void
check_bodyless(const uint8_t *p, const struct seen *s, bool head)
{
	int i;

	for (i = 0; i < s->n; i++) {
		if (s->ev[i] == HTTP_RESP_ERROR)
			return;
		if (http_resp_bodyless(s->status[i], head) && !ends_head(p, s->end[i]))
			abort();    /* a bodyless response read past its head */
		if (s->ev[i] == HTTP_RESP_COMPLETE)
			head = false;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen whole, bytewise, split;
	bool head;

	if (size < 1)
		return 0;
	head = data[0] & 1;
	run(data + 1, size - 1, head, 0, &whole);
	run(data + 1, size - 1, head, 1, &bytewise);
	run(data + 1, size - 1, head, (size_t)(data[0] >> 1) + 1, &split);
	if (memcmp(&whole, &bytewise, sizeof whole) != 0 ||
	    memcmp(&whole, &split, sizeof whole) != 0)
		abort();    /* the view depends on how the bytes arrived */
	check_bodyless(data + 1, &whole, head);
	return 0;
}
