/* The registry: rows by session, takeover by the same key, sweeping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "registry.h"

static char dir[] = "/tmp/expose-unit-XXXXXX";
static char path[256];

static int
setup(void **state)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/registry.db", dir);
	(void)cmd;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct registry_tunnel
row(const char *name, const char *broker, int64_t session, const char *key)
{
	struct registry_tunnel t = {
		.name = name, .broker = broker, .session = session, .key = key,
		.addr = "192.0.2.1", .url = "http://x/", .target = "localhost:3000",
		.since = 1,
	};
	return t;
}

static void
test_add_lookup_remove(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why), *r;
	struct registry_tunnel t = row("app", "/run/b.sock", 1, "K1");
	struct registry_route route;

	assert_non_null(w);
	assert_true(registry_broker_start(w, "/run/b.sock", getpid()) >= 0);
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	r = registry_open_reader(path, &why);
	assert_non_null(r);
	assert_int_equal(registry_lookup(r, "app", &route), 1);
	assert_string_equal(route.socket, "/run/b.sock");
	assert_string_equal(route.auth, "");
	assert_int_equal(registry_lookup(r, "nope", &route), 0);
	/* Another key cannot take the name. */
	t = row("app", "/run/b.sock", 2, "K2");
	assert_int_equal(registry_tunnel_add(w, &t), 0);
	/* The same key can, and the old session's delete then does nothing. */
	t = row("app", "/run/b.sock", 3, "K1");
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	assert_int_equal(registry_tunnel_remove(w, "app", 1), 0);
	assert_int_equal(registry_lookup(r, "app", &route), 1);
	assert_int_equal(registry_tunnel_remove(w, "app", 3), 0);
	assert_int_equal(registry_lookup(r, "app", &route), 0);
	registry_close(r);
	registry_broker_stop(w, "/run/b.sock");
	registry_close(w);
}

/* A broker row on socket for a pid that no longer exists. */
static void
dead_broker(struct registry *w, const char *socket)
{
	int pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	waitpid(pid, NULL, 0);
	assert_true(registry_broker_start(w, socket, pid) >= 0);
}

static void
test_start_sweeps_dead_brokers(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why);
	struct registry_tunnel t;

	assert_non_null(w);
	/* A broker row for a pid that no longer exists, with a tunnel. */
	dead_broker(w, "/run/dead.sock");
	t = row("old", "/run/dead.sock", 9, "K9");
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	/* And rows of an earlier broker on our own socket. */
	t = row("mine", "/run/me.sock", 8, "K8");
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	assert_int_equal(registry_broker_start(w, "/run/me.sock", getpid()), 2);
	assert_int_equal(registry_count(w), 0);
	registry_close(w);
}

/* What the edge does, in a fresh process (this program run again: SQLite's
 * set-up is per process, and a fork would inherit ours): set up for one lookup, then look up a row the writer wrote
 * meanwhile with its WAL still open; a second set-up is refused once
 * SQLite is in use.  Exit codes name the step that failed. */
static int
one_lookup_child(void)
{
	struct registry_route route;
	const char *why = NULL;
	struct registry *r;
	int found;

	if (registry_setup_one_lookup() != 0)
		return 10;
	if ((r = registry_open_reader(path, &why)) == NULL)
		return 11;
	found = registry_lookup(r, "edge", &route);
	if (found != 1 || strcmp(route.socket, "/run/e.sock") != 0 ||
	    strcmp(route.allow, "192.0.2.0/24") != 0)
		return 12;
	if (registry_lookup(r, "none", &route) != 0)
		return 13;
	if (registry_setup_one_lookup() != -1)
		return 14;
	registry_close(r);
	return 0;
}

static void
test_setup_one_lookup_then_lookup(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why);
	struct registry_tunnel t = row("edge", "/run/e.sock", 4, "K4");
	int status;
	pid_t pid;

	assert_non_null(w);
	t.allow = "192.0.2.0/24";
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_registry", "one-lookup", path, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* This process used SQLite already: too late to set it up. */
	assert_int_equal(registry_setup_one_lookup(), -1);
	assert_int_equal(registry_tunnel_remove(w, "edge", 4), 0);
	registry_close(w);
}

