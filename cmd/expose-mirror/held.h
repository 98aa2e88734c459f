/*
 * The copies the mirror holds back: a put for a name that a live broker
 * of this host still has a row for (a session of its own that another
 * host took over, or a row its successor has not swept yet).  Such a row
 * goes later, with no event from etcd to say so; so each is tried again
 * every tick until it is written, or until etcd says the name is deleted
 * or this host's (then the broker's own row is right).
 */
#ifndef EXPOSE_MIRROR_HELD_H
#define EXPOSE_MIRROR_HELD_H

#include <stdbool.h>

#include "bounds.h"

/* Copies held back at most; more are dropped, said once, until a resync. */
#define MIRROR_HELD_MAX 1024

struct held_copy {
	char name[NAME_MAX_BYTES + 1];
	char *value;              /* the key's value, as etcd gave it */
};

struct held {
	struct held_copy *c;
	int n;
	bool full;                /* one was dropped since the last clear: said */
};

/* Holds value back for name (replacing what was held for it). */
void held_keep(struct held *h, const char *name, const char *value);
/* Forgets name (nothing if it is not held). */
void held_forget(struct held *h, const char *name);
void held_clear(struct held *h);

#endif
