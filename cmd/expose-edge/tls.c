/*
 * TLS for the https edge (expose-edge-tls, the edge built with this file
 * instead of notls.c; TLS is its default), on GnuTLS: the operator's
 * certificate for DOMAIN and *.DOMAIN, read for every connection (so a
 * renewed certificate serves the next one), TLS 1.2 and 1.3 only,
 * forward-secret AEAD suites only, ALPN http/1.1, SNI checked against the
 * domain, and session tickets sealed with a key shared by every edge
 * process so that visitors resume on any.
 *
 * GnuTLS because this process starts once per connection: its set-up
 * costs a fraction of OpenSSL's (make bench, tests/bench/edge_instructions.sh).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "edge.h"
#include "host.h"
#include "log.h"
#include "ticketkeys.h"

/*
 * GnuTLS's SECURE, narrowed to what the edge offers: TLS 1.3 and 1.2, AEAD
 * suites only (no MAC but AEAD leaves no other), AES-GCM and ChaCha20
 * (not CCM), forward-secret key exchange only (ECDHE; TLS 1.3's is
 * always), in the server's order.  Key exchange groups: X25519 first.
 * Browsers and OpenSSL send a key share for X25519 alone, and the server
 * picks its first group the visitor supports: with GnuTLS's default order
 * (P-256 first) every such visitor was asked again (a HelloRetryRequest),
 * one more round trip and a slower exchange on every new connection.
 * The other groups are SECURE's, in its order, for visitors that offer
 * no X25519.  The operator's policy is GnuTLS's system-wide file
 * (gnutls_get_system_config_file()): what its
 * [overrides] section disables, GnuTLS takes from this list too.  Not
 * @SYSTEM: Debian ships no such file, and GnuTLS cannot tell an undefined
 * @SYSTEM from a broken one, so there would be a silent fallback.
 */
#define TLS_PRIORITY "SECURE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-MAC-ALL:+AEAD:" \
	"-AES-128-CCM:-AES-256-CCM:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:" \
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:" \
	"+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:" \
	"+GROUP-FFDHE8192:%SERVER_PRECEDENCE"
/* The longest SNI name we read: a DNS name is at most 253 bytes. */
#define TLS_SNI_MAX_BYTES 256

/* A public key's ID: SHA-256. */
#define TLS_KEY_ID_BYTES 32

static const char TLS_ALPN[] = "http/1.1";

static struct ticket_keys tickets_shared;    /* wiped at the close */

/* The SNI name must be the domain or one label under it. */
static int
on_client_hello(gnutls_session_t session)
{
	struct edge *e = gnutls_session_get_ptr(session);
	const char *domain = e->cfg->set.domain;
	char sni[TLS_SNI_MAX_BYTES], name[NAME_MAX_BYTES + 1];
	size_t len = sizeof sni;
	unsigned int type;
	int rc = gnutls_server_name_get(session, sni, &len, &type, 0);

	/* No name: Host still routes (and must match the certificate's name). */
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (rc < 0 || type != GNUTLS_NAME_DNS)
		snprintf(sni, sizeof sni, "(not a name of at most %d bytes)", TLS_SNI_MAX_BYTES - 1);
	else if (host_is_address(sni) || strcasecmp(sni, domain) == 0)
		return 0;    /* some clients send an address */
	else if (host_parse(sni, strlen(sni), domain, name, sizeof name) == HOST_OK) {
		snprintf(e->sni, sizeof e->sni, "%s", name);
		return 0;
	}
	log_info("tls refused addr=%s sni=\"%.*s\": not a name under %s", e->peer,
	         (int)strcspn(sni, "\"\\"), sni, domain);
	return GNUTLS_E_UNRECOGNIZED_NAME;    /* its alert: unrecognized_name */
}

bool
tls_built(void)
{
	return true;
}

int
tls_handover(char **argv)
{
	return 0;
}

/* The chain and its key, found to belong together by their public keys'
 * IDs: GnuTLS's own check (a signature made and verified) would be a
 * third of this process's set-up.  -1 with the file logged. */
