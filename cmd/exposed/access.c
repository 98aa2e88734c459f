/*
 * Access: which keys may connect (an open server, or authorized_keys),
 * what each may hold (tunnels and streams at once), and which names are
 * whose.  A name belongs to a key once taken: claimed by the first key to
 * ask for it, kept by an operator (exposectl reserve, authorized_keys
 * names=), or given at random, when it stays its key's for the quarantine
 * after its last use.  Nobody takes a name on the deny list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "conf.h"
#include "log.h"
#include "name.h"
#include "proto.h"
#include "registry.h"
#include "ticketkeys.h"

/* Random names tried before giving up (a collision is already rare). */
#define RANDOM_NAME_TRIES 8

static void
warn_line(void *ctx, const char *msg)
{
	log_warn("authorized_keys %s", msg);
}

int
access_start(struct broker *b)
{
	const struct settings *set = &b->cfg->set;
	char path[SETTINGS_PATH_BYTES + 16];
	struct ticket_keys tickets;
	const char *why = NULL;

	map_init(&b->keys_in_use);
	ratelimit_init(&b->handshakes, (uint32_t)set->handshake_rate,
	               (uint32_t)set->handshake_burst);
	if (set->auth_failures == 0)
		ratelimit_init(&b->auth_failures, 0, 0);    /* no limit */
	else
		ratelimit_init_period(&b->auth_failures,
		                      (uint32_t)set->auth_failure_period_s * 1000u,
		                      (uint32_t)set->auth_failures);
	settings_auth_key(set, path, sizeof path);
	if (auth_key_load(path, 1, b->auth_key, &why) == -1) {
		log_err("auth-key %s: %s", path, why);
		return -1;
	}
	/* The https edges' shared session ticket keys: made here if missing. */
	settings_ticket_keys(set, path, sizeof path);
	if (ticket_keys_load(path, 1, &tickets, &why) == -1) {
		log_err("ticket-keys %s: %s", path, why);
		return -1;
	}
	ticket_keys_wipe(&tickets);
	if (set->authorized_keys[0] == '\0')
		return 0;
	if (keys_load(&b->authorized, set->authorized_keys, warn_line, NULL, &why) == -1) {
		log_err("authorized-keys %s: %s", set->authorized_keys, why);
		return -1;
	}
	log_info("closed server: %zu keys in %s", b->authorized.n, set->authorized_keys);
	return 0;
}

/* Calls fn for each entry of a comma-separated list, spaces trimmed;
 * stops at the first that fn refuses and returns -1. */
static int
list_each(const char *list, int (*fn)(void *ctx, const char *item), void *ctx)
{
	char item[IDENTITY_SERVER_MAX_BYTES + 1];
	const char *p = list;
	size_t len;

	while (*p) {
		p += strspn(p, " ,");
		len = strcspn(p, ",");
		if (len == 0)
			break;
		snprintf(item, sizeof item, "%.*s", (int)len, p);
		item[strcspn(item, " ")] = '\0';
		if (fn(ctx, item) == -1)
			return -1;
		p += len;
	}
	return 0;
}

struct servers_fill {
	struct broker *b;         /* NULL: only check */
	char bad[IDENTITY_SERVER_MAX_BYTES + 1];
	int n;
};

static int
server_add(void *ctx, const char *url)
{
	struct servers_fill *f = ctx;
	char canon[PROTO_DIALED_BYTES];

	if (proto_dialed_parse(url, canon, sizeof canon) == -1 || f->n == SERVER_URLS_MAX) {
		snprintf(f->bad, sizeof f->bad, "%s", url);
		return -1;
	}
	if (f->b)
		snprintf(f->b->servers[f->n], sizeof f->b->servers[0], "%s", canon);
	f->n++;
	return 0;
}

const char *
access_servers_check(const char *list)
{
	static struct servers_fill f;

	memset(&f, 0, sizeof f);
	return list_each(list, server_add, &f) == 0 ? NULL : f.bad;
}

