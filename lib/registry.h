/*
 * The registry: a SQLite database of live tunnels (see sql/).  The broker
 * is its only writer; edges and exposectl read it.  Only this file knows
 * it is SQLite, so moving to a replicated engine touches one file.
 */
#ifndef EXPOSE_REGISTRY_H
#define EXPOSE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

struct registry;

struct registry_tunnel {
	const char *name;
	const char *broker;    /* the broker's edge socket */
	int64_t session;
	const char *key;
	const char *addr;
	const char *url;
	const char *target;
	int64_t since;
	const char *auth;      /* basic auth, stored form (auth.h); "" for none */
	const char *allow;     /* allowed sources (cidr.h); "" for all */
	const char *host;      /* the host whose broker holds it; "" or NULL: one host */
};

/* What an edge needs to serve a tunnel. */
struct registry_route {
	char socket[108];
	char auth[256];
	char allow[1536];
	char host[64];         /* "" on one host; with socket "": held elsewhere */
};

/* A name held by a key (sql/002). */
struct registry_name {
	const char *name;
	const char *key;
	const char *kind;      /* "claimed", "reserved" or "random" */
	int64_t since;
	int64_t expires;       /* 0: never */
};

/* Opens the registry.  The writer creates it, brings its schema up to
 * date and keeps its WAL files for readers; readers only read.  NULL with
 * *why set on failure. */
struct registry *registry_open_writer(const char *path, const char **why);
struct registry *registry_open_reader(const char *path, const char **why);
void registry_close(struct registry *r);
/* For a process that opens the registry once, from one thread, to look up
 * a name (the edge, once per connection): SQLite set up for that, without
 * mutexes, memory statistics or a page cache allocated ahead.  Call it
 * before any other registry function; 0, or -1 if SQLite was in use. */
int registry_setup_one_lookup(void);
/* The last error from SQLite, for messages. */
const char *registry_error(struct registry *r);

/* The edge: the broker holding name and the tunnel's access rules.  1
 * found, 0 no such tunnel, -1 error. */
int registry_lookup(struct registry *r, const char *name, struct registry_route *route);

/* A broker starts: sweeps the rows of brokers that are gone and of any
 * earlier broker on the same socket, then records itself.  Returns the
 * number of tunnel rows swept, or -1. */
int registry_broker_start(struct registry *r, const char *socket, int pid);
/* A broker stops: deletes its tunnels and itself. */
int registry_broker_stop(struct registry *r, const char *socket);

/* Adds a tunnel.  If the name is taken by the same key, the row moves to
 * the new session (a client that reconnects takes its name back at
 * once).  1 added, 0 taken by another key, -1 error. */
int registry_tunnel_add(struct registry *r, const struct registry_tunnel *t);
/* Deletes name only while it still belongs to session. */
int registry_tunnel_remove(struct registry *r, const char *name, int64_t session);

/* Calls fn for each live tunnel, oldest first; stops early if fn returns
 * non-zero.  -1 on error. */
int registry_list(struct registry *r,
                  int (*fn)(void *ctx, const struct registry_tunnel *t),
                  void *ctx);
/* Live tunnel rows in all, or -1. */
int registry_count(struct registry *r);

/* Names.  The owner of name now: a row that has not expired, or whose
 * name a live tunnel uses (so a name in use never lapses).  1 and key
 * copied, 0 none, -1 error. */
int registry_name_owner(struct registry *r, const char *name, int64_t now,
                        char *key, size_t size);
/* Records name as key's (replacing any row); expires 0: never. */
int registry_name_set(struct registry *r, const char *name, const char *key,
                      const char *kind, int64_t since, int64_t expires);
/* Moves the expiry of name if it is of kind. */
int registry_name_touch(struct registry *r, const char *name, const char *kind,
                        int64_t expires);
/* Names key holds now that count to its limit: its claims, and its random
 * names in quarantine (those of live tunnels count to its tunnels
 * instead; reserved ones not at all).  -1 on error. */
int registry_names_held(struct registry *r, const char *key, int64_t now);
/* Frees key's random name (any key's, key NULL) that expires first and
 * no tunnel uses: 1 one went, 0 there was none, -1 error. */
int registry_name_evict_random(struct registry *r, const char *key);
/* Rows in the names table, or -1. */
int registry_names_count(struct registry *r);
/* 1 deleted, 0 there was none, -1 error. */
int registry_name_release(struct registry *r, const char *name);
int registry_names_list(struct registry *r,
                        int (*fn)(void *ctx, const struct registry_name *n), void *ctx);
/* Deletes names whose time is up and that no live tunnel uses, after
 * giving claims without an expiry (from before claims expired) one of
 * claim_expiry seconds; returns how many went, or -1. */
int registry_names_expire(struct registry *r, int64_t now, int64_t claim_expiry);

/* More than one host: expose-mirror's copies of the tunnels that other
 * hosts' brokers hold (host set, broker empty).  A put replaces the copy
 * of name, and a row of a dead broker of this host, but never a live
 * one's: 1 written, 0 a live broker's row holds name, -1 error. */
int registry_mirror_put(struct registry *r, const struct registry_tunnel *t);
/* Deletes the copy of name: 1 deleted, 0 there was none, -1 error. */
int registry_mirror_delete(struct registry *r, const char *name);
/* A resync: begin deletes every copy inside a transaction that end
 * commits (commit 0) or rolls back, so readers see the old set or the new. */
int registry_mirror_begin(struct registry *r);
int registry_mirror_end(struct registry *r, int commit);
/* Copies held now, or -1. */
int registry_mirror_count(struct registry *r);

#endif
