/*
 * The edge's loop: read requests from the visitor, check and route each,
 * pass them to the broker canonically; pass responses back as they come;
 * after a 101, relay raw bytes.  One poll() over two sockets, deadlines
 * for the slow and the idle, and an exit when either side is done.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"
#include "host.h"
#include "log.h"
#include "page.h"

int64_t
edge_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queues bytes for a side.  The loop reads only when there is room, so a
 * full buffer here is a bug: say so and end the connection. */
static void
queue(struct edge *e, struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) == -1) {
		log_err("edge queue overflow name=%s (a bug: please report it)", e->name);
		e->closing = true;
	}
}

static struct pending *
oldest(struct edge *e)
{
	return e->queue_len ? &e->queue[e->queue_head] : NULL;
}

static void
access_line(struct edge *e, const struct pending *p, int status)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	log_info("access time=%s name=%s addr=%s method=%s path=%s status=%d bytes=%zu ms=%lld",
	         when, e->name[0] ? e->name : "-", e->peer, p->method, p->path, status,
	         p->bytes, (long long)(edge_now_ms() - p->start_ms));
}

static void
pop(struct edge *e, int status)
{
	struct pending *p = oldest(e);

	if (p == NULL)
		return;
	access_line(e, p, status);
	e->queue_head = (e->queue_head + 1) % PIPELINE_MAX_REQUESTS;
	e->queue_len--;
	p = oldest(e);
	http_resp_expect(&e->resp, p ? p->is_head : false);
}

/* Writes the edge's own response now: nothing else is owed first. */
static void
answer_with(struct edge *e, int status, const char *detail, const char *extra)
{
	struct pending none = { .start_ms = edge_now_ms(), .method = "-", .path = "-" };
	struct pending *p = oldest(e) ? oldest(e) : &none;

	if (p == &none && e->req.info.method_len) {
		/* A request refused before it was passed on: log what it asked. */
		snprintf(none.method, sizeof none.method, "%.*s", (int)e->req.info.method_len,
		         e->req.info.method);
		snprintf(none.path, sizeof none.path, "%.*s", (int)e->req.info.target_len,
		         e->req.info.target);
	}

	if (p != &none && p->answered) {
		/* Its response is under way: the close is all we can say. */
		pop(e, status);
	} else if (page_error(&e->to_visitor, status, detail, extra) == -1) {
		log_warn("no room for a %d page", status);
	} else if (p != &none) {
		p->bytes = buf_len(&e->to_visitor);
		pop(e, status);
	}
	if (p == &none)
		access_line(e, p, status);
	e->closing = true;
	e->close_deadline_ms = edge_now_ms() + LINGER_TIMEOUT_MS;
}

