/*
 * Tunnels: names bound to a session, in memory (broker.names) and in the
 * registry, where edges find them.  A row is written when a tunnel binds
 * and deleted when its session ends; a key that binds a name it already
 * holds on another session takes it over at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "log.h"
#include "name.h"
#include "proto.h"
#include "registry.h"

/* Random names tried before giving up (a collision is already rare). */
#define RANDOM_NAME_TRIES 8

struct tunnel *
tunnel_find(struct broker *b, const char *name)
{
	struct map_node *n = map_find(&b->names, name, strlen(name));

	return n ? map_entry(n, struct tunnel, node) : NULL;
}

static void
refuse(struct session *s, uint32_t index, uint16_t code, const char *msg)
{
	log_info("tunnel refused key=%s addr=%s reason=\"%s\"", s->fp, s->addr, msg);
	session_error(s, index, code, msg);
}

/* BIND's key=value lines: name= (optional) and target=. */
static int
parse_bind(const uint8_t *p, size_t len, char *name, size_t nsize, char *target,
           size_t tsize)
{
	if (proto_kv_check(p, len) == -1 ||
	    proto_kv_get(p, len, "name", name, nsize) == -1 ||
	    proto_kv_get(p, len, "target", target, tsize) == -1)
		return -1;
	return 0;
}

static void
make_url(struct broker *b, const char *name, char *url, size_t size)
{
	const struct settings *c = &b->cfg->set;
	int deflt = strcmp(c->scheme, "https") == 0 ? 443 : 80;

	if (c->public_port == deflt)
		snprintf(url, size, "%s://%s.%s/", c->scheme, name, c->domain);
	else
		snprintf(url, size, "%s://%s.%s:%d/", c->scheme, name, c->domain,
		         c->public_port);
}

static void
kill_tunnel_stream(struct map_node *n, void *ctx)
{
	struct stream *st = map_entry(n, struct stream, node);

	if (st->t == ctx)
		stream_detach(st);
}

static void
tunnel_free(struct broker *b, struct tunnel *t)
{
	struct session *s = t->s;

	map_each(&s->streams, kill_tunnel_stream, t);
	map_remove(&b->names, &t->node);
	s->tunnels[t->index - 1] = NULL;
	b->ntunnels--;
	free(t);
}

/* The same key holds name on an older session: that one lets it go. */
static void
take_over(struct broker *b, struct tunnel *old)
{
	struct session *os = old->s;
	unsigned i, left = 0;

	log_info("tunnel replaced name=%s key=%s old_addr=%s", old->name, os->fp, os->addr);
	session_error(os, old->index, CODE_REPLACED,
	              "the same key bound this name on a newer connection");
	tunnel_free(b, old);
	for (i = 0; i < TUNNELS_PER_CLIENT_MAX; i++)
		left += os->tunnels[i] != NULL;
	if (left == 0)
		session_close(os, CODE_REPLACED, "replaced by a newer connection");
}

/* Checks a requested name; NULL if it may be bound. */
static const char *
check_name(struct session *s, const char *name, uint16_t *code)
{
	static char why[160];
	struct tunnel *t;
	const char *reason = name_invalid_reason(name);

	if (reason) {
		*code = CODE_NAME_INVALID;
		snprintf(why, sizeof why, "name '%.63s' is not valid: %s", name, reason);
		return why;
	}
	t = tunnel_find(s->b, name);
	if (t && (t->s == s || memcmp(t->s->pk, s->pk, IDENTITY_PK_BYTES) != 0)) {
		*code = CODE_NAME_TAKEN;
		snprintf(why, sizeof why, "name '%s' is taken", name);
		return why;
	}
	return NULL;
}

static int
pick_random(struct broker *b, char *name, size_t size)
{
	char n[NAME_RANDOM_BYTES];
	int i;

	for (i = 0; i < RANDOM_NAME_TRIES; i++) {
		name_random(n);
		if (tunnel_find(b, n) == NULL) {
			snprintf(name, size, "%s", n);
			return 0;
		}
	}
	return -1;
}

static int
tunnel_record(struct session *s, struct tunnel *t)
{
	struct registry_tunnel row = {
		.name = t->name, .broker = s->b->socket_path, .session = s->id,
		.key = s->key, .addr = s->addr, .url = t->url, .target = t->target,
		.since = t->since,
	};

	return registry_tunnel_add(s->b->reg, &row);
}

int
tunnel_bind(struct session *s, uint32_t index, const uint8_t *p, size_t len)
{
	struct broker *b = s->b;
	char name[PROTO_VALUE_BYTES] = "", target[128] = "", text[512];
	struct tunnel *t, *old;
	const char *why;
	uint16_t code;
	int rc, n;

	if (index == 0 || index > TUNNELS_PER_CLIENT_MAX || s->tunnels[index - 1] ||
	    parse_bind(p, len, name, sizeof name, target, sizeof target) == -1)
		return -1;
	if (name[0]) {
		if ((why = check_name(s, name, &code)) != NULL) {
			refuse(s, index, code, why);
			return 0;
		}
	} else if (pick_random(b, name, sizeof name) == -1) {
		refuse(s, index, CODE_INTERNAL, "no free random name");
		return 0;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		refuse(s, index, CODE_INTERNAL, "out of memory");
		return 0;
	}
	t->s = s;
	t->index = index;
	t->since = (int64_t)time(NULL);
	snprintf(t->name, sizeof t->name, "%.63s", name);
	snprintf(t->target, sizeof t->target, "%s", target[0] ? target : "-");
	make_url(b, t->name, t->url, sizeof t->url);

	rc = tunnel_record(s, t);
	if (rc != 1) {
		free(t);
		if (rc == 0)
			refuse(s, index, CODE_NAME_TAKEN, "name is taken");
		else {
			log_err("registry %s: cannot add tunnel: %s", b->cfg->set.registry,
			        registry_error(b->reg));
			refuse(s, index, CODE_INTERNAL, "the broker cannot record the tunnel");
		}
		return 0;
	}
	if ((old = tunnel_find(b, t->name)) != NULL)
		take_over(b, old);
	if (map_insert(&b->names, &t->node, t->name, strlen(t->name)) == -1) {
		registry_tunnel_remove(b->reg, t->name, s->id);
		free(t);
		refuse(s, index, CODE_INTERNAL, "out of memory");
		return 0;
	}
	s->tunnels[index - 1] = t;
	b->ntunnels++;
	n = snprintf(text, sizeof text, "name=%s\nurl=%s\n", t->name, t->url);
	mux_control(&s->mux, FRAME_BOUND, index, text, (size_t)n);
	log_info("tunnel up name=%s url=%s key=%s addr=%s target=%s", t->name, t->url,
	         s->fp, s->addr, t->target);
	return 0;
}

void
tunnel_unbind_all(struct session *s)
{
	struct broker *b = s->b;
	struct tunnel *t;
	unsigned i;

	for (i = 0; i < TUNNELS_PER_CLIENT_MAX; i++) {
		if ((t = s->tunnels[i]) == NULL)
			continue;
		if (registry_tunnel_remove(b->reg, t->name, s->id) == -1)
			log_err("registry %s: cannot delete tunnel %s: %s", b->cfg->set.registry,
			        t->name, registry_error(b->reg));
		log_info("tunnel down name=%s key=%s", t->name, s->fp);
		tunnel_free(b, t);
	}
}
