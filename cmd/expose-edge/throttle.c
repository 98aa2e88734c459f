/*
 * Wrong basic-auth passwords are counted per source address by the
 * broker, in one place for every edge process (expose(7)): the edge
 * reports each failure on a connection of its own, AUTHFAIL, and the
 * broker says whether the source is past its allowance (auth-failures in
 * expose.conf(5)).  A source past it gets 429 with Retry-After; the
 * broker also refuses its OPENs on tunnels with a password, so a right
 * guess gets no further than a wrong one.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edge.h"
#include "log.h"
#include "preamble.h"

/* The broker's one-line reply, within the broker's deadline. */
static int
read_reply_line(int fd, char *line, size_t size)
{
	int64_t deadline = clock_ms() + EDGE_BROKER_TIMEOUT_MS, left;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t n = 0;
	ssize_t r;
	char *nl;

	while (n + 1 < size) {
		left = deadline - clock_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		r = read(fd, line + n, size - 1 - n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		n += (size_t)r;
		line[n] = '\0';
		if ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			return 0;
		}
	}
	return -1;
}

static int
ask_broker(struct edge *e, char *line, size_t size)
{
	int fd, n;

	/* Non-blocking: a broker whose backlog is full refuses at once
	 * (EAGAIN) rather than holding this process. */
	fd = sock_connect_unix(e->route.socket, SOCK_NONBLOCK);
	if (fd == -1) {
		log_err("broker %s: %s (wrong password not counted)", e->route.socket,
		        strerror(errno));
		return -1;
	}
	n = preamble_ask_format(line, size, PREAMBLE_AUTHFAIL, e->name, e->peer,
	                        e->peer_port, e->cfg->proto);
	if (n < 0 || send(fd, line, (size_t)n, MSG_NOSIGNAL) != n ||
	    read_reply_line(fd, line, size) == -1) {
		log_err("broker %s: no answer to AUTHFAIL in %d ms (wrong password not counted)",
		        e->route.socket, EDGE_BROKER_TIMEOUT_MS);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
throttle_auth_failed(struct edge *e)
{
	char line[PREAMBLE_MAX_BYTES];
	struct preamble_answer a;

	if (ask_broker(e, line, sizeof line) == -1)
		return -1;
	if (preamble_answer_parse(line, &a) == 0 && a.kind == PREAMBLE_ERR) {
		if (a.code == PREAMBLE_UNAUTHORIZED)
			return 0;
		if (a.code == PREAMBLE_THROTTLED && a.seconds > 0)
			return a.seconds;
	}
	log_err("broker %s: odd answer to AUTHFAIL: %.80s (an older broker?)",
	        e->route.socket, line);
	return -1;
}

void
throttle_answer(struct edge *e, int seconds, bool now)
{
	static const char detail[] = "Too many wrong passwords came from your address; "
	                             "wait before you try again.";
	char extra[64];

	snprintf(extra, sizeof extra, "Retry-After: %d\r\n", seconds > 0 ? seconds : 1);
	if (now)
		edge_answer_with(e, 429, detail, extra);
	else
		edge_fail_with(e, 429, detail, extra);
}
