/*
 * The inspector (`expose --inspect`, 127.0.0.1:4040 by default): a web
 * page of the last INSPECT_KEEP requests and responses, live, with
 * replay.  Memory is bounded: a ring of exchanges, bodies capped at
 * INSPECT_BODY_BYTES each.
 *
 *   GET  /                          the page (inspect.html, built in)
 *   GET  /api/requests              summaries, oldest first
 *   GET  /api/requests/ID           one exchange: heads, bodies (base64)
 *   GET  /api/events                server-sent events: each new summary
 *   POST /api/requests/ID/replay    sends it to the app again; a JSON body
 *                                   {method, path, headers: [[k, v]...],
 *                                   body_base64} edits it first
 *
 * Replays go straight to the local target, not through the tunnel, and
 * are kept like any exchange, marked with what they replay.
 *
 * Who may use it.  The captured requests hold visitors' cookies and
 * credentials, and a replay sends anything to the app, so:
 *   - Host must name the inspector by address or as localhost, with its
 *     port (a DNS-rebinding page names it otherwise);
 *   - an Origin, when sent, must be the inspector's own (another site's
 *     form or fetch sends its own);
 *   - every API call carries the run's token, a random value printed in
 *     the URL expose shows (http://127.0.0.1:4040/?token=...), as notebook
 *     servers do: other local users cannot guess it, and no other origin
 *     can read it.  The page sends it as X-Expose-Token; the event stream,
 *     which cannot send headers, as ?token=; a POST must use the header
 *     (a cross-origin page cannot set one without a preflight, which is
 *     never granted);
 *   - every answer forbids framing and sniffing, and the page runs under a
 *     content security policy that allows its own script only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "client.h"
#include "edit.h"
#include "host.h"
#include "log.h"
#include "page.h"
#include "sock.h"

/* The page, from cmd/expose/inspect.html (generated). */
extern const unsigned char inspect_html[];
extern const size_t inspect_html_len;

#define INSPECT_REQUEST_MAX_BYTES (INSPECT_BODY_BYTES + 16 * 1024)
#define INSPECT_IDLE_TIMEOUT_S 30
/* Host and Origin values the inspector compares, at most. */
#define INSPECT_HOST_BYTES 300
/* The run's token: random bytes, shown as hex. */
#define INSPECT_TOKEN_BYTES 16
#define INSPECT_TOKEN_HEX (2 * INSPECT_TOKEN_BYTES)
#define INSPECT_TOKEN_HEADER "x-expose-token"
/* What every answer says about framing, sniffing and referrers. */
#define INSPECT_SAFETY_FIELDS \
	"X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\nCross-Origin-Resource-Policy: same-origin\r\n" \
	"Cross-Origin-Opener-Policy: same-origin\r\n"
/* The page's policy; its script is allowed by hash (csp_for_page). */
#define INSPECT_CSP_FORMAT \
	"Content-Security-Policy: default-src 'none'; script-src 'sha256-%s'; " \
	"style-src 'unsafe-inline'; img-src data:; connect-src 'self'; " \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"
#define INSPECT_CSP_BYTES 512
#define INSPECT_SSE_MAX 32
/* Bytes written to an inspector connection per writeable callback. */
#define INSPECT_WRITE_BYTES (16 * 1024)
/* Events held for one slow page before it is dropped. */
#define INSPECT_SSE_BUFFER_BYTES (4 * 1024 * 1024)

struct entry {
	unsigned id;
	unsigned replay_of;        /* 0: a visitor's request */
	const struct target *t;
	struct exchange *x;
	time_t when;
};

enum conn_kind { C_REQUEST, C_SSE };

struct conn {
	struct lws *wsi;
	enum conn_kind kind;
	struct buf in;
	struct buf out;
	bool close_after;
};

