/*
 * The tunnel protocol on the client's side: prove the key, bind the
 * tunnels, carry streams, and reconnect with capped, jittered backoff
 * when the connection drops, asking for the same names again.  link.c
 * carries the frames over the websocket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sysexits.h>

#include "client.h"
#include "log.h"
#include "name.h"
#include "proto.h"

static void reconnect_now(lws_sorted_usec_list_t *sul);
void schedule_reconnect(struct client *c, const char *why);

static void
mux_wake(struct mux *m)
{
	struct client *c = lws_container_of(m, struct client, mux);

	c->flush_link = true;    /* link_flush, after this turn of the loop */
}

static void
mux_sent(struct mux_stream *ms)
{
	local_on_window((struct cstream *)(void *)ms);
}

static void
mux_finished(struct mux_stream *ms)
{
	struct cstream *cs = (struct cstream *)(void *)ms;

	if (cs->local_closed)
		local_close(cs);
}

void
tunnel_init(struct client *c)
{
	mux_init(&c->mux);
	c->mux.wake = mux_wake;
	c->mux.sent = mux_sent;
	c->mux.finished = mux_finished;
	frame_decoder_init(&c->dec);
}

/* The server the next attempt goes to: the same after a link that
 * served (its host may come back: a restarted broker), else the next in
 * the list (and after a host that could not give names: c->hop).  true
 * if this round of the list is over: every server was tried since the
 * last that served. */
static bool
next_server(struct client *c)
{
	bool stay = c->served && !c->hop;

	c->served = false;
	c->hop = false;
	if (stay) {
		c->round_start = c->current;
		return true;
	}
	servers_use(c, (c->current + 1) % c->nservers);
	return c->current == c->round_start;
}

/* Waits, then connects again: to the next server at once while a round
 * of the list lasts; after a round, base doubling to a cap, +-25% jitter. */
void
schedule_reconnect(struct client *c, const char *why)
{
	const char *failed = c->server_text;
	bool served = c->served;
	uint32_t jitter;
	int delay;

	if (c->stopping || c->done)
		return;
	if (served)
		output_lost(c, failed, why);
	if (!next_server(c)) {
		log_info("cannot reach %s: %s; trying %s", failed, why, c->server_text);
		lws_sul_schedule(c->ctx, 0, &c->reconnect, reconnect_now, 0);
		return;
	}
	if (c->connected_ms && clock_ms() - c->connected_ms >= RECONNECT_STABLE_MS)
		c->backoff_ms = 0;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RECONNECT_MIN_MS;
	if (c->backoff_ms > RECONNECT_MAX_MS)
		c->backoff_ms = RECONNECT_MAX_MS;
	identity_random(&jitter, sizeof jitter);
	delay = c->backoff_ms * 3 / 4 + (int)(jitter % (uint32_t)(c->backoff_ms / 2 + 1));
	c->connected_ms = 0;
	if (c->nservers > 1 && !served)
		log_warn("cannot reach any of the %d servers (%s: %s); retrying %s in %.1fs",
		         c->nservers, failed, why, c->server_text, delay / 1000.0);
	else
		log_warn("%s %s: %s; retrying in %.1fs", c->ever_connected ?
		         "lost the connection to" : "cannot reach", c->server_text, why,
		         delay / 1000.0);
	lws_sul_schedule(c->ctx, 0, &c->reconnect, reconnect_now,
	                 (lws_usec_t)delay * LWS_US_PER_MS);
}

static void
reconnect_now(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, reconnect);

	if (!c->stopping && c->ws == NULL)
		link_connect(c);
}

