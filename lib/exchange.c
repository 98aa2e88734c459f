#include "exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "http_resp.h"

enum { S_HEAD, S_BODY, S_RAW };

struct side {
	llhttp_t parser;
	llhttp_settings_t settings;
	struct exchange_stream *s;
	bool response;
	int state;
	bool complete;             /* llhttp finished the message */
	struct buf head;
};

struct exchange_stream {
	struct exchange_options o;
	char local_host[256];
	char public_host[256];
	char public_scheme[8];
	struct side req;
	struct side resp;
	struct exchange *reading;  /* the request being read, while its exchange is open */
	struct exchange *tunnel;   /* after a 101: ends when the stream does */
	struct exchange *queue[EXCHANGE_PENDING_MAX];  /* heads read, responses not ended */
	int qhead, qlen;
	int64_t (*now_ms)(void);
	exchange_done_fn done;
	void *ctx;
};

static struct exchange *
exchange_new(void)
{
	struct exchange *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	buf_init(&x->request_head, EXCHANGE_HEAD_MAX_BYTES);
	buf_init(&x->response_head, EXCHANGE_HEAD_MAX_BYTES);
	buf_init(&x->request_body, 0);
	buf_init(&x->response_body, 0);
	return x;
}

void
exchange_free(struct exchange *x)
{
	if (x == NULL)
		return;
	buf_free(&x->request_head);
	buf_free(&x->response_head);
	buf_free(&x->request_body);
	buf_free(&x->response_body);
	free(x);
}

static struct exchange *
oldest(struct exchange_stream *s)
{
	return s->qlen ? s->queue[s->qhead] : NULL;
}

static struct exchange *
pop_oldest(struct exchange_stream *s)
{
	struct exchange *x = oldest(s);

	if (x) {
		s->qhead = (s->qhead + 1) % EXCHANGE_PENDING_MAX;
		s->qlen--;
	}
	return x;
}

/* --- llhttp callbacks --- */

static int
on_method(llhttp_t *p, const char *at, size_t len)
{
	struct side *d = p->data;
	struct exchange *x = d->s->reading;
	size_t have = strlen(x->method);

	if (have + len < sizeof x->method) {
		memcpy(x->method + have, at, len);
		x->method[have + len] = '\0';
	}
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct side *d = p->data;
	struct exchange *x = d->s->reading;
	size_t have = strlen(x->path);

	if (have + len >= sizeof x->path)
		len = sizeof x->path - 1 - have;
	memcpy(x->path + have, at, len);
	x->path[have + len] = '\0';
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct side *d = p->data;
	struct exchange *x;

	if (!d->response)
		return 0;
	x = oldest(d->s);
	if (x && (p->status_code >= 200 || p->status_code == 101))
		x->status = p->status_code;    /* a cut response still had one */
	/* 1: llhttp reads no body, whatever the fields say. */
	return http_resp_bodyless(p->status_code,
	                          x != NULL && strcmp(x->method, "HEAD") == 0) ? 1 : 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct side *d = p->data;
	struct exchange *x = d->response ? oldest(d->s) : d->s->reading;
	size_t cap = d->s->o.capture_bytes;
	struct buf *b;

	if (x == NULL)
		return 0;
	if (d->response)
		x->response_bytes += len;
	else
		x->request_bytes += len;
	b = d->response ? &x->response_body : &x->request_body;
	if (buf_len(b) < cap) {
		size_t take = cap - buf_len(b) < len ? cap - buf_len(b) : len;
		b->limit = cap;
		buf_append(b, at, take);
	}
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct side *d = p->data;

	d->complete = true;
	return HPE_PAUSED;
}

static void
side_init(struct side *d, struct exchange_stream *s, bool response)
{
	memset(d, 0, sizeof *d);
	d->s = s;
	d->response = response;
	llhttp_settings_init(&d->settings);
	if (!response) {
		d->settings.on_method = on_method;
		d->settings.on_url = on_url;
	}
	d->settings.on_headers_complete = on_headers_complete;
	d->settings.on_body = on_body;
	d->settings.on_message_complete = on_message_complete;
	llhttp_init(&d->parser, response ? HTTP_RESPONSE : HTTP_REQUEST, &d->settings);
	d->parser.data = d;
	buf_init(&d->head, EXCHANGE_HEAD_MAX_BYTES);
	d->state = S_HEAD;
}

