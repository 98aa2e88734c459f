#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *prog = "expose";
static enum log_level level_max = LOG_INFO;
static int with_prefix = 1;

/* Whether stderr is the stream JOURNAL_STREAM names (its device and inode),
 * as sd-daemon(3) says to check: an inherited variable with stderr
 * redirected elsewhere is not journald. */
static int
log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	/* "DEVICE:INODE" of the stream journald gave; stderr must still be
	 * it, not a file or pipe a script redirected it to (sd-daemon(3)). */
	if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end] != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname, enum log_level max)
{
	prog = progname;
	level_max = max;
	/* The <N> prefix is for journald; people and scripts reading stderr
	 * get plain lines. */
	with_prefix = log_stderr_is_journal();
}

enum log_level
log_max(void)
{
	return level_max;
}

/* What one log line holds; longer ones are cut. */
#define LOG_LINE_BYTES 2048
/* Lines held back (log_hold) before they are written together. */
#define LOG_HOLD_BYTES (4 * LOG_LINE_BYTES)

static char held[LOG_HOLD_BYTES];
static size_t held_len;
static int holding;

/* Writes the lines held so far; holding goes on. */
static void
log_release_keep(void)
{
	if (held_len > 0)
		(void)!write(STDERR_FILENO, held, held_len);
	held_len = 0;
}

/* Control bytes from outside (an SNI, a path) must not start a line of
 * their own in the journal, nor move a terminal's cursor. */
static void
defang(char *p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			p[i] = '?';
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_BYTES];
	int n = 0, body;
	va_list ap;

	if (level > level_max)
		return;
	if (with_prefix)
		n = snprintf(line, sizeof line, "<%d>", (int)level);
	n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", prog);
	body = n;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	defang(line + body, n - body);
	line[n++] = '\n';
	if (holding) {
		if (held_len + (size_t)n > sizeof held)
			log_release_keep();
		memcpy(held + held_len, line, (size_t)n);
		held_len += (size_t)n;
		return;
	}
	/* One write per line (or per batch of whole lines, log_hold), so
	 * lines from concurrent processes don't mix. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
log_hold(void)
{
	holding = 1;
}

void
log_release(void)
{
	holding = 0;
	log_release_keep();
}
