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

/* Verifies sig over ch with one part changed by change(). */
static int
verify_changed(const struct identity *id, const struct identity_challenge *ch,
               const uint8_t *sig, void (*change)(struct identity_challenge *))
{
	struct identity_challenge c = *ch;

	change(&c);
	return identity_verify_challenge(id->pk, &c, sig);
}

static const uint8_t other_nonce[IDENTITY_NONCE_BYTES] = { 9 };
static const uint8_t other_binding[IDENTITY_BINDING_BYTES] = { 7 };
static void other_nonce_of(struct identity_challenge *c) { c->nonce = other_nonce; }
static void other_server_of(struct identity_challenge *c) { c->server = "example.net"; }
static void other_version_of(struct identity_challenge *c) { c->version = 3; }
static void relayed_of(struct identity_challenge *c) { c->dialed = "ws://evil.example:4443"; }
static void other_port_of(struct identity_challenge *c) { c->dialed = "wss://example.com:444"; }
static void other_scheme_of(struct identity_challenge *c) { c->dialed = "ws://example.com:443"; }
static void other_channel_of(struct identity_challenge *c) { c->binding = other_binding; }
/* The same bytes split differently between the two names. */
static void shifted_of(struct identity_challenge *c)
{
	c->server = "example.comw";
	c->dialed = "ss://example.com:443";
}

static void
test_signature_binds_challenge_and_dialed_server(void **state)
{
	struct identity id;
	uint8_t nonce[IDENTITY_NONCE_BYTES] = { 1, 2, 3 };
	uint8_t binding[IDENTITY_BINDING_BYTES] = { 4, 5, 6 };
	uint8_t sig[IDENTITY_SIG_BYTES];
	char dir[] = "/tmp/expose-id-XXXXXX", path[256], cmd[300], longname[300];
	struct identity_challenge ch = {
		.version = 2, .nonce = nonce, .server = "example.com",
		.dialed = "wss://example.com:443", .binding = binding,
	};
	const char *why;

	assert_int_equal(identity_init(), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/id", dir);
	assert_int_equal(identity_create(&id, path, &why), 0);
	assert_int_equal(identity_sign_challenge(&id, &ch, sig), 0);
	assert_int_equal(identity_verify_challenge(id.pk, &ch, sig), 0);
	assert_int_equal(verify_changed(&id, &ch, sig, other_nonce_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, other_server_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, other_version_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, relayed_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, other_port_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, other_scheme_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, other_channel_of), -1);
	assert_int_equal(verify_changed(&id, &ch, sig, shifted_of), -1);
	sig[0] ^= 1;
	assert_int_equal(identity_verify_challenge(id.pk, &ch, sig), -1);
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ch.dialed = longname;
	assert_int_equal(identity_sign_challenge(&id, &ch, sig), -1);
	assert_int_equal(identity_verify_challenge(id.pk, &ch, sig), -1);
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
		cmocka_unit_test(test_signature_binds_challenge_and_dialed_server),
		cmocka_unit_test(test_public_key_text_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
