/*
 * Basic auth for tunnels (`expose --auth user:password`).  The registry
 * holds a salted hash keyed with a server secret, never the password: the
 * edge checks each request in about a microsecond, and a stolen registry
 * without the secret file tells an attacker nothing useful.
 */
#ifndef EXPOSE_AUTH_H
#define EXPOSE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_BYTES 32
/* "user:salt-hex:tag-hex" */
#define AUTH_STORED_BYTES 256
#define AUTH_USER_MAX_BYTES 64
#define AUTH_PASSWORD_MAX_BYTES 128

/* Loads the server secret; the broker makes it (mode 0640) if missing.
 * -1 with *why set. */
int auth_key_load(const char *path, int create, uint8_t key[AUTH_KEY_BYTES],
                  const char **why);

/* "user:password" -> the stored form.  -1 if malformed (no ':', empty
 * user, too long, control characters). */
int auth_make(const uint8_t key[AUTH_KEY_BYTES], const char *userpass, char *out,
              size_t size);
/* An Authorization field value ("Basic base64") against the stored form:
 * 1 accepted, 0 refused. */
int auth_check(const uint8_t key[AUTH_KEY_BYTES], const char *stored,
               const char *header, size_t len);

#endif
