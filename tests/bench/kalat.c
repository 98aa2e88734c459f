/*
 * kalat: keep-alive latency on established connections, for make bench.
 *
 *   kalat PORT HOST PATH CONNS SECONDS [RATE]
 *
 * Opens CONNS connections to 127.0.0.1:PORT, sends each one GET PATH with
 * Host: HOST, and waits until every connection has had its first response
 * (through a per-connection edge that includes the launcher spawning it);
 * each one that has sends nothing more until then.  Then, for SECONDS, every connection sends its next request as soon as
 * the previous response is complete, and each request's time from send to
 * the response's last byte is recorded as it is: no correction (wrk adds
 * synthetic samples for every slow one, so a first request that waited
 * for its process to be spawned turns into a tail of hundreds).  Prints
 * one line, BENCH_JSON {...}, microseconds, first responses apart.
 * SECONDS 0 measures the first responses only (a handler that closes
 * after one response, like the trivial one, is measured that way).
 *
 * With RATE (requests a second, all connections together), the load is
 * open: each connection sends on a schedule, CONNS / RATE seconds apart,
 * staggered, and a request's time runs from when it was due, so a
 * response that comes late delays the next one's send and counts in its
 * time too.  Below saturation this is the latency the path adds; without
 * RATE, with every connection always busy, a percentile is mostly the
 * queue (CONNS / throughput, by Little's law).
 */
#define _GNU_SOURCE    /* ppoll */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 1024
#define RESPONSE_MAX_BYTES (256 * 1024)
#define SAMPLES_MAX (4 * 1024 * 1024)
/* A response not complete by then counts as a timeout and ends the run. */
#define RESPONSE_TIMEOUT_US (30 * 1000000LL)

struct conn {
	int fd;
	int64_t sent_us;
	int waiting;          /* a request is out, its response not complete */
	int64_t due_us;       /* with RATE: when the next request is due */
	size_t have;
	size_t need;          /* head + body, once the head is in; 0 before */
	char buf[RESPONSE_MAX_BYTES];
};

static struct conn conns[CONNS_MAX];
static int64_t samples[SAMPLES_MAX], firsts[CONNS_MAX];
static size_t nsamples;
static char request[1024];
static size_t request_len;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t
pct(int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n);
	return v[i < n ? i : n - 1];
}

/* A request whose time runs from since_us (now, or when it was due). */
static int
send_request(struct conn *c, int64_t since_us)
{
	c->have = c->need = 0;
	c->waiting = 1;
	c->sent_us = since_us;
	return send(c->fd, request, request_len, MSG_NOSIGNAL) == (ssize_t)request_len ? 0 : -1;
}

/* 1 when the response is complete, 0 for more, -1 on an error. */
static int
read_response(struct conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have, 0);
	char *end, *cl;

	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : -1;
	c->have += (size_t)n;
	c->buf[c->have] = '\0';
	if (c->need == 0 && (end = strstr(c->buf, "\r\n\r\n")) != NULL) {
		if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0)
			return -1;
		for (cl = c->buf; (cl = strchr(cl, '\n')) != NULL && cl < end; cl++)
			if (strncasecmp(cl + 1, "content-length:", 15) == 0)
				break;
		if (cl == NULL || cl >= end)
			return -1;
		c->need = (size_t)(end + 4 - c->buf) + strtoul(cl + 16, NULL, 10);
	}
	if (c->need && c->have > c->need)
		return -1;    /* bytes nobody asked for */
	return c->need && c->have == c->need;
}

/* The measured part starts: every connection sends; the failures. */
static int
send_all(int n)
{
	int i, failed = 0;

	for (i = 0; i < n; i++)
		failed += send_request(&conns[i], now_us()) == -1;
	return failed;
}

/* With RATE: sends what is due on idle connections; the failures.  *wait_us
 * becomes the time to the next due request, if sooner. */
static int
send_due(int n, int64_t *wait_us, int64_t interval_us)
{
	int64_t t = now_us();
	int i, failed = 0;

	for (i = 0; i < n; i++) {
		struct conn *c = &conns[i];
		if (c->waiting || c->fd < 0)
			continue;
		if (c->due_us <= t) {
			failed += send_request(c, c->due_us) == -1;
			c->due_us += interval_us;
		} else if (c->due_us - t < *wait_us) {
			*wait_us = c->due_us - t;
		}
	}
	return failed;
}

