/*
 * The one clock for deadlines and durations: CLOCK_MONOTONIC, which no
 * change of the wall clock moves.
 */
#ifndef EXPOSE_CLOCK_H
#define EXPOSE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Room for any time_t as clock_utc_text writes it. */
#define CLOCK_UTC_TEXT_BYTES 80

/* Milliseconds since an arbitrary start (boot). */
int64_t clock_ms(void);

/* now (seconds since 1970, UTC) as 2026-12-02T17:05:07Z, the form of
 * strftime's "%Y-%m-%dT%H:%M:%SZ" after gmtime.  Not those: glibc's read
 * the time zone file first, for nothing here (7 system calls in a process
 * that logs once, as the edge does). */
void clock_utc_text(time_t now, char *out, size_t size);

#endif
