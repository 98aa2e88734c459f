/*
 * Every limit and timeout in expose, with its unit in its name and a line
 * on why it has that value.  Config files and flags override the ones that
 * an operator may want to tune; the rest are protocol constants.
 *
 * (Named bounds.h, not limits.h: a project header called limits.h shadows
 * the C library's through GCC's #include_next <limits.h>.)
 */
#ifndef EXPOSE_BOUNDS_H
#define EXPOSE_BOUNDS_H

/* --- the edge: one public connection --- */

/* A request head larger than this gets 431.  32 KiB holds every real
 * browser head (cookies included) with room to spare; ngrok allows 1 MB. */
#define HEAD_MAX_BYTES (32 * 1024)
/* More header fields than this gets 431.  Browsers send about 20. */
#define HEAD_MAX_FIELDS 100
/* What head-max-bytes and fields-max may be set to at most. */
#define HEAD_MAX_BYTES_CAP (256 * 1024)
#define HEAD_FIELDS_CAP 256
/* Chunk extensions are dropped; more than this of them gets 400. */
#define CHUNK_EXT_MAX_BYTES 4096
/* A request target longer than this gets 414.  RFC 9112 section 3
 * recommends accepting at least 8000 octets. */
#define URI_MAX_BYTES (16 * 1024)
/* Header lines an error page may carry: a Location to the longest target
 * under the longest host, or a WWW-Authenticate. */
#define PAGE_EXTRA_MAX_BYTES (URI_MAX_BYTES + DOMAIN_MAX_BYTES + 64)
/* The whole head of a request must arrive within this (slowloris). */
#define HEAD_TIMEOUT_MS 15000
/* An idle keep-alive connection is closed after this. */
#define IDLE_TIMEOUT_MS 60000
/* A request body that stalls this long between two reads ends the
 * connection. */
#define BODY_TIMEOUT_MS 60000
/* How long the edge lingers draining input after an error response, so
 * that the client reads the response instead of a reset. */
#define LINGER_TIMEOUT_MS 2000
/* Requests read ahead of their responses (pipelining depth). */
#define PIPELINE_MAX_REQUESTS 16
/* The edge's read size on either socket. */
#define EDGE_IO_BYTES (64 * 1024)
/* Bytes the edge holds toward one side before it stops reading the other. */
#define EDGE_QUEUE_MAX_BYTES (256 * 1024)
/* The pipe a body is spliced through, each way: a few reads' worth. */
#define PASS_PIPE_BYTES (256 * 1024)
/* The broker must answer an edge's OPEN within this. */
#define EDGE_BROKER_TIMEOUT_MS 10000
/* How often the broker deletes names whose quarantine has ended. */
#define NAMES_SWEEP_INTERVAL_S 3600
/* SQLite busy timeout for the edge's read-only lookup. */
#define REGISTRY_BUSY_TIMEOUT_MS 1000

/* --- the tunnel protocol --- */

/* Largest payload of one frame.  Large frames amortise per-frame costs;
 * the whole frame must fit one send() of the broker's buffers. */
#define FRAME_PAYLOAD_MAX_BYTES (64 * 1024)
/* Largest websocket message a peer may send: a batch of frames. */
#define MESSAGE_MAX_BYTES (FRAME_PAYLOAD_MAX_BYTES + 64)
/* Credit each side of a stream starts with.  Bounds the bytes in flight
 * (and so the memory) per stream and direction. */
#define STREAM_WINDOW_BYTES (256 * 1024)
/* What the broker and the client take from a socket in one read (lws's
 * service buffer), and the most they write to one in one call: in bulk
 * the cost is per system call, so 64 KiB reads cost four times what
 * these do. */
#define IO_CHUNK_BYTES (256 * 1024)
/* A batch of frames the broker and the client send as one websocket
 * message: a stream's whole window, in frames of at most
 * FRAME_PAYLOAD_MAX_BYTES.  Receivers parse frames as bytes arrive, so a
 * message's length is theirs to ignore (expose(7)). */
#define MUX_MESSAGE_BYTES (STREAM_WINDOW_BYTES + 64)
/* A receiver returns credit once it has drained this much. */
#define STREAM_WINDOW_UPDATE_BYTES (64 * 1024)
/* Tunnels one client may open over its websocket. */
#define TUNNELS_PER_CLIENT_MAX 16
/* Streams open at once on one tunnel; past it the edge answers 503. */
#define STREAMS_PER_TUNNEL_MAX 1024
/* Streams one source (an IPv4 address, an IPv6 /64) may have open at
 * once on one tunnel; past it that source gets 503 while others are still
 * served.  A browser opens about 6 connections a host: 64 leaves room for
 * an office behind one NAT, and one address cannot fill a tunnel's
 * STREAMS_PER_TUNNEL_MAX with stalled requests. */
