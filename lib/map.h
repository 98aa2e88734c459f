/*
 * An intrusive hash table: the broker's index of tunnels by name and of
 * streams by id.  Nodes live inside their owners; the table never owns
 * them.  Keys are bytes that stay valid while the node is in the table.
 */
#ifndef EXPOSE_MAP_H
#define EXPOSE_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_node {
	struct map_node *next;
	uint64_t hash;
	const void *key;
	size_t key_len;
};

struct map {
	struct map_node **buckets;
	size_t nbuckets;   /* a power of two, or 0 before the first insert */
	size_t count;
};

void map_init(struct map *m);
/* Frees the buckets; the nodes are their owners'. */
void map_free(struct map *m);
/* Adds n under key; -1 when memory runs out.  Keys must be unique. */
int map_insert(struct map *m, struct map_node *n, const void *key, size_t len);
struct map_node *map_find(const struct map *m, const void *key, size_t len);
void map_remove(struct map *m, struct map_node *n);

/* Walks every node; fn may remove the node it is given. */
void map_each(struct map *m, void (*fn)(struct map_node *n, void *ctx), void *ctx);

#define map_entry(node, type, member) \
	((type *)(void *)((char *)(node) - offsetof(type, member)))

#endif
