/*
 * What the developer's terminal shows.  stdout: the URLs, one a line
 * (or with --json, one JSON event a line: urls and requests, for scripts).
 * stderr: a status block when the tunnels are up, then one line per
 * exchange when it ends (time, method, path, status coloured by class on
 * a terminal, duration, body bytes each way, and how it ended if not
 * plainly), and reconnects and errors as they happen.  -q leaves only the
 * URLs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <qrencode.h>

#include "client.h"
#include "log.h"

static const char *
status_colour(int status)
{
	if (status >= 500)
		return "\033[31m";    /* red */
	if (status >= 400)
		return "\033[33m";    /* yellow */
	if (status >= 300)
		return "\033[36m";    /* cyan */
	return "\033[32m";        /* green */
}

static void
human_bytes(uint64_t n, char *out, size_t size)
{
	if (n < 1024)
		snprintf(out, size, "%lluB", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(out, size, "%.1fKiB", (double)n / 1024);
	else
		snprintf(out, size, "%.1fMiB", (double)n / (1024 * 1024));
}

/* Durations: ms up to DURATION_MS_MAX, then seconds, then minutes. */
#define DURATION_MS_MAX 10000
#define DURATION_S_MAX 600

static void
human_duration(int64_t ms, char *out, size_t size)
{
	if (ms < DURATION_MS_MAX)
		snprintf(out, size, "%lldms", (long long)ms);
	else if (ms < DURATION_S_MAX * 1000)
		snprintf(out, size, "%.1fs", (double)ms / 1000);
	else
		snprintf(out, size, "%lldm%02llds", (long long)(ms / 60000),
		         (long long)(ms / 1000 % 60));
}

static const char *const END_NAMES[] = {
	[EXCHANGE_COMPLETE] = "complete", [EXCHANGE_CUT] = "cut",
	[EXCHANGE_ABANDONED] = "abandoned", [EXCHANGE_CLOSED] = "closed",
};

static void
json_line(json_t *event)
{
	char *text = json_dumps(event, JSON_COMPACT);

	if (text) {
		printf("%s\n", text);
		fflush(stdout);
		free(text);
	}
	json_decref(event);
}

void
requestlog_line(struct client *c, const struct target *t, const struct exchange *x)
{
	char when[16], in[32], out[32], took[32], status[8] = "-";
	time_t now = time(NULL);
	struct tm tm;
	int64_t ms = x->end_ms - x->start_ms;
	const char *end = exchange_end_text(x);
	static int tty = -1;    /* asked once: a system call a request otherwise */

	if (tty == -1)
		tty = isatty(STDERR_FILENO);
	strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
	if (c->json)
		json_line(json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:b, s:s}",
		                    "event", "request", "time", when, "method", x->method,
		                    "path", x->path, "status", x->status, "ms", (json_int_t)ms,
		                    "bytes", (json_int_t)x->response_bytes,
		                    "request_bytes", (json_int_t)x->request_bytes,
		                    "end", END_NAMES[x->end], "upgraded", x->upgraded,
		                    "url", t->url));
	if (c->quiet)
		return;
	if (x->status)
		snprintf(status, sizeof status, "%d", x->status);
	human_bytes(x->request_bytes, in, sizeof in);
	human_bytes(x->response_bytes, out, sizeof out);
	human_duration(ms, took, sizeof took);
	fprintf(stderr, "%s %-6s %s %s%s%s %s req %s resp %s%s%s\n", when, x->method, x->path,
	        tty ? status_colour(x->status) : "", status, tty ? "\033[0m" : "", took, in, out,
	        end[0] ? ", " : "", end);
}

/* The URL as a QR code of half-height blocks, for a phone's camera. */
static void
print_qr(const char *url)
{
	QRcode *qr = QRcode_encodeString(url, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
	int x, y, w;

	if (qr == NULL)
		return;
	w = qr->width;
	for (y = -2; y < w + 2; y += 2) {
		for (x = -2; x < w + 2; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			          (qr->data[(y + 1) * w + x] & 1);
			/* dark modules print as spaces on a light background */
			fputs(top && bot ? " " : top ? "\u2584" : bot ? "\u2580" : "\u2588", stderr);
		}
		fputc('\n', stderr);
	}
	QRcode_free(qr);
}

void
output_url(struct client *c, struct target *t, const char *http_url)
{
	if (c->json) {
		json_line(json_pack("{s:s, s:s, s:s, s:s?, s:b}", "event", "url", "url", t->url,
		                    "target", t->label, "http_url", http_url[0] ? http_url : NULL,
		                    "same_as_last", t->same_as_last));
	} else {
		/* stdout carries the URLs only, one a line, for scripts: https first. */
		printf("%s\n", t->url);
		if (http_url[0])
			printf("%s\n", http_url);
		fflush(stdout);
	}
	if (c->quiet)
		return;
	fprintf(stderr, "expose  %s -> %s%s\n", t->url, t->label, t->same_as_last ?
	        " (the same URL as last time; --new-url for a new one)" : "");
	if (c->qr)
		print_qr(t->url);
}

/* --json only: a link that had bound tunnels is gone (the text output has
 * its own warning line), so a script knows its URLs answer 502 for now. */
void
output_lost(struct client *c, const char *server, const char *why)
{
	if (c->json)
		json_line(json_pack("{s:s, s:s, s:s}", "event", "disconnected", "server", server,
		                    "reason", why));
}

/* --json only: a tunnel bound again with its URL, on the server it had
 * ("reconnected") or on another of the list ("moved"). */
void
output_back(struct client *c, struct target *t, bool moved)
{
	if (c->json)
		json_line(json_pack("{s:s, s:s, s:s, s:s}", "event", moved ? "moved" : "reconnected",
		                    "url", t->url, "target", t->label, "server", c->server_text));
}

void
output_status(struct client *c, int64_t handshake_ms)
{
	if (c->json && c->inspect)
		json_line(json_pack("{s:s, s:s}", "event", "inspector", "url", inspect_url(c)));
	else if (c->quiet && c->inspect)
		fprintf(stderr, "expose  inspector %s\n", inspect_url(c));
	if (c->quiet || c->json)
		return;
	fprintf(stderr, "expose  server %s, key %s, handshake %lld ms%s%s\n", c->server_text, c->fp,
	        (long long)handshake_ms, c->inspect ? ", inspector " : "", inspect_url(c));
}
