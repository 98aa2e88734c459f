/*
 * expose-edge: serves one public HTTP connection and exits.  A launcher
 * starts it per connection: inetd style (the connection on stdin and
 * stdout) or systemd Accept=yes (the connection on fd 3, LISTEN_FDS=1).
 * expose-edge-tls is the same program built with TLS (tls.c), which it
 * speaks by default.  See expose-edge(8).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sysexits.h>

#include "edge.h"
#include "lifeline.h"
#include "log.h"
#include "conf.h"
#include "name.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: expose-edge [-f FILE] [--tls] [--cert FILE] [--key FILE] [--ticket-keys FILE]\n"
	    "                   [--registry PATH] [--domain DOMAIN] [--proto http|https]\n"
	    "                   [--redirect-http yes|no] [--https-port N]\n"
	    "                   [--head-timeout MS] [--idle-timeout MS] [--body-timeout MS]\n"
	    "                   [--head-max-bytes N] [--fields-max N] [--auth-key FILE]\n"
	    "Serves one public connection (on stdin/stdout, or fd 3 with LISTEN_FDS=1).\n"
	    "Every key of expose.conf(5) is also an option (--KEY VALUE).\n");
}

/* Flags; settings go through the same table as expose.conf. */
static int
parse_args(int argc, char **argv, struct edge_config *cfg, const char **file,
           struct settings_flags *flags)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "proto", required_argument, NULL, 'p' },
		{ "tls", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c;

	while ((c = settings_getopt(argc, argv, "f:p:h", own, sizeof own / sizeof own[0],
	                                 flags)) != -1) {
		switch (c) {
		case 'f': *file = optarg; break;
		case 'p': cfg->proto = optarg; break;
		case 't': cfg->tls = true; cfg->proto = "https"; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if (strcmp(cfg->proto, "http") != 0 && strcmp(cfg->proto, "https") != 0) {
		log_err("--proto %s: must be http or https", cfg->proto);
		return -1;
	}
	return 0;
}

/* The connection: fd 3 under systemd Accept=yes, else stdin/stdout. */
static void
take_connection(struct edge *e)
{
	if (sock_listen_fds() == 1) {
		e->in_fd = e->out_fd = 3;
	} else {
		e->in_fd = STDIN_FILENO;
		e->out_fd = STDOUT_FILENO;
	}
	sock_nonblock(e->in_fd, 1);
	sock_nonblock(e->out_fd, 1);
	sock_nodelay(e->out_fd);
	if (sock_peer(e->in_fd, e->peer, sizeof e->peer, &e->peer_port) == -1) {
		snprintf(e->peer, sizeof e->peer, "unknown");
		e->peer_port = 0;
	}
}

/* e is zeroed already (static): a memset would write every page of its
 * 30 KiB, a page fault each, where a connection uses a few. */
static void
edge_init(struct edge *e, const struct edge_config *cfg)
{
	struct http_limits limits = {
		.head_max_bytes = (size_t)cfg->set.head_max_bytes,
		.fields_max = (size_t)cfg->set.fields_max,
	};

	e->cfg = cfg;
	e->broker_fd = -1;
	http_req_init(&e->req, &limits);
	http_resp_init(&e->resp);
	buf_init(&e->in, 2 * EDGE_IO_BYTES);
	buf_init(&e->to_broker, EDGE_QUEUE_MAX_BYTES);
	buf_init(&e->to_visitor, EDGE_QUEUE_MAX_BYTES + 2 * EDGE_IO_BYTES);
	buf_init(&e->reply, PREAMBLE_MAX_BYTES);
	pass_init(&e->down);
	pass_init(&e->up);
}

static void
edge_free(struct edge *e)
{
	tls_close(e);
	http_req_free(&e->req);
	buf_free(&e->in);
	buf_free(&e->to_broker);
	buf_free(&e->to_visitor);
	buf_free(&e->reply);
	pass_free(&e->down);
	pass_free(&e->up);
	if (e->broker_fd != -1)
		close(e->broker_fd);
}

int
main(int argc, char **argv)
{
	static struct edge_config cfg = { .proto = "http" };
	static char err[CONF_ERROR_BYTES];
	static struct edge e;     /* one connection per process */
	struct settings_flags flags = { .n = 0 };
	const char *file = NULL;
	int rc;

	lifeline_from_env();
	log_init("expose-edge", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (tls_built()) {
		cfg.tls = true;
		cfg.proto = "https";
	}
	if (parse_args(argc, argv, &cfg, &file, &flags) == -1)
		return EX_USAGE;
	if (cfg.tls && tls_handover(argv) == -1)
		return EX_CONFIG;
	if (settings_build(&cfg.set, file, &flags, err, sizeof err) == -1) {
		/* Every visitor would hit this: say it once per connection in the
		 * log, and give the visitor a 503 rather than a dropped line. */
		log_err("%s", err);
		settings_defaults(&cfg.set);
		cfg.error = err;
	}
	edge_init(&e, &cfg);
	take_connection(&e);
	if (cfg.tls && cfg.error == NULL && (tls_start(&e) == -1 || tls_handshake(&e) == -1)) {
		/* No TLS session, no way to answer: the visitor sees the close. */
		edge_free(&e);
		return 0;
	}
	rc = edge_run(&e);
	pending_flush(&e);
	log_release();
	edge_free(&e);
	return rc;
}