struct inspector {
	char port[8];                 /* what it listens on: Host must carry it */
	char token[INSPECT_TOKEN_HEX + 1];
	char url[96];                 /* http://ADDR/?token=TOKEN, for people */
	char csp[INSPECT_CSP_BYTES];  /* the page's Content-Security-Policy field */
	struct entry ring[INSPECT_KEEP];
	unsigned next_id;
	unsigned count;
	struct conn *sse[INSPECT_SSE_MAX];
	int nsse;
};

/* --- the store --- */

static struct entry *
find(struct inspector *in, unsigned id)
{
	unsigned i;

	for (i = 0; i < INSPECT_KEEP; i++)
		if (in->ring[i].x && in->ring[i].id == id)
			return &in->ring[i];
	return NULL;
}

static json_t *
summary(const struct entry *e)
{
	const struct exchange *x = e->x;
	char when[32];
	struct tm tm;

	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&e->when, &tm));
	return json_pack("{s:I, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:s, s:b, s:o*}",
	                 "id", (json_int_t)e->id, "time", when, "method", x->method,
	                 "path", x->path, "status", x->status,
	                 "duration_ms", (json_int_t)(x->end_ms - x->start_ms),
	                 "request_bytes", (json_int_t)x->request_bytes,
	                 "response_bytes", (json_int_t)x->response_bytes,
	                 "tunnel", e->t ? e->t->url : "", "target", e->t ? e->t->label : "",
	                 "upgraded", x->upgraded, "replay_of",
	                 e->replay_of ? json_integer(e->replay_of) : NULL);
}

/* Text for people; bytes JSON cannot hold become '?'. */
static json_t *
text(const struct buf *b)
{
	size_t i, n = buf_len(b);
	char *s = malloc(n + 1);
	json_t *j;

	if (s == NULL)
		return json_string("");
	for (i = 0; i < n; i++) {
		uint8_t ch = buf_data(b)[i];
		s[i] = (ch >= 0x20 && ch < 0x7f) || ch == '\r' || ch == '\n' || ch == '\t' ? (char)ch : '?';
	}
	s[n] = '\0';
	j = json_string(s);
	free(s);
	return j ? j : json_string("");
}

static json_t *
base64(const struct buf *b)
{
	size_t n = buf_len(b);
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	json_t *j;

	if (s == NULL)
		return json_string("");
	EVP_EncodeBlock((unsigned char *)s, buf_data(b), (int)n);
	j = json_string(s);
	free(s);
	return j;
}

static json_t *
side(const struct buf *head, const struct buf *body, uint64_t total)
{
	return json_pack("{s:o, s:o, s:I, s:b}", "head", text(head), "body_base64", base64(body),
	                 "body_size", (json_int_t)total,
	                 "body_truncated", (json_int_t)buf_len(body) < (json_int_t)total);
}

static json_t *
detail(const struct entry *e)
{
	json_t *j = summary(e);

	json_object_set_new(j, "request", side(&e->x->request_head, &e->x->request_body,
	                                       e->x->request_bytes));
	json_object_set_new(j, "response", side(&e->x->response_head, &e->x->response_body,
	                                        e->x->response_bytes));
	return j;
}

static void
conn_send(struct conn *c, const char *p, size_t n)
{
	if (buf_append(&c->out, p, n) == -1)
		c->close_after = true;    /* a reader that does not keep up */
	lws_callback_on_writable(c->wsi);
}

static void
push_event(struct inspector *in, const struct entry *e)
{
	json_t *j = summary(e);
	char *s = json_dumps(j, JSON_COMPACT);
	char line[16];
	int i;

	json_decref(j);
	if (s == NULL)
		return;
	for (i = 0; i < in->nsse; i++) {
		snprintf(line, sizeof line, "data: ");
		conn_send(in->sse[i], line, strlen(line));
		conn_send(in->sse[i], s, strlen(s));
		conn_send(in->sse[i], "\n\n", 2);
	}
	free(s);
}

