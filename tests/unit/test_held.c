/* The mirror's held-back copies (cmd/expose-mirror/held.c): at most
 * MIRROR_HELD_MAX names, one value each, a full list drops new names and
 * keeps serving the ones it holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../cmd/expose-mirror/held.c"

static const char *
value_of(const struct held *h, const char *name)
{
	int i = find(h, name);

	return i == -1 ? NULL : h->c[i].value;
}

static void
fill(struct held *h, int n)
{
	char name[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "name-%d", i);
		held_keep(h, name, "v");
	}
}

static void
keep_replaces_and_forget_removes(void **state)
{
	struct held h = { 0 };

	held_keep(&h, "a", "one");
	held_keep(&h, "b", "two");
	held_keep(&h, "a", "three");
	assert_int_equal(h.n, 2);
	assert_string_equal(value_of(&h, "a"), "three");
	held_forget(&h, "a");
	held_forget(&h, "nothing");
	assert_int_equal(h.n, 1);
	assert_null(value_of(&h, "a"));
	assert_string_equal(value_of(&h, "b"), "two");
	held_clear(&h);
	assert_int_equal(h.n, 0);
	assert_null(h.c);
}

static void
a_full_list_drops_new_names_only(void **state)
{
	struct held h = { 0 };

	fill(&h, MIRROR_HELD_MAX);
	assert_int_equal(h.n, MIRROR_HELD_MAX);
	assert_false(h.full);
	held_keep(&h, "one-too-many", "v");
	assert_int_equal(h.n, MIRROR_HELD_MAX);
	assert_true(h.full);
	assert_null(value_of(&h, "one-too-many"));
	/* A name it holds still takes a new value. */
	held_keep(&h, "name-7", "newer");
	assert_string_equal(value_of(&h, "name-7"), "newer");
	/* A slot that frees takes the next name. */
	held_forget(&h, "name-0");
	held_keep(&h, "one-too-many", "v");
	assert_string_equal(value_of(&h, "one-too-many"), "v");
	assert_int_equal(h.n, MIRROR_HELD_MAX);
	held_clear(&h);
	assert_false(h.full);
	held_keep(&h, "after", "v");
	assert_int_equal(h.n, 1);
	held_clear(&h);
}

static void
a_name_longer_than_a_label_is_not_held(void **state)
{
	struct held h = { 0 };
	char name[NAME_MAX_BYTES + 2];

	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	held_keep(&h, name, "v");
	assert_int_equal(h.n, 0);
	name[NAME_MAX_BYTES] = '\0';    /* the longest label */
	held_keep(&h, name, "v");
	assert_int_equal(h.n, 1);
	held_clear(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keep_replaces_and_forget_removes),
		cmocka_unit_test(a_full_list_drops_new_names_only),
		cmocka_unit_test(a_name_longer_than_a_label_is_not_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
