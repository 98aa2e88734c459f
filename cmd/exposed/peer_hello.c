/*
 * The peer link's handshake (expose(7)): each side sends CHALLENGE (the
 * peer version, a fresh nonce, its host name) and proves its host key
 * with AUTH, a signature over the other side's challenge and the address
 * the dialer dialled (lib/identity's challenge form, with a version byte
 * of its own per role).  The listener speaks first; the dialer answers
 * with its CHALLENGE and AUTH; the listener checks them and sends its own
 * AUTH.  Each side accepts only a key that peer-keys lists for the host
 * name the other side gave (names=).  The signature covers the signer's
 * ephemeral key that seals the link (lib/seal), so the frames after the
 * handshake come from the host that proved its key and from nobody on
 * the path between.  A nonce serves one handshake, so a
 * recorded AUTH fails on any other connection; the dialled address is
 * signed, so a host that relays a handshake gets a signature for another.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "conf.h"
#include "log.h"
#include "peer.h"

_Static_assert(SEAL_PK_BYTES == IDENTITY_BINDING_BYTES,
               "the sealing key is what a peer's AUTH binds");

static const char *
self_name(const struct link *l)
{
	return l->ps->b->cfg->set.host_name;
}

void
hello_challenge(struct link *l)
{
	uint8_t p[1 + IDENTITY_NONCE_BYTES + CLUSTER_HOST_BYTES];
	size_t n;

	identity_random(l->nonce, sizeof l->nonce);
	n = proto_challenge_encode(p, sizeof p, PEER_VERSION, l->nonce, self_name(l));
	mux_control(&l->mux, FRAME_CHALLENGE, 0, p, n);
}

/* Is pk peer-keys' key for host?  NULL if so, else why not. */
static const char *
key_for(struct link *l, const uint8_t pk[IDENTITY_PK_BYTES], const char *host)
{
	static char why[SETTINGS_PATH_BYTES + 2 * IDENTITY_PK_TEXT_BYTES + 160];
	const struct broker *b = l->ps->b;
	const struct key_entry *e;
	char text[IDENTITY_PK_TEXT_BYTES];
	const char *err = NULL;

	if (keys_refresh(&l->ps->keys, b->cfg->set.peer_keys, peer_keys_warn, NULL, &err) == -1)
		log_warn("peer-keys %s: %s (the last one read still counts)",
		         b->cfg->set.peer_keys, err);
	e = keys_find(&l->ps->keys, pk);
	if (e && conf_list_has(e->names, host))
		return NULL;
	identity_pk_text(pk, text);
	snprintf(why, sizeof why, "key of host %s not in peer-keys %s%s (if it is that "
	         "host's, add the line: names=%s %s)", host, b->cfg->set.peer_keys,
	         e ? " for that host" : "", host, text);
	return why;
}

/* CHALLENGE: the other side's nonce and host name. */
static int
on_challenge(struct link *l, const uint8_t *p, size_t len)
{
	struct proto_challenge c;

	if (l->got_challenge || proto_challenge_decode(p, len, &c) == -1 ||
	    !proto_text_ok(c.server) || strlen(c.server) >= sizeof l->their_name ||
	    c.server[0] == '\0')
		return -1;
	if (c.version != PEER_VERSION) {
		link_refuse(l, "-", "this host speaks another peer protocol version");
		return -1;
	}
	l->got_challenge = true;
	memcpy(l->their_nonce, c.nonce, sizeof c.nonce);
	memcpy(l->their_name, c.server, strlen(c.server) + 1);    /* length checked */
	if (l->peer && strcmp(l->their_name, l->peer->name) != 0) {
		link_refuse(l, "-", "the host at this address gave another host name");
		return -1;
	}
	return 0;
}

/* Our AUTH: our key and our signature over their challenge. */
static void
send_auth(struct link *l, uint8_t role)
{
	uint8_t sig[IDENTITY_SIG_BYTES];
	uint8_t p[IDENTITY_PK_BYTES + IDENTITY_SIG_BYTES + IDENTITY_BINDING_BYTES +
	          PROTO_DIALED_BYTES];
	struct identity_challenge ch = {
		.version = role, .nonce = l->their_nonce, .server = l->their_name,
		.dialed = l->dialed, .binding = l->seal.pk,
	};

	if (identity_sign_challenge(&l->ps->id, &ch, sig) == -1)
		return;
	mux_control(&l->mux, FRAME_AUTH, 0, p,
	            proto_auth_encode(p, sizeof p, l->ps->id.pk, sig, l->seal.pk, l->dialed));
}

static void
link_up(struct link *l, const uint8_t pk[IDENTITY_PK_BYTES])
{
	identity_fingerprint(pk, l->fp);
	memset(l->nonce, 0, sizeof l->nonce);
	l->up = true;
	lws_set_timeout(l->wsi, NO_PENDING_TIMEOUT, 0);
	if (l->peer) {
		l->peer->backoff_ms = PEER_REDIAL_MIN_MS;
		l->peer->quiet = false;
	}
	log_info("peer link up host=%s addr=%s key=%s dir=%s", l->their_name, l->addr,
	         l->fp, l->peer ? "out" : "in");
}

/* AUTH: the other side's key and its signature over our challenge. */
static int
on_auth(struct link *l, const uint8_t *p, size_t len)
{
	struct proto_auth a;
	struct identity_challenge ch;
	char fp[IDENTITY_FP_BYTES];
	const char *why;

	if (!l->got_challenge || proto_auth_decode(p, len, &a) == -1)
		return -1;
	ch = (struct identity_challenge){
		.version = l->peer ? PEER_SIGN_LISTENER : PEER_SIGN_DIALER,
		.nonce = l->nonce, .server = self_name(l), .dialed = a.dialed,
		.binding = l->seal.their_pk,
	};
	identity_fingerprint(a.pk, fp);
	if (strcmp(a.dialed, l->dialed) != 0) {
		link_refuse(l, fp, "signed for another address than this link's: "
		                   "a host between us relayed it?");
		return -1;
	}
	if (sodium_memcmp(a.binding, l->seal.their_pk, SEAL_PK_BYTES) != 0) {
		link_refuse(l, fp, "signed for another sealing key than this link's: "
		                   "a host between us relayed it?");
		return -1;
	}
	if (identity_verify_challenge(a.pk, &ch, a.sig) == -1) {
		link_refuse(l, fp, "the signature does not verify (a replayed or forged "
		                   "handshake)");
		return -1;
	}
	if ((why = key_for(l, a.pk, l->their_name)) != NULL) {
		link_refuse(l, fp, why);
		return -1;
	}
	if (l->peer == NULL)
		send_auth(l, PEER_SIGN_LISTENER);
	link_up(l, a.pk);
	return 0;
}

int
hello_on_frame(struct link *l, uint8_t type, const uint8_t *p, size_t len)
{
	switch (type) {
	case FRAME_CHALLENGE:
		if (on_challenge(l, p, len) == -1)
			return -1;
		if (l->peer) {
			/* The dialer answers with its own challenge and proof. */
			hello_challenge(l);
			send_auth(l, PEER_SIGN_DIALER);
		}
		return 0;
	case FRAME_AUTH:
		return on_auth(l, p, len);
	default:
		return -1;
	}
}