static void
store(struct client *c, const struct target *t, struct exchange *x, unsigned replay_of)
{
	struct inspector *in = c->inspect;
	struct entry *e = &in->ring[in->next_id % INSPECT_KEEP];

	exchange_free(e->x);
	e->id = ++in->next_id;
	e->replay_of = replay_of;
	e->t = t;
	e->x = x;
	e->when = time(NULL);
	if (in->count < INSPECT_KEEP)
		in->count++;
	push_event(in, e);
}

void
inspect_add(struct client *c, const struct target *t, struct exchange *x)
{
	store(c, t, x, 0);
}

/* --- replay --- */

struct replay {
	struct client *c;
	const struct target *t;
	unsigned of;
	struct exchange_stream *xs;
	struct buf request;
	struct buf scratch;
};

static void
replay_done(void *ctx, struct exchange *x)
{
	struct replay *r = ctx;

	requestlog_line(r->c, r->t, x);
	store(r->c, r->t, x, r->of);
}

static void
replay_free(struct replay *r)
{
	exchange_stream_free(r->xs);
	buf_free(&r->request);
	buf_free(&r->scratch);
	free(r);
}

static int
replay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len)
{
	struct replay *r = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_CONNECTED:
		if (r && exchange_request(r->xs, buf_data(&r->request), buf_len(&r->request),
		                          &r->scratch) == 0) {
			lws_write(wsi, (unsigned char *)(uintptr_t)buf_data(&r->scratch),
			          buf_len(&r->scratch), LWS_WRITE_RAW);
			buf_consume(&r->scratch, buf_len(&r->scratch));
		}
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (r) {
			buf_consume(&r->scratch, buf_len(&r->scratch));
			exchange_response(r->xs, in, len, &r->scratch);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (r)
			log_warn("replay: nothing answered on %s", r->t->label);
		/* fall through */
	case LWS_CALLBACK_RAW_CLOSE:
		if (r) {
			lws_set_opaque_user_data(wsi, NULL);
			exchange_close(r->xs);
			replay_free(r);
		}
		return 0;
	default:
		return 0;
	}
}


static int
replay(struct client *c, struct entry *e, const char *edits, size_t edits_len, unsigned *id,
       const char **why)
{
	const struct edit_source src = {
		.method = e->x->method, .path = e->x->path, .head = &e->x->request_head,
		.body = &e->x->request_body, .body_bytes = e->x->request_bytes,
	};
	struct lws_client_connect_info ci;
	struct exchange_options o = { .capture_bytes = INSPECT_BODY_BYTES };
	struct replay *r = calloc(1, sizeof *r);

	if (r == NULL || e->t == NULL) {
		free(r);
		*why = "out of memory";
		return -1;
	}
	r->c = c;
	r->t = e->t;
	r->of = e->id;
	buf_init(&r->request, INSPECT_REQUEST_MAX_BYTES);
	buf_init(&r->scratch, INSPECT_REQUEST_MAX_BYTES + EXCHANGE_HEAD_MAX_BYTES);
	r->xs = exchange_stream_new(&o, client_now_ms, replay_done, r);
	if (r->xs == NULL || edit_build(&src, edits, edits_len, &r->request, why) == -1) {
		replay_free(r);
		return -1;
	}
	memset(&ci, 0, sizeof ci);
	ci.context = c->ctx;
	ci.vhost = c->vh;
	ci.address = e->t->host;
	ci.port = e->t->port;
	ci.method = "RAW";
	ci.protocol = "expose-replay";
	ci.local_protocol_name = "expose-replay";
	ci.opaque_user_data = r;
	if (lws_client_connect_via_info(&ci) == NULL) {
		*why = "cannot connect to the target";
		return -1;    /* the error callback freed r */
	}
	*id = c->inspect->next_id + 1;
	return 0;
}

/* --- the HTTP side --- */

