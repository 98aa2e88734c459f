/*
 * The strict half of the request parser: every byte of a complete head
 * checked against RFC 9110/9112 before llhttp sees it, then the framing,
 * the fields that must not repeat, Expect and the target.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "host.h"
#include "http_req_int.h"

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
		return http_req_fail(r, 400, "malformed request line");
	if (mlen > METHOD_MAX_BYTES)
		return http_req_fail(r, 501, "unknown method");
	for (sp2 = sp1 + 1; sp2 < eol && *sp2 > 0x20 && *sp2 < 0x7f; sp2++)
		;
	tlen = (size_t)(sp2 - sp1 - 1);
	if (tlen == 0)
		return http_req_fail(r, 400, "malformed request line");
	if (sp2 == eol)
		return http_req_fail(r, 400, "HTTP/0.9 requests are not supported");
	if (*sp2 != ' ')
		return http_req_fail(r, 400, "malformed request target");
	if (tlen > URI_MAX_BYTES)
		return http_req_fail(r, 414, "request target too long");
	v = sp2 + 1;
	if (eol - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
	    v[6] != '.' || v[7] < '0' || v[7] > '9')
		return http_req_fail(r, 400, "malformed HTTP version");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return http_req_fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
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
		return http_req_fail(r, 400, "obsolete line folding");
	for (colon = p; colon < eol && is_tchar((unsigned char)*colon); colon++)
		;
	if (colon == p || colon == eol || *colon != ':')
		return http_req_fail(r, 400, colon < eol && (*colon == ' ' || *colon == '\t') ?
		            "whitespace before a field's colon" : "malformed header field");
	for (v = colon + 1; v < eol; v++)
		if (!is_value_char((unsigned char)*v))
			return http_req_fail(r, 400, "control character in a header field");
	if (r->nfields == r->fields_max)
		return http_req_fail(r, 431, "too many header fields");
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

enum http_req_event
http_req_scan_head(struct http_req *r)
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

const char *
http_field_name(const struct http_req *r, const struct http_field *f)
{
	return (const char *)buf_data(&r->head) + f->name;
}

const char *
http_field_value(const struct http_req *r, const struct http_field *f)
{
	return (const char *)buf_data(&r->head) + f->value;
}

bool
http_field_is(const struct http_req *r, const struct http_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	       strncasecmp(http_field_name(r, f), name, f->name_len) == 0;
}

size_t
http_field_count(const struct http_req *r, const char *name, const struct http_field **last)
{
	size_t i, n = 0;

	for (i = 0; i < r->nfields; i++) {
		if (http_field_is(r, &r->fields[i], name)) {
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

	if (http_field_count(r, name, &f) == 0)
		return NULL;
	*len = f->value_len;
	return http_field_value(r, f);
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

bool
http_field_has(const struct http_req *r, const char *name, const char *token)
{
	size_t i;

	for (i = 0; i < r->nfields; i++) {
		const struct http_field *f = &r->fields[i];
		if (http_field_is(r, f, name) && list_has(http_field_value(r, f), f->value_len, token))
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
	size_t nte = http_field_count(r, "transfer-encoding", &te), ncodings;
	bool last_chunked, early_chunked;

	if (http_field_count(r, "content-length", NULL) > 1)
		return http_req_fail(r, 400, "several Content-Length fields");
	if (nte == 0)
		return HTTP_REQ_MORE;
	if (nte > 1)
		return http_req_fail(r, 400, "several Transfer-Encoding fields");
	if (http_field_count(r, "content-length", NULL) > 0)
		return http_req_fail(r, 400, "both Content-Length and Transfer-Encoding");
	if (r->info.minor == 0)
		return http_req_fail(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
	ncodings = te_codings(http_field_value(r, te), te->value_len, &last_chunked, &early_chunked);
	if (!last_chunked || early_chunked)
		return http_req_fail(r, 400, "Transfer-Encoding does not end in one chunked");
	if (ncodings > 1)
		return http_req_fail(r, 501, "transfer codings other than chunked are not supported");
	/* Our reading and llhttp's must agree, or the body's end is ambiguous. */
	if (!r->chunked)
		return http_req_fail(r, 400, "ambiguous Transfer-Encoding");
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
		const char *name = http_field_name(r, f);
		if (f->name_len >= sizeof norm || !memchr(name, '_', f->name_len))
			continue;
		for (j = 0; j < f->name_len; j++)
			norm[j] = name[j] == '_' ? '-' : (char)((name[j] >= 'A' && name[j] <= 'Z') ?
			          name[j] + 32 : name[j]);
		norm[f->name_len] = '\0';
		for (k = 0; k < sizeof guarded / sizeof guarded[0]; k++)
			if (strcmp(norm, guarded[k]) == 0)
				return http_req_fail(r, 400, "an underscore spelling of a framing or forwarding field");
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
	return http_req_fail(r, 417, "the only expectation supported is 100-continue");
}

/* Absolute-form targets must name the Host; they go on as origin-form. */
static enum http_req_event
check_target(struct http_req *r)
{
	const char *t = r->info.target, *auth, *path;
	size_t tlen = r->info.target_len, skip;

	if (r->info.method_len == 7 && memcmp(r->info.method, "CONNECT", 7) == 0)
		return http_req_fail(r, 405, "CONNECT is not allowed");
	if (t[0] == '/')
		return HTTP_REQ_MORE;
	if (tlen == 1 && t[0] == '*') {
		if (r->info.method_len == 7 && memcmp(r->info.method, "OPTIONS", 7) == 0)
			return HTTP_REQ_MORE;
		return http_req_fail(r, 400, "'*' is a target for OPTIONS only");
	}
	if (tlen > 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (tlen > 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else
		return http_req_fail(r, 400, "malformed request target");
	auth = t + skip;
	path = memchr(auth, '/', tlen - skip);
	if (path == NULL)
		path = t + tlen;
	if (memchr(auth, '@', (size_t)(path - auth)) ||
	    !host_same(auth, (size_t)(path - auth), r->info.host, r->info.host_len,
	               skip == 7 ? 80 : 443))
		return http_req_fail(r, 400, "the request target names another host than Host");
	if (path == t + tlen) {
		r->info.target = "/";
		r->info.target_len = 1;
	} else {
		r->info.target = path;
		r->info.target_len = (size_t)(t + tlen - path);
	}
	return HTTP_REQ_MORE;
}

enum http_req_event
http_req_check_head(struct http_req *r)
{
	const struct http_field *host = NULL;
	enum http_req_event ev;
	size_t n = http_field_count(r, "host", &host);

	if (n == 0)
		return http_req_fail(r, 400, "no Host field");
	if (n > 1)
		return http_req_fail(r, 400, "several Host fields");
	r->info.host = http_field_value(r, host);
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
		r->info.keep_alive = !http_field_has(r, "connection", "close");
	else
		r->info.keep_alive = http_field_has(r, "connection", "keep-alive") &&
		                     !http_field_has(r, "connection", "close");
	/* h2c is never relayed: its Upgrade is stripped at emit time. */
	r->info.upgrade = http_field_has(r, "connection", "upgrade") &&
	                  http_field_count(r, "upgrade", NULL) > 0 &&
	                  !http_field_has(r, "upgrade", "h2c");
	return HTTP_REQ_MORE;
}

/* Runs llhttp over the whole head: its verdict on the framing fields. */
