/* authorized_keys lines, CIDR lists, basic-auth tags, the handshake rate
 * limiter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include <sodium.h>

#include "auth.h"
#include "cidr.h"
#include "conf.h"
#include "keys.h"
#include "ratelimit.h"

static void
test_key_lines(void **state)
{
	struct key_entry e;
	const char *why;
	char line[256], text[IDENTITY_PK_TEXT_BYTES];
	uint8_t pk[IDENTITY_PK_BYTES];

	memset(pk, 7, sizeof pk);
	identity_pk_text(pk, text);
	snprintf(line, sizeof line, "names=api,web max-tunnels=3 %s alice's laptop\n", text);
	assert_int_equal(keys_parse_line(line, &e, &why), 1);
	assert_memory_equal(e.pk, pk, sizeof pk);
	assert_string_equal(e.names, "api,web");
	assert_int_equal(e.max_tunnels, 3);
	assert_string_equal(e.comment, "alice's laptop");
	assert_int_equal(keys_parse_line("# a comment\n", &e, &why), 0);
	assert_int_equal(keys_parse_line("   \n", &e, &why), 0);
	assert_int_equal(keys_parse_line("expose-ed25519 notbase64\n", &e, &why), -1);
	snprintf(line, sizeof line, "max-tunnels=0 %s\n", text);
	assert_int_equal(keys_parse_line(line, &e, &why), -1);
	snprintf(line, sizeof line, "names=Bad_Name %s\n", text);
	assert_int_equal(keys_parse_line(line, &e, &why), -1);
	snprintf(line, sizeof line, "colour=blue %s\n", text);
	assert_int_equal(keys_parse_line(line, &e, &why), -1);
	assert_non_null(strstr(why, "unknown option"));
}

static void
test_cidr(void **state)
{
	char out[256];

	assert_int_equal(cidr_list_match("203.0.113.0/24", "203.0.113.77"), 1);
	assert_int_equal(cidr_list_match("203.0.113.0/24", "203.0.114.1"), 0);
	assert_int_equal(cidr_list_match("10.0.0.0/8,2001:db8::/32", "2001:db8::1"), 1);
	assert_int_equal(cidr_list_match("2001:db8::/32", "2001:db9::1"), 0);
	assert_int_equal(cidr_list_match("::1", "::1"), 1);
	assert_int_equal(cidr_list_match("192.0.2.1", "192.0.2.1"), 1);
	assert_int_equal(cidr_list_match("0.0.0.0/0", "198.51.100.1"), 1);
	assert_int_equal(cidr_list_match("10.0.0.1/8", "10.0.0.1"), -1);    /* host bits */
	assert_int_equal(cidr_list_match("10.0.0.0/33", "10.0.0.1"), -1);
	assert_int_equal(cidr_list_match("nonsense", "10.0.0.1"), -1);
	assert_int_equal(cidr_list_match("10.0.0.0/8,", "192.0.2.1"), -1);
	assert_int_equal(cidr_list_normalize("10.0.0.0/8,", out, sizeof out), -1);
	assert_int_equal(cidr_list_normalize("10.0.0.0/8,2001:DB8::/32", out, sizeof out), 0);
	assert_string_equal(out, "10.0.0.0/8,2001:db8::/32");
}

static void
test_basic_auth(void **state)
{
	uint8_t key[AUTH_KEY_BYTES];
	char stored[AUTH_STORED_BYTES], other[AUTH_STORED_BYTES], header[128], b64[96];
	struct timespec a, b;
	double us;
	int i, n = 100000, ok = 0;

	assert_true(sodium_init() >= 0);
	randombytes_buf(key, sizeof key);
	assert_int_equal(auth_make(key, "ann:pa:ss", stored, sizeof stored), 0);
	assert_null(strstr(stored, "pa:ss"));
	assert_int_equal(auth_make(key, "ann:pa:ss", other, sizeof other), 0);
	assert_string_not_equal(stored, other);    /* salted */
	sodium_bin2base64(b64, sizeof b64, (const uint8_t *)"ann:pa:ss", 9,
	                  sodium_base64_VARIANT_ORIGINAL);
	snprintf(header, sizeof header, "Basic %s", b64);
	assert_int_equal(auth_check(key, stored, header, strlen(header)), 1);
	assert_int_equal(auth_check(key, other, header, strlen(header)), 1);
	assert_int_equal(auth_check(key, stored, "Basic Ym9iOnBhOnNz", 18), 0);   /* bob:pa:ss */
	assert_int_equal(auth_check(key, stored, "Bearer x", 8), 0);
	assert_int_equal(auth_check(key, stored, "Basic !!!!", 10), 0);
	key[0] ^= 1;
	assert_int_equal(auth_check(key, stored, header, strlen(header)), 0);
	key[0] ^= 1;
	assert_int_equal(auth_make(key, "nocolon", stored, sizeof stored), -1);
	assert_int_equal(auth_make(key, ":pass", stored, sizeof stored), -1);
	assert_int_equal(auth_make(key, "a\x01:b", stored, sizeof stored), -1);
	/* What a check costs, for the record (no threshold: shared machine). */
	auth_make(key, "ann:pa:ss", stored, sizeof stored);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		ok += auth_check(key, stored, header, strlen(header));
	clock_gettime(CLOCK_MONOTONIC, &b);
	us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n / 1000.0;
	print_message("basic auth check: %.2f us each (%d checks)\n", us, n);
	assert_int_equal(ok, n);
}

