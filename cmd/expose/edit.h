/*
 * A replay's request: the captured one, or the captured one with the
 * inspector page's edits applied (POST /api/requests/ID/replay).  The
 * edits come from a web page, so every one is checked and bounded: what
 * comes out is one well-formed HTTP/1.1 request that fits its buffer, or
 * nothing and a reason.
 */
#ifndef EXPOSE_EDIT_H
#define EXPOSE_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* A method, at most (the longest registered one is 16). */
#define EDIT_METHOD_MAX_BYTES 32
/* Header fields an edit may carry. */
#define EDIT_FIELDS_MAX 100
/* One field's name, and one field's value, at most. */
#define EDIT_NAME_MAX_BYTES 256
#define EDIT_VALUE_MAX_BYTES (8 * 1024)

/* The captured request. */
struct edit_source {
	const char *method;
	const char *path;
	const struct buf *head;   /* request line and fields, ending CRLF CRLF */
	const struct buf *body;   /* what was kept of the body */
	uint64_t body_bytes;      /* the body's whole size */
};

/* The request to send again into out (whose limit bounds it): src as it
 * was, or with the edits in json (len bytes; none when len is 0):
 * {"method": M, "path": P, "headers": [[NAME, VALUE], ...], "body_base64": B}.
 * Framing fields (Content-Length, Transfer-Encoding, Connection) are ours.
 * 0, or -1 with *why for the page. */
int edit_build(const struct edit_source *src, const char *json, size_t len,
               struct buf *out, const char **why);

#endif
