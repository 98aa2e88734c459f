#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
conf_read(const char *path, conf_fn fn, void *ctx, char *err, size_t err_size)
{
	char line[CONF_LINE_MAX_BYTES + 2], why[CONF_ERROR_BYTES];
	char *key, *value, *eq;
	FILE *f = fopen(path, "re");
	int lineno = 0, e;

	if (f == NULL) {
		e = errno;
		snprintf(err, err_size, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (strlen(line) > CONF_LINE_MAX_BYTES) {
			snprintf(err, err_size, "%s:%d: line longer than %d bytes", path, lineno,
			         CONF_LINE_MAX_BYTES);
			goto fail;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			snprintf(err, err_size, "%s:%d: expected 'key = value'", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		why[0] = '\0';
		if (fn(ctx, key, value, why, sizeof why) == -1) {
			snprintf(err, err_size, "%s:%d: %s", path, lineno, why);
			goto fail;
		}
	}
	fclose(f);
	return 0;
fail:
	fclose(f);
	errno = EINVAL;
	return -1;
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
