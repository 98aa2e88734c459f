/*
 * The edge<->broker preamble (expose(7)): the one line an edge sends on a
 * new Unix connection to the broker, and the lines the broker answers
 * with, before the request bytes (or nothing, for AUTHFAIL) follow.
 *
 *   edge:   EXPOSE/1 OPEN NAME ADDR PORT PROTO      a visitor for tunnel NAME
 *           EXPOSE/1 AUTHFAIL NAME ADDR PORT PROTO  ADDR sent a wrong password
 *   broker: EXPOSE/1 OPENED        the stream is open; the app is slow to answer
 *           EXPOSE/1 OK            the app's bytes follow
 *           EXPOSE/1 ERR CODE [ARG]  no stream, or no more of it; then close
 *
 * Every line ends in "\n" and fits PREAMBLE_MAX_BYTES.  The parsers take
 * the line without its "\n" and trust none of it.
 */
#ifndef EXPOSE_PREAMBLE_H
#define EXPOSE_PREAMBLE_H

#include <stddef.h>

#include "bounds.h"
#include "sock.h"

#define PREAMBLE_ERR_DETAIL_BYTES 65    /* 64 characters of what was refused */

enum preamble_verb { PREAMBLE_OPEN, PREAMBLE_AUTHFAIL };

/* An edge's request: its tunnel, and the visitor as "ADDR PORT PROTO". */
struct preamble_ask {
	enum preamble_verb verb;
	char name[NAME_MAX_BYTES + 1];
	char addr[SOCK_ADDR_TEXT_BYTES];
	char peer[PREAMBLE_MAX_BYTES];      /* "ADDR PORT PROTO", as sent */
};

enum preamble_kind { PREAMBLE_OPENED, PREAMBLE_OK, PREAMBLE_ERR };

/* The ERR codes.  Their words on the wire are in preamble.c. */
enum preamble_code {
	PREAMBLE_GONE,          /* no such tunnel here, or it is closing */
	PREAMBLE_LIMIT,         /* the tunnel or the source has streams enough */
	PREAMBLE_PROTOCOL,      /* the edge's line was malformed */
	PREAMBLE_INTERNAL,      /* the broker ran out of memory */
	PREAMBLE_UNAUTHORIZED,  /* AUTHFAIL counted: answer 401 */
	PREAMBLE_THROTTLED,     /* ARG: seconds until the source may try again */
	PREAMBLE_REFUSED,       /* ARG: what the client could not connect to */
	PREAMBLE_CLOSED,        /* the tunnel closed the stream */
	PREAMBLE_UNKNOWN        /* a code this side does not know */
};

struct preamble_answer {
	enum preamble_kind kind;
	enum preamble_code code;            /* with PREAMBLE_ERR */
	int seconds;                        /* with PREAMBLE_THROTTLED */
	char detail[PREAMBLE_ERR_DETAIL_BYTES];  /* with PREAMBLE_REFUSED; may be "" */
};

/* Writes an edge's line, "\n" included, NUL-terminated.  Returns its
 * length, or -1 if it does not fit size. */
int preamble_ask_format(char *out, size_t size, enum preamble_verb verb, const char *name,
                        const char *addr, int port, const char *proto);
/* Parses an edge's line (without "\n"): 0, or -1 if malformed. */
int preamble_ask_parse(const char *line, struct preamble_ask *a);

/* Writes a broker's line, "\n" included: seconds with PREAMBLE_THROTTLED,
 * detail (may be NULL) with PREAMBLE_REFUSED; detail is cut to fit.
 * Returns its length, or -1 if it does not fit size. */
int preamble_answer_format(char *out, size_t size, enum preamble_kind kind,
                           enum preamble_code code, int seconds, const char *detail);
/* Parses a broker's line (without "\n"): 0, or -1 if it is none of them.
 * An ERR with a code this side does not know is PREAMBLE_UNKNOWN. */
int preamble_answer_parse(const char *line, struct preamble_answer *a);

#endif
