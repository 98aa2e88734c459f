/*
 * The edge's loop: read requests from the visitor, route each (route.c)
 * and pass it to the broker canonically; pass responses back as they come
 * (response.c); after a 101, relay raw bytes.  One poll() over two
 * sockets, deadlines for the slow and the idle, and an exit when either
 * side is done.  The edge's own answers are in answer.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"
#include "log.h"

/* Queues bytes for a side.  The loop reads only when there is room, so a
 * full buffer here is a bug: say so and end the connection. */
void
edge_queue(struct edge *e, struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) == -1) {
		log_err("edge queue overflow name=%s (a bug: please report it)", e->name);
		e->closing = true;
	}
}

/* --- requests --- */

static void
on_head(struct edge *e)
{
	if (route_request(e) == -1)
		return;
	pending_push(e);
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
			e->head_deadline_ms = clock_ms() + e->cfg->set.head_timeout_ms;
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
	e->last_read_ms = clock_ms();
	if (e->raw) {
		e->raw_up += buf_len(&e->in);
		edge_queue(e, &e->to_broker, buf_data(&e->in), buf_len(&e->in));
		buf_consume(&e->in, buf_len(&e->in));
	}
}

/* What waits for the visitor: the pipe first (its bytes came first),
 * then the buffer.  -1 when the visitor is gone. */
static int
send_visitor(struct edge *e)
{
	if (e->down.len > 0 && pass_drain(&e->down, e->out_fd) == -1)
		return -1;
	if (e->down.len == 0 && buf_len(&e->to_visitor) > 0)
		return write_visitor(e, &e->to_visitor);
	return 0;
}

static void
send_broker(struct edge *e)
{
	if (e->up.len > 0 && pass_drain(&e->up, e->broker_fd) == -1) {
		response_eof(e);
		return;
	}
	if (e->up.len == 0 && buf_len(&e->to_broker) > 0 &&
	    write_some(e->broker_fd, &e->to_broker) == -1)
		response_eof(e);
}

static bool
broker_waits(const struct edge *e)
{
	return (buf_len(&e->to_broker) > 0 || e->up.len > 0) && !e->broker_eof;
}

/* Writes what this round queued at once rather than after one more
 * poll(): a socket with room takes it, which spares two wakeups per
 * keep-alive request.  A side that was already waiting for POLLOUT (its
 * socket was full) is left to poll().  -1 when the visitor is gone. */
static int
flush(struct edge *e, bool visitor_waited, bool broker_waited)
{
	if (!broker_waited && e->broker_fd != -1 && broker_waits(e))
		send_broker(e);
	if (!visitor_waited && (buf_len(&e->to_visitor) > 0 || e->down.len > 0) &&
	    send_visitor(e) == -1)
		return -1;
	return 0;
}

/* Not on the stack: the calls below it would start 64 KiB deeper, on
 * pages that fault in for them alone. */
