/*
 * expose-edge: one public connection, from its first byte to its close.
 */
#ifndef EXPOSE_EDGE_H
#define EXPOSE_EDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "http_req.h"
#include "http_resp.h"
#include "bounds.h"
#include "registry.h"
#include "sock.h"

#include "settings.h"

struct gnutls_session_int;
struct gnutls_certificate_credentials_st;

struct edge_config {
	struct settings set;      /* expose.conf and flags: registry, domain, limits */
	const char *proto;        /* "http" or "https": X-Forwarded-Proto */
	bool tls;                 /* --tls: terminate TLS */
	const char *error;        /* the config is broken: answer 503, log this */
};

/* A pipe that bytes pass through by splice(2), not copied (pass.c). */
struct pass {
	int fd[2];                /* -1 until first used */
	size_t len;               /* bytes in it, not yet out */
	size_t size;              /* its capacity */
	bool broken;              /* no pipe could be made: use the buffers */
};

/* A request whose response has not ended yet. */
struct pending {
	int64_t start_ms;
	bool is_head;
	bool upgrade;
	bool answered;            /* a byte of its response went out */
	size_t bytes;             /* response bytes sent */
	int status;               /* of the response head sent, 0 before */
	char method[16];
	char path[256];
};

struct edge {
	const struct edge_config *cfg;
	int in_fd;                /* the visitor: stdin (inetd) or fd 3 (systemd) */
	int out_fd;
	int broker_fd;            /* -1 until the first request is routed */
	char peer[SOCK_ADDR_TEXT_BYTES];
	int peer_port;
	char name[NAME_MAX_BYTES + 1];  /* the tunnel, set by the first request */
	struct gnutls_session_int *tls; /* the visitor's TLS session, with --tls */
	struct gnutls_certificate_credentials_st *tls_cred;
	bool tls_closed;                /* no close_notify to send: sent, or no session */
	char sni[NAME_MAX_BYTES + 1];   /* the tunnel the TLS handshake named */
	struct registry_route route;    /* its broker and access rules */
	uint8_t auth_key[AUTH_KEY_BYTES];
	bool auth_key_loaded;

	struct http_req req;
	struct http_resp resp;
	struct buf in;            /* read from the visitor, not yet parsed */
	struct buf to_broker;
	struct buf to_visitor;
	struct buf reply;         /* the broker's reply line, until complete */
	struct pass down;         /* broker to visitor, spliced */
	struct pass up;           /* visitor to broker, spliced */
	bool acked;               /* the broker said OPENED: it is alive */
	bool replied;

	struct pending queue[PIPELINE_MAX_REQUESTS];
	int queue_head, queue_len;

	bool raw;                 /* after a 101: bytes both ways, no parsing */
	size_t raw_up, raw_down;  /* bytes relayed after the 101, each way */
	bool upgrade_wait;        /* an upgrade request waits for its response */
	bool visitor_eof;
	bool broker_eof;
	bool closing;             /* read no more; exit once to_visitor is out */
	int error_status;         /* an error to answer once the queue drains */
	int error_owed;           /* queued requests that error answers (0 or 1) */
	const char *error_detail;
	char error_text[256];
	char error_extra[PAGE_EXTRA_MAX_BYTES];  /* header lines: Location, WWW-Authenticate */

	int64_t head_deadline_ms; /* the head being read must be complete by then */
	int64_t last_read_ms;     /* last byte from the visitor */
	int64_t close_deadline_ms;
	int64_t broker_deadline_ms; /* the broker must have acknowledged OPEN by then */
};

/* The whole life of a connection; returns the exit status. */
int edge_run(struct edge *e);

/* relay.c: the connection's loop */
/* Queues bytes for a side; a full queue ends the connection (a bug). */
void edge_queue(struct edge *e, struct buf *b, const void *p, size_t n);

/* pass.c: bytes that need no parsing, spliced through a pipe */
void pass_init(struct pass *p);
void pass_free(struct pass *p);
/* How many bytes may be spliced now toward the visitor, or the broker:
 * 0 when they must go through the parser and the buffers. */
size_t pass_down_allowance(const struct edge *e);
size_t pass_up_allowance(const struct edge *e);
/* Whether the buffers should take no more toward that side: its pipe
 * holds bytes, or a body could be spliced once the buffer has drained. */
bool pass_down_waits(const struct edge *e);
bool pass_up_waits(const struct edge *e);
/* Up to max bytes from fd into the pipe: the count, 0 when fd's stream
 * ended or failed, -1 when nothing moves now. */
ssize_t pass_fill(struct pass *p, int fd, size_t max);
/* The pipe's bytes out to fd: 0, or -1 when fd is gone. */
int pass_drain(struct pass *p, int fd);

/* route.c: each request's tunnel, access rules and broker.  0 to pass the
 * request on, -1 when it was answered here (404, 401, 403, 308, 503...). */
int route_request(struct edge *e);

/* answer.c: the requests in flight, and the edge's own answers */
void pending_push(struct edge *e);
struct pending *pending_oldest(struct edge *e);
/* The oldest request is answered with status: log it, drop it. */
void pending_pop(struct edge *e, int status);
/* The connection ended (the visitor went away, the app cut a response):
 * a response under way is logged with what it sent. */
void pending_flush(struct edge *e);
/* Writes an error page for the oldest request now, then closes. */
void edge_answer(struct edge *e, int status, const char *detail);
void edge_answer_with(struct edge *e, int status, const char *detail, const char *extra);
/* The answer owed for a request the body of which failed. */
void edge_answer_owed(struct edge *e);
/* Queues the edge's own error response and ends the connection after it. */
void edge_fail(struct edge *e, int status, const char *detail);
void edge_fail_with(struct edge *e, int status, const char *detail, const char *extra);

/* throttle.c: wrong passwords, counted by the broker for every edge.
 * Reports one; 0 if counted (answer 401), N > 0 if the source is over its
 * allowance for N seconds more (answer 429), -1 if the broker did not say. */
int throttle_auth_failed(struct edge *e);
/* The page and Retry-After line of a throttled source. */
void throttle_answer(struct edge *e, int seconds, bool now);

/* response.c: what the broker sends back */
void response_bytes(struct edge *e, const uint8_t *p, size_t n);
void response_eof(struct edge *e);

/* tls.c (expose-edge-tls) or notls.c (expose-edge): the https edge */
/* Whether this build speaks TLS (then TLS is its default). */
bool tls_built(void);
/* --tls in a build without TLS: execs expose-edge-tls beside this program
 * with the same arguments; returns -1 if it could not.  0 in a TLS build. */
int tls_handover(char **argv);
int tls_start(struct edge *e);
int tls_handshake(struct edge *e);
ssize_t tls_read(struct edge *e, void *p, size_t n);
ssize_t tls_write(struct edge *e, const void *p, size_t n);
int tls_pending(const struct edge *e);

void tls_notify_close(struct edge *e);
void tls_close(struct edge *e);

#endif
