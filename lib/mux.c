#include "mux.h"

#include <string.h>

#include "bounds.h"
#include "frame.h"
#include "proto.h"

/* Queued control frames past this mean the peer stopped reading. */
#define MUX_CONTROL_MAX_BYTES (1024 * 1024)
/* A message is not topped up with a data frame smaller than this. */
#define MUX_MIN_DATA_BYTES 4096

void
mux_init(struct mux *m)
{
	memset(m, 0, sizeof *m);
	buf_init(&m->control, MUX_CONTROL_MAX_BYTES);
}

void
mux_free(struct mux *m)
{
	struct mux_stream *s, *next;

	for (s = m->head; s; s = next) {
		next = s->next;
		s->queued = false;
		s->next = NULL;
	}
	m->head = m->tail = NULL;
	while (mux_arrived(m) != NULL)
		;
	buf_free(&m->control);
}

void
mux_stream_init(struct mux *m, struct mux_stream *s, uint32_t id)
{
	memset(s, 0, sizeof *s);
	s->mux = m;
	s->id = id;
	s->credit = STREAM_WINDOW_BYTES;
	buf_init(&s->out, MUX_OUT_MAX_BYTES);
	buf_init(&s->in, STREAM_WINDOW_BYTES);
}

static void
mux_unqueue(struct mux_stream *s)
{
	struct mux *m = s->mux;
	struct mux_stream **pp, *prev = NULL;

	if (!s->queued || m == NULL)
		return;
	for (pp = &m->head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			if (m->tail == s)
				m->tail = prev;
			break;
		}
	}
	s->queued = false;
	s->next = NULL;
}

static void
mux_unqueue_arrived(struct mux_stream *s)
{
	struct mux_stream **pp;

	if (!s->arrived_queued || s->mux == NULL)
		return;
	for (pp = &s->mux->arrived; *pp; pp = &(*pp)->arrived_next) {
		if (*pp == s) {
			*pp = s->arrived_next;
			break;
		}
	}
	s->arrived_queued = false;
	s->arrived_next = NULL;
}

void
mux_stream_free(struct mux_stream *s)
{
	mux_unqueue(s);
	mux_unqueue_arrived(s);
	s->mux = NULL;
	buf_free(&s->out);
	buf_free(&s->in);
}

static bool
mux_stream_ready(const struct mux_stream *s)
{
	if (buf_len(&s->out) > 0)
		return s->credit > 0;
	return s->fin_out && !s->fin_sent;
}

static void
mux_queue(struct mux_stream *s)
{
	struct mux *m = s->mux;

	if (m == NULL || s->queued || !mux_stream_ready(s))
		return;
	s->queued = true;
	s->next = NULL;
	if (m->tail)
		m->tail->next = s;
	else
		m->head = s;
	m->tail = s;
	if (m->wake)
		m->wake(m);
}

int
mux_control(struct mux *m, uint8_t type, uint32_t stream,
            const void *payload, size_t len)
{
	if (frame_append(&m->control, type, stream, payload, len) == -1)
		return -1;
	if (m->wake)
		m->wake(m);
	return 0;
}

int
mux_reset(struct mux *m, uint32_t stream, uint16_t code, const char *msg)
{
	uint8_t p[2 + PROTO_MESSAGE_BYTES];

	return mux_control(m, FRAME_RST, stream, p, proto_code_encode(p, sizeof p, code, msg));
}

int
mux_stream_send(struct mux_stream *s, const void *p, size_t n)
{
	if (buf_append(&s->out, p, n) == -1)
		return -1;
	mux_queue(s);
	return 0;
}

void
mux_stream_appended(struct mux_stream *s)
{
	mux_queue(s);
}

size_t
mux_stream_want(const struct mux_stream *s)
{
	size_t have = buf_len(&s->out);

	if (s->fin_out || have >= s->credit)
		return 0;
	return s->credit - have;
}

void
mux_stream_fin(struct mux_stream *s)
{
	s->fin_out = true;
	mux_queue(s);
}

