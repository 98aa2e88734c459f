/*
 * The inspector's replays: an entry's request (as captured, or edited:
 * edit.c) sent straight to its local target on a connection of its own,
 * and the answer kept as a new entry that says what it replays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "inspect.h"
#include "edit.h"
#include "log.h"

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
	inspect_store(r->c, r->t, x, r->of);
}

static void
replay_free(struct replay *r)
{
	exchange_stream_free(r->xs);
	buf_free(&r->request);
	buf_free(&r->scratch);
	free(r);
}

int
inspect_replay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len)
{
	struct replay *r = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_CONNECTED:
		if (r && exchange_request(r->xs, buf_data(&r->request), buf_len(&r->request),
		                          &r->scratch) == (ssize_t)buf_len(&r->request)) {
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
			exchange_stream_end(r->xs, EXCHANGE_CUT);
			replay_free(r);
		}
		return 0;
	default:
		return 0;
	}
}

int
inspect_replay(struct client *c, struct entry *e, const char *edits, size_t edits_len, unsigned *id,
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
	r->xs = exchange_stream_new(&o, clock_ms, replay_done, r);
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

