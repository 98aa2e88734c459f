/*
 * A token bucket per source prefix (/32 for IPv4, /64 for IPv6: one IPv6
 * host owns a whole /64), in a fixed-size table: memory stays bounded
 * whatever the number of sources.  The broker asks it before it spends
 * anything on a new client connection, and counts failed basic-auth
 * guesses with it (one token a guess).
 */
#ifndef EXPOSE_RATELIMIT_H
#define EXPOSE_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

/* Slots in the table; a source whose slot another took starts afresh. */
#define RATELIMIT_SLOTS 4096
/* A source: a family byte, then 8 bytes of address. */
#define RATELIMIT_PREFIX_BYTES 9

struct ratelimit_slot {
	uint8_t prefix[RATELIMIT_PREFIX_BYTES];
	uint32_t tokens_milli;    /* tokens x 1000 */
	int64_t last_ms;
};

struct ratelimit {
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
	/* Milli-tokens added per millisecond: num / den.  0 / x: no limit. */
	uint32_t num, den;
	uint32_t burst;           /* bucket size */
};

void ratelimit_init(struct ratelimit *r, uint32_t rate_per_s, uint32_t burst);
/* One token every period_ms, for rates below one a second. */
void ratelimit_init_period(struct ratelimit *r, uint32_t period_ms, uint32_t burst);

/* The source of an address given as text ("192.0.2.1", "2001:db8::1",
 * "::ffff:192.0.2.1").  Text that is no address gives the all-zero
 * prefix: such sources are counted as one. */
void ratelimit_prefix_text(const char *addr, uint8_t p[RATELIMIT_PREFIX_BYTES]);

/* 1 if the source may go on (and takes a token), 0 if it is over. */
int ratelimit_take(struct ratelimit *r, const struct sockaddr *sa, int64_t now_ms);
int ratelimit_take_prefix(struct ratelimit *r, const uint8_t p[RATELIMIT_PREFIX_BYTES],
                          int64_t now_ms);
/* 0 if the source has a token now, else the milliseconds until it has
 * one.  Takes nothing. */
int64_t ratelimit_wait_ms(struct ratelimit *r, const uint8_t p[RATELIMIT_PREFIX_BYTES],
                          int64_t now_ms);

#endif
