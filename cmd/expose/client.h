/*
 * expose: the client.  One websocket to the broker (tunnel.c) carries the
 * streams of every tunnel; each stream is one connection to the local
 * app (local.c).
 */
#ifndef EXPOSE_CLIENT_H
#define EXPOSE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/socket.h>

#include <libwebsockets.h>

#include "bounds.h"
#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "exchange.h"
#include "frame.h"

#include "identity.h"
#include "map.h"
#include "mux.h"
#include "wsclient.h"

#define TARGET_HOST_BYTES 256
/* Body bytes the inspector keeps of each request and response. */
#define INSPECT_BODY_BYTES (64 * 1024)
/* Exchanges the inspector keeps, newest first out. */
#define INSPECT_KEEP 100
#define INSPECT_DEFAULT_ADDR "127.0.0.1:4040"
#define URL_BYTES 512

/* One local port (or address) made public. */
struct target {
	char host[TARGET_HOST_BYTES];  /* what to connect to: 127.0.0.1 by default */
	int port;
	char label[TARGET_HOST_BYTES + 8]; /* "localhost:3000", for people */
	char host_header[TARGET_HOST_BYTES + 8]; /* Host with --host-header=rewrite */
	char want[NAME_MAX_BYTES + 1];  /* --name, or empty for a random name */
	char remembered[NAME_MAX_BYTES + 1]; /* the name of last time (names.c), or empty */
	bool same_as_last;              /* it got the remembered name back */
	bool name_shared;               /* another client here holds its lock (names.c) */
	int server;                     /* the server that last bound it */
	char name[NAME_MAX_BYTES + 1];  /* what the broker gave */
	char url[URL_BYTES];
	bool bound;
	bool printed;
	struct exchange_options xopts;  /* rewrite and capture for its streams */
	char public_host[URL_BYTES];    /* of url: host[:port] */
	char public_scheme[8];
	bool tls;                       /* https:// target */
	bool down;                      /* nothing answered: watched (appwatch.c) */
	struct sockaddr_storage watch_addr; /* where appwatch.c connects */
	socklen_t watch_len;            /* 0: it cannot */
	int watch_fd;                   /* its connect under way, or -1 */
};

/* Servers a client may be given: the hosts of one cluster. */
#define CLIENT_SERVERS_MAX 16
/* One server URL as given, at most. */
#define CLIENT_SERVER_TEXT_BYTES 512

struct server_url {
	bool tls;
	char host[256];
	int port;
	char path[256];
	char text[CLIENT_SERVER_TEXT_BYTES];         /* as given, for people */
	char dialed[IDENTITY_SERVER_MAX_BYTES + 1];  /* as signed: ws[s]://host:port */
};

struct client {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *ws;
	struct server_url servers[CLIENT_SERVERS_MAX]; /* servers.c */
	int nservers;
	int current;                  /* the one dialled now */
	int round_start;              /* where this round of the list began */
	bool served;                  /* the link now bound a tunnel */
	bool hop;                     /* its host cannot give names: the next */
	struct server_url server;     /* servers[current] */
	const char *server_text;
	char dialed[IDENTITY_SERVER_MAX_BYTES + 1]; /* the server as signed: ws[s]://host:port */
	const char *server_args[CLIENT_SERVERS_MAX]; /* --server, as given */
	int nserver_args;             /* how many were given (more are refused) */
	const char *config;           /* -f FILE */
	const char *ca;               /* --ca FILE, for wss:// */
	char link_error[512];         /* why the link to the broker failed */
	char conf_server[CONF_LINE_MAX_BYTES]; /* server = ... from the config file */
	char auth[200];               /* user:password, for every tunnel (password.c) */
	bool rewrite_host;            /* --host-header=rewrite */
	bool host_header_given;       /* on the command line: the file does not change it */
	char conf_ca[512];            /* ca = ... from the config file */
	bool local_insecure;          /* --local-insecure: https targets unchecked */
	bool quiet;                   /* -q: URLs only */
	bool json;                    /* --json: events as JSON lines on stdout */
	bool qr;                      /* --qr: the URL as a QR code */
	bool new_url;                 /* --new-url: not the remembered names */
	int names_lock_fd;            /* names.lock, held while running (names.c) */
	struct inspector *inspect;    /* --inspect: the web inspector, or NULL */
	char inspect_addr[64];        /* where it listens */
	bool inspect_wanted;
	char allow[1024];             /* --allow prefixes, for every tunnel */
	struct identity id;
	char fp[IDENTITY_FP_BYTES];
	struct target targets[TUNNELS_PER_CLIENT_MAX];
	int ntargets;