struct exchange_stream *
exchange_stream_new(const struct exchange_options *o, int64_t (*now_ms)(void),
                    exchange_done_fn done, void *ctx)
{
	struct exchange_stream *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->o = *o;
	if (o->local_host) {
		snprintf(s->local_host, sizeof s->local_host, "%s", o->local_host);
		snprintf(s->public_host, sizeof s->public_host, "%s", o->public_host ? o->public_host : "");
		snprintf(s->public_scheme, sizeof s->public_scheme, "%s",
		         o->public_scheme ? o->public_scheme : "http");
		s->o.local_host = s->local_host;
		s->o.public_host = s->public_host;
		s->o.public_scheme = s->public_scheme;
	}
	s->now_ms = now_ms;
	s->done = done;
	s->ctx = ctx;
	side_init(&s->req, s, false);
	side_init(&s->resp, s, true);
	return s;
}

void
exchange_stream_free(struct exchange_stream *s)
{
	if (s == NULL)
		return;
	while (s->qlen)
		exchange_free(pop_oldest(s));
	exchange_free(s->tunnel);
	buf_free(&s->req.head);
	buf_free(&s->resp.head);
	free(s);
}

/* --- head rewriting --- */

/* Calls fn for each field line of a head (after the start line). */
static int
rebuild(struct buf *head, const struct exchange_options *o,
        int (*fn)(const char *line, size_t len, struct buf *out,
                  const struct exchange_options *o))
{
	struct buf out;
	const char *p = (const char *)buf_data(head), *end = p + buf_len(head), *eol;
	int rc = 0;

	buf_init(&out, EXCHANGE_HEAD_MAX_BYTES);
	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (eol == NULL) {
		buf_free(&out);
		return -1;
	}
	rc |= buf_append(&out, p, (size_t)(eol - p) + 2);
	for (p = eol + 2; p < end && !(end - p == 2 && p[0] == '\r'); p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			break;
		rc |= fn(p, (size_t)(eol - p), &out, o);
	}
	rc |= buf_append(&out, "\r\n", 2);
	if (rc == 0) {
		buf_free(head);
		*head = out;
		head->limit = EXCHANGE_HEAD_MAX_BYTES;
		return 0;
	}
	buf_free(&out);
	return -1;
}

static bool
named(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	*value = line + n + 1;
	*vlen = len - n - 1;
	while (*vlen && (**value == ' ' || **value == '\t')) {
		(*value)++;
		(*vlen)--;
	}
	return true;
}

static int
put_field(struct buf *out, const char *name, const char *v1, size_t l1, const char *v2,
          size_t l2)
{
	return buf_append(out, name, strlen(name)) | buf_append(out, ": ", 2) |
	       buf_append(out, v1, l1) | buf_append(out, v2, l2) | buf_append(out, "\r\n", 2);
}

#define LOOPBACK "127.0.0.1"

/* Whether an origin or URL prefix names the public host. */
static bool
is_public_origin(const char *v, size_t len, const struct exchange_options *o)
{
	char origin[300];
	int n = snprintf(origin, sizeof origin, "%s://%s", o->public_scheme, o->public_host);

	return n > 0 && len == (size_t)n && strncasecmp(v, origin, len) == 0;
}

static int
request_field(const char *line, size_t len, struct buf *out, const struct exchange_options *o)
{
	const char *v;
	size_t vlen;

	if (named(line, len, "host", &v, &vlen))
		return put_field(out, "Host", o->local_host, strlen(o->local_host), "", 0);
	if (named(line, len, "origin", &v, &vlen) && is_public_origin(v, vlen, o))
		return put_field(out, "Origin", "http://", 7, o->local_host, strlen(o->local_host));
	return buf_append(out, line, len) | buf_append(out, "\r\n", 2);
}

/* Whether v, from off on, is host followed by its end, '/' or '?'. */
static bool
names_host(const char *v, size_t len, size_t off, const char *host, size_t hlen)
{
	return len >= off + hlen && strncasecmp(v + off, host, hlen) == 0 &&
	       (len == off + hlen || v[off + hlen] == '/' || v[off + hlen] == '?');
}

