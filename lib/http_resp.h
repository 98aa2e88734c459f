/*
 * Responses from the app, observed: the edge passes their bytes through
 * unchanged, and watches them (llhttp) to know where each response ends,
 * its status (for the access log), whether the connection stays open,
 * and whether an upgrade was accepted (101): only then does the edge
 * switch to relaying raw bytes.
 */
#ifndef EXPOSE_HTTP_RESP_H
#define EXPOSE_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

enum http_resp_event {
	HTTP_RESP_MORE,      /* all bytes taken */
	HTTP_RESP_INTERIM,   /* a 1xx other than 101 ended; the final one follows */
	HTTP_RESP_COMPLETE,  /* a final response ended */
	HTTP_RESP_UPGRADED,  /* a 101 ended: what follows is another protocol */
	HTTP_RESP_ERROR,     /* the app sent something that is not HTTP */
};

struct http_resp {
	llhttp_t parser;
	llhttp_settings_t settings;
	bool head_request;   /* the response being read answers a HEAD */
	bool started;        /* a byte of the current response arrived */
	bool complete;
	int status;          /* of the response that just ended */
	bool keep_alive;     /* of the response that just ended */
	bool body_sized;     /* in a body of Content-Length bytes */
	bool body_to_close;  /* in a body that the close ends */
	const char *reason;  /* on error */
};

void http_resp_init(struct http_resp *r);
/* Says whether the next response answers a HEAD request. */
void http_resp_expect(struct http_resp *r, bool head_request);
/* Watches n bytes; *used says how many were looked at before the event. */
enum http_resp_event http_resp_feed(struct http_resp *r, const uint8_t *p,
                                    size_t n, size_t *used);
/* Bytes of the current body that may pass without being watched: of a
 * Content-Length body, all but its last byte (fed, it ends the
 * response); of a body that the close ends, SIZE_MAX; else 0 (a head,
 * chunks, or between responses). */
size_t http_resp_body_left(const struct http_resp *r);
/* n bytes of the body passed unwatched; n <= http_resp_body_left(). */
void http_resp_body_skip(struct http_resp *r, size_t n);
/* The app closed its side: ends a response delimited by the close. */
enum http_resp_event http_resp_finish(struct http_resp *r);
/* Whether a response has no body whatever its fields say (RFC 9112
 * section 6.3): one to HEAD, any 1xx, 204 and 304.  A Content-Length or
 * Transfer-Encoding on them describes another response, never bytes. */
bool http_resp_bodyless(int status, bool head_request);

#endif