static int
load_pair(gnutls_certificate_credentials_t cred, const char *cert, const char *key)
{
	gnutls_datum_t pem[2] = { { NULL, 0 }, { NULL, 0 } };
	unsigned char id[2][TLS_KEY_ID_BYTES];
	size_t idlen[2] = { sizeof id[0], sizeof id[1] };
	gnutls_x509_crt_t *chain = NULL;
	gnutls_x509_privkey_t pk = NULL;
	const char *file = cert;
	unsigned int n = 0, i;
	int rc;

	if ((rc = gnutls_load_file(cert, &pem[0])) < 0 ||
	    (rc = gnutls_x509_crt_list_import2(&chain, &n, &pem[0], GNUTLS_X509_FMT_PEM, 0)) < 0 ||
	    (rc = gnutls_x509_crt_get_key_id(chain[0], GNUTLS_KEYID_USE_SHA256, id[0],
	                                     &idlen[0])) < 0)
		goto done;
	file = key;
	if ((rc = gnutls_load_file(key, &pem[1])) < 0 ||
	    (rc = gnutls_x509_privkey_init(&pk)) < 0 ||
	    (rc = gnutls_x509_privkey_import2(pk, &pem[1], GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
	    (rc = gnutls_x509_privkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA256, id[1],
	                                         &idlen[1])) < 0)
		goto done;
	if (idlen[0] != idlen[1] || memcmp(id[0], id[1], idlen[0]) != 0) {
		rc = GNUTLS_E_CERTIFICATE_KEY_MISMATCH;
		goto done;
	}
	gnutls_certificate_set_flags(cred, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	rc = gnutls_certificate_set_x509_key(cred, chain, n, pk);    /* copies them */
done:
	if (rc < 0)
		log_err("tls: %s: %s", file, gnutls_strerror(rc));
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	gnutls_free(chain);
	gnutls_x509_privkey_deinit(pk);
	gnutls_free(pem[0].data);
	if (pem[1].data)
		gnutls_memset(pem[1].data, 0, pem[1].size);
	gnutls_free(pem[1].data);
	return rc < 0 ? -1 : 0;
}

static int
credentials(struct edge *e)
{
	const struct settings *s = &e->cfg->set;
	int rc = gnutls_certificate_allocate_credentials(&e->tls_cred);

	if (rc < 0) {
		log_err("tls: %s", gnutls_strerror(rc));
		return -1;
	}
	return load_pair(e->tls_cred, s->cert, s->key[0] ? s->key : s->cert);
}

/* Tickets sealed with the shared key; without it none (a full handshake
 * every time).  0 or GNUTLS_NO_TICKETS, gnutls_init's flag. */
static unsigned int
tickets(struct edge *e)
{
	char path[SETTINGS_PATH_BYTES + 16];
	const char *why = NULL;

	settings_ticket_keys(&e->cfg->set, path, sizeof path);
	if (ticket_keys_load(path, 0, &tickets_shared, &why) == 0)
		return 0;
	log_warn("ticket-keys %s: %s; sessions will not resume", path, why);
	return GNUTLS_NO_TICKETS;
}

static int
session(struct edge *e)
{
	static const gnutls_datum_t alpn = { (unsigned char *)TLS_ALPN, sizeof TLS_ALPN - 1 };
	const gnutls_datum_t key = { tickets_shared.key, sizeof tickets_shared.key };
	unsigned int flags = GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | tickets(e);
	const char *at = NULL;
	int rc;

	rc = gnutls_init(&e->tls, flags);
	if (rc < 0)
		goto fail;
	rc = gnutls_priority_set_direct(e->tls, TLS_PRIORITY, &at);
	if (rc < 0) {
		log_err("tls: priorities at \"%s\": %s (check GnuTLS's system-wide file %s)",
		        at ? at : "", gnutls_strerror(rc), gnutls_get_system_config_file());
		return -1;
	}
	if ((rc = gnutls_credentials_set(e->tls, GNUTLS_CRD_CERTIFICATE, e->tls_cred)) < 0 ||
	    (rc = gnutls_alpn_set_protocols(e->tls, &alpn, 1, GNUTLS_ALPN_SERVER_PRECEDENCE)) < 0)
		goto fail;
	if (!(flags & GNUTLS_NO_TICKETS) &&
	    (rc = gnutls_session_ticket_enable_server(e->tls, &key)) < 0)
		goto fail;
	e->tls_closed = true;    /* until the handshake is done */
	gnutls_session_set_ptr(e->tls, e);
	gnutls_handshake_set_post_client_hello_function(e->tls, on_client_hello);
	gnutls_transport_set_int2(e->tls, e->in_fd, e->out_fd);
	return 0;
fail:
	log_err("tls: cannot start a session: %s", gnutls_strerror(rc));
	return -1;
}

int
tls_start(struct edge *e)
{
	if (e->cfg->set.cert[0] == '\0') {
		log_err("--tls needs a certificate: set cert (and key) in expose.conf");
		return -1;
	}
	if (credentials(e) == -1 || session(e) == -1)
		return -1;
	return 0;
}

static void
handshake_failed(struct edge *e, int rc)
{
	const char *why = rc == GNUTLS_E_PREMATURE_TERMINATION ? "the visitor closed" :
	                  gnutls_strerror(rc);

	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		why = gnutls_alert_get_name(gnutls_alert_get(e->tls));
	log_info("tls handshake failed addr=%s reason=\"%s\"", e->peer, why ? why : "unknown");
	gnutls_alert_send_appropriate(e->tls, rc);    /* no alert for some: that is fine */
}

/* The handshake, under the head deadline: 0 done, -1 failed or too slow. */
int
tls_handshake(struct edge *e)
{
	struct pollfd pfd;
	int64_t deadline = clock_ms() + e->cfg->set.head_timeout_ms, left;
	int rc;

	for (;;) {
		rc = gnutls_handshake(e->tls);
		if (rc == 0) {
			e->tls_closed = false;
			return 0;
		}
		if (rc == GNUTLS_E_UNRECOGNIZED_NAME) {    /* logged by on_client_hello */
			gnutls_alert_send_appropriate(e->tls, rc);
			return -1;
		}
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(rc)) {
			handshake_failed(e, rc);
			return -1;
		}
		left = deadline - clock_ms();
		if (left <= 0) {
			log_info("tls handshake timed out addr=%s", e->peer);
			return -1;
		}
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED)
			continue;    /* a warning alert, say: go on */
		pfd.fd = gnutls_record_get_direction(e->tls) ? e->out_fd : e->in_fd;
		pfd.events = gnutls_record_get_direction(e->tls) ? POLLOUT : POLLIN;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}

/* A GnuTLS record result as read(2) or write(2) would give it: >0 bytes,
 * 0 at a clean end (reads), -1 with errno EAGAIN to wait (a warning alert
 * too), or ECONNRESET (reads) or EPIPE (writes) when the connection failed
 * (a renegotiation attempt included: the edge allows none). */
static ssize_t
as_syscall(ssize_t rc, bool reading)
{
	if (rc > 0 || (rc == 0 && reading))
		return rc;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    rc == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		errno = EAGAIN;
		return -1;
	}
	errno = reading ? ECONNRESET : EPIPE;
	return -1;
}

