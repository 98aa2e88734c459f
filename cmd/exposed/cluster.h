/*
 * exposed with etcd-endpoints set: the broker's part of the cluster
 * (exposed(8), "More than one host").  A thread of its own talks to etcd
 * so that the event loop never waits on the network: it holds the
 * broker's lease and keeps it alive, claims each tunnel's name by a
 * transaction and deletes the key when the tunnel ends.  The event loop
 * hands it jobs and takes back results (cluster_poll) after
 * lws_cancel_service wakes it.
 *
 * With etcd-endpoints empty none of this runs: b->cluster stays NULL.
 */
#ifndef EXPOSE_BROKER_CLUSTER_H
#define EXPOSE_BROKER_CLUSTER_H

#include <stddef.h>

struct broker;
struct tunnel;

/* Starts the thread if etcd-endpoints is set; 0 (also when not), or -1
 * logged (a bad setting). */
int cluster_start(struct broker *b);
/* Deletes this broker's keys (revokes its lease) and joins the thread. */
void cluster_stop(struct broker *b);
/* From the event loop: answers the BINDs whose claims finished. */
void cluster_poll(struct broker *b);

/* t is bound locally; its BOUND (text) goes out once etcd gives it the
 * name cluster-wide, else t is refused and dropped.  created: whether the
 * BIND recorded the name locally (access_name). */
int cluster_claim(struct tunnel *t, int created, const char *auth, const char *allow,
                  const char *bound, size_t len);
/* t is ending: its key goes (if still under this broker's lease). */
void cluster_release(struct tunnel *t);

#endif