/* The default: what a client dials when the operator says nothing. */
static void
servers_default(struct broker *b)
{
	const char *scheme = b->cfg->set.cert[0] ? "wss" : "ws";
	char url[sizeof "wss://" + DOMAIN_MAX_BYTES + SOCK_ADDR_TEXT_BYTES + 8];
	struct servers_fill f = { .b = b };

	snprintf(url, sizeof url, "%s://%s:%d", scheme, b->cfg->set.domain, b->client_port);
	server_add(&f, url);
	/* A listener on one address is dialed there too; 0.0.0.0 is dialed by
	 * name, and an IPv6 address never (clients dial names or IPv4). */
	if (b->client_addr[0] && strcmp(b->client_addr, "0.0.0.0") != 0 &&
	    !strchr(b->client_addr, ':')) {
		snprintf(url, sizeof url, "%s://%s:%d", scheme, b->client_addr, b->client_port);
		server_add(&f, url);
	}
	/* A loopback listener is dialed as localhost too. */
	if ((strncmp(b->client_addr, "127.", 4) == 0 || strcmp(b->client_addr, "::1") == 0) &&
	    strcmp(b->cfg->set.domain, "localhost") != 0) {
		snprintf(url, sizeof url, "%s://localhost:%d", scheme, b->client_port);
		server_add(&f, url);
	}
	b->nservers = f.n;
}

int
access_servers(struct broker *b)
{
	struct servers_fill f = { .b = b };
	char line[512];

	if (b->cfg->set.server_urls[0] == '\0') {
		servers_default(b);
	} else if (list_each(b->cfg->set.server_urls, server_add, &f) == -1) {
		log_err("server-urls '%s': want ws://HOST[:PORT] or wss://HOST[:PORT], at most "
		        "%d of them", f.bad, SERVER_URLS_MAX);
		return -1;
	} else {
		b->nservers = f.n;
	}
	if (b->nservers == 0) {
		log_err("server-urls: no URL a client could sign for (see expose.conf(5))");
		return -1;
	}
	access_servers_text(b, line, sizeof line);
	log_info("clients sign for server-urls=%s", line);
	return 0;
}

int
access_server_ok(const struct broker *b, const char *dialed)
{
	int i;

	for (i = 0; i < b->nservers; i++)
		if (strcmp(b->servers[i], dialed) == 0)
			return 1;
	return 0;
}

void
access_servers_text(const struct broker *b, char *out, size_t size)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < b->nservers && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "," : "", b->servers[i]);
}

void
access_stop(struct broker *b)
{
	keys_free(&b->authorized);
	map_free(&b->keys_in_use);
}

/* The authorized_keys entry of a key, reading the file again if it
 * changed: an operator's edit applies to the next handshake. */
static const struct key_entry *
authorized(struct broker *b, const uint8_t *pk, const char **why)
{
	const char *path = b->cfg->set.authorized_keys;
	int rc = keys_refresh(&b->authorized, path, warn_line, NULL, why);

	if (rc == -1) {
		log_err("authorized-keys %s: %s; refusing every key until it is readable",
		        path, *why);
		*why = "this server cannot read its key list right now";
		return NULL;
	}
	if (rc == 1)
		log_info("authorized_keys reloaded: %zu keys", b->authorized.n);
	*why = "this key is not authorized on this server (give its operator the "
	       "line `expose key` prints)";
	return keys_find(&b->authorized, pk);
}

const char *
access_admit(struct session *s)
{
	struct broker *b = s->b;
	const struct key_entry *e = NULL;
	struct map_node *n;
	struct keyuse *u;
	const char *why = NULL;

	if (b->cfg->set.authorized_keys[0] && (e = authorized(b, s->pk, &why)) == NULL)
		return why;
	n = map_find(&b->keys_in_use, s->pk, IDENTITY_PK_BYTES);
	if (n) {
		u = map_entry(n, struct keyuse, node);
	} else {
		u = calloc(1, sizeof *u);
		if (u == NULL)
			return "the server is out of memory";
		memcpy(u->pk, s->pk, IDENTITY_PK_BYTES);
		if (map_insert(&b->keys_in_use, &u->node, u->pk, IDENTITY_PK_BYTES) == -1) {
			free(u);
			return "the server is out of memory";
		}
	}
	/* The key's own limits, as its authorized_keys line says today. */
	u->max_tunnels = e && e->max_tunnels ? e->max_tunnels : b->cfg->set.tunnels_per_key;
	u->max_streams = e && e->max_streams ? e->max_streams : b->cfg->set.streams_per_key;
	snprintf(u->names, sizeof u->names, "%s", e ? e->names : "");
	u->sessions++;
	s->use = u;
	return NULL;
}

