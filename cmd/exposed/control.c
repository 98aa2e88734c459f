/*
 * exposectl's live commands, on the broker's control socket (mode 0660:
 * the broker's user and group, and root).  One line in, one line out:
 *
 *   KICK NAME     ends the client holding NAME: its websocket closes and
 *                 every row of it goes.   -> "OK ..." or "ERR ..."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

#define CONTROL_LINE_BYTES 512
#define CONTROL_TIMEOUT_S 5

struct control {
	struct buf in;
	char reply[CONTROL_LINE_BYTES];
};

static void
kick(struct broker *b, const char *name, char *reply, size_t size)
{
	struct tunnel *t = tunnel_find(b, name);
	struct session *s;

	if (t == NULL) {
		snprintf(reply, size, "ERR no live tunnel named %.63s\n", name);
		return;
	}
	s = t->s;
	log_info("kicked name=%s key=%s addr=%s", name, s->fp, s->addr);
	snprintf(reply, size, "OK kicked %.63s (key %s, from %s)\n", name, s->fp, s->addr);
	session_close(s, CODE_KICKED, "an operator ended this connection");
	/* Its rows go now, whether or not the client reads its error. */
	tunnel_unbind_all(s);
}

static void
run(struct broker *b, struct control *c)
{
	char line[CONTROL_LINE_BYTES], arg[CONTROL_LINE_BYTES];

	snprintf(line, sizeof line, "%.*s", (int)buf_len(&c->in), (const char *)buf_data(&c->in));
	line[strcspn(line, "\r\n")] = '\0';
	if (sscanf(line, "KICK %511s", arg) == 1)
		kick(b, arg, c->reply, sizeof c->reply);
	else
		snprintf(c->reply, sizeof c->reply, "ERR unknown command (known: KICK NAME)\n");
}

int
control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                 void *in, size_t len)
{
	struct control *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		c = calloc(1, sizeof *c);
		if (c == NULL)
			return -1;
		buf_init(&c->in, CONTROL_LINE_BYTES);
		lws_set_opaque_user_data(wsi, c);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, CONTROL_TIMEOUT_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (c == NULL || c->reply[0])
			return 0;
		if (buf_append(&c->in, in, len) == -1) {
			snprintf(c->reply, sizeof c->reply, "ERR line too long\n");
		} else if (memchr(buf_data(&c->in), '\n', buf_len(&c->in))) {
			run(broker, c);
		}
		if (c->reply[0])
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c && c->reply[0])
			lws_write(wsi, (unsigned char *)c->reply, strlen(c->reply), LWS_WRITE_RAW);
		return -1;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c) {
			lws_set_opaque_user_data(wsi, NULL);
			buf_free(&c->in);
			free(c);
		}
		return 0;
	default:
		return 0;
	}
}
