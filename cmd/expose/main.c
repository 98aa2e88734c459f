/*
 * expose: makes local ports public.  `expose --server ws://HOST:PORT 3000`
 * prints a public URL on stdout; requests to it reach localhost:3000.
 * Everything else (the request log, warnings) goes to stderr.  See expose(1).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sysexits.h>

#include "cidr.h"
#include "client.h"
#include "conf.h"
#include "lifeline.h"
#include "log.h"
#include "log_lws.h"
#include "proto.h"
#include "name.h"

/* The client the signal handler flags. */
static struct client *signalled;

static const struct lws_protocols protocols[] = {
	{ "expose-link", link_callback, 0, IO_CHUNK_BYTES, 0, NULL, 0 },
	{ "expose-inspect", inspect_callback, 0, 0, 0, NULL, 0 },
	{ "expose-replay", inspect_replay_callback, 0, 0, 0, NULL, 0 },
	{ "expose-local", local_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: expose [-f FILE] [--server URL] [-v] [--auth USER:PASSWORD] [--allow CIDR]\n"
	    "              [--auth-file FILE] [--name NAME] [--new-url] TARGET ...\n"
	    "TARGET is PORT, HOST:PORT, http://HOST[:PORT], https://HOST[:PORT] or unix:/PATH.\n"
	    "Makes local ports public; prints one URL a line on stdout.\n"
	    "  -f, --config FILE  the config file (default $XDG_CONFIG_HOME/expose/expose.conf)\n"
	    "  --server URL   the expose server, ws:// or wss://HOST[:PORT] (or EXPOSE_SERVER,\n"
	    "                 or server = URL in the config file); repeatable, or a comma\n"
	    "                 list: the hosts of one cluster, tried in order\n"
	    "  --name NAME    the name for the next PORT (default: the one it had last\n"
	    "                 time, kept beside the key, else a random name)\n"
	    "  --new-url      not last time's names: new random ones\n"
	    "  --auth U:P     visitors must give this user and password (basic auth)\n"
	    "  --auth-file FILE  the same from FILE's first line (or EXPOSE_AUTH=U:P),\n"
	    "                 out of sight of other users' ps\n"
	    "  --allow CIDR   only these source addresses may visit (repeatable)\n"
	    "  --ca FILE      trust this CA for a wss:// server (default: the system's)\n"
	    "  --local-insecure  do not check https:// targets' certificates\n"
	    "  --host-header rewrite|keep  send the app Host: localhost:PORT (dev servers)\n"
	    "  --inspect[=ADDR]  a web inspector of requests, with replay (127.0.0.1:4040)\n"
	    "  -q, --quiet    print the URLs only      --json  events as JSON lines\n"
	    "  --qr           show the URL as a QR code\n"
	    "  expose key [--new [--yes]]   print (or replace) this machine's key\n"
	    "  -v, --verbose  log each stream           -h, --help  this text\n");
}

/* "3000", "HOST:3000", "http://HOST:3000" or "unix:/path/app.sock":
 * what a tunnel forwards to. */
static int parse_target(const char *text, struct target *t);

/* http://HOST[:PORT][/...] and https://...: the path is ignored. */
static int
parse_url_target(const char *rest, const char *default_port, struct target *t)
{
	char copy[TARGET_HOST_BYTES + 16];

	if (strlen(rest) >= sizeof copy - 8)
		return -1;
	snprintf(copy, sizeof copy, "%s", rest);
	copy[strcspn(copy, "/")] = '\0';
	if (copy[0] == '\0' || copy[0] == '[')
		return -1;
	if (strchr(copy, ':') == NULL) {
		strcat(copy, ":");
		strcat(copy, default_port);
	}
	return parse_target(copy, t);
}

