#include "settings.h"

#include <assert.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bounds.h"
#include "conf.h"

enum kind { K_STRING, K_INT, K_SCHEME, K_BOOL, K_OPTIONAL };

struct key {
	const char *name;
	enum kind kind;
	size_t offset;
	size_t size;       /* of a string field */
	long min, max;     /* of an int field */
	const char *what;  /* for error messages: what a good value is */
};

#define STR(name, f, what) { name, K_STRING, offsetof(struct settings, f), \
	sizeof(((struct settings *)0)->f), 0, 0, what }
#define INT(name, f, lo, hi, what) { name, K_INT, offsetof(struct settings, f), 0, lo, hi, what }

/* Every key of expose.conf(5); each is also a flag of the same name
 * (settings_getopt). */
static const struct key keys[] = {
	STR("domain", domain, "a domain name"),
	INT("public-port", public_port, 1, 65535, "a port, 1 to 65535"),
	{ "scheme", K_SCHEME, offsetof(struct settings, scheme),
	  sizeof(((struct settings *)0)->scheme), 0, 0, "http or https" },
	STR("listen", listen, "ADDR:PORT"),
	{ "server-urls", K_OPTIONAL, offsetof(struct settings, server_urls),
	  sizeof(((struct settings *)0)->server_urls), 0, 0,
	  "a comma-separated list of ws:// and wss:// URLs, or empty" },
	STR("socket", socket, "a Unix socket path"),
	STR("registry", registry, "a file path"),
	{ "metrics", K_OPTIONAL, offsetof(struct settings, metrics),
	  sizeof(((struct settings *)0)->metrics), 0, 0, "ADDR:PORT, or empty" },
	{ "control", K_OPTIONAL, offsetof(struct settings, control),
	  sizeof(((struct settings *)0)->control), 0, 0, "a Unix socket path, or empty" },
	INT("ping-interval", ping_interval_s, 1, 3600, "seconds, 1 to 3600"),
	INT("streams-per-tunnel", streams_per_tunnel, 1, 100000, "a count, 1 to 100000"),
	INT("streams-per-source", streams_per_source, 1, 100000, "a count, 1 to 100000"),
	{ "authorized-keys", K_OPTIONAL, offsetof(struct settings, authorized_keys),
	  sizeof(((struct settings *)0)->authorized_keys), 0, 0, "a file path, or empty" },
	{ "claim-names", K_BOOL, offsetof(struct settings, claim_names), 0, 0, 1, "yes or no" },
	{ "deny-names", K_OPTIONAL, offsetof(struct settings, deny_names),
	  sizeof(((struct settings *)0)->deny_names), 0, 0, "a comma-separated list of names" },
	INT("name-quarantine", name_quarantine_s, 0, 365 * 86400, "seconds, 0 to a year"),
	INT("names-per-key", names_per_key, 1, 100000, "a count, 1 to 100000"),
	INT("names-max", names_max, 1, 100000000, "a count, 1 to 100000000"),
	INT("claim-expiry", claim_expiry_s, 1, 10 * 365 * 86400, "seconds, 1 to ten years"),
	INT("tunnels-per-key", tunnels_per_key, 1, 100000, "a count, 1 to 100000"),
	INT("streams-per-key", streams_per_key, 1, 1000000, "a count, 1 to 1000000"),
	INT("handshake-rate", handshake_rate, 0, 100000, "per second, 0 (no limit) to 100000"),
	INT("handshake-burst", handshake_burst, 1, 100000, "a count, 1 to 100000"),
	{ "auth-key", K_OPTIONAL, offsetof(struct settings, auth_key),
	  sizeof(((struct settings *)0)->auth_key), 0, 0, "a file path, or empty" },
	INT("auth-failures", auth_failures, 0, 100000, "a count, 0 (no limit) to 100000"),
	INT("auth-failure-period", auth_failure_period_s, 1, 86400, "seconds, 1 to 86400"),
	INT("head-timeout", head_timeout_ms, 100, 600000, "milliseconds, 100 to 600000"),
	INT("idle-timeout", idle_timeout_ms, 100, 3600000, "milliseconds, 100 to 3600000"),
	INT("body-timeout", body_timeout_ms, 100, 3600000, "milliseconds, 100 to 3600000"),
	INT("head-max-bytes", head_max_bytes, 1024, HEAD_MAX_BYTES_CAP, "bytes, 1024 to 262144"),
	INT("fields-max", fields_max, 1, HEAD_FIELDS_CAP, "a count, 1 to 256"),
	{ "cert", K_OPTIONAL, offsetof(struct settings, cert),
	  sizeof(((struct settings *)0)->cert), 0, 0, "a PEM file path" },
	{ "key", K_OPTIONAL, offsetof(struct settings, key),
	  sizeof(((struct settings *)0)->key), 0, 0, "a PEM file path" },
	{ "ticket-keys", K_OPTIONAL, offsetof(struct settings, ticket_keys),
	  sizeof(((struct settings *)0)->ticket_keys), 0, 0, "a file path, or empty" },
	{ "redirect-http", K_BOOL, offsetof(struct settings, redirect_http), 0, 0, 1, "yes or no" },
	INT("https-port", https_port, 1, 65535, "a port, 1 to 65535"),
	INT("http-port", http_port, 0, 65535, "a port, or 0 for none"),
	{ "etcd-endpoints", K_OPTIONAL, offsetof(struct settings, etcd_endpoints),
	  sizeof(((struct settings *)0)->etcd_endpoints), 0, 0,
	  "a comma-separated list of http://HOST:PORT, or empty" },
	{ "host-name", K_OPTIONAL, offsetof(struct settings, host_name),
	  sizeof(((struct settings *)0)->host_name), 0, 0, "a host name, or empty" },
	INT("cluster-lease-ttl", cluster_lease_ttl_s, 2, 3600, "seconds, 2 to 3600"),
	{ "peer-listen", K_OPTIONAL, offsetof(struct settings, peer_listen),
	  sizeof(((struct settings *)0)->peer_listen), 0, 0, "ADDR:PORT, or empty" },
	{ "peers", K_OPTIONAL, offsetof(struct settings, peers),
	  sizeof(((struct settings *)0)->peers), 0, 0,
	  "a comma-separated list of NAME=ADDR:PORT, or empty" },
	{ "peer-keys", K_OPTIONAL, offsetof(struct settings, peer_keys),
	  sizeof(((struct settings *)0)->peer_keys), 0, 0, "a file path, or empty" },
	{ "host-key", K_OPTIONAL, offsetof(struct settings, host_key),
	  sizeof(((struct settings *)0)->host_key), 0, 0, "a file path, or empty" },
};

