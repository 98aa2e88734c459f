/*
 * Streams on the peer link (peer.h).  A stream joins one connection to
 * one stream of a link, under the link's credit, both ways:
 *
 *   dialing side:  the edge's connection, handed over by edgeconn.c once
 *                  its OPEN line named a tunnel that another host holds;
 *   other side:    our end of a socketpair whose far end is adopted as an
 *                  edge connection, so this host serves the visitor as it
 *                  serves its own edges (limits, pages, credit and all).
 *
 * The OPEN frame carries the edge's OPEN line; the bytes both ways are the
 * edge protocol's (expose(7)), relayed unchanged.  Only the dialer opens
 * streams, each for a tunnel the other host holds now: an OPEN for any
 * other name is reset, one from the listener ends the link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "peer.h"
#include "preamble.h"
#include "registry.h"

/* Bytes written to a stream's connection per writeable callback. */
#define PSTREAM_WRITE_BYTES (64 * 1024)

struct pstream {
	struct mux_stream m;      /* first: the mux hands it back */
	struct link *l;           /* NULL once off its link */
	struct map_node node;     /* in l->streams */
	uint32_t key;
	struct lws *wsi;          /* NULL once its connection is gone */
	bool paused;
	bool kill;                /* close the connection at its next writeable */
};

static struct pstream *
find(struct link *l, uint32_t id)
{
	struct map_node *n = map_find(&l->streams, &id, sizeof id);

	return n ? map_entry(n, struct pstream, node) : NULL;
}

static void
detach(struct pstream *ps)
{
	if (ps->l == NULL)
		return;
	map_remove(&ps->l->streams, &ps->node);
	mux_stream_free(&ps->m);
	ps->l = NULL;
}

static void
kill_conn(struct pstream *ps)
{
	ps->kill = true;
	if (ps->wsi)
		lws_callback_on_writable(ps->wsi);
}

static void
resume(struct pstream *ps)
{
	if (ps->paused && ps->wsi && mux_stream_want(&ps->m) > 0) {
		ps->paused = false;
		lws_rx_flow_control(ps->wsi, 1);
	}
}

static void
on_sent(struct mux_stream *ms)
{
	resume((struct pstream *)(void *)ms);
}

/* Our FIN went out: a stream whose connection is gone is done. */
static void
on_finished(struct mux_stream *ms)
{
	struct pstream *ps = (struct pstream *)(void *)ms;

	if (ps->wsi == NULL) {
		detach(ps);
		free(ps);
	}
}

void
pstream_link_init(struct link *l)
{
	l->mux.sent = on_sent;
	l->mux.finished = on_finished;
}

static struct pstream *
pstream_new(struct link *l, uint32_t id, struct lws *wsi)
{
	struct pstream *ps = calloc(1, sizeof *ps);

	if (ps == NULL)
		return NULL;
	ps->key = id;
	mux_stream_init(&l->mux, &ps->m, id);
	if (map_insert(&l->streams, &ps->node, &ps->key, sizeof ps->key) == -1) {
		mux_stream_free(&ps->m);
		free(ps);
		return NULL;
	}
	ps->l = l;
	ps->wsi = wsi;
	return ps;
}

/* --- the dialing side --- */

static struct peer *
peer_named(struct peers *ps, const char *host)
{
	int i;

	for (i = 0; i < ps->npeers; i++)
		if (strcmp(ps->peer[i].name, host) == 0)
			return &ps->peer[i];
	return NULL;
}

