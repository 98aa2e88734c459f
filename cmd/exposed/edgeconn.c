/*
 * The edge side of the broker: one Unix connection per public connection.
 * The edge sends an OPEN line naming the tunnel; the broker opens a stream
 * on that tunnel's session, answers "EXPOSE/1 OK" and the client's first
 * response bytes in one write (or an error line if it cannot), and relays
 * bytes both ways under the stream's credit (expose(7)).  An app that has
 * not answered within STREAM_OPENED_DELAY_MS gets "EXPOSE/1 OPENED" sent
 * ahead (so an edge can tell a live broker from a hung one); most answer
 * sooner, and their edge wakes once for the line and the bytes.  The
 * preamble's lines are lib/preamble's.  Streams are counted per tunnel and
 * per visitor's source (streams-per-source).  An edge that refused a wrong
 * password says AUTHFAIL instead of OPEN: the broker counts those per
 * source for every edge (auth-failures).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "broker.h"
#include "clock.h"
#include "log.h"
#include "peer.h"
#include "preamble.h"

/* Bytes written to the edge per writeable callback. */
#define STREAM_WRITE_BYTES IO_CHUNK_BYTES
/* An edge must send its OPEN line within this. */
#define STREAM_PREAMBLE_TIMEOUT_S 10
/* OPENED goes to an edge whose app has not answered within this: well
 * inside the edge's wait for it (EDGE_BROKER_TIMEOUT_MS). */
#define STREAM_OPENED_DELAY_MS 500

static int write_line(struct stream *st, const char *line);

static void
stream_pause(struct stream *st)
{
	if (!st->paused && st->wsi) {
		st->paused = true;
		lws_rx_flow_control(st->wsi, 0);
	}
}

static void
stream_resume(struct stream *st)
{
	if (st->paused && st->wsi && mux_stream_want(&st->m) > 0) {
		st->paused = false;
		lws_rx_flow_control(st->wsi, 1);
	}
}

/* The count of streams from a source on t, one more; NULL if memory ran
 * out. */
static struct source *
source_join(struct tunnel *t, const uint8_t prefix[RATELIMIT_PREFIX_BYTES])
{
	struct map_node *n = map_find(&t->sources, prefix, RATELIMIT_PREFIX_BYTES);
	struct source *src;

	if (n) {
		src = map_entry(n, struct source, node);
		src->streams++;
		return src;
	}
	src = calloc(1, sizeof *src);
	if (src == NULL)
		return NULL;
	memcpy(src->prefix, prefix, RATELIMIT_PREFIX_BYTES);
	if (map_insert(&t->sources, &src->node, src->prefix, RATELIMIT_PREFIX_BYTES) == -1) {
		free(src);
		return NULL;
	}
	src->streams = 1;
	return src;
}

static void
source_leave(struct tunnel *t, struct source *src)
{
	if (--src->streams > 0)
		return;
	map_remove(&t->sources, &src->node);
	free(src);
}

/* Streams the source already has open on t. */
static unsigned
source_streams(const struct tunnel *t, const uint8_t prefix[RATELIMIT_PREFIX_BYTES])
{
	struct map_node *n = map_find(&t->sources, prefix, RATELIMIT_PREFIX_BYTES);

	return n ? map_entry(n, struct source, node)->streams : 0;
}

/* Takes the stream off its session and tunnel. */
static void
stream_unlink(struct stream *st)
{
	struct session *s = st->s;

	if (s == NULL)
		return;
	map_remove(&s->streams, &st->node);
	mux_stream_free(&st->m);
	if (st->t && st->src)
		source_leave(st->t, st->src);
	st->src = NULL;
	if (st->t)
		st->t->nstreams--;
	if (s->use)
		s->use->streams--;
	s->b->nstreams--;
	st->s = NULL;
	st->t = NULL;
}

