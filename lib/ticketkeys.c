#include "ticketkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define TICKET_LINE_BYTES (2 * TICKET_KEY_BYTES + 2)
/* The older format's line: a 16-byte name and two 32-byte secrets. */
#define TICKET_OLD_HEX_DIGITS (2 * (16 + 2 * 32))

static int
write_key(const char *path, const struct ticket_keys *t, const char **why)
{
	char tmp[4096 + 8], line[TICKET_LINE_BYTES];
	bool ok;
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) {
		*why = "path too long";
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1) {
		*why = "cannot write beside it (check its directory)";
		return -1;
	}
	sodium_bin2hex(line, sizeof line - 1, t->key, sizeof t->key);
	ok = dprintf(fd, "%s\n", line) > 0 && fsync(fd) == 0;
	sodium_memzero(line, sizeof line);
	ok = close(fd) == 0 && ok;    /* closed whatever failed before */
	if (!ok || rename(tmp, path) == -1) {
		unlink(tmp);
		*why = "cannot write it";
		return -1;
	}
	return 0;
}

static int
new_key(const char *path, struct ticket_keys *t, const char **why)
{
	randombytes_buf(t->key, sizeof t->key);
	return write_key(path, t, why);
}

/* 0 a key, 1 a line of the older format, -1 neither. */
static int
parse_line(const char *line, struct ticket_keys *t)
{
	size_t digits = strcspn(line, "\r\n"), len = 0;

	if (digits == TICKET_OLD_HEX_DIGITS && strspn(line, "0123456789abcdefABCDEF") == digits)
		return 1;
	if (sodium_hex2bin(t->key, sizeof t->key, line, digits, NULL, &len, NULL) != 0 ||
	    len != sizeof t->key)
		return -1;
	return 0;
}

static int
read_key(FILE *f, struct ticket_keys *t, const char **why)
{
	char line[TICKET_OLD_HEX_DIGITS + 8];    /* either form, and its newline */
	struct stat st;
	int rc;

	if (fstat(fileno(f), &st) == -1 || (st.st_mode & 007)) {
		*why = "readable by everyone (chmod 640 it)";
		return -1;
	}
	if (fgets(line, sizeof line, f) == NULL) {
		*why = "empty";
		return -1;
	}
	rc = parse_line(line, t);
	sodium_memzero(line, sizeof line);
	if (rc == 1) {
		*why = "in the older format of three keys (the broker replaces it at start, "
		       "or run exposectl rotate-ticket-keys)";
		return 1;
	}
	if (rc == -1) {
		*why = "not a ticket key (one line of 128 hex digits)";
		return -1;
	}
	return 0;
}

int
ticket_keys_load(const char *path, int create, struct ticket_keys *t, const char **why)
{
	FILE *f;
	int rc;

	memset(t, 0, sizeof *t);
	f = fopen(path, "re");
	if (f == NULL && errno == ENOENT && create)
		return new_key(path, t, why);
	if (f == NULL) {
		*why = errno == ENOENT ? "missing (the broker makes it at start)" :
		       "cannot read it (is this user in the expose group?)";
		return -1;
	}
	rc = read_key(f, t, why);
	fclose(f);
	if (rc == 1 && create)
		return new_key(path, t, why);
	if (rc != 0) {
		ticket_keys_wipe(t);
		return -1;
	}
	return 0;
}

int
ticket_keys_rotate(const char *path, const char **why)
{
	struct ticket_keys t;
	int rc = new_key(path, &t, why);

	ticket_keys_wipe(&t);
	return rc;
}

void
ticket_keys_wipe(struct ticket_keys *t)
{
	sodium_memzero(t, sizeof *t);
}
