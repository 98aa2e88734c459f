/* clock_utc_text: the edge's access-line time without the time zone
 * file, the same text as gmtime and strftime give. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "clock.h"

static void
as_strftime(time_t t, char *out, size_t size)
{
	struct tm tm;

	assert_non_null(gmtime_r(&t, &tm));
	assert_true(strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
}

static void
utc_text_known_instants(void **state)
{
	static const struct { time_t t; const char *text; } cases[] = {
		{ 0, "1970-01-01T00:00:00Z" },
		{ -1, "1969-12-31T23:59:59Z" },
		{ 951782400, "2000-02-29T00:00:00Z" },       /* a leap day of a 400th year */
		{ 4107542399, "2100-02-28T23:59:59Z" },      /* 2100 is no leap year */
		{ 4107542400, "2100-03-01T00:00:00Z" },
		{ 1796231107, "2026-12-02T17:05:07Z" },
		{ 2147483647, "2038-01-19T03:14:07Z" },
		{ -2208988800, "1900-01-01T00:00:00Z" },
	};
	char got[CLOCK_UTC_TEXT_BYTES];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		clock_utc_text(cases[i].t, got, sizeof got);
		assert_string_equal(got, cases[i].text);
	}
}

/* Every day from 1800 to 2400, at a second that moves through the day. */
static void
utc_text_matches_gmtime(void **state)
{
	char got[CLOCK_UTC_TEXT_BYTES], want[CLOCK_UTC_TEXT_BYTES];
	time_t t;

	for (t = -5364662400; t < 13569465600; t += 86400 + 7) {
		clock_utc_text(t, got, sizeof got);
		as_strftime(t, want, sizeof want);
		assert_string_equal(got, want);
	}
}

static void
utc_text_cut_to_size(void **state)
{
	char got[8];

	clock_utc_text(0, got, sizeof got);
	assert_string_equal(got, "1970-01");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utc_text_known_instants),
		cmocka_unit_test(utc_text_matches_gmtime),
		cmocka_unit_test(utc_text_cut_to_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