void
stream_detach(struct stream *st)
{
	stream_unlink(st);
	if (st->wsi)
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Answers the edge with an error line (seconds with PREAMBLE_THROTTLED,
 * detail with PREAMBLE_REFUSED), then closes. */
static void
stream_refuse(struct stream *st, enum preamble_code code, int seconds, const char *detail)
{
	struct metrics *m = &st->b->metrics;

	if (code == PREAMBLE_GONE)
		m->edges_refused[ER_GONE]++;
	else if (code == PREAMBLE_LIMIT)
		m->edges_refused[ER_LIMIT]++;
	else if (code == PREAMBLE_PROTOCOL)
		m->edges_refused[ER_PROTOCOL]++;
	/* st->error holds the longest line, a 64-byte detail and all. */
	(void)preamble_answer_format(st->error, sizeof st->error, PREAMBLE_ERR, code, seconds,
	                             detail);
	lws_callback_on_writable(st->wsi);
}

static void
stream_open(struct stream *st, struct tunnel *t, const char *peer,
            const uint8_t source[RATELIMIT_PREFIX_BYTES])
{
	struct session *s = t->s;
	uint8_t p[4 + PREAMBLE_MAX_BYTES];
	size_t plen = strlen(peer);

	st->src = source_join(t, source);
	if (st->src == NULL) {
		stream_refuse(st, PREAMBLE_INTERNAL, 0, NULL);
		return;
	}
	if (++s->next_stream == 0)
		s->next_stream = 1;
	st->key = s->next_stream;
	st->s = s;
	st->t = t;
	mux_stream_init(&s->mux, &st->m, st->key);
	if (map_insert(&s->streams, &st->node, &st->key, sizeof st->key) == -1) {
		mux_stream_free(&st->m);
		source_leave(t, st->src);
		st->src = NULL;
		st->s = NULL;
		st->t = NULL;
		stream_refuse(st, PREAMBLE_INTERNAL, 0, NULL);
		return;
	}
	t->nstreams++;
	s->use->streams++;
	s->b->nstreams++;
	s->b->metrics.streams_total++;
	st->opened = true;
	frame_put32(p, t->index);
	memcpy(p + 4, peer, plen);
	mux_control(&s->mux, FRAME_OPEN, st->key, p, 4 + plen);
	lws_set_timer_usecs(st->wsi, STREAM_OPENED_DELAY_MS * 1000);
}

/* The app is slow to answer: say the stream is open, so that the edge
 * does not take this broker for a hung one. */
static void
stream_opened_due(struct stream *st)
{
	char line[PREAMBLE_MAX_BYTES];

	if (st->acked || st->replied || st->error[0] || st->s == NULL)
		return;
	st->acked = true;
	if (preamble_answer_format(line, sizeof line, PREAMBLE_OPENED, 0, 0, NULL) == -1 ||
	    write_line(st, line) == -1)
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Seconds until a source that sent too many wrong passwords may try
 * again; 0 if it may now. */
static int
auth_wait_s(struct broker *b, const uint8_t source[RATELIMIT_PREFIX_BYTES])
{
	int64_t ms = ratelimit_wait_ms(&b->auth_failures, source, clock_ms());

	return (int)((ms + 999) / 1000);
}

/* "EXPOSE/1 AUTHFAIL name addr port proto": an edge refused a wrong
 * password.  The answer is ERR unauthorized (counted: the edge answers
 * 401) or ERR throttled SECONDS (over the allowance: 429). */
static void
stream_auth_failed(struct stream *st, const char *name, const char *addr,
                   const uint8_t source[RATELIMIT_PREFIX_BYTES])
{
	int wait;

	if (ratelimit_take_prefix(&st->b->auth_failures, source, clock_ms()) == 1) {
		if ((wait = auth_wait_s(st->b, source)) > 0)
			log_warn("basic-auth guessing throttled name=%s addr=%s for=%ds",
			         name, addr, wait);
		stream_refuse(st, PREAMBLE_UNAUTHORIZED, 0, NULL);
		return;
	}
	stream_refuse(st, PREAMBLE_THROTTLED, auth_wait_s(st->b, source), NULL);
}

/* A tunnel another host holds: the peer link takes the edge's connection
 * over.  0 if no other host holds it. */
static int
relay(struct stream *st, const struct preamble_ask *a, const char *line,
      const uint8_t *rest, size_t n)
{
	int rc = peer_relay(st, a->name, line, rest, n);

	if (rc == 1)
		lws_set_timeout(st->wsi, NO_PENDING_TIMEOUT, 0);
	else if (rc == -1)
		stream_refuse(st, PREAMBLE_CLOSED, 0, NULL);
	return rc;
}

/* "EXPOSE/1 OPEN name addr port proto": which tunnel, and who asks. */
static void
stream_preamble(struct stream *st, const uint8_t *in, size_t len)
{
	const uint8_t *nl = memchr(in, '\n', len);
	size_t take = nl ? (size_t)(nl - in) + 1 : len;
	char line[PREAMBLE_MAX_BYTES + 1];
	struct preamble_ask a;
	uint8_t source[RATELIMIT_PREFIX_BYTES];
	int wait;
	struct tunnel *t;

	if (buf_append(&st->preamble, in, take) == -1) {
		stream_refuse(st, PREAMBLE_PROTOCOL, 0, NULL);
		return;
	}
	if (nl == NULL)
		return;
	snprintf(line, sizeof line, "%.*s", (int)buf_len(&st->preamble) - 1,
	         (const char *)buf_data(&st->preamble));
	buf_free(&st->preamble);
	if (preamble_ask_parse(line, &a) == -1) {
		stream_refuse(st, PREAMBLE_PROTOCOL, 0, NULL);
		return;
	}
	ratelimit_prefix_text(a.addr, source);
	if (a.verb == PREAMBLE_AUTHFAIL) {
		stream_auth_failed(st, a.name, a.addr, source);
		return;
	}
	t = tunnel_find(st->b, a.name);
	if (t == NULL && !st->from_peer && st->b->peers && relay(st, &a, line, in + take,
	                                                         len - take) != 0)
		return;
	if (t == NULL || t->s->closing) {
		stream_refuse(st, PREAMBLE_GONE, 0, NULL);
		return;
	}
	/* A source past its wrong guesses gets no more, right or wrong. */
	if (t->has_auth && (wait = auth_wait_s(st->b, source)) > 0) {
		stream_refuse(st, PREAMBLE_THROTTLED, wait, NULL);
		return;
	}
	if (t->nstreams >= (unsigned)st->b->cfg->set.streams_per_tunnel ||
	    (int)t->s->use->streams >= t->s->use->max_streams ||
	    source_streams(t, source) >= (unsigned)st->b->cfg->set.streams_per_source) {
		stream_refuse(st, PREAMBLE_LIMIT, 0, NULL);
		return;
	}
	lws_set_timeout(st->wsi, NO_PENDING_TIMEOUT, 0);
	stream_open(st, t, a.peer, source);
	if (st->s)
		st->b->metrics.bytes_to_clients += len - take;
	if (st->s && len > take && mux_stream_send(&st->m, in + take, len - take) == -1)
		stream_detach(st);
	else if (st->s && mux_stream_want(&st->m) == 0)
		stream_pause(st);
}

static void
stream_rx(struct stream *st, const uint8_t *in, size_t len)
{
	if (!st->opened) {
		if (!st->error[0])
			stream_preamble(st, in, len);
		return;
	}
	if (st->s == NULL)
		return;          /* its session is gone; the close is coming */
	st->b->metrics.bytes_to_clients += len;
	if (mux_stream_send(&st->m, in, len) == -1) {
		mux_reset(&st->s->mux, st->key, CODE_PROTOCOL, "edge overran its window");
		stream_detach(st);
		return;
	}
	if (mux_stream_want(&st->m) == 0)
		stream_pause(st);
}

static int
write_line(struct stream *st, const char *line)
{
	size_t n = strlen(line);

	return lws_write(st->wsi, (unsigned char *)(uintptr_t)line, n, LWS_WRITE_RAW) < (int)n ? -1 : 0;
}

/* Sends the edge what its socket takes now of the client's bytes; the
 * rest stays in the stream (lws_write would copy it into a buffer of its
 * own).  Only once lws holds nothing of ours: the reply lines go through
 * it.  -1 if the edge is gone. */
static int
stream_send(struct stream *st)
{
	size_t n = buf_len(&st->m.in);
	ssize_t sent;

	if (n > STREAM_WRITE_BYTES)
		n = STREAM_WRITE_BYTES;
	if (n == 0 || lws_partial_buffered(st->wsi))
		return 0;
	sent = send(lws_get_socket_fd(st->wsi), buf_data(&st->m.in), n,
	            MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	mux_stream_drained(&st->m, (size_t)sent);
	return 0;
}

/* "EXPOSE/1 OK" and the first of the client's bytes, in one write: the
 * edge wakes once for both.  A line the socket took only part of goes on
 * through lws, which then holds the bytes back (stream_send).  -1 if the
 * edge is gone. */
static int
stream_reply(struct stream *st)
{
	char line[PREAMBLE_MAX_BYTES];
	size_t n = buf_len(&st->m.in);
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t sent;
	int len;

	if (lws_partial_buffered(st->wsi))
		return 0;    /* OPENED is still on its way: after it */
	len = preamble_answer_format(line, sizeof line, PREAMBLE_OK, 0, 0, NULL);
	if (len < 0)
		return -1;
	st->replied = true;
	iov[0] = (struct iovec){ .iov_base = line, .iov_len = (size_t)len };
	iov[1] = (struct iovec){ .iov_base = (void *)(uintptr_t)buf_data(&st->m.in),
	                         .iov_len = n > STREAM_WRITE_BYTES ? STREAM_WRITE_BYTES : n };
	sent = sendmsg(lws_get_socket_fd(st->wsi), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	if (sent < len)
		return write_line(st, line + (sent > 0 ? sent : 0));
	mux_stream_drained(&st->m, (size_t)(sent - len));
	return 0;
}

static int
stream_writeable(struct stream *st)
{
	if (st->error[0] && !st->replied) {
		st->replied = true;
		write_line(st, st->error);
		return -1;
	}
	if (st->kill || st->s == NULL)
		return -1;
	if (!st->replied && buf_len(&st->m.in) == 0 && !st->m.fin_in)
		return 0;    /* the app has not answered: OPENED is on a timer */
	if (!st->replied) {
		if (stream_reply(st) == -1)
			return -1;
	} else if (stream_send(st) == -1) {
		return -1;
	}
	if (buf_len(&st->m.in) > 0) {
		lws_callback_on_writable(st->wsi);
		return 0;
	}
	/* The app is done and every byte went out: the edge may go. */
	return st->m.fin_in ? -1 : 0;
}

int
stream_on_data(struct stream *st, const uint8_t *p, size_t n)
{
	if (mux_stream_recv(&st->m, p, n) == -1)
		return -1;    /* past the credit we granted: a protocol error */
	st->b->metrics.bytes_from_clients += n;
	return 0;    /* broker_flush writes them, after this turn of the loop */
}

/* The first reply line, the close, or a full socket wait for the
 * writeable callback. */
void
stream_flush(struct stream *st)
{
	if (st->wsi == NULL)
		return;
	if (!st->kill && st->s && !st->error[0] && buf_len(&st->m.in) > 0 &&
	    (st->replied ? stream_send(st) : stream_reply(st)) == -1) {
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	if (buf_len(&st->m.in) > 0 || st->m.fin_in || !st->replied || st->kill || st->s == NULL)
		lws_callback_on_writable(st->wsi);
}


void
stream_on_fin(struct stream *st)
{
	st->m.fin_in = true;
	if (st->wsi)
		lws_callback_on_writable(st->wsi);
}

void
stream_on_rst(struct stream *st, uint16_t code, const char *msg)
{
	stream_unlink(st);
	if (st->replied) {
		st->kill = true;
		lws_callback_on_writable(st->wsi);
		return;
	}
	if (code == CODE_REFUSED)
		stream_refuse(st, PREAMBLE_REFUSED, 0, msg);
	else
		stream_refuse(st, code == CODE_LIMIT ? PREAMBLE_LIMIT : PREAMBLE_CLOSED, 0, NULL);
}

void
stream_on_window(struct stream *st)
{
	stream_resume(st);
}

static int
stream_adopt(struct lws *wsi)
{
	struct stream *st = calloc(1, sizeof *st);

	if (st == NULL)
		return -1;
	st->wsi = wsi;
	st->b = broker_of(wsi);
	buf_init(&st->preamble, PREAMBLE_MAX_BYTES);
	lws_set_opaque_user_data(wsi, st);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, STREAM_PREAMBLE_TIMEOUT_S);
	return 0;
}

static void
stream_closed(struct stream *st)
{
	if (st->relay)
		pstream_closed(st->relay);
	if (st->s) {
		/* The edge went first: tell the client. */
		mux_reset(&st->s->mux, st->key, CODE_CLOSED, "edge closed");
		stream_unlink(st);
	}
	buf_free(&st->preamble);
	free(st);
}

int
stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                void *in, size_t len)
{
	struct stream *st = lws_get_opaque_user_data(wsi);

	/* Relayed to another host: the peer link moves its bytes. */
	if (st && st->relay && reason == LWS_CALLBACK_RAW_RX) {
		pstream_rx(st->relay, in, len);
		return 0;
	}
	if (st && st->relay && reason == LWS_CALLBACK_RAW_WRITEABLE)
		return pstream_writeable(st->relay);
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		return stream_adopt(wsi);
	case LWS_CALLBACK_RAW_RX:
		if (st)
			stream_rx(st, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return st ? stream_writeable(st) : -1;
	case LWS_CALLBACK_TIMER:
		if (st)
			stream_opened_due(st);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE:
		if (st) {
			lws_set_opaque_user_data(wsi, NULL);
			st->wsi = NULL;
			stream_closed(st);
		}
		return 0;
	default:
		return 0;
	}
}
