/* Control frame payloads: the dialed server's one form, AUTH, and text
 * from a peer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

static void
test_dialed_server_has_one_form(void **state)
{
	static const struct { const char *url, *want; } cases[] = {
		{ "ws://tunnel.example.net:4443", "ws://tunnel.example.net:4443" },
		{ "ws://Tunnel.Example.NET:4443/path", "ws://tunnel.example.net:4443" },
		{ "wss://tunnel.example.net", "wss://tunnel.example.net:443" },
		{ "ws://127.0.0.1", "ws://127.0.0.1:80" },
		{ "wss://localhost:8443/", "wss://localhost:8443" },
		{ "http://tunnel.example.net", NULL },
		{ "ws://", NULL },
		{ "ws://host:0", NULL },
		{ "ws://host:65536", NULL },
		{ "ws://host:x", NULL },
		{ "ws://host:80x", NULL },
		{ "ws://ho st:80", NULL },
		{ "ws://h\x1b[31m:80", NULL },
		{ "ws://[::1]:80", NULL },
	};
	char out[PROTO_DIALED_BYTES];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = proto_dialed_parse(cases[i].url, out, sizeof out);
		if (cases[i].want) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].want);
		} else {
			assert_int_equal(rc, -1);
		}
	}
}

static void
test_auth_round_trip_and_only_canonical(void **state)
{
	uint8_t pk[IDENTITY_PK_BYTES] = { 1 }, sig[IDENTITY_SIG_BYTES] = { 2 };
	uint8_t binding[IDENTITY_BINDING_BYTES] = { 3 }, buf[512];
	struct proto_auth a;
	size_t n;

	n = proto_auth_encode(buf, sizeof buf, pk, sig, binding, "wss://a.example:443");
	assert_int_equal(n, 128 + 19);
	assert_int_equal(proto_auth_decode(buf, n, &a), 0);
	assert_memory_equal(a.pk, pk, sizeof pk);
	assert_memory_equal(a.sig, sig, sizeof sig);
	assert_memory_equal(a.binding, binding, sizeof binding);
	assert_string_equal(a.dialed, "wss://a.example:443");
	/* the old form (key and signature only), and non-canonical servers */
	assert_int_equal(proto_auth_decode(buf, 96, &a), -1);
	assert_int_equal(proto_auth_decode(buf, 128, &a), -1);
	n = proto_auth_encode(buf, sizeof buf, pk, sig, binding, "wss://A.example:443");
	assert_int_equal(proto_auth_decode(buf, n, &a), -1);
	n = proto_auth_encode(buf, sizeof buf, pk, sig, binding, "wss://a.example");
	assert_int_equal(proto_auth_decode(buf, n, &a), -1);
	assert_int_equal(proto_auth_encode(buf, 100, pk, sig, binding, "ws://a:1"), 0);
}

static void
test_peer_text_printable_and_escaped(void **state)
{
	static const char ok[] = "name=a\ntarget=localhost:3000\n";
	static const char esc[] = "name=a\ntarget=\x1b[2J\n";
	static const char high[] = "target=caf\xc3\xa9\n";
	static const char del[] = "auth=u:p\x7f\n";
	char key[64], out[64];

	assert_int_equal(proto_kv_printable((const uint8_t *)ok, strlen(ok), key, sizeof key), 0);
	assert_int_equal(proto_kv_printable((const uint8_t *)esc, strlen(esc), key, sizeof key), -1);
	assert_string_equal(key, "target");
	assert_int_equal(proto_kv_printable((const uint8_t *)high, strlen(high), key, sizeof key), -1);
	assert_int_equal(proto_kv_printable((const uint8_t *)del, strlen(del), key, sizeof key), -1);
	assert_string_equal(key, "auth");
	assert_true(proto_text_ok("localhost:3000"));
	assert_false(proto_text_ok("a\rb"));
	assert_false(proto_text_ok("caf\xc3\xa9"));
	proto_text_escape("a\x1b[31m\r\\\xff", out, sizeof out);
	assert_string_equal(out, "a\\x1b[31m\\x0d\\x5c\\xff");
	proto_text_escape("\x1b\x1b\x1b", out, 6);    /* cut whole, never mid-escape */
	assert_string_equal(out, "\\x1b");
}

static void
test_peer_text_defanged_for_a_terminal(void **state)
{
	char text[] = "ok \x1b]0;title\x07 \x9b" "2J \r\n\x7f~";

	(void)state;
	proto_text_defang(text);
	assert_string_equal(text, "ok ?]0;title? ?2J ???~");
	assert_true(proto_text_ok(text));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialed_server_has_one_form),
		cmocka_unit_test(test_auth_round_trip_and_only_canonical),
		cmocka_unit_test(test_peer_text_printable_and_escaped),
		cmocka_unit_test(test_peer_text_defanged_for_a_terminal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
