/*
 * The inspector's HTTP side: one request a connection, or an event stream;
 * who may use it (loopback Host, its own Origin, the run's token: see
 * inspect.c) and what every answer carries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "client.h"
#include "inspect.h"
#include "host.h"
#include "log.h"
#include "page.h"

void
inspect_conn_send(struct conn *c, const char *p, size_t n)
{
	if (buf_append(&c->out, p, n) == -1)
		c->close_after = true;    /* a reader that does not keep up */
	lws_callback_on_writable(c->wsi);
}

static void
respond_with(struct conn *c, int status, const char *type, const char *extra,
             const char *body, size_t len)
{
	char head[1024];
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s"
	                 "Connection: close\r\n\r\n", status, page_reason(status), type, len,
	                 INSPECT_SAFETY_FIELDS, extra);

	inspect_conn_send(c, head, (size_t)n);
	inspect_conn_send(c, body, len);
	c->close_after = true;
}

static void
respond(struct conn *c, int status, const char *type, const char *body, size_t len)
{
	respond_with(c, status, type, "", body, len);
}

static void
respond_json(struct conn *c, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	respond(c, status, "application/json", s ? s : "{}", s ? strlen(s) : 2);
	free(s);
}

static void
respond_error(struct conn *c, int status, const char *why)
{
	respond_json(c, status, json_pack("{s:s}", "error", why));
}

static void
list(struct client *cl, struct conn *c)
{
	struct inspector *in = cl->inspect;
	json_t *arr = json_array();
	unsigned i, first = in->next_id > INSPECT_KEEP ? in->next_id - INSPECT_KEEP + 1 : 1;
	struct entry *e;

	for (i = first; i <= in->next_id; i++)
		if ((e = inspect_find(in, i)) != NULL)
			json_array_append_new(arr, inspect_summary(e));
	respond_json(c, 200, json_pack("{s:o}", "requests", arr));
}

static void
start_sse(struct inspector *in, struct conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	                           "Cache-Control: no-store\r\n" INSPECT_SAFETY_FIELDS
	                           "Connection: keep-alive\r\n\r\n"
	                           ": expose inspector\n\n";

	if (in->nsse == INSPECT_SSE_MAX) {
		respond_error(c, 400, "too many event streams open");
		return;
	}
	c->kind = C_SSE;
	in->sse[in->nsse++] = c;
	c->out.limit = INSPECT_SSE_BUFFER_BYTES;
	inspect_conn_send(c, head, sizeof head - 1);
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
}

/* The value of a field of head (case-insensitive name), or NULL. */
static const char *
head_field(const char *p, size_t len, const char *name)
{
	const char *end = p + len, *eol;
	size_t n = strlen(name);

	for (; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			return NULL;
		if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0)
			return p + n + 1;
	}
	return NULL;
}

/* A field's value without the spaces around it, into out; false if absent
 * or too long. */
