/*
 * expose-mirror's copies of other hosts' tunnels in the registry: rows
 * with an empty broker, written only here (expose-mirror(8)).
 */
#include <stdbool.h>

#include <sqlite3.h>

#include "registry_private.h"

/* Runs sql with its text parameters; the rows it changed, or -1. */
static int
mirror_exec(struct registry *r, const char *sql, const struct registry_tunnel *t)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) > 1)
		registry_bind_row(st, 2, t);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(r->db);
	sqlite3_finalize(st);
	return n;
}

/* broker_dead(boot_id, pid) in SQL: whether a brokers row of this host is
 * a dead broker's (sweep_dead's test). */
static void
sql_broker_dead(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const char *row_boot = (const char *)sqlite3_value_text(argv[0]);
	char boot[BOOT_ID_BYTES];

	(void)argc;
	registry_read_boot_id(boot);
	sqlite3_result_int(cx, row_boot == NULL ||
	                   registry_broker_is_dead(boot, row_boot, sqlite3_value_int(argv[1])));
}

/* A row of a broker of this host that is dead (a crash; its successor
 * sweeps it at start, but may never come) gives way to the cluster's copy:
 * deleted, in one statement, so that a broker starting meanwhile is
 * either before it (the row is still its predecessor's) or after it (the
 * row was swept).  A live broker's row stays.  -1 on error. */
static int
mirror_drop_dead(struct registry *r, const struct registry_tunnel *t)
{
	if (!r->broker_dead_fn) {
		if (sqlite3_create_function(r->db, "broker_dead", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY,
		                            NULL, sql_broker_dead, NULL, NULL) != SQLITE_OK)
			return -1;
		r->broker_dead_fn = true;
	}
	return mirror_exec(r, "DELETE FROM tunnels WHERE name = ?1 AND broker != '' AND NOT EXISTS"
	                   " (SELECT 1 FROM brokers WHERE socket = tunnels.broker"
	                   " AND NOT broker_dead(boot_id, pid))", t) < 0 ? -1 : 0;
}

int
registry_mirror_put(struct registry *r, const struct registry_tunnel *t)
{
	int n = mirror_drop_dead(r, t) == -1 ? -1 : mirror_exec(r,
	    "INSERT INTO tunnels (name, broker, session, key, addr, url, target, since,"
	    " auth, allow, host) VALUES (?1, '', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	    " ON CONFLICT (name) DO UPDATE SET session = excluded.session,"
	    " key = excluded.key, addr = excluded.addr, url = excluded.url,"
	    " target = excluded.target, since = excluded.since, auth = excluded.auth,"
	    " allow = excluded.allow, host = excluded.host WHERE tunnels.broker = ''", t);

	return n < 0 ? -1 : n > 0;
}

int
registry_mirror_delete(struct registry *r, const char *name)
{
	struct registry_tunnel t = { .name = name };
	int n = mirror_exec(r, "DELETE FROM tunnels WHERE name = ?1 AND broker = ''", &t);

	return n < 0 ? -1 : n > 0;
}

int
registry_mirror_begin(struct registry *r)
{
	if (registry_exec(r, "BEGIN IMMEDIATE") == -1)
		return -1;
	if (registry_exec(r, "DELETE FROM tunnels WHERE broker = ''") == -1) {
		registry_exec(r, "ROLLBACK");
		return -1;
	}
	return 0;
}

int
registry_mirror_end(struct registry *r, int commit)
{
	if (commit && registry_exec(r, "COMMIT") == 0)
		return 0;
	registry_exec(r, "ROLLBACK");
	return -1;
}

int
registry_mirror_count(struct registry *r)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM tunnels WHERE broker = ''", -1,
	                       &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}
