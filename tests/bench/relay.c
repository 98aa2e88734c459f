/*
 * The bare relay of `make bench`: the floor for expose's shape.  It moves
 * bytes and does nothing else: no parsing, no registry, no framing, no
 * logging.  Chained as expose's hops are, it shows what those hops cost on
 * the machine whatever runs in them.
 *
 *   relay inetd PORT          one connection on stdin/stdout (started by
 *                             systemd-socket-activate --inetd -a, as the
 *                             edge is), relayed to 127.0.0.1:PORT; exits
 *                             when either side closes
 *   relay listen PORT UP      one process for every connection (as the
 *                             broker and the client are): accepts on
 *                             127.0.0.1:PORT, relays each to 127.0.0.1:UP
 *
 * Bytes move with read(2) and write(2) through a buffer per direction; a
 * direction whose writer is full stops reading until it drains.
 *
 *   cc -O2 -o relay relay.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF_BYTES 65536
#define RELAY_BACKLOG 4096
#define RELAY_EVENTS 64

struct half {
	int from, to;
	size_t len, off;
	char buf[RELAY_BUF_BYTES];
};

struct pair {
	struct half way[2];       /* visitor to upstream, upstream to visitor */
	struct pair *next_dead;   /* freed after the batch that closed it */
	int dead;
};

static void
no_delay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int
connect_up(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("relay: connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	no_delay(fd);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Moves what can move now: 0 to wait for more, -1 once the direction ends. */
static int
pump(struct half *h)
{
	ssize_t n;

	for (;;) {
		while (h->off < h->len) {
			n = write(h->to, h->buf + h->off, h->len - h->off);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			h->off += (size_t)n;
		}
		n = read(h->from, h->buf, sizeof h->buf);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		h->len = (size_t)n;
		h->off = 0;
	}
}

static int
pending(const struct half *h)
{
	return h->off < h->len;
}

static int
relay_inetd(int port)
{
	static struct half way[2];
	int up = connect_up(port);
	struct pollfd fds[2] = { { 0, POLLIN, 0 }, { up, POLLIN, 0 } };

	if (up < 0)
		return 1;
	no_delay(0);
	fcntl(0, F_SETFL, O_NONBLOCK);
	way[0].from = 0, way[0].to = up;
	way[1].from = up, way[1].to = 1;
	for (;;) {
		/* A direction with bytes held waits for its writer, not its reader. */
		fds[0].events = (short)((pending(&way[0]) ? 0 : POLLIN) | (pending(&way[1]) ? POLLOUT : 0));
		fds[1].events = (short)((pending(&way[1]) ? 0 : POLLIN) | (pending(&way[0]) ? POLLOUT : 0));
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (pump(&way[0]) < 0 || pump(&way[1]) < 0)
			return 0;
	}
}

static int
listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, RELAY_BACKLOG) < 0) {
		perror("relay: listen");
		return -1;
	}
	return fd;
}

static void
accept_one(int ep, int lfd, int up_port)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	struct pair *p;
	int c, up;

	c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	no_delay(c);
	up = connect_up(up_port);
	p = calloc(1, sizeof *p);
	if (up < 0 || !p) {
		close(c);
		if (up >= 0)
			close(up);
		free(p);
		return;
	}
	p->way[0].from = c, p->way[0].to = up;
	p->way[1].from = up, p->way[1].to = c;
	ev.data.ptr = p;
	epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
	epoll_ctl(ep, EPOLL_CTL_ADD, up, &ev);
}

static int
relay_listen(int port, int up_port)
{
	struct epoll_event evs[RELAY_EVENTS], ev = { .events = EPOLLIN, .data.ptr = NULL };
	int lfd = listen_on(port), ep = epoll_create1(EPOLL_CLOEXEC), n, i;
	struct pair *p, *dead;

	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		return 1;
	fprintf(stderr, "relay: listening on 127.0.0.1:%d\n", port);
	for (;;) {
		n = epoll_wait(ep, evs, RELAY_EVENTS, -1);
		if (n < 0 && errno != EINTR)
			return 1;
		dead = NULL;
		for (i = 0; i < n; i++) {
			p = evs[i].data.ptr;
			if (!p) {
				accept_one(ep, lfd, up_port);
				continue;
			}
			if (p->dead)
				continue;
			if (pump(&p->way[0]) < 0 || pump(&p->way[1]) < 0) {
				close(p->way[0].from);    /* closing removes both from epoll */
				close(p->way[0].to);
				p->dead = 1;
				p->next_dead = dead;
				dead = p;
			}
		}
		while (dead) {
			p = dead->next_dead;
			free(dead);
			dead = p;
		}
	}
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "inetd") == 0)
		return relay_inetd(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "listen") == 0)
		return relay_listen(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: relay inetd PORT | relay listen PORT UP\n");
	return 2;
}
