/*
 * exposed: the broker.  Holds the clients' websockets, records their
 * tunnels in the registry, and carries each public connection that an
 * edge brings it to the right client.  See exposed(8).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "registry.h"

#define DEFAULT_DOMAIN "localhost"
#define DEFAULT_LISTEN "127.0.0.1:4443"
#define DEFAULT_SOCKET "/run/expose/broker.sock"
#define DEFAULT_REGISTRY "/var/lib/expose/registry.db"
#define DEFAULT_PUBLIC_PORT 80

/* sysexits */
#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_IOERR 74

/* Every read is at most this; a websocket frame batch fits one read. */
#define BROKER_IO_BYTES (64 * 1024)

struct broker *broker;

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
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct lws_protocols edge_protocols[] = {
	{ "expose-listen", listen_callback, 0, 0, 0, NULL, 0 },
	{ "expose-edge", stream_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: exposed [--domain DOMAIN] [--public-port N] [--scheme http|https]\n"
	    "               [--listen ADDR:PORT] [--socket PATH] [--registry PATH]\n"
	    "               [--ping-interval SECONDS] [-v]\n");
}

static int
parse_args(int argc, char **argv, struct broker_config *c)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "public-port", required_argument, NULL, 'p' },
		{ "scheme", required_argument, NULL, 'S' },
		{ "listen", required_argument, NULL, 'l' },
		{ "socket", required_argument, NULL, 's' },
		{ "registry", required_argument, NULL, 'r' },
		{ "ping-interval", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "d:p:S:l:s:r:P:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': c->domain = optarg; break;
		case 'p':
			c->public_port = (int)strtol(optarg, &end, 10);
			if (*end || c->public_port < 1 || c->public_port > 65535) {
				log_err("--public-port %s: not a port number", optarg);
				return -1;
			}
			break;
		case 'S': c->scheme = optarg; break;
		case 'P':
			c->ping_interval_s = (int)strtol(optarg, &end, 10);
			if (*end || c->ping_interval_s < 1 || c->ping_interval_s > 3600) {
				log_err("--ping-interval %s: give seconds, 1 to 3600", optarg);
				return -1;
			}
			break;
		case 'l': c->listen = optarg; break;
		case 's': c->socket = optarg; break;
		case 'r': c->registry = optarg; break;
		case 'v': c->verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if (strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0) {
		log_err("--scheme %s: must be http or https", c->scheme);
		return -1;
	}
	if (*c->domain == '\0' || strlen(c->domain) > DOMAIN_MAX_BYTES - NAME_MAX_BYTES - 1) {
		log_err("--domain '%s': not a usable domain name", c->domain);
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

static int
context_create(struct broker *b)
{
	struct lws_context_creation_info info;

	lws_set_log_level(LLL_ERR | (b->cfg->verbose ? LLL_WARN : 0), lws_log);
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.pt_serv_buf_size = BROKER_IO_BYTES;
	b->ctx = lws_create_context(&info);
	if (b->ctx == NULL)
		return -1;

	memset(&info, 0, sizeof info);
	info.vhost_name = "clients";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = ws_protocols;
	keepalive.secs_since_valid_ping = (uint16_t)b->cfg->ping_interval_s;
	keepalive.secs_since_valid_hangup = (uint16_t)(b->cfg->ping_interval_s * PING_HANGUP_FACTOR);
	info.retry_and_idle_policy = &keepalive;
	b->vh_ws = lws_create_vhost(b->ctx, &info);

	memset(&info, 0, sizeof info);
	info.vhost_name = "edges";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = edge_protocols;
	b->vh_edge = lws_create_vhost(b->ctx, &info);
	return b->vh_ws && b->vh_edge ? 0 : -1;
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

	b->reg = registry_open_writer(b->cfg->registry, &why);
	if (b->reg == NULL) {
		log_err("registry %s: %s", b->cfg->registry, why);
		return -1;
	}
	return 0;
}

static int
record_self(struct broker *b)
{
	int swept = registry_broker_start(b->reg, b->socket_path, (int)getpid());

	if (swept < 0) {
		log_err("registry %s: cannot record this broker: %s", b->cfg->registry,
		        registry_error(b->reg));
		return -1;
	}
	if (swept > 0)
		log_info("swept %d tunnels left by a broker that stopped", swept);
	return 0;
}

static void
run(struct broker *b)
{
	char status[96];

	snprintf(status, sizeof status, "READY=1\nSTATUS=serving %s", b->cfg->domain);
	sock_notify(status);
	log_info("ready domain=%s listen=%s socket=%s registry=%s", b->cfg->domain,
	         b->cfg->listen, b->socket_path, b->cfg->registry);
	while (!b->stopping)
		if (lws_service(b->ctx, 0) < 0)
			break;
	sock_notify("STOPPING=1");
}

static void
shutdown_broker(struct broker *b)
{
	if (b->ctx)
		lws_context_destroy(b->ctx);    /* closes every session and stream */
	if (b->reg && b->socket_path[0] && registry_broker_stop(b->reg, b->socket_path) == -1)
		log_err("registry %s: cannot remove this broker: %s", b->cfg->registry,
		        registry_error(b->reg));
	registry_close(b->reg);
	map_free(&b->names);
	if (b->own_socket)
		unlink(b->socket_path);
}

int
main(int argc, char **argv)
{
	struct broker_config cfg = {
		.domain = DEFAULT_DOMAIN,
		.public_port = DEFAULT_PUBLIC_PORT,
		.scheme = "http",
		.listen = DEFAULT_LISTEN,
		.socket = DEFAULT_SOCKET,
		.registry = DEFAULT_REGISTRY,
		.ping_interval_s = PING_INTERVAL_S,
	};
	struct broker b;
	int rc = 0;

	log_init("exposed", LOG_INFO);
	if (parse_args(argc, argv, &cfg) == -1)
		return EX_USAGE;
	if (cfg.verbose)
		log_init("exposed", LOG_DEBUG);
	memset(&b, 0, sizeof b);
	b.cfg = &cfg;
	map_init(&b.names);
	broker = &b;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (identity_init() == -1) {
		log_err("libsodium cannot start");
		return EX_SOFTWARE;
	}
	if (registry_start(&b) == -1)
		return EX_IOERR;
	if (context_create(&b) == -1) {
		log_err("cannot start libwebsockets");
		rc = EX_SOFTWARE;
	} else if (listen_setup(&b) == -1) {
		rc = EX_UNAVAILABLE;
	} else if (record_self(&b) == -1) {
		rc = EX_IOERR;
	} else {
		run(&b);
	}
	shutdown_broker(&b);
	return rc;
}
