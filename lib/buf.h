/*
 * A growable byte buffer that knows its limit: bytes waiting between a
 * read and a write.  Reads take from the front, writes add at the back.
 * It never grows past its limit: buf_append() fails instead.
 */
#ifndef EXPOSE_BUF_H
#define EXPOSE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;   /* owned; NULL until the first byte arrives */
	size_t off;      /* first unread byte */
	size_t len;      /* unread bytes from off */
	size_t cap;      /* allocated bytes */
	size_t limit;    /* cap never exceeds this */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);

/* What buf_data() gives for a buffer that never held a byte. */
extern const uint8_t buf_empty[1];

static inline const uint8_t *
buf_data(const struct buf *b)
{
	return b->data ? b->data + b->off : buf_empty;
}
static inline size_t buf_len(const struct buf *b) { return b->len; }
static inline size_t buf_room(const struct buf *b) { return b->limit - b->len; }

/* Adds n bytes at the back; -1 (and nothing added) past the limit or when
 * memory runs out. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Space for at least n more bytes at the back, for a read() to fill;
 * NULL past the limit.  Follow with buf_commit(). */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

#endif
