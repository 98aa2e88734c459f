/*
 * The peer link's table and bytes (peer.h): which hosts to dial, the
 * dialling and its backoff, accepted connections, and each link's frames
 * in and out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "peer.h"


/* One batch of frames, and the record that seals it (lws needs LWS_PRE
 * bytes before what it writes). */
static uint8_t plain_buf[SEAL_PLAIN_MAX];
static uint8_t sealed_buf[LWS_PRE + SEAL_RECORD_MAX];

static void dial(struct peer *p);
static void link_close(struct link *l, const char *why);

/* A dial failed: said once until a link to p is up again. */
static void
dial_failed(struct peer *p, const char *why)
{
	if (!p->quiet)
		log_warn("peer dial failed host=%s addr=%s reason=\"%s\" (retrying at most "
		         "%d s apart; said again only after it succeeds)", p->name,
		         p->addr, why, PEER_REDIAL_MAX_MS / 1000);
	p->quiet = true;
}

static struct link *
link_of_mux(struct mux *m)
{
	return (struct link *)(void *)((char *)m - offsetof(struct link, mux));
}

static void
link_wake(struct mux *m)
{
	struct link *l = link_of_mux(m);

	if (l->wsi)
		lws_callback_on_writable(l->wsi);
}

static struct link *
link_new(struct peers *ps, struct peer *p, struct lws *wsi)
{
	struct link *l = calloc(1, sizeof *l);
	int port;

	if (l == NULL)
		return NULL;
	if (seal_init(&l->seal, p ? SEAL_DIALER : SEAL_LISTENER) == -1) {
		seal_free(&l->seal);
		free(l);
		return NULL;
	}
	l->ps = ps;
	l->peer = p;
	l->wsi = wsi;
	mux_init(&l->mux);
	l->mux.wake = link_wake;
	pstream_link_init(l);
	frame_decoder_init(&l->dec);
	map_init(&l->streams);
	sock_keepalive(lws_get_socket_fd(wsi), PEER_KEEPALIVE_IDLE_S, PEER_KEEPALIVE_INTERVAL_S,
	               PEER_KEEPALIVE_COUNT);
	if (sock_peer(lws_get_socket_fd(wsi), l->addr, sizeof l->addr, &port) == -1)
		snprintf(l->addr, sizeof l->addr, "%.63s", p ? p->addr : "unknown");
	snprintf(l->fp, sizeof l->fp, "-");
	lws_set_opaque_user_data(wsi, l);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, PEER_HANDSHAKE_TIMEOUT_S);
	lws_callback_on_writable(wsi);    /* our key exchange key goes first */
	return l;
}

static void
redial_due(lws_sorted_usec_list_t *sul)
{
	dial(lws_container_of(sul, struct peer, redial));
}

/* Dials p again after its backoff, which then doubles. */
static void
redial_later(struct peer *p)
{
	struct broker *b = p->ps->b;

	if (b->stopping)
		return;
	lws_sul_schedule(b->ctx, 0, &p->redial, redial_due,
	                 (lws_usec_t)p->backoff_ms * LWS_US_PER_MS);
	p->backoff_ms = p->backoff_ms * 2 > PEER_REDIAL_MAX_MS ? PEER_REDIAL_MAX_MS
	                                                         : p->backoff_ms * 2;
}

static void
dial(struct peer *p)
{
	struct broker *b = p->ps->b;
	lws_sock_file_fd_type u;
	struct lws *wsi;
	char host[64];
	int fd, port;

	if (p->link || sock_split(p->addr, host, sizeof host, &port) == -1)
		return;
	fd = sock_connect_tcp(p->addr);
	if (fd == -1) {
		dial_failed(p, strerror(errno));
		redial_later(p);
		return;
	}
	u.sockfd = fd;
	wsi = lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_SOCKET, u, "expose-peer-out",
	                                 NULL);
	if (wsi == NULL || (p->link = link_new(p->ps, p, wsi)) == NULL) {
		dial_failed(p, "out of memory");
		if (wsi)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		redial_later(p);
		return;
	}
	if (proto_dialed_make(p->link->dialed, sizeof p->link->dialed, 0, host, port) == -1)
		link_close(p->link, "its address cannot be signed");
}

static void
link_free(struct link *l)
{
	struct peers *ps = l->ps;

	pstream_drop_all(l);
	map_free(&l->streams);
	mux_free(&l->mux);
	seal_free(&l->seal);
	frame_decoder_free(&l->dec);
	if (l->peer) {
		l->peer->link = NULL;
		redial_later(l->peer);
	} else {
		if (l->prev)
			l->prev->next = l->next;
		else
			ps->accepted = l->next;
		if (l->next)
			l->next->prev = l->prev;
		ps->naccepted--;
	}
	free(l);
}

static const char *
link_host(const struct link *l)
{
	return l->peer ? l->peer->name : l->their_name[0] ? l->their_name : "-";
}