static void
test_reader_of_missing_registry_fails(void **state)
{
	const char *why = NULL;
	struct registry_route route;
	struct registry *r = registry_open_reader("/nonexistent/registry.db", &why);

	if (r != NULL) {
		assert_int_equal(registry_lookup(r, "x", &route), -1);
		registry_close(r);
	} else {
		assert_non_null(why);
	}
}

static void
test_names_owned_and_expiring(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why);
	char key[64];

	assert_non_null(w);
	assert_int_equal(registry_name_set(w, "kept", "K1", "reserved", 100, 0), 0);
	assert_int_equal(registry_name_set(w, "rand", "K2", "random", 100, 200), 0);
	assert_int_equal(registry_name_owner(w, "kept", 150, key, sizeof key), 1);
	assert_string_equal(key, "K1");
	assert_int_equal(registry_name_owner(w, "rand", 150, key, sizeof key), 1);
	assert_int_equal(registry_name_owner(w, "rand", 250, key, sizeof key), 0);   /* expired */
	assert_int_equal(registry_name_touch(w, "rand", "random", 400), 0);
	assert_int_equal(registry_name_owner(w, "rand", 250, key, sizeof key), 1);
	assert_int_equal(registry_names_expire(w, 500, 1000), 1);
	assert_int_equal(registry_name_owner(w, "rand", 250, key, sizeof key), 0);
	assert_int_equal(registry_name_release(w, "kept"), 1);
	assert_int_equal(registry_name_release(w, "kept"), 0);
	registry_close(w);
}

/* A name in use never lapses: its row outlives its expiry while a tunnel
 * on it is live, for the owner check, the count and the sweep. */
static void
test_live_names_do_not_lapse_and_keys_are_counted(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why);
	struct registry_tunnel t = row("busy", "/run/c.sock", 7, "K3");
	char key[64];

	assert_non_null(w);
	assert_int_equal(registry_name_set(w, "busy", "K3", "random", 100, 200), 0);
	assert_int_equal(registry_name_set(w, "idle", "K3", "random", 100, 150), 0);
	assert_int_equal(registry_name_set(w, "mine", "K3", "claimed", 100, 0), 0);
	assert_int_equal(registry_name_set(w, "held", "K3", "reserved", 100, 0), 0);
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	assert_int_equal(registry_name_owner(w, "busy", 900, key, sizeof key), 1);
	assert_string_equal(key, "K3");
	/* mine (a claim, no expiry yet); busy is live, idle expired, held reserved */
	assert_int_equal(registry_names_held(w, "K3", 900), 1);
	assert_int_equal(registry_names_held(w, "K3", 120), 2);    /* idle too */
	/* the live random name is never the one evicted */
	assert_int_equal(registry_name_evict_random(w, "K3"), 1);
	assert_int_equal(registry_name_owner(w, "idle", 120, key, sizeof key), 0);
	assert_int_equal(registry_name_evict_random(w, "K3"), 0);
	/* the sweep keeps busy, and gives the old claim an expiry */
	assert_int_equal(registry_names_expire(w, 900, 50), 0);
	assert_int_equal(registry_name_owner(w, "mine", 949, key, sizeof key), 1);
	assert_int_equal(registry_name_owner(w, "mine", 950, key, sizeof key), 0);
	assert_int_equal(registry_tunnel_remove(w, "busy", 7), 0);
	assert_int_equal(registry_names_expire(w, 1000, 50), 2);   /* busy and mine */
	assert_int_equal(registry_names_held(w, "K3", 1000), 0);
	assert_int_equal(registry_name_release(w, "held"), 1);
	registry_close(w);
}

/* expose-mirror's copies: never over a local row, gone at a resync. */
/* A row of a dead broker of this host gives way to the copy; a row with
 * no broker row (a crash mid-start) too. */
