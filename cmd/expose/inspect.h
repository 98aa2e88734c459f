/*
 * The inspector's parts, for its own files: inspect.c (what it keeps, and
 * its start and stop), inspect_http.c (its HTTP side, and who may use it)
 * and replay.c (requests sent to the app again).  client.h has what the
 * rest of the client sees of it.
 */
#ifndef EXPOSE_INSPECT_H
#define EXPOSE_INSPECT_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "client.h"

/* The page, from cmd/expose/inspect.html (generated). */
extern const unsigned char inspect_html[];
extern const size_t inspect_html_len;

#define INSPECT_REQUEST_MAX_BYTES (INSPECT_BODY_BYTES + 16 * 1024)
#define INSPECT_IDLE_TIMEOUT_S 30
/* Host and Origin values the inspector compares, at most. */
#define INSPECT_HOST_BYTES 300
/* The run's token: random bytes, shown as hex. */
#define INSPECT_TOKEN_BYTES 16
#define INSPECT_TOKEN_HEX (2 * INSPECT_TOKEN_BYTES)
#define INSPECT_TOKEN_HEADER "x-expose-token"
/* What every answer says about framing, sniffing and referrers. */
#define INSPECT_SAFETY_FIELDS \
	"X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\nCross-Origin-Resource-Policy: same-origin\r\n" \
	"Cross-Origin-Opener-Policy: same-origin\r\n"
/* The page's policy; its script is allowed by hash (csp_for_page). */
#define INSPECT_CSP_FORMAT \
	"Content-Security-Policy: default-src 'none'; script-src 'sha256-%s'; " \
	"style-src 'unsafe-inline'; img-src data:; connect-src 'self'; " \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"
#define INSPECT_CSP_BYTES 512
#define INSPECT_SSE_MAX 32
/* Bytes written to an inspector connection per writeable callback. */
#define INSPECT_WRITE_BYTES (16 * 1024)
/* Events held for one slow page before it is dropped. */
#define INSPECT_SSE_BUFFER_BYTES (4 * 1024 * 1024)

struct entry {
	unsigned id;
	unsigned replay_of;        /* 0: a visitor's request */
	const struct target *t;
	struct exchange *x;
	time_t when;
};

enum conn_kind { C_REQUEST, C_SSE };

struct conn {
	struct lws *wsi;
	enum conn_kind kind;
	struct buf in;
	struct buf out;
	bool close_after;
};

struct inspector {
	char port[8];                 /* what it listens on: Host must carry it */
	char token[INSPECT_TOKEN_HEX + 1];
	char url[96];                 /* http://ADDR/?token=TOKEN, for people */
	char csp[INSPECT_CSP_BYTES];  /* the page's Content-Security-Policy field */
	struct entry ring[INSPECT_KEEP];
	unsigned next_id;
	unsigned count;
	struct conn *sse[INSPECT_SSE_MAX];
	int nsse;
};

/* inspect.c: the store */
struct entry *inspect_find(struct inspector *in, unsigned id);
json_t *inspect_summary(const struct entry *e);
json_t *inspect_detail(const struct entry *e);
/* Keeps x (its owner now) as the newest entry, and tells the event streams. */
void inspect_store(struct client *c, const struct target *t, struct exchange *x,
                   unsigned replay_of);

/* inspect_http.c: queues bytes on a connection (one that cannot keep up
 * is closed once its queue is out) */
void inspect_conn_send(struct conn *c, const char *p, size_t n);

/* replay.c: sends entry e to its target again, edited by the JSON edits
 * (none when edits_len is 0); -1 with *why for the page */
int inspect_replay(struct client *c, struct entry *e, const char *edits, size_t edits_len,
                   unsigned *id, const char **why);

#endif
