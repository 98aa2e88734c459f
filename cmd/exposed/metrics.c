#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>

#include "broker.h"
#include "peer.h"

static const char *const handshake_names[HS_MAX] = {
	"ok", "bad_signature", "not_authorized", "protocol", "rate_limited", "abandoned",
	"other_server", "old_protocol",
};

static const char *const refusal_names[ER_MAX] = { "gone", "limit", "protocol" };

static int
put(struct buf *out, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	return buf_append(out, line, (size_t)n);
}

/* "name taken" -> "name_taken": label values without spaces. */
static const char *
code_label(int code)
{
	static char label[32];
	const char *name = code == CODE_OK ? "ok" : frame_code_name((enum frame_code)code);
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof label; i++)
		label[i] = name[i] == ' ' ? '_' : name[i];
	label[i] = '\0';
	return label;
}

static int
head(struct buf *out, const char *name, const char *type, const char *help)
{
	return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The peer link's series, one per host in peers (cluster mode only). */
static int
render_peers(const struct peers *ps, struct buf *out)
{
	const struct link *l;
	unsigned in_up = 0;
	int rc = 0, i;

	rc |= head(out, "expose_peer_link_up", "gauge",
	           "1 when this broker's link to the host is up and proven.");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_link_up{peer=\"%s\"} %d\n", ps->peer[i].name,
		          ps->peer[i].link && ps->peer[i].link->up);
	rc |= head(out, "expose_peer_streams", "gauge", "Visitors relayed to the host now.");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_streams{peer=\"%s\"} %zu\n", ps->peer[i].name,
		          ps->peer[i].link ? ps->peer[i].link->streams.count : 0);
	rc |= head(out, "expose_peer_streams_total", "counter", "Visitors relayed to the host.");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_streams_total{peer=\"%s\"} %lu\n", ps->peer[i].name,
		          ps->peer[i].streams_total);
	rc |= head(out, "expose_peer_relay_failed_total", "counter",
	           "Visitors for the host's tunnels answered 502 here (no link up, or full).");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_relay_failed_total{peer=\"%s\"} %lu\n",
		          ps->peer[i].name, ps->peer[i].relay_failed);
	rc |= head(out, "expose_peer_link_drops_total", "counter",
	           "Links to the host lost after they were up.");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_link_drops_total{peer=\"%s\"} %lu\n", ps->peer[i].name,
		          ps->peer[i].drops);
	rc |= head(out, "expose_peer_refused_total", "counter",
	           "Handshakes this broker refused, by the host dialled (\"in\": on peer-listen).");
	for (i = 0; i < ps->npeers; i++)
		rc |= put(out, "expose_peer_refused_total{peer=\"%s\"} %lu\n", ps->peer[i].name,
		          ps->peer[i].refusals);
	rc |= put(out, "expose_peer_refused_total{peer=\"in\"} %lu\n", ps->refusals_in);
	for (l = ps->accepted; l; l = l->next)
		in_up += l->up;
	rc |= head(out, "expose_peer_links_in", "gauge", "Links other hosts dialled, up now.");
	rc |= put(out, "expose_peer_links_in %u\n", in_up);
	rc |= head(out, "expose_peer_streams_in_total", "counter",
	           "Streams other hosts opened to this host's tunnels.");
	rc |= put(out, "expose_peer_streams_in_total %lu\n", ps->streams_in_total);
	return rc;
}

int
metrics_render(const struct broker *b, struct buf *out)
{
	const struct metrics *m = &b->metrics;
	int rc = 0, i;

	rc |= head(out, "expose_clients", "gauge", "Client websockets connected now.");
	rc |= put(out, "expose_clients %u\n", b->nsessions);
	rc |= head(out, "expose_tunnels", "gauge", "Live tunnels.");
	rc |= put(out, "expose_tunnels %u\n", b->ntunnels);
	rc |= head(out, "expose_streams", "gauge", "Public connections carried now.");
	rc |= put(out, "expose_streams %u\n", b->nstreams);
	rc |= head(out, "expose_streams_total", "counter", "Public connections carried.");
	rc |= put(out, "expose_streams_total %lu\n", m->streams_total);
	rc |= head(out, "expose_bytes_total", "counter", "Bytes of streams, each way.");
	rc |= put(out, "expose_bytes_total{direction=\"to_clients\"} %llu\n",
	          (unsigned long long)m->bytes_to_clients);
	rc |= put(out, "expose_bytes_total{direction=\"from_clients\"} %llu\n",
	          (unsigned long long)m->bytes_from_clients);
	rc |= head(out, "expose_handshakes_total", "counter", "Client handshakes, by result.");
	for (i = 0; i < HS_MAX; i++)
		rc |= put(out, "expose_handshakes_total{result=\"%s\"} %lu\n", handshake_names[i],
		          m->handshakes[i]);
	rc |= head(out, "expose_binds_total", "counter", "Tunnel requests, by result.");
	for (i = 0; i <= CODE_REPLACED && i < METRICS_CODES; i++)
		if (i == CODE_OK || m->binds[i])
			rc |= put(out, "expose_binds_total{result=\"%s\"} %lu\n", code_label(i),
			          m->binds[i]);
	rc |= head(out, "expose_edges_refused_total", "counter",
	           "Edge connections the broker refused, by reason.");
	for (i = 0; i < ER_MAX; i++)
		rc |= put(out, "expose_edges_refused_total{reason=\"%s\"} %lu\n", refusal_names[i],
		          m->edges_refused[i]);
	rc |= head(out, "expose_registry_errors_total", "counter", "Registry writes that failed.");
	rc |= put(out, "expose_registry_errors_total %lu\n", m->registry_errors);
	rc |= head(out, "expose_kicks_total", "counter", "Clients ended by an operator.");
	rc |= put(out, "expose_kicks_total %lu\n", m->kicks);
	if (b->peers)
		rc |= render_peers(b->peers, out);
	return rc ? -1 : 0;
}

/* The counters' part of a reply, at most: the peer link's series for
 * PEERS_MAX hosts with the longest names fit. */
#define METRICS_BODY_BYTES (128 * 1024)

void
metrics_serve(const struct broker *b, const void *head, size_t len, struct buf *reply)
{
	static const char path[] = "GET /metrics ";
	struct buf body;
	char line[256];

	buf_init(&body, METRICS_BODY_BYTES);
	if (len >= sizeof path - 1 && memcmp(head, path, sizeof path - 1) == 0) {
		metrics_render(b, &body);
		snprintf(line, sizeof line, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; "
		         "version=0.0.4\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		         buf_len(&body));
	} else {
		buf_append(&body, "only /metrics here\n", 19);
		snprintf(line, sizeof line, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
		         "Content-Length: %zu\r\nConnection: close\r\n\r\n", buf_len(&body));
	}
	buf_append(reply, line, strlen(line));
	buf_append(reply, buf_data(&body), buf_len(&body));
	buf_free(&body);
}
