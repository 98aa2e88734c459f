/*
 * Config files: "key = value" lines, '#' comments, blank lines.  Every key
 * has a matching command-line flag, and flags win.  Errors name the file
 * and line and say what to do.
 */
#ifndef EXPOSE_CONF_H
#define EXPOSE_CONF_H

#include <stddef.h>

#define CONF_ERROR_BYTES 512
#define CONF_LINE_MAX_BYTES 1024
/* A config file larger than this is not one. */
#define CONF_FILE_MAX_BYTES (1024 * 1024)

/* Takes one setting; returns 0, or -1 with a reason in why (without the
 * file:line, which conf_read adds). */
typedef int (*conf_fn)(void *ctx, const char *key, const char *value,
                       char *why, size_t why_size);

/* Reads path, calling fn for each setting.  0 on success; -1 with err set
 * to "PATH:LINE: reason" (or "PATH: reason").  A missing file sets errno
 * to ENOENT, so that callers can treat an optional file as empty. */
int conf_read(const char *path, conf_fn fn, void *ctx, char *err, size_t err_size);

/* The same, over text in memory; name is what errors call it. */
int conf_parse(const char *text, size_t len, const char *name, conf_fn fn, void *ctx,
               char *err, size_t err_size);

/* Helpers for setters: parse an integer in [min, max], a yes/no. */
int conf_int(const char *value, long min, long max, long *out);
int conf_bool(const char *value, int *out);
/* Whether a comma-separated list ("a,b", "a, b") holds item exactly. */
int conf_list_has(const char *list, const char *item);

#endif
