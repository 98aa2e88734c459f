/*
 * The client's connection to the broker: a raw TCP connection that
 * libwebsockets carries (TLS over it for wss://, in tls.c), with the
 * websocket spoken by lib/wsclient: the upgrade, frames masked eight bytes
 * at a time, pings both ways, and a hang-up when the broker falls silent.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "proto.h"

/* A websocket message: room for its header, then a batch of frames. */
static uint8_t write_buf[WS_HEADER_MAX_BYTES + MUX_MESSAGE_BYTES];
#define LINK_WRITES_PER_CALLBACK 16
#define LINK_REQUEST_BYTES 1024
/* A close frame's reason, at most (RFC 6455 section 5.5: 123 bytes). */
#define WS_CLOSE_REASON_BYTES 124
#define LINK_TLS_HINT " (for a private CA give --ca FILE)"

static void
keepalive_tick(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, keepalive);
	int64_t quiet = clock_ms() - c->last_rx_ms;

	if (c->ws == NULL || !c->link.open)
		return;
	if (quiet >= (int64_t)PING_HANGUP_S * 1000) {
		log_warn("the server stopped answering");
		lws_set_timeout(c->ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	if (quiet >= (int64_t)PING_INTERVAL_S * 1000) {
		c->ping_due = true;
		lws_callback_on_writable(c->ws);
	}
	lws_sul_schedule(c->ctx, 0, &c->keepalive, keepalive_tick,
	                 (lws_usec_t)PING_INTERVAL_S * LWS_US_PER_SEC);
}

/* Until the websocket is open, the keepalive timer is the handshake's
 * deadline: a server that accepts and then says nothing is not waited on. */
static void
handshake_tick(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, keepalive);

	if (c->ws == NULL || c->link.open)
		return;
	snprintf(c->link_error, sizeof c->link_error, "the server took the connection but "
	         "did not finish the handshake within %d s", LINK_HANDSHAKE_TIMEOUT_S);
	lws_set_timeout(c->ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

int
link_connect(struct client *c)
{
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof ci);
	ci.context = c->ctx;
	ci.vhost = c->vh;
	ci.address = c->server.host;
	ci.port = c->server.port;
	ci.host = c->server.host;
	ci.method = "RAW";
	ci.protocol = "expose-link";
	ci.local_protocol_name = "expose-link";
	c->authed = false;
	c->link_error[0] = '\0';
	ws_free(&c->link);
	ws_init(&c->link);
	tls_conn_free(c->link_tls);
	c->link_tls = NULL;
	if (c->server.tls) {
		const char *why;

		/* link_trust was made at start (setup_server) */
		c->link_tls = tls_conn_new(c->link_trust, c->server.host, LINK_TLS_HINT, &why);
		if (c->link_tls == NULL) {
			log_err("TLS for %s: %s", c->server.host, why);
			schedule_reconnect(c, "cannot set up TLS");
			return -1;
		}
	}
	c->ws = lws_client_connect_via_info(&ci);
	if (c->ws == NULL) {
		schedule_reconnect(c, "cannot start a connection");
		return -1;
	}
	lws_sul_schedule(c->ctx, 0, &c->keepalive, handshake_tick,
	                 (lws_usec_t)LINK_HANDSHAKE_TIMEOUT_S * LWS_US_PER_SEC);
	return 0;
}

/* Bytes to the broker, through TLS for wss://. */
static int
link_send(struct lws *wsi, const uint8_t *p, size_t n)
{
	struct client *c = client_of(wsi);

	if (c->link_tls)
		return tls_conn_send(c->link_tls, wsi, p, n);
	return lws_write(wsi, (unsigned char *)(uintptr_t)p, n, LWS_WRITE_RAW) < (int)n ? -1 : 0;
}

static int
write_frame(struct lws *wsi, uint8_t *payload, size_t n, enum ws_opcode op)
{
	size_t len;
	uint8_t *frame = ws_frame(payload, n, op, &len);

	return link_send(wsi, frame, len);
}

static int
link_write(struct client *c, struct lws *wsi)
{
	uint8_t *payload = write_buf + WS_HEADER_MAX_BYTES;
	size_t n;
	int i;

	if (!c->link.open)
		return 0;
	if (c->stopping) {
		payload[0] = 0x03;    /* 1000: a normal close */
		payload[1] = 0xe8;
		write_frame(wsi, payload, 2, WS_CLOSE);
		return -1;
	}
	if (c->pong_due) {
		memcpy(payload, c->pong, c->pong_len);
		c->pong_due = false;
		if (write_frame(wsi, payload, c->pong_len, WS_PONG) == -1)
			return -1;
	}
	if (c->ping_due) {
		c->ping_due = false;
		if (write_frame(wsi, payload, 0, WS_PING) == -1)
			return -1;
	}
	for (i = 0; i < LINK_WRITES_PER_CALLBACK; i++) {
		n = mux_fill(&c->mux, payload, MUX_MESSAGE_BYTES);
		if (n == 0)
			break;
		if (write_frame(wsi, payload, n, WS_BINARY) == -1)
			return -1;
		if (lws_partial_buffered(wsi))
			break;
	}
	if (mux_pending(&c->mux))
		lws_callback_on_writable(wsi);
	return 0;
}

void
link_flush(struct client *c)
{
	struct mux_stream *ms;

	if (!c->flush_link)
		return;
	while ((ms = mux_arrived(&c->mux)) != NULL)
		local_flush((struct cstream *)(void *)ms);
	c->flush_link = false;
	if (c->ws == NULL || !mux_pending(&c->mux))
		return;
	if (!c->link.open || lws_partial_buffered(c->ws)) {
		lws_callback_on_writable(c->ws);
		return;
	}
	if (link_write(c, c->ws) == -1)
		lws_set_timeout(c->ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int
on_data(void *ctx, const uint8_t *p, size_t n)
{
	return tunnel_receive(ctx, p, n);
}

static int
on_control(void *ctx, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct client *c = ctx;

	if (op == WS_PING) {
		if (n > 0)            /* an empty ping's payload may be NULL */
			memcpy(c->pong, p, n);
		c->pong_len = n;
		c->pong_due = true;
		lws_callback_on_writable(c->ws);
	} else if (op == WS_CLOSE) {
		if (n > 2) {
			/* The server's words, shown as printable ASCII only. */
			char why[WS_CLOSE_REASON_BYTES];
			size_t len = n - 2 < sizeof why - 1 ? n - 2 : sizeof why - 1;

			memcpy(why, p + 2, len);
			why[len] = '\0';    /* a NUL in it ends it early: fine */
			proto_text_defang(why);
			log_warn("the server closed the connection: %s", why);
		}
		return -1;
	}
	return 0;
}

static const struct ws_handlers ws_handlers = {
	.data = on_data,
	.control = on_control,
};

static int
link_receive(struct client *c, const uint8_t *p, size_t n)
{
	size_t used = 0;
	int rc;

	c->last_rx_ms = clock_ms();
	if (!c->link.open) {
		rc = ws_response(&c->link, p, n, FRAME_SUBPROTOCOLS_OFFERED, &used);
		if (rc == -1) {
			snprintf(c->link_error, sizeof c->link_error, "%s", c->link.error);
			return -1;
		}
		if (rc == 0)
			return 0;
		c->ever_connected = true;
		c->connected_ms = clock_ms();
		lws_sul_schedule(c->ctx, 0, &c->keepalive, keepalive_tick,
		                 (lws_usec_t)PING_INTERVAL_S * LWS_US_PER_SEC);
		p += used;
		n -= used;
	}
	if (n && ws_feed(&c->link, p, n, &ws_handlers, c) == -1) {
		if (c->link.error)
			snprintf(c->link_error, sizeof c->link_error, "%s", c->link.error);
		return -1;
	}
	return c->done ? -1 : 0;
}

/* The connection is up (and TLS too, for wss): ask for the upgrade. */
static int
link_open(struct client *c, struct lws *wsi)
{
	char req[LINK_REQUEST_BYTES];
	int n = ws_request(&c->link, c->server.host, c->server.port, c->server.path,
	                   FRAME_SUBPROTOCOLS_OFFERED, req, sizeof req);

	if (n < 0 || link_send(wsi, (const uint8_t *)req, (size_t)n) == -1)
		return -1;
	return 0;
}

/* The link's plaintext, once TLS is through. */
static int
sink_data(void *ctx, const uint8_t *p, size_t n)
{
	return link_receive(ctx, p, n);
}

static int
sink_ready(void *ctx, struct lws *wsi)
{
	return link_open(ctx, wsi);
}

int
link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
              size_t len)
{
	struct client *c = client_of(wsi);
	struct tls_sink sink = { .ctx = c, .data = sink_data, .ready = sink_ready };

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (wsi == c->ws) {
			lws_sul_cancel(&c->keepalive);
			tunnel_lost(c, c->link_error[0] ? c->link_error :
			               in ? (const char *)in : "connection failed");
		}
		return 0;
	case LWS_CALLBACK_RAW_CONNECTED:
		if (wsi != c->ws)
			return -1;
		if (c->link_tls == NULL)
			return link_open(c, wsi);
		return tls_conn_start(c->link_tls, wsi, c->link_error, sizeof c->link_error);
	case LWS_CALLBACK_RAW_RX:
		if (wsi != c->ws)
			return -1;
		if (c->link_tls == NULL)
			return link_receive(c, in, len);
		return tls_conn_receive(c->link_tls, wsi, in, len, &sink, c->link_error,
		                        sizeof c->link_error);
	case LWS_CALLBACK_RAW_WRITEABLE:
		return wsi == c->ws ? link_write(c, wsi) : -1;
	case LWS_CALLBACK_RAW_CLOSE:
		if (wsi == c->ws) {
			lws_sul_cancel(&c->keepalive);
			tunnel_lost(c, c->link_error[0] ? c->link_error : "connection closed");
		}
		return 0;
	default:
		return 0;
	}
}