_Static_assert(sizeof keys / sizeof keys[0] <= SETTINGS_KEYS_MAX,
               "SETTINGS_KEYS_MAX is too small for the keys");

static const struct key *
settings_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(name, keys[i].name) == 0)
			return &keys[i];
	return NULL;
}

void
settings_defaults(struct settings *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->domain, sizeof s->domain, "localhost");
	s->public_port = 80;
	snprintf(s->scheme, sizeof s->scheme, "http");
	snprintf(s->listen, sizeof s->listen, "127.0.0.1:4443");
	snprintf(s->socket, sizeof s->socket, "/run/expose/broker.sock");
	snprintf(s->registry, sizeof s->registry, "/var/lib/expose/registry.db");
	/* control empty: NAME-control.sock beside the edges' NAME.sock */
	s->claim_names = 1;
	snprintf(s->deny_names, sizeof s->deny_names, "%s", SETTINGS_DENY_NAMES_DEFAULT);
	s->name_quarantine_s = NAME_QUARANTINE_S;
	s->names_per_key = NAMES_PER_KEY_MAX;
	s->claim_expiry_s = NAME_CLAIM_EXPIRY_S;
	s->names_max = NAMES_MAX;
	s->tunnels_per_key = TUNNELS_PER_KEY_MAX;
	s->streams_per_key = STREAMS_PER_KEY_MAX;
	s->handshake_rate = HANDSHAKE_RATE_PER_S;
	s->handshake_burst = HANDSHAKE_BURST;
	/* auth_key empty: auth.key next to the registry */
	s->auth_failures = AUTH_FAILURES_MAX;
	s->auth_failure_period_s = AUTH_FAILURE_PERIOD_S;
	s->ping_interval_s = PING_INTERVAL_S;
	s->streams_per_tunnel = STREAMS_PER_TUNNEL_MAX;
	s->streams_per_source = STREAMS_PER_SOURCE_MAX;
	s->head_timeout_ms = HEAD_TIMEOUT_MS;
	s->idle_timeout_ms = IDLE_TIMEOUT_MS;
	s->body_timeout_ms = BODY_TIMEOUT_MS;
	s->head_max_bytes = HEAD_MAX_BYTES;
	s->fields_max = HEAD_MAX_FIELDS;
	s->https_port = 443;
	s->cluster_lease_ttl_s = CLUSTER_LEASE_TTL_S;
}

/* What getopt_long returns for a key: above every char a program uses. */
#define SETTINGS_OPTION_VAL 0x1000
/* A program's own long options, at most. */
#define SETTINGS_OWN_OPTIONS_MAX 16

/* Remembers --key value, once a key. */
static void
flag_set(struct settings_flags *f, const char *key, const char *value)
{
	int i;

	for (i = 0; i < f->n && strcmp(f->key[i], key) != 0; i++)
		;
	f->key[i] = key;
	f->value[i] = value;
	if (i == f->n)
		f->n++;
}

int
settings_getopt(int argc, char **argv, const char *shortopts, const struct option *own,
                size_t n_own, struct settings_flags *flags)
{
	static struct option opts[SETTINGS_OWN_OPTIONS_MAX + SETTINGS_KEYS_MAX + 1];
	size_t i, n = 0;
	int ch, index;

	assert(n_own <= SETTINGS_OWN_OPTIONS_MAX);    /* a program's constant table */
	for (i = 0; i < n_own; i++)
		opts[n++] = own[i];
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		opts[n++] = (struct option){ keys[i].name, required_argument, NULL,
		                             SETTINGS_OPTION_VAL };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	while ((ch = getopt_long(argc, argv, shortopts, opts, &index)) == SETTINGS_OPTION_VAL)
		flag_set(flags, opts[index].name, optarg);
	return ch;
}