static int
parse_target(const char *text, struct target *t)
{
	if (strncmp(text, "unix:", 5) == 0) {
		/* lws connects to a Unix socket when the address starts with '+' */
		if (text[5] != '/' || strlen(text + 5) >= sizeof t->host - 1)
			return -1;
		snprintf(t->host, sizeof t->host, "+%s", text + 5);
		t->port = 0;
		snprintf(t->label, sizeof t->label, "%s", text);
		snprintf(t->host_header, sizeof t->host_header, "localhost");
		return 0;
	}
	if (strncmp(text, "http://", 7) == 0)
		return parse_url_target(text + 7, "80", t);
	if (strncmp(text, "https://", 8) == 0) {
		size_t n;
		t->tls = true;
		if (parse_url_target(text + 8, "443", t) == -1)
			return -1;
		n = strlen(t->label);
		if (n + sizeof "https://" > sizeof t->label)
			return -1;
		memmove(t->label + 8, t->label, n + 1);
		memcpy(t->label, "https://", 8);
		return 0;
	}
	const char *colon = strrchr(text, ':'), *port = colon ? colon + 1 : text;
	char *end;
	long p = strtol(port, &end, 10);

	if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
		return -1;
	t->port = (int)p;
	if (colon) {
		size_t hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof t->host)
			return -1;
		memcpy(t->host, text, hlen);
		t->host[hlen] = '\0';
		snprintf(t->label, sizeof t->label, "%.*s:%d", (int)hlen, text, t->port);
	} else {
		snprintf(t->host, sizeof t->host, "127.0.0.1");
		snprintf(t->label, sizeof t->label, "localhost:%d", t->port);
	}
	memcpy(t->host_header, t->label, sizeof t->host_header);
	return 0;
}

static int
set_host_header(struct client *c, const char *v)
{
	if (strcmp(v, "rewrite") == 0)
		c->rewrite_host = true;
	else if (strcmp(v, "keep") == 0)
		c->rewrite_host = false;
	else {
		log_err("--host-header %s: give rewrite (Host: localhost:PORT for dev servers) "
		        "or keep", v);
		return -1;
	}
	return 0;
}

/* --allow, given once or more: one list of prefixes for every tunnel. */
static int
add_allow(struct client *c, const char *cidr)
{
	char joined[sizeof c->allow + 64], norm[sizeof c->allow];

	snprintf(joined, sizeof joined, "%s%s%s", c->allow, c->allow[0] ? "," : "", cidr);
	if (cidr_list_normalize(joined, norm, sizeof norm) == -1) {
		log_err("--allow %s: give an address or a prefix such as 203.0.113.0/24 or "
		        "2001:db8::/32 (host bits zero; at most %d)", cidr, CIDR_LIST_MAX);
		return -1;
	}
	snprintf(c->allow, sizeof c->allow, "%s", norm);
	return 0;
}

/* --server, given once or more: read in setup_servers. */
static void
add_server(struct client *c, const char *url)
{
	if (c->nserver_args < CLIENT_SERVERS_MAX)
		c->server_args[c->nserver_args] = url;
	c->nserver_args++;
}

