/*
 * Live actions: one line to the broker's control socket, one line back.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "sock.h"

#define LIVE_TIMEOUT_MS 5000
#define LIVE_REPLY_BYTES 512

static int
ask(const struct settings *s, const char *line, char *reply, size_t size)
{
	char path[108];
	struct pollfd pfd;
	size_t got = 0;
	ssize_t n;
	int fd;

	settings_control(s, path, sizeof path);
	fd = sock_connect_unix(path);
	if (fd == -1) {
		log_err("control %s: %s (is the broker running, and may this user reach "
		        "it? root and the broker's group may)", path, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE;
	}
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		log_err("control %s: %s", path, strerror(errno));
		close(fd);
		return EX_IOERR;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got + 1 < size && poll(&pfd, 1, LIVE_TIMEOUT_MS) == 1) {
		n = read(fd, reply + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	reply[got] = '\0';
	if (got == 0) {
		log_err("control %s: no answer from the broker", path);
		return EX_UNAVAILABLE;
	}
	return 0;
}

int
ctl_kick(const struct settings *s, char **argv)
{
	char line[128], reply[LIVE_REPLY_BYTES];
	int rc;

	snprintf(line, sizeof line, "KICK %.63s\n", argv[0]);
	if ((rc = ask(s, line, reply, sizeof reply)) != 0)
		return rc;
	if (strncmp(reply, "OK ", 3) == 0) {
		fputs(reply + 3, stdout);
		return 0;
	}
	reply[strcspn(reply, "\n")] = '\0';
	log_err("%s", strncmp(reply, "ERR ", 4) == 0 ? reply + 4 : reply);
	return EX_DATAERR;
}
