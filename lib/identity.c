#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define KEY_TAG "expose-key-v1 "
#define PK_TAG "expose-ed25519 "
#define SIGN_TAG "expose-auth-v2"
/* The signed message at most: tag, NUL, version, nonce, two names with
 * their lengths, the channel binding. */
#define SIGNED_MAX_BYTES (sizeof SIGN_TAG + 1 + IDENTITY_NONCE_BYTES + \
	2 * (1 + IDENTITY_SERVER_MAX_BYTES) + IDENTITY_BINDING_BYTES)
#define KEY_FILE_MAX_BYTES 256

int
identity_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void
identity_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

void
identity_wipe(struct identity *id)
{
	sodium_memzero(id, sizeof *id);
}

int
identity_default_path(char *out, size_t size)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && *xdg)
		n = snprintf(out, size, "%s/expose/id_ed25519", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.config/expose/id_ed25519", home);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* mkdir -p for the directories above path, mode 0700. */
static int
make_parents(const char *path)
{
	char dir[4096];
	char *p;

	if (strlen(path) >= sizeof dir)
		return -1;
	strcpy(dir, path);
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

int
identity_create(struct identity *id, const char *path, const char **why)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_sign_SEEDBYTES,
	                                   sodium_base64_VARIANT_ORIGINAL)];
	char tmp[4096 + 8];
	int fd, n, rc = -1;

	if (make_parents(path) == -1) {
		*why = "cannot create its directory";
		return -1;
	}
	randombytes_buf(seed, sizeof seed);
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
	sodium_bin2base64(b64, sizeof b64, seed, sizeof seed,
	                  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(tmp, sizeof tmp, "%s.new", path);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		*why = "path too long";
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		*why = "cannot write it";
		goto out;
	}
	if (dprintf(fd, "%s%s\n", KEY_TAG, b64) < 0 || fsync(fd) == -1) {
		*why = "cannot write it";
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		*why = "cannot write it";
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(b64, sizeof b64);
	return rc;
}

static int
identity_read(struct identity *id, int fd, const char **why)
{
	char text[KEY_FILE_MAX_BYTES + 1];
	uint8_t seed[crypto_sign_SEEDBYTES];
	size_t seed_len = 0;
	ssize_t n;
	struct stat st;
	int rc = -1;

	if (fstat(fd, &st) == -1 || (st.st_mode & 077)) {
		*why = "readable by others (chmod 600 it)";
		return -1;
	}
	n = read(fd, text, KEY_FILE_MAX_BYTES);
	if (n <= 0) {
		*why = "cannot read it";
		return -1;
	}
	text[n] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	if (strncmp(text, KEY_TAG, strlen(KEY_TAG)) != 0 ||
	    sodium_base642bin(seed, sizeof seed, text + strlen(KEY_TAG),
	                      strlen(text + strlen(KEY_TAG)), NULL, &seed_len,
	                      NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    seed_len != sizeof seed) {
		*why = "not an expose key (move it away to make a new one)";
		goto out;
	}
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
	rc = 0;
out:
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(text, sizeof text);
	return rc;
}

int
identity_load_or_create(struct identity *id, const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd == -1 && errno == ENOENT)
		return identity_create(id, path, why);
	if (fd == -1) {
		*why = "cannot open it";
		return -1;
	}
	rc = identity_read(id, fd, why);
	close(fd);
	return rc;
}

void
identity_pk_text(const uint8_t pk[IDENTITY_PK_BYTES], char out[IDENTITY_PK_TEXT_BYTES])
{
	char b64[sodium_base64_ENCODED_LEN(IDENTITY_PK_BYTES,
	                                   sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof b64, pk, IDENTITY_PK_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, IDENTITY_PK_TEXT_BYTES, "%s%s", PK_TAG, b64);
}

int
identity_pk_parse(const char *text, uint8_t pk[IDENTITY_PK_BYTES])
{
	size_t len = 0;
	const char *end;

	if (strncmp(text, PK_TAG, strlen(PK_TAG)) == 0)
		text += strlen(PK_TAG);
	if (sodium_base642bin(pk, IDENTITY_PK_BYTES, text, strlen(text), NULL,
	                      &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != IDENTITY_PK_BYTES || (*end != '\0' && *end != ' '))
		return -1;
	return 0;
}

void
identity_fingerprint(const uint8_t pk[IDENTITY_PK_BYTES], char out[IDENTITY_FP_BYTES])
{
	uint8_t h[8];

	crypto_generichash(h, sizeof h, pk, IDENTITY_PK_BYTES, NULL, 0);
	sodium_bin2hex(out, IDENTITY_FP_BYTES, h, sizeof h);
}

/* Appends a name with its length byte; -1 if too long. */
static int
put_name(uint8_t *m, size_t *n, const char *name)
{
	size_t len = strlen(name);

	if (len > IDENTITY_SERVER_MAX_BYTES)
		return -1;
	m[(*n)++] = (uint8_t)len;
	memcpy(m + *n, name, len);
	*n += len;
	return 0;
}

/* What a signature covers: tag NUL, version, nonce, the challenge's
 * server name and the dialed URL (each after its length byte), the
 * channel binding.  0 if a name is too long. */
static size_t
challenge_message(uint8_t m[SIGNED_MAX_BYTES], const struct identity_challenge *ch)
{
	size_t n = sizeof SIGN_TAG;

	memcpy(m, SIGN_TAG, n);
	m[n++] = ch->version;
	memcpy(m + n, ch->nonce, IDENTITY_NONCE_BYTES);
	n += IDENTITY_NONCE_BYTES;
	if (put_name(m, &n, ch->server) == -1 || put_name(m, &n, ch->dialed) == -1)
		return 0;
	memcpy(m + n, ch->binding, IDENTITY_BINDING_BYTES);
	return n + IDENTITY_BINDING_BYTES;
}

int
identity_sign_challenge(const struct identity *id, const struct identity_challenge *ch,
                        uint8_t sig[IDENTITY_SIG_BYTES])
{
	uint8_t m[SIGNED_MAX_BYTES];
	size_t n = challenge_message(m, ch);

	if (n == 0)
		return -1;
	crypto_sign_detached(sig, NULL, m, n, id->sk);
	return 0;
}

int
identity_verify_challenge(const uint8_t pk[IDENTITY_PK_BYTES],
                          const struct identity_challenge *ch,
                          const uint8_t sig[IDENTITY_SIG_BYTES])
{
	uint8_t m[SIGNED_MAX_BYTES];
	size_t n = challenge_message(m, ch);

	if (n == 0)
		return -1;
	return crypto_sign_verify_detached(sig, m, n, pk) == 0 ? 0 : -1;
}
