/*
 * The client's side of a websocket (RFC 6455), over a byte stream that
 * something else carries (the client's event loop, plain or TLS).
 *
 * Why not the websocket client of libwebsockets: it masks what it sends
 * and parses what it receives a byte at a time, which capped the tunnel
 * at 150 to 330 MB/s through the tunnel in our measurements.
 * Here masking is eight bytes at a time and a data frame's payload is
 * handed on where it lies in the read buffer.
 */
#ifndef EXPOSE_WSCLIENT_H
#define EXPOSE_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Room a frame header needs in front of its payload. */
#define WS_HEADER_MAX_BYTES 14
/* The server's answer to the upgrade, at most. */
#define WS_RESPONSE_MAX_BYTES 8192
/* A control frame's payload (RFC 6455: at most 125). */
#define WS_CONTROL_MAX_BYTES 125

enum ws_opcode {
	WS_CONTINUATION = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xa,
};

struct ws {
	bool open;                     /* the upgrade succeeded */
	char key[32];                  /* Sec-WebSocket-Key we sent */
	struct buf response;           /* the server's response head */
	/* receiving */
	uint8_t hdr[WS_HEADER_MAX_BYTES];
	size_t hdr_len;
	size_t hdr_need;
	uint64_t remaining;            /* payload bytes of the frame being read */
	uint8_t opcode;
	bool fin;
	bool in_message;               /* a data message continues */
	uint8_t control[WS_CONTROL_MAX_BYTES];
	size_t control_len;
	const char *error;             /* why a call failed */
};

struct ws_handlers {
	/* Payload of binary messages, in pieces, as it arrives. */
	int (*data)(void *ctx, const uint8_t *p, size_t n);
	/* A whole control frame: ping (answer it), pong, close. */
	int (*control)(void *ctx, enum ws_opcode op, const uint8_t *p, size_t n);
};

void ws_init(struct ws *w);
void ws_free(struct ws *w);

/* Writes the upgrade request into out (GET path, Host, the key, the
 * subprotocols: one, or a list "a, b" in order of preference).  -1 if out
 * is too small. */
int ws_request(struct ws *w, const char *host, int port, const char *path,
               const char *subprotocol, char *out, size_t size);
/* Takes response bytes until the head is complete: 1 open (*used says how
 * many bytes were the head; the rest are frames), 0 more needed, -1 refused
 * (w->error says why).  The server must have chosen one of subprotocol's. */
int ws_response(struct ws *w, const uint8_t *p, size_t n, const char *subprotocol,
                size_t *used);

/* Frames from the server, in pieces of any size.  0, or -1 (w->error). */
int ws_feed(struct ws *w, const uint8_t *p, size_t n, const struct ws_handlers *h,
            void *ctx);

/* Writes a frame header for len payload bytes ending at payload: returns
 * where the frame starts (header + payload, contiguous), and masks the
 * payload in place with a fresh key no one else can predict (a ChaCha20
 * keystream seeded from the kernel, see wsclient.c). */
uint8_t *ws_frame(uint8_t *payload, size_t len, enum ws_opcode op, size_t *frame_len);

/* XORs n bytes with a 4-byte key, eight bytes at a time. */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4]);

#endif
