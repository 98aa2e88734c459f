/*
 * The client side of the broker: one session per client websocket.  The
 * handshake (CHALLENGE, AUTH), tunnel requests (BIND), and the frames of
 * the streams multiplexed over it (expose(7)).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "broker.h"
#include "log.h"
#include "proto.h"
#include "registry.h"

/* A message: LWS_PRE bytes of room for lws, then a batch of frames. */
static uint8_t write_buf[LWS_PRE + MUX_MESSAGE_BYTES];
/* RFC 9266: the tls-exporter channel binding's label (no context). */
#define TLS_BINDING_LABEL "EXPORTER-Channel-Binding"

static struct session *
session_of_mux(struct mux *m)
{
	return (struct session *)(void *)((char *)m - offsetof(struct session, mux));
}

/* broker_flush writes what s has, after this turn of the event loop. */
static void
session_queue_flush(struct session *s)
{
	if (s->wsi && !s->flush_queued) {
		s->flush_queued = true;
		s->flush_next = s->b->flush_sessions;
		s->b->flush_sessions = s;
	}
}

static void
session_wake(struct mux *m)
{
	session_queue_flush(session_of_mux(m));
}

static void
session_unqueue_flush(struct session *s)
{
	struct session **pp;

	if (!s->flush_queued)
		return;
	for (pp = &s->b->flush_sessions; *pp; pp = &(*pp)->flush_next) {
		if (*pp == s) {
			*pp = s->flush_next;
			break;
		}
	}
	s->flush_queued = false;
}

static void
stream_has_room(struct mux_stream *ms)
{
	stream_on_window((struct stream *)(void *)ms);
}

static struct stream *
session_stream(struct session *s, uint32_t id)
{
	struct map_node *n = map_find(&s->streams, &id, sizeof id);

	return n ? map_entry(n, struct stream, node) : NULL;
}

void
session_error(struct session *s, uint32_t stream, uint16_t code, const char *msg)
{
	uint8_t p[2 + PROTO_MESSAGE_BYTES];

	mux_control(&s->mux, FRAME_ERROR, stream, p, proto_code_encode(p, sizeof p, code, msg));
}

/* The session serves no more: its tunnels' rows are deleted and their
 * names freed, now.  The one path by which a session's rows go, whether it
 * is closed (session_close) or its websocket vanished (session_free). */
static void
session_retire(struct session *s)
{
	tunnel_unbind_all(s);
}

void
session_close(struct session *s, uint16_t code, const char *why)
{
	if (s->closing)
		return;
	s->closing = true;
	/* Its rows go now, whether or not the client reads its error. */
	session_retire(s);
	s->close_code = code;
	snprintf(s->close_reason, sizeof s->close_reason, "%s", why);
	session_error(s, 0, code, why);
	/* If the client does not read its error, close anyway. */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

static int
session_open(struct lws *wsi)
{
	struct session *s = calloc(1, sizeof *s);
	uint8_t challenge[1 + IDENTITY_NONCE_BYTES + DOMAIN_MAX_BYTES];
	size_t n;
	int port;

	if (s == NULL)
		return -1;
	s->b = broker_of(wsi);
	s->wsi = wsi;
	mux_init(&s->mux);
	s->mux.wake = session_wake;
	s->mux.sent = stream_has_room;
	frame_decoder_init(&s->dec);
	map_init(&s->streams);
	identity_random(&s->id, sizeof s->id);
	s->id &= INT64_MAX;
	identity_random(s->nonce, sizeof s->nonce);
	if (sock_peer(lws_get_socket_fd(wsi), s->addr, sizeof s->addr, &port) == -1)
		snprintf(s->addr, sizeof s->addr, "unknown");
	lws_set_opaque_user_data(wsi, s);

	s->next = s->b->sessions;
	if (s->b->sessions)
		s->b->sessions->prev = s;
	s->b->sessions = s;
	s->b->nsessions++;

	n = proto_challenge_encode(challenge, sizeof challenge, FRAME_VERSION, s->nonce,
	                           s->b->cfg->set.domain);
	mux_control(&s->mux, FRAME_CHALLENGE, 0, challenge, n);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HANDSHAKE_TIMEOUT_S);
	log_debug("client connected addr=%s", s->addr);
	return 0;
}

