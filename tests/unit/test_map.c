/* The intrusive hash table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "map.h"

struct item {
	struct map_node node;
	uint32_t key;
};

static void
count(struct map_node *n, void *ctx)
{
	(*(int *)ctx)++;
}

static void
remove_each(struct map_node *n, void *ctx)
{
	map_remove(ctx, n);
}

static void
test_insert_find_remove_many(void **state)
{
	static struct item items[5000];
	struct map m;
	uint32_t k;
	int i, n = 0;

	map_init(&m);
	for (i = 0; i < 5000; i++) {
		items[i].key = (uint32_t)i * 7919u;
		assert_int_equal(map_insert(&m, &items[i].node, &items[i].key, 4), 0);
	}
	for (i = 0; i < 5000; i += 3) {
		k = (uint32_t)i * 7919u;
		assert_ptr_equal(map_find(&m, &k, 4), &items[i].node);
	}
	for (i = 0; i < 5000; i += 2)
		map_remove(&m, &items[i].node);
	assert_int_equal(m.count, 2500);
	k = 0;
	assert_null(map_find(&m, &k, 4));
	map_each(&m, count, &n);
	assert_int_equal(n, 2500);
	map_each(&m, remove_each, &m);
	assert_int_equal(m.count, 0);
	map_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
