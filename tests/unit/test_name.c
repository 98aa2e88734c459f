/* Tunnel names: DNS label rules and random names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "name.h"

static void
test_valid_names(void **state)
{
	assert_true(name_is_valid("a"));
	assert_true(name_is_valid("myapp"));
	assert_true(name_is_valid("my-app-2"));
	assert_true(name_is_valid("abc-d--e"));
	assert_true(name_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void
test_invalid_names(void **state)
{
	static const char *const bad[] = {
		"", "-a", "a-", "a_b", "A", "a.b", "a b", "xn--80ak6aa92e", "ab--c",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"caf\xc3\xa9",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (name_is_valid(bad[i]))
			fail_msg("'%s' was accepted", bad[i]);
	assert_non_null(name_invalid_reason("a_b"));
}

static void
test_random_names_are_valid_and_distinct(void **state)
{
	char a[NAME_RANDOM_BYTES], b[NAME_RANDOM_BYTES];
	int i;

	assert_true(sodium_init() >= 0);
	for (i = 0; i < 1000; i++) {
		name_random(a);
		name_random(b);
		if (!name_is_valid(a))
			fail_msg("random name '%s' is not valid", a);
		assert_string_not_equal(a, b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_names),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_random_names_are_valid_and_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