static void
respond_with(struct conn *c, int status, const char *type, const char *extra,
             const char *body, size_t len)
{
	char head[1024];
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s"
	                 "Connection: close\r\n\r\n", status, page_reason(status), type, len,
	                 INSPECT_SAFETY_FIELDS, extra);

	conn_send(c, head, (size_t)n);
	conn_send(c, body, len);
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
		if ((e = find(in, i)) != NULL)
			json_array_append_new(arr, summary(e));
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
	conn_send(c, head, sizeof head - 1);
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
		e = find(cl->inspect, id);
		if (e)
			respond_json(c, 200, detail(e));
		else
			respond_error(c, 404, "no such request (the inspector keeps the last 100)");
	} else if (!strcmp(method, "POST") && sscanf(path, "/api/requests/%u/replay", &id) == 1) {
		e = find(cl->inspect, id);
		if (e == NULL) {
			respond_error(c, 404, "no such request (the inspector keeps the last 100)");
			return;
		}
		if (replay(cl, e, body, body_len, &new_id, &why) == -1)
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
	struct client *cl = client;
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

/* The page's Content-Security-Policy: its one inline script, by hash. */
static int
csp_for_page(char *out, size_t size)
{
	const char *page = (const char *)inspect_html, *start, *end;
	unsigned char hash[crypto_hash_sha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
	                                   sodium_base64_VARIANT_ORIGINAL)];

	start = memmem(page, inspect_html_len, "<script>", 8);
	end = start ? memmem(start, inspect_html_len - (size_t)(start - page), "</script>", 9) : NULL;
	if (end == NULL)
		return -1;
	start += 8;
	crypto_hash_sha256(hash, (const unsigned char *)start, (unsigned long long)(end - start));
	sodium_bin2base64(b64, sizeof b64, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL);
	return snprintf(out, size, INSPECT_CSP_FORMAT, b64) < (int)size ? 0 : -1;
}

const char *
inspect_url(const struct client *c)
{
	return c->inspect ? c->inspect->url : "";
}

int
inspect_start(struct client *c, const char *listen)
{
	unsigned char token[INSPECT_TOKEN_BYTES];
	lws_sock_file_fd_type u;
	struct lws *wsi;
	int fd = sock_listen_tcp(listen);

	if (fd == -1) {
		log_err("--inspect %s: %s (give another address, e.g. --inspect=127.0.0.1:4041)",
		        listen, strerror(errno));
		return -1;
	}
	c->inspect = calloc(1, sizeof *c->inspect);
	if (c->inspect == NULL) {
		close(fd);
		log_err("--inspect: out of memory");
		return -1;
	}
	snprintf(c->inspect->port, sizeof c->inspect->port, "%s", strrchr(listen, ':') + 1);
	if (sodium_init() < 0 || csp_for_page(c->inspect->csp, sizeof c->inspect->csp) == -1) {
		close(fd);
		log_err("--inspect: cannot set up its page (a bug)");
		return -1;
	}
	randombytes_buf(token, sizeof token);
	sodium_bin2hex(c->inspect->token, sizeof c->inspect->token, token, sizeof token);
	snprintf(c->inspect->url, sizeof c->inspect->url, "http://%s/?token=%s", listen,
	         c->inspect->token);
	u.filefd = fd;
	wsi = lws_adopt_descriptor_vhost(c->vh, LWS_ADOPT_RAW_FILE_DESC, u, "expose-inspect", NULL);
	if (wsi == NULL) {
		close(fd);
		log_err("--inspect %s: cannot serve it", listen);
		return -1;
	}
	return 0;
}

void
inspect_stop(struct client *c)
{
	struct inspector *in = c->inspect;
	unsigned i;

	if (in == NULL)
		return;
	for (i = 0; i < INSPECT_KEEP; i++)
		exchange_free(in->ring[i].x);
	free(in);
	c->inspect = NULL;
}

int
inspect_replay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len)
{
	return replay_callback(wsi, reason, user, in, len);
}
