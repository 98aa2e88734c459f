/*
 * etcd v3 over its JSON gateway: one HTTP/1.1 POST a call, on a new
 * connection ("Connection: close"), to the endpoint that answered last;
 * on a failure the next one is tried, each within the call's deadline.
 */
#include "etcd.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

/* A reply larger than this is refused: a listing of every live tunnel
 * in a cluster (about 1 KiB a tunnel) fits many times over. */
#define ETCD_BODY_MAX_BYTES (64 * 1024 * 1024)
/* A request we send: a key, a value and a little JSON. */
#define ETCD_REQUEST_MAX_BYTES (64 * 1024)

static void
why(struct etcd *e, const char *fmt, const char *a, const char *b)
{
	snprintf(e->why, sizeof e->why, fmt, a, b);
}

static int
add_endpoint(struct etcd *e, const char *item, size_t n)
{
	char text[128];
	const char *colon;

	if (n >= sizeof text || e->n == ETCD_ENDPOINTS_MAX) {
		why(e, "too many endpoints or one too long (at most %s)%s", "16", "");
		return -1;
	}
	memcpy(text, item, n);
	text[n] = '\0';
	if (strncmp(text, "https://", 8) == 0) {
		why(e, "%s: https is not supported (etcd on a private network, http://)%s",
		    text, "");
		return -1;
	}
	item = strncmp(text, "http://", 7) == 0 ? text + 7 : text;
	colon = strrchr(item, ':');
	if (colon == NULL || colon == item || colon[1] == '\0' ||
	    (size_t)(colon - item) >= sizeof e->host[0] ||
	    strlen(colon + 1) >= sizeof e->port[0] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		why(e, "%s: want http://HOST:PORT%s", text, "");
		return -1;
	}
	snprintf(e->host[e->n], sizeof e->host[0], "%.*s", (int)(colon - item), item);
	snprintf(e->port[e->n], sizeof e->port[0], "%s", colon + 1);
	e->n++;
	return 0;
}

int
etcd_init(struct etcd *e, const char *endpoints, int timeout_ms)
{
	const char *p = endpoints, *comma;

	memset(e, 0, sizeof *e);
	e->timeout_ms = timeout_ms;
	while (*p) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (comma > p && add_endpoint(e, p, (size_t)(comma - p)) == -1)
			return -1;
		p = *comma ? comma + 1 : comma;
	}
	if (e->n == 0) {
		why(e, "no endpoints given%s%s", "", "");
		return -1;
	}
	return 0;
}

static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do
		rc = poll(&p, 1, ms);
	while (rc == -1 && errno == EINTR);
	if (rc == 0)
		errno = ETIMEDOUT;
	return rc == 1 ? 0 : -1;
}

ssize_t
etcd_read(int fd, void *p, size_t n, int ms)
{
	ssize_t r;

	if (wait_fd(fd, POLLIN, ms) == -1)
		return -1;
	do
		r = read(fd, p, n);
	while (r == -1 && errno == EINTR);
	return r;
}

