/* The edge<->broker preamble: each line written and read back, and the
 * lines a peer might send that are none of them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "preamble.h"

static void
test_preamble_open_round_trip(void **state)
{
	char line[PREAMBLE_MAX_BYTES];
	struct preamble_ask a;
	int n = preamble_ask_format(line, sizeof line, PREAMBLE_OPEN, "quiet-otter",
	                            "203.0.113.7", 51234, "https");

	assert_int_equal(n, (int)strlen(line));
	assert_string_equal(line, "EXPOSE/1 OPEN quiet-otter 203.0.113.7 51234 https\n");
	line[n - 1] = '\0';
	assert_int_equal(preamble_ask_parse(line, &a), 0);
	assert_int_equal(a.verb, PREAMBLE_OPEN);
	assert_string_equal(a.name, "quiet-otter");
	assert_string_equal(a.addr, "203.0.113.7");
	assert_string_equal(a.peer, "203.0.113.7 51234 https");
}

static void
test_preamble_authfail_round_trip(void **state)
{
	char line[PREAMBLE_MAX_BYTES];
	struct preamble_ask a;
	int n = preamble_ask_format(line, sizeof line, PREAMBLE_AUTHFAIL, "app", "::1", 80,
	                            "http");

	assert_string_equal(line, "EXPOSE/1 AUTHFAIL app ::1 80 http\n");
	line[n - 1] = '\0';
	assert_int_equal(preamble_ask_parse(line, &a), 0);
	assert_int_equal(a.verb, PREAMBLE_AUTHFAIL);
	assert_string_equal(a.name, "app");
	assert_string_equal(a.addr, "::1");
}

static void
test_preamble_ask_too_long_for_buffer(void **state)
{
	char line[16];

	assert_int_equal(preamble_ask_format(line, sizeof line, PREAMBLE_OPEN, "app",
	                                     "203.0.113.7", 1, "http"), -1);
}

static void
test_preamble_ask_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"EXPOSE/1",
		"EXPOSE/1 OPEN",
		"EXPOSE/1 OPEN ",
		"EXPOSE/1 OPEN app",
		"EXPOSE/1 OPEN app ",
		"EXPOSE/1 OPEN  app 1.2.3.4 1 http",
		"EXPOSE/1 OPENX app 1.2.3.4 1 http",
		"EXPOSE/2 OPEN app 1.2.3.4 1 http",
		"expose/1 OPEN app 1.2.3.4 1 http",
		"EXPOSE/1 CLOSE app 1.2.3.4 1 http",
		"EXPOSE/1 OPEN 0123456789012345678901234567890123456789012345678901234567890123 1.2.3.4 1 http",
		"EXPOSE/1 OPEN app 0123456789012345678901234567890123456789012345678901234567890123 1 http",
	};
	struct preamble_ask a;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (preamble_ask_parse(bad[i], &a) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_preamble_ask_rejects_overlong_peer(void **state)
{
	char line[PREAMBLE_MAX_BYTES * 2];
	struct preamble_ask a;

	strcpy(line, "EXPOSE/1 OPEN app 1.2.3.4 ");
	memset(line + strlen(line), 'x', PREAMBLE_MAX_BYTES);
	line[sizeof line - 1] = '\0';
	assert_int_equal(preamble_ask_parse(line, &a), -1);
}

struct answer_case {
	enum preamble_kind kind;
	enum preamble_code code;
	int seconds;
	const char *detail;
	const char *line;
};

static const struct answer_case answers[] = {
	{ PREAMBLE_OPENED, 0, 0, NULL, "EXPOSE/1 OPENED\n" },
	{ PREAMBLE_OK, 0, 0, NULL, "EXPOSE/1 OK\n" },
	{ PREAMBLE_ERR, PREAMBLE_GONE, 0, NULL, "EXPOSE/1 ERR gone\n" },
	{ PREAMBLE_ERR, PREAMBLE_LIMIT, 0, NULL, "EXPOSE/1 ERR limit\n" },
	{ PREAMBLE_ERR, PREAMBLE_PROTOCOL, 0, NULL, "EXPOSE/1 ERR protocol\n" },
	{ PREAMBLE_ERR, PREAMBLE_INTERNAL, 0, NULL, "EXPOSE/1 ERR internal\n" },
	{ PREAMBLE_ERR, PREAMBLE_UNAUTHORIZED, 0, NULL, "EXPOSE/1 ERR unauthorized\n" },
	{ PREAMBLE_ERR, PREAMBLE_THROTTLED, 42, NULL, "EXPOSE/1 ERR throttled 42\n" },
	{ PREAMBLE_ERR, PREAMBLE_REFUSED, 0, "localhost:3000", "EXPOSE/1 ERR refused localhost:3000\n" },
	{ PREAMBLE_ERR, PREAMBLE_CLOSED, 0, NULL, "EXPOSE/1 ERR closed\n" },
};

static void
test_preamble_answers_round_trip(void **state)
{
	char line[PREAMBLE_MAX_BYTES];
	struct preamble_answer a;
	size_t i;
	int n;

	for (i = 0; i < sizeof answers / sizeof answers[0]; i++) {
		const struct answer_case *c = &answers[i];
		n = preamble_answer_format(line, sizeof line, c->kind, c->code, c->seconds,
		                           c->detail);
		assert_string_equal(line, c->line);
		line[n - 1] = '\0';
		assert_int_equal(preamble_answer_parse(line, &a), 0);
		assert_int_equal(a.kind, c->kind);
		if (c->kind != PREAMBLE_ERR)
			continue;
		assert_int_equal(a.code, c->code);
		assert_int_equal(a.seconds, c->seconds);
		assert_string_equal(a.detail, c->detail ? c->detail : "");
	}
}

static void
test_preamble_refused_detail_is_cut(void **state)
{
	char line[PREAMBLE_MAX_BYTES], detail[200];
	struct preamble_answer a;
	int n;

	memset(detail, 'p', sizeof detail - 1);
	detail[sizeof detail - 1] = '\0';
	n = preamble_answer_format(line, sizeof line, PREAMBLE_ERR, PREAMBLE_REFUSED, 0, detail);
	assert_int_equal(n, (int)strlen("EXPOSE/1 ERR refused \n") + PREAMBLE_ERR_DETAIL_BYTES - 1);
	line[n - 1] = '\0';
	assert_int_equal(preamble_answer_parse(line, &a), 0);
	assert_int_equal(strlen(a.detail), PREAMBLE_ERR_DETAIL_BYTES - 1);
}

static void
test_preamble_answer_odd_lines(void **state)
{
	static const char *const none[] = {
		"", "EXPOSE/1", "EXPOSE/1 ", "EXPOSE/1 OPENED ", "EXPOSE/1 OKAY", "EXPOSE/1 ERR",
		"EXPOSE/2 OK", "HTTP/1.1 200 OK",
	};
	static const char *const unknown[] = {
		"EXPOSE/1 ERR ", "EXPOSE/1 ERR sleepy", "EXPOSE/1 ERR gonex", "EXPOSE/1 ERR go",
	};
	struct preamble_answer a;
	size_t i;

	for (i = 0; i < sizeof none / sizeof none[0]; i++)
		if (preamble_answer_parse(none[i], &a) != -1)
			fail_msg("accepted \"%s\"", none[i]);
	for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		assert_int_equal(preamble_answer_parse(unknown[i], &a), 0);
		assert_int_equal(a.kind, PREAMBLE_ERR);
		assert_int_equal(a.code, PREAMBLE_UNKNOWN);
	}
}

static void
test_preamble_throttled_seconds_must_be_a_count(void **state)
{
	static const char *const bad[] = {
		"EXPOSE/1 ERR throttled", "EXPOSE/1 ERR throttled ", "EXPOSE/1 ERR throttled -5",
		"EXPOSE/1 ERR throttled 0", "EXPOSE/1 ERR throttled 5x",
		"EXPOSE/1 ERR throttled 99999999999999999999",
	};
	struct preamble_answer a;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(preamble_answer_parse(bad[i], &a), 0);
		assert_int_equal(a.code, PREAMBLE_THROTTLED);
		assert_int_equal(a.seconds, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preamble_open_round_trip),
		cmocka_unit_test(test_preamble_authfail_round_trip),
		cmocka_unit_test(test_preamble_ask_too_long_for_buffer),
		cmocka_unit_test(test_preamble_ask_rejects_malformed),
		cmocka_unit_test(test_preamble_ask_rejects_overlong_peer),
		cmocka_unit_test(test_preamble_answers_round_trip),
		cmocka_unit_test(test_preamble_refused_detail_is_cut),
		cmocka_unit_test(test_preamble_answer_odd_lines),
		cmocka_unit_test(test_preamble_throttled_seconds_must_be_a_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
