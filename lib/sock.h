/*
 * Socket helpers shared by the programs: Unix and TCP listeners and
 * connects, socket options, and what systemd passes in (LISTEN_FDS,
 * NOTIFY_SOCKET).
 */
#ifndef EXPOSE_SOCK_H
#define EXPOSE_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

/* "ip port" text of a peer, for logs and X-Forwarded-For. */
#define SOCK_ADDR_TEXT_BYTES 64

int sock_nonblock(int fd, int on);
int sock_cloexec(int fd);
void sock_nodelay(int fd);
/* TCP keepalive: a peer silent idle_s is probed every interval_s, and the
 * connection fails after count probes unanswered (or when sent data waits
 * as long for its ACK). */
void sock_keepalive(int fd, int idle_s, int interval_s, int count);

/* Listens on a Unix socket path.  A stale socket file is replaced; a live
 * one (something accepts connections on it) is not: -1 with errno
 * EADDRINUSE. */
int sock_listen_unix(const char *path, int mode);
/* Listens on "ADDR:PORT" ("[v6]:PORT" for IPv6), non-blocking. */
int sock_listen_tcp(const char *addrport);
/* Starts a non-blocking connect to "ADDR:PORT" (numeric); the connection
 * is up when the socket turns writable.  -1 at once if it cannot start. */
int sock_connect_tcp(const char *addrport);
/* Splits "ADDR:PORT" or "[V6]:PORT" into its host and port; -1 if it is
 * not one. */
int sock_split(const char *addrport, char *host, size_t size, int *port);
/* Connects to a Unix socket path (blocking, close-on-exec). */
/* flags: 0, or SOCK_NONBLOCK (a full backlog then fails at once with
 * EAGAIN instead of blocking). */
int sock_connect_unix(const char *path, int flags);

/* The peer's address as text ("203.0.113.7"), and its port. */
int sock_peer(int fd, char *addr, size_t size, int *port);
/* The same for the socket's own address. */
int sock_local(int fd, char *addr, size_t size, int *port);

/* systemd socket activation: the number of fds passed from 3 on, 0 if
 * none were passed to this process. */
int sock_listen_fds(void);
/* Tells the service manager (NOTIFY_SOCKET) something, e.g. "READY=1". */
int sock_notify(const char *state);

#endif
