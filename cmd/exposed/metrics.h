/*
 * The broker's counters, and their Prometheus text form: served on the
 * control socket (METRICS) and, when `metrics` is set, over HTTP.
 */
#ifndef EXPOSED_METRICS_H
#define EXPOSED_METRICS_H

#include <stdint.h>

#include "buf.h"

enum handshake_result {
	HS_OK, HS_BAD_SIGNATURE, HS_NOT_AUTHORIZED, HS_PROTOCOL, HS_RATE_LIMITED,
	HS_ABANDONED, HS_OTHER_SERVER, HS_OLD_PROTOCOL, HS_MAX
};

enum edge_refusal { ER_GONE, ER_LIMIT, ER_PROTOCOL, ER_MAX };

/* Bind results follow frame.h's codes (CODE_OK for success). */
#define METRICS_CODES 16

struct metrics {
	unsigned long handshakes[HS_MAX];
	unsigned long binds[METRICS_CODES];
	unsigned long edges_refused[ER_MAX];
	unsigned long streams_total;
	uint64_t bytes_to_clients;
	uint64_t bytes_from_clients;
	unsigned long registry_errors;
	unsigned long kicks;
};

struct broker;

/* Appends the Prometheus text exposition of b's state; -1 if out is full. */
int metrics_render(const struct broker *b, struct buf *out);
/* The HTTP answer to a request head on the metrics port, into reply:
 * GET /metrics gets 200 and the counters, anything else 404. */
void metrics_serve(const struct broker *b, const void *head, size_t len, struct buf *reply);

#endif