void
access_leave(struct session *s)
{
	struct keyuse *u = s->use;

	if (u == NULL)
		return;
	s->use = NULL;
	if (--u->sessions == 0) {
		map_remove(&s->b->keys_in_use, &u->node);
		free(u);
	}
}

static int64_t
now(void)
{
	return (int64_t)time(NULL);
}

/* Who holds name: the operator's lists first, then a live tunnel, then
 * the registry.  1 and owner set, 0 nobody, -1 registry error. */
static int
owner_of(struct broker *b, const char *name, char *owner, size_t size, int *reserved)
{
	const struct key_entry *e = keys_name_owner(&b->authorized, name);
	const struct tunnel *t;

	*reserved = 0;
	if (e) {
		identity_pk_text(e->pk, owner);
		*reserved = 1;
		return 1;
	}
	/* A live tunnel's name is its key's, whatever its row says. */
	if ((t = tunnel_find(b, name)) != NULL) {
		snprintf(owner, size, "%s", t->s->key);
		return 1;
	}
	return registry_name_owner(b->reg, name, now(), owner, size);
}

/* A name of the key's was used: its time starts over (a random name's
 * quarantine, a claim's expiry). */
static void
name_used(struct broker *b, const char *name)
{
	const struct settings *set = &b->cfg->set;

	if (registry_name_touch(b->reg, name, "random", now() + set->name_quarantine_s) == -1 ||
	    registry_name_touch(b->reg, name, "claimed", now() + set->claim_expiry_s) == -1) {
		log_err("registry %s: cannot renew name %s: %s", set->registry, name,
		        registry_error(b->reg));
		b->metrics.registry_errors++;
	}
}

/* Room in the whole registry (names-max): the oldest unused random name
 * of any key goes first.  1 there is room, 0 not, -1 error. */
static int
server_room(struct broker *b)
{
	int total = registry_names_count(b->reg);

	if (total >= b->cfg->set.names_max && registry_name_evict_random(b->reg, NULL) == 1)
		total = registry_names_count(b->reg);
	return total < 0 ? -1 : total < b->cfg->set.names_max;
}

/* Room for one more name of s's key: under names-per-key, or made by
 * freeing the key's oldest random name that no tunnel uses; and room in
 * the registry.  A claim past either limit is refused; a random name is
 * given anyway, its tunnel counting to tunnels-per-key (and it is freed
 * first once unused).  So a key holds at most names-per-key +
 * tunnels-per-key rows, and the registry names-max + its live tunnels.
 * 0, or a CODE_ with why set. */
static int
make_room(struct session *s, int claim, const char **why)
{
	static char msg[PROTO_MESSAGE_BYTES];
	struct broker *b = s->b;
	int cap = b->cfg->set.names_per_key, held, expiry, room;

	held = registry_names_held(b->reg, s->key, now());
	if (held >= cap && registry_name_evict_random(b->reg, s->key) == 1)
		held = registry_names_held(b->reg, s->key, now());
	room = held < 0 ? -1 : server_room(b);
	if (room < 0) {
		*why = "the server cannot read its name list right now";
		return CODE_INTERNAL;
	}
	if (!claim || (held < cap && room))
		return 0;
	if (!room) {
		snprintf(msg, sizeof msg, "this server holds %d names, its limit (names-max): "
		         "use a random name, or ask its operator", b->cfg->set.names_max);
		*why = msg;
		return CODE_LIMIT;
	}
	expiry = b->cfg->set.claim_expiry_s;
	snprintf(msg, sizeof msg, "this key holds %d names, this server's limit "
	         "(names-per-key): use one of them, or wait until one unused for %d %s "
	         "is freed, or ask the operator to release one", held,
	         expiry >= 86400 ? expiry / 86400 : expiry, expiry >= 86400 ? "days" : "seconds");
	*why = msg;
	return CODE_LIMIT;
}

