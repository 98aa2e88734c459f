/*
 * Local connections: each stream the broker opens becomes one TCP
 * connection to the app.  Bytes flow both ways under the stream's credit;
 * a refused connect becomes a RST that the edge turns into a 502 page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "exchange.h"
#include "log.h"

/* An exchange ended: a line of the request log, and the inspector's.
 * A request that waited for room in the pipeline may go now. */
static void
exchange_done(void *ctx, struct exchange *x)
{
	struct cstream *cs = ctx;

	requestlog_line(cs->c, cs->t, x);
	if (cs->c->inspect)
		inspect_add(cs->c, cs->t, x);    /* it keeps x */
	else
		exchange_free(x);
	if (cs->held && cs->wsi && cs->connected) {
		cs->held = false;
		lws_callback_on_writable(cs->wsi);
	}
}

/* Bytes written to the app per writeable callback. */
#define LOCAL_WRITE_BYTES IO_CHUNK_BYTES
#define LOCAL_TLS_HINT " (for a self-signed certificate give --local-insecure)"

struct cstream *
local_find(struct client *c, uint32_t id)
{
	struct map_node *n = map_find(&c->streams, &id, sizeof id);

	return n ? map_entry(n, struct cstream, node) : NULL;
}

static void
unlink_stream(struct cstream *cs)
{
	map_remove(&cs->c->streams, &cs->node);
	mux_stream_free(&cs->m);
	if (cs->wsi) {
		lws_set_opaque_user_data(cs->wsi, NULL);
		lws_set_timeout(cs->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		cs->wsi = NULL;
	}
}

void
local_close(struct cstream *cs)
{
	/* Whatever is still open ends here: the app ended it first if it
	 * closed (local_closed), else the visitor, or the tunnel, went. */
	cs->held = false;
	if (cs->xs)
		exchange_stream_end(cs->xs, EXCHANGE_ABANDONED);
	unlink_stream(cs);
	exchange_stream_free(cs->xs);
	tls_conn_free(cs->tls);
	buf_free(&cs->to_app);
	free(cs);
}

static void
close_one(struct map_node *n, void *ctx)
{
	local_close(map_entry(n, struct cstream, node));
}

void
local_close_all(struct client *c)
{
	map_each(&c->streams, close_one, NULL);
}

/* An https:// target: TLS from the first byte; -1 when it cannot be set up. */
static int
start_tls(struct cstream *cs)
{
	struct client *c = cs->c;
	const char *why;

	if (c->target_trust == NULL)
		c->target_trust = tls_trust_new(NULL, !c->local_insecure, &why);
	if (c->target_trust)
		cs->tls = tls_conn_new(c->target_trust, cs->t->host, LOCAL_TLS_HINT, &why);
	if (cs->tls)
		return 0;
	log_err("%s: %s", cs->t->label, why);
	mux_reset(&c->mux, cs->key, CODE_REFUSED, cs->t->label);
	local_close(cs);
	return -1;
}

struct cstream *
local_open(struct client *c, uint32_t id, struct target *t, const char *peer)
{
	struct lws_client_connect_info ci;
	struct cstream *cs = calloc(1, sizeof *cs);

	if (cs == NULL)
		return NULL;
	cs->c = c;
	cs->t = t;
	cs->key = id;
	cs->xs = exchange_stream_new(&t->xopts, clock_ms, exchange_done, cs);
	buf_init(&cs->to_app, LOCAL_WRITE_BYTES + EXCHANGE_HEAD_MAX_BYTES);
	mux_stream_init(&c->mux, &cs->m, id);
	if (map_insert(&c->streams, &cs->node, &cs->key, sizeof cs->key) == -1) {
		mux_stream_free(&cs->m);
		exchange_stream_free(cs->xs);
		free(cs);
		return NULL;
	}
	if (t->tls && start_tls(cs) == -1)
		return NULL;
	memset(&ci, 0, sizeof ci);
	ci.context = c->ctx;
	ci.vhost = c->vh;
	ci.address = t->host;
	ci.port = t->port;
	ci.method = "RAW";
	ci.protocol = "expose-local";
	ci.local_protocol_name = "expose-local";
	ci.opaque_user_data = cs;
	/* No pwsi: lws would write to it after the stream is freed. */
	log_debug("stream open id=%u from=%s to=%s", id, peer, t->label);
	/* A refusal may be reported inside the call: refused() defers to us. */
	c->opening = cs;
	cs->wsi = lws_client_connect_via_info(&ci);
	if (cs->wsi == NULL)
		cs->failed = true;
	c->opening = NULL;
	if (cs->failed) {
		mux_reset(&c->mux, cs->key, CODE_REFUSED, t->label);
		cs->wsi = NULL;
		local_close(cs);
		return NULL;
	}
	return cs;
}

/* Nothing listens on the target: the edge shows a 502 page saying so. */
static void
refused(struct cstream *cs, const char *why)
{
	struct client *c = cs->c;

	log_warn("nothing answered on %s (%s): is the app running?", cs->t->label,
	         why ? why : "refused");
	appwatch_down(c, cs->t);
	cs->wsi = NULL;
	if (c->opening == cs) {
		cs->failed = true;
		return;
	}
	mux_reset(&c->mux, cs->key, CODE_REFUSED, cs->t->label);
	local_close(cs);
}

static void
pause_local(struct cstream *cs)
{
	if (!cs->paused && cs->wsi) {
		cs->paused = true;
		lws_rx_flow_control(cs->wsi, 0);
	}
}

void
local_on_window(struct cstream *cs)
{
	if (cs->paused && cs->wsi && mux_stream_want(&cs->m) > 0) {
		cs->paused = false;
		lws_rx_flow_control(cs->wsi, 1);
	}
}

int
local_on_data(struct cstream *cs, const uint8_t *p, size_t n)
{
	if (mux_stream_recv(&cs->m, p, n) == -1)
		return -1;
	cs->c->flush_link = true;    /* link_flush, after this turn of the loop */
	return 0;
}

void
local_on_fin(struct cstream *cs)
{
	cs->m.fin_in = true;
	if (cs->wsi && cs->connected)
		lws_callback_on_writable(cs->wsi);
}

/* Sends the app what its socket takes of to_app now; the rest waits
 * there (lws_write would copy it into a buffer of its own).  TLS takes
 * it all.  -1 if the app is gone. */
static int
to_app(struct cstream *cs)
{
	size_t n = buf_len(&cs->to_app);
	ssize_t sent;

	if (n == 0)
		return 0;
	if (cs->tls) {
		if (tls_conn_send(cs->tls, cs->wsi, buf_data(&cs->to_app), n) == -1)
			return -1;
		buf_consume(&cs->to_app, n);
		return 0;
	}
	sent = send(lws_get_socket_fd(cs->wsi), buf_data(&cs->to_app), n,
	            MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	buf_consume(&cs->to_app, (size_t)sent);
	return 0;
}

static int
local_writeable(struct cstream *cs)
{
	size_t n = buf_len(&cs->m.in);
	ssize_t taken = 0;

	if (!cs->connected)
		return 0;             /* TLS handshake under way: ready() asks again */
	/* What the app's socket did not take last time goes first. */
	if (to_app(cs) == -1)
		return -1;
	if (buf_len(&cs->to_app) > 0) {
		lws_callback_on_writable(cs->wsi);
		return 0;
	}
	if (n > LOCAL_WRITE_BYTES)
		n = LOCAL_WRITE_BYTES;
	/* Requests pass the exchange follower (log, inspector, Host rewrite). */
	if (n > 0) {
		if (cs->xs == NULL ||
		    (taken = exchange_request(cs->xs, buf_data(&cs->m.in), n, &cs->to_app)) == -1)
			return -1;
		mux_stream_drained(&cs->m, (size_t)taken);
		/* A full pipeline: the rest waits for a response to end. */
		cs->held = (size_t)taken < n;
	}
	if (to_app(cs) == -1)
		return -1;
	if (buf_len(&cs->to_app) > 0 || (buf_len(&cs->m.in) > 0 && !cs->held))
		lws_callback_on_writable(cs->wsi);
	else if (buf_len(&cs->m.in) == 0 && cs->m.fin_in)
		shutdown(lws_get_socket_fd(cs->wsi), SHUT_WR);
	return 0;
}

/* Writes to the app now what the broker sent in this turn of the loop;
 * an https target, or a socket that takes no more, waits for its
 * writeable callback. */
void
local_flush(struct cstream *cs)
{
	if (cs->wsi == NULL || !cs->connected)
		return;
	if (cs->tls || lws_partial_buffered(cs->wsi)) {
		lws_callback_on_writable(cs->wsi);
		return;
	}
	if (local_writeable(cs) == -1)
		lws_set_timeout(cs->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}


/* Bytes from the app onto the stream, through the exchange follower
 * straight into the stream's out buffer; -1 (cs->overrun) when they do
 * not fit. */
static int
from_app(struct cstream *cs, const uint8_t *p, size_t n)
{
	if (cs->xs == NULL || exchange_response(cs->xs, p, n, &cs->m.out) == -1) {
		cs->overrun = true;
		return -1;
	}
	mux_stream_appended(&cs->m);
	if (mux_stream_want(&cs->m) == 0)
		pause_local(cs);
	return 0;
}

static void
overrun(struct cstream *cs)
{
	mux_reset(&cs->c->mux, cs->key, CODE_PROTOCOL, "local buffer overrun");
	local_close(cs);
}

static int
sink_data(void *ctx, const uint8_t *p, size_t n)
{
	return from_app(ctx, p, n);
}

static int
sink_ready(void *ctx, struct lws *wsi)
{
	struct cstream *cs = ctx;

	cs->connected = true;
	if (buf_len(&cs->m.in) > 0 || cs->m.fin_in)
		lws_callback_on_writable(wsi);
	return 0;
}

/* Ciphertext from an https target.  -1 asks lws to close: the app's end. */
static int
local_tls_rx(struct cstream *cs, struct lws *wsi, const uint8_t *p, size_t n)
{
	struct tls_sink sink = { .ctx = cs, .data = sink_data, .ready = sink_ready };
	char why[512] = "";

	if (tls_conn_receive(cs->tls, wsi, p, n, &sink, why, sizeof why) == 0)
		return 0;
	if (cs->overrun) {
		overrun(cs);
		return 0;
	}
	if (why[0] == '\0')
		return -1;            /* close_notify: as if the app closed */
	log_warn("%s: %s", cs->t->label, why);
	mux_reset(&cs->c->mux, cs->key, CODE_REFUSED, cs->t->label);
	local_close(cs);
	return 0;
}

/* The app closed: FIN follows the bytes still queued, then the stream goes. */
static void
local_closed(struct cstream *cs)
{
	cs->wsi = NULL;
	cs->local_closed = true;
	if (cs->xs)
		exchange_stream_end(cs->xs, EXCHANGE_CUT);
	if (cs->m.fin_sent) {
		local_close(cs);
		return;
	}
	mux_stream_fin(&cs->m);
}

static int
local_tls_start(struct cstream *cs, struct lws *wsi)
{
	char why[512] = "";

	if (tls_conn_start(cs->tls, wsi, why, sizeof why) == 0)
		return 0;
	log_warn("%s: %s", cs->t->label, why);
	mux_reset(&cs->c->mux, cs->key, CODE_REFUSED, cs->t->label);
	local_close(cs);
	return 0;
}

int
local_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
               void *in, size_t len)
{
	struct cstream *cs = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (cs) {
			lws_set_opaque_user_data(wsi, NULL);
			refused(cs, in);
		}
		return 0;
	case LWS_CALLBACK_RAW_CONNECTED:
		if (cs == NULL)
			return -1;
		appwatch_up(cs->c, cs->t);
		if (cs->tls)
			return local_tls_start(cs, wsi);
		return sink_ready(cs, wsi);
	case LWS_CALLBACK_RAW_RX:
		if (cs == NULL)
			return 0;
		if (cs->tls)
			return local_tls_rx(cs, wsi, in, len);
		if (from_app(cs, in, len) == -1)
			overrun(cs);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return cs ? local_writeable(cs) : -1;
	case LWS_CALLBACK_RAW_CLOSE:
		if (cs) {
			lws_set_opaque_user_data(wsi, NULL);
			local_closed(cs);
		}
		return 0;
	default:
		return 0;
	}
}
