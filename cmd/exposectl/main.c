/*
 * exposectl: the operator's tool.  Stored things (tunnels, names, keys)
 * come from the registry and authorized_keys; live actions (kick) go to
 * the running broker over its control socket.  See exposectl(8).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ctl.h"
#include "identity.h"
#include "lifeline.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: exposectl [-f FILE] [--registry PATH] [--socket PATH] [--control PATH]\n"
	    "                 [--authorized-keys FILE] [--ticket-keys FILE] [--KEY VALUE] COMMAND\n"
	    "Every key of expose.conf(5) is also an option (--KEY VALUE).\n"
	    "commands:\n"
	    "  list                 live tunnels: URL, name, address, key, age, target[, host]\n"
	    "  names                names held by keys: name, kind, key, since, expires\n"
	    "  keys                 authorized keys: fingerprint, live tunnels, options, comment\n"
	    "  reserve NAME KEY     keeps NAME for KEY (its base64, as `expose key` prints it)\n"
	    "  release NAME         frees NAME for whoever asks next\n"
	    "  kick NAME            ends the client holding NAME now\n"
	    "  reload               the broker reads expose.conf, authorized_keys, certificate\n"
	    "  rotate-ticket-keys   a new TLS session ticket key for the https edges\n"
	    "  stats                the broker's counters, for a person\n"
	    "  metrics              the same, in Prometheus text form\n");
}

static const struct command {
	const char *name;
	int args;
	int (*run)(const struct settings *s, char **argv);
} commands[] = {
	{ "list", 0, ctl_list },
	{ "names", 0, ctl_names },
	{ "keys", 0, ctl_keys },
	{ "reserve", 2, ctl_reserve },
	{ "release", 1, ctl_release },
	{ "kick", 1, ctl_kick },
	{ "reload", 0, ctl_reload },
	{ "rotate-ticket-keys", 0, ctl_rotate_tickets },
	{ "stats", 0, ctl_stats },
	{ "metrics", 0, ctl_metrics },
};

int
main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct settings_flags flags = { .n = 0 };
	struct settings s;
	char err[CONF_ERROR_BYTES];
	const char *file = NULL;
	size_t i;
	int ch;

	lifeline_from_env();
	log_init("exposectl", LOG_INFO);
	while ((ch = settings_getopt(argc, argv, "+f:h", own, sizeof own / sizeof own[0],
	                                 &flags)) != -1) {
		switch (ch) {
		case 'f': file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (settings_build(&s, file, &flags, err, sizeof err) == -1) {
		log_err("%s", err);
		return EX_CONFIG;
	}
	if (identity_init() == -1) {
		log_err("libsodium cannot start");
		return EX_SOFTWARE;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (argc - optind - 1 != commands[i].args) {
			log_err("%s takes %d argument%s", commands[i].name, commands[i].args,
			        commands[i].args == 1 ? "" : "s");
			usage(stderr);
			return EX_USAGE;
		}
		return commands[i].run(&s, argv + optind + 1);
	}
	log_err("unknown command '%s'", argv[optind]);
	usage(stderr);
	return EX_USAGE;
}
