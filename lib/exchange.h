/*
 * The HTTP exchanges of one stream, as the client carries them: each
 * request and its response are followed (llhttp frames them), optionally
 * captured (heads whole, bodies up to a cap) for the request log and the
 * inspector, and optionally rewritten for dev servers that check Host
 * (`expose --host-header=rewrite`): Host and a matching Origin become the
 * local target; absolute Location URLs and cookie domains pointing at it
 * become the public host again.
 *
 * Bytes pass through in order; only heads are held until complete (at
 * most EXCHANGE_HEAD_MAX_BYTES).  After a 101 the stream is relayed raw.
 */
#ifndef EXPOSE_EXCHANGE_H
#define EXPOSE_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EXCHANGE_HEAD_MAX_BYTES (64 * 1024)
#define EXCHANGE_PENDING_MAX 8
#define EXCHANGE_PATH_BYTES 512

struct exchange_options {
	const char *local_host;    /* "localhost:3000": Host for the app, or NULL */
	const char *public_host;   /* "name.example.net[:port]", for rewriting back */
	const char *public_scheme; /* "http" or "https" */
	size_t capture_bytes;      /* body bytes kept per message; 0: no capture */
};

/* One request and its response, when the response has ended. */
struct exchange {
	char method[16];
	char path[EXCHANGE_PATH_BYTES];
	int status;
	int64_t start_ms;
	int64_t end_ms;
	uint64_t request_bytes;    /* bodies, as they crossed */
	uint64_t response_bytes;
	bool upgraded;             /* 101: what followed is not HTTP */
	/* with capture_bytes: */
	struct buf request_head;   /* as the app got it */
	struct buf request_body;   /* its first capture_bytes */
	struct buf response_head;  /* as the app sent it */
	struct buf response_body;
};

struct exchange_stream;

typedef void (*exchange_done_fn)(void *ctx, struct exchange *x);

/* NULL when memory runs out.  done() gets each exchange when its response
 * ends; the exchange is the callee's to keep (exchange_free). */
struct exchange_stream *exchange_stream_new(const struct exchange_options *o,
                                            int64_t (*now_ms)(void),
                                            exchange_done_fn done, void *ctx);
void exchange_stream_free(struct exchange_stream *s);

/* Bytes toward the app: what to send goes into out.  -1 if a head is too
 * long or out is full. */
int exchange_request(struct exchange_stream *s, const uint8_t *p, size_t n,
                     struct buf *out);
/* Bytes from the app, likewise. */
int exchange_response(struct exchange_stream *s, const uint8_t *p, size_t n,
                      struct buf *out);
/* The app closed: ends a response delimited by the close. */
void exchange_close(struct exchange_stream *s);

struct exchange *exchange_new(void);
void exchange_free(struct exchange *x);

/* Rewrites, exposed for tests: a request head's Host (and a matching
 * Origin), a response head's Location and Set-Cookie domains.  The head
 * is replaced in place; -1 if it would not fit. */
int exchange_rewrite_request(struct buf *head, const struct exchange_options *o);
int exchange_rewrite_response(struct buf *head, const struct exchange_options *o);

#endif
