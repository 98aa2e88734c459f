#include "http_req.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "host.h"

enum {
	S_HEAD,        /* reading a head */
	S_HEAD_READY,  /* head returned to the caller, not yet emitted */
	S_BODY,        /* forwarding a body */
	S_UPGRADE,     /* waiting for the response to an upgrade */
	S_CLOSED,      /* the last request of the connection is done */
	S_ERROR,
};

/* Longest method token we accept (llhttp knows them all by name). */
#define METHOD_MAX_BYTES 24

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

static enum http_req_event
fail(struct http_req *r, int status, const char *reason)
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

/* --- the strict scan of a complete head --- */

static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field value byte: HTAB, SP, VCHAR or obs-text; no CTL, no DEL. */
static bool
is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static const char *
find_crlf(const char *p, const char *end)
{
	const char *q = memchr(p, '\r', (size_t)(end - p));

	return q ? q : end;
}

static enum http_req_event
scan_request_line(struct http_req *r, const char *p, const char *eol)
{
	const char *sp1, *sp2, *v;
	size_t mlen, tlen;

	for (sp1 = p; sp1 < eol && is_tchar((unsigned char)*sp1); sp1++)
		;
	mlen = (size_t)(sp1 - p);
	if (mlen == 0 || sp1 == eol || *sp1 != ' ')
		return fail(r, 400, "malformed request line");
	if (mlen > METHOD_MAX_BYTES)
		return fail(r, 501, "unknown method");
	for (sp2 = sp1 + 1; sp2 < eol && *sp2 > 0x20 && *sp2 < 0x7f; sp2++)
		;
	tlen = (size_t)(sp2 - sp1 - 1);
	if (tlen == 0)
		return fail(r, 400, "malformed request line");
	if (sp2 == eol)
		return fail(r, 400, "HTTP/0.9 requests are not supported");
	if (*sp2 != ' ')
		return fail(r, 400, "malformed request target");
	if (tlen > URI_MAX_BYTES)
		return fail(r, 414, "request target too long");
	v = sp2 + 1;
	if (eol - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
	    v[6] != '.' || v[7] < '0' || v[7] > '9')
		return fail(r, 400, "malformed HTTP version");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	r->info.method = p;
	r->info.method_len = mlen;
	r->info.target = sp1 + 1;
	r->info.target_len = tlen;
	r->info.minor = v[7] - '0';
	return HTTP_REQ_MORE;
}

static enum http_req_event
scan_field(struct http_req *r, const char *base, const char *p, const char *eol)
{
	const char *colon, *v, *vend;
	struct http_field *f;

	if (*p == ' ' || *p == '\t')
		return fail(r, 400, "obsolete line folding");
	for (colon = p; colon < eol && is_tchar((unsigned char)*colon); colon++)
		;
	if (colon == p || colon == eol || *colon != ':')
		return fail(r, 400, colon < eol && (*colon == ' ' || *colon == '\t') ?
		            "whitespace before a field's colon" : "malformed header field");
	for (v = colon + 1; v < eol; v++)
		if (!is_value_char((unsigned char)*v))
			return fail(r, 400, "control character in a header field");
	if (r->nfields == r->fields_max)
		return fail(r, 431, "too many header fields");
	for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
		;
	for (vend = eol; vend > v && (vend[-1] == ' ' || vend[-1] == '\t'); vend--)
		;
	f = &r->fields[r->nfields++];
	f->name = (uint32_t)(p - base);
	f->name_len = (uint16_t)(colon - p);
	f->value = (uint32_t)(v - base);
	f->value_len = (uint32_t)(vend - v);
	return HTTP_REQ_MORE;
}

static enum http_req_event
scan_head(struct http_req *r)
{
	const char *base = (const char *)buf_data(&r->head);
	const char *end = base + buf_len(&r->head) - 2;   /* the final CRLF */
	const char *p = base, *eol;
	enum http_req_event ev;

	r->nfields = 0;
	eol = find_crlf(p, end);
	ev = scan_request_line(r, p, eol);
	if (ev != HTTP_REQ_MORE)
		return ev;
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = find_crlf(p, end);
		ev = scan_field(r, base, p, eol);
		if (ev != HTTP_REQ_MORE)
			return ev;
	}
	return HTTP_REQ_MORE;
}

/* --- field semantics --- */

static const char *
field_name(const struct http_req *r, const struct http_field *f)
{
	return (const char *)buf_data(&r->head) + f->name;
}

