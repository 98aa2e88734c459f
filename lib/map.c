#include "map.h"

#include <stdlib.h>
#include <string.h>

/* Buckets to start with, and the load that doubles them. */
#define MAP_MIN_BUCKETS 8
#define MAP_MAX_LOAD 2

static uint64_t
hash_bytes(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;    /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
map_init(struct map *m)
{
	memset(m, 0, sizeof *m);
}

void
map_free(struct map *m)
{
	free(m->buckets);
	memset(m, 0, sizeof *m);
}

static int
map_grow(struct map *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : MAP_MIN_BUCKETS, i;
	struct map_node **b = calloc(n, sizeof *b), *node, *next;

	if (b == NULL)
		return -1;
	for (i = 0; i < m->nbuckets; i++) {
		for (node = m->buckets[i]; node; node = next) {
			next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
	return 0;
}

int
map_insert(struct map *m, struct map_node *n, const void *key, size_t len)
{
	size_t i;

	if ((m->nbuckets == 0 || m->count >= m->nbuckets * MAP_MAX_LOAD) &&
	    map_grow(m) == -1 && m->nbuckets == 0)
		return -1;
	n->hash = hash_bytes(key, len);
	n->key = key;
	n->key_len = len;
	i = n->hash & (m->nbuckets - 1);
	n->next = m->buckets[i];
	m->buckets[i] = n;
	m->count++;
	return 0;
}

struct map_node *
map_find(const struct map *m, const void *key, size_t len)
{
	uint64_t h;
	struct map_node *n;

	if (m->nbuckets == 0)
		return NULL;
	h = hash_bytes(key, len);
	for (n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
		if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0)
			return n;
	return NULL;
}

void
map_remove(struct map *m, struct map_node *n)
{
	struct map_node **pp;

	if (m->nbuckets == 0)
		return;
	for (pp = &m->buckets[n->hash & (m->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			m->count--;
			return;
		}
	}
}

void
map_each(struct map *m, void (*fn)(struct map_node *n, void *ctx), void *ctx)
{
	struct map_node *n, *next;
	size_t i;

	for (i = 0; i < m->nbuckets; i++) {
		for (n = m->buckets[i]; n; n = next) {
			next = n->next;
			fn(n, ctx);
		}
	}
}