static void
detach_stream(struct map_node *n, void *ctx)
{
	stream_detach(map_entry(n, struct stream, node));
}

/* The websocket is gone: everything the session owned goes with it. */
static void
session_free(struct session *s)
{
	struct broker *b = s->b;

	session_retire(s);
	session_unqueue_flush(s);
	map_each(&s->streams, detach_stream, NULL);
	access_leave(s);
	map_free(&s->streams);
	mux_free(&s->mux);
	frame_decoder_free(&s->dec);
	if (s->prev)
		s->prev->next = s->next;
	else
		b->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	b->nsessions--;
	if (s->authed)
		log_info("client down key=%s addr=%s%s%s", s->fp, s->addr,
		         s->close_reason[0] ? " reason=" : "", s->close_reason);
	else if (!s->closing)
		b->metrics.handshakes[HS_ABANDONED]++;    /* left, or timed out */
	free(s);
}

/* The TLS channel this connection is on (RFC 9266 tls-exporter): 1 and
 * binding set, 0 on a plain connection, -1 if TLS cannot say. */
static int
own_binding(struct session *s, uint8_t binding[IDENTITY_BINDING_BYTES])
{
	SSL *ssl = lws_get_ssl(s->wsi);

	if (ssl == NULL)
		return 0;
	if (SSL_export_keying_material(ssl, binding, IDENTITY_BINDING_BYTES,
	                               TLS_BINDING_LABEL, strlen(TLS_BINDING_LABEL),
	                               NULL, 0, 0) != 1)
		return -1;
	return 1;
}

/* Whether the client signed for this server: a URL it answers to, over
 * the TLS channel it terminates.  NULL if so, else why not.  On a plain
 * listener a wss:// URL means a proxy in front ends TLS: the broker cannot
 * see that channel and takes the client's word for it; a ws:// one has
 * none, so its binding is zeros. */
static const char *
signed_for_us(struct session *s, const struct proto_auth *a)
{
	static char msg[PROTO_MESSAGE_BYTES * 3];   /* cut to a message's size when sent */
	static const uint8_t none[IDENTITY_BINDING_BYTES];
	uint8_t binding[IDENTITY_BINDING_BYTES];
	char urls[PROTO_MESSAGE_BYTES];
	int tls;

	if (!access_server_ok(s->b, a->dialed)) {
		access_servers_text(s->b, urls, sizeof urls);
		snprintf(msg, sizeof msg, "signed for %s, which is not this server (%s): "
		         "a server between you relayed it?", a->dialed, urls);
		return msg;
	}
	tls = own_binding(s, binding);
	if (tls == -1)
		return "this server cannot read its TLS channel binding";
	if ((tls == 1 && CRYPTO_memcmp(binding, a->binding, sizeof binding) != 0) ||
	    (tls == 0 && strncmp(a->dialed, "ws://", 5) == 0 &&
	     CRYPTO_memcmp(none, a->binding, sizeof none) != 0))
		return "signed for another TLS connection: something between you and this "
		       "server ended TLS and relayed it";
	return NULL;
}

static void
refuse_auth(struct session *s, enum handshake_result hs, const char *fp, const char *why)
{
	log_info("handshake refused key=%s addr=%s reason=\"%s\"", fp, s->addr, why);
	s->b->metrics.handshakes[hs]++;
	session_close(s, CODE_AUTH, why);
}