static const char *
field_value(const struct http_req *r, const struct http_field *f)
{
	return (const char *)buf_data(&r->head) + f->value;
}

static bool
field_is(const struct http_req *r, const struct http_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	       strncasecmp(field_name(r, f), name, f->name_len) == 0;
}

static size_t
field_count(const struct http_req *r, const char *name, const struct http_field **last)
{
	size_t i, n = 0;

	for (i = 0; i < r->nfields; i++) {
		if (field_is(r, &r->fields[i], name)) {
			n++;
			if (last)
				*last = &r->fields[i];
		}
	}
	return n;
}

const char *
http_req_field(const struct http_req *r, const char *name, size_t *len)
{
	const struct http_field *f = NULL;

	if (field_count(r, name, &f) == 0)
		return NULL;
	*len = f->value_len;
	return field_value(r, f);
}

/* Whether a comma-separated list value holds token (case-insensitive). */
static bool
list_has(const char *v, size_t len, const char *token)
{
	size_t i = 0, start, end, tlen = strlen(token);

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return true;
	}
	return false;
}

static bool
any_field_has(const struct http_req *r, const char *name, const char *token)
{
	size_t i;

	for (i = 0; i < r->nfields; i++) {
		const struct http_field *f = &r->fields[i];
		if (field_is(r, f, name) && list_has(field_value(r, f), f->value_len, token))
			return true;
	}
	return false;
}

/* The codings of a Transfer-Encoding value, as a list: empty elements
 * ignored, OWS trimmed (RFC 9110 5.6.1).  Returns how many, and whether
 * the last is chunked and whether chunked appears before it. */
static size_t
te_codings(const char *v, size_t len, bool *last_chunked, bool *early_chunked)
{
	size_t i = 0, start, end, n = 0;

	*last_chunked = *early_chunked = false;
	while (i < len) {
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i++;
		while (start < end && (v[start] == ' ' || v[start] == '\t'))
			start++;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end == start)
			continue;
		if (*last_chunked)
			*early_chunked = true;
		*last_chunked = end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
		n++;
	}
	return n;
}

