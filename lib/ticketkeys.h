/*
 * The TLS session ticket key, shared by every edge process so that a
 * visitor resumes its TLS session on any of them.  A file of one line, 128
 * hex digits: the 64 bytes GnuTLS seals and opens tickets with (the first
 * 16 name the key inside each ticket).  `exposectl rotate-ticket-keys`
 * writes a new key; a ticket sealed with the old one then gets a full
 * handshake and a new ticket (GnuTLS opens tickets with one key only).
 */
#ifndef EXPOSE_TICKETKEYS_H
#define EXPOSE_TICKETKEYS_H

#include <stddef.h>
#include <stdint.h>

#define TICKET_KEY_BYTES 64

struct ticket_keys {
	uint8_t key[TICKET_KEY_BYTES];
};

/* Reads path; with create, makes it (a new key, mode 0640) if missing or
 * in the older format of three keys (lines of 160 hex digits), which
 * GnuTLS cannot use.  -1 with *why set. */
int ticket_keys_load(const char *path, int create, struct ticket_keys *t, const char **why);
/* Writes a new key to path atomically (mode 0640). */
int ticket_keys_rotate(const char *path, const char **why);
void ticket_keys_wipe(struct ticket_keys *t);

#endif
