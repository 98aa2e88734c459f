/*
 * TLS for the https edge (expose-edge-tls, the edge built with this file
 * instead of notls.c; TLS is its default): the operator's certificate
 * for DOMAIN and *.DOMAIN, read for every connection (so a renewed
 * certificate serves the next one), TLS 1.2 and 1.3 only, ALPN
 * http/1.1, SNI checked against the domain, and session tickets sealed
 * with keys shared by every edge process so that visitors resume on any.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "edge.h"
#include "host.h"
#include "log.h"
#include "ticketkeys.h"

/* TLS 1.2 suites: forward secret AEADs only (1.3 has its own list). */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static struct ticket_keys tickets;

static void
log_ssl(const char *what)
{
	unsigned long err = ERR_get_error();
	char text[256] = "no detail";

	if (err)
		ERR_error_string_n(err, text, sizeof text);
	log_err("tls: %s: %s", what, text);
	ERR_clear_error();
}

/* The SNI name must be the domain or one label under it. */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	struct edge *e = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const char *domain = e->cfg->set.domain;
	char name[NAME_MAX_BYTES + 1];

	/* No name: Host still routes (and must match the certificate's name). */
	if (sni == NULL || host_is_address(sni))   /* some clients send an address */
		return SSL_TLSEXT_ERR_OK;
	if (strcasecmp(sni, domain) == 0)
		return SSL_TLSEXT_ERR_OK;
	if (host_parse(sni, strlen(sni), domain, name, sizeof name) != HOST_OK) {
		log_info("tls refused addr=%s sni=\"%.*s\": not a name under %s", e->peer,
		         (int)strcspn(sni, "\"\\"), sni, domain);
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	snprintf(e->sni, sizeof e->sni, "%s", name);
	return SSL_TLSEXT_ERR_OK;
}

static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
        const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "\x08http/1.1";

	if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof http11 - 1,
	                          in, inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;    /* no ALPN: HTTP/1.1 all the same */
}

/* Seals new tickets with the first key; opens old ones with any. */
static int
on_ticket(SSL *ssl, unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX *cipher,
          EVP_MAC_CTX *mac, int enc)
{
	const struct ticket_key *k = NULL;
	OSSL_PARAM params[3];
	int i;

	if (enc) {
		k = &tickets.k[0];
		if (RAND_bytes(iv, 16) != 1)
			return -1;
		memcpy(name, k->name, TICKET_NAME_BYTES);
	} else {
		for (i = 0; i < tickets.n && k == NULL; i++)
			if (memcmp(name, tickets.k[i].name, TICKET_NAME_BYTES) == 0)
				k = &tickets.k[i];
		if (k == NULL)
			return 0;    /* unknown or retired key: a full handshake */
	}
	params[0] = OSSL_PARAM_construct_octet_string("key", (void *)(uintptr_t)k->hmac,
	                                              TICKET_SECRET_BYTES);
	params[1] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(mac, params))
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ? 1 : -1;
	if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
		return -1;
	/* 2: resume, and issue a fresh ticket.  Always: without it TLS 1.3 sends
	 * none, and clients that use a ticket once (browsers) would make every
	 * other connection a full handshake. */
	return 2;
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

static SSL_CTX *
context(struct edge *e)
{
	const struct settings *s = &e->cfg->set;
	char path[SETTINGS_PATH_BYTES + 16];
	const char *why = NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A write that must be retried may come from a queue that has moved
	 * (compacted or grown) since: OpenSSL must not insist on the pointer. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                    SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1) {
		log_ssl(s->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, s->key[0] ? s->key : s->cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl(s->key[0] ? s->key : s->cert);
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, e);
	SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	settings_ticket_keys(s, path, sizeof path);
	if (ticket_keys_load(path, 0, &tickets, &why) == 0) {
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
	} else {
		/* Still serve; resumption only works within one process then. */
		log_warn("ticket-keys %s: %s; sessions will not resume across edges", path, why);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_start(struct edge *e)
{
	if (e->cfg->set.cert[0] == '\0') {
		log_err("--tls needs a certificate: set cert (and key) in expose.conf");
		return -1;
	}
	e->tls_ctx = context(e);
	if (e->tls_ctx == NULL)
		return -1;
	e->tls = SSL_new(e->tls_ctx);
	if (e->tls == NULL || SSL_set_fd(e->tls, e->in_fd) != 1) {
		log_ssl("cannot start a session");
		return -1;
	}
	return 0;
}

/* The handshake, under the head deadline: 0 done, -1 failed or too slow. */
int
tls_handshake(struct edge *e)
{
	struct pollfd pfd = { .fd = e->in_fd };
	int64_t deadline = clock_ms() + e->cfg->set.head_timeout_ms, left;
	int rc, err;

	for (;;) {
		ERR_clear_error();
		rc = SSL_accept(e->tls);
		if (rc == 1)
			return 0;
		err = SSL_get_error(e->tls, rc);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			const char *why = ERR_reason_error_string(ERR_peek_last_error());
			log_info("tls handshake failed addr=%s reason=\"%s\"", e->peer,
			         why ? why : "the visitor closed");
			ERR_clear_error();
			return -1;
		}
		left = deadline - clock_ms();
		if (left <= 0) {
			log_info("tls handshake timed out addr=%s", e->peer);
			return -1;
		}
		pfd.events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}

/* An SSL_read or SSL_write result as read(2) or write(2) would give it:
 * >0 bytes, 0 at a clean end (reads), -1 with errno EAGAIN to wait, or
 * ECONNRESET (reads) or EPIPE (writes) when the connection failed. */
static ssize_t
as_syscall(struct edge *e, int rc, bool reading)
{
	int err;

	if (rc > 0)
		return rc;
	err = SSL_get_error(e->tls, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (err == SSL_ERROR_ZERO_RETURN && reading)
		return 0;
	errno = reading ? ECONNRESET : EPIPE;
	return -1;
}

ssize_t
tls_read(struct edge *e, void *p, size_t n)
{
	ERR_clear_error();
	return as_syscall(e, SSL_read(e->tls, p, (int)n), true);
}

ssize_t
tls_write(struct edge *e, const void *p, size_t n)
{
	ERR_clear_error();
	return as_syscall(e, SSL_write(e->tls, p, (int)n), false);
}

/* Decrypted bytes waiting inside OpenSSL, which poll() cannot see. */
int
tls_pending(const struct edge *e)
{
	return e->tls && SSL_pending(e->tls) > 0;
}

/* close_notify, before the TCP FIN: the visitor can tell an end from a cut. */
void
tls_notify_close(struct edge *e)
{
	if (e->tls && !(SSL_get_shutdown(e->tls) & SSL_SENT_SHUTDOWN)) {
		ERR_clear_error();
		SSL_shutdown(e->tls);
		ERR_clear_error();
	}
}

void
tls_close(struct edge *e)
{
	if (e->tls) {
		tls_notify_close(e);
		SSL_free(e->tls);
		e->tls = NULL;
	}
	SSL_CTX_free(e->tls_ctx);
	e->tls_ctx = NULL;
	ticket_keys_wipe(&tickets);
}
