/*
 * The request head as the edge passes it on: canonical, with its own
 * fields (X-Forwarded-*, Connection) in place of what the visitor sent.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_req_int.h"

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
		char c = http_field_name(r, f)[i];
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

	if (http_field_has(r, "connection", "close"))
		strcat(v, "close");
	else if (http_field_has(r, "connection", "keep-alive"))
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
		if (r->drop_authorization && http_field_is(r, f, "authorization"))
			continue;
		if (is_edge_field(r, f) || http_field_is(r, f, "connection") ||
		    http_field_is(r, f, "content-length") ||
		    http_field_is(r, f, "transfer-encoding"))
			continue;
		if (!r->info.upgrade &&
		    (http_field_is(r, f, "upgrade") || http_field_is(r, f, "http2-settings")))
			continue;
		rc |= put(out, http_field_name(r, f), f->name_len);
		rc |= put(out, ": ", 2);
		rc |= put(out, http_field_value(r, f), f->value_len);
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
		if (!http_field_is(r, f, "x-forwarded-for") || f->value_len == 0)
			continue;
		if (n++)
			rc |= put(out, ", ", 2);
		rc |= put(out, http_field_value(r, f), f->value_len);
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
	else if (http_field_count(r, "content-length", NULL)) {
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
