/*
 * expose-edge: serves one public HTTP connection and exits.  A launcher
 * starts it per connection: inetd style (the connection on stdin and
 * stdout) or systemd Accept=yes (the connection on fd 3, LISTEN_FDS=1).
 * See expose-edge(8).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"
#include "log.h"
#include "name.h"

#define DEFAULT_REGISTRY "/var/lib/expose/registry.db"
#define DEFAULT_DOMAIN "localhost"
#define EX_USAGE 64

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: expose-edge [--registry PATH] [--domain DOMAIN] [--proto http|https]\n"
	    "Serves one public connection (on stdin/stdout, or fd 3 with LISTEN_FDS=1).\n");
}

static int
parse_args(int argc, char **argv, struct edge_config *cfg)
{
	static const struct option opts[] = {
		{ "registry", required_argument, NULL, 'r' },
		{ "domain", required_argument, NULL, 'd' },
		{ "proto", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:d:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': cfg->registry = optarg; break;
		case 'd': cfg->domain = optarg; break;
		case 'p': cfg->proto = optarg; break;
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
	if (strlen(cfg->domain) == 0 || strlen(cfg->domain) > DOMAIN_MAX_BYTES) {
		log_err("--domain '%s': not a domain name", cfg->domain);
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

static void
edge_init(struct edge *e, const struct edge_config *cfg)
{
	memset(e, 0, sizeof *e);
	e->cfg = cfg;
	e->broker_fd = -1;
	http_req_init(&e->req);
	http_resp_init(&e->resp);
	buf_init(&e->in, 2 * EDGE_IO_BYTES);
	buf_init(&e->to_broker, EDGE_QUEUE_MAX_BYTES);
	buf_init(&e->to_visitor, EDGE_QUEUE_MAX_BYTES + 2 * EDGE_IO_BYTES);
	buf_init(&e->reply, PREAMBLE_MAX_BYTES);
}

static void
edge_free(struct edge *e)
{
	http_req_free(&e->req);
	buf_free(&e->in);
	buf_free(&e->to_broker);
	buf_free(&e->to_visitor);
	buf_free(&e->reply);
	if (e->broker_fd != -1)
		close(e->broker_fd);
}

int
main(int argc, char **argv)
{
	struct edge_config cfg = {
		.registry = DEFAULT_REGISTRY,
		.domain = DEFAULT_DOMAIN,
		.proto = "http",
	};
	struct edge e;
	int rc;

	log_init("expose-edge", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &cfg) == -1)
		return EX_USAGE;
	edge_init(&e, &cfg);
	take_connection(&e);
	rc = edge_run(&e);
	edge_free(&e);
	return rc;
}
