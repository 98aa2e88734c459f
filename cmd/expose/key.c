/*
 * `expose key`: prints this machine's public key, the line an operator
 * puts in authorized_keys.  `expose key --new` replaces the key (after a
 * yes at the terminal, or --yes): names that belonged to the old key do
 * not follow it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sysexits.h>

#include "client.h"
#include "log.h"

static void
print_key(const struct identity *id)
{
	char text[IDENTITY_PK_TEXT_BYTES], host[256] = "host";
	const char *user = getenv("USER");

	identity_pk_text(id->pk, text);
	gethostname(host, sizeof host - 1);
	printf("%s %s@%s\n", text, user && *user ? user : "user", host);
}

/* Asks at the terminal; 1 for yes. */
static int
confirm(const char *path)
{
	char answer[16] = "";
	FILE *tty = fopen("/dev/tty", "r+e");

	if (tty == NULL)
		return -1;
	fprintf(tty, "Replace the key at %s? Names that belong to the old key will not "
	        "follow the new one. [y/N] ", path);
	fflush(tty);
	if (fgets(answer, sizeof answer, tty) == NULL)
		answer[0] = '\0';
	fclose(tty);
	return answer[0] == 'y' || answer[0] == 'Y';
}

int
key_command(int argc, char **argv)
{
	struct identity id;
	char path[4096];
	const char *why = "unknown error";
	int renew = 0, yes = 0, i, ok;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--new") == 0)
			renew = 1;
		else if (strcmp(argv[i], "--yes") == 0)
			yes = 1;
		else {
			log_err("key: unknown argument '%s' (give --new, and --yes to skip the question)",
			        argv[i]);
			return EX_USAGE;
		}
	}
	if (identity_init() == -1 || identity_default_path(path, sizeof path) == -1) {
		log_err("no place for the key: set HOME or XDG_CONFIG_HOME");
		return EX_CONFIG;
	}
	if (renew && !yes) {
		ok = confirm(path);
		if (ok == -1) {
			log_err("key --new: no terminal to ask; add --yes to replace the key");
			return EX_USAGE;
		}
		if (ok == 0) {
			log_info("key kept");
			return 0;
		}
	}
	if (renew ? identity_create(&id, path, &why) : identity_load_or_create(&id, path, &why)) {
		log_err("key %s: %s", path, why);
		return renew ? EX_CANTCREAT : EX_CONFIG;
	}
	print_key(&id);
	identity_wipe(&id);
	return 0;
}