int
mux_stream_recv(struct mux_stream *s, const uint8_t *p, size_t n)
{
	/* in is capped at one window: a peer that sends more than the credit
	 * we granted breaks the protocol. */
	if (s->fin_in || buf_append(&s->in, p, n) == -1)
		return -1;
	if (!s->arrived_queued && s->mux) {
		s->arrived_queued = true;
		s->arrived_next = s->mux->arrived;
		s->mux->arrived = s;
	}
	return 0;
}

struct mux_stream *
mux_arrived(struct mux *m)
{
	struct mux_stream *s = m->arrived;

	if (s == NULL)
		return NULL;
	m->arrived = s->arrived_next;
	s->arrived_queued = false;
	s->arrived_next = NULL;
	return s;
}

int
mux_stream_window(struct mux_stream *s, uint32_t add)
{
	if (add > STREAM_WINDOW_BYTES || s->credit + add > STREAM_WINDOW_BYTES)
		return -1;
	s->credit += add;
	mux_queue(s);
	return 0;
}

void
mux_stream_drained(struct mux_stream *s, size_t n)
{
	uint8_t p[4];

	buf_consume(&s->in, n);
	s->drained += n;
	if (s->drained < STREAM_WINDOW_UPDATE_BYTES || s->mux == NULL || s->fin_in)
		return;
	frame_put32(p, (uint32_t)s->drained);
	if (mux_control(s->mux, FRAME_WINDOW, s->id, p, sizeof p) == 0)
		s->drained = 0;
}

/* Copies whole control frames that fit. */
static size_t
mux_fill_control(struct mux *m, uint8_t *dst, size_t cap)
{
	const uint8_t *p = buf_data(&m->control);
	size_t len = buf_len(&m->control), used = 0, flen;

	while (len - used >= FRAME_HEADER_BYTES) {
		flen = FRAME_HEADER_BYTES + ((size_t)p[used + 1] << 16 |
		       (size_t)p[used + 2] << 8 | p[used + 3]);
		if (flen > cap - used)
			break;
		used += flen;
	}
	if (used == 0)
		return 0;
	memcpy(dst, p, used);
	buf_consume(&m->control, used);
	return used;
}

/* Frames the next piece of the stream at the head of the send list. */
static size_t
mux_fill_stream(struct mux *m, uint8_t *dst, size_t cap)
{
	struct mux_stream *s = m->head;
	size_t n = buf_len(&s->out);
	bool had_room_before;

	if (cap <= FRAME_HEADER_BYTES)
		return 0;
	m->head = s->next;
	if (m->head == NULL)
		m->tail = NULL;
	s->queued = false;
	s->next = NULL;

	if (n == 0) {
		frame_header(dst, FRAME_FIN, s->id, 0);
		s->fin_sent = true;
		if (m->finished)
			m->finished(s);    /* may free s */
		return FRAME_HEADER_BYTES;
	}
	if (n > s->credit)
		n = s->credit;
	if (n > FRAME_PAYLOAD_MAX_BYTES)
		n = FRAME_PAYLOAD_MAX_BYTES;
	if (n > cap - FRAME_HEADER_BYTES)
		n = cap - FRAME_HEADER_BYTES;
	had_room_before = mux_stream_want(s) > 0;
	frame_header(dst, FRAME_DATA, s->id, n);
	memcpy(dst + FRAME_HEADER_BYTES, buf_data(&s->out), n);
	buf_consume(&s->out, n);
	s->credit -= n;
	mux_queue(s);
	if (!had_room_before && mux_stream_want(s) > 0 && m->sent)
		m->sent(s);
	return FRAME_HEADER_BYTES + n;
}

size_t
mux_fill(struct mux *m, uint8_t *dst, size_t cap)
{
	size_t used = mux_fill_control(m, dst, cap), n;

	while (m->head && cap - used >= FRAME_HEADER_BYTES + MUX_MIN_DATA_BYTES) {
		n = mux_fill_stream(m, dst + used, cap - used);
		if (n == 0)
			break;
		used += n;
	}
	return used;
}

bool
mux_pending(const struct mux *m)
{
	return buf_len(&m->control) > 0 || m->head != NULL;
}
