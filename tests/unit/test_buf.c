/* The bounded byte buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void
test_append_consume(void **state)
{
	struct buf b;

	buf_init(&b, 16);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_append(&b, " world", 6), 0);
	assert_int_equal(buf_len(&b), 11);
	buf_consume(&b, 6);
	assert_memory_equal(buf_data(&b), "world", 5);
	assert_int_equal(buf_append(&b, "0123456789a", 11), 0);   /* compacts */
	assert_int_equal(buf_len(&b), 16);
	buf_free(&b);
}

static void
test_limit_is_enforced(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(buf_append(&b, "9", 1), -1);
	assert_int_equal(buf_len(&b), 8);
	assert_null(buf_reserve(&b, 1));
	buf_consume(&b, 100);
	assert_int_equal(buf_len(&b), 0);
	assert_non_null(buf_reserve(&b, 8));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_limit_is_enforced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
