/*
 * Source address lists for `expose --allow`: IPv4 and IPv6 prefixes.
 */
#ifndef EXPOSE_CIDR_H
#define EXPOSE_CIDR_H

#include <stddef.h>
#include <stdint.h>

/* Prefixes one tunnel may list. */
#define CIDR_LIST_MAX 32
/* Bytes of a list in text, as stored in the registry. */
#define CIDR_TEXT_MAX_BYTES (CIDR_LIST_MAX * 44)

struct cidr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int bits;
};

/* A comma-separated list: 1 if addr is inside one of them, 0 if not, -1 if
 * the list is malformed. */
int cidr_list_match(const char *list, const char *addr);
/* Checks a list and writes it canonically ("a/b,c/d"); -1 if malformed. */
int cidr_list_normalize(const char *list, char *out, size_t size);

#endif
