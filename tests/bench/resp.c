/*
 * The trivial handler of `make bench`: the floor for "a new process per
 * connection".  Started by systemd-socket-activate --inetd -a exactly as
 * expose-edge is, it reads the request head from stdin until CRLFCRLF,
 * writes a fixed 200 response (a 1 KiB body, the same size nginx serves in
 * that scenario) with Connection: close to stdout, and exits.
 *
 *   cc -O2 -o resp resp.c
 *
 * Built with -DRESP_TLS it is the same behind a TLS handshake, the floor
 * for a process per https connection, as expose-edge-tls is started:
 * GnuTLS with its default priorities (no server precedence, so a visitor's
 * X25519 key share is taken in one flight), the certificate and key from
 * PEM files with the key-certificate check skipped (as the https edge
 * does), no session tickets.  run.sh links it as the https edge is linked.
 *
 *   cc -O2 -DRESP_TLS -o resp_tls resp.c -lgnutls
 *   resp_tls CERT.pem KEY.pem
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
             "Content-Length: 1024\r\nConnection: close\r\n\r\n"
#define BODY_BYTES 1024
#define HEAD_MAX_BYTES 16384

#ifdef RESP_TLS
#include <gnutls/gnutls.h>

static gnutls_session_t tls;

static int
start(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: resp_tls CERT.pem KEY.pem\n");
		return -1;
	}
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
		goto fail;
	gnutls_certificate_set_flags(cred, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	if ((rc = gnutls_certificate_set_x509_key_file(cred, argv[1], argv[2], GNUTLS_X509_FMT_PEM)) < 0 ||
	    (rc = gnutls_init(&tls, GNUTLS_SERVER)) < 0 ||
	    (rc = gnutls_set_default_priority(tls)) < 0 ||
	    (rc = gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
		goto fail;
	gnutls_transport_set_int2(tls, 0, 1);
	do
		rc = gnutls_handshake(tls);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "resp_tls: %s\n", gnutls_strerror(rc));
	return -1;
}

static ssize_t
get(void *p, size_t n)
{
	return gnutls_record_recv(tls, p, n);
}

static ssize_t
put(const void *p, size_t n)
{
	return gnutls_record_send(tls, p, n);
}

static void
finish(void)
{
	gnutls_bye(tls, GNUTLS_SHUT_WR);
}
#else
static int
start(int argc, char **argv)
{
	(void)argv;
	return argc == 1 ? 0 : -1;
}

static ssize_t
get(void *p, size_t n)
{
	return read(0, p, n);
}

static ssize_t
put(const void *p, size_t n)
{
	return write(1, p, n);
}

static void
finish(void)
{
}
#endif

int
main(int argc, char **argv)
{
	static char out[sizeof HEAD - 1 + BODY_BYTES];
	char in[HEAD_MAX_BYTES];
	size_t have = 0, len = sizeof out, done = 0;
	ssize_t n;

	if (start(argc, argv) < 0)
		return 1;
	for (;;) {
		n = get(in + have, sizeof in - 1 - have);
		if (n <= 0)
			return 1;
		have += (size_t)n;
		in[have] = '\0';
		if (strstr(in, "\r\n\r\n"))
			break;
		if (have == sizeof in - 1)
			return 1;
	}
	memcpy(out, HEAD, sizeof HEAD - 1);
	memset(out + sizeof HEAD - 1, 'x', BODY_BYTES);
	while (done < len) {
		n = put(out + done, len - done);
		if (n <= 0)
			return 1;
		done += (size_t)n;
	}
	finish();
	return 0;
}