static int
take_chosen(struct session *s, const char *name, int *created, const char **why)
{
	static char msg[200];
	struct broker *b = s->b;
	char owner[IDENTITY_PK_TEXT_BYTES + 8];
	const char *reason = name_invalid_reason(name);
	int held, reserved, code;

	if (reason) {
		snprintf(msg, sizeof msg, "name '%.63s' is not valid: %s", name, reason);
		*why = msg;
		return CODE_NAME_INVALID;
	}
	held = owner_of(b, name, owner, sizeof owner, &reserved);
	if (held == -1) {
		*why = "the server cannot read its name list right now";
		return CODE_INTERNAL;
	}
	if (held == 1 && strcmp(owner, s->key) != 0) {
		snprintf(msg, sizeof msg, "name '%s' is taken", name);
		*why = msg;
		return CODE_NAME_TAKEN;
	}
	if (held == 1) {
		name_used(b, name);    /* the key's own name */
		return 0;
	}
	if (conf_list_has(b->cfg->set.deny_names, name)) {
		snprintf(msg, sizeof msg, "name '%s' is reserved by this server's operator", name);
		*why = msg;
		return CODE_NAME_DENIED;
	}
	if (!b->cfg->set.claim_names) {
		snprintf(msg, sizeof msg, "name '%s' is not yours: this server does not let "
		         "clients claim names (ask its operator to reserve one for your key)", name);
		*why = msg;
		return CODE_NAME_DENIED;
	}
	if ((code = make_room(s, 1, why)) != 0)
		return code;
	if (registry_name_set(b->reg, name, s->key, "claimed", now(),
	                      now() + b->cfg->set.claim_expiry_s) == -1) {
		*why = "the server cannot record the name";
		return CODE_INTERNAL;
	}
	*created = 1;
	log_info("name claimed name=%s key=%s", name, s->fp);
	return 0;
}

static int
take_random(struct session *s, char *name, size_t size, int *created, const char **why)
{
	struct broker *b = s->b;
	char n[NAME_RANDOM_BYTES], owner[IDENTITY_PK_TEXT_BYTES + 8];
	int i, reserved, held, code;

	if ((code = make_room(s, 0, why)) != 0)
		return code;
	for (i = 0; i < RANDOM_NAME_TRIES; i++) {
		name_random(n);
		held = owner_of(b, n, owner, sizeof owner, &reserved);
		if (held == -1)
			break;
		if (held == 1)
			continue;
		if (registry_name_set(b->reg, n, s->key, "random", now(),
		                      now() + b->cfg->set.name_quarantine_s) == -1)
			break;
		snprintf(name, size, "%s", n);
		*created = 1;
		return 0;
	}
	*why = "the server cannot give out a name right now";
	return CODE_INTERNAL;
}

int
access_name(struct session *s, char *name, size_t size, int takeover, int *created,
            const char **why)
{
	struct keyuse *u = s->use;
	static char msg[160];

	*created = 0;
	/* Taking a name over from the key's own older connection adds none. */
	if (!takeover && (int)u->tunnels >= u->max_tunnels) {
		snprintf(msg, sizeof msg, "this key already has %u tunnels, its limit", u->tunnels);
		*why = msg;
		return CODE_LIMIT;
	}
	if (name[0] == '\0')
		return take_random(s, name, size, created, why);
	return take_chosen(s, name, created, why);
}

void
access_name_done(struct session *s, const char *name)
{
	struct broker *b = s->b;
	char owner[IDENTITY_PK_TEXT_BYTES + 8];
	int reserved;

	/* A name's time (quarantine, claim expiry) starts when its tunnel ends. */
	if (owner_of(b, name, owner, sizeof owner, &reserved) == 1 && !reserved &&
	    strcmp(owner, s->key) == 0)
		name_used(b, name);
}

void
access_sweep_names(struct broker *b)
{
	int64_t t = now();
	int n;

	if (t < b->next_names_sweep)
		return;
	b->next_names_sweep = t + NAMES_SWEEP_INTERVAL_S;
	n = registry_names_expire(b->reg, t, b->cfg->set.claim_expiry_s);
	if (n < 0) {
		log_err("registry %s: cannot delete expired names: %s", b->cfg->set.registry,
		        registry_error(b->reg));
		b->metrics.registry_errors++;
	} else if (n > 0) {
		log_info("names expired count=%d", n);
	}
}
