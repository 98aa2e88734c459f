/*
 * Frames of the tunnel protocol (expose(7)): what the broker and a client
 * exchange over their websocket.  The websocket carries a byte stream of
 * frames; message boundaries carry no meaning.  Each frame is an 8-byte
 * header (type, 24-bit payload length, 32-bit stream id, big-endian)
 * followed by its payload.
 */
#ifndef EXPOSE_FRAME_H
#define EXPOSE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FRAME_HEADER_BYTES 8
#define FRAME_SUBPROTOCOL "expose.2"
#define FRAME_VERSION 2
/* Version 1 signed only the challenge's server name, so a server could
 * relay another's challenge (expose(7)).  A broker answers a client that
 * asks for it with an ERROR telling it to upgrade. */
#define FRAME_SUBPROTOCOL_V1 "expose.1"
/* What a client asks for, in order: a broker of this version picks the
 * first; one of version 1 picks the second and its CHALLENGE says 1, so
 * the client can tell its user which to upgrade. */
#define FRAME_SUBPROTOCOLS_OFFERED FRAME_SUBPROTOCOL ", " FRAME_SUBPROTOCOL_V1
/* Control frames (all but DATA) are small; cap what a peer can make us hold. */
#define FRAME_CONTROL_MAX_BYTES 4096

enum frame_type {
	FRAME_CHALLENGE = 1, /* broker: version, nonce[32], server name */
	FRAME_AUTH = 2,      /* client: public key[32], signature[64] */
	FRAME_BIND = 3,      /* client, stream = tunnel index: key=value lines */
	FRAME_BOUND = 4,     /* broker, stream = tunnel index: key=value lines */
	FRAME_ERROR = 5,     /* broker: code u16, message; stream 0 = fatal */
	FRAME_OPEN = 16,     /* broker: tunnel index u32, then peer address */
	FRAME_DATA = 17,     /* either: bytes of a stream */
	FRAME_FIN = 18,      /* either: no more bytes from this side */
	FRAME_RST = 19,      /* either: code u16, message; the stream is gone */
	FRAME_WINDOW = 20,   /* either: credit u32 the sender may add */
};

/* Reset and error codes: what went wrong, in HTTP terms where they map. */
enum frame_code {
	CODE_OK = 0,
	CODE_REFUSED = 1,     /* nothing listens on the local target */
	CODE_CLOSED = 2,      /* the other end went away */
	CODE_PROTOCOL = 3,    /* a peer broke the protocol */
	CODE_LIMIT = 4,       /* too many streams or tunnels */
	CODE_NAME_INVALID = 5,
	CODE_NAME_TAKEN = 6,
	CODE_NAME_DENIED = 7,
	CODE_AUTH = 8,        /* handshake refused */
	CODE_INTERNAL = 9,    /* the broker failed (registry error, ...) */
	CODE_TIMEOUT = 10,
	CODE_KICKED = 11,     /* an operator ended the tunnel */
	CODE_REPLACED = 12,   /* the same key connected again */
};

const char *frame_code_name(enum frame_code code);
const char *frame_type_name(uint8_t type);

/* Writes a frame header into out[FRAME_HEADER_BYTES]. */
void frame_header(uint8_t *out, uint8_t type, uint32_t stream, size_t len);
/* Appends a whole frame to b; -1 past the buffer's limit. */
int frame_append(struct buf *b, uint8_t type, uint32_t stream,
                 const void *payload, size_t len);

static inline void
frame_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline uint32_t
frame_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* What a decoder calls for what it finds.  Returning -1 stops decoding. */
struct frame_handlers {
	/* Part of a DATA frame's payload, as it arrives. */
	int (*data)(void *ctx, uint32_t stream, const uint8_t *p, size_t n);
	/* A whole control frame. */
	int (*control)(void *ctx, uint8_t type, uint32_t stream,
	               const uint8_t *payload, size_t len);
};

/* Turns a byte stream, fed in pieces of any size, into frames. */
struct frame_decoder {
	uint8_t hdr[FRAME_HEADER_BYTES];
	size_t hdr_len;
	uint8_t type;
	uint32_t stream;
	size_t remaining;     /* payload bytes of the current frame still due */
	struct buf control;   /* payload of the current control frame */
	const char *error;    /* why frame_feed() failed */
};

void frame_decoder_init(struct frame_decoder *d);
void frame_decoder_free(struct frame_decoder *d);
/* 0 when all n bytes were taken, -1 on a malformed stream or when a
 * handler refused (d->error says which). */
int frame_feed(struct frame_decoder *d, const uint8_t *p, size_t n,
               const struct frame_handlers *h, void *ctx);

#endif
