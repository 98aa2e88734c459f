#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* "203.0.113.0/24", "2001:db8::/48", or one address. 0 or -1. */
static int
cidr_parse(const char *text, struct cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	int max, i;
	char *end;
	long bits;

	if (alen == 0 || alen >= sizeof addr)
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	memset(c, 0, sizeof *c);
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	bits = max;
	if (slash) {
		bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max)
			return -1;
	}
	c->bits = (int)bits;
	/* Host bits must be zero: "10.0.0.1/8" is probably a mistake. */
	for (i = c->bits; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

/* Whether addr (text, as the edge reports peers) is inside c. */
static int
cidr_match(const struct cidr *c, const char *addr)
{
	uint8_t a[16];
	int i, full = c->bits / 8, rest = c->bits % 8;

	if (inet_pton(c->family, addr, a) != 1)
		return 0;
	for (i = 0; i < full; i++)
		if (a[i] != c->addr[i])
			return 0;
	if (rest && (a[full] & (uint8_t)(0xff << (8 - rest))) != c->addr[full])
		return 0;
	return 1;
}

/* Calls fn for each element of a comma-separated list. */
static int
each(const char *list, int (*fn)(const struct cidr *c, void *ctx), void *ctx)
{
	char item[64];
	const char *p = list, *comma;
	struct cidr c;
	size_t n;
	int rc, count = 0;

	while (*p) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n >= sizeof item || ++count > CIDR_LIST_MAX)
			return -1;
		memcpy(item, p, n);
		item[n] = '\0';
		if (cidr_parse(item, &c) == -1)
			return -1;
		if ((rc = fn(&c, ctx)) != 0)
			return rc;
		p += n + (comma ? 1 : 0);
		if (comma && *p == '\0')
			return -1;
	}
	return 0;
}

static int
match_one(const struct cidr *c, void *ctx)
{
	return cidr_match(c, ctx) ? 1 : 0;
}

int
cidr_list_match(const char *list, const char *addr)
{
	return each(list, match_one, (void *)(uintptr_t)addr);
}

struct norm {
	char *out;
	size_t size, len;
};

static int
write_one(const struct cidr *c, void *ctx)
{
	struct norm *n = ctx;
	char addr[INET6_ADDRSTRLEN];
	int w;

	inet_ntop(c->family, c->addr, addr, sizeof addr);
	w = snprintf(n->out + n->len, n->size - n->len, "%s%s/%d", n->len ? "," : "",
	             addr, c->bits);
	if (w < 0 || (size_t)w >= n->size - n->len)
		return -1;
	n->len += (size_t)w;
	return 0;
}

int
cidr_list_normalize(const char *list, char *out, size_t size)
{
	struct norm n = { out, size, 0 };

	if (size)
		out[0] = '\0';
	return *list && each(list, write_one, &n) == 0 ? 0 : -1;
}