static void
test_rate_limit(void **state)
{
	static struct ratelimit r;
	struct sockaddr_in a = { .sin_family = AF_INET }, b = a;
	struct sockaddr_in6 v6a = { .sin6_family = AF_INET6 }, v6b = v6a;
	int i, n = 0;

	ratelimit_init(&r, 2, 5);
	inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
	inet_pton(AF_INET, "192.0.2.2", &b.sin_addr);
	for (i = 0; i < 10; i++)
		n += ratelimit_take(&r, (struct sockaddr *)&a, 1000);
	assert_int_equal(n, 5);                          /* the burst */
	assert_int_equal(ratelimit_take(&r, (struct sockaddr *)&b, 1000), 1);   /* others unaffected */
	assert_int_equal(ratelimit_take(&r, (struct sockaddr *)&a, 1400), 0);
	assert_int_equal(ratelimit_take(&r, (struct sockaddr *)&a, 1500), 1);   /* 2 a second */
	/* One IPv6 /64 is one source. */
	inet_pton(AF_INET6, "2001:db8:1:2::1", &v6a.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2::ffff", &v6b.sin6_addr);
	for (i = 0, n = 0; i < 6; i++) {
		n += ratelimit_take(&r, (struct sockaddr *)&v6a, 5000);
		n += ratelimit_take(&r, (struct sockaddr *)&v6b, 5000);
	}
	assert_int_equal(n, 5);
}

/* Slow rates (failed guesses: a few a minute), peeking without taking,
 * and sources named by text as the edge's OPEN line names them. */
static void
test_rate_limit_period_and_wait(void **state)
{
	static struct ratelimit r;
	uint8_t a[RATELIMIT_PREFIX_BYTES], mapped[RATELIMIT_PREFIX_BYTES],
	        b[RATELIMIT_PREFIX_BYTES], v6a[RATELIMIT_PREFIX_BYTES],
	        v6b[RATELIMIT_PREFIX_BYTES], junk[RATELIMIT_PREFIX_BYTES];
	int64_t t;
	int i, n = 0;

	ratelimit_init_period(&r, 60000, 3);
	ratelimit_prefix_text("192.0.2.1", a);
	ratelimit_prefix_text("::ffff:192.0.2.1", mapped);
	ratelimit_prefix_text("192.0.2.2", b);
	ratelimit_prefix_text("2001:db8:1:2::1", v6a);
	ratelimit_prefix_text("2001:db8:1:2::ffff", v6b);
	ratelimit_prefix_text("unknown", junk);
	assert_memory_equal(a, mapped, sizeof a);
	assert_memory_equal(v6a, v6b, sizeof v6a);
	assert_memory_not_equal(a, b, sizeof a);
	assert_int_equal(junk[0], 0);

	assert_int_equal(ratelimit_wait_ms(&r, a, 1000), 0);    /* never seen */
	for (i = 0; i < 5; i++)
		n += ratelimit_take_prefix(&r, mapped, 1000);
	assert_int_equal(n, 3);
	assert_int_equal(ratelimit_wait_ms(&r, a, 1000), 60000);
	assert_int_equal(ratelimit_wait_ms(&r, a, 31000), 30000);
	assert_int_equal(ratelimit_wait_ms(&r, b, 31000), 0);   /* others unaffected */
	/* Asking often does not slow the refill. */
	for (t = 1000; t < 61000; t += 7)
		assert_true(ratelimit_wait_ms(&r, a, t) > 0);
	assert_int_equal(ratelimit_wait_ms(&r, a, 61000), 0);
	assert_int_equal(ratelimit_take_prefix(&r, a, 61000), 1);
	assert_int_equal(ratelimit_take_prefix(&r, a, 61000), 0);
}

/* Name lists (deny-names, names= of authorized_keys): exact members only. */
static void
test_list_has(void **state)
{
	assert_true(conf_list_has("www,admin", "www"));
	assert_true(conf_list_has("www, admin", "admin"));
	assert_true(conf_list_has("solo", "solo"));
	assert_false(conf_list_has("www,admin", "ww"));
	assert_false(conf_list_has("www,admin", "admins"));
	assert_false(conf_list_has("www,admin", ""));
	assert_false(conf_list_has("", "www"));
	assert_false(conf_list_has("www,,admin", "w"));
	assert_true(conf_list_has("a,,b", "b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_lines),
		cmocka_unit_test(test_list_has),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_period_and_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
