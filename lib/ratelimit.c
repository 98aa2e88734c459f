#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

void
ratelimit_init(struct ratelimit *r, uint32_t rate_per_s, uint32_t burst)
{
	memset(r, 0, sizeof *r);
	r->num = rate_per_s;      /* tokens a second = milli-tokens a millisecond */
	r->den = 1;
	r->burst = burst;
}

void
ratelimit_init_period(struct ratelimit *r, uint32_t period_ms, uint32_t burst)
{
	memset(r, 0, sizeof *r);
	r->num = 1000;
	r->den = period_ms ? period_ms : 1;
	r->burst = burst;
}

static void
prefix_of_v6(const uint8_t *a, uint8_t p[RATELIMIT_PREFIX_BYTES])
{
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		p[0] = 4;    /* an IPv4 peer on a dual-stack socket */
		memcpy(p + 1, a + 12, 4);
	} else {
		p[0] = 6;
		memcpy(p + 1, a, 8);
	}
}

/* The source of an address: its /32, or its /64 for IPv6. */
static void
ratelimit_prefix(const struct sockaddr *sa, uint8_t p[RATELIMIT_PREFIX_BYTES])
{
	memset(p, 0, RATELIMIT_PREFIX_BYTES);
	if (sa->sa_family == AF_INET) {
		p[0] = 4;
		memcpy(p + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		prefix_of_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, p);
	}
}

void
ratelimit_prefix_text(const char *addr, uint8_t p[RATELIMIT_PREFIX_BYTES])
{
	struct in_addr a4;
	struct in6_addr a6;

	memset(p, 0, RATELIMIT_PREFIX_BYTES);
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		p[0] = 4;
		memcpy(p + 1, &a4, 4);
	} else if (inet_pton(AF_INET6, addr, &a6) == 1) {
		prefix_of_v6(a6.s6_addr, p);
	}
}

static uint32_t
slot_of(const uint8_t p[RATELIMIT_PREFIX_BYTES])
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < RATELIMIT_PREFIX_BYTES; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h % RATELIMIT_SLOTS;
}

/* Adds what the time since last_ms earned, keeping the fraction of a
 * milli-token not yet earned (frequent calls must not slow the rate). */
static void
refill(const struct ratelimit *r, struct ratelimit_slot *s, int64_t now_ms)
{
	uint64_t add, t, cap = (uint64_t)r->burst * 1000u;

	if (now_ms <= s->last_ms)
		return;
	add = (uint64_t)(now_ms - s->last_ms) * r->num / r->den;
	if (add == 0)
		return;
	t = s->tokens_milli + add;
	if (t >= cap) {
		s->tokens_milli = (uint32_t)cap;
		s->last_ms = now_ms;
	} else {
		s->tokens_milli = (uint32_t)t;
		s->last_ms += (int64_t)(add * r->den / r->num);
	}
}

int
ratelimit_take_prefix(struct ratelimit *r, const uint8_t p[RATELIMIT_PREFIX_BYTES],
                      int64_t now_ms)
{
	struct ratelimit_slot *s;

	if (r->num == 0)
		return 1;
	s = &r->slots[slot_of(p)];
	if (memcmp(s->prefix, p, RATELIMIT_PREFIX_BYTES) != 0) {
		memcpy(s->prefix, p, RATELIMIT_PREFIX_BYTES);
		s->tokens_milli = r->burst * 1000u;
		s->last_ms = now_ms;
	}
	refill(r, s, now_ms);
	if (s->tokens_milli < 1000)
		return 0;
	s->tokens_milli -= 1000;
	return 1;
}

int
ratelimit_take(struct ratelimit *r, const struct sockaddr *sa, int64_t now_ms)
{
	uint8_t p[RATELIMIT_PREFIX_BYTES];

	ratelimit_prefix(sa, p);
	return ratelimit_take_prefix(r, p, now_ms);
}

int64_t
ratelimit_wait_ms(struct ratelimit *r, const uint8_t p[RATELIMIT_PREFIX_BYTES],
                  int64_t now_ms)
{
	struct ratelimit_slot *s;
	uint64_t need;

	if (r->num == 0)
		return 0;
	s = &r->slots[slot_of(p)];
	if (memcmp(s->prefix, p, RATELIMIT_PREFIX_BYTES) != 0)
		return 0;             /* not seen, or forgotten: a full bucket */
	refill(r, s, now_ms);
	if (s->tokens_milli >= 1000)
		return 0;
	need = 1000u - s->tokens_milli;
	return (int64_t)((need * r->den + r->num - 1) / r->num) -
	       (now_ms - s->last_ms);
}