ssize_t
tls_read(struct edge *e, void *p, size_t n)
{
	return as_syscall(gnutls_record_recv(e->tls, p, n), true);
}

/* After EAGAIN GnuTLS holds the record it made and sends that when called
 * again, whatever the arguments (the queue may have moved or grown since),
 * and answers with the length it took then. */
ssize_t
tls_write(struct edge *e, const void *p, size_t n)
{
	return as_syscall(gnutls_record_send(e->tls, p, n), false);
}

/* Decrypted bytes waiting inside GnuTLS, which poll() cannot see. */
int
tls_pending(const struct edge *e)
{
	return e->tls && gnutls_record_check_pending(e->tls) > 0;
}

/* close_notify, before the TCP FIN: the visitor can tell an end from a cut.
 * Once: the socket does not block, and a second would be an error. */
void
tls_notify_close(struct edge *e)
{
	if (e->tls && !e->tls_closed) {
		e->tls_closed = true;
		gnutls_bye(e->tls, GNUTLS_SHUT_WR);
	}
}

void
tls_close(struct edge *e)
{
	if (e->tls) {
		tls_notify_close(e);
		gnutls_deinit(e->tls);
		e->tls = NULL;
	}
	if (e->tls_cred) {
		gnutls_certificate_free_credentials(e->tls_cred);
		e->tls_cred = NULL;
	}
	ticket_keys_wipe(&tickets_shared);
}
