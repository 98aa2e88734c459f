#include "cluster_key.h"

#include <stdio.h>
#include <string.h>

void
cluster_key(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s%s", CLUSTER_PREFIX, name);
}

const char *
cluster_key_name(const char *key)
{
	size_t n = strlen(CLUSTER_PREFIX);

	if (strncmp(key, CLUSTER_PREFIX, n) != 0 || key[n] == '\0')
		return NULL;
	return key + n;
}

char *
cluster_encode(const struct registry_tunnel *t)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
	                      "name", t->name, "host", t->host, "session",
	                      (json_int_t)t->session, "key", t->key, "addr", t->addr,
	                      "url", t->url, "target", t->target,
	                      "since", (json_int_t)t->since, "auth", t->auth ? t->auth : "",
	                      "allow", t->allow ? t->allow : "");
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

int
cluster_decode(const char *value, struct registry_tunnel *t, json_t **hold)
{
	json_error_t err;
	json_int_t session = 0, since = 0;
	json_t *o = json_loads(value, 0, &err);

	memset(t, 0, sizeof *t);
	*hold = NULL;
	if (o == NULL)
		return -1;
	if (json_unpack(o, "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
	                "name", &t->name, "host", &t->host, "session", &session,
	                "key", &t->key, "addr", &t->addr, "url", &t->url,
	                "target", &t->target, "since", &since, "auth", &t->auth,
	                "allow", &t->allow) != 0 || !cluster_host_ok(t->host)) {
		json_decref(o);
		return -1;
	}
	t->session = session;
	t->since = since;
	*hold = o;
	return 0;
}

int
cluster_host_ok(const char *host)
{
	size_t n = strlen(host);

	return n >= 1 && n < CLUSTER_HOST_BYTES &&
	       strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                    "0123456789.-") == n;
}