/* "http://localhost:3000/x" -> "https://name.example.net/x": *rest is
 * where the part kept begins.  127.0.0.1:PORT names the same app. */
static bool
local_url(const char *v, size_t len, const struct exchange_options *o, size_t *rest)
{
	static const char *const schemes[] = { "http://", "https://" };
	const char *port = strchr(o->local_host, ':');
	char loopback[sizeof LOOPBACK + 8];
	size_t i, sl;

	snprintf(loopback, sizeof loopback, "%s%.7s", LOOPBACK, port ? port : "");
	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		sl = strlen(schemes[i]);
		if (len < sl || strncasecmp(v, schemes[i], sl) != 0)
			continue;
		if (names_host(v, len, sl, o->local_host, strlen(o->local_host))) {
			*rest = sl + strlen(o->local_host);
			return true;
		}
		if (port && names_host(v, len, sl, loopback, strlen(loopback))) {
			*rest = sl + strlen(loopback);
			return true;
		}
	}
	return false;
}

/* A cookie Domain= value naming the local machine (a leading dot is
 * allowed, RFC 6265 section 5.2.3). */
static bool
local_domain(const char *v, size_t n)
{
	static const char *const names[] = { "localhost", LOOPBACK };
	size_t i;

	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n && v[0] == '.') {
		v++;
		n--;
	}
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n == strlen(names[i]) && strncasecmp(v, names[i], n) == 0)
			return true;
	return false;
}

/* Drops a cookie's Domain= attribute when it names the local host, so
 * that the browser keeps it for the public host. */
static int
cookie_field(const char *v, size_t vlen, struct buf *out)
{
	const char *p = v, *end = v + vlen, *semi;
	int rc = buf_append(out, "Set-Cookie: ", 12);
	bool first = true;

	while (p < end) {
		const char *a = p;
		size_t alen;
		semi = memchr(p, ';', (size_t)(end - p));
		alen = (size_t)((semi ? semi : end) - p);
		while (alen && *a == ' ') {
			a++;
			alen--;
		}
		if (!(alen > 7 && strncasecmp(a, "domain=", 7) == 0 && local_domain(a + 7, alen - 7))) {
			if (!first)
				rc |= buf_append(out, "; ", 2);
			rc |= buf_append(out, a, alen);
			first = false;
		}
		p = semi ? semi + 1 : end;
	}
	return rc | buf_append(out, "\r\n", 2);
}

static int
response_field(const char *line, size_t len, struct buf *out, const struct exchange_options *o)
{
	const char *v;
	size_t vlen, rest;

	if (named(line, len, "location", &v, &vlen) && local_url(v, vlen, o, &rest))
		return buf_append(out, "Location: ", 10) |
		       buf_append(out, o->public_scheme, strlen(o->public_scheme)) |
		       buf_append(out, "://", 3) |
		       buf_append(out, o->public_host, strlen(o->public_host)) |
		       buf_append(out, v + rest, vlen - rest) | buf_append(out, "\r\n", 2);
	if (named(line, len, "set-cookie", &v, &vlen))
		return cookie_field(v, vlen, out);
	/* The app allowed the Origin it saw, which was rewritten to its own. */
	if (named(line, len, "access-control-allow-origin", &v, &vlen) &&
	    local_url(v, vlen, o, &rest) && rest == vlen)
		return buf_append(out, "Access-Control-Allow-Origin: ", 29) |
		       buf_append(out, o->public_scheme, strlen(o->public_scheme)) |
		       buf_append(out, "://", 3) |
		       buf_append(out, o->public_host, strlen(o->public_host)) |
		       buf_append(out, "\r\n", 2);
	return buf_append(out, line, len) | buf_append(out, "\r\n", 2);
}

/* A request head's Host (and a matching Origin) rewritten; the head is
 * replaced in place; -1 if it would not fit. */
static int
exchange_rewrite_request(struct buf *head, const struct exchange_options *o)
{
	return o->local_host ? rebuild(head, o, request_field) : 0;
}

int
exchange_rewrite_response(struct buf *head, const struct exchange_options *o)
{
	return o->local_host ? rebuild(head, o, response_field) : 0;
}

