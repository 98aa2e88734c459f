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
#include "cluster.h"
#include "log.h"
#include "cidr.h"
#include "name.h"
#include "proto.h"
#include "registry.h"

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
	if (code < METRICS_CODES)
		s->b->metrics.binds[code]++;
	session_error(s, index, code, msg);
}

/* What a BIND asks for: its key=value lines. */
struct bind {
	char name[PROTO_VALUE_BYTES];     /* empty: a random name */
	char target[128];
	char auth[PROTO_VALUE_BYTES];     /* user:password, or empty */
	char allow[PROTO_VALUE_BYTES];    /* CIDR list, or empty */
};

static int
parse_bind(const uint8_t *p, size_t len, struct bind *bd)
{
	if (proto_kv_check(p, len) == -1 ||
	    proto_kv_get(p, len, "name", bd->name, sizeof bd->name) == -1 ||
	    proto_kv_get(p, len, "target", bd->target, sizeof bd->target) == -1 ||
	    proto_kv_get(p, len, "auth", bd->auth, sizeof bd->auth) == -1 ||
	    proto_kv_get(p, len, "allow", bd->allow, sizeof bd->allow) == -1)
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
	map_free(&t->sources);    /* empty: each stream left its source */
	map_remove(&b->names, &t->node);
	s->tunnels[t->index - 1] = NULL;
	if (s->use)
		s->use->tunnels--;
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

static int
tunnel_record(struct session *s, struct tunnel *t, const char *auth, const char *allow)
{
	struct registry_tunnel row = {
		.name = t->name, .broker = s->b->socket_path, .session = s->id,
		.key = s->key, .addr = s->addr, .url = t->url, .target = t->target,
		.since = t->since, .auth = auth, .allow = allow,
		.host = s->b->cfg->set.host_name,
	};

	return registry_tunnel_add(s->b->reg, &row);
}

/* A BIND failed after its name was recorded for it: the name goes, so
 * that a refused BIND leaves nothing behind. */
static void
forget_name(struct broker *b, const char *name, int created)
{
	if (created && registry_name_release(b->reg, name) == -1) {
		log_err("registry %s: cannot delete name %s: %s", b->cfg->set.registry, name,
		        registry_error(b->reg));
		b->metrics.registry_errors++;
	}
}

/* The access rules a BIND asks for, in their stored forms. */
static int
access_rules(struct session *s, uint32_t index, const struct bind *bd, char *auth,
             size_t asize, char *allow, size_t lsize)
{
	auth[0] = allow[0] = '\0';
	if (bd->auth[0] && auth_make(s->b->auth_key, bd->auth, auth, asize) == -1) {
		refuse(s, index, CODE_PROTOCOL, "auth wants user:password (no control "
		       "characters, user up to 64 bytes, password up to 128)");
		return -1;
	}
	if (bd->allow[0] && cidr_list_normalize(bd->allow, allow, lsize) == -1) {
		refuse(s, index, CODE_PROTOCOL, "allow wants addresses or prefixes such as "
		       "203.0.113.0/24,2001:db8::/32 (host bits zero, at most 32)");
		return -1;
	}
	return 0;
}

int
tunnel_bind(struct session *s, uint32_t index, const uint8_t *p, size_t len)
{
	struct broker *b = s->b;
	static struct bind bd;
	char text[512], auth[AUTH_STORED_BYTES], allow[CIDR_TEXT_MAX_BYTES];
	struct tunnel *t, *old;
	const char *why;
	int code, rc, n, takeover, created;

	memset(&bd, 0, sizeof bd);
	if (index == 0 || index > TUNNELS_PER_CLIENT_MAX || s->tunnels[index - 1] ||
	    parse_bind(p, len, &bd) == -1)
		return -1;
	/* What a client says ends up in logs and listings: no control bytes,
	 * no terminal escapes, nothing an operator's terminal would act on. */
	if (proto_kv_printable(p, len, text, sizeof text) == -1) {
		char msg[PROTO_MESSAGE_BYTES];
		snprintf(msg, sizeof msg, "BIND's %.64s= holds a byte that is not printable "
		         "ASCII: only 0x20 to 0x7e are allowed", text);
		refuse(s, index, CODE_PROTOCOL, msg);
		return 0;
	}
	if (access_rules(s, index, &bd, auth, sizeof auth, allow, sizeof allow) == -1)
		return 0;
	old = bd.name[0] ? tunnel_find(b, bd.name) : NULL;
	takeover = old && old->s != s && memcmp(old->s->pk, s->pk, IDENTITY_PK_BYTES) == 0;
	/* Refused before anything is written: a refused BIND changes nothing. */
	if (old && !takeover) {
		snprintf(text, sizeof text, "name '%s' is taken", old->name);
		refuse(s, index, CODE_NAME_TAKEN, text);
		return 0;
	}
	code = access_name(s, bd.name, sizeof bd.name, takeover, &created, &why);
	if (code != 0) {
		refuse(s, index, (uint16_t)code, why);
		return 0;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		forget_name(b, bd.name, created);
		refuse(s, index, CODE_INTERNAL, "out of memory");
		return 0;
	}
	t->s = s;
	t->index = index;
	map_init(&t->sources);
	t->since = (int64_t)time(NULL);
	t->has_auth = auth[0] != '\0';
	snprintf(t->name, sizeof t->name, "%.63s", bd.name);
	snprintf(t->target, sizeof t->target, "%s", bd.target[0] ? bd.target : "-");
	make_url(b, t->name, t->url, sizeof t->url);

	rc = tunnel_record(s, t, auth, allow);
	if (rc != 1) {
		forget_name(b, t->name, created);
		free(t);
		if (rc == 0) {
			snprintf(text, sizeof text, "name '%.63s' is taken", bd.name);
			refuse(s, index, CODE_NAME_TAKEN, text);
		} else {
			log_err("registry %s: cannot add tunnel: %s", b->cfg->set.registry,
			        registry_error(b->reg));
			b->metrics.registry_errors++;
			refuse(s, index, CODE_INTERNAL, "the broker cannot record the tunnel");
		}
		return 0;
	}
	if (old)
		take_over(b, old);
	if (map_insert(&b->names, &t->node, t->name, strlen(t->name)) == -1) {
		registry_tunnel_remove(b->reg, t->name, s->id);
		forget_name(b, t->name, created);
		free(t);
		refuse(s, index, CODE_INTERNAL, "out of memory");
		return 0;
	}
	s->tunnels[index - 1] = t;
	s->use->tunnels++;
	b->ntunnels++;
	b->metrics.binds[CODE_OK]++;
	n = snprintf(text, sizeof text, "name=%s\nurl=%s\n", t->name, t->url);
	/* An https server with a plain edge that does not redirect: both work. */
	if (b->cfg->set.http_port && strcmp(b->cfg->set.scheme, "https") == 0 &&
	    !b->cfg->set.redirect_http) {
		if (b->cfg->set.http_port == 80)
			n += snprintf(text + n, sizeof text - (size_t)n, "http-url=http://%s.%s/\n",
			              t->name, b->cfg->set.domain);
		else
			n += snprintf(text + n, sizeof text - (size_t)n, "http-url=http://%s.%s:%d/\n",
			              t->name, b->cfg->set.domain, b->cfg->set.http_port);
	}
	if (b->cluster)    /* BOUND once etcd gives the name (cluster.c) */
		return cluster_claim(t, created, auth, allow, text, (size_t)n);
	mux_control(&s->mux, FRAME_BOUND, index, text, (size_t)n);
	log_info("tunnel up name=%s url=%s key=%s addr=%s target=%s%s%s%s", t->name, t->url,
	         s->fp, s->addr, t->target, auth[0] ? " auth=yes" : "",
	         allow[0] ? " allow=" : "", allow);
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
		if (registry_tunnel_remove(b->reg, t->name, s->id) == -1) {
			log_err("registry %s: cannot delete tunnel %s: %s", b->cfg->set.registry,
			        t->name, registry_error(b->reg));
			b->metrics.registry_errors++;
		}
		log_info("tunnel down name=%s key=%s", t->name, s->fp);
		if (b->cluster)
			cluster_release(t);
		access_name_done(s, t->name);
		tunnel_free(b, t);
	}
}

void
tunnel_refused(struct tunnel *t, int created, uint16_t code, const char *msg)
{
	struct session *s = t->s;
	struct broker *b = s->b;
	uint32_t index = t->index;

	if (registry_tunnel_remove(b->reg, t->name, s->id) == -1) {
		log_err("registry %s: cannot delete tunnel %s: %s", b->cfg->set.registry,
		        t->name, registry_error(b->reg));
		b->metrics.registry_errors++;
	}
	forget_name(b, t->name, created);
	tunnel_free(b, t);
	b->metrics.binds[CODE_OK]--;    /* counted when it bound locally */
	refuse(s, index, code, msg);
}
