/*
 * The broker's listeners: its own, or those systemd passes (LISTEN_FDS).
 * A Unix socket is for edges, a TCP socket for clients.  The broker
 * accepts on them itself and hands each connection to libwebsockets:
 * one code path whether or not systemd made the sockets.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "log.h"

/* Connections accepted per wakeup, so one listener can't starve the loop. */
#define LISTEN_ACCEPTS_PER_WAKEUP 64
/* Mode of the edges' socket: the broker's user and group. */
#define LISTEN_SOCKET_MODE 0660

enum listener_kind {
	LISTENER_EDGE, LISTENER_CLIENT, LISTENER_CONTROL, LISTENER_METRICS, LISTENER_PEER
};

static enum listener_kind kinds[] = {
	LISTENER_EDGE, LISTENER_CLIENT, LISTENER_CONTROL, LISTENER_METRICS, LISTENER_PEER,
};

static const char *const kind_protocols[] = {
	[LISTENER_EDGE] = "expose-edge",
	[LISTENER_CONTROL] = "expose-control",
	[LISTENER_METRICS] = "expose-metrics",
	[LISTENER_PEER] = "expose-peer-in",
};

static int
adopt_listener(struct broker *b, int fd, enum listener_kind kind)
{
	lws_sock_file_fd_type u;
	struct lws *wsi;

	sock_nonblock(fd, 1);
	sock_cloexec(fd);
	u.filefd = fd;
	wsi = lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_RAW_FILE_DESC, u,
	                                 "expose-listen", NULL);
	if (wsi == NULL)
		return -1;
	lws_set_opaque_user_data(wsi, &kinds[kind]);
	return 0;
}

/* Where clients connect: the default server URL clients sign for. */
static int
adopt_client(struct broker *b, int fd)
{
	if (b->client_port == 0 &&
	    sock_local(fd, b->client_addr, sizeof b->client_addr, &b->client_port) == -1)
		b->client_addr[0] = '\0';
	return adopt_listener(b, fd, LISTENER_CLIENT);
}

/* The name systemd gave socket i (LISTEN_FDNAMES), or "". */
static void
fd_name(const char *names, int i, char *out, size_t size)
{
	const char *p = names;

	out[0] = '\0';
	while (p && i-- > 0) {
		p = strchr(p, ':');
		if (p)
			p++;
	}
	if (p)
		snprintf(out, size, "%.*s", (int)strcspn(p, ":"), p);
}

/* Sockets from systemd: TCP ones are for clients; a Unix one named
 * "control" (FileDescriptorName=) is exposectl's, other Unix ones, the
 * first of them, the edges'. */
static int
adopt_passed(struct broker *b, int n, const char *names)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[32];
	int fd, have_edge = 0, have_client = 0, ok;

	for (fd = 3; fd < 3 + n; fd++) {
		len = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			return -1;
		fd_name(names, fd - 3, name, sizeof name);
		if (ss.ss_family != AF_UNIX) {
			/* Accepted sockets inherit it; not in exposed.socket, where
			 * NoDelay= would apply to the Unix socket too. */
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
			ok = adopt_client(b, fd) == 0;
			have_client |= ok;
		} else if (strcmp(name, "control") == 0 || have_edge) {
			struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
			snprintf(b->control_path, sizeof b->control_path, "%.107s", sun->sun_path);
			ok = adopt_listener(b, fd, LISTENER_CONTROL) == 0;
		} else {
			struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
			snprintf(b->socket_path, sizeof b->socket_path, "%.107s", sun->sun_path);
			ok = adopt_listener(b, fd, LISTENER_EDGE) == 0;
			have_edge |= ok;
		}
		if (!ok)
			return -1;
	}
	if (!have_edge || !have_client) {
		log_err("systemd passed %d sockets; need a Unix one (edges) and a TCP one "
		        "(clients): check exposed.socket", n);
		return -1;
	}
	return 0;
}

static int
listen_control(struct broker *b)
{
	char path[108];
	int fd;

	settings_control(&b->cfg->set, path, sizeof path);
	fd = sock_listen_unix(path, LISTEN_SOCKET_MODE);
	if (fd == -1) {
		log_err("control %s: %s (give another --control, or stop the broker using it)",
		        path, errno == EADDRINUSE ? "in use by a running broker" : strerror(errno));
		return -1;
	}
	snprintf(b->control_path, sizeof b->control_path, "%s", path);
	b->own_control = true;
	return adopt_listener(b, fd, LISTENER_CONTROL);
}