/* With RATE: the connections' first due times, staggered from t. */
static void
schedule(int n, int64_t t, int64_t interval_us)
{
	int i;

	for (i = 0; i < n; i++)
		conns[i].due_us = t + interval_us * i / n;
}

static int
open_conn(struct conn *c, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd == -1 || connect(c->fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		return -1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct pollfd pfd[CONNS_MAX];
	int port, n, i, warm = 0, rc, timeouts = 0, errors = 0;
	int64_t wait_us;
	struct timespec ts;
	int64_t start = 0, stop = 0, t, first_max = 0, interval_us = 0;
	double seconds, rate = 0;

	if ((argc != 6 && argc != 7) || (n = atoi(argv[4])) < 1 || n > CONNS_MAX ||
	    (port = atoi(argv[1])) <= 0 || (seconds = atof(argv[5])) < 0 ||
	    (argc == 7 && (rate = atof(argv[6])) <= 0)) {
		fprintf(stderr, "usage: kalat PORT HOST PATH CONNS SECONDS [RATE]\n");
		return 64;
	}
	if (rate > 0)
		interval_us = (int64_t)(n * 1e6 / rate);
	/* Sends when due, not up to 50 us later (the default timer slack). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	request_len = (size_t)snprintf(request, sizeof request,
	    "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[3], argv[2]);
	if (request_len >= sizeof request)
		return 64;
	for (i = 0; i < n; i++) {
		if (open_conn(&conns[i], port) == -1 || send_request(&conns[i], now_us()) == -1) {
			perror("kalat: connect");
			return 69;
		}
		pfd[i] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
	}
	for (;;) {
		t = now_us();
		if (warm == n && t >= stop)
			break;
		wait_us = 1000000;
		if (interval_us && start)
			errors += send_due(n, &wait_us, interval_us);
		/* To the microsecond: a wait rounded down to whole milliseconds
		 * would spin, and a spinning load generator holds a core that
		 * the processes it measures then wait for. */
		ts.tv_sec = wait_us / 1000000;
		ts.tv_nsec = (wait_us % 1000000) * 1000;
		rc = ppoll(pfd, (nfds_t)n, &ts, NULL);
		if (rc < 0 && errno != EINTR)
			return 70;
		for (i = 0; i < n; i++) {
			struct conn *c = &conns[i];
			if (pfd[i].fd < 0 || !c->waiting)
				continue;    /* done, or warm and waiting for the others */
			if (c->waiting && now_us() - c->sent_us > RESPONSE_TIMEOUT_US) {
				timeouts++;
				pfd[i].fd = -1;
				continue;
			}
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			rc = read_response(c);
			if (rc == 0)
				continue;
			if (rc == -1) {
				errors++;
				pfd[i].fd = -1;
				continue;
			}
			t = now_us();
			c->waiting = 0;
			if (start == 0) {
				/* Warm: wait for the others, then all start at once. */
				firsts[warm++] = t - c->sent_us;
				if (warm == n) {
					start = t;
					stop = start + (int64_t)(seconds * 1e6);
					if (interval_us)
						schedule(n, start, interval_us);
					else if (seconds > 0)
						errors += send_all(n);
				}
				continue;
			}
			if (t < stop && nsamples < SAMPLES_MAX)
				samples[nsamples++] = t - c->sent_us;
			if (interval_us)
				continue;    /* sent when due */
			if (send_request(c, now_us()) == -1) {
				errors++;
				pfd[i].fd = -1;
			}
		}
		if (timeouts + errors > 0 && start == 0)
			break;    /* a connection never warmed up */
	}
	qsort(samples, nsamples, sizeof samples[0], cmp);
	qsort(firsts, (size_t)warm, sizeof firsts[0], cmp);
	first_max = warm ? firsts[warm - 1] : 0;
	printf("BENCH_JSON {\"requests\":%zu,\"duration_us\":%lld,\"errors\":%d,\"timeouts\":%d,"
	       "\"p50_us\":%lld,\"p90_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld,"
	       "\"first_p50_us\":%lld,\"first_max_us\":%lld}\n",
	       nsamples, (long long)(stop - start), errors, timeouts,
	       (long long)pct(samples, nsamples, 50), (long long)pct(samples, nsamples, 90),
	       (long long)pct(samples, nsamples, 99),
	       (long long)(nsamples ? samples[nsamples - 1] : 0),
	       (long long)pct(firsts, (size_t)warm, 50), (long long)first_max);
	return errors || timeouts || warm < n ? 1 : 0;
}
