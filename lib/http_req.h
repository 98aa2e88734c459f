/*
 * Requests from the public side, strictly: the edge reads each request
 * head whole (with a size limit), rejects anything ambiguous or malformed
 * with the status it deserves, and re-emits what it accepts canonically:
 * a clean request line, the fields it keeps, X-Forwarded-* of its own,
 * one framing (Content-Length or re-chunked body).  llhttp frames the
 * body; the checks it lacks are here (a lenient parser lets a space
 * before the colon, obs-fold, bare LF, a duplicate Host or HTTP/9.9 pass).
 */
#ifndef EXPOSE_HTTP_REQ_H
#define EXPOSE_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "buf.h"
#include "bounds.h"

enum http_req_event {
	HTTP_REQ_MORE,      /* all input taken; feed more */
	HTTP_REQ_HEAD,      /* a head is ready: check it, then http_req_emit_head() */
	HTTP_REQ_COMPLETE,  /* the request (and its body) is complete */
	HTTP_REQ_UPGRADE,   /* complete, and it asks for an upgrade: feed nothing
	                     * more until the response says 101 or not */
	HTTP_REQ_ERROR,     /* r->status and r->reason say what to answer */
};

struct http_field {
	uint32_t name;      /* offsets into the head */
	uint16_t name_len;
	uint32_t value;
	uint32_t value_len;
};

/* What the edge needs to know of one request. */
struct http_req_head {
	const char *method;        /* in the head buffer, NUL-free: use lengths */
	size_t method_len;
	const char *target;        /* origin-form after rewriting absolute-form */
	size_t target_len;
	const char *host;          /* the Host field value */
	size_t host_len;
	int minor;                 /* HTTP/1.<minor> */
	bool keep_alive;           /* more requests may follow on the connection */
	bool upgrade;              /* Connection: upgrade with an Upgrade field */
	bool is_head;              /* HEAD: its response has no body */
};

/* Limits an operator may set (expose.conf: head-max-bytes, fields-max). */
struct http_limits {
	size_t head_max_bytes;     /* at most HEAD_MAX_BYTES_CAP */
	size_t fields_max;         /* at most HEAD_FIELDS_CAP */
};

struct http_req {
	llhttp_t parser;
	llhttp_settings_t settings;
	struct buf head;           /* the raw head being read */
	size_t scanned;            /* bytes of head checked for line endings */
	int state;
	struct http_field fields[HEAD_FIELDS_CAP];
	size_t nfields;
	size_t fields_max;
	size_t chunk_ext;          /* bytes of extensions on the current chunk */
	struct http_req_head info;
	bool chunked;
	bool last_chunk;
	bool complete;             /* llhttp finished the message */
	struct buf *out;           /* canonical bytes go here while feeding */
	bool drop_authorization;   /* the edge checked it: do not pass it on */
	int status;                /* on error: the status to answer */
	bool error_in_body;        /* the error came after the head was passed on */
	const char *reason;        /* on error: why, for logs and the page */
};

/* limits NULL: the defaults of bounds.h. */
void http_req_init(struct http_req *r, const struct http_limits *limits);
void http_req_free(struct http_req *r);

/* Takes bytes from the visitor; *used says how many it took.  Body bytes
 * are written to out, canonically; out needs room for n bytes. */
enum http_req_event http_req_feed(struct http_req *r, const uint8_t *p,
                                  size_t n, size_t *used, struct buf *out);

/* Whether a head has begun: its first byte arrived. */
bool http_req_in_head(const struct http_req *r);
/* Whether a body is being read. */
bool http_req_in_body(const struct http_req *r);

/* Bytes of a Content-Length body that may pass to the app without being
 * fed: all but its last byte (fed, it ends the request); 0 when no such
 * body is being read (a head, a chunked body, after an error). */
size_t http_req_body_left(const struct http_req *r);
/* n bytes of the body went to the app unfed; n <= http_req_body_left(). */
void http_req_body_skip(struct http_req *r, size_t n);

/* Writes the accepted head to out with the edge's forwarding fields:
 * X-Forwarded-For gets peer appended; X-Forwarded-Proto and
 * X-Forwarded-Host are replaced.  -1 if out has no room. */
int http_req_emit_head(struct http_req *r, struct buf *out, const char *peer,
                       const char *proto);

/* After an upgrade the app refused (no 101): read requests again. */
void http_req_resume(struct http_req *r);

/* A field's value by name (case-insensitive); NULL if absent. */
const char *http_req_field(const struct http_req *r, const char *name,
                           size_t *len);

#endif
