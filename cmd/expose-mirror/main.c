/*
 * expose-mirror: copies the tunnels that other hosts' brokers hold from
 * etcd into this host's registry, where the edges look names up.  Lists
 * every key under CLUSTER_PREFIX and replaces the copies in one
 * transaction (a resync), then watches from the listing's revision on:
 * a put writes a copy, a delete removes it.  A broken watch (a member
 * gone) is resumed from the last revision seen, on whichever member
 * answers; a watch etcd cancels (a compaction went past that revision)
 * means another resync.  Every MIRROR_CHECK_MS the member watched must
 * answer a linearizable read: one cut off from the majority cannot, and
 * the watch moves to a member that can.  The tunnels of this host's own
 * broker are its broker's rows already and are left alone while it
 * lives; a put for a name a live local row still holds is held back and
 * tried again each tick (held.h).  See expose-mirror(8).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sysexits.h>

#include "bounds.h"
#include "clock.h"
#include "cluster_key.h"
#include "conf.h"
#include "etcd.h"
#include "held.h"
#include "lifeline.h"
#include "log.h"
#include "registry.h"
#include "settings.h"
#include "sock.h"

/* How often a quiet watch looks up to see whether it should stop. */
#define MIRROR_TICK_MS 250    /* also how often held-back copies are tried */

static volatile sig_atomic_t stopping;

struct mirror {
	struct settings set;
	struct etcd etcd;
	struct registry *reg;
	int64_t rev;          /* etcd's revision the copies are as of */
	int ready;            /* READY=1 told */
	int synced;           /* the copies are a listing's plus its watch's */
	int lost;             /* no member serves the cluster: said once */
	struct held held;     /* copies a live local row holds back (held.h) */
};

/* How a watch ended. */
enum follow_end { FOLLOW_STOPPED, FOLLOW_RESUME, FOLLOW_RESYNC };

static void
on_signal(int sig)
{
	stopping = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: expose-mirror [-f FILE] [-v] [--etcd-endpoints URL,...] [--host-name NAME]\n"
	    "                     [--registry PATH]\n"
	    "Copies other hosts' tunnels from etcd into this host's registry.\n"
	    "Every key of expose.conf(5) is also an option (--KEY VALUE).\n");
}

