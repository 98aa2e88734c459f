/*
 * expose: the client.  One websocket to the broker (tunnel.c) carries the
 * streams of every tunnel; each stream is one connection to the local
 * app (local.c).
 */
#ifndef EXPOSE_CLIENT_H
#define EXPOSE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "bounds.h"
#include "buf.h"
#include "frame.h"

#include "identity.h"
#include "map.h"
#include "mux.h"
#include "wsclient.h"

#define TARGET_HOST_BYTES 256
#define URL_BYTES 512

/* One local port (or address) made public. */
struct target {
	char host[TARGET_HOST_BYTES];  /* what to connect to: 127.0.0.1 by default */
	int port;
	char label[TARGET_HOST_BYTES + 8]; /* "localhost:3000", for people */
	char want[NAME_MAX_BYTES + 1];  /* --name, or empty for a random name */
	char name[NAME_MAX_BYTES + 1];  /* what the broker gave */
	char url[URL_BYTES];
	bool bound;
	bool printed;
};

struct server_url {
	bool tls;
	char host[256];
	int port;
	char path[256];
};

struct client {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *ws;
	struct server_url server;
	const char *server_text;
	const char *config;           /* -f FILE */
	const char *ca;               /* --ca FILE, for wss:// */
	char link_error[512];         /* why the link to the broker failed */
	char conf_server[512];        /* server = ... from the config file */
	char auth[200];               /* --auth user:password, for every tunnel */
	char allow[1024];             /* --allow prefixes, for every tunnel */
	struct identity id;
	char fp[IDENTITY_FP_BYTES];
	struct target targets[TUNNELS_PER_CLIENT_MAX];
	int ntargets;

	struct mux mux;
	struct frame_decoder dec;
	struct ws link;               /* the websocket over the raw connection */
	int64_t last_rx_ms;           /* anything from the broker */
	bool ping_due;                /* send a ping at the next writeable */
	bool pong_due;                /* answer the broker's ping */
	uint8_t pong[WS_CONTROL_MAX_BYTES];
	size_t pong_len;
	lws_sorted_usec_list_t keepalive;
	struct map streams;           /* id -> struct cstream */
	struct cstream *opening;      /* the stream whose connect is being made */
	bool authed;
	bool ever_connected;
	int64_t connected_ms;
	int backoff_ms;
	lws_sorted_usec_list_t reconnect;
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
	struct http_watch *watch;     /* for the request log; NULL if none */
};

extern struct client *client;

/* tls.c: TLS over the link, for wss:// */
int link_tls_start(struct client *c);
void link_tls_free(void);
int link_tls_connected(struct client *c, struct lws *wsi, char *why, size_t size);
int link_tls_receive(struct client *c, struct lws *wsi, const uint8_t *p, size_t n,
                     int (*deliver)(struct client *c, const uint8_t *p, size_t n),
                     char *why, size_t size);
int link_tls_send(struct lws *wsi, const uint8_t *p, size_t n);

/* key.c: `expose key [--new [--yes]]` */
int key_command(int argc, char **argv);

/* tunnel.c: the tunnel protocol */
void tunnel_init(struct client *c);
int tunnel_receive(struct client *c, const uint8_t *p, size_t n);
void tunnel_lost(struct client *c, const char *why);
void schedule_reconnect(struct client *c, const char *why);
int64_t client_now_ms(void);

/* link.c: the websocket to the broker */
int link_connect(struct client *c);
int link_open(struct client *c, struct lws *wsi);
int link_callback(struct lws *wsi, enum lws_callback_reasons reason,
                  void *user, void *in, size_t len);

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
struct cstream *local_find(struct client *c, uint32_t id);
/* Whether something accepts connections on the target now. */
bool local_probe(const struct target *t);

#endif
