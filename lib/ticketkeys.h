/*
 * TLS session ticket keys, shared by every edge process so that a visitor
 * resumes its TLS session on any of them.  A file of lines, newest first:
 * the first key seals new tickets, the others still open old ones.
 * `exposectl rotate-ticket-keys` adds a new first key and drops the oldest.
 */
#ifndef EXPOSE_TICKETKEYS_H
#define EXPOSE_TICKETKEYS_H

#include <stddef.h>
#include <stdint.h>

#define TICKET_KEYS_MAX 3
#define TICKET_NAME_BYTES 16
#define TICKET_SECRET_BYTES 32

struct ticket_key {
	uint8_t name[TICKET_NAME_BYTES];   /* sent in the clear with each ticket */
	uint8_t hmac[TICKET_SECRET_BYTES];
	uint8_t aes[TICKET_SECRET_BYTES];
};

struct ticket_keys {
	struct ticket_key k[TICKET_KEYS_MAX];
	int n;
};

/* Reads path; with create, makes it (one key, mode 0640) if missing.
 * -1 with *why set. */
int ticket_keys_load(const char *path, int create, struct ticket_keys *t, const char **why);
/* Puts a new key first, keeps at most TICKET_KEYS_MAX, writes path
 * atomically (mode 0640). */
int ticket_keys_rotate(const char *path, const char **why);
void ticket_keys_wipe(struct ticket_keys *t);

#endif
