#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bounds.h"
#include "registry_private.h"

/* From the generated sql.c: the migrations in sql/, in order. */
extern const char *const registry_migrations[];
extern const int registry_migration_count;

/* The writer's page cache: negative is KiB, in SQLite's terms. */
#define REGISTRY_CACHE_KIB "-256"
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
/* sun_path holds 108 bytes; no broker socket path is longer. */
#define SOCKET_PATH_MAX_BYTES 108
/* Dead brokers swept at one start; the rest go at the next. */
#define SWEEP_MAX_BROKERS 64

const char *
registry_error(struct registry *r)
{
	return r && r->db ? sqlite3_errmsg(r->db) : "out of memory";
}

int
registry_exec(struct registry *r, const char *sql)
{
	return sqlite3_exec(r->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int
registry_query_int(struct registry *r, const char *sql)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
user_version(struct registry *r)
{
	return registry_query_int(r, "PRAGMA user_version");
}

/* Applies the migrations the database has not seen, each in a transaction. */
static int
migrate(struct registry *r, const char **why)
{
	char pragma[64];
	int v = user_version(r), i;

	if (v < 0) {
		*why = "cannot read its schema version";
		return -1;
	}
	if (v > registry_migration_count) {
		*why = "made by a newer expose (upgrade expose or move the file away)";
		return -1;
	}
	for (i = v; i < registry_migration_count; i++) {
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", i + 1);
		if (registry_exec(r, "BEGIN IMMEDIATE") == -1 ||
		    registry_exec(r, registry_migrations[i]) == -1 || registry_exec(r, pragma) == -1 ||
		    registry_exec(r, "COMMIT") == -1) {
			registry_exec(r, "ROLLBACK");
			*why = "cannot update its schema";
			return -1;
		}
	}
	return 0;
}

static struct registry *
registry_open(const char *path, int flags, const char **why)
{
	struct registry *r = calloc(1, sizeof *r);

	if (r == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if (sqlite3_open_v2(path, &r->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*why = (flags & SQLITE_OPEN_READWRITE) ?
		       "cannot open it for writing (check the directory exists and its owner and mode)" :
		       "cannot open it (is the broker running, and may this user read it?)";
		registry_close(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, REGISTRY_BUSY_TIMEOUT_MS);
	return r;
}

struct registry *
registry_open_writer(const char *path, const char **why)
{
	struct registry *r;
	int one = 1;

	r = registry_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, why);
	if (r == NULL)
		return NULL;
	/* Readers of another user need -wal and -shm to stay: once the
	 * writer deletes them, such a reader gets SQLITE_READONLY. */
	sqlite3_file_control(r->db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
	/* The broker lives for months and the names table only grows with
	 * use: its page cache is bounded small (the hot pages fit) so that
	 * the broker's memory stays flat. */
	if (registry_exec(r, "PRAGMA journal_mode = WAL") == -1 ||
	    registry_exec(r, "PRAGMA synchronous = NORMAL") == -1 ||
	    registry_exec(r, "PRAGMA cache_size = " REGISTRY_CACHE_KIB) == -1) {
		*why = "not writable (run as the registry's owner or fix its mode)";
		goto fail;
	}
	if (migrate(r, why) == -1)
		goto fail;
	if (sqlite3_prepare_v3(r->db,
	        "INSERT INTO tunnels (name, broker, session, key, addr, url, target, since,"
	        " auth, allow, host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	        " ON CONFLICT (name) DO UPDATE SET broker = excluded.broker,"
	        " session = excluded.session, addr = excluded.addr, url = excluded.url,"
	        " target = excluded.target, since = excluded.since, auth = excluded.auth,"
	        " allow = excluded.allow, host = excluded.host"
	        " WHERE tunnels.key = excluded.key",
	        -1, SQLITE_PREPARE_PERSISTENT, &r->add, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db,
	        "DELETE FROM tunnels WHERE name = ?1 AND session = ?2",
	        -1, SQLITE_PREPARE_PERSISTENT, &r->remove, NULL) != SQLITE_OK) {
		*why = "cannot prepare its statements";
		goto fail;
	}
	return r;
fail:
	registry_close(r);
	return NULL;
}

int
registry_setup_one_lookup(void)
{
	/* Each is a global of SQLite's that only counts before its set-up:
	 * one thread needs no mutex; nothing reads the memory statistics;
	 * the page cache's slots allocated ahead (20 pages, each written to
	 * at once) cost a page fault each, for a lookup that reads 2 pages. */
	if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK)
		return -1;
	return 0;
}

struct registry *
registry_open_reader(const char *path, const char **why)
{
	return registry_open(path, SQLITE_OPEN_READONLY, why);
}

void
registry_close(struct registry *r)
{
	if (r == NULL)
		return;
	sqlite3_finalize(r->lookup);
	sqlite3_finalize(r->add);
	sqlite3_finalize(r->remove);
	sqlite3_close(r->db);
	free(r);
}

int
registry_column_copy(sqlite3_stmt *st, int i, char *out, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	if (s == NULL || strlen((const char *)s) >= size)
		return -1;
	strcpy(out, (const char *)s);
	return 0;
}

int
registry_lookup(struct registry *r, const char *name, struct registry_route *route)
{
	int rc;

	/* A registry from before sql/003 (its broker not yet restarted on
	 * the new schema) has no host column: every row is this host's. */
	if (r->lookup == NULL &&
	    sqlite3_prepare_v2(r->db, "SELECT broker, auth, allow, host FROM tunnels"
	                       " WHERE name = ?1", -1, &r->lookup, NULL) != SQLITE_OK &&
	    sqlite3_prepare_v2(r->db, "SELECT broker, auth, allow, '' FROM tunnels"
	                       " WHERE name = ?1", -1, &r->lookup, NULL) != SQLITE_OK)
		return -1;
	sqlite3_reset(r->lookup);
	sqlite3_bind_text(r->lookup, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(r->lookup);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW ||
	    registry_column_copy(r->lookup, 0, route->socket, sizeof route->socket) == -1 ||
	    registry_column_copy(r->lookup, 1, route->auth, sizeof route->auth) == -1 ||
	    registry_column_copy(r->lookup, 2, route->allow, sizeof route->allow) == -1 ||
	    registry_column_copy(r->lookup, 3, route->host, sizeof route->host) == -1)
		rc = -1;
	else
		rc = 1;
	sqlite3_reset(r->lookup);
	return rc;
}

void
registry_read_boot_id(char out[BOOT_ID_BYTES])
{
	int fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd != -1) {
		n = read(fd, out, BOOT_ID_BYTES - 1);
		close(fd);
	}
	if (n <= 0)
		n = 0;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* A broker row is dead if it is from another boot or its pid is gone. */
int
registry_broker_is_dead(const char *boot, const char *row_boot, int pid)
{
	if (strcmp(boot, row_boot) != 0)
		return 1;
	return kill(pid, 0) == -1 && errno == ESRCH;
}

/* Deletes a broker's tunnels and its row. */
static int
sweep(struct registry *r, const char *socket)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(r->db, "DELETE FROM tunnels WHERE broker = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, socket, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(r->db);
	sqlite3_finalize(st);
	if (n < 0 || sqlite3_prepare_v2(r->db, "DELETE FROM brokers WHERE socket = ?1",
	                                -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, socket, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		n = -1;
	sqlite3_finalize(st);
	return n;
}

/* Sweeps every broker row that is dead; our own socket counts as dead. */
static int
sweep_dead(struct registry *r, const char *own, const char *boot)
{
	sqlite3_stmt *st;
	char dead[SWEEP_MAX_BROKERS][SOCKET_PATH_MAX_BYTES];
	int ndead = 0, swept = 0, n, i, rc;

	if (sqlite3_prepare_v2(r->db, "SELECT socket, pid, boot_id FROM brokers",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && ndead < SWEEP_MAX_BROKERS) {
		const char *sock = (const char *)sqlite3_column_text(st, 0);
		const char *rboot = (const char *)sqlite3_column_text(st, 2);
		if (sock == NULL || rboot == NULL || strlen(sock) >= sizeof dead[0])
			continue;
		if (strcmp(sock, own) == 0 ||
		    registry_broker_is_dead(boot, rboot, sqlite3_column_int(st, 1)))
			strcpy(dead[ndead++], sock);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return -1;
	for (i = 0; i < ndead; i++) {
		if ((n = sweep(r, dead[i])) < 0)
			return -1;
		swept += n;
	}
	/* Rows of our socket with no broker row (a crash mid-start). */
	if ((n = sweep(r, own)) < 0)
		return -1;
	return swept + n;
}

int
registry_broker_start(struct registry *r, const char *socket, int pid)
{
	char boot[BOOT_ID_BYTES];
	sqlite3_stmt *st;
	int swept;

	registry_read_boot_id(boot);
	if (registry_exec(r, "BEGIN IMMEDIATE") == -1)
		return -1;
	swept = sweep_dead(r, socket, boot);
	if (swept < 0)
		goto fail;
	if (sqlite3_prepare_v2(r->db,
	        "INSERT INTO brokers (socket, pid, boot_id, started) VALUES (?1, ?2, ?3, ?4)",
	        -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, socket, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, pid);
	sqlite3_bind_text(st, 3, boot, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (registry_exec(r, "COMMIT") == -1)
		goto fail;
	return swept;
fail:
	registry_exec(r, "ROLLBACK");
	return -1;
}

int
registry_broker_stop(struct registry *r, const char *socket)
{
	int rc;

	if (registry_exec(r, "BEGIN IMMEDIATE") == -1)
		return -1;
	rc = sweep(r, socket);
	if (rc < 0 || registry_exec(r, "COMMIT") == -1) {
		registry_exec(r, "ROLLBACK");
		return -1;
	}
	/* Leave a small WAL behind for readers while no broker runs. */
	registry_exec(r, "PRAGMA wal_checkpoint(TRUNCATE)");
	return 0;
}

/* A tunnel row's fields after its name (and broker), from parameter i. */
void
registry_bind_row(sqlite3_stmt *st, int i, const struct registry_tunnel *t)
{
	sqlite3_bind_int64(st, i, t->session);
	sqlite3_bind_text(st, i + 1, t->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i + 2, t->addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i + 3, t->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i + 4, t->target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, i + 5, t->since);
	sqlite3_bind_text(st, i + 6, t->auth ? t->auth : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i + 7, t->allow ? t->allow : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, i + 8, t->host ? t->host : "", -1, SQLITE_STATIC);
}

int
registry_tunnel_add(struct registry *r, const struct registry_tunnel *t)
{
	sqlite3_stmt *st = r->add;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->broker, -1, SQLITE_STATIC);
	registry_bind_row(st, 3, t);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(r->db) > 0 ? 1 : 0;
}

int
registry_tunnel_remove(struct registry *r, const char *name, int64_t session)
{
	sqlite3_stmt *st = r->remove;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, session);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
registry_list(struct registry *r,
              int (*fn)(void *ctx, const struct registry_tunnel *t), void *ctx)
{
	struct registry_tunnel t;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db,
	        "SELECT name, broker, session, key, addr, url, target, since, auth, allow,"
	        " host FROM tunnels ORDER BY since, name", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		t.name = (const char *)sqlite3_column_text(st, 0);
		t.broker = (const char *)sqlite3_column_text(st, 1);
		t.session = sqlite3_column_int64(st, 2);
		t.key = (const char *)sqlite3_column_text(st, 3);
		t.addr = (const char *)sqlite3_column_text(st, 4);
		t.url = (const char *)sqlite3_column_text(st, 5);
		t.target = (const char *)sqlite3_column_text(st, 6);
		t.since = sqlite3_column_int64(st, 7);
		t.auth = (const char *)sqlite3_column_text(st, 8);
		t.allow = (const char *)sqlite3_column_text(st, 9);
		t.host = (const char *)sqlite3_column_text(st, 10);
		if (fn(ctx, &t) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
registry_count(struct registry *r)
{
	return registry_query_int(r, "SELECT count(*) FROM tunnels");
}
