#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *prog = "expose";
static enum log_level level_max = LOG_INFO;
static int with_prefix = 1;

void
log_init(const char *progname, enum log_level max)
{
	prog = progname;
	level_max = max;
	/* The <N> prefix is for journald, which says it is there by setting
	 * JOURNAL_STREAM; people and scripts reading stderr get plain lines. */
	with_prefix = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_prefix(int on)
{
	with_prefix = on;
}

enum log_level
log_max(void)
{
	return level_max;
}

const char *
log_progname(void)
{
	return prog;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	int n = 0;
	va_list ap;

	if (level > level_max)
		return;
	if (with_prefix)
		n = snprintf(line, sizeof line, "<%d>", (int)level);
	n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", prog);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* One write per line, so lines from concurrent processes don't mix. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
