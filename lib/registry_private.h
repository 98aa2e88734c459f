/*
 * What the registry's files share (registry.c, registry_mirror.c,
 * registry_names.c): the handle's insides and a few helpers.  Not for the
 * programs: they use registry.h.
 */
#ifndef EXPOSE_REGISTRY_PRIVATE_H
#define EXPOSE_REGISTRY_PRIVATE_H

#include <stdbool.h>

#include <sqlite3.h>

#include "registry.h"

/* A boot id's text (/proc/sys/kernel/random/boot_id), with room. */
#define BOOT_ID_BYTES 64

struct registry {
	sqlite3 *db;
	sqlite3_stmt *lookup;
	sqlite3_stmt *add;
	sqlite3_stmt *remove;
	bool broker_dead_fn;      /* broker_dead() made for this connection */
};

/* Runs sql (no parameters): 0, or -1. */
int registry_exec(struct registry *r, const char *sql);
/* The first column of sql's first row (no parameters) as an int, or -1. */
int registry_query_int(struct registry *r, const char *sql);
/* This boot's id, or "" if it cannot be read. */
void registry_read_boot_id(char out[BOOT_ID_BYTES]);
/* Whether a brokers row (its boot id and pid) is a dead broker's, seen
 * from this host's boot: another boot, or its pid gone. */
int registry_broker_is_dead(const char *boot, const char *row_boot, int pid);
/* Copies column i as text: 0, or -1 if NULL or too long. */
int registry_column_copy(sqlite3_stmt *st, int i, char *out, size_t size);
/* A tunnel row's fields after its name (and broker), from parameter i. */
void registry_bind_row(sqlite3_stmt *st, int i, const struct registry_tunnel *t);

#endif