static int
parse_args(int argc, char **argv, struct client *c)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "server", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "auth", required_argument, NULL, 'a' },
		{ "auth-file", required_argument, NULL, 'P' },
		{ "allow", required_argument, NULL, 'A' },
		{ "ca", required_argument, NULL, 'C' },
		{ "host-header", required_argument, NULL, 'H' },
		{ "local-insecure", no_argument, NULL, 'L' },
		{ "inspect", optional_argument, NULL, 'I' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'J' },
		{ "qr", no_argument, NULL, 'Q' },
		{ "new-url", no_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *why;
	int ch;

	/* Leading '-': ports come back in order, so --name applies to the next. */
	while ((ch = getopt_long(argc, argv, "-f:s:n:vqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'f': c->config = optarg; break;
		case 'a':
			if (password_set(c, optarg, strlen(optarg), "--auth") == -1)
				return -1;
			break;
		case 'P':
			if (password_from_file(c, optarg) == -1)
				return -1;
			break;
		case 'A':
			if (add_allow(c, optarg) == -1)
				return -1;
			break;
		case 'C': c->ca = optarg; break;
		case 'H':
			if (set_host_header(c, optarg) == -1)
				return -1;
			c->host_header_given = true;
			break;
		case 'I':
			snprintf(c->inspect_addr, sizeof c->inspect_addr, "%s",
			         optarg ? optarg : INSPECT_DEFAULT_ADDR);
			c->inspect_wanted = true;
			break;
		case 'L': c->local_insecure = true; break;
		case 'q': c->quiet = true; break;
		case 'J': c->json = true; break;
		case 'Q': c->qr = true; break;
		case 'N': c->new_url = true; break;
		case 's': add_server(c, optarg); break;
		case 'n':
			if ((why = name_invalid_reason(optarg)) != NULL) {
				log_err("--name %s: %s", optarg, why);
				return -1;
			}
			name = optarg;
			break;
		case 'v': log_init("expose", LOG_DEBUG); break;
		case 'h': usage(stdout); exit(0);
		case 1:
			if (c->ntargets == TUNNELS_PER_CLIENT_MAX) {
				log_err("at most %d ports at once", TUNNELS_PER_CLIENT_MAX);
				return -1;
			}
			if (parse_target(optarg, &c->targets[c->ntargets]) == -1) {
				log_err("'%s': not a target (give PORT, HOST:PORT, http://HOST:PORT, "
				        "https://HOST:PORT or unix:/PATH, e.g. 3000)", optarg);
				return -1;
			}
			if (name)
				snprintf(c->targets[c->ntargets].want, NAME_MAX_BYTES + 1, "%s", name);
			name = NULL;
			c->ntargets++;
			break;
		default: usage(stderr); return -1;
		}
	}
	if (c->ntargets == 0) {
		usage(stderr);
		return -1;
	}
	if (name) {
		/* `expose 3000 --name web` names the port before it. */
		struct target *last = &c->targets[c->ntargets - 1];
		if (last->want[0]) {
			log_err("--name %s: no port follows it", name);
			return -1;
		}
		snprintf(last->want, NAME_MAX_BYTES + 1, "%s", name);
	}
	return 0;
}

/* Settings from the config file; flags and the environment win. */
static int
conf_set(void *ctx, const char *key, const char *value, char *why, size_t size)
{
	struct client *c = ctx;

	if (strcmp(key, "server") == 0) {
		snprintf(c->conf_server, sizeof c->conf_server, "%s", value);
		return 0;
	}
	if (strcmp(key, "host-header") == 0) {
		if (strcmp(value, "rewrite") != 0 && strcmp(value, "keep") != 0) {
			snprintf(why, size, "host-header = %s: give rewrite or keep", value);
			return -1;
		}
		if (!c->host_header_given)
			c->rewrite_host = strcmp(value, "rewrite") == 0;
		return 0;
	}
	if (strcmp(key, "local-insecure") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			snprintf(why, size, "local-insecure = %s: give yes or no", value);
			return -1;
		}
		c->local_insecure |= strcmp(value, "yes") == 0;
		return 0;
	}
	if (strcmp(key, "ca") == 0) {
		snprintf(c->conf_ca, sizeof c->conf_ca, "%s", value);
		if (c->ca == NULL)
			c->ca = c->conf_ca;
		return 0;
	}
	if (strcmp(key, "inspect") == 0) {
		if (!c->inspect_wanted) {
			snprintf(c->inspect_addr, sizeof c->inspect_addr, "%s", value);
			c->inspect_wanted = true;
		}
		return 0;
	}
	snprintf(why, size, "unknown key '%s' (known: server, host-header, local-insecure, ca, "
	         "inspect)", key);
	return -1;
}

static int
load_config(struct client *c)
{
	char path[4096], err[CONF_ERROR_BYTES];
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	bool optional = c->config == NULL;

	if (optional) {
		if (xdg && *xdg)
			snprintf(path, sizeof path, "%s/expose/expose.conf", xdg);
		else if (home && *home)
			snprintf(path, sizeof path, "%s/.config/expose/expose.conf", home);
		else
			return 0;
	} else {
		snprintf(path, sizeof path, "%s", c->config);
	}
	if (conf_read(path, conf_set, c, err, sizeof err) == 0)
		return 0;
	if (optional && errno == ENOENT)
		return 0;
	log_err("%s", err);
	return -1;
}

/* The list, from the flags, else the environment, else the file. */
static int
setup_servers(struct client *c)
{
	const char *env = getenv("EXPOSE_SERVER");
	int i, rc = 0;

	if (c->nserver_args > CLIENT_SERVERS_MAX) {
		log_err("--server: at most %d servers (the hosts of one cluster)",
		        CLIENT_SERVERS_MAX);
		return -1;
	}
	if (c->nserver_args)
		for (i = 0; i < c->nserver_args && rc == 0; i++)
			rc = servers_add_list(c, c->server_args[i], "--server");
	else if (env && *env)
		rc = servers_add_list(c, env, "EXPOSE_SERVER");
	else if (c->conf_server[0])
		rc = servers_add_list(c, c->conf_server, "server =");
	else {
		log_err("no server: give --server ws://HOST:PORT, set EXPOSE_SERVER, "
		        "or put 'server = ws://HOST:PORT' in expose.conf");
		return -1;
	}
	if (rc == -1)
		return -1;
	servers_use(c, 0);
	c->round_start = 0;
	return 0;
}

