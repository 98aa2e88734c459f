/*
 * Live actions: one line to the broker's control socket, one line back.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "sock.h"

#define LIVE_TIMEOUT_MS 5000
/* The broker's reply, at most (its CONTROL_REPLY_BYTES). */
#define LIVE_REPLY_BYTES (128 * 1024)

static int
ask(const struct settings *s, const char *line, char *reply, size_t size)
{
	char path[108];
	struct pollfd pfd;
	size_t got = 0;
	ssize_t n;
	int fd;

	settings_control(s, path, sizeof path);
	fd = sock_connect_unix(path, 0);
	if (fd == -1) {
		log_err("control %s: %s (is the broker running, and may this user reach "
		        "it? root and the socket's group may: expose-admin under systemd)",
		        path, strerror(errno));
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

/* "OK text" goes to stdout (0); "ERR why" to stderr (refused). */
static int
answer(char *reply, int refused)
{
	if (strncmp(reply, "OK ", 3) == 0) {
		fputs(reply + 3, stdout);
		return 0;
	}
	reply[strcspn(reply, "\n")] = '\0';
	log_err("%s", strncmp(reply, "ERR ", 4) == 0 ? reply + 4 : reply);
	return refused;
}

int
ctl_kick(const struct settings *s, char **argv)
{
	static char reply[LIVE_REPLY_BYTES];
	char line[128];
	int rc;

	snprintf(line, sizeof line, "KICK %.63s\n", argv[0]);
	if ((rc = ask(s, line, reply, sizeof reply)) != 0)
		return rc;
	return answer(reply, EX_DATAERR);
}

/* expose.conf, authorized_keys and the certificate read again by the
 * running broker (systemctl reload exposed runs this). */
int
ctl_reload(const struct settings *s, char **argv)
{
	static char reply[LIVE_REPLY_BYTES];
	int rc;

	if ((rc = ask(s, "RELOAD\n", reply, sizeof reply)) != 0)
		return rc;
	return answer(reply, EX_CONFIG);
}

/* The value of one series in Prometheus text ("name" or "name{labels}"). */
static unsigned long long
series(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
		p += n;
	}
	return 0;
}

int
ctl_stats(const struct settings *s, char **argv)
{
	static char text[LIVE_REPLY_BYTES];
	int rc;

	if ((rc = ask(s, "METRICS\n", text, sizeof text)) != 0)
		return rc;
	printf("clients          %llu\n", series(text, "expose_clients"));
	printf("tunnels          %llu\n", series(text, "expose_tunnels"));
	printf("streams          %llu now, %llu since start\n", series(text, "expose_streams"),
	       series(text, "expose_streams_total"));
	printf("bytes            %llu to clients, %llu from clients\n",
	       series(text, "expose_bytes_total{direction=\"to_clients\"}"),
	       series(text, "expose_bytes_total{direction=\"from_clients\"}"));
	printf("handshakes       %llu ok, %llu bad signature, %llu not authorized, "
	       "%llu protocol errors, %llu rate limited, %llu abandoned\n",
	       series(text, "expose_handshakes_total{result=\"ok\"}"),
	       series(text, "expose_handshakes_total{result=\"bad_signature\"}"),
	       series(text, "expose_handshakes_total{result=\"not_authorized\"}"),
	       series(text, "expose_handshakes_total{result=\"protocol\"}"),
	       series(text, "expose_handshakes_total{result=\"rate_limited\"}"),
	       series(text, "expose_handshakes_total{result=\"abandoned\"}"));
	printf("tunnel requests  %llu ok, %llu taken, %llu denied, %llu invalid, "
	       "%llu over a limit\n",
	       series(text, "expose_binds_total{result=\"ok\"}"),
	       series(text, "expose_binds_total{result=\"name_taken\"}"),
	       series(text, "expose_binds_total{result=\"name_denied\"}"),
	       series(text, "expose_binds_total{result=\"name_invalid\"}"),
	       series(text, "expose_binds_total{result=\"limit_reached\"}"));
	printf("edges refused    %llu tunnel gone, %llu at a limit, %llu protocol\n",
	       series(text, "expose_edges_refused_total{reason=\"gone\"}"),
	       series(text, "expose_edges_refused_total{reason=\"limit\"}"),
	       series(text, "expose_edges_refused_total{reason=\"protocol\"}"));
	printf("registry errors  %llu\n", series(text, "expose_registry_errors_total"));
	printf("kicks            %llu\n", series(text, "expose_kicks_total"));
	return 0;
}

int
ctl_metrics(const struct settings *s, char **argv)
{
	static char text[LIVE_REPLY_BYTES];
	int rc;

	if ((rc = ask(s, "METRICS\n", text, sizeof text)) != 0)
		return rc;
	fputs(text, stdout);
	return 0;
}