#define STREAMS_PER_SOURCE_MAX 64
/* Failed basic-auth guesses one source (an IPv4 address, an IPv6 /64)
 * may make in a row, over all tunnels of a broker; then it gets 429 with
 * Retry-After, right password or not, and earns one more guess every
 * AUTH_FAILURE_PERIOD_S.  Someone who mistypes needs a few tries; 2,000
 * guesses take 33 hours instead of a minute. */
#define AUTH_FAILURES_MAX 10
#define AUTH_FAILURE_PERIOD_S 60
/* Longest line of the edge-to-broker preamble. */
#define PREAMBLE_MAX_BYTES 512
/* The client must complete its handshake within this. */
#define HANDSHAKE_TIMEOUT_S 10
/* Websocket ping after this much silence; hang up after PING_HANGUP_FACTOR
 * times as much (three pings unanswered). */
#define PING_INTERVAL_S 15
#define PING_HANGUP_FACTOR 3
#define PING_HANGUP_S (PING_INTERVAL_S * PING_HANGUP_FACTOR)

/* Tunnels one key may hold at once, over all its connections. */
#define TUNNELS_PER_KEY_MAX 32
/* Streams one key may have open at once, over all its tunnels. */
#define STREAMS_PER_KEY_MAX 4096
/* Streams one client holds at once, whatever its server asks: each is a
 * connection to the app.  The server's own per-key default. */
#define CLIENT_STREAMS_MAX STREAMS_PER_KEY_MAX
/* The client's descriptors besides its streams: the link, the inspector
 * and its pages, stdio. */
#define CLIENT_SPARE_FDS 64
/* New client connections one source prefix may open: a burst, then this
 * many a second.  Checked at accept, before any work. */
#define HANDSHAKE_RATE_PER_S 10
#define HANDSHAKE_BURST 20

/* --- names --- */

/* A random name stays its key's this long after its last use: the key
 * gets it back on reconnecting, nobody else can take it (a webhook URL
 * pasted somewhere never points at a stranger). */
#define NAME_QUARANTINE_S (7 * 86400)

/* Names one key may hold at once (claimed, and random ones in their
 * quarantine): the registry holds at most this many rows a key, whatever a
 * client asks.  Ten covers a developer's projects; an operator raises it
 * (names-per-key) or reserves more for a key. */
#define NAMES_PER_KEY_MAX 10
/* A claimed name that no tunnel used for this long is free again, so that
 * names claimed once and forgotten do not stay taken for ever. */
#define NAME_CLAIM_EXPIRY_S (30 * 86400)

/* Names the registry holds at most, over all keys (keys cost nothing to
 * make): past it claims are refused and random names replace the oldest
 * unused ones.  About 200 bytes a row: 20 MB. */
#define NAMES_MAX 100000

/* Server URLs a broker answers to (server-urls), at most. */
#define SERVER_URLS_MAX 16

/* A DNS label. */
#define NAME_MAX_BYTES 63
/* Bytes of a domain name. */
#define DOMAIN_MAX_BYTES 253

/* --- the client --- */

/* Reconnect backoff: starts here, doubles, is capped, gets jitter. */
#define RECONNECT_MIN_MS 500
#define RECONNECT_MAX_MS 30000
/* A connection that lasted this long resets the backoff. */
#define RECONNECT_STABLE_MS 10000
/* A server that takes the connection but has not finished TLS and the
 * websocket upgrade within this is given up on, and the next one tried. */
#define LINK_HANDSHAKE_TIMEOUT_S 20

/* --- more than one host (etcd) --- */

/* A broker's lease: its tunnels leave every host's registry this long
 * after the broker dies.  Kept alive three times a TTL. */
#define CLUSTER_LEASE_TTL_S 10
/* One call to etcd (per endpoint tried) must finish within this. */
#define ETCD_CALL_TIMEOUT_MS 2000
/* expose-mirror waits this long before trying etcd again after a failure. */
#define MIRROR_RETRY_MS 200
/* expose-mirror asks the member it watches this often whether it still
 * serves the cluster (a linearizable read): a member cut off from the
 * majority sends no events and no error, and this is how it is noticed. */
#define MIRROR_CHECK_MS 1000
/* Calls queued for the broker's etcd thread; BINDs past it are refused. */
#define CLUSTER_QUEUE_MAX 4096

#endif
