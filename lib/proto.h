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

/* AUTH: public key and signature, nothing else. */
int proto_auth_decode(const uint8_t *p, size_t len, const uint8_t **pk,
                      const uint8_t **sig);

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
