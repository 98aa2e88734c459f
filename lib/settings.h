/*
 * The server's settings: one table of every key of expose.conf(5), with
 * its default, its bounds and its flag.  exposed, expose-edge and
 * exposectl read the same file (/etc/expose/expose.conf by default); each
 * uses the keys it needs.  Flags win over the file.
 */
#ifndef EXPOSE_SETTINGS_H
#define EXPOSE_SETTINGS_H

#include <getopt.h>
#include <stddef.h>

#define SETTINGS_DEFAULT_FILE "/etc/expose/expose.conf"
#define SETTINGS_PATH_BYTES 256
/* Names no client may take unless an operator says otherwise. */
#define SETTINGS_DENY_NAMES_DEFAULT \
	"www,admin,api,mail,smtp,imap,pop,ftp,ns1,ns2,dns,mx,root,status,support," \
	"help,login,auth,account,accounts,billing,secure,security,abuse,postmaster," \
	"hostmaster,webmaster,dashboard,console,cdn,static,assets"

struct settings {
	/* where tunnels live */
	char domain[254];
	int public_port;
	char scheme[8];
	/* the broker */
	char listen[128];
	char server_urls[1024];   /* what clients dial, as they sign it; "": derived */
	char socket[108];
	char registry[SETTINGS_PATH_BYTES];
	char control[108];
	char metrics[128];        /* ADDR:PORT for GET /metrics, or "" */
	int ping_interval_s;
	int streams_per_tunnel;
	int streams_per_source;   /* of streams_per_tunnel, from one address */
	/* who may tunnel, and which names are whose */
	char authorized_keys[SETTINGS_PATH_BYTES];   /* "": an open server */
	int claim_names;
	char deny_names[1024];
	int name_quarantine_s;
	int names_per_key;        /* names one key may hold (claimed and random) */
	int claim_expiry_s;       /* a claimed name unused this long is freed */
	int names_max;            /* names the registry holds, over all keys */
	int tunnels_per_key;
	int streams_per_key;
	int handshake_rate;
	int handshake_burst;
	char auth_key[SETTINGS_PATH_BYTES];
	int auth_failures;        /* wrong passwords a source may send in a row */
	int auth_failure_period_s; /* then one more each this often */
	/* the edge */
	int head_timeout_ms;
	int idle_timeout_ms;
	int body_timeout_ms;
	int head_max_bytes;
	int fields_max;
	/* TLS */
	char cert[SETTINGS_PATH_BYTES];          /* PEM chain for DOMAIN, *.DOMAIN */
	char key[SETTINGS_PATH_BYTES];           /* its key; "" if in cert */
	char ticket_keys[SETTINGS_PATH_BYTES];   /* "": tickets.key by the registry */
	int redirect_http;
	int https_port;                          /* where redirects send visitors */
	int http_port;                           /* the plain edge's port, for URLs */
	/* more than one host (exposed(8), expose-mirror(8)); "": one host */
	char etcd_endpoints[1024];               /* http://HOST:PORT,... */
	char host_name[64];                      /* this host, as rows name it */
	int cluster_lease_ttl_s;                 /* a dead broker's tunnels go after this */
	/* the peer link between brokers (exposed(8)); "": none */
	char peer_listen[128];                   /* ADDR:PORT peers dial, never the public port */
	char peers[1024];                        /* NAME=ADDR:PORT,... every host's peer-listen */
	char peer_keys[SETTINGS_PATH_BYTES];     /* the keys peers may prove, names=HOST each */
	char host_key[SETTINGS_PATH_BYTES];      /* "": host.key beside the registry */
};

/* The defaults (see bounds.h for why each value). */
void settings_defaults(struct settings *s);


/* Sets one key from a flag ("--head-timeout 2000" is key head-timeout). */
int settings_set(struct settings *s, const char *key, const char *value,
                 char *why, size_t why_size);

/* Room for every key as a long option (settings_getopt). */
#define SETTINGS_KEYS_MAX 48

/* Flags seen on the command line, applied after the file so they win.
 * One entry a key (a repeated flag's last value wins), so it never fills. */
struct settings_flags {
	const char *key[SETTINGS_KEYS_MAX];
	const char *value[SETTINGS_KEYS_MAX];
	int n;
};

/* getopt_long(3) over a program's own options (own, n_own, shortopts)
 * and every key of expose.conf(5) as "--key VALUE", so that each key is a
 * flag of every program.  Keys go into flags; the program's own options
 * are returned as getopt_long returns them (-1 at the end, '?' for an
 * unknown one). */
int settings_getopt(int argc, char **argv, const char *shortopts,
                    const struct option *own, size_t n_own, struct settings_flags *flags);
/* Loads the file (path NULL: the default, if it exists), then the flags.
 * -1 with err set ("FILE:LINE: ..." or "--key 'v': ..."). */
int settings_build(struct settings *s, const char *path,
                   const struct settings_flags *f, char *err, size_t err_size);

/* The basic-auth secret's path: auth-key, or auth.key beside the registry. */
void settings_auth_key(const struct settings *s, char *out, size_t size);

/* The TLS ticket keys' path: ticket-keys, or tickets.key beside the registry. */
void settings_ticket_keys(const struct settings *s, char *out, size_t size);

/* This broker's peer-link key: host-key, or host.key beside the registry. */
void settings_host_key(const struct settings *s, char *out, size_t size);

/* exposectl's socket: control, or NAME-control.sock beside the edges'
 * NAME.sock (/run/expose/broker-control.sock by default). */
void settings_control(const struct settings *s, char *out, size_t size);

/* Writes every setting as "key = value" lines (exposed --check-config). */
void settings_print(const struct settings *s, int fd);

#endif