/* Tunnel i is stream i + 1 in BIND, BOUND, ERROR and OPEN: 0 is the session. */
static void
send_bind(struct client *c, int i)
{
	struct target *t = &c->targets[i];
	/* After a reconnect, ask for the name we had; at first, --name or
	 * the name of last time. */
	const char *name = t->name[0] ? t->name : t->want[0] ? t->want : t->remembered;
	char text[2048], label[sizeof t->label];
	int n;

	/* The server takes printable ASCII only: a unix: path in UTF-8 is
	 * shown to it with '?' for its other bytes (it is for people). */
	snprintf(label, sizeof label, "%s", t->label);
	proto_text_defang(label);
	n = snprintf(text, sizeof text, "%s%s%starget=%s\n%s%s%s%s%s%s", name[0] ? "name=" : "",
	             name, name[0] ? "\n" : "", label,
	             c->auth[0] ? "auth=" : "", c->auth, c->auth[0] ? "\n" : "",
	             c->allow[0] ? "allow=" : "", c->allow, c->allow[0] ? "\n" : "");
	t->bound = false;
	mux_control(&c->mux, FRAME_BIND, (uint32_t)i + 1, text, (size_t)n);
}

static void
send_binds(struct client *c)
{
	int i;

	for (i = 0; i < c->ntargets; i++)
		send_bind(c, i);
}

static void stop(struct client *c, int code);

/* What this client knows of the connection: the TLS channel it made, or
 * zeros over ws://.  -1 if TLS cannot say. */
static int
channel_binding(struct client *c, uint8_t binding[IDENTITY_BINDING_BYTES])
{
	memset(binding, 0, IDENTITY_BINDING_BYTES);
	if (c->link_tls == NULL)
		return 0;
	return tls_conn_binding(c->link_tls, binding);
}

/* Signs the challenge together with the server this client dialed and
 * its TLS channel: a server that relays another's challenge gets a
 * signature the other refuses. */
static int
on_challenge(struct client *c, const uint8_t *p, size_t len)
{
	uint8_t auth[IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES + IDENTITY_BINDING_BYTES +
	             PROTO_DIALED_BYTES];
	uint8_t sig[IDENTITY_SIG_BYTES], binding[IDENTITY_BINDING_BYTES];
	struct proto_challenge ch;
	struct identity_challenge signed_ch;
	size_t n;

	if (c->authed || proto_challenge_decode(p, len, &ch) == -1)
		return -1;
	if (ch.version != FRAME_VERSION) {
		log_err("the server speaks expose protocol %u, this client %d: upgrade "
		        "whichever is older", ch.version, FRAME_VERSION);
		stop(c, EX_PROTOCOL);
		return 0;
	}
	if (channel_binding(c, binding) == -1) {
		log_err("TLS with %s cannot give a channel binding", c->server.host);
		return -1;
	}
	signed_ch = (struct identity_challenge){
		.version = FRAME_VERSION, .nonce = ch.nonce, .server = ch.server,
		.dialed = c->dialed, .binding = binding,
	};
	if (identity_sign_challenge(&c->id, &signed_ch, sig) == -1)
		return -1;
	n = proto_auth_encode(auth, sizeof auth, c->id.pk, sig, binding, c->dialed);
	if (n == 0)
		return -1;
	mux_control(&c->mux, FRAME_AUTH, 0, auth, n);
	c->authed = true;
	send_binds(c);
	return 0;
}

/* How this target's streams are followed: rewritten for a dev server
 * (--host-header=rewrite), captured for the inspector. */
static void
target_options(struct client *c, struct target *t)
{
	const char *host = strstr(t->url, "://"), *slash;
	size_t n;

	n = host ? (size_t)(host - t->url) : 0;
	if (n >= sizeof t->public_scheme)
		n = 0;
	memcpy(t->public_scheme, t->url, n);
	t->public_scheme[n] = '\0';
	host = host ? host + 3 : t->url;
	slash = strchr(host, '/');
	n = slash ? (size_t)(slash - host) : strlen(host);
	if (n >= sizeof t->public_host)
		n = sizeof t->public_host - 1;
	memcpy(t->public_host, host, n);
	t->public_host[n] = '\0';
	memset(&t->xopts, 0, sizeof t->xopts);
	if (c->rewrite_host) {
		t->xopts.local_host = t->host_header;
		t->xopts.public_host = t->public_host;
		t->xopts.public_scheme = t->public_scheme;
	}
	t->xopts.capture_bytes = c->inspect_wanted ? INSPECT_BODY_BYTES : 0;
}

