/* The peer link's sealed records: a round trip in pieces of any size,
 * and records changed, replayed, reordered, oversized or from a stranger. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seal.h"

struct got {
	uint8_t data[4 * SEAL_PLAIN_MAX];
	size_t len;
	int records;
};

static int
got(void *ctx, const uint8_t *p, size_t n)
{
	struct got *g = ctx;

	assert_true(g->len + n <= sizeof g->data);
	memcpy(g->data + g->len, p, n);
	g->len += n;
	g->records++;
	return 0;
}

/* A dialer and a listener that have each read the other's key. */
static void
pair(struct seal *d, struct seal *l)
{
	const char *why;
	struct got g = { .len = 0 };

	assert_int_equal(seal_init(d, SEAL_DIALER), 0);
	assert_int_equal(seal_init(l, SEAL_LISTENER), 0);
	assert_int_equal(seal_feed(d, l->pk, SEAL_PK_BYTES, got, &g, &why), 0);
	assert_int_equal(seal_feed(l, d->pk, SEAL_PK_BYTES, got, &g, &why), 0);
	assert_true(d->ready && l->ready);
	assert_int_equal(g.records, 0);
}

static size_t
record(struct seal *s, const char *text, uint8_t *out)
{
	return seal_record(s, (const uint8_t *)text, strlen(text), out);
}

static void
test_round_trip_in_any_pieces(void **state)
{
	struct seal d, l;
	struct got *g = calloc(1, sizeof *g);
	static uint8_t wire[3 * SEAL_RECORD_MAX];
	static uint8_t big[SEAL_PLAIN_MAX];
	const char *why;
	size_t n = 0, step;

	pair(&d, &l);
	memset(big, 'x', sizeof big);
	n += record(&d, "hello", wire + n);
	n += seal_record(&d, big, sizeof big, wire + n);
	n += record(&d, "after", wire + n);
	/* Nothing of the plaintext shows on the wire. */
	assert_null(memmem(wire, n, "hello", 5));
	for (step = 1; step <= 4099; step += 1366) {
		struct seal l2 = l;
		size_t off;

		/* Each reader starts where l stands: the same keys, counter 0. */
		buf_init(&l2.in, SEAL_RECORD_MAX);
		l2.plain = malloc(SEAL_PLAIN_MAX);
		memset(g, 0, sizeof *g);
		for (off = 0; off < n; off += step)
			assert_int_equal(seal_feed(&l2, wire + off, off + step > n ? n - off : step,
			                           got, g, &why), 0);
		assert_int_equal(g->records, 3);
		assert_int_equal(g->len, 5 + sizeof big + 5);
		assert_memory_equal(g->data, "hello", 5);
		assert_memory_equal(g->data + 5 + sizeof big, "after", 5);
		buf_free(&l2.in);
		free(l2.plain);
	}
	/* And the other way, with the other key. */
	n = record(&l, "back", wire);
	memset(g, 0, sizeof *g);
	assert_int_equal(seal_feed(&d, wire, n, got, g, &why), 0);
	assert_memory_equal(g->data, "back", 4);
	seal_free(&d);
	seal_free(&l);
	free(g);
}

static void
test_changed_replayed_reordered_refused(void **state)
{
	struct seal d, l;
	struct got g = { .len = 0 };
	uint8_t a[64], b[64], twice[128];
	const char *why;
	size_t na, nb;

	/* Changed: one bit of the ciphertext. */
	pair(&d, &l);
	na = record(&d, "first", a);
	a[SEAL_LEN_BYTES + 1] ^= 1;
	assert_int_equal(seal_feed(&l, a, na, got, &g, &why), -1);
	assert_non_null(why);
	seal_free(&d);
	seal_free(&l);

	/* Replayed: the same record twice. */
	pair(&d, &l);
	na = record(&d, "first", a);
	memcpy(twice, a, na);
	memcpy(twice + na, a, na);
	assert_int_equal(seal_feed(&l, twice, 2 * na, got, &g, &why), -1);
	assert_int_equal(g.records, 1);
	seal_free(&d);
	seal_free(&l);

	/* Reordered: the second before the first. */
	pair(&d, &l);
	g.records = 0;
	na = record(&d, "first", a);
	nb = record(&d, "second", b);
	assert_int_equal(seal_feed(&l, b, nb, got, &g, &why), -1);
	assert_int_equal(g.records, 0);
	assert_true(na > 0);
	seal_free(&d);
	seal_free(&l);

	/* Reflected: a side's own record sent back to it. */
	pair(&d, &l);
	na = record(&d, "first", a);
	assert_int_equal(seal_feed(&d, a, na, got, &g, &why), -1);
	seal_free(&d);
	seal_free(&l);
}

static void
test_stranger_and_impossible_lengths_refused(void **state)
{
	struct seal d, l, x;
	struct got g = { .len = 0 };
	uint8_t a[64], len[SEAL_LEN_BYTES] = { 0xff, 0xff, 0xff, 0xff };
	uint8_t tiny[SEAL_LEN_BYTES] = { 0, 0, 0, 1 };
	const char *why;
	size_t na;

	/* A record sealed for another key exchange. */
	pair(&d, &l);
	assert_int_equal(seal_init(&x, SEAL_DIALER), 0);
	assert_int_equal(seal_feed(&x, l.pk, SEAL_PK_BYTES, got, &g, &why), 0);
	na = record(&x, "not yours", a);
	assert_int_equal(seal_feed(&l, a, na, got, &g, &why), -1);
	seal_free(&x);
	seal_free(&l);

	/* Longer than any record may be, or shorter than its tag. */
	assert_int_equal(seal_init(&l, SEAL_LISTENER), 0);
	assert_int_equal(seal_feed(&l, d.pk, SEAL_PK_BYTES, got, &g, &why), 0);
	assert_int_equal(seal_feed(&l, len, sizeof len, got, &g, &why), -1);
	assert_string_equal(why, "sealed record of an impossible length");
	seal_free(&l);
	assert_int_equal(seal_init(&l, SEAL_LISTENER), 0);
	assert_int_equal(seal_feed(&l, d.pk, SEAL_PK_BYTES, got, &g, &why), 0);
	assert_int_equal(seal_feed(&l, tiny, sizeof tiny, got, &g, &why), -1);
	seal_free(&l);
	seal_free(&d);
	assert_int_equal(g.records, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_in_any_pieces),
		cmocka_unit_test(test_changed_replayed_reordered_refused),
		cmocka_unit_test(test_stranger_and_impossible_lengths_refused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
