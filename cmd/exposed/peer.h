/*
 * The peer link (expose(7), "The peer link"): with etcd-endpoints and
 * peers set, each broker keeps one TCP connection to every other host's
 * broker, dialled at start and again with backoff when it drops.  Both
 * ends prove their host key (peer-keys lists whose they accept), each
 * signing the ephemeral key that seals every frame of the link (lib/seal:
 * encrypted and authenticated, so nobody on the path reads or changes
 * what crosses between hosts); then the
 * dialer opens one stream on it for each visitor whose tunnel the other
 * host holds, with the frames and credit of the client link (lib/frame,
 * lib/mux).
 *
 * peer.c holds the table of peers and the links' bytes, peer_hello.c the
 * handshake, peer_stream.c the streams: on the dialing side an edge's
 * connection handed over by edgeconn.c, on the other a socketpair whose
 * far end is adopted as an edge connection, so the tunnel's own host
 * serves it exactly as it serves its own edges.
 *
 * Without etcd-endpoints none of this runs: b->peers stays NULL.
 */
#ifndef EXPOSE_BROKER_PEER_H
#define EXPOSE_BROKER_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cluster_key.h"
#include "frame.h"
#include "identity.h"
#include "keys.h"
#include "map.h"
#include "mux.h"
#include "proto.h"
#include "seal.h"
#include "sock.h"

/* Hosts a broker dials at most (peers). */
#define PEERS_MAX 64
/* Connections to peer-listen not yet proven, at most; more are closed. */
#define PEER_LINKS_IN_MAX 64
/* Streams one link carries at once, at most. */
#define PEER_STREAMS_MAX 100000
/* A link's handshake must finish within this. */
#define PEER_HANDSHAKE_TIMEOUT_S 10
/* Re-dial backoff: the first wait, doubled up to the last. */
#define PEER_REDIAL_MIN_MS 100
#define PEER_REDIAL_MAX_MS 5000
/* A peer host gone silent (powered off, cut off) is noticed after
 * IDLE + INTERVAL * COUNT seconds, and its streams get their 502 then. */
#define PEER_KEEPALIVE_IDLE_S 5
#define PEER_KEEPALIVE_INTERVAL_S 2
#define PEER_KEEPALIVE_COUNT 3
/* The peer protocol's version, in CHALLENGE; and what each side's
 * signature covers instead of the client link's version, so that no
 * signature serves in another role. */
#define PEER_VERSION 0x81
#define PEER_SIGN_DIALER 0x81
#define PEER_SIGN_LISTENER 0x82

struct broker;
struct stream;
struct peers;
struct pstream;

struct link {
	struct peers *ps;
	struct peer *peer;        /* dialled for this peer; NULL: accepted */
	struct lws *wsi;          /* NULL once gone */
	struct link *prev, *next; /* accepted links */
	struct mux mux;
	struct seal seal;         /* every frame travels sealed (lib/seal) */
	bool seal_key_sent;       /* our key exchange key went out first */
	struct frame_decoder dec;
	struct map streams;       /* id -> struct pstream */
	uint32_t next_stream;
	bool up;                  /* both keys proved */
	bool got_challenge;       /* the other side's CHALLENGE came */
	bool refused;             /* its handshake failed: ERROR, then close */
	bool closing;             /* link_close ran; the close is coming */
	uint8_t nonce[IDENTITY_NONCE_BYTES];        /* ours, for them to sign */
	uint8_t their_nonce[IDENTITY_NONCE_BYTES];  /* theirs, for us to sign */
	char their_name[CLUSTER_HOST_BYTES];
	char dialed[PROTO_DIALED_BYTES];  /* the listener's address, as signed */
	char addr[SOCK_ADDR_TEXT_BYTES];  /* the other end, for logs */
	char fp[IDENTITY_FP_BYTES];
};

/* A host this broker dials (peers). */
struct peer {
	struct peers *ps;
	char name[CLUSTER_HOST_BYTES];
	char addr[128];
	struct link *link;        /* NULL: not connected */
	int backoff_ms;
	bool quiet;               /* a failed dial was logged; the next are not */
	lws_sorted_usec_list_t redial;
	/* counters for metrics.c */
	unsigned long streams_total;   /* visitors relayed to it */
	unsigned long relay_failed;    /* visitors for it answered 502 here: no link up */
	unsigned long drops;           /* links lost after they were up */
	unsigned long refusals;        /* handshakes with it that we refused */
};

struct peers {
	struct broker *b;
	struct identity id;
	struct keys keys;         /* peer-keys */
	char self_dialed[PROTO_DIALED_BYTES];  /* peer-listen, as peers sign it */
	struct peer peer[PEERS_MAX];
	int npeers;
	struct link *accepted;
	unsigned naccepted;
	unsigned long streams_in_total;  /* streams other hosts opened to us */
	unsigned long refusals_in;       /* handshakes on peer-listen we refused */
};

/* peer.c */
/* Loads the host key and peer-keys and dials every peer; 0 (also with
 * no etcd-endpoints: nothing runs), or -1 logged. */
int peer_start(struct broker *b);
void peer_stop(struct broker *b);
int peer_in_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
int peer_out_callback(struct lws *wsi, enum lws_callback_reasons reason,
                      void *user, void *in, size_t len);
/* Logs a line of peer-keys skipped (keys_load's warn). */
void peer_keys_warn(void *ctx, const char *msg);
/* Logs a refused handshake (one line, naming the fix) and ends the link. */
void link_refuse(struct link *l, const char *fp, const char *why);

/* peer_hello.c: the handshake */
/* The first frame on a link: our CHALLENGE. */
void hello_challenge(struct link *l);
/* CHALLENGE or AUTH from the other side; -1 ends the link. */
int hello_on_frame(struct link *l, uint8_t type, const uint8_t *p, size_t len);

/* peer_stream.c */
/* An edge asked for name, which may be another host's.  1: st is now
 * relayed to that host (its OPEN line and the bytes after it sent on),
 * 0: no other host holds name, -1: one does but no link to it is up. */
int peer_relay(struct stream *st, const char *name, const char *line,
               const uint8_t *rest, size_t n);
/* Frames for streams on an up link; -1 ends the link. */
int pstream_on_control(struct link *l, uint8_t type, uint32_t id,
                       const uint8_t *p, size_t len);
int pstream_on_data(struct link *l, uint32_t id, const uint8_t *p, size_t n);
/* The link is gone: each stream's connection closes. */
void pstream_drop_all(struct link *l);
/* Callbacks of the edge connection handed to a relay (edgeconn.c). */
void pstream_rx(struct pstream *ps, const uint8_t *in, size_t len);
int pstream_writeable(struct pstream *ps);
void pstream_closed(struct pstream *ps);
/* The far end of an accepted stream's socketpair. */
int peer_pipe_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len);
void pstream_link_init(struct link *l);

#endif
