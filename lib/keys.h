/*
 * authorized_keys: which client keys a closed server lets in, and with
 * what.  One key a line, in the spirit of SSH's file:
 *
 *   [OPTION ...] expose-ed25519 BASE64 [COMMENT]
 *
 * OPTIONs: names=a,b (names kept for this key: it may take them, nobody
 * else may), max-tunnels=N, max-streams=N.  '#' starts a comment line.
 * A malformed line is reported and skipped; the others still count.
 */
#ifndef EXPOSE_KEYS_H
#define EXPOSE_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "identity.h"

#define KEYS_NAMES_BYTES 512
#define KEYS_COMMENT_BYTES 128
/* Lines read from one file at most. */
#define KEYS_MAX 100000

struct key_entry {
	uint8_t pk[IDENTITY_PK_BYTES];
	char names[KEYS_NAMES_BYTES];     /* "a,b" or "" */
	int max_tunnels;                  /* 0: the server default */
	int max_streams;                  /* 0: the server default */
	char comment[KEYS_COMMENT_BYTES];
};

struct keys {
	struct key_entry *v;
	size_t n;
	/* what the file was when read, to notice changes */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int loaded;
};

/* Reads path into k (replacing what it held).  warn(ctx, "FILE:LINE: why")
 * for each line skipped.  -1 with *why if the file cannot be read: k is
 * left as it was. */
int keys_load(struct keys *k, const char *path,
              void (*warn)(void *ctx, const char *msg), void *ctx, const char **why);
/* Reads path again if it changed since; 1 reloaded, 0 unchanged, -1 error. */
int keys_refresh(struct keys *k, const char *path,
                 void (*warn)(void *ctx, const char *msg), void *ctx, const char **why);
const struct key_entry *keys_find(const struct keys *k, const uint8_t pk[IDENTITY_PK_BYTES]);
/* Which key keeps name (names=); NULL if none. */
const struct key_entry *keys_name_owner(const struct keys *k, const char *name);
void keys_free(struct keys *k);

/* Parses one line; 1 an entry, 0 blank or comment, -1 malformed (*why). */
int keys_parse_line(const char *line, struct key_entry *e, const char **why);

#endif
