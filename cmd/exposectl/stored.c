/*
 * What exposectl reads from the registry and authorized_keys, and the
 * name reservations it writes there.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "name.h"
#include "proto.h"
#include "registry.h"
#include "ticketkeys.h"

static void
format_age(int64_t secs, char *out, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(out, size, "%llds", (long long)secs);
	else if (secs < 3600)
		snprintf(out, size, "%lldm%02llds", (long long)(secs / 60), (long long)(secs % 60));
	else if (secs < 86400)
		snprintf(out, size, "%lldh%02lldm", (long long)(secs / 3600),
		         (long long)(secs % 3600 / 60));
	else
		snprintf(out, size, "%lldd%02lldh", (long long)(secs / 86400),
		         (long long)(secs % 86400 / 3600));
}

static void
fingerprint(const char *key, char out[IDENTITY_FP_BYTES])
{
	uint8_t pk[IDENTITY_PK_BYTES];

	if (key && identity_pk_parse(key, pk) == 0)
		identity_fingerprint(pk, out);
	else
		snprintf(out, IDENTITY_FP_BYTES, "-");
}

/* Room for a registry field escaped: each byte may take four. */
#define SAFE_BYTES (4 * 512 + 1)

/* A registry field as it may be printed: whoever wrote the row, an
 * operator's terminal never gets control bytes (proto_text_escape). */
static const char *
safe(const char *text, char out[SAFE_BYTES])
{
	proto_text_escape(text ? text : "-", out, SAFE_BYTES);
	return out;
}

static struct registry *
open_registry(const struct settings *s, int write)
{
	const char *why = NULL;
	struct registry *r = write ? registry_open_writer(s->registry, &why) :
	                     registry_open_reader(s->registry, &why);

	if (r == NULL)
		log_err("registry %s: %s", s->registry, why);
	return r;
}

static int
print_tunnel(void *ctx, const struct registry_tunnel *t)
{
	char fp[IDENTITY_FP_BYTES], age[32], url[SAFE_BYTES], name[SAFE_BYTES],
	     addr[SAFE_BYTES], target[SAFE_BYTES], host[SAFE_BYTES];

	fingerprint(t->key, fp);
	format_age((int64_t)time(NULL) - t->since, age, sizeof age);
	printf("%s %s %s %s %s %s", safe(t->url, url), safe(t->name, name),
	       safe(t->addr, addr), fp, age, safe(t->target, target));
	/* More than one host: which host's broker holds it. */
	if (t->host && t->host[0])
		printf(" %s", safe(t->host, host));
	printf("\n");
	return 0;
}

int
ctl_list(const struct settings *s, char **argv)
{
	struct registry *r = open_registry(s, 0);
	int rc;

	if (r == NULL)
		return EX_IOERR;
	rc = registry_list(r, print_tunnel, NULL);
	if (rc == -1)
		log_err("registry %s: %s (is it an expose registry?)", s->registry,
		        registry_error(r));
	registry_close(r);
	return rc == -1 ? EX_IOERR : 0;
}

static int
print_name(void *ctx, const struct registry_name *n)
{
	char fp[IDENTITY_FP_BYTES], since[32], expires[32] = "never";
	time_t now = time(NULL);

	char name[SAFE_BYTES], kind[SAFE_BYTES];

	fingerprint(n->key, fp);
	format_age((int64_t)now - n->since, since, sizeof since);
	if (n->expires)
		format_age(n->expires - (int64_t)now, expires, sizeof expires);
	printf("%s %s %s %s %s\n", safe(n->name, name), safe(n->kind, kind), fp, since,
	       expires);
	return 0;
}

int
ctl_names(const struct settings *s, char **argv)
{
	struct registry *r = open_registry(s, 0);
	int rc;

	if (r == NULL)
		return EX_IOERR;
	rc = registry_names_list(r, print_name, NULL);
	if (rc == -1)
		log_err("registry %s: %s", s->registry, registry_error(r));
	registry_close(r);
	return rc == -1 ? EX_IOERR : 0;
}

struct live_count {
	const char *key;
	int n;
};

static int
count_key(void *ctx, const struct registry_tunnel *t)
{
	struct live_count *c = ctx;

	c->n += t->key && strcmp(t->key, c->key) == 0;
	return 0;
}

