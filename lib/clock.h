/*
 * The one clock for deadlines and durations: CLOCK_MONOTONIC, which no
 * change of the wall clock moves.
 */
#ifndef EXPOSE_CLOCK_H
#define EXPOSE_CLOCK_H

#include <stdint.h>

/* Milliseconds since an arbitrary start (boot). */
int64_t clock_ms(void);

#endif
