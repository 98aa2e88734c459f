/* The https edges' shared ticket key file: made when missing, read back
 * the same, replaced by a rotation, the older three-key form replaced by
 * the broker and refused by an edge, and bad files refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ticketkeys.h"

struct dir {
	char root[64];
	char path[96];
};

static int
setup(void **state)
{
	struct dir *d = calloc(1, sizeof *d);

	snprintf(d->root, sizeof d->root, "/tmp/test_ticketkeys.XXXXXX");
	assert_non_null(mkdtemp(d->root));
	snprintf(d->path, sizeof d->path, "%s/tickets.key", d->root);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct dir *d = *state;

	unlink(d->path);
	rmdir(d->root);
	free(d);
	return 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_made_when_missing_and_read_back(void **state)
{
	struct dir *d = *state;
	struct ticket_keys made, read;
	const char *why = NULL;
	struct stat st;

	assert_int_equal(ticket_keys_load(d->path, 0, &read, &why), -1);
	assert_string_equal(why, "missing (the broker makes it at start)");
	assert_int_equal(ticket_keys_load(d->path, 1, &made, &why), 0);
	assert_int_equal(stat(d->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640 & ~umask(022));
	assert_int_equal(st.st_size, 2 * TICKET_KEY_BYTES + 1);
	assert_int_equal(ticket_keys_load(d->path, 0, &read, &why), 0);
	assert_memory_equal(made.key, read.key, TICKET_KEY_BYTES);
}

static void
test_rotation_replaces_the_key(void **state)
{
	struct dir *d = *state;
	struct ticket_keys before, after;
	const char *why = NULL;

	assert_int_equal(ticket_keys_load(d->path, 1, &before, &why), 0);
	assert_int_equal(ticket_keys_rotate(d->path, &why), 0);
	assert_int_equal(ticket_keys_load(d->path, 0, &after, &why), 0);
	assert_memory_not_equal(before.key, after.key, TICKET_KEY_BYTES);
}

static void
test_older_format_replaced_by_the_broker_refused_by_an_edge(void **state)
{
	struct dir *d = *state;
	char old[3 * 161 + 1] = "";
	struct ticket_keys t;
	const char *why = NULL;
	int i;

	for (i = 0; i < 3; i++) {
		memset(old + strlen(old), 'a' + i, 160);
		strcat(old, "\n");
	}
	write_file(d->path, old, 0640);
	assert_int_equal(ticket_keys_load(d->path, 0, &t, &why), -1);
	assert_non_null(strstr(why, "older format"));
	assert_int_equal(ticket_keys_load(d->path, 1, &t, &why), 0);
	assert_int_equal(ticket_keys_load(d->path, 0, &t, &why), 0);
}

static void
test_bad_files_refused(void **state)
{
	static const char *bad[] = {
		"",                      /* empty */
		"abcd\n",                /* short */
		"zz",                    /* not hex */
	};
	struct dir *d = *state;
	char good[2 * TICKET_KEY_BYTES + 2];
	struct ticket_keys t;
	const char *why = NULL;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(d->path, bad[i], 0640);
		assert_int_equal(ticket_keys_load(d->path, 1, &t, &why), -1);
	}
	memset(good, '0', sizeof good - 2);
	good[sizeof good - 2] = '\n';
	good[sizeof good - 1] = '\0';
	good[7] = 'g';                                  /* one digit not hex */
	write_file(d->path, good, 0640);
	assert_int_equal(ticket_keys_load(d->path, 0, &t, &why), -1);
	assert_string_equal(why, "not a ticket key (one line of 128 hex digits)");
	good[7] = '0';
	write_file(d->path, good, 0644);                /* readable by everyone */
	assert_int_equal(ticket_keys_load(d->path, 0, &t, &why), -1);
	assert_string_equal(why, "readable by everyone (chmod 640 it)");
	assert_int_equal(chmod(d->path, 0640), 0);
	assert_int_equal(ticket_keys_load(d->path, 0, &t, &why), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_made_when_missing_and_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_replaces_the_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_format_replaced_by_the_broker_refused_by_an_edge,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