static int
on_auth(struct session *s, const uint8_t *p, size_t len)
{
	struct proto_auth a;
	struct identity_challenge ch;
	const char *why;
	char fp[IDENTITY_FP_BYTES];

	if (s->authed || proto_auth_decode(p, len, &a) == -1) {
		session_close(s, CODE_PROTOCOL, "malformed AUTH");
		return 0;
	}
	ch = (struct identity_challenge){
		.version = FRAME_VERSION, .nonce = s->nonce, .server = s->b->cfg->set.domain,
		.dialed = a.dialed, .binding = a.binding,
	};
	if (identity_verify_challenge(a.pk, &ch, a.sig) == -1) {
		refuse_auth(s, HS_BAD_SIGNATURE, "-", "the signature does not verify");
		return 0;
	}
	identity_fingerprint(a.pk, fp);
	if ((why = signed_for_us(s, &a)) != NULL) {
		refuse_auth(s, HS_OTHER_SERVER, fp, why);
		return 0;
	}
	memcpy(s->pk, a.pk, IDENTITY_PK_BYTES);
	identity_pk_text(s->pk, s->key);
	snprintf(s->fp, sizeof s->fp, "%s", fp);
	if ((why = access_admit(s)) != NULL) {
		refuse_auth(s, HS_NOT_AUTHORIZED, s->fp, why);
		return 0;
	}
	/* A nonce signs one handshake only. */
	memset(s->nonce, 0, sizeof s->nonce);
	s->authed = true;
	s->b->metrics.handshakes[HS_OK]++;
	lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
	log_info("client up key=%s addr=%s", s->fp, s->addr);
	return 0;
}

static int
on_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
	struct session *s = ctx;
	struct stream *st;

	if (!s->authed)
		return -1;
	st = session_stream(s, id);
	if (st == NULL)
		return 0;    /* a stream we already reset: its bytes are moot */
	session_queue_flush(s);
	return stream_on_data(st, p, n);
}

static int
on_control(void *ctx, uint8_t type, uint32_t id, const uint8_t *p, size_t len)
{
	struct session *s = ctx;
	struct stream *st;
	char msg[PROTO_MESSAGE_BYTES];
	uint16_t code;

	if (type == FRAME_AUTH)
		return on_auth(s, p, len);
	if (!s->authed || s->closing)
		return s->closing ? 0 : -1;
	if (type == FRAME_BIND)
		return tunnel_bind(s, id, p, len);
	if (type != FRAME_FIN && type != FRAME_RST && type != FRAME_WINDOW)
		return -1;
	st = session_stream(s, id);
	if (st == NULL)
		return 0;
	switch (type) {
	case FRAME_FIN:
		stream_on_fin(st);
		return 0;
	case FRAME_RST:
		if (proto_code_decode(p, len, &code, msg) == -1)
			return -1;
		stream_on_rst(st, code, msg);
		return 0;
	default:
		if (len != 4 || mux_stream_window(&st->m, frame_get32(p)) == -1)
			return -1;
		stream_on_window(st);
		return 0;
	}
}

static const struct frame_handlers handlers = {
	.data = on_data,
	.control = on_control,
};

/* Writes the session's queued frames, as many as it takes now, and asks
 * for another writeable while any remain.  -1 if a write failed. */
static int
session_write_mux(struct mux *m, struct lws *wsi, enum lws_write_protocol how)
{
	size_t n, total = 0;
	int i;

	for (i = 0; i < MUX_WRITES_PER_CALLBACK && total < MUX_WRITE_BYTES_PER_CALLBACK; i++) {
		n = mux_fill(m, write_buf + LWS_PRE, MUX_MESSAGE_BYTES);
		if (n == 0)
			break;
		if (lws_write(wsi, write_buf + LWS_PRE, n, how) < (int)n)
			return -1;
		total += n;
		if (lws_partial_buffered(wsi))
			break;
	}
	if (mux_pending(m))
		lws_callback_on_writable(wsi);
	return 0;
}

