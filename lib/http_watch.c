#include "http_watch.h"

#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "http_resp.h"

struct http_watch {
	llhttp_t req;
	llhttp_settings_t req_settings;
	struct http_resp resp;
	struct http_exchange cur;         /* the request being read */
	struct http_exchange pending[HTTP_WATCH_PENDING_MAX];
	int head, len;
	bool raw;                         /* after a 101, or when lost */
	int64_t (*now_ms)(void);
	void (*done)(void *ctx, const struct http_exchange *x);
	void *ctx;
};

static struct http_watch *
watch_of(llhttp_t *p)
{
	return p->data;
}

static void
append(char *dst, size_t size, const char *at, size_t len)
{
	size_t have = strlen(dst), room = size - 1 - have;

	if (len > room)
		len = room;
	memcpy(dst + have, at, len);
	dst[have + len] = '\0';
}

static int
on_method(llhttp_t *p, const char *at, size_t len)
{
	struct http_watch *w = watch_of(p);

	append(w->cur.method, sizeof w->cur.method, at, len);
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_watch *w = watch_of(p);

	append(w->cur.path, sizeof w->cur.path, at, len);
	return 0;
}

static int
on_message_begin(llhttp_t *p)
{
	struct http_watch *w = watch_of(p);

	memset(&w->cur, 0, sizeof w->cur);
	w->cur.start_ms = w->now_ms();
	return 0;
}

static int
on_request_complete(llhttp_t *p)
{
	struct http_watch *w = watch_of(p);

	w->cur.is_head = strcmp(w->cur.method, "HEAD") == 0;
	if (w->len < HTTP_WATCH_PENDING_MAX) {
		w->pending[(w->head + w->len) % HTTP_WATCH_PENDING_MAX] = w->cur;
		if (w->len++ == 0)
			http_resp_expect(&w->resp, w->cur.is_head);
	}
	return 0;
}

struct http_watch *
http_watch_new(int64_t (*now_ms)(void),
               void (*done)(void *ctx, const struct http_exchange *x), void *ctx)
{
	struct http_watch *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	llhttp_settings_init(&w->req_settings);
	w->req_settings.on_message_begin = on_message_begin;
	w->req_settings.on_method = on_method;
	w->req_settings.on_url = on_url;
	w->req_settings.on_message_complete = on_request_complete;
	llhttp_init(&w->req, HTTP_REQUEST, &w->req_settings);
	w->req.data = w;
	http_resp_init(&w->resp);
	w->now_ms = now_ms;
	w->done = done;
	w->ctx = ctx;
	return w;
}

void
http_watch_free(struct http_watch *w)
{
	free(w);
}

void
http_watch_request(struct http_watch *w, const uint8_t *p, size_t n)
{
	if (w == NULL)
		return;
	struct http_exchange *x;
	llhttp_errno_t err;

	if (w == NULL || w->raw || n == 0)
		return;
	err = llhttp_execute(&w->req, (const char *)p, n);
	if (err == HPE_PAUSED_UPGRADE)
		return;    /* what follows waits for the app's answer */
	if (err != HPE_OK) {
		w->raw = true;    /* not HTTP we can follow: stop watching */
		return;
	}
	x = w->len ? &w->pending[(w->head + w->len - 1) % HTTP_WATCH_PENDING_MAX] : NULL;
	if (x)
		x->request_bytes += n;
}

static void
finish(struct http_watch *w, int status)
{
	struct http_exchange *x = &w->pending[w->head];

	x->status = status;
	x->end_ms = w->now_ms();
	if (status != 101 && llhttp_get_errno(&w->req) == HPE_PAUSED_UPGRADE)
		llhttp_resume_after_upgrade(&w->req);    /* the app said no */
	if (w->done)
		w->done(w->ctx, x);
	w->head = (w->head + 1) % HTTP_WATCH_PENDING_MAX;
	w->len--;
	if (w->len)
		http_resp_expect(&w->resp, w->pending[w->head].is_head);
}

void
http_watch_response(struct http_watch *w, const uint8_t *p, size_t n)
{
	enum http_resp_event ev;
	size_t used;

	while (w && n > 0 && !w->raw && w->len > 0) {
		ev = http_resp_feed(&w->resp, p, n, &used);
		w->pending[w->head].response_bytes += used;
		p += used;
		n -= used;
		if (ev == HTTP_RESP_ERROR) {
			w->raw = true;
		} else if (ev == HTTP_RESP_UPGRADED) {
			finish(w, 101);
			w->raw = true;
		} else if (ev == HTTP_RESP_COMPLETE) {
			finish(w, w->resp.status);
		}
	}
}

void
http_watch_close(struct http_watch *w)
{
	if (w && !w->raw && w->len > 0 && http_resp_finish(&w->resp) == HTTP_RESP_COMPLETE)
		finish(w, w->resp.status);
}