/* --- one direction --- */

static void
finish(struct exchange_stream *s, struct exchange *x, enum exchange_end how)
{
	if (s->reading == x)
		s->reading = NULL;    /* the rest of its body is not counted */
	x->end = how;
	x->end_ms = s->now_ms();
	if (s->done)
		s->done(s->ctx, x);
	else
		exchange_free(x);
}

/* A message ended on this side. */
static void
message_done(struct side *d)
{
	struct exchange_stream *s = d->s;
	struct exchange *x;
	int status;

	d->complete = false;
	d->state = S_HEAD;
	if (!d->response) {
		s->reading = NULL;
		if (llhttp_get_upgrade(&d->parser))
			d->state = S_RAW;    /* the edge sends nothing more until 101 or not */
		llhttp_resume(&d->parser);
		return;
	}
	status = d->parser.status_code;
	if (status >= 100 && status < 200 && status != 101) {
		llhttp_resume(&d->parser);
		return;
	}
	x = pop_oldest(s);
	if (x) {
		x->status = status;
		x->upgraded = status == 101;
		if (x->upgraded && s->tunnel == NULL) {
			if (s->reading == x)
				s->reading = NULL;
			s->tunnel = x;    /* its line comes when the connection closes */
		} else {
			finish(s, x, EXCHANGE_COMPLETE);
		}
	}
	if (status == 101) {
		d->state = S_RAW;
		s->req.state = S_RAW;
		return;
	}
	if (s->req.state == S_RAW) {
		/* An upgrade the app refused: requests follow again. */
		llhttp_init(&s->req.parser, HTTP_REQUEST, &s->req.settings);
		s->req.parser.data = &s->req;
		s->req.state = S_HEAD;
	}
	llhttp_resume(&d->parser);
}

/* A head is complete: parse it, rewrite it, keep a copy, pass it on. */
static int
head_done(struct side *d, struct buf *out)
{
	struct exchange_stream *s = d->s;
	struct exchange *x;
	llhttp_errno_t err;

	if (!d->response) {
		/* Open from its head on: an answer may come before its body. */
		if (s->qlen == EXCHANGE_PENDING_MAX || (x = exchange_new()) == NULL)
			return -1;
		x->start_ms = s->now_ms();
		s->reading = x;
		s->queue[(s->qhead + s->qlen++) % EXCHANGE_PENDING_MAX] = x;
	}
	err = llhttp_execute(&d->parser, (const char *)buf_data(&d->head), buf_len(&d->head));
	if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)
		return -1;
	if (d->response ? exchange_rewrite_response(&d->head, &s->o) :
	    exchange_rewrite_request(&d->head, &s->o))
		return -1;
	x = d->response ? oldest(s) : s->reading;
	if (x && s->o.capture_bytes) {
		struct buf *h = d->response ? &x->response_head : &x->request_head;
		buf_append(h, buf_data(&d->head), buf_len(&d->head));
	}
	if (buf_append(out, buf_data(&d->head), buf_len(&d->head)) == -1)
		return -1;
	buf_consume(&d->head, buf_len(&d->head));
	d->state = S_BODY;
	if (d->complete)
		message_done(d);
	return 0;
}

/* Bytes of a connection that is no longer HTTP: counted for its
 * upgrade's exchange, if there is one. */
static int
raw(struct side *d, const uint8_t *p, size_t n, struct buf *out)
{
	struct exchange *x = d->s->tunnel;

	if (x && d->response)
		x->response_bytes += n;
	else if (x)
		x->request_bytes += n;
	return buf_append(out, p, n);
}

/* Whether a new request must wait: as many wait for responses as are
 * followed. */
static bool
pipeline_full(const struct side *d)
{
	return !d->response && d->state == S_HEAD && buf_len(&d->head) == 0 &&
	       d->s->qlen == EXCHANGE_PENDING_MAX;
}

/* Takes bytes of one direction; -1 when the stream is not HTTP we can
 * follow (the caller then passes bytes through untouched).  *taken says
 * how many were taken. */