static int
session_write(struct session *s)
{
	if (session_write_mux(&s->mux, s->wsi, LWS_WRITE_BINARY) == -1)
		return -1;
	if (mux_pending(&s->mux))
		return 0;
	if (s->closing) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 (unsigned char *)s->close_reason, strlen(s->close_reason));
		return -1;
	}
	return 0;
}

/* A session's frames go out now if its socket takes them; one that is
 * not through its handshake, is closing, or is full waits for its
 * writeable callback. */
static void
session_flush(struct session *s)
{
	if (s->wsi == NULL)
		return;
	if (!s->authed || s->closing || lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	if (session_write_mux(&s->mux, s->wsi, LWS_WRITE_BINARY) == -1)
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void
broker_flush(struct broker *b)
{
	struct session *s;
	struct mux_stream *ms;

	while ((s = b->flush_sessions) != NULL) {
		b->flush_sessions = s->flush_next;
		/* The edges first: what they drain queues WINDOW frames, which
		 * go in the same write (s stays marked queued meanwhile). */
		while ((ms = mux_arrived(&s->mux)) != NULL)
			stream_flush((struct stream *)(void *)ms);
		s->flush_queued = false;
		session_flush(s);
	}
}

int
session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
	struct session *s = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return session_open(wsi);
	case LWS_CALLBACK_RECEIVE:
		if (s == NULL)
			return -1;
		if (frame_feed(&s->dec, in, len, &handlers, s) == -1) {
			log_info("protocol error key=%s addr=%s reason=%s",
			         s->authed ? s->fp : "-", s->addr,
			         s->dec.error ? s->dec.error : "bad frame");
			if (s->dec.error == NULL)
				s->dec.error = "bad frame";
			s->b->metrics.handshakes[HS_PROTOCOL] += !s->authed;
			session_close(s, CODE_PROTOCOL, s->dec.error);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s ? session_write(s) : -1;
	case LWS_CALLBACK_CLOSED:
		if (s) {
			lws_set_opaque_user_data(wsi, NULL);
			s->wsi = NULL;
			session_free(s);
		}
		return 0;
	default:
		return 0;
	}
}

/* A client of protocol 1 signs only the challenge's server name, which a
 * relaying server can abuse: it gets an ERROR it prints, code 8 so that it
 * stops instead of retrying, and the close. */
int
session_old_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                     void *in, size_t len)
{
	static uint8_t buf[LWS_PRE + FRAME_HEADER_BYTES + 2 + PROTO_MESSAGE_BYTES];
	static const char said;   /* marks a connection whose ERROR is written */
	char msg[PROTO_MESSAGE_BYTES], addr[SOCK_ADDR_TEXT_BYTES];
	size_t n;
	int port;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		broker_of(wsi)->metrics.handshakes[HS_OLD_PROTOCOL]++;
		if (sock_peer(lws_get_socket_fd(wsi), addr, sizeof addr, &port) == -1)
			snprintf(addr, sizeof addr, "unknown");
		log_info("handshake refused addr=%s reason=\"protocol %d\"", addr, FRAME_VERSION - 1);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HANDSHAKE_TIMEOUT_S);
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (lws_get_opaque_user_data(wsi) == &said)
			return -1;    /* the ERROR is out: close */
		snprintf(msg, sizeof msg, "this server speaks expose protocol %d; upgrade expose",
		         FRAME_VERSION);
		n = proto_code_encode(buf + LWS_PRE + FRAME_HEADER_BYTES, 2 + PROTO_MESSAGE_BYTES,
		                      CODE_AUTH, msg);
		frame_header(buf + LWS_PRE, FRAME_ERROR, 0, n);
		if (lws_write(wsi, buf + LWS_PRE, FRAME_HEADER_BYTES + n, LWS_WRITE_BINARY) <
		    (int)(FRAME_HEADER_BYTES + n))
			return -1;
		lws_set_opaque_user_data(wsi, (void *)(uintptr_t)&said);
		lws_callback_on_writable(wsi);
		return 0;
	default:
		return 0;
	}
}
