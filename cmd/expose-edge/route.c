/*
 * Routing: a tunnel name to the broker that holds it.  The registry says
 * which broker's socket; the edge connects and sends the OPEN preamble
 * (expose(7)), then the request bytes follow on the same socket.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edge.h"
#include "auth.h"
#include "cidr.h"
#include "host.h"
#include "log.h"
#include "preamble.h"
#include "registry.h"
#include "sock.h"

enum route_result { ROUTE_OK, ROUTE_NO_TUNNEL, ROUTE_NO_REGISTRY, ROUTE_NO_BROKER };

static enum route_result
route_lookup(struct edge *e, const char *name)
{
	struct registry *reg;
	const char *why = NULL;
	int found;

	/* One lookup per process: the first request's (the later ones stay
	 * on its tunnel). */
	if (registry_setup_one_lookup() == -1)
		log_warn("registry: SQLite was set up before its one lookup");
	reg = registry_open_reader(e->cfg->set.registry, &why);
	if (reg == NULL) {
		log_err("registry %s: %s", e->cfg->set.registry, why);
		return ROUTE_NO_REGISTRY;
	}
	found = registry_lookup(reg, name, &e->route);
	if (found < 0)
		log_err("registry %s: lookup failed: %s", e->cfg->set.registry,
		        registry_error(reg));
	registry_close(reg);
	if (found < 0)
		return ROUTE_NO_REGISTRY;
	return found ? ROUTE_OK : ROUTE_NO_TUNNEL;
}

static enum route_result
route_connect(struct edge *e, const char *name)
{
	char line[PREAMBLE_MAX_BYTES];
	int n;

	e->broker_fd = sock_connect_unix(e->route.socket, SOCK_NONBLOCK);
	if (e->broker_fd == -1) {
		log_err("broker %s: %s", e->route.socket, strerror(errno));
		return ROUTE_NO_BROKER;
	}
	e->broker_deadline_ms = clock_ms() + EDGE_BROKER_TIMEOUT_MS;
	n = preamble_ask_format(line, sizeof line, PREAMBLE_OPEN, name, e->peer,
	                        e->peer_port, e->cfg->proto);
	if (n < 0 || buf_append(&e->to_broker, line, (size_t)n) == -1)
		return ROUTE_NO_BROKER;
	return ROUTE_OK;
}

static int
route_allows(struct edge *e)
{
	int rc;

	if (e->route.allow[0] == '\0')
		return 1;
	rc = cidr_list_match(e->route.allow, e->peer);
	if (rc == -1)
		log_err("tunnel %s: its allow list '%s' is malformed; refusing everyone",
		        e->name, e->route.allow);
	return rc == 1;
}

static int
route_authorized(struct edge *e)
{
	const char *why = NULL, *value;
	size_t len;

	if (e->route.auth[0] == '\0')
		return 1;
	if (!e->auth_key_loaded) {
		char path[SETTINGS_PATH_BYTES + 16];
		settings_auth_key(&e->cfg->set, path, sizeof path);
		if (auth_key_load(path, 0, e->auth_key, &why) == -1) {
			log_err("auth-key %s: %s", path, why);
			return -1;
		}
		e->auth_key_loaded = true;
	}
	value = http_req_field(&e->req, "authorization", &len);
	return value && auth_check(e->auth_key, e->route.auth, value, len) ? 1 : 0;
}

/* --- each request --- */

/* The tunnel's access rules, on every request of the connection. */
static int
check_access(struct edge *e)
{
	char extra[160];
	size_t len;
	int ok, wait;

	if (!route_allows(e)) {
		edge_fail(e, 403, "Your address may not reach this tunnel.");
		return -1;
	}
	ok = route_authorized(e);
	if (ok == -1) {
		edge_fail(e, 503, "The tunnel service is misconfigured; its operator "
		                  "has been told in its log.");
		return -1;
	}
	/* A wrong guess counts; no credentials (a browser's first try) not. */
	if (ok == 0 && http_req_field(&e->req, "authorization", &len) != NULL &&
	    (wait = throttle_auth_failed(e)) > 0) {
		throttle_answer(e, wait, false);
		return -1;
	}
	if (ok == 0) {
		snprintf(extra, sizeof extra, "WWW-Authenticate: Basic realm=\"%s\", "
		         "charset=\"UTF-8\"\r\n", e->name);
		edge_fail_with(e, 401, "This tunnel asks for a user name and password.", extra);
		return -1;
	}
	/* The tunnel's credentials are the tunnel's, not the app's. */
	e->req.drop_authorization = e->route.auth[0] != '\0';
	return 0;
}