static int
connect_to(struct etcd *e, int i)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	int fd = -1, err = 0;
	socklen_t len = sizeof err;

	if (getaddrinfo(e->host[i], e->port[i], &hints, &ai) != 0 || ai == NULL) {
		why(e, "%s: cannot resolve%s", e->host[i], "");
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 && errno != EINPROGRESS) ||
	    wait_fd(fd, POLLOUT, e->timeout_ms) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
		why(e, "%s: cannot connect: %s", e->host[i], strerror(err ? err : errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int
send_all(int fd, const char *p, size_t n, int ms)
{
	ssize_t w;

	while (n > 0) {
		if (wait_fd(fd, POLLOUT, ms) == -1)
			return -1;
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to the end of the head; parses status and framing. */
static int
read_head(struct etcd *e, int fd, struct etcd_head *h)
{
	char *end, *te;
	size_t len = 0, head;
	ssize_t r;

	for (;;) {
		if (len == sizeof h->rest - 1) {
			why(e, "reply head too large%s%s", "", "");
			return -1;
		}
		r = etcd_read(fd, h->rest + len, sizeof h->rest - 1 - len, e->timeout_ms);
		if (r <= 0) {
			why(e, "no reply: %s%s", r == 0 ? "connection closed" : strerror(errno), "");
			return -1;
		}
		len += (size_t)r;
		h->rest[len] = '\0';
		if ((end = strstr(h->rest, "\r\n\r\n")) != NULL)
			break;
	}
	if (sscanf(h->rest, "HTTP/1.%*d %d", &h->status) != 1) {
		why(e, "not an HTTP reply%s%s", "", "");
		return -1;
	}
	*end = '\0';
	te = strcasestr(h->rest, "\r\ntransfer-encoding:");
	h->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
	head = (size_t)(end - h->rest) + 4;
	h->rest_len = len - head;
	memmove(h->rest, h->rest + head, h->rest_len);
	return 0;
}

int
etcd_post_open(struct etcd *e, const char *path, const char *body, struct etcd_head *h)
{
	char req[ETCD_REQUEST_MAX_BYTES];
	int tries, i, fd, n;

	for (tries = 0; tries < e->n; tries++) {
		i = (e->cur + tries) % e->n;
		n = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
		             "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		             "Connection: close\r\n\r\n%s", path, e->host[i], e->port[i],
		             strlen(body), body);
		if (n < 0 || (size_t)n >= sizeof req) {
			why(e, "request too large%s%s", "", "");
			return -1;
		}
		if ((fd = connect_to(e, i)) == -1)
			continue;
		if (send_all(fd, req, (size_t)n, e->timeout_ms) == 0 && read_head(e, fd, h) == 0) {
			e->cur = i;
			return fd;
		}
		if (e->why[0] == '\0')
			why(e, "%s: cannot send: %s", e->host[i], strerror(errno));
		close(fd);
	}
	return -1;
}

/* Chunked framing undone in place; -1 if malformed. */
static int
dechunk(char *p, size_t *len)
{
	size_t in = 0, out = 0, size;
	char *end;

	for (;;) {
		errno = 0;
		size = strtoul(p + in, &end, 16);
		if (errno || end == p + in || (end = strstr(end, "\r\n")) == NULL)
			return -1;
		in = (size_t)(end - p) + 2;
		if (size == 0)
			break;
		if (size > *len - in)
			return -1;
		memmove(p + out, p + in, size);
		out += size;
		in += size + 2;
		if (in > *len)
			return -1;
	}
	*len = out;
	p[out] = '\0';
	return 0;
}

/* The body to the end of the connection. */
static char *
read_body(struct etcd *e, int fd, struct etcd_head *h, size_t *len)
{
	size_t cap = h->rest_len + 4096, n = h->rest_len;
	char *p = malloc(cap), *q;
	ssize_t r;

	if (p == NULL)
		return NULL;
	memcpy(p, h->rest, n);
	for (;;) {
		if (cap - n < 2048) {
			if (cap >= ETCD_BODY_MAX_BYTES || (q = realloc(p, cap * 2)) == NULL) {
				why(e, "reply too large%s%s", "", "");
				free(p);
				return NULL;
			}
			p = q;
			cap *= 2;
		}
		r = etcd_read(fd, p + n, cap - n - 1, e->timeout_ms);
		if (r == 0)
			break;
		if (r < 0) {
			why(e, "reply cut short: %s%s", strerror(errno), "");
			free(p);
			return NULL;
		}
		n += (size_t)r;
	}
	p[n] = '\0';
	if (h->chunked && dechunk(p, &n) == -1) {
		why(e, "malformed chunked reply%s%s", "", "");
		free(p);
		return NULL;
	}
	*len = n;
	return p;
}

/* One call against the endpoints from e->cur on: the reply, or NULL. */
static json_t *
call_once(struct etcd *e, const char *path, const char *body)
{
	struct etcd_head h;
	json_error_t jerr;
	json_t *reply, *res, *err;
	size_t len = 0;
	char *text;
	int fd;

	if ((fd = etcd_post_open(e, path, body, &h)) == -1)
		return NULL;
	text = read_body(e, fd, &h, &len);
	close(fd);
	if (text == NULL)
		return NULL;
	reply = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	free(text);
	if (reply == NULL || !json_is_object(reply)) {
		why(e, "%s: reply is not JSON%s", path, "");
		json_decref(reply);
		return NULL;
	}
	/* A stream's single message comes as {"result":...}. */
	if ((res = json_object_get(reply, "result")) != NULL && json_is_object(res)) {
		json_incref(res);
		json_decref(reply);
		reply = res;
	}
	err = json_object_get(reply, "error");
	if (h.status != 200 || (err && !json_is_null(err))) {
		const char *msg = json_string_value(json_object_get(reply, "message"));
		why(e, "%s: %s", path, msg ? msg : json_string_value(err) ? json_string_value(err)
		    : "error reply");
		json_decref(reply);
		return NULL;
	}
	return reply;
}

json_t *
etcd_call(struct etcd *e, const char *path, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_t *reply = NULL;
	int tries;

	if (text == NULL) {
		why(e, "out of memory%s%s", "", "");
		return NULL;
	}
	/* An endpoint that answers with an error (no leader, a member cut
	 * off) is passed over like one that does not answer. */
	for (tries = 0; tries < e->n && reply == NULL; tries++) {
		e->why[0] = '\0';
		reply = call_once(e, path, text);
		if (reply == NULL)
			e->cur = (e->cur + 1) % e->n;
	}
	free(text);
	return reply;
}

char *
etcd_b64(const char *s, size_t n)
{
	size_t size = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(size);

	if (out)
		sodium_bin2base64(out, size, (const unsigned char *)s, n,
		                  sodium_base64_VARIANT_ORIGINAL);
	return out;
}

char *
etcd_unb64(const char *s)
{
	size_t n = strlen(s), len = 0;
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	if (sodium_base642bin((unsigned char *)out, n, s, n, NULL, &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 || memchr(out, 0, len)) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

int64_t
etcd_int(json_t *o, const char *field)
{
	json_t *v = json_object_get(o, field);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

void
etcd_prefix_end(const char *prefix, char *out, size_t size)
{
	size_t n = strlen(prefix);

	snprintf(out, size, "%s", prefix);
	if (n > 0 && n < size)
		out[n - 1]++;
}

int
etcd_kv_parse(json_t *o, struct etcd_kv *kv)
{
	const char *k = json_string_value(json_object_get(o, "key"));
	const char *v = json_string_value(json_object_get(o, "value"));

	memset(kv, 0, sizeof *kv);
	if (k == NULL || (kv->key = etcd_unb64(k)) == NULL)
		return -1;
	if (v && (kv->value = etcd_unb64(v)) == NULL) {
		free(kv->key);
		kv->key = NULL;
		return -1;
	}
	kv->create_rev = etcd_int(o, "create_revision");
	kv->mod_rev = etcd_int(o, "mod_revision");
	kv->lease = etcd_int(o, "lease");
	return 0;
}

void
etcd_kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	kv->key = kv->value = NULL;
}

void
etcd_kvs_free(struct etcd_kv *kvs, int n)
{
	int i;

	for (i = 0; i < n; i++)
		etcd_kv_free(&kvs[i]);
	free(kvs);
}