static void
answer(struct edge *e, int status, const char *detail)
{
	answer_with(e, status, detail, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static void
answer_owed(struct edge *e)
{
	answer_with(e, e->error_status, e->error_text,
	            e->error_extra[0] ? e->error_extra : NULL);
}

/* An error in the request being read.  Responses owed to earlier
 * requests go first; this answer after them.  When the error is in a body,
 * its request was already passed on: it will never be answered by the app,
 * so it is owed this answer instead. */
void
edge_fail_with(struct edge *e, int status, const char *detail, const char *extra)
{
	if (e->error_status == 0) {
		e->error_status = status;
		e->error_owed = http_req_in_body(&e->req) ? 1 : 0;
		snprintf(e->error_text, sizeof e->error_text, "%s", detail);
		snprintf(e->error_extra, sizeof e->error_extra, "%s", extra ? extra : "");
	}
	if (e->queue_len <= e->error_owed)
		answer_owed(e);
}

void
edge_fail(struct edge *e, int status, const char *detail)
{
	edge_fail_with(e, status, detail, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

/* --- requests --- */

static void
push(struct edge *e)
{
	struct pending *p;
	const struct http_req_head *h = &e->req.info;

	p = &e->queue[(e->queue_head + e->queue_len) % PIPELINE_MAX_REQUESTS];
	memset(p, 0, sizeof *p);
	p->start_ms = edge_now_ms();
	p->is_head = h->is_head;
	p->upgrade = h->upgrade;
	snprintf(p->method, sizeof p->method, "%.*s", (int)h->method_len, h->method);
	snprintf(p->path, sizeof p->path, "%.*s", (int)h->target_len, h->target);
	if (e->queue_len++ == 0)
		http_resp_expect(&e->resp, p->is_head);
}

/* The tunnel's access rules, on every request of the connection. */
static int
check_access(struct edge *e)
{
	char extra[160];
	int ok;

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
	char location[HEAD_MAX_BYTES_CAP / 16];
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
	if (h->target_len + hlen + 64 > sizeof location) {
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
static int
route(struct edge *e)
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
	if (rr == ROUTE_OK)
		rr = route_connect(e, name);
	if (rr != ROUTE_OK) {
		edge_fail(e, 503, "The tunnel service is not available right now; "
		                  "try again in a moment.");
		return -1;
	}
	return 0;
}

static void
on_head(struct edge *e)
{
	if (route(e) == -1)
		return;
	push(e);
	if (http_req_emit_head(&e->req, &e->to_broker, e->peer, e->cfg->proto) == -1)
		edge_fail(e, 500, "The edge ran out of buffer space.");
}

/* Room the request parser needs in to_broker for one more feed. */
#define FEED_ROOM_BYTES (EDGE_IO_BYTES + 2 * HEAD_MAX_BYTES)

/* Parses what the visitor sent, as far as it can go now. */
static void
parse_requests(struct edge *e)
{
	size_t used;
	enum http_req_event ev;

	while (!e->closing && !e->raw && !e->upgrade_wait && e->error_status == 0 &&
	       buf_room(&e->to_broker) >= FEED_ROOM_BYTES &&
	       e->queue_len < PIPELINE_MAX_REQUESTS) {
		bool was_in_head = http_req_in_head(&e->req);
		ev = http_req_feed(&e->req, buf_data(&e->in), buf_len(&e->in), &used,
		                   &e->to_broker);
		buf_consume(&e->in, used);
		if (!was_in_head && http_req_in_head(&e->req))
			e->head_deadline_ms = edge_now_ms() + e->cfg->set.head_timeout_ms;
		switch (ev) {
		case HTTP_REQ_MORE:
			return;
		case HTTP_REQ_HEAD:
			on_head(e);
			break;
		case HTTP_REQ_COMPLETE:
			e->head_deadline_ms = 0;
			break;
		case HTTP_REQ_UPGRADE:
			e->upgrade_wait = true;
			return;
		case HTTP_REQ_ERROR:
			edge_fail(e, e->req.status, e->req.reason);
			return;
		}
	}
}

/* --- responses --- */

static void
go_raw(struct edge *e)
{
	e->raw = true;
	e->upgrade_wait = false;
	/* What the visitor sent after the upgrade request is the new protocol. */
	queue(e, &e->to_broker, buf_data(&e->in), buf_len(&e->in));
	buf_consume(&e->in, buf_len(&e->in));
}

static void
on_response_end(struct edge *e, enum http_resp_event ev)
{
	struct pending *p = oldest(e);

	if (ev == HTTP_RESP_INTERIM || p == NULL)
		return;
	if (ev == HTTP_RESP_UPGRADED) {
		if (!p->upgrade) {
			log_warn("app answered 101 to a request without Upgrade name=%s", e->name);
			e->closing = true;
			return;
		}
		access_line(e, p, 101);
		go_raw(e);
		return;
	}
	if (p->upgrade && e->upgrade_wait) {
		/* The app said no to the upgrade: back to HTTP. */
		e->upgrade_wait = false;
		http_req_resume(&e->req);
	}
	pop(e, e->resp.status);
	if (!e->resp.keep_alive) {
		e->closing = true;
		return;
	}
	if (e->error_status && e->queue_len <= e->error_owed)
		answer_owed(e);
}

/* Passes response bytes on, watching where each response ends. */
static void
relay_response(struct edge *e, const uint8_t *p, size_t n)
{
	enum http_resp_event ev;
	struct pending *q;
	size_t used;

	if (e->raw) {
		queue(e, &e->to_visitor, p, n);
		return;
	}
	while (n > 0 && !e->raw) {
		q = oldest(e);
		if (q == NULL) {
			log_warn("app sent bytes nobody asked for name=%s", e->name);
			e->closing = true;
			return;
		}
		ev = http_resp_feed(&e->resp, p, n, &used);
		if (ev == HTTP_RESP_ERROR) {
			log_warn("app sent a malformed response name=%s reason=%s", e->name,
			         e->resp.reason);
			if (!q->answered)
				answer(e, 502, "The app behind this tunnel sent a malformed response.");
			e->closing = true;
			return;
		}
		queue(e, &e->to_visitor, p, used);
		q->answered = q->answered || used > 0;
		q->bytes += used;
		p += used;
		n -= used;
		if (ev != HTTP_RESP_MORE)
			on_response_end(e, ev);
		if (e->closing)
			return;
	}
	if (n > 0)
		queue(e, &e->to_visitor, p, n);    /* raw after a 101 */
}

/* The broker's first line: the stream is open, or why not. */
static void
read_reply(struct edge *e, const uint8_t **p, size_t *n)
{
	const uint8_t *nl = memchr(*p, '\n', *n);
	size_t take = nl ? (size_t)(nl - *p) + 1 : *n;
	char line[PREAMBLE_MAX_BYTES + 1], code[32] = "", detail[256];

	if (buf_append(&e->reply, *p, take) == -1) {
		answer(e, 502, "The tunnel service answered oddly.");
		*n = 0;
		return;
	}
	*p += take;
	*n -= take;
	if (nl == NULL)
		return;
	snprintf(line, sizeof line, "%.*s", (int)buf_len(&e->reply) - 1,
	         (const char *)buf_data(&e->reply));
	if (strcmp(line, "EXPOSE/1 OK") == 0) {
		e->replied = true;
		return;
	}
	*n = 0;
	sscanf(line, "EXPOSE/1 ERR %31s", code);
	if (strcmp(code, "refused") == 0) {
		const char *target = line + strlen("EXPOSE/1 ERR refused ");
		snprintf(detail, sizeof detail, "The tunnel is up, but nothing answered "
		         "on %.64s on the developer's machine. Start the app, or check "
		         "the port given to expose.",
		         strlen(line) > strlen("EXPOSE/1 ERR refused ") ? target : "its local port");
		answer(e, 502, detail);
	} else if (strcmp(code, "limit") == 0) {
		answer(e, 503, "This tunnel is serving as many requests as it may; "
		               "try again in a moment.");
	} else {
		answer(e, 502, "The tunnel closed before the app answered.");
	}
}

static void
on_broker_bytes(struct edge *e, const uint8_t *p, size_t n)
{
	if (!e->replied) {
		read_reply(e, &p, &n);
		if (!e->replied)
			return;
	}
	if (n)
		relay_response(e, p, n);
}

static void
on_broker_eof(struct edge *e)
{
	struct pending *p;

	e->broker_eof = true;
	if (!e->raw && e->replied && http_resp_finish(&e->resp) != HTTP_RESP_MORE)
		on_response_end(e, HTTP_RESP_COMPLETE);
	p = oldest(e);
	if (!e->raw && p && !p->answered)
		answer(e, 502, e->replied ?
		       "The app closed the connection without answering." :
		       "The tunnel closed before the app answered.");
	e->closing = true;
}

/* --- I/O --- */

static int
write_some(int fd, struct buf *b)
{
	ssize_t n = send(fd, buf_data(b), buf_len(b), MSG_NOSIGNAL);

	if (n < 0 && errno == ENOTSOCK)
		n = write(fd, buf_data(b), buf_len(b));
	if (n > 0) {
		buf_consume(b, (size_t)n);
		return 0;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

/* The visitor's side goes through TLS with --tls. */
static ssize_t
visitor_recv(struct edge *e, void *p, size_t n)
{
	return e->tls ? tls_read(e, p, n) : read(e->in_fd, p, n);
}

static int
read_visitor_bytes(struct edge *e, struct buf *b, size_t max)
{
	uint8_t *p = buf_reserve(b, max);
	ssize_t n;

	if (p == NULL)
		return 0;
	n = visitor_recv(e, p, max);
	if (n > 0)
		buf_commit(b, (size_t)n);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	return (int)(n > 0 ? 1 : n == 0 ? 0 : -1);
}

static int
write_visitor(struct edge *e, struct buf *b)
{
	ssize_t n;

	if (e->tls == NULL)
		return write_some(e->out_fd, b);
	n = tls_write(e, buf_data(b), buf_len(b));
	if (n > 0) {
		buf_consume(b, (size_t)n);
		return 0;
	}
	return errno == EAGAIN ? 0 : -1;
}

static void
read_visitor(struct edge *e)
{
	int rc = read_visitor_bytes(e, &e->in, EDGE_IO_BYTES);

	if (rc <= 0) {
		e->visitor_eof = true;
		return;
	}
	e->last_read_ms = edge_now_ms();
	if (e->raw) {
		queue(e, &e->to_broker, buf_data(&e->in), buf_len(&e->in));
		buf_consume(&e->in, buf_len(&e->in));
	}
}

static void
read_broker(struct edge *e)
{
	uint8_t tmp[EDGE_IO_BYTES];
	ssize_t n = read(e->broker_fd, tmp, sizeof tmp);

	if (n > 0)
		on_broker_bytes(e, tmp, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		on_broker_eof(e);
}

static bool
want_visitor_read(const struct edge *e)
{
	if (e->closing || e->visitor_eof || e->error_status)
		return false;
	if (e->raw)
		return buf_room(&e->to_broker) >= EDGE_IO_BYTES;
	return buf_len(&e->in) < EDGE_IO_BYTES && !e->upgrade_wait &&
	       buf_room(&e->to_broker) >= FEED_ROOM_BYTES;
}

/* --- deadlines --- */

static int64_t
next_deadline(const struct edge *e)
{
	if (e->closing)
		return e->close_deadline_ms;
	if (e->raw || e->error_status)
		return 0;    /* relaying, or waiting for owed responses */
	if (http_req_in_head(&e->req) || (e->queue_len == 0 && e->name[0] == '\0'))
		return e->head_deadline_ms;
	if (http_req_in_body(&e->req) && want_visitor_read(e))
		return e->last_read_ms + e->cfg->set.body_timeout_ms;
	if (e->queue_len == 0)
		return e->last_read_ms + e->cfg->set.idle_timeout_ms;
	return 0;
}

/* A deadline passed: 1 to exit now. */
static int
on_deadline(struct edge *e)
{
	if (e->closing)
		return 1;
	if (http_req_in_head(&e->req) || (e->queue_len == 0 && e->name[0] == '\0')) {
		if (e->queue_len == 0 && buf_len(&e->in) == 0 && !http_req_in_head(&e->req))
			return 1;   /* never said anything */
		edge_fail(e, 408, "The request took too long to arrive.");
		return 0;
	}
	if (http_req_in_body(&e->req)) {
		log_info("body stalled name=%s addr=%s", e->name, e->peer);
		return 1;
	}
	return 1;           /* idle keep-alive */
}

static bool
finished(const struct edge *e)
{
	/* A visitor that closes is gone: like a proxy that does not ignore
	 * client aborts, stop now, owed responses or not (an SSE stream would
	 * otherwise hold the process until the app next wrote). */
	if (e->visitor_eof)
		return true;
	if (buf_len(&e->to_visitor) > 0)
		return false;
	if (e->closing)
		return true;
	return e->raw && e->broker_eof;
}

/* After the last response: stop sending, let the visitor read it all. */
static void
linger(struct edge *e)
{
	uint8_t tmp[4096];
	int64_t end = edge_now_ms() + LINGER_TIMEOUT_MS;
	struct pollfd pfd = { .fd = e->in_fd, .events = POLLIN };

	tls_notify_close(e);
	if (shutdown(e->out_fd, SHUT_WR) == -1)
		return;
	while (edge_now_ms() < end) {
		if (poll(&pfd, 1, (int)(end - edge_now_ms())) <= 0)
			return;
		if (read(e->in_fd, tmp, sizeof tmp) <= 0)
			return;
	}
}

int
edge_run(struct edge *e)
{
	struct pollfd pfd[3];
	int64_t deadline, now;
	int n, timeout, iv = -1, ov = -1, ib = -1;

	e->head_deadline_ms = edge_now_ms() + e->cfg->set.head_timeout_ms;
	e->last_read_ms = edge_now_ms();
	if (e->cfg->error)
		answer(e, 503, "The tunnel service is misconfigured; its operator "
		               "has been told in its log.");
	for (;;) {
		if (finished(e))
			break;
		n = 0;
		iv = ov = ib = -1;
		if (want_visitor_read(e)) {
			pfd[n] = (struct pollfd){ .fd = e->in_fd, .events = POLLIN };
			iv = n++;
		}
		if (buf_len(&e->to_visitor) > 0) {
			pfd[n] = (struct pollfd){ .fd = e->out_fd, .events = POLLOUT };
			ov = n++;
		}
		if (e->broker_fd != -1) {
			short ev = 0;
			if (!e->broker_eof && buf_len(&e->to_visitor) < EDGE_QUEUE_MAX_BYTES &&
			    !e->closing)
				ev |= POLLIN;
			if (buf_len(&e->to_broker) > 0 && !e->broker_eof)
				ev |= POLLOUT;
			if (ev) {
				pfd[n] = (struct pollfd){ .fd = e->broker_fd, .events = ev };
				ib = n++;
			}
		}
		deadline = next_deadline(e);
		now = edge_now_ms();
		timeout = deadline == 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now);
		/* OpenSSL may hold decrypted bytes that poll() cannot see. */
		if (iv >= 0 && tls_pending(e))
			timeout = 0;
		if (n == 0 && timeout == -1)
			break;    /* nothing can happen any more */
		n = poll(pfd, (nfds_t)n, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && !(iv >= 0 && tls_pending(e))) {
			if (on_deadline(e))
				break;
			continue;
		}
		if (ov >= 0 && (pfd[ov].revents & (POLLOUT | POLLERR | POLLHUP)) &&
		    write_visitor(e, &e->to_visitor) == -1)
			return 0;    /* the visitor went away */
		if (ib >= 0 && (pfd[ib].revents & POLLOUT) &&
		    write_some(e->broker_fd, &e->to_broker) == -1)
			on_broker_eof(e);
		if (ib >= 0 && (pfd[ib].revents & (POLLIN | POLLHUP | POLLERR)) && !e->broker_eof)
			read_broker(e);
		if (iv >= 0 && ((pfd[iv].revents & (POLLIN | POLLHUP | POLLERR)) || tls_pending(e)))
			read_visitor(e);
		if (!e->raw)
			parse_requests(e);
	}
	if (e->closing)
		linger(e);
	return 0;
}
