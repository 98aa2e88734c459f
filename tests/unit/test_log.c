/* Log lines: journald's <N> prefix only when stderr is the stream
 * JOURNAL_STREAM names (sd-daemon(3)), never in a redirected file. */
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

#include "log.h"

/* Logs one line with stderr on a fresh file; returns what was written. */
static char *
logged(const char *journal_stream, int name_that_file)
{
	static char text[256];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	char var[64];
	struct stat st;
	size_t n;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	if (name_that_file) {
		snprintf(var, sizeof var, "%llu:%llu", (unsigned long long)st.st_dev,
		         (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", var, 1);
	} else if (journal_stream) {
		setenv("JOURNAL_STREAM", journal_stream, 1);
	} else {
		unsetenv("JOURNAL_STREAM");
	}
	dup2(fileno(f), STDERR_FILENO);
	log_init("t", LOG_INFO);
	log_warn("hello");
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void
test_no_variable_no_prefix(void **state)
{
	assert_string_equal(logged(NULL, 0), "t: hello\n");
}

static void
test_stderr_is_the_stream(void **state)
{
	assert_string_equal(logged(NULL, 1), "<4>t: hello\n");
}

static void
test_inherited_but_redirected(void **state)
{
	/* A service's child whose stderr went to a file keeps the variable. */
	assert_string_equal(logged("1:2", 0), "t: hello\n");
}

static void
test_malformed_variable(void **state)
{
	assert_string_equal(logged("", 0), "t: hello\n");
	assert_string_equal(logged("12", 0), "t: hello\n");
	assert_string_equal(logged("1:2:3", 0), "t: hello\n");
}

/* Lines logged between log_hold and log_release: none written before
 * the release, all of them after it, whole and in order, even past what
 * one batch holds. */
static void
test_held_lines_go_out_at_release(void **state)
{
	static char text[128 * 1024];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO), i;
	char want[160];
	size_t n;
	long at;

	assert_non_null(f);
	unsetenv("JOURNAL_STREAM");
	dup2(fileno(f), STDERR_FILENO);
	log_init("t", LOG_INFO);
	log_hold();
	log_info("first");
	log_info("second");
	fflush(NULL);
	at = lseek(fileno(f), 0, SEEK_END);
	for (i = 0; i < 600; i++)
		log_info("line %d %0100d", i, 0);
	log_release();
	log_info("after");
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_int_equal(at, 0);    /* nothing yet while held */
	rewind(f);
	n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_true(n > 600 * 100);
	assert_memory_equal(text, "t: first\nt: second\nt: line 0 ",
	                    strlen("t: first\nt: second\nt: line 0 "));
	snprintf(want, sizeof want, "t: line 599 %0100d\nt: after\n", 0);
	assert_string_equal(text + n - strlen(want), want);
	for (i = 0; i < 600; i++) {
		snprintf(want, sizeof want, "\nt: line %d 0", i);
		assert_non_null(strstr(text, want));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_lines_go_out_at_release),
		cmocka_unit_test(test_no_variable_no_prefix),
		cmocka_unit_test(test_stderr_is_the_stream),
		cmocka_unit_test(test_inherited_but_redirected),
		cmocka_unit_test(test_malformed_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