static enum http_req_event
check_framing(struct http_req *r)
{
	const struct http_field *te = NULL;
	size_t nte = field_count(r, "transfer-encoding", &te), ncodings;
	bool last_chunked, early_chunked;

	if (field_count(r, "content-length", NULL) > 1)
		return fail(r, 400, "several Content-Length fields");
	if (nte == 0)
		return HTTP_REQ_MORE;
	if (nte > 1)
		return fail(r, 400, "several Transfer-Encoding fields");
	if (field_count(r, "content-length", NULL) > 0)
		return fail(r, 400, "both Content-Length and Transfer-Encoding");
	if (r->info.minor == 0)
		return fail(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
	ncodings = te_codings(field_value(r, te), te->value_len, &last_chunked, &early_chunked);
	if (!last_chunked || early_chunked)
		return fail(r, 400, "Transfer-Encoding does not end in one chunked");
	if (ncodings > 1)
		return fail(r, 501, "transfer codings other than chunked are not supported");
	/* Our reading and llhttp's must agree, or the body's end is ambiguous. */
	if (!r->chunked)
		return fail(r, 400, "ambiguous Transfer-Encoding");
	return HTTP_REQ_MORE;
}

/* Underscore spellings of fields that frame, route or vouch for a request:
 * servers that map '-' and '_' to one name would take them for the real
 * ones. */
static enum http_req_event
check_twins(struct http_req *r)
{
	static const char *const guarded[] = {
		"content-length", "transfer-encoding", "host", "connection", "upgrade",
		"expect", "te", "trailer", "authorization", "x-forwarded-for",
		"x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip",
		"forwarded",
	};
	char norm[32];
	size_t i, j, k;

	for (i = 0; i < r->nfields; i++) {
		const struct http_field *f = &r->fields[i];
		const char *name = field_name(r, f);
		if (f->name_len >= sizeof norm || !memchr(name, '_', f->name_len))
			continue;
		for (j = 0; j < f->name_len; j++)
			norm[j] = name[j] == '_' ? '-' : (char)((name[j] >= 'A' && name[j] <= 'Z') ?
			          name[j] + 32 : name[j]);
		norm[f->name_len] = '\0';
		for (k = 0; k < sizeof guarded / sizeof guarded[0]; k++)
			if (strcmp(norm, guarded[k]) == 0)
				return fail(r, 400, "an underscore spelling of a framing or forwarding field");
	}
	return HTTP_REQ_MORE;
}

static enum http_req_event
check_expect(struct http_req *r)
{
	size_t len;
	const char *v = http_req_field(r, "expect", &len);

	if (v == NULL || (len == 12 && strncasecmp(v, "100-continue", 12) == 0))
		return HTTP_REQ_MORE;
	return fail(r, 417, "the only expectation supported is 100-continue");
}

/* Absolute-form targets must name the Host; they go on as origin-form. */
static enum http_req_event
check_target(struct http_req *r)
{
	const char *t = r->info.target, *auth, *path;
	size_t tlen = r->info.target_len, skip;

	if (r->info.method_len == 7 && memcmp(r->info.method, "CONNECT", 7) == 0)
		return fail(r, 405, "CONNECT is not allowed");
	if (t[0] == '/')
		return HTTP_REQ_MORE;
	if (tlen == 1 && t[0] == '*') {
		if (r->info.method_len == 7 && memcmp(r->info.method, "OPTIONS", 7) == 0)
			return HTTP_REQ_MORE;
		return fail(r, 400, "'*' is a target for OPTIONS only");
	}
	if (tlen > 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (tlen > 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return fail(r, 400, "malformed request target");
	auth = t + skip;
	path = memchr(auth, '/', tlen - skip);
	if (path == NULL)
		path = t + tlen;
	if (memchr(auth, '@', (size_t)(path - auth)) ||
	    !host_same(auth, (size_t)(path - auth), r->info.host, r->info.host_len,
	               skip == 7 ? 80 : 443))
		return fail(r, 400, "the request target names another host than Host");
	if (path == t + tlen) {
		r->info.target = "/";
		r->info.target_len = 1;
	} else {
		r->info.target = path;
		r->info.target_len = (size_t)(t + tlen - path);
	}
	return HTTP_REQ_MORE;
}

static enum http_req_event
check_head(struct http_req *r)
{
	const struct http_field *host = NULL;
	enum http_req_event ev;
	size_t n = field_count(r, "host", &host);

	if (n == 0)
		return fail(r, 400, "no Host field");
	if (n > 1)
		return fail(r, 400, "several Host fields");
	r->info.host = field_value(r, host);
	r->info.host_len = host->value_len;
	if ((ev = check_twins(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = check_framing(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = check_expect(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = check_target(r)) != HTTP_REQ_MORE)
		return ev;
	r->info.is_head = r->info.method_len == 4 && memcmp(r->info.method, "HEAD", 4) == 0;
	if (r->info.minor == 1)
		r->info.keep_alive = !any_field_has(r, "connection", "close");
	else
		r->info.keep_alive = any_field_has(r, "connection", "keep-alive") &&
		                     !any_field_has(r, "connection", "close");
	/* h2c is never relayed: its Upgrade is stripped at emit time. */
	r->info.upgrade = any_field_has(r, "connection", "upgrade") &&
	                  field_count(r, "upgrade", NULL) > 0 &&
	                  !any_field_has(r, "upgrade", "h2c");
	return HTTP_REQ_MORE;
}

/* Runs llhttp over the whole head: its verdict on the framing fields. */
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
			return fail(r, 400, "malformed request");
		return HTTP_REQ_MORE;
	}
	if (err != HPE_OK)
		return fail(r, 400, llhttp_get_error_reason(&r->parser) ?
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
		return fail(r, 431, "request head too large");
	h = buf_data(&r->head);
	len = buf_len(&r->head);
	for (i = r->scanned; i < len; i++) {
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			return fail(r, 400, "bare LF in the request head");
		if (i > 0 && h[i - 1] == '\r' && h[i] != '\n')
			return fail(r, 400, "bare CR in the request head");
		if (h[i] == '\0')
			return fail(r, 400, "NUL in the request head");
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
			return fail(r, 414, "request target too long");
		return fail(r, 431, "request head too large");
	}
	return HTTP_REQ_MORE;
}

static enum http_req_event
head_ready(struct http_req *r)
{
	enum http_req_event ev;

	memset(&r->info, 0, sizeof r->info);
	if ((ev = scan_head(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = parse_head(r)) != HTTP_REQ_MORE)
		return ev;
	if ((ev = check_head(r)) != HTTP_REQ_MORE)
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
		return fail(r, 400, "chunk extensions too long");
	if (err == HPE_USER)
		return fail(r, 500, "edge buffer full");
	return fail(r, 400, llhttp_get_error_reason(&r->parser) ?
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

/* --- emitting the head --- */

/* Fields the edge sets itself, or that would let a visitor pose as it. */
static bool
is_edge_field(const struct http_req *r, const struct http_field *f)
{
	static const char *const names[] = {
		"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
		"x-forwarded-port", "x-real-ip", "forwarded",
	};
	char norm[32];
	size_t i;

	if (f->name_len >= sizeof norm)
		return false;
	for (i = 0; i < f->name_len; i++) {
		char c = field_name(r, f)[i];
		norm[i] = c == '_' ? '-' : (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	norm[f->name_len] = '\0';
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(norm, names[i]) == 0)
			return true;
	return false;
}

static int
put(struct buf *out, const void *p, size_t n)
{
	return buf_append(out, p, n);
}

static int
put_str(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* Connection keeps only the tokens that matter end to end, so that no
 * visitor can name the edge's fields as hop-by-hop. */
static int
emit_connection(struct http_req *r, struct buf *out)
{
	char v[64] = "";
	bool upg = r->info.upgrade;

	if (any_field_has(r, "connection", "close"))
		strcat(v, "close");
	else if (any_field_has(r, "connection", "keep-alive"))
		strcat(v, "keep-alive");
	if (upg)
		strcat(v, *v ? ", Upgrade" : "Upgrade");
	if (*v == '\0')
		return 0;
	return put_str(out, "Connection: ") | put_str(out, v) | put(out, "\r\n", 2);
}

static int
emit_fields(struct http_req *r, struct buf *out)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < r->nfields; i++) {
		const struct http_field *f = &r->fields[i];
		/* X-Forwarded-For is re-emitted with the peer appended. */
		if (r->drop_authorization && field_is(r, f, "authorization"))
			continue;
		if (is_edge_field(r, f) || field_is(r, f, "connection") ||
		    field_is(r, f, "content-length") ||
		    field_is(r, f, "transfer-encoding"))
			continue;
		if (!r->info.upgrade &&
		    (field_is(r, f, "upgrade") || field_is(r, f, "http2-settings")))
			continue;
		rc |= put(out, field_name(r, f), f->name_len);
		rc |= put(out, ": ", 2);
		rc |= put(out, field_value(r, f), f->value_len);
		rc |= put(out, "\r\n", 2);
	}
	return rc;
}

static int
emit_xff(struct http_req *r, struct buf *out, const char *peer)
{
	size_t i, n = 0;
	int rc = put_str(out, "X-Forwarded-For: ");

	for (i = 0; i < r->nfields; i++) {
		const struct http_field *f = &r->fields[i];
		if (!field_is(r, f, "x-forwarded-for") || f->value_len == 0)
			continue;
		if (n++)
			rc |= put(out, ", ", 2);
		rc |= put(out, field_value(r, f), f->value_len);
	}
	if (n)
		rc |= put(out, ", ", 2);
	rc |= put_str(out, peer);
	return rc | put(out, "\r\n", 2);
}

int
http_req_emit_head(struct http_req *r, struct buf *out, const char *peer,
                   const char *proto)
{
	char line[64];
	int rc = 0;

	if (r->state != S_HEAD_READY)
		return -1;
	rc |= put(out, r->info.method, r->info.method_len);
	rc |= put(out, " ", 1);
	rc |= put(out, r->info.target, r->info.target_len);
	rc |= put_str(out, r->info.minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	rc |= emit_fields(r, out);
	rc |= emit_connection(r, out);
	if (r->chunked)
		rc |= put_str(out, "Transfer-Encoding: chunked\r\n");
	else if (field_count(r, "content-length", NULL)) {
		snprintf(line, sizeof line, "Content-Length: %llu\r\n",
		         (unsigned long long)r->parser.content_length);
		rc |= put_str(out, line);
	}
	rc |= emit_xff(r, out, peer);
	rc |= put_str(out, "X-Forwarded-Proto: ") | put_str(out, proto) | put(out, "\r\n", 2);
	rc |= put_str(out, "X-Forwarded-Host: ");
	rc |= put(out, r->info.host, r->info.host_len);
	rc |= put(out, "\r\n\r\n", 4);
	if (rc)
		return -1;
	r->state = S_BODY;
	return 0;
}
