/*
 * A small etcd v3 client over etcd's JSON gateway (POST /v3/...; keys and
 * values base64).  Blocking, with a deadline on every call: the broker
 * calls it from a thread of its own (cmd/exposed/cluster.c), the mirror
 * from its single loop.  Plain http:// to a private network; a call that
 * cannot reach one endpoint tries the next.
 *
 * Only this file and etcd_watch.c know the wire form; only files that
 * include this header need jansson.
 */
#ifndef EXPOSE_ETCD_H
#define EXPOSE_ETCD_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include <jansson.h>

/* Endpoints in etcd-endpoints (a comma-separated list). */
#define ETCD_ENDPOINTS_MAX 16
/* Room for a reason, for messages. */
#define ETCD_WHY_BYTES 256

struct etcd {
	char host[ETCD_ENDPOINTS_MAX][64];
	char port[ETCD_ENDPOINTS_MAX][8];
	int n;
	int cur;              /* the endpoint that answered last */
	int timeout_ms;       /* per call, per endpoint */
	char why[ETCD_WHY_BYTES];  /* the last failure */
};

/* A key as etcd returned it. */
struct etcd_kv {
	char *key;            /* owned, NUL-terminated (keys are text here) */
	char *value;
	int64_t create_rev, mod_rev, lease;
};

/* Parses "http://HOST:PORT,HOST:PORT,...".  -1 with e->why set on a bad
 * list (https://, no port, too many). */
int etcd_init(struct etcd *e, const char *endpoints, int timeout_ms);
/* POSTs body (not stolen) to path on the first endpoint that answers;
 * the parsed reply, or NULL with e->why set.  A reply of an error
 * ({"error":...}) is NULL too. */
json_t *etcd_call(struct etcd *e, const char *path, json_t *body);

/* Leases.  keepalive: *ttl 0 means the lease is gone. */
int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id);
int etcd_lease_keepalive(struct etcd *e, int64_t id, int *ttl);
int etcd_lease_revoke(struct etcd *e, int64_t id);

/* Puts key=value under lease if key does not exist (1), or returns 0 with
 * the key as it is now in *now (free with etcd_kv_free).  -1 error. */
int etcd_put_new(struct etcd *e, const char *key, const char *value, int64_t lease,
                 struct etcd_kv *now);
/* Puts key=value under lease if key was last changed at mod_rev: 1 done,
 * 0 it changed meanwhile, -1 error. */
int etcd_put_if_rev(struct etcd *e, const char *key, const char *value, int64_t lease,
                    int64_t mod_rev);
/* Deletes key if it is under lease: 1 deleted, 0 not (gone, or another
 * lease's now), -1 error. */
int etcd_delete_if_lease(struct etcd *e, const char *key, int64_t lease);
/* Deletes key if its value is value: 1 deleted, 0 not, -1 error. */
int etcd_delete_if_value(struct etcd *e, const char *key, const char *value);

/* Every key under prefix: *kvs (free with etcd_kvs_free) and *rev, the
 * store's revision they are as of.  The count, or -1. */
int etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kv **kvs,
                      int64_t *rev);
/* A linearizable read of prefix's count: 0 and etcd's revision, or -1.
 * A member cut off from the majority cannot answer it: the call goes on
 * to the next endpoint (e->cur says which answered). */
int etcd_check(struct etcd *e, const char *prefix, int64_t *rev);
void etcd_kv_free(struct etcd_kv *kv);
void etcd_kvs_free(struct etcd_kv *kvs, int n);

/* Fills kv from a reply's {"key":..,"value":..,...}; -1 if malformed. */
int etcd_kv_parse(json_t *o, struct etcd_kv *kv);
/* The end of the range of keys that start with prefix (prefix with its
 * last byte plus one), written into out. */
void etcd_prefix_end(const char *prefix, char *out, size_t size);
/* base64 of s, newly allocated (free()), or NULL. */
char *etcd_b64(const char *s, size_t n);
/* s decoded from base64 into a new NUL-terminated string, or NULL. */
char *etcd_unb64(const char *s);
/* A decimal int64 that etcd sends as a string (or a number); 0 if absent. */
int64_t etcd_int(json_t *o, const char *field);

/* The watch stream (etcd_watch.c). */
struct etcd_watch {
	int fd;
	char *buf;            /* bytes read, not yet decoded */
	size_t len, cap;
	size_t chunk_left;    /* of the current chunk; 0 at a size line */
	char *line;           /* decoded body bytes, not yet a whole line */
	size_t llen, lcap;
	int done;             /* the stream ended */
	int cancelled;        /* etcd cancelled it: list again, do not resume */
	int64_t compact_rev;  /* the compaction that cancelled it, or 0 */
};

enum etcd_event_kind { ETCD_PUT, ETCD_DELETE };
struct etcd_event {
	enum etcd_event_kind kind;
	struct etcd_kv kv;    /* value NULL for a delete */
};

/* Watches every key under prefix from revision rev on.  -1 with e->why. */
int etcd_watch_open(struct etcd *e, struct etcd_watch *w, const char *prefix, int64_t rev);
/* Waits up to timeout_ms for one message: 1 and *events (free with
 * etcd_events_free) / *n filled, 0 nothing yet, -1 the stream broke (a
 * watch from the last revision seen may resume it) or etcd cancelled it
 * (w->cancelled: a compaction past that revision; list again).  why says
 * which. */
int etcd_watch_next(struct etcd_watch *w, int timeout_ms, struct etcd_event **events,
                    int *n, char *why, size_t size);
void etcd_events_free(struct etcd_event *ev, int n);
void etcd_watch_close(struct etcd_watch *w);

/* etcd.c, for etcd_watch.c: a POST's reply head, and the bytes read past it. */
#define ETCD_HEAD_MAX_BYTES 8192
struct etcd_head {
	int status;
	int chunked;
	char rest[ETCD_HEAD_MAX_BYTES];
	size_t rest_len;
};
/* Sends an HTTP/1.1 POST on a new connection to the first endpoint that
 * answers and reads the reply's head: the connection (blocking, with
 * e->timeout_ms on each read), or -1 with e->why set. */
int etcd_post_open(struct etcd *e, const char *path, const char *body,
                   struct etcd_head *h);
/* Reads within ms into p: bytes read, 0 at the end, -1 error or time up. */
ssize_t etcd_read(int fd, void *p, size_t n, int ms);

#endif