static bool
field_copy(const char *head, size_t len, const char *name, char *out, size_t size)
{
	const char *v = head_field(head, len, name), *eol;
	size_t n;

	if (v == NULL)
		return false;
	eol = strstr(v, "\r\n");
	while (*v == ' ' || *v == '\t')
		v++;
	n = (size_t)(eol - v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= size)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* Only pages loaded from the inspector itself may use it: Host must name
 * it by address or as localhost (a DNS-rebinding page names it otherwise),
 * and an Origin, when sent, must be that same host (another site's form or
 * fetch sends its own). */
static bool
trusted(const struct inspector *in, const char *head, size_t len)
{
	char host[INSPECT_HOST_BYTES], origin[INSPECT_HOST_BYTES + 8], name[INSPECT_HOST_BYTES];
	char *colon;

	if (!field_copy(head, len, "host", host, sizeof host))
		return false;
	colon = strrchr(host, ':');
	if (colon == NULL || strcmp(colon + 1, in->port) != 0)
		return false;
	snprintf(name, sizeof name, "%.*s", (int)(colon - host), host);
	if (name[0] == '[' && name[strlen(name) - 1] == ']') {
		memmove(name, name + 1, strlen(name));
		name[strlen(name) - 1] = '\0';
	}
	if (strcmp(name, "localhost") != 0 && !host_is_address(name))
		return false;
	if (!field_copy(head, len, "origin", origin, sizeof origin))
		return head_field(head, len, "origin") == NULL;
	return strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

/* The run's token, from X-Expose-Token or, where allowed (query: the
 * request's query string, or NULL), from ?token=. */
static bool
token_ok(const struct inspector *in, const char *head, size_t len, const char *query)
{
	char given[INSPECT_TOKEN_HEX + 1];
	const char *p;
	size_t n = 0;

	if (field_copy(head, len, INSPECT_TOKEN_HEADER, given, sizeof given)) {
		n = strlen(given);
	} else if (query) {
		for (p = query; p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
			if (strncmp(p, "token=", 6) == 0) {
				n = strcspn(p + 6, "&");
				if (n > INSPECT_TOKEN_HEX)
					return false;
				memcpy(given, p + 6, n);
				given[n] = '\0';
				break;
			}
		}
	}
	return n == INSPECT_TOKEN_HEX && sodium_memcmp(given, in->token, n) == 0;
}

/* One request, whole: route it. */
static void
serve(struct client *cl, struct conn *c, const char *req, size_t head_len, const char *body,
      size_t body_len)
{
	char method[8], path[256], *query, why_token[160];
	unsigned id = 0, new_id = 0;
	struct entry *e;
	const char *why = NULL;
	bool get;

	if (sscanf(req, "%7s %255s", method, path) != 2) {
		respond_error(c, 400, "malformed request");
		return;
	}
	get = strcmp(method, "GET") == 0;
	query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	if (get && !strcmp(path, "/")) {
		/* The page holds no data: it asks the API, with the token. */
		respond_with(c, 200, "text/html; charset=utf-8", cl->inspect->csp,
		             (const char *)inspect_html, inspect_html_len);
		return;
	}
	if (!token_ok(cl->inspect, req, head_len, get ? query : NULL)) {
		snprintf(why_token, sizeof why_token, "the inspector needs its token: open the "
		         "address expose printed (http://%s/?token=...)", cl->inspect_addr);
		respond_error(c, 403, why_token);
		return;
	}
	if (!strcmp(method, "GET") && !strcmp(path, "/api/requests")) {
		list(cl, c);
	} else if (!strcmp(method, "GET") && !strcmp(path, "/api/events")) {
		start_sse(cl->inspect, c);
	} else if (!strcmp(method, "GET") && sscanf(path, "/api/requests/%u", &id) == 1 &&
	           strspn(path + 14, "0123456789") == strlen(path + 14)) {
		e = inspect_find(cl->inspect, id);
		if (e)
			respond_json(c, 200, inspect_detail(e));
		else
			respond_error(c, 404, "no such request (the inspector keeps the last 100)");
	} else if (!strcmp(method, "POST") && sscanf(path, "/api/requests/%u/replay", &id) == 1) {
		e = inspect_find(cl->inspect, id);
		if (e == NULL) {
			respond_error(c, 404, "no such request (the inspector keeps the last 100)");
			return;
		}
		if (inspect_replay(cl, e, body, body_len, &new_id, &why) == -1)
			respond_error(c, 400, why);
		else
			respond_json(c, 202, json_pack("{s:I}", "replay_of", (json_int_t)id));
	} else {
		respond_error(c, 404, "not here");
	}
}

static void
try_request(struct client *cl, struct conn *c)
{
	const char *p = (const char *)buf_data(&c->in), *end, *cl_field;
	size_t head, want = 0;

	end = memmem(p, buf_len(&c->in), "\r\n\r\n", 4);
	if (end == NULL)
		return;
	head = (size_t)(end - p) + 4;
	cl_field = head_field(p, head, "content-length");
	if (cl_field)
		want = strtoul(cl_field, NULL, 10);
	if (want > INSPECT_REQUEST_MAX_BYTES) {
		respond_error(c, 400, "too large");
		return;
	}
	if (buf_len(&c->in) < head + want)
		return;
	if (buf_append(&c->in, "", 1) == -1) {    /* NUL after it, for sscanf */
		respond_error(c, 400, "too large");
		return;
	}
	p = (const char *)buf_data(&c->in);      /* the append may have moved it */
	if (!trusted(cl->inspect, p, head)) {
		char why[128];
		snprintf(why, sizeof why, "the inspector answers only its own pages: open it at "
		         "http://127.0.0.1:%s/ or http://localhost:%s/", cl->inspect->port,
		         cl->inspect->port);
		respond_error(c, 403, why);
		return;
	}
	serve(cl, c, p, head, p + head, want);
}

static void
conn_free(struct client *cl, struct conn *c)
{
	struct inspector *in = cl->inspect;
	int i;

	for (i = 0; in && i < in->nsse; i++) {
		if (in->sse[i] == c) {
			in->sse[i] = in->sse[--in->nsse];
			break;
		}
	}
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Sends a piece of what is queued; closes once all of it is out, if asked. */
static int
conn_writeable(struct conn *c, struct lws *wsi)
{
	size_t n = buf_len(&c->out);

	if (n > INSPECT_WRITE_BYTES)
		n = INSPECT_WRITE_BYTES;
	if (n > 0) {
		if (lws_write(wsi, (unsigned char *)(uintptr_t)buf_data(&c->out), n,
		              LWS_WRITE_RAW) < (int)n)
			return -1;
		buf_consume(&c->out, n);
	}
	if (buf_len(&c->out) > 0 || (c->close_after && lws_send_pipe_choked(wsi))) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	return c->close_after ? -1 : 0;
}

int
inspect_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
	struct client *cl = client_of(wsi);
	struct conn *c = lws_get_opaque_user_data(wsi);
	int fd;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:    /* the listener: accept */
		while ((fd = accept4(lws_get_socket_fd(wsi), NULL, NULL,
		                     SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
			lws_sock_file_fd_type u = { .sockfd = fd };
			lws_adopt_descriptor_vhost(cl->vh, LWS_ADOPT_SOCKET, u, "expose-inspect", NULL);
		}
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
		c = calloc(1, sizeof *c);
		if (c == NULL)
			return -1;
		c->wsi = wsi;
		buf_init(&c->in, INSPECT_REQUEST_MAX_BYTES + 1);
		buf_init(&c->out, INSPECT_REQUEST_MAX_BYTES + 1024 * 1024);
		lws_set_opaque_user_data(wsi, c);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, INSPECT_IDLE_TIMEOUT_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (c == NULL || c->kind == C_SSE || c->close_after)
			return 0;
		if (buf_append(&c->in, in, len) == -1)
			respond_error(c, 400, "too large");
		else
			try_request(cl, c);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c == NULL)
			return -1;
		return conn_writeable(c, wsi);
	case LWS_CALLBACK_RAW_CLOSE:
		if (c) {
			lws_set_opaque_user_data(wsi, NULL);
			conn_free(cl, c);
		}
		return 0;
	default:
		return 0;
	}
}

