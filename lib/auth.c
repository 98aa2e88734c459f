#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define AUTH_SALT_BYTES 16
#define AUTH_TAG_BYTES 32
/* The key file: 64 hex digits and a newline. */
#define AUTH_KEY_FILE_BYTES (2 * AUTH_KEY_BYTES + 1)

static int
key_create(const char *path, uint8_t key[AUTH_KEY_BYTES], const char **why)
{
	char hex[2 * AUTH_KEY_BYTES + 1];
	int fd;

	randombytes_buf(key, AUTH_KEY_BYTES);
	sodium_bin2hex(hex, sizeof hex, key, AUTH_KEY_BYTES);
	/* O_EXCL: two brokers starting at once must not both write it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1) {
		*why = errno == EEXIST ? "made by someone else meanwhile; start again" :
		       "cannot create it (check its directory)";
		return -1;
	}
	if (dprintf(fd, "%s\n", hex) < 0 || fsync(fd) == -1) {
		close(fd);
		unlink(path);
		*why = "cannot write it";
		return -1;
	}
	close(fd);
	sodium_memzero(hex, sizeof hex);
	return 0;
}

int
auth_key_load(const char *path, int create, uint8_t key[AUTH_KEY_BYTES], const char **why)
{
	char text[AUTH_KEY_FILE_BYTES + 1];
	size_t len = 0;
	ssize_t n;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 && errno == ENOENT && create)
		return key_create(path, key, why);
	if (fd == -1) {
		*why = errno == ENOENT ? "missing (the broker makes it at start)" :
		       "cannot read it (is this user in the expose group?)";
		return -1;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & 007)) {
		close(fd);
		*why = "readable by everyone (chmod 640 it)";
		return -1;
	}
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n < 2 * AUTH_KEY_BYTES) {
		*why = "too short: not an expose auth key";
		return -1;
	}
	text[n] = '\0';
	if (sodium_hex2bin(key, AUTH_KEY_BYTES, text, (size_t)n, "\n", &len, NULL) != 0 ||
	    len != AUTH_KEY_BYTES) {
		*why = "not 64 hex digits: not an expose auth key";
		return -1;
	}
	sodium_memzero(text, sizeof text);
	return 0;
}

static void
tag(const uint8_t key[AUTH_KEY_BYTES], const uint8_t salt[AUTH_SALT_BYTES],
    const char *userpass, size_t len, uint8_t out[AUTH_TAG_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, AUTH_KEY_BYTES, AUTH_TAG_BYTES);
	crypto_generichash_update(&st, salt, AUTH_SALT_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)userpass, len);
	crypto_generichash_final(&st, out, AUTH_TAG_BYTES);
}

int
auth_make(const uint8_t key[AUTH_KEY_BYTES], const char *userpass, char *out, size_t size)
{
	const char *colon = strchr(userpass, ':');
	uint8_t salt[AUTH_SALT_BYTES], t[AUTH_TAG_BYTES];
	char salt_hex[2 * AUTH_SALT_BYTES + 1], tag_hex[2 * AUTH_TAG_BYTES + 1];
	size_t ulen, i, len = strlen(userpass);
	int n;

	if (colon == NULL || colon == userpass || len > AUTH_USER_MAX_BYTES + 1 +
	    AUTH_PASSWORD_MAX_BYTES || (size_t)(colon - userpass) > AUTH_USER_MAX_BYTES)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)userpass[i] < 0x20 || userpass[i] == 0x7f)
			return -1;
	ulen = (size_t)(colon - userpass);
	randombytes_buf(salt, sizeof salt);
	tag(key, salt, userpass, len, t);
	sodium_bin2hex(salt_hex, sizeof salt_hex, salt, sizeof salt);
	sodium_bin2hex(tag_hex, sizeof tag_hex, t, sizeof t);
	n = snprintf(out, size, "%.*s:%s:%s", (int)ulen, userpass, salt_hex, tag_hex);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int
auth_check(const uint8_t key[AUTH_KEY_BYTES], const char *stored, const char *header,
           size_t len)
{
	uint8_t salt[AUTH_SALT_BYTES], want[AUTH_TAG_BYTES], got[AUTH_TAG_BYTES];
	char userpass[AUTH_USER_MAX_BYTES + 1 + AUTH_PASSWORD_MAX_BYTES + 1];
	const char *salt_hex, *tag_hex;
	size_t n = 0, slen;
	int ok;

	salt_hex = strchr(stored, ':');
	if (salt_hex == NULL || (tag_hex = strchr(salt_hex + 1, ':')) == NULL)
		return 0;
	if (sodium_hex2bin(salt, sizeof salt, salt_hex + 1, (size_t)(tag_hex - salt_hex - 1),
	                   NULL, &n, NULL) != 0 || n != sizeof salt ||
	    sodium_hex2bin(want, sizeof want, tag_hex + 1, strlen(tag_hex + 1), NULL, &n,
	                   NULL) != 0 || n != sizeof want)
		return 0;
	/* "Basic" (any case), spaces, then base64 of "user:password". */
	if (len < 6 || strncasecmp(header, "Basic ", 6) != 0)
		return 0;
	header += 6;
	len -= 6;
	while (len && *header == ' ') {
		header++;
		len--;
	}
	if (sodium_base642bin((uint8_t *)userpass, sizeof userpass - 1, header, len, NULL,
	                      &slen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	userpass[slen] = '\0';
	/* The user must match too: it is part of what was hashed. */
	tag(key, salt, userpass, slen, got);
	ok = sodium_memcmp(got, want, sizeof got) == 0;
	sodium_memzero(userpass, sizeof userpass);
	return ok;
}
