/*
 * exposed: the broker.  One event loop (loop.c: libwebsockets on libev)
 * holds the clients' websockets (session.c), the edges' Unix connections
 * (edgeconn.c), the table of live tunnels and their registry rows
 * (bind.c).
 *
 * Ownership: the broker owns sessions; a session owns its tunnels and
 * its streams.  A session ends in one of two ways: the broker closes it
 * (session_close: an error, a kick, a takeover), or its websocket goes
 * (session_free).  Either way session_retire deletes its tunnels' rows
 * (tunnel_unbind_all, the only caller); session_free then resets its
 * streams and frees all it owned.
 *
 * Each callback finds its broker from the connection (broker_of), not
 * from a global.
 */
#ifndef EXPOSE_BROKER_H
#define EXPOSE_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "buf.h"
#include "frame.h"
#include "identity.h"
#include "bounds.h"
#include "map.h"
#include "metrics.h"
#include "auth.h"
#include "keys.h"
#include "mux.h"
#include "ratelimit.h"
#include "settings.h"
#include "sock.h"

/* Batches of frames written per writeable callback, on a client's
 * websocket or a peer link, so that one connection can't starve the
 * others. */
#define MUX_WRITES_PER_CALLBACK 16
/* And bytes, at most, on a client's websocket: its messages hold up to a
 * stream's window each (what 16 messages of one frame came to). */
#define MUX_WRITE_BYTES_PER_CALLBACK (1024 * 1024)

struct broker_config {
	struct settings set;      /* expose.conf and flags (expose.conf(5)) */
	const char *file;         /* -f, or NULL for the default: read again at reload */
	struct settings_flags flags;  /* settings given as flags, kept for reload */
	int verbose;
};

struct broker {
	struct broker_config *cfg;    /* reload replaces cfg->set */
	struct lws_context *ctx;
	struct lws_vhost *vh_ws;
	struct lws_vhost *vh_edge;
	struct registry *reg;
	struct cluster *cluster;  /* etcd-endpoints set: cluster.c; else NULL */
	struct peers *peers;      /* the peer link (peer.h); NULL on one host */
	char socket_path[108];    /* what edges connect to, as recorded */
	bool own_socket;          /* we made the socket file: unlink it at exit */
	char control_path[108];   /* exposectl's socket */
	bool own_control;
	struct map names;         /* name -> struct tunnel */
	struct map keys_in_use;   /* public key -> struct keyuse */
	struct session *sessions; /* every client websocket */
	/* Sessions this turn of the event loop gave bytes to write, for their
	 * websockets or their edges (broker_flush). */
	struct session *flush_sessions;
	struct keys authorized;   /* authorized_keys, when the server is closed */
	/* What clients may sign for (server-urls): ws[s]://host:port each. */
	char servers[SERVER_URLS_MAX][IDENTITY_SERVER_MAX_BYTES + 1];
	int nservers;
	char client_addr[SOCK_ADDR_TEXT_BYTES];  /* the client listener's address */
	int client_port;
	uint8_t auth_key[AUTH_KEY_BYTES];  /* the basic-auth hashing secret */
	struct ratelimit handshakes;
	struct ratelimit auth_failures;  /* wrong passwords, per visitor source */
	unsigned nsessions;
	unsigned ntunnels;
	unsigned nstreams;
	unsigned peak_sessions;   /* since memory was last handed back */
	int64_t next_names_sweep; /* unix seconds */
	struct metrics metrics;
	char status[64];          /* last STATUS= told to systemd */
	lws_sorted_usec_list_t watchdog;
	lws_usec_t watchdog_us;   /* 0: no watchdog */
	uint64_t cert_version;    /* the TLS files as last loaded */
	uint64_t key_version;
	struct ev_loop *loop;     /* loop.c */
	int stopping;             /* SIGTERM or SIGINT: leave the loop */
};

/* What one key holds now, over all its connections. */
struct keyuse {
	struct map_node node;     /* in broker.keys_in_use */
	uint8_t pk[IDENTITY_PK_BYTES];
	unsigned sessions;
	unsigned tunnels;
	unsigned streams;
	int max_tunnels;
	int max_streams;
	char names[KEYS_NAMES_BYTES];  /* names= from authorized_keys */
};

/* The streams one source has open on one tunnel (streams-per-source);
 * made at its first, freed with its last. */
struct source {
	struct map_node node;     /* in tunnel.sources */
	uint8_t prefix[RATELIMIT_PREFIX_BYTES];
	unsigned streams;
};

struct tunnel {
	struct map_node node;     /* in broker.names */
	struct session *s;
	uint32_t index;           /* the client's number for it, from 1 */
	unsigned nstreams;
	struct map sources;       /* prefix -> struct source */
	bool has_auth;
	int64_t since;
	char name[NAME_MAX_BYTES + 1];
	char url[DOMAIN_MAX_BYTES + 80];
	char target[128];
};

struct session {
	struct broker *b;
	struct lws *wsi;
	struct session *prev, *next;
	struct mux mux;
	struct frame_decoder dec;
	int64_t id;               /* matches its registry rows */
	uint8_t nonce[IDENTITY_NONCE_BYTES];
	bool authed;
	bool closing;             /* close once the queued frames are out */
	uint8_t pk[IDENTITY_PK_BYTES];
	struct keyuse *use;       /* set once authed */
	char key[IDENTITY_PK_TEXT_BYTES];
	char fp[IDENTITY_FP_BYTES];
	char addr[SOCK_ADDR_TEXT_BYTES];
	struct tunnel *tunnels[TUNNELS_PER_CLIENT_MAX];
	struct map streams;       /* id -> struct stream */
	uint32_t next_stream;
	uint16_t close_code;
	char close_reason[120];
	bool flush_queued;        /* on broker.flush_sessions */
	struct session *flush_next;
};