static void
test_mirror_replaces_dead_rows(void **state)
{
	const char *why = NULL;
	struct registry *w = registry_open_writer(path, &why), *r;
	struct registry_tunnel copy = row("moved", "", 9, "K2"), t;
	struct registry_route route;

	assert_non_null(w);
	dead_broker(w, "/run/dead.sock");
	t = row("moved", "/run/dead.sock", 3, "K2");
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	t = row("orphan", "/run/none.sock", 4, "K3");
	assert_int_equal(registry_tunnel_add(w, &t), 1);
	copy.host = "h2";
	assert_int_equal(registry_mirror_put(w, &copy), 1);
	copy.name = "orphan";
	assert_int_equal(registry_mirror_put(w, &copy), 1);
	r = registry_open_reader(path, &why);
	assert_int_equal(registry_lookup(r, "moved", &route), 1);
	assert_string_equal(route.socket, "");
	assert_string_equal(route.host, "h2");
	assert_int_equal(registry_lookup(r, "orphan", &route), 1);
	assert_string_equal(route.socket, "");
	registry_close(r);
	assert_int_equal(registry_mirror_count(w), 2);
	registry_close(w);
	unlink(path);
	(void)state;
}

static void
test_mirror_copies(void **state)
{
	const char *why = NULL;
	char sql[512];
	struct registry *w = registry_open_writer(path, &why), *r;
	struct registry_tunnel local = row("mine", "/run/m.sock", 5, "K1");
	struct registry_tunnel copy = row("theirs", "", 9, "K2");
	struct registry_route route;

	assert_non_null(w);
	local.host = "h1";
	copy.host = "h2";
	assert_true(registry_broker_start(w, "/run/m.sock", getpid()) >= 0);
	assert_int_equal(registry_tunnel_add(w, &local), 1);
	assert_int_equal(registry_mirror_put(w, &copy), 1);
	copy.name = "mine";
	assert_int_equal(registry_mirror_put(w, &copy), 0);    /* a live local row holds it */
	r = registry_open_reader(path, &why);
	assert_int_equal(registry_lookup(r, "theirs", &route), 1);
	assert_string_equal(route.socket, "");
	assert_string_equal(route.host, "h2");
	assert_int_equal(registry_lookup(r, "mine", &route), 1);
	assert_string_equal(route.socket, "/run/m.sock");
	assert_string_equal(route.host, "h1");
	registry_close(r);
	assert_int_equal(registry_mirror_count(w), 1);
	assert_int_equal(registry_mirror_delete(w, "mine"), 0);    /* not a copy */
	assert_int_equal(registry_mirror_begin(w), 0);
	assert_int_equal(registry_mirror_end(w, 1), 0);
	assert_int_equal(registry_mirror_count(w), 0);
	assert_int_equal(registry_count(w), 1);
	assert_int_equal(registry_tunnel_remove(w, "mine", 5), 0);
	assert_int_equal(registry_count(w), 0);
	registry_close(w);
	/* An edge reading a registry from before the host column. */
	snprintf(sql, sizeof sql, "sqlite3 %s 'ALTER TABLE tunnels DROP COLUMN host;"
	         " INSERT INTO tunnels (name, broker, session, key, addr, url, target, since)"
	         " VALUES (\"old\", \"/run/o.sock\", 1, \"K\", \"a\", \"u\", \"t\", 1)'",
	         path);
	assert_int_equal(system(sql), 0);
	r = registry_open_reader(path, &why);
	assert_int_equal(registry_lookup(r, "old", &route), 1);
	assert_string_equal(route.socket, "/run/o.sock");
	assert_string_equal(route.host, "");
	registry_close(r);
	unlink(path);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "one-lookup") == 0) {
		snprintf(path, sizeof path, "%s", argv[2]);
		return one_lookup_child();
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_lookup_remove),
		cmocka_unit_test(test_live_names_do_not_lapse_and_keys_are_counted),
		cmocka_unit_test(test_start_sweeps_dead_brokers),
		cmocka_unit_test(test_reader_of_missing_registry_fails),
		cmocka_unit_test(test_setup_one_lookup_then_lookup),
		cmocka_unit_test(test_names_owned_and_expiring),
		cmocka_unit_test(test_mirror_copies),
		cmocka_unit_test(test_mirror_replaces_dead_rows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
