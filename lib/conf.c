#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	                   end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* One "key = value" line (NUL-terminated, no newline). */
static int
conf_line(char *line, const char *name, int lineno, conf_fn fn, void *ctx, char *err,
          size_t err_size)
{
	char why[CONF_ERROR_BYTES], *key = trim(line), *value, *eq;

	if (*key == '\0' || *key == '#')
		return 0;
	eq = strchr(key, '=');
	if (eq == NULL) {
		snprintf(err, err_size, "%s:%d: expected 'key = value'", name, lineno);
		return -1;
	}
	*eq = '\0';
	key = trim(key);
	value = trim(eq + 1);
	why[0] = '\0';
	if (fn(ctx, key, value, why, sizeof why) == -1) {
		snprintf(err, err_size, "%s:%d: %s", name, lineno, why);
		return -1;
	}
	return 0;
}

int
conf_parse(const char *text, size_t len, const char *name, conf_fn fn, void *ctx,
           char *err, size_t err_size)
{
	char line[CONF_LINE_MAX_BYTES + 1];
	size_t i = 0, start, n;
	int lineno = 0;

	while (i < len) {
		start = i;
		while (i < len && text[i] != '\n')
			i++;
		n = i - start;
		i++;
		lineno++;
		if (n > CONF_LINE_MAX_BYTES) {
			snprintf(err, err_size, "%s:%d: line longer than %d bytes", name, lineno,
			         CONF_LINE_MAX_BYTES);
			goto fail;
		}
		memcpy(line, text + start, n);
		line[n] = '\0';
		if (strlen(line) != n) {
			snprintf(err, err_size, "%s:%d: a NUL byte: not a text file", name, lineno);
			goto fail;
		}
		if (conf_line(line, name, lineno, fn, ctx, err, err_size) == -1)
			goto fail;
	}
	return 0;
fail:
	errno = EINVAL;
	return -1;
}

int
conf_read(const char *path, conf_fn fn, void *ctx, char *err, size_t err_size)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	char *text;
	size_t len, want;
	int e, rc;

	if (f == NULL) {
		e = errno;
		snprintf(err, err_size, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	/* The edge reads this per connection: read what the file holds. */
	want = fstat(fileno(f), &st) == 0 && st.st_size >= 0 &&
	       (size_t)st.st_size < CONF_FILE_MAX_BYTES ? (size_t)st.st_size : CONF_FILE_MAX_BYTES;
	text = malloc(want + 1);
	if (text == NULL) {
		fclose(f);
		snprintf(err, err_size, "%s: out of memory", path);
		errno = ENOMEM;
		return -1;
	}
	len = fread(text, 1, want + 1, f);
	e = ferror(f);
	fclose(f);
	if (e || len > want || len > CONF_FILE_MAX_BYTES) {
		snprintf(err, err_size, "%s: %s", path, e ? "cannot read it" :
		         "larger than 1 MiB: not a config file");
		free(text);
		errno = EINVAL;
		return -1;
	}
	rc = conf_parse(text, len, path, fn, ctx, err, err_size);
	e = errno;
	free(text);
	errno = e;
	return rc;
}

int
conf_int(const char *value, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
conf_bool(const char *value, int *out)
{
	if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off")) {
		*out = 0;
		return 0;
	}
	return -1;
}

int
conf_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && *p == ' ') {
			p++;
			len--;
		}
		if (len == n && strncmp(p, item, n) == 0)
			return 1;
		p += len + (comma ? 1 : 0);
	}
	return 0;
}