/* Prometheus scrapes GET /metrics here, when `metrics` names an address. */
static int
listen_metrics(struct broker *b)
{
	int fd;

	if (b->cfg->set.metrics[0] == '\0')
		return 0;
	fd = sock_listen_tcp(b->cfg->set.metrics);
	if (fd == -1) {
		log_err("metrics %s: %s (give another --metrics ADDR:PORT)", b->cfg->set.metrics,
		        strerror(errno));
		return -1;
	}
	return adopt_listener(b, fd, LISTENER_METRICS);
}

/* Other hosts' brokers dial here (peer-listen), with etcd-endpoints set. */
static int
listen_peer(struct broker *b)
{
	int fd;

	if (b->cfg->set.peer_listen[0] == '\0' || b->cfg->set.etcd_endpoints[0] == '\0')
		return 0;
	fd = sock_listen_tcp(b->cfg->set.peer_listen);
	if (fd == -1) {
		log_err("peer-listen %s: %s (give another --peer-listen ADDR:PORT)",
		        b->cfg->set.peer_listen, strerror(errno));
		return -1;
	}
	return adopt_listener(b, fd, LISTENER_PEER);
}

int
listen_setup(struct broker *b)
{
	const char *names = getenv("LISTEN_FDNAMES");
	char copy[256];
	int n, fd;

	snprintf(copy, sizeof copy, "%s", names ? names : "");
	n = sock_listen_fds();
	if (n > 0)
		return adopt_passed(b, n, copy) == 0 && listen_metrics(b) == 0 &&
		       listen_peer(b) == 0 ? 0 : -1;
	fd = sock_listen_unix(b->cfg->set.socket, LISTEN_SOCKET_MODE);
	if (fd == -1) {
		if (errno == EADDRINUSE)
			log_err("socket %s: in use by a running broker (stop it, or give "
			        "this one another --socket)", b->cfg->set.socket);
		else
			log_err("socket %s: %s (check that its directory exists and is "
			        "writable)", b->cfg->set.socket, strerror(errno));
		return -1;
	}
	snprintf(b->socket_path, sizeof b->socket_path, "%s", b->cfg->set.socket);
	b->own_socket = true;
	if (adopt_listener(b, fd, LISTENER_EDGE) == -1)
		return -1;
	if (listen_control(b) == -1 || listen_metrics(b) == -1 || listen_peer(b) == -1)
		return -1;
	fd = sock_listen_tcp(b->cfg->set.listen);
	if (fd == -1) {
		log_err("listen %s: %s (give another --listen ADDR:PORT)", b->cfg->set.listen,
		        strerror(errno));
		return -1;
	}
	return adopt_client(b, fd);
}

static void
accept_some(struct broker *b, int lfd, enum listener_kind kind)
{
	struct sockaddr_storage ss;
	lws_sock_file_fd_type u;
	socklen_t len;
	int i, fd;

	for (i = 0; i < LISTEN_ACCEPTS_PER_WAKEUP; i++) {
		len = sizeof ss;
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (kind == LISTENER_CLIENT) {
			/* A source over its handshake rate costs us an accept and a
			 * close, nothing more. */
			if (!ratelimit_take(&b->handshakes, (struct sockaddr *)&ss, clock_ms())) {
				b->metrics.handshakes[HS_RATE_LIMITED]++;
				close(fd);
				continue;
			}
			/* lws does not set it on adopted sockets; without it each
			 * relayed request waits out delayed ACKs. */
			sock_nodelay(fd);
			if (lws_adopt_socket_vhost(b->vh_ws, fd) == NULL)
				log_warn("cannot adopt a client connection");
			continue;
		}
		if (kind == LISTENER_PEER)
			sock_nodelay(fd);
		u.sockfd = fd;
		if (lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_SOCKET, u,
		                               kind_protocols[kind], NULL) == NULL)
			log_warn("cannot adopt a connection");
	}
}

int
listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                void *in, size_t len)
{
	enum listener_kind *kind = lws_get_opaque_user_data(wsi);

	if (reason == LWS_CALLBACK_RAW_RX_FILE && kind)
		accept_some(broker_of(wsi), lws_get_socket_fd(wsi), *kind);
	return 0;
}
