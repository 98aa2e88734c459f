/*
 * Reload (SIGHUP, systemctl reload, exposectl reload): expose.conf,
 * authorized_keys and the certificate read again, every tunnel kept.  A
 * bad file changes nothing; a key read only at start keeps its running
 * value and the log says so.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "conf.h"
#include "log.h"

/* What the broker takes in only at start: a reload that changes one of
 * these keeps the running value and says a restart is needed.  Every other
 * key applies at reload (the edges read expose.conf on each connection). */
static const char *const restart_keys[] = {
	"domain", "public-port", "scheme", "listen", "socket", "registry", "control",
	"metrics", "ping-interval", "auth-key", "ticket-keys", "cert", "key",
	"https-port", "http-port",
	"etcd-endpoints", "host-name", "cluster-lease-ttl", "peer-listen", "peers", "host-key",
};
/* All settings as "key = value" lines, for comparing two versions. */
#define SETTINGS_TEXT_BYTES 8192

/* settings_print's lines, into text (NUL-terminated). */
static int
settings_text(const struct settings *set, char *text, size_t size)
{
	int p[2];
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	settings_print(set, p[1]);
	close(p[1]);
	n = read(p[0], text, size - 1);
	close(p[0]);
	text[n > 0 ? n : 0] = '\0';
	return n > 0 ? 0 : -1;
}

/* The value of key in settings_text's lines, or NULL. */
static const char *
text_value(const char *text, const char *key, char *out, size_t size)
{
	size_t n = strlen(key);
	const char *p = text;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, n) == 0 && strncmp(p + n, " = ", 3) == 0) {
			snprintf(out, size, "%.*s", (int)strcspn(p + n + 3, "\n"), p + n + 3);
			return out;
		}
	return NULL;
}

/* The restart-only keys of next back to the running values, each said. */
static void
keep_restart_keys(const struct settings *now, struct settings *next)
{
	static char was[SETTINGS_TEXT_BYTES], will[SETTINGS_TEXT_BYTES];
	char a[SETTINGS_PATH_BYTES + 64], c[SETTINGS_PATH_BYTES + 64], why[128];
	size_t i;

	if (settings_text(now, was, sizeof was) == -1 ||
	    settings_text(next, will, sizeof will) == -1) {
		*next = *now;
		return;
	}
	for (i = 0; i < sizeof restart_keys / sizeof restart_keys[0]; i++) {
		const char *k = restart_keys[i];
		if (!text_value(was, k, a, sizeof a) || !text_value(will, k, c, sizeof c) ||
		    strcmp(a, c) == 0)
			continue;
		log_warn("reload: %s changed to '%s': it applies at the next restart "
		         "(systemctl restart exposed drops every tunnel)", k, c);
		if (settings_set(next, k, a, why, sizeof why) == -1)
			*next = *now;
	}
}

static void
warn_key_line(void *ctx, const char *msg)
{
	log_warn("authorized_keys %s", msg);
}

int
broker_reload(struct broker *b, char *msg, size_t size)
{
	struct settings next;
	struct keys keys = { 0 };
	char err[CONF_ERROR_BYTES];
	const char *why = NULL;

	if (settings_build(&next, b->cfg->file, &b->cfg->flags, err, sizeof err) == -1) {
		snprintf(msg, size, "%s; still running with the previous settings", err);
		log_err("reload: %s", msg);
		return -1;
	}
	keep_restart_keys(&b->cfg->set, &next);
	if (next.authorized_keys[0] &&
	    keys_load(&keys, next.authorized_keys, warn_key_line, NULL, &why) == -1) {
		snprintf(msg, size, "authorized-keys %s: %s; still running with the previous "
		         "settings", next.authorized_keys, why);
		log_err("reload: %s", msg);
		return -1;
	}
	keys_free(&b->authorized);
	b->authorized = keys;
	b->cfg->set = next;
	ratelimit_init(&b->handshakes, (uint32_t)next.handshake_rate,
	               (uint32_t)next.handshake_burst);
	if (next.cert[0])
		cert_reload(b);
	snprintf(msg, size, "reloaded %s: %s", b->cfg->file ? b->cfg->file : SETTINGS_DEFAULT_FILE,
	         next.authorized_keys[0] ? "closed server" : "open server");
	log_info("%s, %zu authorized keys", msg, b->authorized.n);
	return 0;
}