	struct mux mux;
	bool flush_link;              /* frames or bytes for apps to write after this turn */
	struct frame_decoder dec;
	struct ws link;               /* the websocket over the raw connection */
	struct tls_conn *link_tls;    /* for wss://, or NULL */
	struct tls_trust *link_trust; /* what the wss:// server must show */
	struct tls_trust *target_trust; /* for https:// targets, made at the first */
	int64_t last_rx_ms;           /* anything from the broker */
	bool ping_due;                /* send a ping at the next writeable */
	bool pong_due;                /* answer the broker's ping */
	uint8_t pong[WS_CONTROL_MAX_BYTES];
	size_t pong_len;
	lws_sorted_usec_list_t keepalive;   /* pings; before the upgrade, its deadline */
	struct map streams;           /* id -> struct cstream */
	struct cstream *opening;      /* the stream whose connect is being made */
	bool authed;
	bool ever_connected;
	int64_t connected_ms;
	int backoff_ms;
	lws_sorted_usec_list_t reconnect;
	lws_sorted_usec_list_t appwatch;  /* down targets are tried (appwatch.c) */
	volatile int stopping;        /* Ctrl-C: close cleanly and exit */
	bool closing;                 /* the close is under way */
	int exit_code;
	bool done;
};

/* A public connection, carried to the local app. */
struct cstream {
	struct mux_stream m;
	struct map_node node;
	uint32_t key;
	struct client *c;
	struct target *t;
	struct lws *wsi;              /* the local connection */
	bool connected;
	bool paused;
	bool local_closed;
	bool failed;                  /* the connect failed while being made */
	struct exchange_stream *xs;   /* follows its HTTP: log, inspector, rewrite */
	struct buf to_app;            /* requests as they go to the app */
	struct tls_conn *tls;         /* to an https:// target, or NULL */
	bool overrun;                 /* more from the app than the stream holds */
	bool held;                    /* requests wait: the pipeline followed is full */
};

/* The client a connection belongs to (the context's user data). */
static inline struct client *
client_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* tls.c: TLS over a raw lws connection, for wss:// and https:// targets */
struct tls_trust;
struct tls_conn;
/* Where a TLS connection's plaintext goes; ready() once the handshake ends. */
struct tls_sink {
	void *ctx;
	int (*data)(void *ctx, const uint8_t *p, size_t n);
	int (*ready)(void *ctx, struct lws *wsi);
};
/* verify: check certificates against ca, or the system's store, and their
 * names.  Made once and shared by the connections it checks. */
struct tls_trust *tls_trust_new(const char *ca, bool verify, const char **why);
void tls_trust_free(struct tls_trust *tr);
/* hint is added to "not trusted" failures. */
struct tls_conn *tls_conn_new(struct tls_trust *tr, const char *host, const char *hint,
                              const char **why);
void tls_conn_free(struct tls_conn *t);
/* Once connected: sends the ClientHello.  -1 with why set on failure. */
int tls_conn_start(struct tls_conn *t, struct lws *wsi, char *why, size_t size);
/* Ciphertext in, plaintext to the sink; -1 (why set, maybe empty) ends it. */
int tls_conn_receive(struct tls_conn *t, struct lws *wsi, const uint8_t *p, size_t n,
                     const struct tls_sink *sink, char *why, size_t size);
