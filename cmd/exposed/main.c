/*
 * exposed: the broker.  Holds the clients' websockets, records their
 * tunnels in the registry, and carries each public connection that an
 * edge brings it to the right client.  See exposed(8).
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sysexits.h>

#include "broker.h"
#include "cluster.h"
#include "conf.h"
#include "lifeline.h"
#include "log.h"
#include "log_lws.h"
#include "peer.h"
#include "registry.h"

/* Allocations from this size up come from mmap (see main). */
#define BROKER_MMAP_MIN_BYTES (64 * 1024)
/* TLS 1.2 suites for wss: forward-secret AEADs only. */
#define BROKER_TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

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
	{ FRAME_SUBPROTOCOL, session_callback, 0, IO_CHUNK_BYTES, 0, NULL,
	  MUX_MESSAGE_BYTES + 16 },
	{ FRAME_SUBPROTOCOL_V1, session_old_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct lws_protocols edge_protocols[] = {
	{ "expose-listen", listen_callback, 0, 0, 0, NULL, 0 },
	{ "expose-edge", stream_callback, 0, 0, 0, NULL, 0 },
	{ "expose-peer-in", peer_in_callback, 0, 0, 0, NULL, 0 },
	{ "expose-peer-out", peer_out_callback, 0, 0, 0, NULL, 0 },
	{ "expose-peer-pipe", peer_pipe_callback, 0, 0, 0, NULL, 0 },
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
parse_args(int argc, char **argv, struct broker_config *c, int *check)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
	};
	int ch;

	while ((ch = settings_getopt(argc, argv, "f:vh", own, sizeof own / sizeof own[0],
	                                 &c->flags)) != -1) {
		switch (ch) {
		case 'f': c->file = optarg; break;
		case 'C': *check = 1; break;
		case 'v': c->verbose = 1; break;
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
load_settings(struct broker_config *c)
{
	char err[CONF_ERROR_BYTES];
	const char *bad;

	if (settings_build(&c->set, c->file, &c->flags, err, sizeof err) == -1) {
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

static int
context_create(struct broker *b)
{
	struct lws_context_creation_info info;
	void *loops[1] = { b->loop };

	log_lws(LLL_ERR | (b->cfg->verbose ? LLL_WARN : 0), LOG_ERR);
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = loops;    /* loop.c */
	if (b->cfg->set.cert[0])
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.pt_serv_buf_size = IO_CHUNK_BYTES;
	info.user = b;    /* broker_of() */
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
	loop_run(b);
	sock_notify("STOPPING=1");
}

static void
shutdown_broker(struct broker *b)
{
	cluster_stop(b);    /* first: its lease takes every key of this broker */
	b->stopping = 1;    /* no more dialling */
	if (b->ctx)
		lws_context_destroy(b->ctx);    /* closes every session and stream */
	loop_close(b);    /* after lws has let go of it */
	peer_stop(b);
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
	static struct broker_config cfg;
	struct broker b;
	int rc = 0, check = 0;

	lifeline_from_env();
	log_init("exposed", LOG_INFO);
	/* lws zero-fills a receive buffer of IO_CHUNK_BYTES per client at
	 * connect.  From mmap, calloc's zeroes are the kernel's untouched pages
	 * (no RSS until used); from the heap they would all be written. */
	mallopt(M_MMAP_THRESHOLD, BROKER_MMAP_MIN_BYTES);
	if (parse_args(argc, argv, &cfg, &check) == -1)
		return EX_USAGE;
	if (load_settings(&cfg) == -1)
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
	signal(SIGPIPE, SIG_IGN);
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
	if (loop_open(&b) == -1) {    /* and its SIGTERM, SIGINT and SIGHUP */
		rc = EX_SOFTWARE;
	} else if (context_create(&b) == -1) {
		log_err("cannot start libwebsockets (see above; its libev plugin "
		        "comes in package libwebsockets-evlib-ev)");
		rc = EX_SOFTWARE;
	} else if (listen_setup(&b) == -1) {
		rc = EX_UNAVAILABLE;
	} else if (access_servers(&b) == -1) {
		rc = EX_CONFIG;
	} else if (record_self(&b) == -1) {
		rc = EX_IOERR;
	} else if (cluster_start(&b) == -1 || peer_start(&b) == -1) {
		rc = EX_CONFIG;
	} else {
		run(&b);
	}
	shutdown_broker(&b);
	return rc;
}