/* A link that was up is lost: said, and counted. */
static void
link_down(struct link *l, const char *why)
{
	if (l->peer)
		l->peer->drops++;
	log_warn("peer link down host=%s addr=%s reason=\"%s\"", link_host(l), l->addr, why);
}

/* Ends a link: its streams reset, a dialled one dialled again later. */
static void
link_close(struct link *l, const char *why)
{
	if (l->up)
		link_down(l, why);
	else if (l->peer)
		dial_failed(l->peer, why);
	else
		log_info("peer connection closed addr=%s reason=\"%s\"", l->addr, why);
	pstream_drop_all(l);
	l->up = false;
	l->closing = true;
	if (l->wsi)
		lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void
link_refuse(struct link *l, const char *fp, const char *why)
{
	uint8_t p[2 + PROTO_MESSAGE_BYTES];

	/* A dialer refusing the same peer at each retry says so once. */
	if (l->peer == NULL || !l->peer->quiet)
		log_warn("peer refused host=%s addr=%s key=%s reason=\"%s\"", link_host(l),
		         l->addr, fp, why);
	if (l->peer) {
		l->peer->quiet = true;
		l->peer->refusals++;
	} else {
		l->ps->refusals_in++;
	}
	/* Tell the other side why, then close. */
	mux_control(&l->mux, FRAME_ERROR, 0, p,
	            proto_code_encode(p, sizeof p, CODE_AUTH, why));
	if (l->wsi)
		lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, 1);
	l->refused = true;
	memset(l->nonce, 0, sizeof l->nonce);
}

static int
on_data(void *ctx, uint32_t id, const uint8_t *p, size_t n)
{
	struct link *l = ctx;

	return l->up ? pstream_on_data(l, id, p, n) : -1;
}

static int
on_control(void *ctx, uint8_t type, uint32_t id, const uint8_t *p, size_t len)
{
	struct link *l = ctx;
	char msg[PROTO_MESSAGE_BYTES];
	uint16_t code;

	if (type == FRAME_ERROR && id == 0) {
		if (proto_code_decode(p, len, &code, msg) == -1)
			return -1;
		proto_text_defang(msg);
		link_close(l, msg);
		return -1;
	}
	if (!l->up)
		return hello_on_frame(l, type, p, len);
	return pstream_on_control(l, type, id, p, len);
}

static const struct frame_handlers handlers = {
	.data = on_data,
	.control = on_control,
};

/* Frames opened from a sealed record. */
static int
link_plain(void *ctx, const uint8_t *p, size_t n)
{
	struct link *l = ctx;

	return frame_feed(&l->dec, p, n, &handlers, l);
}

static void
link_rx(struct link *l, const uint8_t *in, size_t len)
{
	bool was_ready = l->seal.ready;
	const char *why;

	if (seal_feed(&l->seal, in, len, link_plain, l, &why) == -1) {
		if (!l->refused && !l->closing)
			link_close(l, why ? why : l->dec.error ? l->dec.error : "bad frame");
		return;
	}
	/* Their key came: what waited for the seal can go. */
	if (!was_ready && l->seal.ready && l->wsi)
		lws_callback_on_writable(l->wsi);
}

/* Our key exchange key, once; then frames, each batch sealed. */
static int
link_write(struct link *l)
{
	size_t n;
	int i;

	if (!l->seal_key_sent) {
		memcpy(sealed_buf + LWS_PRE, l->seal.pk, SEAL_PK_BYTES);
		if (lws_write(l->wsi, sealed_buf + LWS_PRE, SEAL_PK_BYTES, LWS_WRITE_RAW) <
		    SEAL_PK_BYTES)
			return -1;
		l->seal_key_sent = true;
	}
	if (!l->seal.ready)
		return 0;
	for (i = 0; i < MUX_WRITES_PER_CALLBACK; i++) {
		if ((n = mux_fill(&l->mux, plain_buf, sizeof plain_buf)) == 0)
			break;
		n = seal_record(&l->seal, plain_buf, n, sealed_buf + LWS_PRE);
		if (lws_write(l->wsi, sealed_buf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n)
			return -1;
		if (lws_send_pipe_choked(l->wsi))
			break;
	}
	if (mux_pending(&l->mux))
		lws_callback_on_writable(l->wsi);
	return 0;
}

static int
link_event(struct link *l, enum lws_callback_reasons reason, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_RX:
		if (l->refused || l->closing)
			return 0;     /* only its ERROR goes out now, or nothing */
		link_rx(l, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return link_write(l);
	case LWS_CALLBACK_RAW_CLOSE:
		lws_set_opaque_user_data(l->wsi, NULL);
		l->wsi = NULL;
		if (l->peer && !l->up && !l->refused && !l->closing)
			dial_failed(l->peer, "no connection, or closed before the handshake");
		else if (l->up)
			link_down(l, "connection closed");
		link_free(l);
		return 0;
	default:
		return 0;
	}
}

int
peer_out_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                  void *in, size_t len)
{
	struct link *l = lws_get_opaque_user_data(wsi);

	return l ? link_event(l, reason, in, len) : 0;
}

