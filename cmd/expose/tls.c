/*
 * TLS for a wss:// server, over the raw connection libwebsockets carries:
 * OpenSSL works on memory buffers, we move the bytes.  (libwebsockets
 * 4.1 cannot start TLS on a raw client connection: it tries before the
 * TCP connect completes.)  The server's certificate is checked against
 * the system's store, or --ca, and its name against the server's host;
 * there is no way to skip the check.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client.h"
#include "log.h"

/* Ciphertext moved from OpenSSL to the socket per write. */
#define TLS_OUT_BYTES (64 * 1024)

struct link_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in;      /* from the socket, for OpenSSL */
	BIO *out;     /* from OpenSSL, for the socket */
	bool ready;   /* the handshake is done */
};

static struct link_tls tls;

void
link_tls_free(void)
{
	if (tls.ssl)
		SSL_free(tls.ssl);    /* frees the BIOs too */
	SSL_CTX_free(tls.ctx);
	memset(&tls, 0, sizeof tls);
}

int
link_tls_start(struct client *c)
{
	link_tls_free();
	tls.ctx = SSL_CTX_new(TLS_client_method());
	if (tls.ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(tls.ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tls.ctx, SSL_VERIFY_PEER, NULL);
	if ((c->ca ? SSL_CTX_load_verify_locations(tls.ctx, c->ca, NULL) :
	     SSL_CTX_set_default_verify_paths(tls.ctx)) != 1) {
		log_err("%s: cannot load the trusted certificates", c->ca ? c->ca : "system store");
		return -1;
	}
	tls.ssl = SSL_new(tls.ctx);
	tls.in = BIO_new(BIO_s_mem());
	tls.out = BIO_new(BIO_s_mem());
	if (tls.ssl == NULL || tls.in == NULL || tls.out == NULL)
		return -1;
	SSL_set_bio(tls.ssl, tls.in, tls.out);
	SSL_set_tlsext_host_name(tls.ssl, c->server.host);
	if (SSL_set1_host(tls.ssl, c->server.host) != 1)
		return -1;
	SSL_set_connect_state(tls.ssl);
	return 0;
}

/* Moves what OpenSSL wrote to the socket. */
static int
flush(struct lws *wsi)
{
	static uint8_t out[TLS_OUT_BYTES];
	int n;

	while ((n = BIO_read(tls.out, out, sizeof out)) > 0)
		if (lws_write(wsi, out, (size_t)n, LWS_WRITE_RAW) < n)
			return -1;
	return 0;
}

/* Why the handshake failed, in words for people. */
static void
failure(struct client *c, char *why, size_t size)
{
	long v = SSL_get_verify_result(tls.ssl);
	unsigned long e = ERR_peek_last_error();

	if (v != X509_V_OK)
		snprintf(why, size, "its certificate is not trusted for %s: %s (for a private "
		         "CA give --ca FILE)", c->server.host, X509_verify_cert_error_string(v));
	else
		snprintf(why, size, "TLS with %s failed: %s", c->server.host,
		         e ? ERR_reason_error_string(e) : "the server closed the connection");
	ERR_clear_error();
}

/* Drives the handshake: 1 done, 0 more to come, -1 failed (why set). */
static int
handshake(struct client *c, struct lws *wsi, char *why, size_t size)
{
	int rc = SSL_do_handshake(tls.ssl), err;

	if (flush(wsi) == -1)
		return -1;
	if (rc == 1) {
		tls.ready = true;
		return 1;
	}
	err = SSL_get_error(tls.ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	failure(c, why, size);
	return -1;
}

int
link_tls_connected(struct client *c, struct lws *wsi, char *why, size_t size)
{
	return handshake(c, wsi, why, size) == -1 ? -1 : 0;
}

/* Ciphertext in, plaintext out through deliver(); -1 on failure. */
int
link_tls_receive(struct client *c, struct lws *wsi, const uint8_t *p, size_t n,
                 int (*deliver)(struct client *c, const uint8_t *p, size_t n),
                 char *why, size_t size)
{
	static uint8_t plain[64 * 1024];
	int rc, err;

	if (BIO_write(tls.in, p, (int)n) != (int)n)
		return -1;
	if (!tls.ready) {
		rc = handshake(c, wsi, why, size);
		if (rc <= 0)
			return rc;
		if (link_open(c, wsi) == -1)
			return -1;
	}
	for (;;) {
		rc = SSL_read(tls.ssl, plain, sizeof plain);
		if (rc > 0) {
			if (deliver(c, plain, (size_t)rc) == -1)
				return -1;
			continue;
		}
		err = SSL_get_error(tls.ssl, rc);
		if (flush(wsi) == -1)
			return -1;
		if (err == SSL_ERROR_WANT_READ)
			return 0;
		if (err == SSL_ERROR_ZERO_RETURN)
			return -1;
		failure(c, why, size);
		return -1;
	}
}

/* Plaintext to the server. */
int
link_tls_send(struct lws *wsi, const uint8_t *p, size_t n)
{
	if (SSL_write(tls.ssl, p, (int)n) != (int)n)
		return -1;
	return flush(wsi);
}
