/*
 * Streams multiplexed over one websocket, with per-stream credit: the
 * half of the tunnel protocol that the broker and the client share.
 *
 * Each side of a stream may send the peer at most the credit the peer
 * granted (STREAM_WINDOW_BYTES to start); the peer grants more as it
 * drains the bytes to the socket behind it.  So a stream never holds more
 * than a window of bytes in each direction, and a slow stream stalls only
 * itself.
 *
 * A mux knows nothing of sockets: its owner feeds it bytes read from a
 * stream's local side (mux_stream_send), drains bytes for that side
 * (mux_stream_in / mux_stream_drained), and asks it for the next message
 * to write to the websocket (mux_fill).
 */
#ifndef EXPOSE_MUX_H
#define EXPOSE_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "buf.h"

struct mux;

/* A stream's out may hold more than its credit: one local read, and a
 * response head a follower held back until it was whole (64 KiB at most,
 * lib/exchange), released with it. */
#define MUX_OUT_MAX_BYTES (STREAM_WINDOW_BYTES + IO_CHUNK_BYTES + 64 * 1024)

struct mux_stream {
	struct mux *mux;          /* NULL once detached */
	uint32_t id;
	struct buf out;           /* for the peer, not yet framed */
	struct buf in;            /* from the peer, not yet drained */
	size_t credit;            /* bytes the peer still lets us send */
	size_t drained;           /* drained from in, not yet granted back */
	bool fin_out;             /* send FIN once out is empty */
	bool fin_sent;
	bool fin_in;              /* the peer sent FIN */
	bool queued;              /* on the mux's send list */
	struct mux_stream *next;  /* send list */
	bool arrived_queued;      /* on the mux's arrived list */
	struct mux_stream *arrived_next;
};

struct mux {
	struct buf control;       /* encoded control frames, sent first */
	struct mux_stream *head;  /* streams with data or FIN to send */
	struct mux_stream *tail;
	struct mux_stream *arrived;  /* got DATA since the owner last asked */
	/* Asks the owner for a chance to write (lws_callback_on_writable). */
	void (*wake)(struct mux *m);
	/* Tells the owner a stream's out buffer has room again. */
	void (*sent)(struct mux_stream *s);
	/* Tells the owner a stream's FIN went out (it may free the stream). */
	void (*finished)(struct mux_stream *s);
};

void mux_init(struct mux *m);
/* Frees the control queue; streams are their owners' to free. */
void mux_free(struct mux *m);
void mux_stream_init(struct mux *m, struct mux_stream *s, uint32_t id);
/* Takes a stream off its mux (before freeing it) and frees its buffers. */
void mux_stream_free(struct mux_stream *s);

/* Queues a control frame; -1 when the queue is full (the peer does not read). */
int mux_control(struct mux *m, uint8_t type, uint32_t stream,
                const void *payload, size_t len);
/* Queues RST for a stream (code u16 + message). */
int mux_reset(struct mux *m, uint32_t stream, uint16_t code, const char *msg);

/* Bytes read from the local side, for the peer; -1 past the buffer. */
int mux_stream_send(struct mux_stream *s, const void *p, size_t n);
/* The owner appended bytes to s->out itself (a filter that writes its
 * output there, saving a copy): they are queued as mux_stream_send's. */
void mux_stream_appended(struct mux_stream *s);
/* How many more bytes the owner should read from the local side now. */
size_t mux_stream_want(const struct mux_stream *s);
/* No more bytes from the local side: FIN follows the queued ones. */
void mux_stream_fin(struct mux_stream *s);

/* DATA from the peer; -1 if it exceeds the credit we granted. */
int mux_stream_recv(struct mux_stream *s, const uint8_t *p, size_t n);
/* Takes the next stream that got DATA since the owner last asked, or
 * NULL: what to write to local sides after a turn of the event loop, in
 * one go, rather than a writeable callback each. */
struct mux_stream *mux_arrived(struct mux *m);
/* WINDOW from the peer; -1 if the credit overflows. */
int mux_stream_window(struct mux_stream *s, uint32_t add);
/* The owner wrote n bytes of s->in to the local side. */
void mux_stream_drained(struct mux_stream *s, size_t n);

/* Fills dst with the next frames to write (control first, then data
 * round-robin); returns bytes, 0 when there is nothing to send. */
size_t mux_fill(struct mux *m, uint8_t *dst, size_t cap);
bool mux_pending(const struct mux *m);

#endif
