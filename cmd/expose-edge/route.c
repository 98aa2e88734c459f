/*
 * Routing: a tunnel name to the broker that holds it.  The registry says
 * which broker's socket; the edge connects and sends the OPEN preamble
 * (expose(7)), then the request bytes follow on the same socket.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "edge.h"
#include "auth.h"
#include "cidr.h"
#include "log.h"
#include "registry.h"

static int
connect_nonblock(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		return -1;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -1;
	/* A full backlog fails at once (EAGAIN) instead of blocking. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

enum route_result
route_lookup(struct edge *e, const char *name)
{
	struct registry *reg;
	const char *why = NULL;
	int found;

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

enum route_result
route_connect(struct edge *e, const char *name)
{
	char line[PREAMBLE_MAX_BYTES];
	int n;

	e->broker_fd = connect_nonblock(e->route.socket);
	if (e->broker_fd == -1) {
		log_err("broker %s: %s", e->route.socket, strerror(errno));
		return ROUTE_NO_BROKER;
	}
	n = snprintf(line, sizeof line, "EXPOSE/1 OPEN %s %s %d %s\n", name,
	             e->peer, e->peer_port, e->cfg->proto);
	if (n < 0 || (size_t)n >= sizeof line ||
	    buf_append(&e->to_broker, line, (size_t)n) == -1)
		return ROUTE_NO_BROKER;
	return ROUTE_OK;
}

int
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

int
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