static void
read_broker(struct edge *e)
{
	static uint8_t tmp[EDGE_IO_BYTES];    /* one connection per process */
	ssize_t n = read(e->broker_fd, tmp, sizeof tmp);

	if (n > 0)
		response_bytes(e, tmp, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		response_eof(e);
}

/* Body bytes the broker sent that need no parsing: spliced. */
static void
receive_broker(struct edge *e)
{
	size_t max = pass_down_allowance(e);
	struct pending *q;
	ssize_t n;

	if (max == 0) {
		read_broker(e);
		return;
	}
	n = pass_fill(&e->down, e->broker_fd, max);
	if (n == 0)
		response_eof(e);
	if (n <= 0)
		return;
	if (e->raw) {
		e->raw_down += (size_t)n;
		return;
	}
	http_resp_body_skip(&e->resp, (size_t)n);
	q = pending_oldest(e);
	q->bytes += (size_t)n;
	q->answered = true;
}

/* Likewise from the visitor. */
static void
receive_visitor(struct edge *e)
{
	size_t max = pass_up_allowance(e);
	ssize_t n;

	if (max == 0) {
		read_visitor(e);
		return;
	}
	n = pass_fill(&e->up, e->in_fd, max);
	e->visitor_eof = n == 0;
	if (n <= 0)
		return;
	e->last_read_ms = clock_ms();
	if (e->raw)
		e->raw_up += (size_t)n;
	else
		http_req_body_skip(&e->req, (size_t)n);
}

static bool
want_broker_read(const struct edge *e)
{
	if (e->broker_eof || e->closing)
		return false;
	if (pass_down_allowance(e) > 0)
		return true;
	return !pass_down_waits(e) && buf_len(&e->to_visitor) < EDGE_QUEUE_MAX_BYTES;
}

static bool
want_visitor_read(const struct edge *e)
{
	if (e->closing || e->visitor_eof || e->error_status)
		return false;
	if (pass_up_allowance(e) > 0)
		return true;
	if (pass_up_waits(e))
		return false;    /* the pipe, or a body that will be, drains first */
	if (e->raw)
		return buf_room(&e->to_broker) >= EDGE_IO_BYTES;
	return buf_len(&e->in) < EDGE_IO_BYTES && !e->upgrade_wait &&
	       buf_room(&e->to_broker) >= FEED_ROOM_BYTES;
}

/* --- deadlines --- */

/* OPEN went to the broker, which has not acknowledged it yet.  The app's
 * own time to answer is not bounded here: a long poll may take minutes. */
static bool
awaiting_broker(const struct edge *e)
{
	return e->broker_fd != -1 && !e->acked && !e->replied && !e->raw && !e->closing;
}

static int64_t
visitor_deadline(const struct edge *e)
{
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

static int64_t
next_deadline(const struct edge *e)
{
	int64_t d;

	if (e->closing)
		return e->close_deadline_ms;
	d = visitor_deadline(e);
	if (awaiting_broker(e) && (d == 0 || e->broker_deadline_ms < d))
		d = e->broker_deadline_ms;
	return d;
}

/* A deadline passed: 1 to exit now. */
static int
on_deadline(struct edge *e)
{
	if (e->closing)
		return 1;
	if (awaiting_broker(e) && clock_ms() >= e->broker_deadline_ms) {
		log_err("broker %s: no answer to OPEN in %d ms", e->route.socket,
		        EDGE_BROKER_TIMEOUT_MS);
		edge_answer(e, 504, "The tunnel service did not answer in time; try again.");
		return 0;
	}
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
	if (buf_len(&e->to_visitor) > 0 || e->down.len > 0)
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
	int64_t end = clock_ms() + LINGER_TIMEOUT_MS;
	struct pollfd pfd = { .fd = e->in_fd, .events = POLLIN };

	tls_notify_close(e);
	if (shutdown(e->out_fd, SHUT_WR) == -1)
		return;
	while (clock_ms() < end) {
		if (poll(&pfd, 1, (int)(end - clock_ms())) <= 0)
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

	e->head_deadline_ms = clock_ms() + e->cfg->set.head_timeout_ms;
	e->last_read_ms = clock_ms();
	if (e->cfg->error)
		edge_answer(e, 503, "The tunnel service is misconfigured; its operator "
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
		if (buf_len(&e->to_visitor) > 0 || e->down.len > 0) {
			pfd[n] = (struct pollfd){ .fd = e->out_fd, .events = POLLOUT };
			ov = n++;
		}
		if (e->broker_fd != -1) {
			short ev = 0;
			if (want_broker_read(e))
				ev |= POLLIN;
			if (broker_waits(e))
				ev |= POLLOUT;
			if (ev) {
				pfd[n] = (struct pollfd){ .fd = e->broker_fd, .events = ev };
				ib = n++;
			}
		}
		deadline = next_deadline(e);
		now = clock_ms();
		timeout = deadline == 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now);
		/* GnuTLS may hold decrypted bytes that poll() cannot see. */
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
		/* Access lines wait until this round's bytes went out: the
		 * visitor's response does not wait for the log (main releases
		 * what an early return holds). */
		log_hold();
		if (ov >= 0 && (pfd[ov].revents & (POLLOUT | POLLERR | POLLHUP)) &&
		    send_visitor(e) == -1)
			return 0;    /* the visitor went away */
		if (ib >= 0 && (pfd[ib].revents & POLLOUT) && broker_waits(e))
			send_broker(e);
		if (ib >= 0 && (pfd[ib].revents & (POLLIN | POLLHUP | POLLERR)) && !e->broker_eof)
			receive_broker(e);
		if (iv >= 0 && ((pfd[iv].revents & (POLLIN | POLLHUP | POLLERR)) || tls_pending(e)))
			receive_visitor(e);
		if (!e->raw)
			parse_requests(e);
		if (flush(e, ov >= 0, ib >= 0 && (pfd[ib].events & POLLOUT)) == -1)
			return 0;    /* the visitor went away */
		log_release();
	}
	if (e->closing)
		linger(e);
	return 0;
}
