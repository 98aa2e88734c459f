/*
 * Whether each target's app answers.  At start, a target that nobody
 * listens on gets a warning; so does one that refuses a visitor later.
 * Such a target is watched (a non-blocking connect every
 * APP_WATCH_INTERVAL_MS, which never holds up the event loop) until it
 * answers, and then gets one line saying so.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "log.h"

/* How often a down target is tried; a connect not made by the next try
 * is given up. */
#define APP_WATCH_INTERVAL_MS 500

/* Where the target is, for connect(): a unix: path, or the first
 * address its host resolves to.  -1 if it cannot be said. */
static int
target_address(struct target *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct sockaddr_un *un = (struct sockaddr_un *)&t->watch_addr;
	char port[8];

	if (t->host[0] == '+') {    /* unix:/path, as lws spells it */
		if (strlen(t->host + 1) >= sizeof un->sun_path)
			return -1;
		memset(un, 0, sizeof *un);
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, t->host + 1, strlen(t->host + 1));
		t->watch_len = sizeof *un;
		return 0;
	}
	snprintf(port, sizeof port, "%d", t->port);
	if (getaddrinfo(t->host, port, &hints, &ai) != 0)
		return -1;
	memcpy(&t->watch_addr, ai->ai_addr, ai->ai_addrlen);
	t->watch_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Starts a connect; 1 if it was made at once, 0 if under way or refused. */
static int
connect_start(struct target *t)
{
	int fd = socket(t->watch_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return 0;
	if (connect(fd, (struct sockaddr *)&t->watch_addr, t->watch_len) == 0) {
		close(fd);
		return 1;
	}
	if (errno == EINPROGRESS)
		t->watch_fd = fd;
	else
		close(fd);
	return 0;
}

/* The connect started last time: 1 if it was made. */
static int
connect_done(struct target *t)
{
	struct pollfd p = { .fd = t->watch_fd, .events = POLLOUT };
	int err = -1, made;
	socklen_t len = sizeof err;

	made = poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) &&
	       getsockopt(t->watch_fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
	close(t->watch_fd);
	t->watch_fd = -1;
	return made;
}

static void watch_tick(lws_sorted_usec_list_t *sul);

static void
schedule(struct client *c)
{
	lws_sul_schedule(c->ctx, 0, &c->appwatch, watch_tick,
	                 (lws_usec_t)APP_WATCH_INTERVAL_MS * LWS_US_PER_MS);
}

void
appwatch_up(struct client *c, struct target *t)
{
	if (!t->down)
		return;
	t->down = false;
	if (t->watch_fd != -1) {
		close(t->watch_fd);
		t->watch_fd = -1;
	}
	log_info("%s answers now: requests reach it", t->label);
}

static void
watch_tick(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, appwatch);
	struct target *t;
	bool watching = false;
	int i;

	for (i = 0; i < c->ntargets; i++) {
		t = &c->targets[i];
		if (!t->down)
			continue;
		if ((t->watch_fd != -1 && connect_done(t)) || connect_start(t)) {
			appwatch_up(c, t);
			continue;
		}
		watching = true;
	}
	if (watching && !c->stopping)
		schedule(c);
}

void
appwatch_down(struct client *c, struct target *t)
{
	if (t->down || t->watch_len == 0)
		return;
	t->down = true;
	schedule(c);
}

void
appwatch_start(struct client *c)
{
	struct target *t;
	int i, up;

	for (i = 0; i < c->ntargets; i++) {
		t = &c->targets[i];
		t->watch_fd = -1;
		if (target_address(t) == -1)
			continue;    /* its name does not resolve now: visitors will say */
		up = connect_start(t);
		if (t->watch_fd != -1) {
			/* Under way: a connect to this machine is made or refused at
			 * once; give another host an interval. */
			struct pollfd p = { .fd = t->watch_fd, .events = POLLOUT };
			poll(&p, 1, APP_WATCH_INTERVAL_MS);
			up = connect_done(t);
		}
		if (up)
			continue;
		log_warn("nothing is listening on %s yet; requests will get a 502 page until it is",
		         t->label);
		appwatch_down(c, t);
	}
}

void
appwatch_stop(struct client *c)
{
	int i;

	lws_sul_cancel(&c->appwatch);
	for (i = 0; i < c->ntargets; i++)
		if (c->targets[i].watch_fd != -1) {
			close(c->targets[i].watch_fd);
			c->targets[i].watch_fd = -1;
		}
}
