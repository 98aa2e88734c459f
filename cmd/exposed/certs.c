/*
 * The broker's certificate for wss://: which version of its files is
 * loaded, and a renewal picked up at the next client handshake, with no
 * restart (the watchdog tick and reload look).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "broker.h"
#include "log.h"

/* A PEM certificate chain or key larger than this is not one. */
#define CERT_FILE_MAX_BYTES (256 * 1024)

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

void
cert_seen(struct broker *b)
{
	const char *key = b->cfg->set.key[0] ? b->cfg->set.key : b->cfg->set.cert;

	b->cert_version = file_version(b->cfg->set.cert);
	b->key_version = file_version(key);
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
void
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
