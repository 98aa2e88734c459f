#include "host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "bounds.h"

/* Splits host[:port]; port is -1 when absent.  -1 if malformed. */
static int
host_split(const char *v, size_t len, size_t *hlen, long *port)
{
	size_t i = 0, colon = len;

	*port = -1;
	if (len == 0)
		return -1;
	if (v[0] == '[') {
		/* IP-literal: hex digits, colons and dots inside brackets. */
		for (i = 1; i < len && v[i] != ']'; i++)
			if (!strchr("0123456789abcdefABCDEF:.", v[i]))
				return -1;
		if (i == len || i == 1)
			return -1;
		colon = i + 1;
		if (colon < len && v[colon] != ':')
			return -1;
	} else {
		for (i = 0; i < len && v[i] != ':'; i++) {
			char c = v[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '.'))
				return -1;
		}
		colon = i;
	}
	*hlen = colon;
	if (colon < len) {
		long p = 0;
		size_t d;
		if (colon + 1 == len || len - colon - 1 > 5)
			return -1;
		for (d = colon + 1; d < len; d++) {
			if (v[d] < '0' || v[d] > '9')
				return -1;
			p = p * 10 + (v[d] - '0');
		}
		if (p > 65535)
			return -1;
		*port = p;
	}
	return 0;
}

/* DNS rules on a reg-name: no empty label (leading dot, "..") and no
 * label longer than 63; one trailing dot is allowed. */
static int
host_labels_ok(const char *h, size_t n)
{
	size_t label = 0, i;

	if (n > 0 && h[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX_BYTES)
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (++label > NAME_MAX_BYTES) {
			return 0;
		}
	}
	return label > 0;
}

enum host_result
host_parse(const char *value, size_t len, const char *domain, char *name,
           size_t size)
{
	size_t hlen, dlen = strlen(domain), nlen, i;
	long port;

	if (host_split(value, len, &hlen, &port) == -1)
		return HOST_INVALID;
	if (value[0] == '[')
		return HOST_FOREIGN;
	if (!host_labels_ok(value, hlen))
		return HOST_INVALID;
	if (value[hlen - 1] == '.')
		hlen--;
	if (hlen <= dlen + 1 || value[hlen - dlen - 1] != '.' ||
	    strncasecmp(value + hlen - dlen, domain, dlen) != 0)
		return HOST_FOREIGN;
	nlen = hlen - dlen - 1;
	if (memchr(value, '.', nlen) != NULL || nlen >= size)
		return HOST_FOREIGN;    /* a.b.DOMAIN is no tunnel of ours */
	for (i = 0; i < nlen; i++) {
		char c = value[i];
		name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	name[nlen] = '\0';
	return HOST_OK;
}

int
host_same(const char *a, size_t alen, const char *b, size_t blen, int default_port)
{
	size_t ah, bh;
	long ap, bp;

	if (host_split(a, alen, &ah, &ap) == -1 || host_split(b, blen, &bh, &bp) == -1)
		return 0;
	if (ah > 1 && a[0] != '[' && a[ah - 1] == '.')
		ah--;
	if (bh > 1 && b[0] != '[' && b[bh - 1] == '.')
		bh--;
	if (ap == -1)
		ap = default_port;
	if (bp == -1)
		bp = default_port;
	return ah == bh && ap == bp && strncasecmp(a, b, ah) == 0;
}

bool
host_is_address(const char *name)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}