/* With redirect-http, plain http goes to https, but for ACME's HTTP-01
 * challenge path. */
static int
redirect(struct edge *e)
{
	static const char acme[] = "/.well-known/acme-challenge/";
	const struct http_req_head *h = &e->req.info;
	char location[PAGE_EXTRA_MAX_BYTES];
	char host[DOMAIN_MAX_BYTES + 1];
	const char *colon;
	size_t hlen;

	if (e->tls || !e->cfg->set.redirect_http)
		return 0;
	if (h->target_len >= sizeof acme - 1 && memcmp(h->target, acme, sizeof acme - 1) == 0)
		return 0;
	/* The host without its port; h->host is not NUL-terminated. */
	colon = memchr(h->host, ':', h->host_len);
	hlen = colon ? (size_t)(colon - h->host) : h->host_len;
	snprintf(host, sizeof host, "%.*s", (int)hlen, h->host);
	if (h->target_len + hlen + sizeof "Location: https://:65535\r\n" > sizeof location) {
		edge_fail(e, 414, "This address is too long to move to https.");
		return 1;
	}
	if (e->cfg->set.https_port == 443)
		snprintf(location, sizeof location, "Location: https://%s%.*s\r\n", host,
		         (int)h->target_len, h->target);
	else
		snprintf(location, sizeof location, "Location: https://%s:%d%.*s\r\n", host,
		         e->cfg->set.https_port, (int)h->target_len, h->target);
	edge_fail_with(e, 308, "This tunnel is served over https.", location);
	return 1;
}

/* Routes the first request, or checks that a later one stays on its tunnel. */
int
route_request(struct edge *e)
{
	char name[NAME_MAX_BYTES + 1], detail[160];
	const struct http_req_head *h = &e->req.info;
	enum host_result hr;
	enum route_result rr;

	hr = host_parse(h->host, h->host_len, e->cfg->set.domain, name, sizeof name);
	if (hr == HOST_INVALID) {
		edge_fail(e, 400, "The Host field is not a valid host name.");
		return -1;
	}
	if (e->sni[0] && (hr != HOST_OK || strcmp(name, e->sni) != 0)) {
		edge_fail(e, 421, "This request names another host than the TLS "
		                  "connection it came on.");
		return -1;
	}
	if (e->name[0]) {
		if (hr != HOST_OK || strcmp(name, e->name) != 0) {
			edge_fail(e, 421, "This connection belongs to another tunnel; "
			                  "open a new connection for this host.");
			return -1;
		}
		return check_access(e);
	}
	if (hr == HOST_FOREIGN) {
		edge_fail(e, 404, "No tunnel lives at this address.");
		return -1;
	}
	if (redirect(e))
		return -1;
	snprintf(e->name, sizeof e->name, "%s", name);
	rr = route_lookup(e, name);
	if (rr == ROUTE_NO_TUNNEL) {
		snprintf(detail, sizeof detail,
		         "There is no tunnel named %s. It may have closed; "
		         "check the URL that expose printed.", name);
		edge_fail(e, 404, detail);
		return -1;
	}
	if (rr == ROUTE_OK && check_access(e) == -1)
		return -1;
	/* A copy expose-mirror made: another host's broker holds it, and this
	 * host's broker relays to it over the peer link. */
	if (rr == ROUTE_OK && e->route.socket[0] == '\0')
		snprintf(e->route.socket, sizeof e->route.socket, "%s", e->cfg->set.socket);
	if (rr == ROUTE_OK)
		rr = route_connect(e, name);
	if (rr != ROUTE_OK) {
		edge_fail(e, 503, "The tunnel service is not available right now; "
		                  "try again in a moment.");
		return -1;
	}
	return 0;
}
