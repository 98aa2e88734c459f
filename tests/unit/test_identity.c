/* Keys and handshake signatures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "identity.h"

static void
test_key_file_made_once_with_mode_0600(void **state)
{
	char dir[] = "/tmp/expose-id-XXXXXX", path[256], cmd[300];
	struct identity a, b;
	const char *why = NULL;
	struct stat st;

	assert_int_equal(identity_init(), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sub/expose/id_ed25519", dir);
	assert_int_equal(identity_load_or_create(&a, path, &why), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(identity_load_or_create(&b, path, &why), 0);
	assert_memory_equal(a.pk, b.pk, IDENTITY_PK_BYTES);
	chmod(path, 0644);
	assert_int_equal(identity_load_or_create(&b, path, &why), -1);
	assert_non_null(strstr(why, "chmod"));
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_signature_binds_nonce_server_and_version(void **state)
{
	struct identity id;
	uint8_t nonce[IDENTITY_NONCE_BYTES] = { 1, 2, 3 }, other[IDENTITY_NONCE_BYTES] = { 9 };
	uint8_t sig[IDENTITY_SIG_BYTES];
	char dir[] = "/tmp/expose-id-XXXXXX", path[256], cmd[300];
	const char *why;

	assert_int_equal(identity_init(), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/id", dir);
	assert_int_equal(identity_create(&id, path, &why), 0);
	identity_sign_challenge(&id, nonce, "example.com", 1, sig);
	assert_int_equal(identity_verify_challenge(id.pk, nonce, "example.com", 1, sig), 0);
	assert_int_equal(identity_verify_challenge(id.pk, other, "example.com", 1, sig), -1);
	assert_int_equal(identity_verify_challenge(id.pk, nonce, "example.net", 1, sig), -1);
	assert_int_equal(identity_verify_challenge(id.pk, nonce, "example.com", 2, sig), -1);
	sig[0] ^= 1;
	assert_int_equal(identity_verify_challenge(id.pk, nonce, "example.com", 1, sig), -1);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_public_key_text_round_trip(void **state)
{
	uint8_t pk[IDENTITY_PK_BYTES], back[IDENTITY_PK_BYTES];
	char text[IDENTITY_PK_TEXT_BYTES], fp[IDENTITY_FP_BYTES];

	memset(pk, 0x5a, sizeof pk);
	identity_pk_text(pk, text);
	assert_int_equal(strncmp(text, "expose-ed25519 ", 15), 0);
	assert_int_equal(identity_pk_parse(text, back), 0);
	assert_memory_equal(pk, back, sizeof pk);
	assert_int_equal(identity_pk_parse("expose-ed25519 nope", back), -1);
	identity_fingerprint(pk, fp);
	assert_int_equal(strlen(fp), 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_file_made_once_with_mode_0600),
		cmocka_unit_test(test_signature_binds_nonce_server_and_version),
		cmocka_unit_test(test_public_key_text_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
