/*
 * The Host of a public request: is it well formed, and which tunnel does
 * it name under the server's domain?
 */
#ifndef EXPOSE_HOST_H
#define EXPOSE_HOST_H

#include <stdbool.h>
#include <stddef.h>

enum host_result {
	HOST_OK,        /* NAME.DOMAIN[:PORT]: name is set */
	HOST_INVALID,   /* not a valid host[:port]: 400 */
	HOST_FOREIGN,   /* valid, but not a tunnel under our domain: 404 */
};

/* Checks value (a Host header or an absolute-form authority) and, when it
 * is NAME.DOMAIN with an optional port and trailing dot, copies the
 * lower-cased NAME into name[size]. */
enum host_result host_parse(const char *value, size_t len, const char *domain,
                            char *name, size_t size);

/* 1 if two authorities name the same host and port (case-insensitive,
 * trailing dot ignored, no port equals default_port). */
int host_same(const char *a, size_t alen, const char *b, size_t blen,
              int default_port);

/* Whether name is an IPv4 or IPv6 address literal rather than a name (no
 * SNI for it, RFC 6066; a certificate is checked for it as an address). */
bool host_is_address(const char *name);

#endif
