/*
 * exposectl's live commands, on the broker's control socket (mode 0660:
 * the broker's user and group, and root).  One line in, an answer out,
 * then the broker closes:
 *
 *   KICK NAME     ends the client holding NAME: its websocket closes and
 *                 every row of it goes.          -> "OK ..." or "ERR ..."
 *   METRICS       the counters, in Prometheus text form
 *   RELOAD        expose.conf, authorized_keys and the certificate read
 *                 again, tunnels kept (systemctl reload) -> "OK ..." or "ERR ..."
 *
 * The same counters are served over HTTP (GET /metrics, metrics.c) when
 * `metrics` names an address: the same one-shot connection, another
 * request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

#define CONTROL_LINE_BYTES 512
/* A reply, at most: METRICS with the peer link's series of PEERS_MAX hosts. */
#define CONTROL_REPLY_BYTES (128 * 1024)
/* An HTTP request head to the metrics port, at most. */
#define METRICS_HEAD_BYTES 8192
#define CONTROL_TIMEOUT_S 5

struct control {
	struct buf in;
	struct buf reply;
	bool answered;
};

static void
reply(struct control *c, const char *text)
{
	buf_append(&c->reply, text, strlen(text));
	c->answered = true;
}

static void
kick(struct broker *b, const char *name, struct control *c)
{
	struct tunnel *t = tunnel_find(b, name);
	char line[CONTROL_LINE_BYTES];
	struct session *s;

	if (t == NULL) {
		snprintf(line, sizeof line, "ERR no live tunnel named %.63s\n", name);
		reply(c, line);
		return;
	}
	s = t->s;
	log_info("kicked name=%s key=%s addr=%s", name, s->fp, s->addr);
	b->metrics.kicks++;
	snprintf(line, sizeof line, "OK kicked %.63s (key %s, from %s)\n", name, s->fp, s->addr);
	reply(c, line);
	session_close(s, CODE_KICKED, "an operator ended this connection");
}

static void
run(struct broker *b, struct control *c)
{
	char line[CONTROL_LINE_BYTES], arg[CONTROL_LINE_BYTES];

	snprintf(line, sizeof line, "%.*s", (int)buf_len(&c->in), (const char *)buf_data(&c->in));
	line[strcspn(line, "\r\n")] = '\0';
	if (sscanf(line, "KICK %511s", arg) == 1) {
		kick(b, arg, c);
	} else if (strcmp(line, "RELOAD") == 0) {
		char msg[CONTROL_LINE_BYTES];
		int rc = broker_reload(b, msg, sizeof msg);
		reply(c, rc == 0 ? "OK " : "ERR ");
		reply(c, msg);
		reply(c, "\n");
	} else if (strcmp(line, "METRICS") == 0) {
		metrics_render(b, &c->reply);
		c->answered = true;
	} else {
		reply(c, "ERR unknown command (known: KICK NAME, METRICS, RELOAD)\n");
	}
}

static void
reply_metrics(struct broker *b, struct control *c)
{
	metrics_serve(b, buf_data(&c->in), buf_len(&c->in), &c->reply);
	c->answered = true;
}

/* Both sockets are one request, one answer, then close. */
static int
common(struct lws *wsi, enum lws_callback_reasons reason, void *in, size_t len,
       bool http)
{
	struct control *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		c = calloc(1, sizeof *c);
		if (c == NULL)
			return -1;
		buf_init(&c->in, http ? METRICS_HEAD_BYTES : CONTROL_LINE_BYTES);
		buf_init(&c->reply, CONTROL_REPLY_BYTES);
		lws_set_opaque_user_data(wsi, c);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, CONTROL_TIMEOUT_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (c == NULL || c->answered)
			return 0;
		if (buf_append(&c->in, in, len) == -1)
			reply(c, http ? "HTTP/1.1 431 Request Header Fields Too Large\r\n"
			                "Connection: close\r\n\r\n" : "ERR line too long\n");
		else if (!http && memchr(buf_data(&c->in), '\n', buf_len(&c->in)))
			run(broker_of(wsi), c);
		else if (http && memmem(buf_data(&c->in), buf_len(&c->in), "\r\n\r\n", 4))
			reply_metrics(broker_of(wsi), c);
		if (c->answered)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c && buf_len(&c->reply))
			lws_write(wsi, (unsigned char *)(uintptr_t)buf_data(&c->reply),
			          buf_len(&c->reply), LWS_WRITE_RAW);
		return -1;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c) {
			lws_set_opaque_user_data(wsi, NULL);
			buf_free(&c->in);
			buf_free(&c->reply);
			free(c);
		}
		return 0;
	default:
		return 0;
	}
}

int
control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
	return common(wsi, reason, in, len, false);
}

int
metrics_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
	return common(wsi, reason, in, len, true);
}