static int
side_feed(struct side *d, const uint8_t *p, size_t n, struct buf *out, size_t *taken)
{
	const uint8_t *end, *start = p;
	size_t used, before, look;
	llhttp_errno_t err;

	*taken = n;
	while (n > 0) {
		if (d->state == S_RAW)
			return raw(d, p, n, out);
		if (pipeline_full(d)) {
			*taken = (size_t)(p - start);
			return 0;
		}
		if (d->state == S_HEAD) {
			/* Only what a head may hold is looked at: a piece may
			 * bring a body far past it. */
			before = buf_len(&d->head);
			look = n < EXCHANGE_HEAD_MAX_BYTES - before ? n : EXCHANGE_HEAD_MAX_BYTES - before;
			if (look == 0 || buf_append(&d->head, p, look) == -1)
				return -1;
			end = memmem(buf_data(&d->head) + (before > 3 ? before - 3 : 0),
			             buf_len(&d->head) - (before > 3 ? before - 3 : 0), "\r\n\r\n", 4);
			if (end == NULL)
				return look < n ? -1 : 0;    /* past the bound: not followed */
			used = (size_t)(end + 4 - buf_data(&d->head)) - before;
			d->head.len = before + used;
			p += used;
			n -= used;
			if (head_done(d, out) == -1)
				return -1;
			continue;
		}
		err = llhttp_execute(&d->parser, (const char *)p, n);
		if (err == HPE_OK) {
			return buf_append(out, p, n);
		}
		if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && d->complete) {
			used = (size_t)(llhttp_get_error_pos(&d->parser) - (const char *)p);
			if (buf_append(out, p, used) == -1)
				return -1;
			p += used;
			n -= used;
			message_done(d);
			continue;
		}
		return -1;
	}
	return 0;
}

/* On anything we cannot follow, stop following: never break the bytes.
 * The bytes of this call, and a head begun before it, go on untouched.
 * Returns the bytes taken, or -1. */
static ssize_t
feed(struct side *d, const uint8_t *p, size_t n, struct buf *out)
{
	size_t before = buf_len(out), taken = n;
	struct buf held;
	int rc;

	if (d->state == S_RAW)
		return raw(d, p, n, out) == -1 ? -1 : (ssize_t)n;
	buf_init(&held, EXCHANGE_HEAD_MAX_BYTES);
	if (d->state == S_HEAD && buf_len(&d->head))
		buf_append(&held, buf_data(&d->head), buf_len(&d->head));
	rc = side_feed(d, p, n, out, &taken);
	if (rc == -1) {
		taken = n;
		out->len = before;
		d->state = S_RAW;
		buf_consume(&d->head, buf_len(&d->head));
		rc = buf_append(out, buf_data(&held), buf_len(&held)) | buf_append(out, p, n);
	}
	buf_free(&held);
	return rc == -1 ? -1 : (ssize_t)taken;
}

ssize_t
exchange_request(struct exchange_stream *s, const uint8_t *p, size_t n, struct buf *out)
{
	return feed(&s->req, p, n, out);
}

int
exchange_response(struct exchange_stream *s, const uint8_t *p, size_t n, struct buf *out)
{
	return feed(&s->resp, p, n, out) == -1 ? -1 : 0;
}

void
exchange_stream_end(struct exchange_stream *s, enum exchange_end how)
{
	struct side *d = &s->resp;
	struct exchange *x;
	llhttp_errno_t err;

	if (how == EXCHANGE_CUT && d->state == S_BODY && oldest(s)) {
		/* A body that runs to the close ends with it. */
		err = llhttp_finish(&d->parser);
		if ((err == HPE_OK || err == HPE_PAUSED) && d->complete)
			message_done(d);
	}
	if (s->tunnel) {
		x = s->tunnel;
		s->tunnel = NULL;
		finish(s, x, EXCHANGE_CLOSED);
	}
	while ((x = pop_oldest(s)) != NULL)
		finish(s, x, how);
	s->reading = NULL;
}

const char *
exchange_end_text(const struct exchange *x)
{
	switch (x->end) {
	case EXCHANGE_CUT:
		return x->status ? "cut: the app closed before the end" :
		       "cut: the app closed without answering";
	case EXCHANGE_ABANDONED:
		return "abandoned: the visitor went away";
	case EXCHANGE_CLOSED:
		return "upgraded connection closed";
	default:
		return "";
	}
}