static void
warn_line(void *ctx, const char *msg)
{
	log_warn("%s", msg);
}

int
ctl_keys(const struct settings *s, char **argv)
{
	struct keys k = { 0 };
	struct registry *r;
	const char *why = NULL;
	char text[IDENTITY_PK_TEXT_BYTES], fp[IDENTITY_FP_BYTES];
	size_t i;

	if (s->authorized_keys[0] == '\0') {
		log_err("no authorized-keys file: this server is open to any key "
		        "(set authorized-keys in expose.conf to close it)");
		return EX_CONFIG;
	}
	if (keys_load(&k, s->authorized_keys, warn_line, NULL, &why) == -1) {
		log_err("authorized-keys %s: %s", s->authorized_keys, why);
		return EX_IOERR;
	}
	r = registry_open_reader(s->registry, &why);
	for (i = 0; i < k.n; i++) {
		struct live_count c = { text, 0 };
		identity_pk_text(k.v[i].pk, text);
		identity_fingerprint(k.v[i].pk, fp);
		if (r)
			registry_list(r, count_key, &c);
		printf("%s tunnels=%d%s%s max-tunnels=%d max-streams=%d %s\n", fp, c.n,
		       k.v[i].names[0] ? " names=" : "", k.v[i].names,
		       k.v[i].max_tunnels ? k.v[i].max_tunnels : s->tunnels_per_key,
		       k.v[i].max_streams ? k.v[i].max_streams : s->streams_per_key,
		       k.v[i].comment);
	}
	registry_close(r);
	keys_free(&k);
	return 0;
}

int
ctl_reserve(const struct settings *s, char **argv)
{
	uint8_t pk[IDENTITY_PK_BYTES];
	char text[IDENTITY_PK_TEXT_BYTES], owner[IDENTITY_PK_TEXT_BYTES + 8];
	const char *why = name_invalid_reason(argv[0]);
	struct registry *r;
	int held;

	if (why) {
		log_err("name '%s': %s", argv[0], why);
		return EX_DATAERR;
	}
	if (identity_pk_parse(argv[1], pk) == -1) {
		log_err("'%s': not a public key (give the base64 that `expose key` prints)",
		        argv[1]);
		return EX_DATAERR;
	}
	identity_pk_text(pk, text);
	if ((r = open_registry(s, 1)) == NULL)
		return EX_IOERR;
	held = registry_name_owner(r, argv[0], (int64_t)time(NULL), owner, sizeof owner);
	if (held == 1 && strcmp(owner, text) != 0) {
		char fp[IDENTITY_FP_BYTES];
		fingerprint(owner, fp);
		log_err("name '%s' belongs to key %s; release it first", argv[0], fp);
		registry_close(r);
		return EX_DATAERR;
	}
	if (held == -1 || registry_name_set(r, argv[0], text, "reserved", (int64_t)time(NULL), 0) == -1) {
		log_err("registry %s: %s", s->registry, registry_error(r));
		registry_close(r);
		return EX_IOERR;
	}
	registry_close(r);
	identity_fingerprint(pk, owner);
	printf("%s reserved for %s\n", argv[0], owner);
	return 0;
}

int
ctl_release(const struct settings *s, char **argv)
{
	struct registry *r = open_registry(s, 1);
	int rc;

	if (r == NULL)
		return EX_IOERR;
	rc = registry_name_release(r, argv[0]);
	if (rc == -1)
		log_err("registry %s: %s", s->registry, registry_error(r));
	registry_close(r);
	if (rc == 0) {
		log_err("name '%s' is not held by any key", argv[0]);
		return EX_DATAERR;
	}
	if (rc == 1)
		printf("%s released\n", argv[0]);
	return rc == -1 ? EX_IOERR : 0;
}

int
ctl_rotate_tickets(const struct settings *s, char **argv)
{
	char path[SETTINGS_PATH_BYTES + 16];
	const char *why = NULL;

	settings_ticket_keys(s, path, sizeof path);
	if (ticket_keys_rotate(path, &why) == -1) {
		log_err("ticket-keys %s: %s", path, why);
		return EX_IOERR;
	}
	printf("%s: a new key seals and opens tickets; a visitor's older ticket gets a full "
	       "handshake and a new one\n", path);
	return 0;
}