static int
setup_server(struct client *c)
{
	const char *why;
	bool tls;

	if (setup_servers(c) == -1)
		return -1;
	tls = servers_any_tls(c);
	if (c->ca && !tls) {
		if (c->ca == c->conf_ca) {
			c->ca = NULL;     /* the file's, for wss:// servers only */
		} else {
			log_err("--ca %s: only for a wss:// server", c->ca);
			return -1;
		}
	}
	if (c->ca && access(c->ca, R_OK) == -1) {
		log_err("%s %s: %s", c->ca == c->conf_ca ? "ca =" : "--ca", c->ca, strerror(errno));
		return -1;
	}
	/* Loaded once, here: a bad file is a one-line error, not a retry loop. */
	if (tls && (c->link_trust = tls_trust_new(c->ca, true, &why)) == NULL) {
		if (c->ca)
			log_err("%s %s: no CA certificate in it (give a PEM file)",
			        c->ca == c->conf_ca ? "ca =" : "--ca", c->ca);
		else
			log_err("the system's trusted certificates: %s", why);
		return -1;
	}
	return 0;
}

static int
setup_identity(struct client *c)
{
	char path[4096];
	const char *why = "unknown error";

	if (identity_init() == -1) {
		log_err("libsodium cannot start");
		return -1;
	}
	if (identity_default_path(path, sizeof path) == -1) {
		log_err("no place for the key: set HOME or XDG_CONFIG_HOME");
		return -1;
	}
	if (identity_load_or_create(&c->id, path, &why) == -1) {
		log_err("key %s: %s", path, why);
		return -1;
	}
	identity_fingerprint(c->id.pk, c->fp);
	log_debug("key %s fingerprint %s", path, c->fp);
	return 0;
}

static int
setup_context(struct client *c)
{
	struct lws_context_creation_info info;

	log_lws(LLL_ERR, LOG_DEBUG);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.pt_serv_buf_size = IO_CHUNK_BYTES;
	info.user = c;    /* client_of() */
	/* Sized for the streams the client takes, not for the fd limit: lws
	 * allocates and clears a table of this many entries at start. */
	info.fd_limit_per_thread = CLIENT_STREAMS_MAX + CLIENT_SPARE_FDS;
	/* No TLS in libwebsockets: tls.c does it for wss:// (and loading the
	 * CA bundle cost every start ~20 ms). */
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL)
		return -1;
	c->vh = lws_get_vhost_by_name(c->ctx, "default");
	return 0;
}

static void
on_signal(int sig)
{
	if (signalled->stopping)
		_exit(130);    /* a second Ctrl-C: now */
	signalled->stopping = 1;
	if (signalled->ctx)
		lws_cancel_service(signalled->ctx);
}

static void
run(struct client *c)
{
	link_connect(c);
	while (!c->done) {
		if (lws_service(c->ctx, 0) < 0)
			break;
		link_flush(c);
		if (c->stopping && !c->closing) {
			c->closing = true;
			/* An open websocket is closed cleanly; one still being
			 * made has nothing to close: it goes with the context. */
			if (c->ws && c->link.open)
				lws_callback_on_writable(c->ws);
			else
				c->done = true;
		}
	}
}

int
main(int argc, char **argv)
{
	static struct client c;

	lifeline_from_env();
	log_init("expose", LOG_INFO);
	if (argc > 1 && strcmp(argv[1], "key") == 0)
		return key_command(argc, argv);
	signalled = &c;
	tunnel_init(&c);
	ws_init(&c.link);
	map_init(&c.streams);
	if (parse_args(argc, argv, &c) == -1 || password_from_env(&c) == -1)
		return EX_USAGE;
	if (load_config(&c) == -1)
		return EX_CONFIG;
	if (setup_server(&c) == -1)
		return EX_CONFIG;
	servers_warn_if_clear(&c);
	if (setup_identity(&c) == -1)
		return EX_CONFIG;
	c.names_lock_fd = -1;
	names_load(&c);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (setup_context(&c) == -1) {
		log_err("cannot start libwebsockets");
		return EX_SOFTWARE;
	}
	if (c.inspect_wanted && inspect_start(&c, c.inspect_addr) == -1) {
		lws_context_destroy(c.ctx);
		return EX_CONFIG;
	}
	appwatch_start(&c);
	run(&c);
	appwatch_stop(&c);
	lws_context_destroy(c.ctx);
	inspect_stop(&c);
	local_close_all(&c);
	map_free(&c.streams);
	ws_free(&c.link);
	tls_conn_free(c.link_tls);
	tls_trust_free(c.link_trust);
	tls_trust_free(c.target_trust);
	mux_free(&c.mux);
	frame_decoder_free(&c.dec);
	identity_wipe(&c.id);
	if (c.names_lock_fd != -1)
		close(c.names_lock_fd);
	return c.exit_code;
}
