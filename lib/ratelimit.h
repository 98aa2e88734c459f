/*
 * A token bucket per source prefix (/32 for IPv4, /64 for IPv6: one IPv6
 * host owns a whole /64), in a fixed-size table: memory stays bounded
 * whatever the number of sources.  The broker asks it before it spends
 * anything on a new client connection.
 */
#ifndef EXPOSE_RATELIMIT_H
#define EXPOSE_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

/* Slots in the table; a source whose slot another took starts afresh. */
#define RATELIMIT_SLOTS 4096

struct ratelimit_slot {
	uint8_t prefix[9];        /* family byte, then 8 bytes of address */
	uint32_t tokens_milli;    /* tokens x 1000 */
	int64_t last_ms;
};

struct ratelimit {
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
	uint32_t rate_per_s;      /* tokens added per second */
	uint32_t burst;           /* bucket size */
};

void ratelimit_init(struct ratelimit *r, uint32_t rate_per_s, uint32_t burst);
/* 1 if the source may go on (and takes a token), 0 if it is over. */
int ratelimit_take(struct ratelimit *r, const struct sockaddr *sa, int64_t now_ms);

#endif
