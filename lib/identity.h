/*
 * Ed25519 identities (libsodium): the client's key, the handshake
 * signature that proves it, and the text forms people copy around.
 */
#ifndef EXPOSE_IDENTITY_H
#define EXPOSE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define IDENTITY_PK_BYTES 32
#define IDENTITY_SK_BYTES 64
#define IDENTITY_SIG_BYTES 64
#define IDENTITY_NONCE_BYTES 32
/* A TLS channel binding: the exporter value of RFC 9266 (tls-exporter). */
#define IDENTITY_BINDING_BYTES 32
/* Longest server name or server URL a signature covers. */
#define IDENTITY_SERVER_MAX_BYTES 255
/* "expose-ed25519 " + base64 of the key + NUL */
#define IDENTITY_PK_TEXT_BYTES 64
/* A short fingerprint for logs and listings: 16 hex characters. */
#define IDENTITY_FP_BYTES 17

struct identity {
	uint8_t pk[IDENTITY_PK_BYTES];
	uint8_t sk[IDENTITY_SK_BYTES];
};

/* Initialises libsodium; -1 if it cannot. */
int identity_init(void);

/* Loads the key at path, or makes one there (mode 0600, directories 0700)
 * if none exists.  -1 with *why set on failure. */
int identity_load_or_create(struct identity *id, const char *path,
                            const char **why);
/* Makes a new key at path, replacing any old one. */
int identity_create(struct identity *id, const char *path, const char **why);
/* The default key path: $XDG_CONFIG_HOME/expose/id_ed25519, else
 * $HOME/.config/expose/id_ed25519.  -1 if neither variable is set. */
int identity_default_path(char *out, size_t size);
void identity_wipe(struct identity *id);

/* "expose-ed25519 <base64>" for authorized_keys files. */
void identity_pk_text(const uint8_t pk[IDENTITY_PK_BYTES],
                      char out[IDENTITY_PK_TEXT_BYTES]);
/* Parses the base64 part (with or without the "expose-ed25519 " tag). */
int identity_pk_parse(const char *text, uint8_t pk[IDENTITY_PK_BYTES]);
void identity_fingerprint(const uint8_t pk[IDENTITY_PK_BYTES],
                          char out[IDENTITY_FP_BYTES]);

/* What a handshake signature covers: the broker's challenge (its version,
 * nonce and server name) and what the client itself knows of the
 * connection: the server it dialed, "ws://host:port" or "wss://host:port"
 * as proto_dialed_make() writes it, and the TLS channel (the exporter value
 * of the client's TLS connection to it; zeros over ws://).  A server that
 * relays another's challenge gets a signature for itself, not for the
 * other (expose(7)). */
struct identity_challenge {
	uint8_t version;
	const uint8_t *nonce;       /* IDENTITY_NONCE_BYTES */
	const char *server;         /* the challenge's server name */
	const char *dialed;         /* the server URL the client dialed */
	const uint8_t *binding;     /* IDENTITY_BINDING_BYTES */
};

/* -1 if a name is longer than IDENTITY_SERVER_MAX_BYTES (nothing signed). */
int identity_sign_challenge(const struct identity *id, const struct identity_challenge *ch,
                            uint8_t sig[IDENTITY_SIG_BYTES]);
int identity_verify_challenge(const uint8_t pk[IDENTITY_PK_BYTES],
                              const struct identity_challenge *ch,
                              const uint8_t sig[IDENTITY_SIG_BYTES]);
void identity_random(void *p, size_t n);

#endif
