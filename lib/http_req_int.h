/*
 * Private to lib/http_req*.c: the parser's states, and the pieces the
 * strict checks (http_req_check.c) and the canonical output
 * (http_req_emit.c) share with the state machine (http_req.c).
 */
#ifndef EXPOSE_HTTP_REQ_INT_H
#define EXPOSE_HTTP_REQ_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "http_req.h"

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

/* Ends the request with status and reason; returns HTTP_REQ_ERROR. */
enum http_req_event http_req_fail(struct http_req *r, int status, const char *reason);

/* http_req_check.c: the strict scan of a complete head, then its checks;
 * HTTP_REQ_MORE when it passes. */
enum http_req_event http_req_scan_head(struct http_req *r);
enum http_req_event http_req_check_head(struct http_req *r);

/* A field's name and value, in the head buffer. */
const char *http_field_name(const struct http_req *r, const struct http_field *f);
const char *http_field_value(const struct http_req *r, const struct http_field *f);
/* Whether f is called name (case-insensitive). */
bool http_field_is(const struct http_req *r, const struct http_field *f, const char *name);
/* How many fields are called name; *last the last of them. */
size_t http_field_count(const struct http_req *r, const char *name,
                        const struct http_field **last);
/* Whether any field called name lists token. */
bool http_field_has(const struct http_req *r, const char *name, const char *token);

#endif
