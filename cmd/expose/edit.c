/*
 * A replay's request, as captured or as edited (edit.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "bounds.h"
#include "edit.h"

/* RFC 9110 section 5.6.2: tchar. */
static bool
is_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

/* An origin-form target: "/" and visible ASCII. */
static bool
is_path(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > URI_MAX_BYTES || s[0] != '/')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* A field value: visible ASCII, obs-text, spaces and tabs; no line breaks. */
static bool
is_value(const char *s)
{
	if (strlen(s) > EDIT_VALUE_MAX_BYTES)
		return false;
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

/* Fields that frame the request: the replay sets its own. */
static bool
is_framing(const char *name, size_t len)
{
	static const char *const framing[] = { "content-length", "transfer-encoding",
	                                       "connection" };
	size_t i;

	for (i = 0; i < sizeof framing / sizeof framing[0]; i++)
		if (len == strlen(framing[i]) && strncasecmp(name, framing[i], len) == 0)
			return true;
	return false;
}

static int
put(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* The captured fields, less the request line and the framing. */
static int
put_captured_fields(const struct buf *head, struct buf *out)
{
	const char *p = (const char *)buf_data(head), *end = p + buf_len(head), *eol;
	int bad = 0;

	eol = memmem(p, buf_len(head), "\r\n", 2);
	for (p = eol ? eol + 2 : end; p < end && p[0] != '\r'; p = eol + 2) {
		const char *colon;

		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && !is_framing(p, (size_t)(colon - p)))
			bad |= buf_append(out, p, (size_t)(eol - p) + 2);
	}
	return bad;
}

static int
put_edited_fields(json_t *fields, struct buf *out, const char **why)
{
	json_t *f;
	size_t i;
	int bad = 0;

	if (!json_is_array(fields) || json_array_size(fields) > EDIT_FIELDS_MAX) {
		*why = "headers must be a list of at most 100 [name, value] pairs";
		return -1;
	}
	json_array_foreach(fields, i, f) {
		const char *k, *v;

		if (json_unpack(f, "[ss!]", &k, &v) != 0 || !is_token(k, EDIT_NAME_MAX_BYTES) ||
		    !is_value(v)) {
			*why = "headers: each must be [name, value], a name of letters, digits "
			       "and !#$%&'*+-.^_`|~, a value without control characters";
			return -1;
		}
		if (is_framing(k, strlen(k)))
			continue;
		bad |= put(out, k);
		bad |= put(out, ": ");
		bad |= put(out, v);
		bad |= put(out, "\r\n");
	}
	return bad ? 1 : 0;
}

/* body_base64, decoded into *body (the caller frees it). */
static int
decode_body(const char *b64, uint8_t **body, size_t *len, const char **why)
{
	size_t room = strlen(b64) / 4 * 3 + 3;

	*body = malloc(room);
	if (*body == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (sodium_base642bin(*body, room, b64, strlen(b64), " \r\n", len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0) {
		*why = "body_base64 is not base64";
		return -1;
	}
	return 0;
}

static int
assemble(const struct edit_source *src, json_t *edit, struct buf *out, const char **why)
{
	const char *method = src->method, *path = src->path, *b64 = NULL;
	json_t *fields = NULL;
	uint8_t *edited_body = NULL;
	const uint8_t *body = buf_data(src->body);
	size_t blen = buf_len(src->body);
	char framing[64];
	int rc = -1, bad = 0;

	if (edit && json_unpack(edit, "{s?s, s?s, s?o, s?s !}", "method", &method, "path", &path,
	                        "headers", &fields, "body_base64", &b64) != 0) {
		*why = "the edits must be an object of method, path, headers and body_base64";
		return -1;
	}
	if (!b64 && blen < src->body_bytes) {
		*why = "its body was larger than the inspector keeps: give body_base64";
		return -1;
	}
	if (!is_token(method, EDIT_METHOD_MAX_BYTES) || !is_path(path)) {
		*why = "method must be a token and path must start with / (visible characters only)";
		return -1;
	}
	if (b64) {
		if (decode_body(b64, &edited_body, &blen, why) == -1)
			goto out;
		body = edited_body;
	}
	bad |= put(out, method);
	bad |= put(out, " ");
	bad |= put(out, path);
	bad |= put(out, " HTTP/1.1\r\n");
	if (fields) {
		int r = put_edited_fields(fields, out, why);
		if (r == -1)
			goto out;
		bad |= r;
	} else {
		bad |= put_captured_fields(src->head, out);
	}
	snprintf(framing, sizeof framing, "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	bad |= put(out, framing);
	if (blen)
		bad |= buf_append(out, body, blen);
	if (bad) {
		*why = "the request is too large";
		goto out;
	}
	rc = 0;
out:
	free(edited_body);
	return rc;
}

int
edit_build(const struct edit_source *src, const char *json, size_t len, struct buf *out,
           const char **why)
{
	json_t *edit = NULL;
	int rc;

	if (len && (edit = json_loadb(json, len, 0, NULL)) == NULL) {
		*why = "the edits are not JSON";
		return -1;
	}
	rc = assemble(src, edit, out, why);
	json_decref(edit);
	return rc;
}
