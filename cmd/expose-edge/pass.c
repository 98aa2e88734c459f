/*
 * Bytes that need no parsing pass through a pipe with splice(2), never
 * copied into the edge: a body of known length after its head (all but
 * its last byte, which the parser sees end the message), a response body
 * that the close ends, and both ways after a 101.  Plain connections
 * only: TLS bytes must be decrypted here.
 *
 * Order: a side's pipe is filled only when its buffer is empty, and the
 * pipe drains before the buffer, so bytes leave in the order they came.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"
#include "log.h"

#define PASS_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

void
pass_init(struct pass *p)
{
	p->fd[0] = p->fd[1] = -1;
	p->len = p->size = 0;
	p->broken = false;
}

void
pass_free(struct pass *p)
{
	if (p->fd[0] != -1) {
		close(p->fd[0]);
		close(p->fd[1]);
	}
	pass_init(p);
}

/* The pipe, made on first use.  Without one the bytes take the buffers. */
static int
pass_open(struct pass *p)
{
	int size;

	if (p->fd[0] != -1)
		return 0;
	if (p->broken)
		return -1;
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe: %s (bodies go through the edge's buffers)", strerror(errno));
		p->broken = true;
		p->fd[0] = p->fd[1] = -1;
		return -1;
	}
	(void)fcntl(p->fd[1], F_SETPIPE_SZ, PASS_PIPE_BYTES);
	size = fcntl(p->fd[1], F_GETPIPE_SZ);
	p->size = size > 0 ? (size_t)size : 4096;
	return 0;
}

/* Room in the pipe for at most max more bytes (a pipe not made yet will
 * be asked for PASS_PIPE_BYTES; if it gets less, splice moves less). */
static size_t
pass_room(const struct pass *p, size_t max)
{
	size_t size = p->fd[0] == -1 ? PASS_PIPE_BYTES : p->size;
	size_t room = size > p->len ? size - p->len : 0;

	return room < max ? room : max;
}

/* Bytes from the broker that need no parsing, whatever is queued. */
static size_t
down_left(const struct edge *e)
{
	if (e->tls || e->closing || e->broker_eof || e->broker_fd == -1 || e->down.broken)
		return 0;
	if (e->raw)
		return SIZE_MAX;
	if (pending_oldest((struct edge *)e) == NULL)
		return 0;
	return http_resp_body_left(&e->resp);
}

/* Likewise from the visitor. */
static size_t
up_left(const struct edge *e)
{
	if (e->tls || e->closing || e->visitor_eof || e->broker_eof || e->broker_fd == -1 ||
	    e->up.broken)
		return 0;
	if (e->raw)
		return SIZE_MAX;
	if (e->error_status || e->upgrade_wait)
		return 0;
	return http_req_body_left(&e->req);
}

size_t
pass_down_allowance(const struct edge *e)
{
	size_t left = down_left(e);

	if (left == 0 || buf_len(&e->to_visitor) > 0)
		return 0;
	return pass_room(&e->down, left);
}

size_t
pass_up_allowance(const struct edge *e)
{
	size_t left = up_left(e);

	if (left == 0 || buf_len(&e->to_broker) > 0 || buf_len(&e->in) > 0)
		return 0;
	return pass_room(&e->up, left);
}

bool
pass_down_waits(const struct edge *e)
{
	return e->down.len > 0 || (down_left(e) > 0 && buf_len(&e->to_visitor) > 0);
}

bool
pass_up_waits(const struct edge *e)
{
	return e->up.len > 0 ||
	       (up_left(e) > 0 && (buf_len(&e->to_broker) > 0 || buf_len(&e->in) > 0));
}

/* Moves up to max bytes from fd into the pipe: the count, 0 when fd's
 * stream ended (or failed), -1 when nothing can be moved now. */
ssize_t
pass_fill(struct pass *p, int fd, size_t max)
{
	ssize_t n;

	if (pass_open(p) == -1)
		return -1;
	n = splice(fd, NULL, p->fd[1], NULL, max, PASS_FLAGS);
	if (n > 0)
		p->len += (size_t)n;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return 0;
	return n;
}

/* Moves what the pipe holds to fd: 0, or -1 when fd is gone. */
int
pass_drain(struct pass *p, int fd)
{
	ssize_t n = splice(p->fd[0], NULL, fd, NULL, p->len, PASS_FLAGS);

	if (n > 0) {
		p->len -= (size_t)n;
		return 0;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}
