/*
 * The plain edge (expose-edge) links no TLS library: a plain-HTTP
 * connection pays for no TLS library's relocations and constructors at
 * exec (expose-edge(8)).  With --tls it hands the connection, untouched,
 * to expose-edge-tls beside it, the same edge built with tls.c: an older
 * unit that runs "expose-edge --tls" keeps working, for one exec more.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"
#include "log.h"

#define TLS_PROGRAM "expose-edge-tls"

bool
tls_built(void)
{
	return false;
}

int
tls_handover(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + sizeof TLS_PROGRAM];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0) {
		log_err("--tls: cannot find this program's directory: %s", strerror(errno));
		return -1;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	slash[1] = '\0';
	snprintf(path, sizeof path, "%s%s", self, TLS_PROGRAM);
	execv(path, argv);
	log_err("--tls: %s: %s (expose-edge-tls speaks TLS; this program does not)",
	        path, strerror(errno));
	return -1;
}

/* Never called: tls_handover ran first. */
int
tls_start(struct edge *e)
{
	return -1;
}

int
tls_handshake(struct edge *e)
{
	return -1;
}

ssize_t
tls_read(struct edge *e, void *p, size_t n)
{
	errno = EPIPE;
	return -1;
}

ssize_t
tls_write(struct edge *e, const void *p, size_t n)
{
	errno = EPIPE;
	return -1;
}

int
tls_pending(const struct edge *e)
{
	return 0;
}

void
tls_notify_close(struct edge *e)
{
}

void
tls_close(struct edge *e)
{
}
