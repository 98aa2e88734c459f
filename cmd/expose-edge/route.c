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
#include "log.h"
#include "registry.h"

/* A Unix socket path fits sun_path. */
#define ROUTE_SOCKET_BYTES 108

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
route_connect(struct edge *e, const char *name)
{
	char socket_path[ROUTE_SOCKET_BYTES], line[PREAMBLE_MAX_BYTES];
	struct registry *reg;
	const char *why = NULL;
	int found, n;

	reg = registry_open_reader(e->cfg->set.registry, &why);
	if (reg == NULL) {
		log_err("registry %s: %s", e->cfg->set.registry, why);
		return ROUTE_NO_REGISTRY;
	}
	found = registry_lookup(reg, name, socket_path, sizeof socket_path);
	if (found < 0)
		log_err("registry %s: lookup failed: %s", e->cfg->set.registry,
		        registry_error(reg));
	registry_close(reg);
	if (found < 0)
		return ROUTE_NO_REGISTRY;
	if (found == 0)
		return ROUTE_NO_TUNNEL;

	e->broker_fd = connect_nonblock(socket_path);
	if (e->broker_fd == -1) {
		log_err("broker %s: %s", socket_path, strerror(errno));
		return ROUTE_NO_BROKER;
	}
	n = snprintf(line, sizeof line, "EXPOSE/1 OPEN %s %s %d %s\n", name,
	             e->peer, e->peer_port, e->cfg->proto);
	if (n < 0 || (size_t)n >= sizeof line ||
	    buf_append(&e->to_broker, line, (size_t)n) == -1)
		return ROUTE_NO_BROKER;
	return ROUTE_OK;
}