int
peer_relay(struct stream *st, const char *name, const char *line,
           const uint8_t *rest, size_t n)
{
	struct broker *b = st->b;
	struct registry_route r;
	struct pstream *ps;
	struct peer *p;
	struct link *l;
	uint32_t id;

	if (registry_lookup(b->reg, name, &r) != 1 || r.socket[0] || r.host[0] == '\0' ||
	    strcmp(r.host, b->cfg->set.host_name) == 0)
		return 0;
	p = peer_named(b->peers, r.host);
	l = p && p->link && p->link->up ? p->link : NULL;
	if (l == NULL) {
		if (p)
			p->relay_failed++;
		log_debug("peer relay refused name=%s host=%s reason=\"no link to that host "
		         "is up\"", name, r.host);
		return -1;
	}
	if (l->streams.count >= PEER_STREAMS_MAX)
		goto failed;
	if (++l->next_stream == 0)
		l->next_stream = 1;
	id = l->next_stream;
	if (find(l, id) || (ps = pstream_new(l, id, st->wsi)) == NULL)
		goto failed;
	p->streams_total++;
	st->relay = ps;
	mux_control(&l->mux, FRAME_OPEN, id, line, strlen(line));
	if (n)
		(void)mux_stream_send(&ps->m, rest, n);   /* within a window: an edge's read */
	pstream_rx(ps, NULL, 0);
	return 1;
failed:
	p->relay_failed++;
	return -1;
}

/* --- the other side --- */

/* A socketpair: its far end an edge connection of ours that reads line
 * first, its near end the stream's.  NULL on failure. */
static struct lws *
pipe_open(struct broker *b, const char *line)
{
	lws_sock_file_fd_type u;
	struct lws *edge, *near;
	struct stream *st;
	char text[PREAMBLE_MAX_BYTES + 2];
	int sv[2], n;

	n = snprintf(text, sizeof text, "%s\n", line);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return NULL;
	/* An empty socket's buffer takes a line at once. */
	if (write(sv[1], text, (size_t)n) != n) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	u.sockfd = sv[0];
	edge = lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_SOCKET, u, "expose-edge", NULL);
	if (edge == NULL) {
		close(sv[1]);
		return NULL;
	}
	st = lws_get_opaque_user_data(edge);
	if (st)
		st->from_peer = true;     /* served here or refused, never relayed on */
	u.sockfd = sv[1];
	near = lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_SOCKET, u, "expose-peer-pipe",
	                                  NULL);
	if (near == NULL)
		lws_set_timeout(edge, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	return near;
}

static void
refuse(struct link *l, uint32_t id, uint16_t code, const char *name, const char *why)
{
	log_info("peer stream refused host=%s name=%s reason=\"%s\"", l->their_name, name, why);
	mux_reset(&l->mux, id, code, why);
}

/* OPEN from the dialer: its edge's line.  -1 (the link ends) if it is
 * not one. */
