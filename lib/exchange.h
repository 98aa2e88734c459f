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
 *
 * Every exchange whose request head was read ends exactly once, when its
 * response ends, or when the stream does: then it was cut (the app
 * closed first), abandoned (the visitor went first), or, after a 101,
 * closed.  At most EXCHANGE_PENDING_MAX requests wait for their
 * responses; past that, requests are taken once a response ends.
 */
#ifndef EXPOSE_EXCHANGE_H
#define EXPOSE_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* How an exchange ended. */
enum exchange_end {
	EXCHANGE_COMPLETE,         /* its response ended */
	EXCHANGE_CUT,              /* the app closed before its response ended */
	EXCHANGE_ABANDONED,        /* the visitor went away first */
	EXCHANGE_CLOSED,           /* after a 101: the connection closed */
};

/* One request and its response, when the exchange has ended. */
struct exchange {
	char method[16];
	char path[EXCHANGE_PATH_BYTES];
	int status;                /* of the response's head; 0: none came */
	enum exchange_end end;
	int64_t start_ms;
	int64_t end_ms;
	uint64_t request_bytes;    /* bodies as they crossed (after a 101, all bytes) */
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

/* NULL when memory runs out.  done() gets each exchange when it ends;
 * the exchange is the callee's to keep (exchange_free). */
struct exchange_stream *exchange_stream_new(const struct exchange_options *o,
                                            int64_t (*now_ms)(void),
                                            exchange_done_fn done, void *ctx);
void exchange_stream_free(struct exchange_stream *s);

/* Bytes toward the app: what to send goes into out.  Returns how many
 * were taken: fewer than n when EXCHANGE_PENDING_MAX requests wait for
 * their responses (give the rest again after the next done()); -1 if out
 * is full. */
ssize_t exchange_request(struct exchange_stream *s, const uint8_t *p, size_t n,
                         struct buf *out);
/* Bytes from the app, likewise. */
int exchange_response(struct exchange_stream *s, const uint8_t *p, size_t n,
                      struct buf *out);
/* The stream ended: how is EXCHANGE_CUT when the app closed (a response
 * delimited by the close ends complete), EXCHANGE_ABANDONED when the
 * visitor's side did.  Every exchange still open ends now. */
void exchange_stream_end(struct exchange_stream *s, enum exchange_end how);
/* Words for people on how x ended: "" when complete. */
const char *exchange_end_text(const struct exchange *x);

void exchange_free(struct exchange *x);

/* A response head's Location and Set-Cookie domains rewritten (exposed for
 * tests); the head is replaced in place; -1 if it would not fit. */
int exchange_rewrite_response(struct buf *head, const struct exchange_options *o);

#endif