int tls_conn_send(struct tls_conn *t, struct lws *wsi, const uint8_t *p, size_t n);
/* The connection's channel binding (RFC 9266 tls-exporter); -1 before the
 * handshake ends. */
int tls_conn_binding(struct tls_conn *t, uint8_t out[IDENTITY_BINDING_BYTES]);

/* output.c: what the terminal (or a script) sees */
void requestlog_line(struct client *c, const struct target *t, const struct exchange *x);
void output_url(struct client *c, struct target *t, const char *http_url);
void output_status(struct client *c, int64_t handshake_ms);
void output_lost(struct client *c, const char *server, const char *why);
void output_back(struct client *c, struct target *t, bool moved);

/* inspect.c: the web inspector */
struct inspector;
int inspect_start(struct client *c, const char *listen);
/* Its address with the run's token, for people: "" without --inspect. */
const char *inspect_url(const struct client *c);
void inspect_add(struct client *c, const struct target *t, struct exchange *x);
void inspect_stop(struct client *c);
int inspect_callback(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
int inspect_replay_callback(struct lws *wsi, enum lws_callback_reasons reason,
                            void *user, void *in, size_t len);

/* password.c: the visitors' password, from --auth, --auth-file or EXPOSE_AUTH */
int password_set(struct client *c, const char *text, size_t len, const char *from);
int password_from_file(struct client *c, const char *path);
int password_from_env(struct client *c);

/* names.c: the names of last time, asked for again */
/* Sets each target's remembered name (unless --name or --new-url). */
void names_load(struct client *c);
/* Records the name t got. */
void names_save(struct client *c, const struct target *t);

/* servers.c: the servers, from --server, EXPOSE_SERVER or the config file */
/* Adds a URL or a comma-separated list of them; -1 (said) if one is bad
 * or there are too many.  from names the source for the error. */
int servers_add_list(struct client *c, const char *list, const char *from);
/* Dials servers[i] from now on. */
void servers_use(struct client *c, int i);
bool servers_any_tls(const struct client *c);
/* Whether dialed (len bytes, as signed) is one of the list's. */
bool servers_has_dialed(const struct client *c, const char *dialed, size_t len);
void servers_warn_if_clear(const struct client *c);

/* key.c: `expose key [--new [--yes]]` */
int key_command(int argc, char **argv);

/* tunnel.c: the tunnel protocol */
void tunnel_init(struct client *c);
int tunnel_receive(struct client *c, const uint8_t *p, size_t n);
void tunnel_lost(struct client *c, const char *why);
void schedule_reconnect(struct client *c, const char *why);

/* link.c: the websocket to the broker */
int link_connect(struct client *c);
int link_callback(struct lws *wsi, enum lws_callback_reasons reason,
                  void *user, void *in, size_t len);
/* After each turn of the event loop: writes the bytes for the apps and
 * then the frames that turn queued, where the sockets take them, instead
 * of asking for writeable callbacks (each one more poll of every socket). */
void link_flush(struct client *c);

/* local.c */
int local_callback(struct lws *wsi, enum lws_callback_reasons reason,
                   void *user, void *in, size_t len);
struct cstream *local_open(struct client *c, uint32_t id, struct target *t,
                           const char *peer);
int local_on_data(struct cstream *cs, const uint8_t *p, size_t n);
void local_on_fin(struct cstream *cs);
void local_on_window(struct cstream *cs);
/* Ends a stream: closes its local connection and frees it. */
void local_close(struct cstream *cs);
void local_close_all(struct client *c);
/* link_flush's part for one stream's app. */
void local_flush(struct cstream *cs);
struct cstream *local_find(struct client *c, uint32_t id);

/* appwatch.c: whether the targets' apps answer */
/* Warns of each target nobody listens on, and watches it. */
void appwatch_start(struct client *c);
/* A target refused a connection: watch it until it answers. */
void appwatch_down(struct client *c, struct target *t);
/* A target answered: one line if it was down. */
void appwatch_up(struct client *c, struct target *t);
void appwatch_stop(struct client *c);

#endif
