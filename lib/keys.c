#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "name.h"

#define KEYS_LINE_BYTES 2048

static int
parse_option(const char *opt, struct key_entry *e, const char **why)
{
	long v;

	if (strncmp(opt, "names=", 6) == 0) {
		char copy[KEYS_NAMES_BYTES], *save = NULL, *n;
		if (strlen(opt + 6) >= sizeof copy || opt[6] == '\0') {
			*why = "names= wants a list of names";
			return -1;
		}
		strcpy(copy, opt + 6);
		for (n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
			if (!name_is_valid(n)) {
				*why = "names= holds a name that is not valid";
				return -1;
			}
		}
		snprintf(e->names, sizeof e->names, "%s", opt + 6);
		return 0;
	}
	if (strncmp(opt, "max-tunnels=", 12) == 0) {
		if (conf_int(opt + 12, 1, 10000, &v) == -1) {
			*why = "max-tunnels= wants a count, 1 to 10000";
			return -1;
		}
		e->max_tunnels = (int)v;
		return 0;
	}
	if (strncmp(opt, "max-streams=", 12) == 0) {
		if (conf_int(opt + 12, 1, 1000000, &v) == -1) {
			*why = "max-streams= wants a count, 1 to 1000000";
			return -1;
		}
		e->max_streams = (int)v;
		return 0;
	}
	*why = "unknown option (known: names=, max-tunnels=, max-streams=)";
	return -1;
}

int
keys_parse_line(const char *line, struct key_entry *e, const char **why)
{
	char copy[KEYS_LINE_BYTES], *tok, *save = NULL, *rest;
	int have_key = 0;

	memset(e, 0, sizeof *e);
	if (strlen(line) >= sizeof copy) {
		*why = "line too long";
		return -1;
	}
	strcpy(copy, line);
	copy[strcspn(copy, "\r\n")] = '\0';
	tok = strtok_r(copy, " \t", &save);
	if (tok == NULL || tok[0] == '#')
		return 0;
	for (; tok; tok = strtok_r(NULL, " \t", &save)) {
		if (strcmp(tok, "expose-ed25519") == 0) {
			have_key = 1;
			break;
		}
		if (strchr(tok, '=') == NULL) {
			*why = "expected OPTION=VALUE or 'expose-ed25519 KEY'";
			return -1;
		}
		if (parse_option(tok, e, why) == -1)
			return -1;
	}
	if (!have_key) {
		*why = "no 'expose-ed25519 KEY' on the line";
		return -1;
	}
	tok = strtok_r(NULL, " \t", &save);
	if (tok == NULL || identity_pk_parse(tok, e->pk) == -1) {
		*why = "the key is not a base64 Ed25519 public key";
		return -1;
	}
	rest = strtok_r(NULL, "", &save);
	if (rest) {
		while (*rest == ' ' || *rest == '\t')
			rest++;
		snprintf(e->comment, sizeof e->comment, "%s", rest);
	}
	return 1;
}

static int
same_file(const struct keys *k, const struct stat *st)
{
	return k->loaded && k->dev == st->st_dev && k->ino == st->st_ino &&
	       k->size == st->st_size && k->mtime.tv_sec == st->st_mtim.tv_sec &&
	       k->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int
keys_load(struct keys *k, const char *path, void (*warn)(void *ctx, const char *msg),
          void *ctx, const char **why)
{
	char line[KEYS_LINE_BYTES], msg[KEYS_LINE_BYTES + 64];
	struct key_entry *v = NULL, *grown, e;
	size_t n = 0, cap = 0;
	const char *bad;
	struct stat st;
	int lineno = 0, rc;
	FILE *f = fopen(path, "re");

	if (f == NULL || fstat(fileno(f), &st) == -1) {
		*why = errno == ENOENT ? "missing" : "cannot read it (check its mode)";
		if (f)
			fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f) && n < KEYS_MAX) {
		lineno++;
		rc = keys_parse_line(line, &e, &bad);
		if (rc == 0)
			continue;
		if (rc == -1) {
			snprintf(msg, sizeof msg, "%s:%d: %s; line skipped", path, lineno, bad);
			if (warn)
				warn(ctx, msg);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(v, cap * sizeof *v);
			if (grown == NULL) {
				free(v);
				fclose(f);
				*why = "out of memory";
				return -1;
			}
			v = grown;
		}
		v[n++] = e;
	}
	fclose(f);
	free(k->v);
	k->v = v;
	k->n = n;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	k->size = st.st_size;
	k->mtime = st.st_mtim;
	k->loaded = 1;
	return 0;
}

int
keys_refresh(struct keys *k, const char *path, void (*warn)(void *ctx, const char *msg),
             void *ctx, const char **why)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		*why = errno == ENOENT ? "missing" : "cannot read it (check its mode)";
		return -1;
	}
	if (same_file(k, &st))
		return 0;
	return keys_load(k, path, warn, ctx, why) == 0 ? 1 : -1;
}

const struct key_entry *
keys_find(const struct keys *k, const uint8_t pk[IDENTITY_PK_BYTES])
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (memcmp(k->v[i].pk, pk, IDENTITY_PK_BYTES) == 0)
			return &k->v[i];
	return NULL;
}

const struct key_entry *
keys_name_owner(const struct keys *k, const char *name)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (k->v[i].names[0] && conf_list_has(k->v[i].names, name))
			return &k->v[i];
	return NULL;
}

void
keys_free(struct keys *k)
{
	free(k->v);
	memset(k, 0, sizeof *k);
}