static int
parse_args(int argc, char **argv, const char **file, struct settings_flags *flags,
           int *verbose)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c;

	while ((c = settings_getopt(argc, argv, "f:vh", own, sizeof own / sizeof own[0],
	                            flags)) != -1) {
		switch (c) {
		case 'f': *file = optarg; break;
		case 'v': *verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* name's value into a copy: 1 written or nothing to copy, 0 a live row
 * of this host's broker holds the name (the copy is held back), -1 error. */
static int
copy_value(struct mirror *m, const char *name, const char *value)
{
	struct registry_tunnel t;
	json_t *hold;
	int rc;

	if (value == NULL)
		return 1;
	if (cluster_decode(value, &t, &hold) == -1 || strcmp(t.name, name) != 0) {
		char key[CLUSTER_KEY_BYTES];

		cluster_key(name, key, sizeof key);
		log_warn("etcd key %s: not a tunnel's value; skipped", key);
		json_decref(hold);
		return 1;
	}
	if (strcmp(t.host, m->set.host_name) == 0) {
		json_decref(hold);
		return 1;    /* this host's broker has the row itself */
	}
	rc = registry_mirror_put(m->reg, &t);
	if (rc == -1)
		log_err("registry %s: cannot copy tunnel %s: %s", m->set.registry, name,
		        registry_error(m->reg));
	else if (rc == 1)
		log_debug("copied name=%s host=%s", name, t.host);
	json_decref(hold);
	return rc;
}

/* A key's value into a copy, or held back; 0 also for keys that are not
 * copied. */
static int
apply_put(struct mirror *m, const struct etcd_kv *kv)
{
	const char *name = cluster_key_name(kv->key);
	int rc;

	if (name == NULL)
		return 0;
	rc = copy_value(m, name, kv->value);
	if (rc == 0)
		held_keep(&m->held, name, kv->value);
	else
		held_forget(&m->held, name);
	return rc == -1 ? -1 : 0;
}

/* The copies held back, tried again: a local row that went (its session
 * closed, or a new broker swept it) or whose broker died lets them in. */
static void
retry_held(struct mirror *m)
{
	int i;

	for (i = m->held.n - 1; i >= 0; i--)
		if (copy_value(m, m->held.c[i].name, m->held.c[i].value) != 0)
			held_forget(&m->held, m->held.c[i].name);
}

static int
apply_delete(struct mirror *m, const struct etcd_kv *kv)
{
	const char *name = cluster_key_name(kv->key);

	if (name == NULL)
		return 0;
	held_forget(&m->held, name);
	if (registry_mirror_delete(m->reg, name) == -1) {
		log_err("registry %s: cannot delete the copy of %s: %s", m->set.registry, name,
		        registry_error(m->reg));
		return -1;
	}
	log_debug("dropped name=%s", name);
	return 0;
}

/* Every copy replaced by etcd's listing, in one transaction. */
static int
resync(struct mirror *m)
{
	struct etcd_kv *kvs = NULL;
	int n, i, rc = 0;

	if ((n = etcd_range_prefix(&m->etcd, CLUSTER_PREFIX, &kvs, &m->rev)) == -1) {
		log_warn("etcd: cannot list tunnels: %s", m->etcd.why);
		return -1;
	}
	if (registry_mirror_begin(m->reg) == -1) {
		log_err("registry %s: %s", m->set.registry, registry_error(m->reg));
		etcd_kvs_free(kvs, n);
		return -1;
	}
	held_clear(&m->held);    /* the listing says all there is */
	for (i = 0; i < n && rc == 0; i++)
		rc = apply_put(m, &kvs[i]);
	etcd_kvs_free(kvs, n);
	if (registry_mirror_end(m->reg, rc == 0) == -1) {
		log_err("registry %s: the resync did not commit: %s", m->set.registry,
		        registry_error(m->reg));
		return -1;
	}
	log_info("synced copies=%d revision=%lld", registry_mirror_count(m->reg),
	         (long long)m->rev);
	if (!m->ready) {
		sock_notify("READY=1");
		m->ready = 1;
	}
	return 0;
}

/* Whether the watched member (the endpoint that answered last) still
 * serves the cluster: 0 if another member had to answer, and the watch
 * moves there.  When none can, the copies stay as they are (the edges
 * keep routing on them) and the watch too. */
static int
member_serves(struct mirror *m)
{
	int watched = m->etcd.cur;
	int64_t rev;

	if (etcd_check(&m->etcd, CLUSTER_PREFIX, &rev) == -1) {
		if (!m->lost)
			log_warn("no etcd member can serve the cluster now (%s); the copies stay "
			         "as they are", m->etcd.why);
		m->lost = 1;
		m->etcd.cur = watched;
		return 1;
	}
	if (m->lost)
		log_info("etcd serves the cluster again revision=%lld", (long long)rev);
	m->lost = 0;
	if (m->etcd.cur == watched)
		return 1;
	log_warn("etcd member %s:%s cannot serve the cluster (cut off from the majority?); "
	         "watching %s:%s from revision %lld", m->etcd.host[watched],
	         m->etcd.port[watched], m->etcd.host[m->etcd.cur], m->etcd.port[m->etcd.cur],
	         (long long)m->rev + 1);
	return 0;
}

static void
apply_events(struct mirror *m, struct etcd_event *ev, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (ev[i].kind == ETCD_PUT)
			apply_put(m, &ev[i].kv);
		else
			apply_delete(m, &ev[i].kv);
		m->rev = ev[i].kv.mod_rev;
	}
}

/* Follows the watch from m->rev + 1 until it breaks or we stop. */
static enum follow_end
follow(struct mirror *m)
{
	struct etcd_watch w;
	struct etcd_event *ev;
	char why[ETCD_WHY_BYTES];
	int64_t checked = clock_ms();
	int n, rc;

	if (etcd_watch_open(&m->etcd, &w, CLUSTER_PREFIX, m->rev + 1) == -1) {
		log_warn("etcd: cannot watch: %s", m->etcd.why);
		return FOLLOW_RESUME;
	}
	while (!stopping) {
		rc = etcd_watch_next(&w, MIRROR_TICK_MS, &ev, &n, why, sizeof why);
		if (rc == -1) {
			log_warn("%s: %s", why, w.cancelled ? "resyncing" : "resuming the watch");
			rc = w.cancelled;
			etcd_watch_close(&w);
			return rc ? FOLLOW_RESYNC : FOLLOW_RESUME;
		}
		apply_events(m, ev, n);
		etcd_events_free(ev, n);
		retry_held(m);
		if (clock_ms() - checked >= MIRROR_CHECK_MS) {
			checked = clock_ms();
			if (!member_serves(m)) {
				etcd_watch_close(&w);
				return FOLLOW_RESUME;
			}
		}
	}
	etcd_watch_close(&w);
	return FOLLOW_STOPPED;
}

static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

static int
setup(struct mirror *m, const char *file, const struct settings_flags *flags)
{
	char err[CONF_ERROR_BYTES];
	const char *why = NULL;

	if (settings_build(&m->set, file, flags, err, sizeof err) == -1) {
		log_err("%s", err);
		return EX_CONFIG;
	}
	if (m->set.etcd_endpoints[0] == '\0' || !cluster_host_ok(m->set.host_name)) {
		log_err("etcd-endpoints and host-name must be set (expose.conf(5)): "
		        "the mirror only runs on a host of a cluster");
		return EX_CONFIG;
	}
	if (etcd_init(&m->etcd, m->set.etcd_endpoints, ETCD_CALL_TIMEOUT_MS) == -1) {
		log_err("etcd-endpoints '%s': %s", m->set.etcd_endpoints, m->etcd.why);
		return EX_CONFIG;
	}
	if ((m->reg = registry_open_writer(m->set.registry, &why)) == NULL) {
		log_err("registry %s: %s", m->set.registry, why);
		return EX_IOERR;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct mirror m;
	struct settings_flags flags = { .n = 0 };
	const char *file = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int verbose = 0, rc;

	lifeline_from_env();
	log_init("expose-mirror", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (parse_args(argc, argv, &file, &flags, &verbose) == -1)
		return EX_USAGE;
	if (verbose)
		log_init("expose-mirror", LOG_DEBUG);
	if ((rc = setup(&m, file, &flags)) != 0)
		return rc;
	log_info("started host=%s etcd=%s registry=%s", m.set.host_name,
	         m.set.etcd_endpoints, m.set.registry);
	while (!stopping) {
		if (!m.synced && resync(&m) == 0)
			m.synced = 1;
		if (m.synced && follow(&m) == FOLLOW_RESYNC)
			m.synced = 0;
		if (!stopping)
			pause_ms(MIRROR_RETRY_MS);
	}
	/* Copies with no mirror to keep them true would go stale: they go. */
	if (registry_mirror_begin(m.reg) == -1 || registry_mirror_end(m.reg, 1) == -1)
		log_err("registry %s: cannot delete the copies: %s", m.set.registry,
		        registry_error(m.reg));
	registry_close(m.reg);
	held_clear(&m.held);
	log_info("stopped");
	return 0;
}