static int
on_open(struct link *l, uint32_t id, const uint8_t *p, size_t len)
{
	struct broker *b = l->ps->b;
	char line[PREAMBLE_MAX_BYTES + 1];
	struct preamble_ask a;
	struct tunnel *t;
	struct pstream *ps;
	struct lws *near;

	if (l->peer || id == 0 || find(l, id) || len >= sizeof line ||
	    memchr(p, '\0', len) || memchr(p, '\n', len))
		return -1;
	memcpy(line, p, len);
	line[len] = '\0';
	/* Wrong passwords count where the visitor arrived: never relayed. */
	if (preamble_ask_parse(line, &a) == -1 || a.verb != PREAMBLE_OPEN)
		return -1;
	t = tunnel_find(b, a.name);
	if (t == NULL || t->s->closing) {
		refuse(l, id, CODE_CLOSED, a.name, "no such tunnel on this host");
		return 0;
	}
	if (l->streams.count >= PEER_STREAMS_MAX) {
		refuse(l, id, CODE_LIMIT, a.name, "the link has streams enough");
		return 0;
	}
	if ((near = pipe_open(b, line)) == NULL) {
		refuse(l, id, CODE_INTERNAL, a.name, strerror(errno));
		return 0;
	}
	if ((ps = pstream_new(l, id, near)) == NULL) {
		lws_set_timeout(near, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		refuse(l, id, CODE_INTERNAL, a.name, "out of memory");
		return 0;
	}
	lws_set_opaque_user_data(near, ps);
	l->ps->streams_in_total++;
	return 0;
}

/* --- frames and connections --- */

int
pstream_on_control(struct link *l, uint8_t type, uint32_t id, const uint8_t *p, size_t len)
{
	char msg[PROTO_MESSAGE_BYTES];
	struct pstream *ps;
	uint16_t code;

	if (type == FRAME_OPEN)
		return on_open(l, id, p, len);
	if (type != FRAME_FIN && type != FRAME_RST && type != FRAME_WINDOW)
		return -1;
	if ((ps = find(l, id)) == NULL)
		return 0;     /* a stream already gone: moot */
	switch (type) {
	case FRAME_FIN:
		ps->m.fin_in = true;
		if (ps->wsi)
			lws_callback_on_writable(ps->wsi);
		return 0;
	case FRAME_RST:
		if (proto_code_decode(p, len, &code, msg) == -1)
			return -1;
		detach(ps);
		if (ps->wsi)
			kill_conn(ps);
		else
			free(ps);
		return 0;
	default:
		if (len != 4 || mux_stream_window(&ps->m, frame_get32(p)) == -1)
			return -1;
		resume(ps);
		return 0;
	}
}

int
pstream_on_data(struct link *l, uint32_t id, const uint8_t *p, size_t n)
{
	struct pstream *ps = find(l, id);

	if (ps == NULL)
		return 0;
	if (mux_stream_recv(&ps->m, p, n) == -1)
		return -1;    /* past the credit we granted */
	if (ps->wsi)
		lws_callback_on_writable(ps->wsi);
	return 0;
}

static void
drop(struct map_node *n, void *ctx)
{
	struct pstream *ps = map_entry(n, struct pstream, node);

	(void)ctx;
	detach(ps);
	if (ps->wsi)
		kill_conn(ps);
	else
		free(ps);
}

void
pstream_drop_all(struct link *l)
{
	map_each(&l->streams, drop, NULL);
}

void
pstream_rx(struct pstream *ps, const uint8_t *in, size_t len)
{
	if (ps->l == NULL)
		return;       /* the close is coming */
	if (len && mux_stream_send(&ps->m, in, len) == -1) {
		mux_reset(&ps->l->mux, ps->key, CODE_PROTOCOL, "overran its window");
		detach(ps);
		kill_conn(ps);
		return;
	}
	if (mux_stream_want(&ps->m) == 0 && !ps->paused && ps->wsi) {
		ps->paused = true;
		lws_rx_flow_control(ps->wsi, 0);
	}
}

int
pstream_writeable(struct pstream *ps)
{
	size_t n = buf_len(&ps->m.in);

	if (ps->kill)
		return -1;
	if (n > PSTREAM_WRITE_BYTES)
		n = PSTREAM_WRITE_BYTES;
	if (n > 0) {
		if (lws_write(ps->wsi, (unsigned char *)(uintptr_t)buf_data(&ps->m.in), n,
		              LWS_WRITE_RAW) < (int)n)
			return -1;
		if (ps->l)
			mux_stream_drained(&ps->m, n);
		else
			buf_consume(&ps->m.in, n);
	}
	if (buf_len(&ps->m.in) > 0) {
		lws_callback_on_writable(ps->wsi);
		return 0;
	}
	/* The other side is done and every byte went out. */
	return ps->m.fin_in || ps->l == NULL ? -1 : 0;
}

void
pstream_closed(struct pstream *ps)
{
	ps->wsi = NULL;
	if (ps->l == NULL) {
		free(ps);
		return;
	}
	if (ps->l->peer) {
		/* The edge went: the other side's copy of it goes too. */
		if (!ps->m.fin_in)
			mux_reset(&ps->l->mux, ps->key, CODE_CLOSED, "edge closed");
		detach(ps);
		free(ps);
		return;
	}
	/* Our edge connection said all it had: FIN after its bytes. */
	mux_stream_fin(&ps->m);
}

int
peer_pipe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                   void *in, size_t len)
{
	struct pstream *ps = lws_get_opaque_user_data(wsi);

	if (ps == NULL)
		return reason == LWS_CALLBACK_RAW_WRITEABLE ? -1 : 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX:
		pstream_rx(ps, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return pstream_writeable(ps);
	case LWS_CALLBACK_RAW_CLOSE:
		lws_set_opaque_user_data(wsi, NULL);
		pstream_closed(ps);
		return 0;
	default:
		return 0;
	}
}
