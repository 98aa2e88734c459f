/*
 * More than one host: how a live tunnel is written in etcd.  Each is the
 * key CLUSTER_PREFIX NAME, under its broker's lease, whose value is a JSON
 * object with the registry row's fields and the host that holds it.
 * exposed writes these (cmd/exposed/cluster.c); expose-mirror copies them
 * into each host's registry.
 */
#ifndef EXPOSE_CLUSTER_KEY_H
#define EXPOSE_CLUSTER_KEY_H

#include <stddef.h>

#include <jansson.h>

#include "registry.h"

#define CLUSTER_PREFIX "/expose/tunnels/"
/* The longest key: the prefix and a name. */
#define CLUSTER_KEY_BYTES 96
/* host-name: a DNS label's worth. */
#define CLUSTER_HOST_BYTES 64

/* The key of name, into out. */
void cluster_key(const char *name, char *out, size_t size);
/* The name a key stands for, or NULL if it is not one of ours. */
const char *cluster_key_name(const char *key);

/* t as its etcd value (free()), or NULL. */
char *cluster_encode(const struct registry_tunnel *t);
/* A value into *t, whose strings point into *hold (json_decref it after).
 * -1 if it is not a tunnel's value. */
int cluster_decode(const char *value, struct registry_tunnel *t, json_t **hold);

/* Whether host-name's value is a host name: 1 to 63 of [A-Za-z0-9.-]. */
int cluster_host_ok(const char *host);

#endif
