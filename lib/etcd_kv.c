/*
 * etcd's operations that expose uses: leases, a put that only creates,
 * a put and a delete guarded by a revision or a lease (compare-and-swap
 * in one transaction), and a range over a prefix.
 */
#include "etcd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* int64s travel as decimal strings in etcd's JSON. */
#define INT_TEXT_BYTES 24

static void
int_text(int64_t v, char out[INT_TEXT_BYTES])
{
	snprintf(out, INT_TEXT_BYTES, "%" PRId64, v);
}

/* Calls path with body (stolen). */
static json_t *
call(struct etcd *e, const char *path, json_t *body)
{
	json_t *reply;

	if (body == NULL) {
		snprintf(e->why, sizeof e->why, "out of memory");
		return NULL;
	}
	reply = etcd_call(e, path, body);
	json_decref(body);
	return reply;
}

int
etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id)
{
	json_t *r = call(e, "/v3/lease/grant", json_pack("{s:i}", "TTL", ttl_s));

	if (r == NULL)
		return -1;
	*id = etcd_int(r, "ID");
	json_decref(r);
	if (*id == 0) {
		snprintf(e->why, sizeof e->why, "lease grant: no lease in the reply");
		return -1;
	}
	return 0;
}

int
etcd_lease_keepalive(struct etcd *e, int64_t id, int *ttl)
{
	char n[INT_TEXT_BYTES];
	json_t *r;

	int_text(id, n);
	if ((r = call(e, "/v3/lease/keepalive", json_pack("{s:s}", "ID", n))) == NULL)
		return -1;
	*ttl = (int)etcd_int(r, "TTL");
	json_decref(r);
	return 0;
}

int
etcd_lease_revoke(struct etcd *e, int64_t id)
{
	char n[INT_TEXT_BYTES];
	json_t *r;

	int_text(id, n);
	if ((r = call(e, "/v3/lease/revoke", json_pack("{s:s}", "ID", n))) == NULL)
		return -1;
	json_decref(r);
	return 0;
}

/* A transaction on key: compare (built by the caller), then put or
 * delete; on failure, read key.  The reply, or NULL. */
static json_t *
txn(struct etcd *e, const char *key, json_t *compare, json_t *success)
{
	char *k = etcd_b64(key, strlen(key));
	json_t *body;

	if (k == NULL || compare == NULL || success == NULL) {
		free(k);
		json_decref(compare);
		json_decref(success);
		snprintf(e->why, sizeof e->why, "out of memory");
		return NULL;
	}
	json_object_set_new(compare, "key", json_string(k));
	body = json_pack("{s:[o], s:[o], s:[{s:{s:s}}]}", "compare", compare,
	                 "success", success, "failure", "requestRange", "key", k);
	free(k);
	return call(e, "/v3/kv/txn", body);
}

static json_t *
put_op(const char *key, const char *value, int64_t lease)
{
	char *k = etcd_b64(key, strlen(key)), *v = etcd_b64(value, strlen(value));
	char l[INT_TEXT_BYTES];
	json_t *op = NULL;

	int_text(lease, l);
	if (k && v)
		op = json_pack("{s:{s:s, s:s, s:s}}", "requestPut", "key", k, "value", v,
		               "lease", l);
	free(k);
	free(v);
	return op;
}

static int
succeeded(json_t *r)
{
	return json_is_true(json_object_get(r, "succeeded"));
}

/* The key a failed transaction read, if any: 1 and *kv, 0 none, -1. */
static int
failure_kv(json_t *r, struct etcd_kv *kv)
{
	json_t *resp = json_array_get(json_object_get(r, "responses"), 0);
	json_t *range = json_object_get(resp, "response_range");
	json_t *first = json_array_get(json_object_get(range, "kvs"), 0);

	if (first == NULL)
		return 0;
	return etcd_kv_parse(first, kv) == 0 ? 1 : -1;
}

int
etcd_put_new(struct etcd *e, const char *key, const char *value, int64_t lease,
             struct etcd_kv *now)
{
	json_t *r = txn(e, key, json_pack("{s:s, s:s, s:s}", "target", "CREATE",
	                                  "result", "EQUAL", "create_revision", "0"),
	                put_op(key, value, lease));
	int rc;

