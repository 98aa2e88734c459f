/*
 * Watches both directions of one HTTP connection without changing a byte,
 * and reports each exchange when its response ends: method, path, status,
 * bytes and time.  The client's request log stands on it.
 */
#ifndef EXPOSE_HTTP_WATCH_H
#define EXPOSE_HTTP_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


/* Requests watched ahead of their responses; more are not reported. */
#define HTTP_WATCH_PENDING_MAX 8
#define HTTP_WATCH_PATH_BYTES 256

struct http_exchange {
	char method[16];
	char path[HTTP_WATCH_PATH_BYTES];
	int status;
	bool is_head;
	uint64_t request_bytes;
	uint64_t response_bytes;
	int64_t start_ms;
	int64_t end_ms;
};

/* Opaque: it holds llhttp state, and llhttp.h cannot share a translation
 * unit with libwebsockets.h (both define HTTP_STATUS_*). */
struct http_watch;

/* NULL when memory runs out. */
struct http_watch *http_watch_new(int64_t (*now_ms)(void),
                                  void (*done)(void *ctx, const struct http_exchange *x),
                                  void *ctx);
void http_watch_free(struct http_watch *w);
/* Bytes on their way to the app. */
void http_watch_request(struct http_watch *w, const uint8_t *p, size_t n);
/* Bytes on their way back from the app. */
void http_watch_response(struct http_watch *w, const uint8_t *p, size_t n);
/* The app closed: ends a response delimited by the close. */
void http_watch_close(struct http_watch *w);

#endif
