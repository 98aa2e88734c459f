/*
 * exposed: the broker.  Holds the clients' websockets, records their
 * tunnels in the registry, and carries each public connection that an
 * edge brings it to the right client.  See exposed(8).
 */
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <time.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cluster.h"
#include "conf.h"
#include "lifeline.h"
#include "log.h"
#include "registry.h"

/* sysexits */
#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_IOERR 74
#define EX_CONFIG 78

/* Every read is at most this; a websocket frame batch fits one read. */
#define BROKER_IO_BYTES (64 * 1024)
/* malloc_trim once clients fall to a quarter of a peak of at least this many. */
#define TRIM_PEAK_SESSIONS 256
#define TRIM_FALL_FACTOR 4
/* A PEM certificate chain or key larger than this is not one. */
#define CERT_FILE_MAX_BYTES (256 * 1024)
/* TLS 1.2 suites for wss: forward-secret AEADs only. */
#define BROKER_TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct broker *broker;
/* What the settings were built from, to build them again at reload. */
static struct broker_config *config;
static const char *config_file;
static const struct settings_flags *config_flags;

/* What the broker takes in only at start: a reload that changes one of
 * these keeps the running value and says a restart is needed.  Every other
 * key applies at reload (the edges read expose.conf on each connection). */
static const char *const restart_keys[] = {
	"domain", "public-port", "scheme", "listen", "socket", "registry", "control",
	"metrics", "ping-interval", "auth-key", "ticket-keys", "cert", "key",
	"https-port", "http-port",
	"etcd-endpoints", "host-name", "cluster-lease-ttl",
};
/* All settings as "key = value" lines, for comparing two versions. */
#define SETTINGS_TEXT_BYTES 8192

/* Pings a silent client, and hangs up on one that stays silent. */
static lws_retry_bo_t keepalive;

/* Plain HTTP to the client port gets lws's 404; a websocket without our
 * subprotocol is refused. */