/* A connection to peer-listen: it gets our CHALLENGE first. */
static int
link_accept(struct lws *wsi)
{
	struct peers *ps = broker_of(wsi)->peers;
	struct link *l;

	if (ps == NULL || ps->naccepted >= PEER_LINKS_IN_MAX)
		return -1;
	if ((l = link_new(ps, NULL, wsi)) == NULL)
		return -1;
	l->next = ps->accepted;
	if (ps->accepted)
		ps->accepted->prev = l;
	ps->accepted = l;
	ps->naccepted++;
	snprintf(l->dialed, sizeof l->dialed, "%s", ps->self_dialed);
	hello_challenge(l);
	return 0;
}

int
peer_in_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
	struct link *l = lws_get_opaque_user_data(wsi);

	if (reason == LWS_CALLBACK_RAW_ADOPT)
		return link_accept(wsi);
	return l ? link_event(l, reason, in, len) : 0;
}

/* --- the table --- */

void
peer_keys_warn(void *ctx, const char *msg)
{
	(void)ctx;
	log_warn("peer-keys %s", msg);
}

/* "NAME=ADDR:PORT,..." into ps->peer, all but this host's own entry. */
static int
parse_peers(struct peers *ps, const char *list, const char *self)
{
	const char *p = list, *eq, *end;
	struct peer *pe;
	char host[64];
	int port;

	while (*p) {
		end = p + strcspn(p, ",");
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p || (size_t)(eq - p) >= CLUSTER_HOST_BYTES ||
		    (size_t)(end - eq - 1) >= sizeof pe->addr || ps->npeers >= PEERS_MAX)
			return -1;
		pe = &ps->peer[ps->npeers];
		snprintf(pe->name, sizeof pe->name, "%.*s", (int)(eq - p), p);
		snprintf(pe->addr, sizeof pe->addr, "%.*s", (int)(end - eq - 1), eq + 1);
		if (sock_split(pe->addr, host, sizeof host, &port) == -1 || port == 0)
			return -1;
		if (strcmp(pe->name, self) != 0) {
			pe->ps = ps;
			pe->backoff_ms = PEER_REDIAL_MIN_MS;
			ps->npeers++;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* This host's peer-listen as the dialer signs it. */
static int
self_dialed(struct peers *ps, const char *listen)
{
	char host[64];
	int port;

	return sock_split(listen, host, sizeof host, &port) == -1 ? -1 :
	       proto_dialed_make(ps->self_dialed, sizeof ps->self_dialed, 0, host, port);
}

static int
load_identity(struct peers *ps, const struct settings *set)
{
	char path[SETTINGS_PATH_BYTES + 16], text[IDENTITY_PK_TEXT_BYTES];
	const char *why = NULL;

	settings_host_key(set, path, sizeof path);
	if (identity_load_or_create(&ps->id, path, &why) == -1) {
		log_err("host-key %s: %s (check the path and its mode)", path, why);
		return -1;
	}
	identity_pk_text(ps->id.pk, text);
	log_info("peer key host=%s key=\"%s\" (list it in the other hosts' peer-keys "
	         "as: names=%s %s)", set->host_name, text, set->host_name, text);
	if (set->peer_keys[0] == '\0') {
		log_err("peer-keys is empty: list the other hosts' keys in a file and "
		        "name it (exposed(8))");
		return -1;
	}
	if (keys_load(&ps->keys, set->peer_keys, peer_keys_warn, NULL, &why) == -1) {
		log_err("peer-keys %s: %s", set->peer_keys, why);
		return -1;
	}
	return 0;
}

int
peer_start(struct broker *b)
{
	const struct settings *set = &b->cfg->set;
	struct peers *ps;
	int i;

	if (set->peers[0] == '\0' && set->peer_listen[0] == '\0')
		return 0;
	if (set->etcd_endpoints[0] == '\0') {
		log_warn("peers and peer-listen apply with etcd-endpoints only: no peer link");
		return 0;
	}
	if ((ps = calloc(1, sizeof *ps)) == NULL)
		return -1;
	ps->b = b;
	b->peers = ps;
	if (parse_peers(ps, set->peers, set->host_name) == -1) {
		log_err("peers '%s': not a list of NAME=ADDR:PORT", set->peers);
		return -1;
	}
	if (set->peer_listen[0] && self_dialed(ps, set->peer_listen) == -1) {
		log_err("peer-listen '%s': not ADDR:PORT", set->peer_listen);
		return -1;
	}
	if (load_identity(ps, set) == -1)
		return -1;
	for (i = 0; i < ps->npeers; i++)
		dial(&ps->peer[i]);
	return 0;
}

void
peer_stop(struct broker *b)
{
	struct peers *ps = b->peers;

	/* After the context: its timers and links went with it. */
	if (ps == NULL)
		return;
	identity_wipe(&ps->id);
	keys_free(&ps->keys);
	free(ps);
	b->peers = NULL;
}
