/*
 * Payloads of the tunnel protocol's control frames (expose(7)): encoding
 * for the side that sends them, strict decoding for the side that
 * receives them.  Every decoder takes untrusted bytes.
 */
#ifndef EXPOSE_PROTO_H
#define EXPOSE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "identity.h"

#define PROTO_SERVER_BYTES (DOMAIN_MAX_BYTES + 1)
#define PROTO_VALUE_BYTES 512
#define PROTO_MESSAGE_BYTES 256
/* "wss://" host ":" port, as signed in AUTH: IDENTITY_SERVER_MAX_BYTES. */
#define PROTO_DIALED_BYTES (IDENTITY_SERVER_MAX_BYTES + 1)

struct proto_challenge {
	uint8_t version;
	uint8_t nonce[IDENTITY_NONCE_BYTES];
	char server[PROTO_SERVER_BYTES];
};

/* CHALLENGE: version, nonce, server name.  Returns bytes written, 0 if cap
 * is too small. */
size_t proto_challenge_encode(uint8_t *out, size_t cap, uint8_t version,
                              const uint8_t nonce[IDENTITY_NONCE_BYTES],
                              const char *server);
int proto_challenge_decode(const uint8_t *p, size_t len, struct proto_challenge *c);

/* The server a client dialed, in the one form a signature covers:
 * "ws://host:port" or "wss://host:port", the host lowercased and the port
 * always written.  -1 if host is not a host name or address or the result
 * does not fit. */
int proto_dialed_make(char *out, size_t size, int tls, const char *host, int port);
/* The same from a URL, "ws[s]://host[:port][/path]" (80 and 443 by
 * default).  -1 if it is not one. */
int proto_dialed_parse(const char *url, char *out, size_t size);

/* AUTH: public key, signature, channel binding and the dialed server. */
struct proto_auth {
	const uint8_t *pk;          /* IDENTITY_PK_BYTES */
	const uint8_t *sig;         /* IDENTITY_SIG_BYTES */
	const uint8_t *binding;     /* IDENTITY_BINDING_BYTES */
	char dialed[PROTO_DIALED_BYTES];
};
/* Returns bytes written, 0 if cap is too small or dialed too long. */
size_t proto_auth_encode(uint8_t *out, size_t cap, const uint8_t *pk, const uint8_t *sig,
                         const uint8_t *binding, const char *dialed);
/* -1 unless the payload is well formed and dialed is in canonical form. */
int proto_auth_decode(const uint8_t *p, size_t len, struct proto_auth *a);

/* Protocol text from a peer (BIND values): printable ASCII only, so that
 * no log line, listing or terminal shows a peer's control bytes.  1 if
 * every byte of p is from 0x20 to 0x7e. */
int proto_text_ok(const char *p);
/* The same text made printable in place: any other byte becomes '?'
 * (what a peer sent, before a terminal shows it). */
void proto_text_defang(char *p);
/* Checks every line of a key=value payload the same way: 0 all printable,
 * -1 with the offending line's key copied to key (escaped as below). */
int proto_kv_printable(const uint8_t *p, size_t len, char *key, size_t size);
/* Text from a peer or the registry, made safe to print: bytes outside
 * 0x20 to 0x7e, and the backslash, become \xHH.  Cut to fit size. */
void proto_text_escape(const char *in, char *out, size_t size);

/* BIND and BOUND carry "key=value" lines.  Finds key's value: 1 found,
 * 0 absent, -1 malformed (a NUL, a line without '=', a value too long). */
int proto_kv_get(const uint8_t *p, size_t len, const char *key, char *out,
                 size_t size);
/* Checks every line of a key=value payload: 0 well formed, -1 not. */
int proto_kv_check(const uint8_t *p, size_t len);

/* ERROR and RST: a 2-byte code and a message (printable ASCII, cut to
 * PROTO_MESSAGE_BYTES - 1; anything else becomes '?'). */
size_t proto_code_encode(uint8_t *out, size_t cap, uint16_t code, const char *msg);
int proto_code_decode(const uint8_t *p, size_t len, uint16_t *code,
                      char msg[PROTO_MESSAGE_BYTES]);

/* OPEN: the tunnel number and the visitor as text. */
int proto_open_decode(const uint8_t *p, size_t len, uint32_t *tunnel,
                      char *peer, size_t size);

#endif
