/*
 * Tunnel names: DNS labels that become the first label of a public URL.
 */
#ifndef EXPOSE_NAME_H
#define EXPOSE_NAME_H

#include <stddef.h>

#include "bounds.h"

/* Bytes of a random name, NUL included: adjective-noun-11 base32 chars. */
#define NAME_RANDOM_BYTES 40

/* 1 if name is a label we issue: [a-z0-9-], 1 to 63 bytes, no hyphen at
 * either end, and no "--" at positions 3-4 (reserved for IDNA "xn--"
 * forms, which look like other names in browsers). */
int name_is_valid(const char *name);
/* Why name_is_valid() refused name, for a person. */
const char *name_invalid_reason(const char *name);

/* A random name such as "quiet-otter-k3x9p2ma7qd": readable words plus
 * 54 random bits, about 66 bits in all, from libsodium's generator. */
void name_random(char out[NAME_RANDOM_BYTES]);

#endif
