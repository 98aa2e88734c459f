/* Host values: which are valid, and which tunnel each names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "host.h"

struct host_case {
	const char *value;
	enum host_result result;
	const char *name;
};

static const struct host_case cases[] = {
	{ "app.example.com", HOST_OK, "app" },
	{ "App.Example.COM", HOST_OK, "app" },
	{ "app.example.com.", HOST_OK, "app" },
	{ "app.example.com:8080", HOST_OK, "app" },
	{ "app.example.com.:8080", HOST_OK, "app" },
	{ "example.com", HOST_FOREIGN, NULL },
	{ "a.b.example.com", HOST_FOREIGN, NULL },
	{ "app.other.com", HOST_FOREIGN, NULL },
	{ "appexample.com", HOST_FOREIGN, NULL },
	{ "[::1]:8080", HOST_FOREIGN, NULL },
	{ "127.0.0.1", HOST_FOREIGN, NULL },
	{ "", HOST_INVALID, NULL },
	{ "u@app.example.com", HOST_INVALID, NULL },
	{ "app.example.com/x", HOST_INVALID, NULL },
	{ "app\x02.example.com", HOST_INVALID, NULL },
	{ "a,b.example.com", HOST_INVALID, NULL },
	{ "app..example.com", HOST_INVALID, NULL },
	{ ".app.example.com", HOST_INVALID, NULL },
	{ "app.example.com:", HOST_INVALID, NULL },
	{ "app.example.com:99999", HOST_INVALID, NULL },
	{ "app.example.com:80a", HOST_INVALID, NULL },
	{ "app.example.com:80:80", HOST_INVALID, NULL },
	{ "app example.com", HOST_INVALID, NULL },
	{ "[::1", HOST_INVALID, NULL },
	{ "[zz]:80", HOST_INVALID, NULL },
};

static void
test_host_cases(void **state)
{
	char name[64];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum host_result r = host_parse(cases[i].value, strlen(cases[i].value),
		                                "example.com", name, sizeof name);
		if (r != cases[i].result)
			fail_msg("'%s': result %d, want %d", cases[i].value, r, cases[i].result);
		if (cases[i].name)
			assert_string_equal(name, cases[i].name);
	}
}

static void
test_host_same(void **state)
{
	assert_true(host_same("A.example.com", 13, "a.example.com:80", 16, 80));
	assert_true(host_same("a.example.com.", 14, "a.example.com", 13, 80));
	assert_false(host_same("a.example.com:81", 16, "a.example.com", 13, 80));
	assert_false(host_same("b.example.com", 13, "a.example.com", 13, 80));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_cases),
		cmocka_unit_test(test_host_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