int
settings_set(struct settings *s, const char *key, const char *value, char *why,
             size_t why_size)
{
	const struct key *k = settings_find(key);
	const char *flag;
	long v;

	if (k == NULL) {
		snprintf(why, why_size, "unknown key '%s' (see expose.conf(5))", key);
		return -1;
	}
	flag = k->name;
	switch (k->kind) {
	case K_STRING:
		if (*value == '\0' || strlen(value) >= k->size) {
			snprintf(why, why_size, "%s '%s': want %s, at most %zu bytes", flag,
			         value, k->what, k->size - 1);
			return -1;
		}
		snprintf((char *)s + k->offset, k->size, "%s", value);
		return 0;
	case K_OPTIONAL:
		if (strlen(value) >= k->size) {
			snprintf(why, why_size, "%s: longer than %zu bytes", flag, k->size - 1);
			return -1;
		}
		snprintf((char *)s + k->offset, k->size, "%s", value);
		return 0;
	case K_BOOL: {
		int b;
		if (conf_bool(value, &b) == -1) {
			snprintf(why, why_size, "%s '%s': want %s", flag, value, k->what);
			return -1;
		}
		*(int *)(void *)((char *)s + k->offset) = b;
		return 0;
	}
	case K_SCHEME:
		if (strcmp(value, "http") != 0 && strcmp(value, "https") != 0) {
			snprintf(why, why_size, "%s '%s': want %s", flag, value, k->what);
			return -1;
		}
		snprintf((char *)s + k->offset, k->size, "%s", value);
		return 0;
	case K_INT:
		if (conf_int(value, k->min, k->max, &v) == -1) {
			snprintf(why, why_size, "%s '%s': want %s", flag, value, k->what);
			return -1;
		}
		*(int *)(void *)((char *)s + k->offset) = (int)v;
		return 0;
	}
	return -1;
}

static int
load_one(void *ctx, const char *key, const char *value, char *why, size_t size)
{
	return settings_set(ctx, key, value, why, size);
}

/* Reads a file into s.  path NULL reads the default file if it exists.
 * -1 with err "FILE:LINE: ..." on an unknown key, a bad value, or a
 * missing file that was asked for. */
static int
settings_load(struct settings *s, const char *path, char *err, size_t err_size)
{
	int optional = path == NULL;

	if (optional)
		path = SETTINGS_DEFAULT_FILE;
	if (conf_read(path, load_one, s, err, err_size) == 0)
		return 0;
	if (optional && errno == ENOENT)
		return 0;
	return -1;
}

void
settings_print(const struct settings *s, int fd)
{
	size_t i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		const int *iv = (const int *)(const void *)((const char *)s + k->offset);
		if (k->kind == K_INT)
			dprintf(fd, "%s = %d\n", k->name, *iv);
		else if (k->kind == K_BOOL)
			dprintf(fd, "%s = %s\n", k->name, *iv ? "yes" : "no");
		else
			dprintf(fd, "%s = %s\n", k->name, (const char *)s + k->offset);
	}
}

int
settings_build(struct settings *s, const char *path, const struct settings_flags *f,
               char *err, size_t err_size)
{
	char why[CONF_ERROR_BYTES];
	int i;

	settings_defaults(s);
	if (settings_load(s, path, err, err_size) == -1)
		return -1;
	for (i = 0; f && i < f->n; i++) {
		if (settings_set(s, f->key[i], f->value[i], why, sizeof why) == -1) {
			snprintf(err, err_size, "--%s", why);
			return -1;
		}
	}
	return 0;
}

/* A file's path: given, or file beside the registry. */
static void
beside_registry(const struct settings *s, const char *given, const char *file, char *out,
                size_t size)
{
	const char *slash = strrchr(s->registry, '/');

	if (given[0])
		snprintf(out, size, "%s", given);
	else if (slash)
		snprintf(out, size, "%.*s/%s", (int)(slash - s->registry), s->registry, file);
	else
		snprintf(out, size, "%s", file);
}

void
settings_auth_key(const struct settings *s, char *out, size_t size)
{
	beside_registry(s, s->auth_key, "auth.key", out, size);
}

void
settings_host_key(const struct settings *s, char *out, size_t size)
{
	beside_registry(s, s->host_key, "host.key", out, size);
}

void
settings_control(const struct settings *s, char *out, size_t size)
{
	size_t n = strlen(s->socket);

	if (s->control[0]) {
		snprintf(out, size, "%s", s->control);
		return;
	}
	/* broker.sock -> broker-control.sock: one per broker socket */
	if (n > 5 && strcmp(s->socket + n - 5, ".sock") == 0)
		n -= 5;
	snprintf(out, size, "%.*s-control.sock", (int)n, s->socket);
}

void
settings_ticket_keys(const struct settings *s, char *out, size_t size)
{
	beside_registry(s, s->ticket_keys, "tickets.key", out, size);
}
