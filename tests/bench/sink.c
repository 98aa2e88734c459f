/*
 * The upload sink of `make bench`: an app that takes request bodies and
 * throws them away, so that the upload rows measure what carries the
 * bytes, not what the app does with them (the Node app hashes each body).
 * One process, every connection on one epoll loop, kept alive.  Each
 * request must say its Content-Length (411 if not); its body is read and
 * dropped, and the answer is {"length": N}, the bytes it got.
 *
 *   cc -O2 -o sink sink.c
 *   sink PORT          listens on 127.0.0.1:PORT, says so on stderr
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_HEAD_MAX_BYTES 16384
#define SINK_READ_BYTES (256 * 1024)
#define SINK_BACKLOG 1024
#define SINK_EVENTS 64
#define SINK_ANSWER_MAX_BYTES 256

struct conn {
	int fd;
	size_t have;              /* head bytes held */
	long long left;           /* body bytes still to come; -1: reading a head */
	long long got;            /* body bytes dropped */
	char head[SINK_HEAD_MAX_BYTES];
};

static char drop[SINK_READ_BYTES];

/* The value of Content-Length in a head ending at end, or -1. */
static long long
content_length(char *head, char *end)
{
	static const char name[] = "\r\ncontent-length:";
	char *p, *num;
	long long n;

	*end = '\0';
	for (p = head; (p = strchr(p, '\r')) != NULL; p++) {
		if (strncasecmp(p, name, sizeof name - 1) != 0)
			continue;
		n = strtoll(p + sizeof name - 1, &num, 10);
		return num > p + sizeof name - 1 && n >= 0 ? n : -1;
	}
	return -1;
}

static int
answer(struct conn *c, int status, const char *body)
{
	char out[SINK_ANSWER_MAX_BYTES];
	int n = snprintf(out, sizeof out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n\r\n%s", status, status == 200 ? "OK" : "Length Required",
	                 strlen(body), body);

	/* Small enough for an empty socket buffer: the peer waits for it. */
	return write(c->fd, out, (size_t)n) == n ? 0 : -1;
}

/* After the body's last byte: the answer, then the next request. */
static int
finish(struct conn *c)
{
	char body[64];

	snprintf(body, sizeof body, "{\"length\": %lld}", c->got);
	if (answer(c, 200, body) < 0)
		return -1;
	c->left = -1;
	c->got = 0;
	return 0;
}

/* Takes what the head buffer holds past the head as body bytes. */
static int
start_body(struct conn *c, char *end)
{
	size_t past = c->have - (size_t)(end + 4 - c->head);
	long long len = content_length(c->head, end);

	if (len < 0) {
		answer(c, 411, "{\"error\": \"Content-Length required\"}");
		return -1;
	}
	c->left = len - (long long)past;
	c->got = (long long)past;
	c->have = 0;
	if (c->left < 0)
		return -1;    /* a pipelined request: not what the bench sends */
	return c->left == 0 ? finish(c) : 0;
}

/* Reads all there is now: 0 to wait for more, -1 once the connection ends. */
static int
serve(struct conn *c)
{
	ssize_t n;
	char *end;

	for (;;) {
		if (c->left < 0) {
			n = read(c->fd, c->head + c->have, sizeof c->head - 1 - c->have);
			if (n <= 0)
				return n < 0 && errno == EAGAIN ? 0 : -1;
			c->have += (size_t)n;
			c->head[c->have] = '\0';
			end = strstr(c->head, "\r\n\r\n");
			if (end && start_body(c, end) < 0)
				return -1;
			if (!end && c->have == sizeof c->head - 1)
				return -1;
			continue;
		}
		n = read(c->fd, drop, c->left < (long long)sizeof drop ? (size_t)c->left : sizeof drop);
		if (n <= 0)
			return n < 0 && errno == EAGAIN ? 0 : -1;
		c->left -= n;
		c->got += n;
		if (c->left == 0 && finish(c) < 0)
			return -1;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event evs[SINK_EVENTS], ev = { .events = EPOLLIN };
	int one = 1, lfd, ep, n, i, fd;
	struct conn *c;

	if (argc != 2) {
		fprintf(stderr, "usage: sink PORT\n");
		return 2;
	}
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, SINK_BACKLOG) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("sink");
		return 1;
	}
	fprintf(stderr, "sink: listening on 127.0.0.1:%s\n", argv[1]);
	for (;;) {
		n = epoll_wait(ep, evs, SINK_EVENTS, -1);
		if (n < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (!c) {
				fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0 || !(c = calloc(1, sizeof *c))) {
					if (fd >= 0)
						close(fd);
					continue;
				}
				c->fd = fd;
				c->left = -1;
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				ev.data.ptr = NULL;
			}
			if (serve(c) < 0) {
				close(c->fd);     /* and out of epoll: one event per connection per batch */
				free(c);
			}
		}
	}
}
