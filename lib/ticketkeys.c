#include "ticketkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define TICKET_KEY_BYTES (TICKET_NAME_BYTES + 2 * TICKET_SECRET_BYTES)
#define TICKET_LINE_BYTES (2 * TICKET_KEY_BYTES + 2)

static int
parse_line(const char *line, struct ticket_key *k)
{
	uint8_t raw[TICKET_KEY_BYTES];
	size_t len = 0;

	if (sodium_hex2bin(raw, sizeof raw, line, strcspn(line, "\r\n"), NULL, &len, NULL) != 0 ||
	    len != sizeof raw)
		return -1;
	memcpy(k->name, raw, TICKET_NAME_BYTES);
	memcpy(k->hmac, raw + TICKET_NAME_BYTES, TICKET_SECRET_BYTES);
	memcpy(k->aes, raw + TICKET_NAME_BYTES + TICKET_SECRET_BYTES, TICKET_SECRET_BYTES);
	sodium_memzero(raw, sizeof raw);
	return 0;
}

static void
format_key(const struct ticket_key *k, char out[TICKET_LINE_BYTES])
{
	uint8_t raw[TICKET_KEY_BYTES];

	memcpy(raw, k->name, TICKET_NAME_BYTES);
	memcpy(raw + TICKET_NAME_BYTES, k->hmac, TICKET_SECRET_BYTES);
	memcpy(raw + TICKET_NAME_BYTES + TICKET_SECRET_BYTES, k->aes, TICKET_SECRET_BYTES);
	sodium_bin2hex(out, TICKET_LINE_BYTES - 1, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
}

static int
write_keys(const char *path, const struct ticket_keys *t, const char **why)
{
	char tmp[4096 + 8], line[TICKET_LINE_BYTES];
	int fd, i;
	bool ok;

	if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) {
		*why = "path too long";
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1) {
		*why = "cannot write beside it (check its directory)";
		return -1;
	}
	for (i = 0; i < t->n; i++) {
		format_key(&t->k[i], line);
		if (dprintf(fd, "%s\n", line) < 0)
			break;
	}
	sodium_memzero(line, sizeof line);
	ok = i == t->n && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;    /* closed whatever failed before */
	if (!ok || rename(tmp, path) == -1) {
		unlink(tmp);
		*why = "cannot write it";
		return -1;
	}
	return 0;
}

static void
new_key(struct ticket_key *k)
{
	randombytes_buf(k, sizeof *k);
}

int
ticket_keys_load(const char *path, int create, struct ticket_keys *t, const char **why)
{
	char line[TICKET_LINE_BYTES + 8];
	struct stat st;
	FILE *f;

	memset(t, 0, sizeof *t);
	f = fopen(path, "re");
	if (f == NULL && errno == ENOENT && create) {
		new_key(&t->k[0]);
		t->n = 1;
		return write_keys(path, t, why);
	}
	if (f == NULL) {
		*why = errno == ENOENT ? "missing (the broker makes it at start)" :
		       "cannot read it (is this user in the expose group?)";
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 || (st.st_mode & 007)) {
		fclose(f);
		*why = "readable by everyone (chmod 640 it)";
		return -1;
	}
	while (t->n < TICKET_KEYS_MAX && fgets(line, sizeof line, f)) {
		if (parse_line(line, &t->k[t->n]) == -1) {
			fclose(f);
			ticket_keys_wipe(t);
			*why = "a line is not a ticket key (160 hex digits)";
			return -1;
		}
		t->n++;
	}
	fclose(f);
	if (t->n == 0) {
		*why = "empty";
		return -1;
	}
	return 0;
}

int
ticket_keys_rotate(const char *path, const char **why)
{
	struct ticket_keys t, next;
	int rc;

	if (ticket_keys_load(path, 1, &t, why) == -1)
		return -1;
	memset(&next, 0, sizeof next);
	new_key(&next.k[0]);
	next.n = 1;
	while (next.n < TICKET_KEYS_MAX && next.n - 1 < t.n) {
		next.k[next.n] = t.k[next.n - 1];
		next.n++;
	}
	rc = write_keys(path, &next, why);
	ticket_keys_wipe(&t);
	ticket_keys_wipe(&next);
	return rc;
}

void
ticket_keys_wipe(struct ticket_keys *t)
{
	sodium_memzero(t, sizeof *t);
}