static bool
all_bound(const struct client *c)
{
	int i;

	for (i = 0; i < c->ntargets; i++)
		if (!c->targets[i].printed)
			return false;
	return true;
}

/* A URL as the broker gives it: http(s)://, then visible ASCII. */
static bool
url_is_sane(const char *url, bool may_be_empty)
{
	const char *p;

	if (*url == '\0')
		return may_be_empty;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return false;
	for (p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

static int
on_bound(struct client *c, uint32_t index, const uint8_t *p, size_t len)
{
	struct target *t;
	char url[URL_BYTES], name[NAME_MAX_BYTES + 1], http_url[URL_BYTES];

	if (index == 0 || index > (uint32_t)c->ntargets ||
	    proto_kv_get(p, len, "http-url", http_url, sizeof http_url) == -1 ||
	    proto_kv_get(p, len, "url", url, sizeof url) != 1 ||
	    proto_kv_get(p, len, "name", name, sizeof name) != 1)
		return -1;
	if (!url_is_sane(url, false) || !url_is_sane(http_url, true) || !name_is_valid(name)) {
		proto_text_defang(url);    /* shown to a terminal: see on_error */
		log_err("the server sent a malformed URL (%.80s): is it an expose server?", url);
		return -1;
	}
	t = &c->targets[index - 1];
	t->bound = true;
	c->served = true;
	if (t->printed && strcmp(url, t->url) == 0) {
		bool moved = t->server != c->current;

		if (moved) {
			/* Its key still owns the name: the cluster gives it back here. */
			log_info("moved to %s: same URL %s -> %s", c->server_text, t->url, t->label);
			names_save(c, t);
		} else {
			log_info("reconnected: %s -> %s", t->url, t->label);
		}
		output_back(c, t, moved);
		t->server = c->current;
		return 0;
	}
	t->server = c->current;
	if (t->printed)
		log_warn("the tunnel to %s has a new URL: %s (the old name was taken)",
		         t->label, url);
	t->same_as_last = t->remembered[0] && strcmp(name, t->remembered) == 0;
	snprintf(t->url, sizeof t->url, "%s", url);
	snprintf(t->name, sizeof t->name, "%s", name);
	names_save(c, t);
	target_options(c, t);
	output_url(c, t, http_url);
	t->printed = true;
	if (all_bound(c))
		output_status(c, clock_ms() - c->connected_ms);
	return 0;
}

static void
stop(struct client *c, int code)
{
	c->exit_code = code;
	c->stopping = 1;
	c->done = true;
}

static int
on_error(struct client *c, uint32_t index, const uint8_t *p, size_t len)
{
	struct target *t;
	char msg[PROTO_MESSAGE_BYTES];
	uint16_t code;

	if (proto_code_decode(p, len, &code, msg) == -1)
		return -1;
	/* Printed to a terminal: a hostile server must not move the cursor,
	 * retitle the window or hide text. */
	proto_text_defang(msg);
	if (index == 0) {
		/* About the whole connection; the server closes it next. */
		log_err("the server ended the connection: %s", msg);
		if (code == CODE_AUTH || code == CODE_REPLACED || code == CODE_KICKED)
			stop(c, code == CODE_AUTH ? EX_NOPERM : EX_UNAVAILABLE);
		return 0;
	}
	if (index > (uint32_t)c->ntargets)
		return -1;
	t = &c->targets[index - 1];
	if (code == CODE_INTERNAL && c->nservers > 1) {
		/* This host cannot give names now (cut off from its cluster?):
		 * another may.  The link goes, and every tunnel with it. */
		log_warn("%s: %s; trying the next server", t->label, msg);
		snprintf(c->link_error, sizeof c->link_error, "%s", msg);
		c->hop = true;
		lws_set_timeout(c->ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return 0;
	}
	if (code == CODE_REPLACED) {
		log_err("another expose with the same key took %s", t->name);
		stop(c, EX_UNAVAILABLE);
		return 0;
	}
	if (code == CODE_NAME_TAKEN && t->want[0] == '\0' && t->name[0]) {
		/* Our random name went to someone else while we were away. */
		t->name[0] = '\0';
		send_bind(c, index - 1);
		return 0;
	}
	if (t->want[0] == '\0' && t->name[0] == '\0' && t->remembered[0] &&
	    (code == CODE_NAME_TAKEN || code == CODE_NAME_DENIED || code == CODE_NAME_INVALID ||
	     code == CODE_LIMIT)) {
		/* Last time's name is not to be had: a random one, and why. */
		log_warn("%s: not the URL of last time: the server refused its name (%s); "
		         "a new one follows", t->label, msg);
		t->remembered[0] = '\0';
		send_bind(c, index - 1);
		return 0;
	}
	log_err("%s", msg);
	stop(c, code == CODE_INTERNAL ? EX_UNAVAILABLE : EX_NOPERM);
	return 0;
}

static int
on_open(struct client *c, uint32_t id, const uint8_t *p, size_t len)
{
	char peer[PREAMBLE_MAX_BYTES + 1];
	uint32_t index;

	if (proto_open_decode(p, len, &index, peer, sizeof peer) == -1 ||
	    index == 0 || index > (uint32_t)c->ntargets || local_find(c, id))
		return -1;
	if (c->streams.count >= CLIENT_STREAMS_MAX) {
		/* A server may not make us open connections without end. */
		static bool warned;
		if (!warned)
			log_warn("the server opened more than %d streams at once; refusing more",
			         CLIENT_STREAMS_MAX);
		warned = true;
		mux_reset(&c->mux, id, CODE_LIMIT, "the client's stream limit");
		return 0;
	}
	local_open(c, id, &c->targets[index - 1], peer);
	return 0;
}

static int
on_control(void *ctx, uint8_t type, uint32_t id, const uint8_t *p, size_t len)
{
	struct client *c = ctx;
	struct cstream *cs;

	switch (type) {
	case FRAME_CHALLENGE: return on_challenge(c, p, len);
	case FRAME_BOUND: return on_bound(c, id, p, len);
	case FRAME_ERROR: return on_error(c, id, p, len);
	case FRAME_OPEN: return on_open(c, id, p, len);
	case FRAME_FIN:
	case FRAME_RST:
	case FRAME_WINDOW:
		break;
	default:
		return -1;
	}
	cs = local_find(c, id);
	if (cs == NULL)
		return 0;    /* already gone here */
	if (type == FRAME_FIN)
		local_on_fin(cs);
	else if (type == FRAME_RST)
		local_close(cs);
	else if (len != 4 || mux_stream_window(&cs->m, frame_get32(p)) == -1)
		return -1;
	else
		local_on_window(cs);
	return 0;
}

static int
on_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
	struct cstream *cs = local_find(ctx, id);

	return cs ? local_on_data(cs, p, n) : 0;
}

static const struct frame_handlers handlers = {
	.data = on_data,
	.control = on_control,
};

/* The websocket is gone: its streams go, and we try again. */
void
tunnel_lost(struct client *c, const char *why)
{
	c->ws = NULL;
	c->authed = false;
	local_close_all(c);
	mux_free(&c->mux);
	frame_decoder_free(&c->dec);
	tunnel_init(c);
	if (c->stopping) {
		c->done = true;
		return;
	}
	schedule_reconnect(c, why);
}

/* Frames from the broker, as the websocket delivers them. */
int
tunnel_receive(struct client *c, const uint8_t *p, size_t n)
{
	if (frame_feed(&c->dec, p, n, &handlers, c) == -1) {
		log_err("the server broke the protocol: %s",
		        c->dec.error ? c->dec.error : "bad frame");
		return -1;
	}
	return c->done ? -1 : 0;
}
