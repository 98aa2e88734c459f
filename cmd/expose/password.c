/*
 * The password visitors must give (basic auth), from --auth USER:PASSWORD,
 * --auth-file FILE or EXPOSE_AUTH.  Any user can read a process's command
 * line (/proc/PID/cmdline, ps); a file of mode 0600 or the environment
 * (/proc/PID/environ is the owner's only) keeps it from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "proto.h"

int
password_set(struct client *c, const char *text, size_t len, const char *from)
{
	const char *colon = memchr(text, ':', len);

	if (colon == NULL || colon == text || len >= sizeof c->auth ||
	    memchr(text, '\0', len) != NULL) {
		log_err("%s: give USER:PASSWORD (at most %zu bytes)", from, sizeof c->auth - 1);
		return -1;
	}
	memcpy(c->auth, text, len);
	c->auth[len] = '\0';
	if (!proto_text_ok(c->auth)) {
		c->auth[0] = '\0';
		log_err("%s: printable ASCII only (no control bytes, no UTF-8)", from);
		return -1;
	}
	return 0;
}

/* The file's first line, without its line ending. */
int
password_from_file(struct client *c, const char *path)
{
	char text[sizeof c->auth + 2], from[300];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	snprintf(from, sizeof from, "--auth-file %s", path);
	if (fd == -1) {
		log_err("%s: %s", from, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warn("%s: others can read it (chmod 600 %s)", from, path);
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n < 0) {
		log_err("%s: %s", from, strerror(errno));
		return -1;
	}
	text[n] = '\0';
	len = strcspn(text, "\r\n");
	if (len == (size_t)n && (size_t)n == sizeof text - 1) {
		log_err("%s: its first line is longer than %zu bytes", from, sizeof c->auth - 1);
		return -1;
	}
	return password_set(c, text, len, from);
}

/* EXPOSE_AUTH, when no flag gave one; taken out of the environment so
 * that nothing started from here inherits it. */
int
password_from_env(struct client *c)
{
	const char *v = getenv("EXPOSE_AUTH");
	int rc;

	if (c->auth[0] || v == NULL || *v == '\0')
		return 0;
	rc = password_set(c, v, strlen(v), "EXPOSE_AUTH");
	unsetenv("EXPOSE_AUTH");
	return rc;
}