static int
http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len)
{
	if (reason == LWS_CALLBACK_ESTABLISHED)
		return -1;
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols ws_protocols[] = {
	{ "http", http_callback, 0, 0, 0, NULL, 0 },
	{ FRAME_SUBPROTOCOL, session_callback, 0, BROKER_IO_BYTES, 0, NULL,
	  MESSAGE_MAX_BYTES + 16 },
	{ FRAME_SUBPROTOCOL_V1, session_old_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct lws_protocols edge_protocols[] = {
	{ "expose-listen", listen_callback, 0, 0, 0, NULL, 0 },
	{ "expose-edge", stream_callback, 0, 0, 0, NULL, 0 },
	{ "expose-control", control_callback, 0, 0, 0, NULL, 0 },
	{ "expose-metrics", metrics_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: exposed [-f FILE] [--check-config] [-v] [--domain DOMAIN] [--public-port N]\n"
	    "               [--scheme http|https] [--listen ADDR:PORT] [--socket PATH]\n"
	    "               [--registry PATH] [--control PATH] [--ping-interval SECONDS]\n"
	    "               [--streams-per-tunnel N] [--streams-per-source N]\n"
	    "               [--authorized-keys FILE]\n"
	    "               [--claim-names yes|no] [--deny-names LIST] [--name-quarantine S]\n"
	    "               [--names-per-key N] [--names-max N] [--claim-expiry S]\n"
	    "               [--server-urls URL,...]\n"
	    "               [--tunnels-per-key N] [--streams-per-key N]\n"
	    "               [--handshake-rate N] [--handshake-burst N] [--auth-key FILE]\n"
	    "               [--auth-failures N] [--auth-failure-period S]\n"
	    "               [--metrics ADDR:PORT] [--cert FILE] [--key FILE]\n"
	    "               [--ticket-keys FILE] [--http-port N]\n"
	    "               [--etcd-endpoints URL,...] [--host-name NAME] [--cluster-lease-ttl S]\n"
	    "Every key of expose.conf(5) is also an option (--KEY VALUE); -h, --help.\n");
}

/* Flags; settings go through the same table as expose.conf. */
static int
parse_args(int argc, char **argv, struct broker_config *c, const char **file,
           struct settings_flags *flags, int *check)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct option opts[sizeof own / sizeof own[0] + SETTINGS_KEYS_MAX + 1];
	int ch, index;

	settings_options(opts, sizeof opts / sizeof opts[0], own, sizeof own / sizeof own[0],
	                 'S');
	while ((ch = getopt_long(argc, argv, "f:vh", opts, &index)) != -1) {
		switch (ch) {
		case 'f': *file = optarg; break;
		case 'C': *check = 1; break;
		case 'v': c->verbose = 1; break;
		case 'S':
			if (settings_flag(flags, opts[index].name, optarg) == -1) {
				log_err("more than %d settings as flags: put some in expose.conf",
				        SETTINGS_FLAGS_MAX);
				return -1;
			}
			break;
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

static int
load_settings(struct broker_config *c, const char *file, const struct settings_flags *flags)
{
	char err[CONF_ERROR_BYTES];
	const char *bad;

	if (settings_build(&c->set, file, flags, err, sizeof err) == -1) {
		log_err("%s", err);
		return -1;
	}
	if ((bad = access_servers_check(c->set.server_urls)) != NULL) {
		log_err("server-urls '%s': want ws://HOST[:PORT] or wss://HOST[:PORT], at most "
		        "%d of them (see expose.conf(5))", bad, SERVER_URLS_MAX);
		return -1;
	}
	if (strlen(c->set.domain) > DOMAIN_MAX_BYTES - NAME_MAX_BYTES - 1) {
		log_err("domain '%s': too long for NAME.DOMAIN to fit 253 bytes", c->set.domain);
		return -1;
	}
	return 0;
}

static void
lws_log(int level, const char *line)
{
	char copy[512];

	snprintf(copy, sizeof copy, "%s", line);
	copy[strcspn(copy, "\n")] = '\0';
	log_msg(level == LLL_ERR ? LOG_ERR : LOG_WARN, "lws: %s", copy);
}

/* The certificate's files as last loaded, to notice a renewal. */
/* What identifies a file's version: a renewal writes or replaces it. */
static uint64_t
file_version(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return 0;
	return (uint64_t)st.st_ino * 1000003u ^ (uint64_t)st.st_size * 65537u ^
	       (uint64_t)st.st_mtim.tv_sec * 1000000000u ^ (uint64_t)st.st_mtim.tv_nsec;
}

static void
cert_seen(struct broker *b)
{
	const char *key = b->cfg->set.key[0] ? b->cfg->set.key : b->cfg->set.cert;

	b->cert_version = file_version(b->cfg->set.cert);
	b->key_version = file_version(key);
}

static int
context_create(struct broker *b)
{
	struct lws_context_creation_info info;

	lws_set_log_level(LLL_ERR | (b->cfg->verbose ? LLL_WARN : 0), lws_log);
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (b->cfg->set.cert[0])
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.pt_serv_buf_size = BROKER_IO_BYTES;
	b->ctx = lws_create_context(&info);
	if (b->ctx == NULL)
		return -1;

	memset(&info, 0, sizeof info);
	info.vhost_name = "clients";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = ws_protocols;
	if (b->cfg->set.cert[0]) {
		/* wss:// for clients, on the edges' certificate. */
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = b->cfg->set.cert;
		info.ssl_private_key_filepath = b->cfg->set.key[0] ? b->cfg->set.key : b->cfg->set.cert;
		info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
		info.ssl_cipher_list = BROKER_TLS12_CIPHERS;
		cert_seen(b);
	}
	keepalive.secs_since_valid_ping = (uint16_t)b->cfg->set.ping_interval_s;
	keepalive.secs_since_valid_hangup =
		(uint16_t)(b->cfg->set.ping_interval_s * PING_HANGUP_FACTOR);
	info.retry_and_idle_policy = &keepalive;
	b->vh_ws = lws_create_vhost(b->ctx, &info);
	if (b->vh_ws == NULL && b->cfg->set.cert[0])
		log_err("cert %s: libwebsockets cannot use it (see above)", b->cfg->set.cert);

	memset(&info, 0, sizeof info);
	info.vhost_name = "edges";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = edge_protocols;
	b->vh_edge = lws_create_vhost(b->ctx, &info);
	return b->vh_ws && b->vh_edge ? 0 : -1;
}

static void
on_hangup(int sig)
{
	broker->reload = 1;
	if (broker->ctx)
		lws_cancel_service(broker->ctx);
}

static void
on_signal(int sig)
{
	broker->stopping = 1;
	if (broker->ctx)
		lws_cancel_service(broker->ctx);
}

static int
registry_start(struct broker *b)
{
	const char *why = NULL;

	b->reg = registry_open_writer(b->cfg->set.registry, &why);
	if (b->reg == NULL) {
		log_err("registry %s: %s", b->cfg->set.registry, why);
		return -1;
	}
	return 0;
}

static int
record_self(struct broker *b)
{
	int swept = registry_broker_start(b->reg, b->socket_path, (int)getpid());

	if (swept < 0) {
		log_err("registry %s: cannot record this broker: %s", b->cfg->set.registry,
		        registry_error(b->reg));
		return -1;
	}
	if (swept > 0)
		log_info("swept %d tunnels left by a broker that stopped", swept);
	access_sweep_names(b);
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *p = f ? malloc(CERT_FILE_MAX_BYTES) : NULL;

	*len = p ? fread(p, 1, CERT_FILE_MAX_BYTES, f) : 0;
	if (f)
		fclose(f);
	return p;
}

/* A renewed certificate serves the next client handshake, no restart. */
static void
cert_reload(struct broker *b)
{
	const char *key = b->cfg->set.key[0] ? b->cfg->set.key : b->cfg->set.cert;
	uint64_t cert_was = b->cert_version, key_was = b->key_version;
	size_t clen, klen;
	char *c, *k;

	cert_seen(b);
	if (b->cert_version == cert_was && b->key_version == key_was)
		return;
	c = slurp(b->cfg->set.cert, &clen);
	k = slurp(key, &klen);
	if (c && k && lws_tls_cert_updated(b->ctx, b->cfg->set.cert, key, c, clen, k, klen) == 0)
		log_info("cert %s: reloaded", b->cfg->set.cert);
	else
		log_err("cert %s: cannot reload it; serving the previous one", b->cfg->set.cert);
	free(c);
	free(k);
}

/* settings_print's lines, into text (NUL-terminated). */
static int
settings_text(const struct settings *set, char *text, size_t size)
{
	int p[2];
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	settings_print(set, p[1]);
	close(p[1]);
	n = read(p[0], text, size - 1);
	close(p[0]);
	text[n > 0 ? n : 0] = '\0';
	return n > 0 ? 0 : -1;
}

/* The value of key in settings_text's lines, or NULL. */
static const char *
text_value(const char *text, const char *key, char *out, size_t size)
{
	size_t n = strlen(key);
	const char *p = text;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, n) == 0 && strncmp(p + n, " = ", 3) == 0) {
			snprintf(out, size, "%.*s", (int)strcspn(p + n + 3, "\n"), p + n + 3);
			return out;
		}
	return NULL;
}

/* The restart-only keys of next back to the running values, each said. */
static void
keep_restart_keys(const struct settings *now, struct settings *next)
{
	static char was[SETTINGS_TEXT_BYTES], will[SETTINGS_TEXT_BYTES];
	char a[SETTINGS_PATH_BYTES + 64], c[SETTINGS_PATH_BYTES + 64], why[128];
	size_t i;

	if (settings_text(now, was, sizeof was) == -1 ||
	    settings_text(next, will, sizeof will) == -1) {
		*next = *now;
		return;
	}
	for (i = 0; i < sizeof restart_keys / sizeof restart_keys[0]; i++) {
		const char *k = restart_keys[i];
		if (!text_value(was, k, a, sizeof a) || !text_value(will, k, c, sizeof c) ||
		    strcmp(a, c) == 0)
			continue;
		log_warn("reload: %s changed to '%s': it applies at the next restart "
		         "(systemctl restart exposed drops every tunnel)", k, c);
		if (settings_set(next, k, a, why, sizeof why) == -1)
			*next = *now;
	}
}

static void
warn_key_line(void *ctx, const char *msg)
{
	log_warn("authorized_keys %s", msg);
}

int
broker_reload(struct broker *b, char *msg, size_t size)
{
	struct settings next;
	struct keys keys = { 0 };
	char err[CONF_ERROR_BYTES];
	const char *why = NULL;

	b->reload = 0;
	if (settings_build(&next, config_file, config_flags, err, sizeof err) == -1) {
		snprintf(msg, size, "%s; still running with the previous settings", err);
		log_err("reload: %s", msg);
		return -1;
	}
	keep_restart_keys(&config->set, &next);
	if (next.authorized_keys[0] &&
	    keys_load(&keys, next.authorized_keys, warn_key_line, NULL, &why) == -1) {
		snprintf(msg, size, "authorized-keys %s: %s; still running with the previous "
		         "settings", next.authorized_keys, why);
		log_err("reload: %s", msg);
		return -1;
	}
	keys_free(&b->authorized);
	b->authorized = keys;
	config->set = next;
	ratelimit_init(&b->handshakes, (uint32_t)next.handshake_rate,
	               (uint32_t)next.handshake_burst);
	if (next.cert[0])
		cert_reload(b);
	snprintf(msg, size, "reloaded %s: %s", config_file ? config_file : SETTINGS_DEFAULT_FILE,
	         next.authorized_keys[0] ? "closed server" : "open server");
	log_info("%s, %zu authorized keys", msg, b->authorized.n);
	return 0;
}

/* STATUS= for systemctl status, when the counts change. */
static void
tell_status(struct broker *b)
{
	char status[64], msg[80];

	snprintf(status, sizeof status, "%u tunnels, %u clients, %u streams", b->ntunnels,
	         b->nsessions, b->nstreams);
	if (strcmp(status, b->status) == 0)
		return;
	snprintf(b->status, sizeof b->status, "%s", status);
	snprintf(msg, sizeof msg, "STATUS=%s", status);
	sock_notify(msg);
}

/* After many clients leave, free heap at the top stays mapped: hand it back
 * once the count has fallen well below its peak. */
static void
trim_memory(struct broker *b)
{
	if (b->nsessions > b->peak_sessions)
		b->peak_sessions = b->nsessions;
	if (b->peak_sessions >= TRIM_PEAK_SESSIONS &&
	    b->nsessions <= b->peak_sessions / TRIM_FALL_FACTOR) {
		malloc_trim(0);
		b->peak_sessions = b->nsessions;
	}
}

/* From the event loop itself: a stuck loop stops the pings and systemd
 * restarts the broker. */
static void
watchdog_tick(lws_sorted_usec_list_t *sul)
{
	struct broker *b = broker;

	sock_notify("WATCHDOG=1");
	tell_status(b);
	trim_memory(b);
	access_sweep_names(b);
	if (b->cfg->set.cert[0])
		cert_reload(b);
	lws_sul_schedule(b->ctx, 0, &b->watchdog, watchdog_tick, b->watchdog_us);
}

static void
watchdog_start(struct broker *b)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	long long us = usec ? strtoll(usec, NULL, 10) : 0;

	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		us = 0;
	/* The tick also carries STATUS=, certificate reloads, heap trims and
	 * name sweeps: once a second, or at half the watchdog if that is
	 * shorter.  Pinging systemd more often than it asks is harmless. */
	b->watchdog_us = us > 0 && us / 2 < LWS_US_PER_SEC ? (lws_usec_t)us / 2 : LWS_US_PER_SEC;
	lws_sul_schedule(b->ctx, 0, &b->watchdog, watchdog_tick, b->watchdog_us);
}

static void
run(struct broker *b)
{
	char status[320];

	snprintf(status, sizeof status, "READY=1\nSTATUS=serving %s", b->cfg->set.domain);
	sock_notify(status);
	watchdog_start(b);
	log_info("ready domain=%s listen=%s socket=%s registry=%s", b->cfg->set.domain,
	         b->own_socket ? b->cfg->set.listen : "systemd", b->socket_path,
	         b->cfg->set.registry);
	while (!b->stopping) {
		if (lws_service(b->ctx, 0) < 0)
			break;
		cluster_poll(b);
		if (b->reload) {
			char msg[CONF_ERROR_BYTES + 128];
			broker_reload(b, msg, sizeof msg);
		}
	}
	sock_notify("STOPPING=1");
}

static void
shutdown_broker(struct broker *b)
{
	cluster_stop(b);    /* first: its lease takes every key of this broker */
	if (b->ctx)
		lws_context_destroy(b->ctx);    /* closes every session and stream */
	if (b->reg && b->socket_path[0] && registry_broker_stop(b->reg, b->socket_path) == -1)
		log_err("registry %s: cannot remove this broker: %s", b->cfg->set.registry,
		        registry_error(b->reg));
	registry_close(b->reg);
	map_free(&b->names);
	access_stop(b);
	if (b->own_socket)
		unlink(b->socket_path);
	if (b->own_control && b->control_path[0])
		unlink(b->control_path);
}

int
main(int argc, char **argv)
{
	struct broker_config cfg = { .verbose = 0 };
	struct settings_flags flags = { .n = 0 };
	const char *file = NULL;
	struct broker b;
	int rc = 0, check = 0;

	lifeline_from_env();
	log_init("exposed", LOG_INFO);
	/* lws zero-fills a receive buffer of BROKER_IO_BYTES per client at
	 * connect.  From mmap, calloc's zeroes are the kernel's untouched pages
	 * (no RSS until used); from the heap they would all be written. */
	mallopt(M_MMAP_THRESHOLD, BROKER_IO_BYTES);
	if (parse_args(argc, argv, &cfg, &file, &flags, &check) == -1)
		return EX_USAGE;
	if (load_settings(&cfg, file, &flags) == -1)
		return EX_CONFIG;
	if (check) {
		settings_print(&cfg.set, STDOUT_FILENO);
		return 0;
	}
	if (cfg.verbose)
		log_init("exposed", LOG_DEBUG);
	memset(&b, 0, sizeof b);
	b.cfg = &cfg;
	map_init(&b.names);
	broker = &b;
	config = &cfg;
	config_file = file;
	config_flags = &flags;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, on_hangup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (identity_init() == -1) {
		log_err("libsodium cannot start");
		return EX_SOFTWARE;
	}
	if (registry_start(&b) == -1)
		return EX_IOERR;
	if (access_start(&b) == -1) {
		registry_close(b.reg);
		access_stop(&b);
		return EX_CONFIG;
	}
	if (context_create(&b) == -1) {
		log_err("cannot start libwebsockets");
		rc = EX_SOFTWARE;
	} else if (listen_setup(&b) == -1) {
		rc = EX_UNAVAILABLE;
	} else if (access_servers(&b) == -1) {
		rc = EX_CONFIG;
	} else if (record_self(&b) == -1) {
		rc = EX_IOERR;
	} else if (cluster_start(&b) == -1) {
		rc = EX_CONFIG;
	} else {
		run(&b);
	}
	shutdown_broker(&b);
	return rc;
}
