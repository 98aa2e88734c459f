#include "preamble.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREAMBLE_VERSION "EXPOSE/1 "
/* A throttled source waits at most this long, as the broker says it. */
#define PREAMBLE_THROTTLE_MAX_S (7 * 24 * 3600)

static const char *const verbs[] = {
	[PREAMBLE_OPEN] = "OPEN",
	[PREAMBLE_AUTHFAIL] = "AUTHFAIL",
};

static const char *const codes[] = {
	[PREAMBLE_GONE] = "gone",
	[PREAMBLE_LIMIT] = "limit",
	[PREAMBLE_PROTOCOL] = "protocol",
	[PREAMBLE_INTERNAL] = "internal",
	[PREAMBLE_UNAUTHORIZED] = "unauthorized",
	[PREAMBLE_THROTTLED] = "throttled",
	[PREAMBLE_REFUSED] = "refused",
	[PREAMBLE_CLOSED] = "closed",
	[PREAMBLE_UNKNOWN] = "closed",    /* what an unknown end says */
};

/* The result of snprintf as a line length, -1 if it did not fit. */
static int
fitted(int n, size_t size)
{
	return n < 0 || (size_t)n >= size ? -1 : n;
}

int
preamble_ask_format(char *out, size_t size, enum preamble_verb verb, const char *name,
                    const char *addr, int port, const char *proto)
{
	return fitted(snprintf(out, size, PREAMBLE_VERSION "%s %s %s %d %s\n", verbs[verb],
	                       name, addr, port, proto), size);
}

/* Copies the token at *p (up to a space or the end) to out; 0, or -1 if
 * it is empty or does not fit.  *p moves past it. */
static int
token(const char **p, char *out, size_t size)
{
	size_t n = strcspn(*p, " ");

	if (n == 0 || n >= size)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return 0;
}

/* The verb after the version, or -1. */
static int
verb_of(const char **p)
{
	size_t i, n;

	if (strncmp(*p, PREAMBLE_VERSION, sizeof PREAMBLE_VERSION - 1) != 0)
		return -1;
	*p += sizeof PREAMBLE_VERSION - 1;
	for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		n = strlen(verbs[i]);
		if (strncmp(*p, verbs[i], n) == 0 && (*p)[n] == ' ') {
			*p += n + 1;
			return (int)i;
		}
	}
	return -1;
}

int
preamble_ask_parse(const char *line, struct preamble_ask *a)
{
	const char *p = line;
	int verb = verb_of(&p);

	memset(a, 0, sizeof *a);
	if (verb == -1 || token(&p, a->name, sizeof a->name) == -1 || *p++ != ' ')
		return -1;
	if (strlen(p) >= sizeof a->peer)
		return -1;
	strcpy(a->peer, p);
	if (token(&p, a->addr, sizeof a->addr) == -1)
		return -1;
	a->verb = (enum preamble_verb)verb;
	return 0;
}

int
preamble_answer_format(char *out, size_t size, enum preamble_kind kind,
                       enum preamble_code code, int seconds, const char *detail)
{
	int n;

	if (kind == PREAMBLE_OPENED)
		n = snprintf(out, size, PREAMBLE_VERSION "OPENED\n");
	else if (kind == PREAMBLE_OK)
		n = snprintf(out, size, PREAMBLE_VERSION "OK\n");
	else if (code == PREAMBLE_THROTTLED)
		n = snprintf(out, size, PREAMBLE_VERSION "ERR %s %d\n", codes[code], seconds);
	else if (code == PREAMBLE_REFUSED)
		n = snprintf(out, size, PREAMBLE_VERSION "ERR %s %.*s\n", codes[code],
		             PREAMBLE_ERR_DETAIL_BYTES - 1, detail ? detail : "");
	else
		n = snprintf(out, size, PREAMBLE_VERSION "ERR %s\n", codes[code]);
	return fitted(n, size);
}

/* "throttled SECONDS": a positive count, else 0 (the edge then says 401). */
static int
seconds_of(const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (end == arg || *end != '\0' || v <= 0 || v > PREAMBLE_THROTTLE_MAX_S)
		return 0;
	return (int)v;
}

static void
answer_error(const char *p, struct preamble_answer *a)
{
	size_t n = strcspn(p, " ");
	const char *arg = p[n] == ' ' ? p + n + 1 : "";
	int i;

	a->kind = PREAMBLE_ERR;
	a->code = PREAMBLE_UNKNOWN;
	for (i = 0; i < PREAMBLE_UNKNOWN; i++)
		if (strlen(codes[i]) == n && strncmp(p, codes[i], n) == 0)
			a->code = (enum preamble_code)i;
	if (a->code == PREAMBLE_THROTTLED)
		a->seconds = seconds_of(arg);
	if (a->code == PREAMBLE_REFUSED)
		snprintf(a->detail, sizeof a->detail, "%s", arg);
}

int
preamble_answer_parse(const char *line, struct preamble_answer *a)
{
	const char *p = line;

	memset(a, 0, sizeof *a);
	if (strncmp(p, PREAMBLE_VERSION, sizeof PREAMBLE_VERSION - 1) != 0)
		return -1;
	p += sizeof PREAMBLE_VERSION - 1;
	if (strcmp(p, "OPENED") == 0) {
		a->kind = PREAMBLE_OPENED;
		return 0;
	}
	if (strcmp(p, "OK") == 0) {
		a->kind = PREAMBLE_OK;
		return 0;
	}
	if (strncmp(p, "ERR ", 4) != 0)
		return -1;
	answer_error(p + 4, a);
	return 0;
}
