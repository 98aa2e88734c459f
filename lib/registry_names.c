/*
 * The names table: names claimed for a key, and random names remembered
 * for the key that was given them, with when they lapse (exposed(8)).
 */
#include <stdarg.h>
#include <stdint.h>

#include <sqlite3.h>

#include "registry_private.h"

/* Runs a statement with text and integer binds ("t" or "i" per ?N). */
static int
run(struct registry *r, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int i, rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	va_start(ap, types);
	for (i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? sqlite3_changes(r->db) : -1;
}

/* Whether a names row still holds its name: it has not expired, or a
 * tunnel on it is live (a name in use never lapses). */
#define NAME_HELD "(expires IS NULL OR expires > ?2 OR name IN (SELECT name FROM tunnels))"

int
registry_name_owner(struct registry *r, const char *name, int64_t now, char *key,
                    size_t size)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT key FROM names WHERE name = ?1 AND " NAME_HELD,
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = registry_column_copy(st, 0, key, size) == 0 ? 1 : -1;
	else
		rc = rc == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

int
registry_name_set(struct registry *r, const char *name, const char *key, const char *kind,
                  int64_t since, int64_t expires)
{
	const char *sql = expires ?
	    "INSERT OR REPLACE INTO names (name, key, kind, since, expires) VALUES (?1, ?2, ?3, ?4, ?5)" :
	    "INSERT OR REPLACE INTO names (name, key, kind, since, expires) VALUES (?1, ?2, ?3, ?4, NULL)";

	if (expires)
		return run(r, sql, "tttii", name, key, kind, since, expires) < 0 ? -1 : 0;
	return run(r, sql, "ttti", name, key, kind, since) < 0 ? -1 : 0;
}

int
registry_name_touch(struct registry *r, const char *name, const char *kind, int64_t expires)
{
	return run(r, "UPDATE names SET expires = ?3 WHERE name = ?1 AND kind = ?2",
	           "tti", name, kind, expires) < 0 ? -1 : 0;
}

int
registry_names_held(struct registry *r, const char *key, int64_t now)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM names WHERE key = ?1 AND"
	                       " ((kind = 'claimed' AND " NAME_HELD ") OR (kind = 'random' AND"
	                       " expires > ?2 AND name NOT IN (SELECT name FROM tunnels)))",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

int
registry_name_evict_random(struct registry *r, const char *key)
{
	int n = run(r, "DELETE FROM names WHERE name = (SELECT name FROM names WHERE"
	            " (?1 IS NULL OR key = ?1) AND kind = 'random'"
	            " AND name NOT IN (SELECT name FROM tunnels) ORDER BY expires LIMIT 1)",
	            "t", key);

	return n < 0 ? -1 : n > 0;
}

int
registry_names_count(struct registry *r)
{
	return registry_query_int(r, "SELECT count(*) FROM names");
}

int
registry_name_release(struct registry *r, const char *name)
{
	int n = run(r, "DELETE FROM names WHERE name = ?1", "t", name);

	return n < 0 ? -1 : n > 0;
}

int
registry_names_expire(struct registry *r, int64_t now, int64_t claim_expiry)
{
	/* Claims recorded before they expired start their period now. */
	if (run(r, "UPDATE names SET expires = ?1 WHERE kind = 'claimed' AND expires IS NULL",
	        "i", now + claim_expiry) < 0)
		return -1;
	return run(r, "DELETE FROM names WHERE expires IS NOT NULL AND expires <= ?1"
	           " AND name NOT IN (SELECT name FROM tunnels)", "i", now);
}

int
registry_names_list(struct registry *r, int (*fn)(void *ctx, const struct registry_name *n),
                    void *ctx)
{
	struct registry_name n;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT name, key, kind, since, coalesce(expires, 0)"
	                       " FROM names ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n.name = (const char *)sqlite3_column_text(st, 0);
		n.key = (const char *)sqlite3_column_text(st, 1);
		n.kind = (const char *)sqlite3_column_text(st, 2);
		n.since = sqlite3_column_int64(st, 3);
		n.expires = sqlite3_column_int64(st, 4);
		if (fn(ctx, &n) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
