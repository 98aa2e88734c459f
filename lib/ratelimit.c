#include "ratelimit.h"

#include <netinet/in.h>
#include <string.h>

void
ratelimit_init(struct ratelimit *r, uint32_t rate_per_s, uint32_t burst)
{
	memset(r, 0, sizeof *r);
	r->rate_per_s = rate_per_s;
	r->burst = burst;
}

static void
prefix_of(const struct sockaddr *sa, uint8_t p[9])
{
	memset(p, 0, 9);
	if (sa->sa_family == AF_INET) {
		p[0] = 4;
		memcpy(p + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			p[0] = 4;    /* an IPv4 peer on a dual-stack socket */
			memcpy(p + 1, a + 12, 4);
		} else {
			p[0] = 6;
			memcpy(p + 1, a, 8);
		}
	}
}

static uint32_t
slot_of(const uint8_t p[9])
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < 9; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h % RATELIMIT_SLOTS;
}

int
ratelimit_take(struct ratelimit *r, const struct sockaddr *sa, int64_t now_ms)
{
	uint8_t p[9];
	struct ratelimit_slot *s;
	uint64_t refill;

	if (r->rate_per_s == 0)
		return 1;
	prefix_of(sa, p);
	s = &r->slots[slot_of(p)];
	if (memcmp(s->prefix, p, sizeof p) != 0) {
		memcpy(s->prefix, p, sizeof p);
		s->tokens_milli = r->burst * 1000u;
		s->last_ms = now_ms;
	}
	refill = (uint64_t)(now_ms - s->last_ms) * r->rate_per_s;
	if (refill > 0) {
		uint64_t t = s->tokens_milli + refill;
		s->tokens_milli = t > r->burst * 1000u ? r->burst * 1000u : (uint32_t)t;
		s->last_ms = now_ms;
	}
	if (s->tokens_milli < 1000)
		return 0;
	s->tokens_milli -= 1000;
	return 1;
}
