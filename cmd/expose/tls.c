/*
 * TLS over a raw connection libwebsockets carries: OpenSSL works on
 * memory buffers, we move the bytes.  (libwebsockets 4.1 cannot start TLS
 * on a raw client connection: it tries before the TCP connect completes.)
 * Used for a wss:// server and for https:// targets.
 *
 * A server's certificate is checked against the system's store, or --ca,
 * and its name against the host; for the server there is no way to skip
 * the check.  An https target on the developer's own machine often has a
 * self-signed certificate: --local-insecure skips the check for targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client.h"
#include "host.h"
#include "log.h"

/* Ciphertext moved from OpenSSL to the socket per write. */
#define TLS_OUT_BYTES (64 * 1024)
#define TLS_PLAIN_BYTES (64 * 1024)
/* RFC 9266: the tls-exporter channel binding's label (no context). */
#define TLS_BINDING_LABEL "EXPORTER-Channel-Binding"

/* What connections trust: made once (loading the CA store costs ~20 ms),
 * shared by every connection to the server or to https targets. */
struct tls_trust {
	SSL_CTX *ctx;
	bool verify;
};

struct tls_conn {
	SSL *ssl;
	bool ready;           /* the handshake is done */
	bool verify;          /* its certificate is checked */
	char host[256];
	const char *hint;     /* added to "not trusted" failures */
};

struct tls_trust *
tls_trust_new(const char *ca, bool verify, const char **why)
{
	struct tls_trust *tr = calloc(1, sizeof *tr);

	*why = "out of memory";
	if (tr == NULL || (tr->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	tr->verify = verify;
	SSL_CTX_set_min_proto_version(tr->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tr->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (verify && (ca ? SSL_CTX_load_verify_locations(tr->ctx, ca, NULL) :
	               SSL_CTX_set_default_verify_paths(tr->ctx)) != 1) {
		*why = "cannot load the trusted certificates";
		goto fail;
	}
	return tr;
fail:
	tls_trust_free(tr);
	return NULL;
}

void
tls_trust_free(struct tls_trust *tr)
{
	if (tr == NULL)
		return;
	SSL_CTX_free(tr->ctx);
	free(tr);
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);    /* frees its BIOs too */
	free(t);
}

/* Names (or addresses) the certificate must carry. */
static int
expect_peer(SSL *ssl, const char *host)
{
	if (host_is_address(host))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

struct tls_conn *
tls_conn_new(struct tls_trust *tr, const char *host, const char *hint, const char **why)
{
	struct tls_conn *t = calloc(1, sizeof *t);
	BIO *in, *out;

	*why = "out of memory";
	if (t == NULL || (t->ssl = SSL_new(tr->ctx)) == NULL)
		goto fail;
	snprintf(t->host, sizeof t->host, "%s", host);
	t->hint = hint ? hint : "";
	t->verify = tr->verify;
	in = BIO_new(BIO_s_mem());       /* from the socket, for OpenSSL */
	out = BIO_new(BIO_s_mem());      /* from OpenSSL, for the socket */
	if (in == NULL || out == NULL) {
		BIO_free(in);
		BIO_free(out);
		goto fail;
	}
	SSL_set_bio(t->ssl, in, out);
	if (!host_is_address(host) && SSL_set_tlsext_host_name(t->ssl, host) != 1)
		goto fail;
	if (tr->verify && expect_peer(t->ssl, host) == -1)
		goto fail;
	SSL_set_connect_state(t->ssl);
	return t;
fail:
	tls_conn_free(t);
	return NULL;
}

/* Moves what OpenSSL wrote to the socket. */
static int
flush(struct tls_conn *t, struct lws *wsi)
{
	static uint8_t out[TLS_OUT_BYTES];
	int n;

	while ((n = BIO_read(SSL_get_wbio(t->ssl), out, sizeof out)) > 0)
		if (lws_write(wsi, out, (size_t)n, LWS_WRITE_RAW) < n)
			return -1;
	return 0;
}

/* Why the handshake failed, in words for people. */
static void
failure(struct tls_conn *t, char *why, size_t size)
{
	long v = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_last_error();

	if (t->verify && v != X509_V_OK)
		snprintf(why, size, "its certificate is not trusted for %s: %s%s", t->host,
		         X509_verify_cert_error_string(v), t->hint);
	else
		snprintf(why, size, "TLS with %s failed: %s", t->host,
		         e ? ERR_reason_error_string(e) : "the other side closed the connection");
	ERR_clear_error();
}

/* Drives the handshake: 1 done, 0 more to come, -1 failed (why set). */
static int
handshake(struct tls_conn *t, struct lws *wsi, char *why, size_t size)
{
	int rc = SSL_do_handshake(t->ssl), err;

	if (flush(t, wsi) == -1)
		return -1;
	if (rc == 1) {
		t->ready = true;
		return 1;
	}
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	failure(t, why, size);
	return -1;
}

int
tls_conn_start(struct tls_conn *t, struct lws *wsi, char *why, size_t size)
{
	return handshake(t, wsi, why, size) == -1 ? -1 : 0;
}

int
tls_conn_receive(struct tls_conn *t, struct lws *wsi, const uint8_t *p, size_t n,
                 const struct tls_sink *sink, char *why, size_t size)
{
	static uint8_t plain[TLS_PLAIN_BYTES];
	int rc, err;

	if (BIO_write(SSL_get_rbio(t->ssl), p, (int)n) != (int)n)
		return -1;
	if (!t->ready) {
		rc = handshake(t, wsi, why, size);
		if (rc <= 0)
			return rc;
		if (sink->ready && sink->ready(sink->ctx, wsi) == -1)
			return -1;
	}
	for (;;) {
		rc = SSL_read(t->ssl, plain, sizeof plain);
		if (rc > 0) {
			if (sink->data(sink->ctx, plain, (size_t)rc) == -1)
				return -1;
			continue;
		}
		err = SSL_get_error(t->ssl, rc);
		if (flush(t, wsi) == -1)
			return -1;
		if (err == SSL_ERROR_WANT_READ)
			return 0;
		if (err == SSL_ERROR_ZERO_RETURN)
			return -1;
		failure(t, why, size);
		return -1;
	}
}

int
tls_conn_send(struct tls_conn *t, struct lws *wsi, const uint8_t *p, size_t n)
{
	if (SSL_write(t->ssl, p, (int)n) != (int)n)
		return -1;
	return flush(t, wsi);
}

int
tls_conn_binding(struct tls_conn *t, uint8_t out[IDENTITY_BINDING_BYTES])
{
	if (!t->ready ||
	    SSL_export_keying_material(t->ssl, out, IDENTITY_BINDING_BYTES,
	                               TLS_BINDING_LABEL, strlen(TLS_BINDING_LABEL),
	                               NULL, 0, 0) != 1)
		return -1;
	return 0;
}
