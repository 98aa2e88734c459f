/*
 * The trivial handler of `make bench`: the floor for "a new process per
 * connection".  Started by systemd-socket-activate --inetd -a exactly as
 * expose-edge is, it reads the request head from stdin until CRLFCRLF,
 * writes a fixed 200 response (a 1 KiB body, the same size nginx serves in
 * that scenario) with Connection: close to stdout, and exits.
 *
 *   cc -O2 -o resp resp.c
 */
#include <string.h>
#include <unistd.h>

#define HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
             "Content-Length: 1024\r\nConnection: close\r\n\r\n"

int
main(void)
{
	static char out[sizeof HEAD - 1 + 1024];
	char in[16384];
	size_t have = 0, len = sizeof out, done = 0;
	ssize_t n;

	for (;;) {
		n = read(0, in + have, sizeof in - 1 - have);
		if (n <= 0)
			return 1;
		have += (size_t)n;
		in[have] = '\0';
		if (strstr(in, "\r\n\r\n"))
			break;
		if (have == sizeof in - 1)
			return 1;
	}
	memcpy(out, HEAD, sizeof HEAD - 1);
	memset(out + sizeof HEAD - 1, 'x', 1024);
	while (done < len) {
		n = write(1, out + done, len - done);
		if (n <= 0)
			return 1;
		done += (size_t)n;
	}
	return 0;
}
