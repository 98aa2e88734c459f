/*
 * A sealed byte stream (the peer link, expose(7)): each side sends an
 * ephemeral X25519 public key as its first SEAL_PK_BYTES bytes; from the
 * two, each direction gets its own key (crypto_kx), and every byte after
 * travels in records that XChaCha20-Poly1305 encrypts and authenticates:
 *
 *	length (4 bytes, big-endian: the ciphertext's)  ciphertext
 *
 * The nonce is a counter per direction, so a record that is changed,
 * dropped, replayed or moved ends the stream.  Who the other key belongs
 * to is not this file's business: the handshake signs the ephemeral key
 * (peer_hello.c), which binds the records to the host that proved its
 * identity.
 */
#ifndef EXPOSE_SEAL_H
#define EXPOSE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "bounds.h"
#include "buf.h"

#define SEAL_PK_BYTES crypto_kx_PUBLICKEYBYTES
#define SEAL_LEN_BYTES 4
#define SEAL_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* One record's plaintext, at most: a writer's batch of frames. */
#define SEAL_PLAIN_MAX MESSAGE_MAX_BYTES
/* One record on the wire, at most. */
#define SEAL_RECORD_MAX (SEAL_LEN_BYTES + SEAL_PLAIN_MAX + SEAL_TAG_BYTES)

enum seal_role { SEAL_DIALER, SEAL_LISTENER };

struct seal {
	enum seal_role role;
	uint8_t pk[SEAL_PK_BYTES];        /* ours, sent first */
	uint8_t sk[crypto_kx_SECRETKEYBYTES];
	uint8_t their_pk[SEAL_PK_BYTES];
	size_t their_pk_len;              /* of it, so far */
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	uint64_t rx_n, tx_n;              /* the next record's counter */
	bool ready;                       /* both keys known */
	struct buf in;                    /* a record not all here yet */
	uint8_t *plain;                   /* one record opened, SEAL_PLAIN_MAX */
};

/* A fresh ephemeral key; -1 when memory runs out. */
int seal_init(struct seal *s, enum seal_role role);
/* Wipes the keys and frees the buffers. */
void seal_free(struct seal *s);

/* Seals plain (n <= SEAL_PLAIN_MAX) into out (n + SEAL_LEN_BYTES +
 * SEAL_TAG_BYTES bytes); the record's length.  Only once ready. */
size_t seal_record(struct seal *s, const uint8_t *plain, size_t n, uint8_t *out);

/* Bytes from the other side: its key first, then records, each opened
 * and handed to got() in order.  0, or -1 with *why set: a record that
 * does not open, one too long, or got() refusing (its own reason). */
int seal_feed(struct seal *s, const uint8_t *in, size_t len,
              int (*got)(void *ctx, const uint8_t *plain, size_t n), void *ctx,
              const char **why);

#endif
