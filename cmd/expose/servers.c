/*
 * The servers this client may use: --server given once or more, or
 * EXPOSE_SERVER, or "server =" in the config file, each a URL or a
 * comma-separated list of them (flags win over the environment, which
 * wins over the file; lists are not merged).  They are the hosts of one
 * cluster: the client dials the first, stays with whichever serves it,
 * and goes on in list order when one fails (tunnel.c).  In order, not
 * from a random start: the list says which host the user prefers (the
 * nearest), and what the client does is the same every run.
 *
 * Each is signed for as it is dialled (expose(7)): the handshake names
 * the server this client dialled now, and a broker takes only its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "proto.h"

#define SERVERS_WHITESPACE " \t"

/* "ws://host:port/path" or "wss://...". */
static int
parse_server(const char *text, struct server_url *u)
{
	const char *p, *host, *slash, *colon;
	size_t hlen;

	memset(u, 0, sizeof *u);
	if (strncmp(text, "ws://", 5) == 0) {
		p = text + 5;
		u->port = 80;
	} else if (strncmp(text, "wss://", 6) == 0) {
		p = text + 6;
		u->tls = true;
		u->port = 443;
	} else {
		return -1;
	}
	host = p;
	slash = strchr(host, '/');
	if (slash == NULL)
		slash = host + strlen(host);
	colon = memchr(host, ':', (size_t)(slash - host));
	hlen = (size_t)((colon ? colon : slash) - host);
	if (hlen == 0 || hlen >= sizeof u->host)
		return -1;
	memcpy(u->host, host, hlen);
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (end != slash || port < 1 || port > 65535)
			return -1;
		u->port = (int)port;
	}
	snprintf(u->path, sizeof u->path, "%s", *slash ? slash : "/");
	return 0;
}


/* One URL of the list: -1 (said) if it is not one or there are too many. */
static int
server_add(struct client *c, const char *text, const char *from)
{
	struct server_url u;

	if (strlen(text) >= sizeof u.text || parse_server(text, &u) == -1) {
		log_err("%s %.300s: not a ws:// or wss:// URL", from, text);
		return -1;
	}
	snprintf(u.text, sizeof u.text, "%s", text);
	/* What the handshake signs: this server, and no other (expose(7)). */
	if (proto_dialed_make(u.dialed, sizeof u.dialed, u.tls, u.host, u.port) == -1) {
		log_err("%s %s: the host must be a DNS name or an IPv4 address", from, text);
		return -1;
	}
	if (servers_has_dialed(c, u.dialed, strlen(u.dialed))) {
		log_warn("%s %s: given twice; dialled once", from, text);
		return 0;
	}
	if (c->nservers == CLIENT_SERVERS_MAX) {
		log_err("%s: at most %d servers (the hosts of one cluster)", from,
		        CLIENT_SERVERS_MAX);
		return -1;
	}
	c->servers[c->nservers++] = u;
	return 0;
}

int
servers_add_list(struct client *c, const char *list, const char *from)
{
	char item[CLIENT_SERVER_TEXT_BYTES];
	const char *p = list, *end;
	size_t n;

	for (;;) {
		p += strspn(p, SERVERS_WHITESPACE);
		end = p + strcspn(p, ",");
		n = (size_t)(end - p);
		while (n > 0 && strchr(SERVERS_WHITESPACE, p[n - 1]))
			n--;
		if (n == 0) {
			log_err("%s %.300s: an empty entry in the list (give ws://HOST:PORT, "
			        "comma-separated)", from, list);
			return -1;
		}
		if (n >= sizeof item) {
			log_err("%s %.300s...: not a ws:// or wss:// URL (too long)", from, p);
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (server_add(c, item, from) == -1)
			return -1;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

void
servers_use(struct client *c, int i)
{
	c->current = i;
	c->server = c->servers[i];
	c->server_text = c->servers[i].text;
	snprintf(c->dialed, sizeof c->dialed, "%s", c->servers[i].dialed);
}

bool
servers_any_tls(const struct client *c)
{
	int i;

	for (i = 0; i < c->nservers; i++)
		if (c->servers[i].tls)
			return true;
	return false;
}

bool
servers_has_dialed(const struct client *c, const char *dialed, size_t len)
{
	int i;

	for (i = 0; i < c->nservers; i++)
		if (strlen(c->servers[i].dialed) == len &&
		    memcmp(c->servers[i].dialed, dialed, len) == 0)
			return true;
	return false;
}

/* A password over a plain websocket to another machine travels in clear. */
void
servers_warn_if_clear(const struct client *c)
{
	const char *h;
	int i;

	if (c->auth[0] == '\0')
		return;
	for (i = 0; i < c->nservers; i++) {
		h = c->servers[i].host;
		if (!c->servers[i].tls && strcmp(h, "127.0.0.1") != 0 &&
		    strcmp(h, "localhost") != 0 && strcmp(h, "::1") != 0)
			log_warn("--auth over %s sends the password in clear; use wss://",
			         c->servers[i].text);
	}
}
