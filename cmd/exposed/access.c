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
#include "log.h"
#include "name.h"
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

/* Whether a comma-separated list holds name. */
static int
listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && *p == ' ') {
			p++;
			len--;
		}
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (comma ? 1 : 0);
	}
	return 0;
}

static int64_t
now(void)
{
	return (int64_t)time(NULL);
}

/* Who holds name: the operator's lists first, then the registry.  1 and
 * owner set, 0 nobody, -1 registry error. */
static int
owner_of(struct broker *b, const char *name, char *owner, size_t size, int *reserved)
{
	const struct key_entry *e = keys_name_owner(&b->authorized, name);

	*reserved = 0;
	if (e) {
		identity_pk_text(e->pk, owner);
		*reserved = 1;
		return 1;
	}
	return registry_name_owner(b->reg, name, now(), owner, size);
}

static int
take_chosen(struct session *s, const char *name, const char **why)
{
	static char msg[200];
	struct broker *b = s->b;
	char owner[IDENTITY_PK_TEXT_BYTES + 8];
	const char *reason = name_invalid_reason(name);
	int held, reserved;

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
		/* the key's own name; a random one's quarantine starts over */
		registry_name_touch_random(b->reg, name, now() + b->cfg->set.name_quarantine_s);
		return 0;
	}
	if (listed(b->cfg->set.deny_names, name)) {
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
	if (registry_name_set(b->reg, name, s->key, "claimed", now(), 0) == -1) {
		*why = "the server cannot record the name";
		return CODE_INTERNAL;
	}
	log_info("name claimed name=%s key=%s", name, s->fp);
	return 0;
}

static int
take_random(struct session *s, char *name, size_t size, const char **why)
{
	struct broker *b = s->b;
	char n[NAME_RANDOM_BYTES], owner[IDENTITY_PK_TEXT_BYTES + 8];
	int i, reserved, held;

	for (i = 0; i < RANDOM_NAME_TRIES; i++) {
		name_random(n);
		held = owner_of(b, n, owner, sizeof owner, &reserved);
		if (held == -1)
			break;
		if (held == 1 || tunnel_find(b, n))
			continue;
		if (registry_name_set(b->reg, n, s->key, "random", now(),
		                      now() + b->cfg->set.name_quarantine_s) == -1)
			break;
		snprintf(name, size, "%s", n);
		return 0;
	}
	*why = "the server cannot give out a name right now";
	return CODE_INTERNAL;
}

int
access_name(struct session *s, char *name, size_t size, int takeover, const char **why)
{
	struct keyuse *u = s->use;
	static char msg[160];

	/* Taking a name over from the key's own older connection adds none. */
	if (!takeover && (int)u->tunnels >= u->max_tunnels) {
		snprintf(msg, sizeof msg, "this key already has %u tunnels, its limit", u->tunnels);
		*why = msg;
		return CODE_LIMIT;
	}
	if (name[0] == '\0')
		return take_random(s, name, size, why);
	return take_chosen(s, name, why);
}

void
access_name_done(struct session *s, const char *name)
{
	struct broker *b = s->b;
	char owner[IDENTITY_PK_TEXT_BYTES + 8];
	int reserved;

	/* A random name's quarantine starts when its tunnel ends. */
	if (owner_of(b, name, owner, sizeof owner, &reserved) == 1 && !reserved &&
	    strcmp(owner, s->key) == 0)
		registry_name_touch_random(b->reg, name, now() + b->cfg->set.name_quarantine_s);
}

void
access_sweep_names(struct broker *b)
{
	int64_t t = now();
	int n;

	if (t < b->next_names_sweep)
		return;
	b->next_names_sweep = t + NAMES_SWEEP_INTERVAL_S;
	n = registry_names_expire(b->reg, t);
	if (n < 0) {
		log_err("registry %s: cannot delete expired names: %s", b->cfg->set.registry,
		        registry_error(b->reg));
		b->metrics.registry_errors++;
	} else if (n > 0) {
		log_info("names expired count=%d", n);
	}
}
