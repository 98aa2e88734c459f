/*
 * exposectl: the operator's tool.  Reads the registry to show what is
 * live.  See exposectl(8).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity.h"
#include "log.h"
#include "registry.h"

#define DEFAULT_REGISTRY "/var/lib/expose/registry.db"
#define EX_USAGE 64
#define EX_IOERR 74

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: exposectl [--registry PATH] list\n"
	    "  list    one line per live tunnel: URL, name, client address, key\n"
	    "          fingerprint, age, target\n");
}

static void
format_age(int64_t secs, char *out, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(out, size, "%llds", (long long)secs);
	else if (secs < 3600)
		snprintf(out, size, "%lldm%02llds", (long long)(secs / 60),
		         (long long)(secs % 60));
	else if (secs < 86400)
		snprintf(out, size, "%lldh%02lldm", (long long)(secs / 3600),
		         (long long)(secs % 3600 / 60));
	else
		snprintf(out, size, "%lldd%02lldh", (long long)(secs / 86400),
		         (long long)(secs % 86400 / 3600));
}

static int
print_tunnel(void *ctx, const struct registry_tunnel *t)
{
	uint8_t pk[IDENTITY_PK_BYTES];
	char fp[IDENTITY_FP_BYTES] = "-", age[32];

	if (t->key && identity_pk_parse(t->key, pk) == 0)
		identity_fingerprint(pk, fp);
	format_age((int64_t)time(NULL) - t->since, age, sizeof age);
	printf("%s %s %s %s %s %s\n", t->url, t->name, t->addr, fp, age, t->target);
	return 0;
}

static int
cmd_list(const char *path)
{
	const char *why = NULL;
	struct registry *reg = registry_open_reader(path, &why);
	int rc;

	if (reg == NULL) {
		log_err("registry %s: %s", path, why);
		return EX_IOERR;
	}
	rc = registry_list(reg, print_tunnel, NULL);
	if (rc == -1)
		log_err("registry %s: %s (is it an expose registry?)", path,
		        registry_error(reg));
	registry_close(reg);
	return rc == -1 ? EX_IOERR : 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "registry", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *registry = DEFAULT_REGISTRY;
	int ch;

	log_init("exposectl", LOG_INFO);
	while ((ch = getopt_long(argc, argv, "+r:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': registry = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (identity_init() == -1) {
		log_err("libsodium cannot start");
		return EX_IOERR;
	}
	if (strcmp(argv[optind], "list") == 0 && optind + 1 == argc)
		return cmd_list(registry);
	log_err("unknown command '%s'", argv[optind]);
	usage(stderr);
	return EX_USAGE;
}
