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
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "client.h"
#include "inspect.h"
#include "log.h"
#include "sock.h"

/* --- the store --- */

struct entry *
inspect_find(struct inspector *in, unsigned id)
{
	unsigned i;

	for (i = 0; i < INSPECT_KEEP; i++)
		if (in->ring[i].x && in->ring[i].id == id)
			return &in->ring[i];
	return NULL;
}

json_t *
inspect_summary(const struct entry *e)
{
	const struct exchange *x = e->x;
	char when[32];
	struct tm tm;

	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&e->when, &tm));
	return json_pack("{s:I, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:s, s:b, s:s, s:o*}",
	                 "id", (json_int_t)e->id, "time", when, "method", x->method,
	                 "path", x->path, "status", x->status,
	                 "duration_ms", (json_int_t)(x->end_ms - x->start_ms),
	                 "request_bytes", (json_int_t)x->request_bytes,
	                 "response_bytes", (json_int_t)x->response_bytes,
	                 "tunnel", e->t ? e->t->url : "", "target", e->t ? e->t->label : "",
	                 "upgraded", x->upgraded, "end", exchange_end_text(x), "replay_of",
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

json_t *
inspect_detail(const struct entry *e)
{
	json_t *j = inspect_summary(e);

	json_object_set_new(j, "request", side(&e->x->request_head, &e->x->request_body,
	                                       e->x->request_bytes));
	json_object_set_new(j, "response", side(&e->x->response_head, &e->x->response_body,
	                                        e->x->response_bytes));
	return j;
}

static void
push_event(struct inspector *in, const struct entry *e)
{
	json_t *j = inspect_summary(e);
	char *s = json_dumps(j, JSON_COMPACT);
	char line[16];
	int i;

	json_decref(j);
	if (s == NULL)
		return;
	for (i = 0; i < in->nsse; i++) {
		snprintf(line, sizeof line, "data: ");
		inspect_conn_send(in->sse[i], line, strlen(line));
		inspect_conn_send(in->sse[i], s, strlen(s));
		inspect_conn_send(in->sse[i], "\n\n", 2);
	}
	free(s);
}

void
inspect_store(struct client *c, const struct target *t, struct exchange *x, unsigned replay_of)
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
	inspect_store(c, t, x, 0);
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

