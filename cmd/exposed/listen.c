/*
 * The broker's listeners: its own, or those systemd passes (LISTEN_FDS).
 * A Unix socket is for edges, a TCP socket for clients.  The broker
 * accepts on them itself and hands each connection to libwebsockets:
 * one code path whether or not systemd made the sockets.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

/* Connections accepted per wakeup, so one listener can't starve the loop. */
#define LISTEN_ACCEPTS_PER_WAKEUP 64
/* Mode of the edges' socket: the broker's user and group. */
#define LISTEN_SOCKET_MODE 0660

enum listener_kind { LISTENER_EDGE, LISTENER_CLIENT };

static enum listener_kind kinds[] = { LISTENER_EDGE, LISTENER_CLIENT };

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

/* Sockets from systemd: the Unix one is the edges', the TCP one the clients'. */
static int
adopt_passed(struct broker *b, int n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, have_edge = 0, have_client = 0;

	for (fd = 3; fd < 3 + n; fd++) {
		len = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			return -1;
		if (ss.ss_family == AF_UNIX) {
			struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
			snprintf(b->socket_path, sizeof b->socket_path, "%.107s", sun->sun_path);
			have_edge = adopt_listener(b, fd, LISTENER_EDGE) == 0;
		} else {
			have_client = adopt_listener(b, fd, LISTENER_CLIENT) == 0;
		}
	}
	if (!have_edge || !have_client) {
		log_err("systemd passed %d sockets; need one Unix (edges) and one TCP "
		        "(clients): check exposed.socket", n);
		return -1;
	}
	return 0;
}

int
listen_setup(struct broker *b)
{
	int n = sock_listen_fds(), fd;

	if (n > 0)
		return adopt_passed(b, n);
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
	fd = sock_listen_tcp(b->cfg->set.listen);
	if (fd == -1) {
		log_err("listen %s: %s (give another --listen ADDR:PORT)", b->cfg->set.listen,
		        strerror(errno));
		return -1;
	}
	return adopt_listener(b, fd, LISTENER_CLIENT);
}

static void
accept_some(struct broker *b, int lfd, enum listener_kind kind)
{
	lws_sock_file_fd_type u;
	int i, fd;

	for (i = 0; i < LISTEN_ACCEPTS_PER_WAKEUP; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (kind == LISTENER_CLIENT) {
			/* lws does not set it on adopted sockets; without it each
			 * relayed request waits out delayed ACKs. */
			sock_nodelay(fd);
			if (lws_adopt_socket_vhost(b->vh_ws, fd) == NULL)
				log_warn("cannot adopt a client connection");
			continue;
		}
		u.sockfd = fd;
		if (lws_adopt_descriptor_vhost(b->vh_edge, LWS_ADOPT_SOCKET, u,
		                               "expose-edge", NULL) == NULL)
			log_warn("cannot adopt an edge connection");
	}
}

int
listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                void *in, size_t len)
{
	enum listener_kind *kind = lws_get_opaque_user_data(wsi);

	if (reason == LWS_CALLBACK_RAW_RX_FILE && kind)
		accept_some(broker, lws_get_socket_fd(wsi), *kind);
	return 0;
}