struct stream {
	struct mux_stream m;
	struct broker *b;
	struct map_node node;     /* in session.streams */
	uint32_t key;             /* the stream id, as the map's key */
	struct session *s;        /* NULL once its session is gone */
	struct tunnel *t;
	struct source *src;       /* its visitor's count on t */
	struct lws *wsi;          /* the edge's connection */
	struct buf preamble;      /* the OPEN line, until complete */
	bool opened;
	bool acked;               /* OPENED went to the edge */
	bool replied;             /* our reply line went to the edge */
	bool paused;              /* edge reads stopped for lack of credit */
	bool kill;                /* close the edge at its next writeable */
	bool from_peer;           /* a peer link's stream (peer_stream.c): never relayed on */
	struct pstream *relay;    /* another host's tunnel: the peer link carries it */
	char error[96];           /* reply with this error, then close */
};

/* The broker a connection belongs to (the context's user data). */
static inline struct broker *
broker_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* session.c */
int session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
void session_close(struct session *s, uint16_t code, const char *why);
/* A client asking for protocol 1: told to upgrade, and closed. */
int session_old_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len);
/* Queues ERROR (code, message) on stream 0 or a tunnel number. */
void session_error(struct session *s, uint32_t stream, uint16_t code, const char *msg);
/* After each turn of the event loop: writes the bytes that turn queued
 * for edges and clients now, where the socket takes them, instead of
 * asking lws for writeable callbacks (one more poll of every socket). */
void broker_flush(struct broker *b);

/* edgeconn.c: an edge's connection, one stream of a tunnel */
int stream_callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len);
/* The session is going: reset the stream and close its edge. */
void stream_detach(struct stream *st);
/* Frames from the client for a stream. */
int stream_on_data(struct stream *st, const uint8_t *p, size_t n);
void stream_on_fin(struct stream *st);
void stream_on_rst(struct stream *st, uint16_t code, const char *msg);
void stream_on_window(struct stream *st);
/* Writes the client's bytes to the edge now, where its socket takes
 * them (broker_flush). */
void stream_flush(struct stream *st);

/* bind.c: BIND, and the table of live tunnels */
int tunnel_bind(struct session *s, uint32_t index, const uint8_t *p, size_t len);
/* Drops a session's tunnels: their rows go and their names are free.
 * Only session_retire calls it. */
void tunnel_unbind_all(struct session *s);
struct tunnel *tunnel_find(struct broker *b, const char *name);
/* A bound tunnel refused after all (cluster.c): its row and, if created,
 * its name go; the client gets ERROR code msg. */
void tunnel_refused(struct tunnel *t, int created, uint16_t code, const char *msg);

/* access.c: who may tunnel, and which names are whose */
int access_start(struct broker *b);
void access_stop(struct broker *b);
/* Fills b->servers from server-urls, or its default: DOMAIN and the
 * client listener's address, at the listener's port, wss:// with a cert.
 * -1 (logged) on a bad entry. */
int access_servers(struct broker *b);
/* Checks a server-urls value: NULL if good, else the bad entry's text
 * (in a static buffer). */
const char *access_servers_check(const char *list);
/* Whether dialed (proto_dialed_make's form) is one of this server's. */
int access_server_ok(const struct broker *b, const char *dialed);
/* The accepted URLs as one comma-separated line, for messages. */
void access_servers_text(const struct broker *b, char *out, size_t size);
/* A key proved itself: may it in?  NULL if so, else why not. */
const char *access_admit(struct session *s);
void access_leave(struct session *s);
/* May s bind name?  0 yes (and it is now s's key's; *created says whether
 * this call recorded it), else a CODE_ with why set.  An empty name asks for a random one, written into name.
 * takeover: the key holds name live on an older connection. */
int access_name(struct session *s, char *name, size_t size, int takeover,
                int *created, const char **why);
/* The tunnel on name ended: a random name stays its key's a while. */
void access_name_done(struct session *s, const char *name);
/* Deletes names whose quarantine ended, at start and then hourly. */
void access_sweep_names(struct broker *b);

/* control.c: exposectl's live commands, and metrics over HTTP */
int control_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
int metrics_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);

/* listen.c */
int listen_setup(struct broker *b);
int listen_callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len);

/* reload.c: reads expose.conf, authorized_keys and the certificate again,
 * keeping every tunnel; msg says what happened.  -1: nothing changed. */
int broker_reload(struct broker *b, char *msg, size_t size);

/* certs.c: notes the loaded version of the certificate's files ... */
void cert_seen(struct broker *b);
/* ... and loads them again if a renewal changed them. */
void cert_reload(struct broker *b);

/* loop.c: the event loop (libev on epoll) lws runs on, with the broker's
 * signals and its flush after each turn.  loop_close after lws is gone. */
int loop_open(struct broker *b);
void loop_run(struct broker *b);
void loop_close(struct broker *b);

/* watchdog.c: the once-a-second tick (and systemd's watchdog). */
void watchdog_start(struct broker *b);

#endif