	memset(now, 0, sizeof *now);
	if (r == NULL)
		return -1;
	if (succeeded(r)) {
		json_decref(r);
		return 1;
	}
	rc = failure_kv(r, now);
	json_decref(r);
	if (rc != 1)
		snprintf(e->why, sizeof e->why, "%s: the transaction failed with no key", key);
	return rc == 1 ? 0 : -1;
}

int
etcd_put_if_rev(struct etcd *e, const char *key, const char *value, int64_t lease,
                int64_t mod_rev)
{
	char rev[INT_TEXT_BYTES];
	json_t *r;
	int ok;

	int_text(mod_rev, rev);
	r = txn(e, key, json_pack("{s:s, s:s, s:s}", "target", "MOD", "result", "EQUAL",
	                          "mod_revision", rev), put_op(key, value, lease));
	if (r == NULL)
		return -1;
	ok = succeeded(r);
	json_decref(r);
	return ok;
}

/* Deletes key if compare (about key) holds: 1 deleted, 0 not, -1 error. */
static int
delete_if(struct etcd *e, const char *key, json_t *compare)
{
	char *k = etcd_b64(key, strlen(key));
	json_t *r, *del;
	int ok;

	del = k ? json_pack("{s:{s:s}}", "requestDeleteRange", "key", k) : NULL;
	free(k);
	if ((r = txn(e, key, compare, del)) == NULL)
		return -1;
	ok = succeeded(r);
	json_decref(r);
	return ok;
}

int
etcd_delete_if_lease(struct etcd *e, const char *key, int64_t lease)
{
	char l[INT_TEXT_BYTES];

	int_text(lease, l);
	return delete_if(e, key, json_pack("{s:s, s:s, s:s}", "target", "LEASE",
	                                   "result", "EQUAL", "lease", l));
}

int
etcd_delete_if_value(struct etcd *e, const char *key, const char *value)
{
	char *v = etcd_b64(value, strlen(value));
	int rc;

	rc = delete_if(e, key, v ? json_pack("{s:s, s:s, s:s}", "target", "VALUE",
	                                     "result", "EQUAL", "value", v) : NULL);
	free(v);
	return rc;
}

int
etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kv **kvs, int64_t *rev)
{
	char end[256], *k = etcd_b64(prefix, strlen(prefix)), *ke;
	json_t *r, *list;
	size_t i, n;

	etcd_prefix_end(prefix, end, sizeof end);
	ke = etcd_b64(end, strlen(end));
	r = k && ke ? call(e, "/v3/kv/range", json_pack("{s:s, s:s}", "key", k,
	                                                "range_end", ke)) : NULL;
	free(k);
	free(ke);
	if (r == NULL)
		return -1;
	*rev = etcd_int(json_object_get(r, "header"), "revision");
	list = json_object_get(r, "kvs");
	n = json_array_size(list);
	*kvs = calloc(n ? n : 1, sizeof **kvs);
	if (*kvs == NULL) {
		json_decref(r);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (etcd_kv_parse(json_array_get(list, i), &(*kvs)[i]) == -1) {
			snprintf(e->why, sizeof e->why, "%s: a malformed key in the listing", prefix);
			etcd_kvs_free(*kvs, (int)i);
			json_decref(r);
			return -1;
		}
	}
	json_decref(r);
	return (int)n;
}

int
etcd_check(struct etcd *e, const char *prefix, int64_t *rev)
{
	char end[256], *k = etcd_b64(prefix, strlen(prefix)), *ke;
	json_t *r;

	etcd_prefix_end(prefix, end, sizeof end);
	ke = etcd_b64(end, strlen(end));
	/* Linearizable (etcd's default): a member answers only with the
	 * leader's word on the revision. */
	r = k && ke ? call(e, "/v3/kv/range", json_pack("{s:s, s:s, s:b}", "key", k,
	                                                "range_end", ke, "count_only", 1)) : NULL;
	free(k);
	free(ke);
	if (r == NULL)
		return -1;
	*rev = etcd_int(json_object_get(r, "header"), "revision");
	json_decref(r);
	return 0;
}
