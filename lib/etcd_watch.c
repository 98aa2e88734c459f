/*
 * etcd's watch over the JSON gateway: one POST /v3/watch whose reply is a
 * chunked stream of JSON messages, one a line.  Chunk framing is undone
 * as bytes arrive; each whole line is one message.
 */
#include "etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One watch message (a batch of events) larger than this breaks the
 * stream, and the mirror resyncs from a listing instead. */
#define WATCH_LINE_MAX_BYTES (16 * 1024 * 1024)
/* A chunk-size line longer than this is not one. */
#define CHUNK_LINE_MAX_BYTES 32

static int
grow(char **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	char *q;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return 0;
	if (n > WATCH_LINE_MAX_BYTES + 4096 || (q = realloc(*p, n)) == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static int
append(char **p, size_t *len, size_t *cap, const char *src, size_t n)
{
	if (grow(p, cap, *len + n + 1) == -1)
		return -1;
	memcpy(*p + *len, src, n);
	*len += n;
	return 0;
}

int
etcd_watch_open(struct etcd *e, struct etcd_watch *w, const char *prefix, int64_t rev)
{
	char end[256], *k = etcd_b64(prefix, strlen(prefix)), *ke, *text = NULL;
	char start[24];
	struct etcd_head h;
	json_t *body = NULL;

	memset(w, 0, sizeof *w);
	w->fd = -1;
	etcd_prefix_end(prefix, end, sizeof end);
	ke = etcd_b64(end, strlen(end));
	snprintf(start, sizeof start, "%lld", (long long)rev);
	if (k && ke)
		body = json_pack("{s:{s:s, s:s, s:s}}", "create_request", "key", k,
		                 "range_end", ke, "start_revision", start);
	free(k);
	free(ke);
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL) {
		snprintf(e->why, sizeof e->why, "out of memory");
		return -1;
	}
	w->fd = etcd_post_open(e, "/v3/watch", text, &h);
	free(text);
	if (w->fd == -1)
		return -1;
	if (h.status != 200 || !h.chunked) {
		snprintf(e->why, sizeof e->why, "watch: HTTP status %d", h.status);
		etcd_watch_close(w);
		return -1;
	}
	if (append(&w->buf, &w->len, &w->cap, h.rest, h.rest_len) == -1) {
		etcd_watch_close(w);
		return -1;
	}
	return 0;
}

/* Moves chunk payload from w->buf to w->line.  -1 on bad framing. */
static int
dechunk(struct etcd_watch *w)
{
	size_t off = 0, take;
	char *nl, *end;
	unsigned long size;

	while (off < w->len) {
		if (w->chunk_left == 0) {
			nl = memchr(w->buf + off, '\n', w->len - off);
			if (nl == NULL)
				break;
			if ((size_t)(nl - (w->buf + off)) > CHUNK_LINE_MAX_BYTES)
				return -1;
			if (nl == w->buf + off || (nl == w->buf + off + 1 && w->buf[off] == '\r')) {
				off = (size_t)(nl - w->buf) + 1;    /* a chunk's closing CRLF */
				continue;
			}
			size = strtoul(w->buf + off, &end, 16);
			if (end == w->buf + off)
				return -1;
			if (size == 0) {
				w->done = 1;
				break;
			}
			w->chunk_left = size;
			off = (size_t)(nl - w->buf) + 1;
			continue;
		}
		take = w->len - off < w->chunk_left ? w->len - off : w->chunk_left;
		if (append(&w->line, &w->llen, &w->lcap, w->buf + off, take) == -1)
			return -1;
		off += take;
		w->chunk_left -= take;
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return 0;
}

/* The events of one message; -1 if it says the watch is over. */
static int
parse_message(struct etcd_watch *w, json_t *m, struct etcd_event **events, int *n,
              char *why, size_t size)
{
	json_t *res = json_object_get(m, "result"), *list, *ev;
	size_t i, count;

	*events = NULL;
	*n = 0;
	if (res == NULL) {
		snprintf(why, size, "watch error: %s", json_string_value(json_object_get(
		         json_object_get(m, "error"), "message")) ? json_string_value(json_object_get(json_object_get(m, "error"), "message")) : "no result");
		return -1;
	}
	if (etcd_int(res, "compact_revision") != 0 ||
	    json_is_true(json_object_get(res, "canceled"))) {
		w->cancelled = 1;
		w->compact_rev = etcd_int(res, "compact_revision");
		snprintf(why, size, "watch cancelled (compacted to revision %lld)",
		         (long long)etcd_int(res, "compact_revision"));
		return -1;
	}
	list = json_object_get(res, "events");
	count = json_array_size(list);
	if (count == 0)
		return 0;
	if ((*events = calloc(count, sizeof **events)) == NULL)
		return -1;
	for (i = 0; i < count; i++) {
		ev = json_array_get(list, i);
		(*events)[i].kind = json_is_string(json_object_get(ev, "type")) &&
		    strcmp(json_string_value(json_object_get(ev, "type")), "DELETE") == 0 ?
		    ETCD_DELETE : ETCD_PUT;
		if (etcd_kv_parse(json_object_get(ev, "kv"), &(*events)[i].kv) == -1) {
			etcd_events_free(*events, (int)i);
			*events = NULL;
			snprintf(why, size, "watch: a malformed event");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* A whole line in w->line: 1 and parsed, 0 none yet, -1 bad. */
static int
take_line(struct etcd_watch *w, struct etcd_event **events, int *n, char *why,
          size_t size)
{
	char *nl = w->line ? memchr(w->line, '\n', w->llen) : NULL;
	json_error_t jerr;
	json_t *m;
	size_t used;
	int rc;

	if (nl == NULL)
		return 0;
	used = (size_t)(nl - w->line) + 1;
	m = json_loadb(w->line, used - 1, 0, &jerr);
	memmove(w->line, w->line + used, w->llen - used);
	w->llen -= used;
	if (m == NULL) {
		snprintf(why, size, "watch: a message is not JSON");
		return -1;
	}
	rc = parse_message(w, m, events, n, why, size);
	json_decref(m);
	return rc == 0 ? 1 : -1;
}

int
etcd_watch_next(struct etcd_watch *w, int timeout_ms, struct etcd_event **events,
                int *n, char *why, size_t size)
{
	char chunk[16384];
	ssize_t r;
	int rc;

	*events = NULL;
	*n = 0;
	for (;;) {
		if (dechunk(w) == -1) {
			snprintf(why, size, "watch: malformed chunked stream");
			return -1;
		}
		if ((rc = take_line(w, events, n, why, size)) != 0)
			return rc;
		if (w->done) {
			snprintf(why, size, "watch: the stream ended");
			return -1;
		}
		r = etcd_read(w->fd, chunk, sizeof chunk, timeout_ms);
		if (r == -1 && errno == ETIMEDOUT)
			return 0;
		if (r <= 0) {
			snprintf(why, size, "watch: %s", r == 0 ? "connection closed" :
			         strerror(errno));
			return -1;
		}
		if (append(&w->buf, &w->len, &w->cap, chunk, (size_t)r) == -1) {
			snprintf(why, size, "watch: out of memory");
			return -1;
		}
	}
}

void
etcd_events_free(struct etcd_event *ev, int n)
{
	int i;

	for (i = 0; i < n; i++)
		etcd_kv_free(&ev[i].kv);
	free(ev);
}

void
etcd_watch_close(struct etcd_watch *w)
{
	if (w->fd != -1)
		close(w->fd);
	free(w->buf);
	free(w->line);
	memset(w, 0, sizeof *w);
	w->fd = -1;
}
