/*
 * The names this client last got, so that `expose 3000` run again asks
 * for the same URL.  The file "names" beside the key holds one line a
 * tunnel, "SERVER TARGET NAME": the server as dialed (ws[s]://host:port),
 * the target as shown (localhost:3000), the name the server gave, most
 * recent first.  Targets with --name are not recorded; --new-url does not
 * ask for the remembered name (and records the new one).
 *
 * The servers given together (--server more than once) are the hosts of
 * one cluster, where a key's names are the same on every host: a line of
 * any of them is the target's name of last time, asked of whichever
 * server is dialled, and a new line replaces the lines of all of them.
 *
 * Two clients of this machine for the same server and target do not
 * take one URL from each other: each running client holds a lock (an
 * open file description lock on one byte of "names.lock", chosen by the
 * server and target, taken for each server of its list) for each of its
 * targets; a second one finds one held and takes a new name, which it
 * does not record.  A client that dies
 * lets go, so that its restart gets the URL back (the server hands a live
 * name over to the same key).
 *
 * The file is local state and is read with bounds: one larger than
 * NAMES_FILE_MAX_BYTES, or with a line that is not such a triple, gets
 * one warning naming it and is ignored (a new URL this time; the file is
 * rewritten at the next bind).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "name.h"

/* Far more than NAMES_KEEP lines need. */
#define NAMES_FILE_MAX_BYTES (64 * 1024)
#define NAMES_FILE_MAX_TEXT "64 KiB"
/* Lines kept: the tunnels of the most recent runs. */
#define NAMES_KEEP 128

/* Lock bytes are chosen among this many. */
#define NAMES_LOCK_SPAN (1LL << 40)

/* One line of the file, pointing into its text. */
struct names_line {
	const char *server, *target, *name;
	size_t server_len, target_len, name_len;
};

static bool
is_text(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return n > 0;
}

/* "SERVER TARGET NAME": the target may hold spaces (a unix: path). */
static int
split(const char *p, size_t n, struct names_line *l)
{
	const char *first = memchr(p, ' ', n), *last = first;
	const char *q;
	char name[NAME_MAX_BYTES + 1];

	if (first == NULL || !is_text(p, n))
		return -1;
	for (q = first; q < p + n; q++)
		if (*q == ' ')
			last = q;
	l->server = p;
	l->server_len = (size_t)(first - p);
	l->target = first + 1;
	l->target_len = last > first ? (size_t)(last - first - 1) : 0;
	l->name = last + 1;
	l->name_len = (size_t)(p + n - l->name);
	if (l->server_len == 0 || l->server_len > IDENTITY_SERVER_MAX_BYTES ||
	    l->target_len == 0 || l->target_len >= TARGET_HOST_BYTES + 8 ||
	    l->name_len == 0 || l->name_len > NAME_MAX_BYTES ||
	    (strncmp(p, "ws://", 5) != 0 && strncmp(p, "wss://", 6) != 0))
		return -1;
	memcpy(name, l->name, l->name_len);
	name[l->name_len] = '\0';
	return name_is_valid(name) ? 0 : -1;
}

/* Whether l is target's line for one of c's servers. */
static bool
line_is(const struct names_line *l, const struct client *c, const char *target)
{
	return servers_has_dialed(c, l->server, l->server_len) &&
	       l->target_len == strlen(target) && memcmp(l->target, target, l->target_len) == 0;
}

/* A file beside the key. */
static int
names_path(char *out, size_t size, const char *file)
{
	char *slash;

	if (identity_default_path(out, size) == -1 || (slash = strrchr(out, '/')) == NULL ||
	    (size_t)(slash - out) + 1 + strlen(file) + 1 > size)
		return -1;
	slash[1] = '\0';
	strcat(out, file);
	return 0;
}

/* FNV-1a of server and target: where t's lock byte is. */
static off_t
lock_offset(const char *server, const char *target)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[] = { server, "\n", target }, *p;
	size_t i;

	for (i = 0; i < sizeof parts / sizeof parts[0]; i++)
		for (p = parts[i]; *p; p++)
			h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	return (off_t)(h % (uint64_t)NAMES_LOCK_SPAN);
}

/* Sets (F_WRLCK) or lets go of (F_UNLCK) the lock byte of server and target. */
static int
lock_one(struct client *c, const char *server, const char *target, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_len = 1 };

	fl.l_start = lock_offset(server, target);
	return fcntl(c->names_lock_fd, F_OFD_SETLK, &fl);
}

/* Takes t's locks, one for each server, for as long as this client runs:
 * 1 taken, 0 another client holds one (none kept), -1 locks cannot be
 * had here (then names are kept as if taken: one client at a time is the
 * common case). */
static int
lock_target(struct client *c, struct target *t)
{
	char path[4096];
	int i, j;

	if (c->names_lock_fd == -1) {
		if (names_path(path, sizeof path, "names.lock") == -1)
			return -1;
		c->names_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (c->names_lock_fd == -1)
			return -1;
	}
	for (i = 0; i < c->nservers; i++) {
		if (lock_one(c, c->servers[i].dialed, t->label, F_WRLCK) == 0)
			continue;
		if (errno != EAGAIN && errno != EACCES)
			return -1;
		for (j = 0; j < i; j++)
			lock_one(c, c->servers[j].dialed, t->label, F_UNLCK);
		return 0;
	}
	return 1;
}

/* The file's text, NUL-ended, or NULL: absent (quietly) or unusable (one
 * warning).  The caller frees it. */
static char *
read_names(const char *path, bool warn)
{
	struct stat st;
	char *text = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	const char *why = NULL;

	if (fd == -1) {
		if (errno != ENOENT)
			why = strerror(errno);
	} else if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		why = "not a regular file";
	} else if (st.st_size > NAMES_FILE_MAX_BYTES) {
		why = "over " NAMES_FILE_MAX_TEXT;
	} else if ((text = malloc(NAMES_FILE_MAX_BYTES + 1)) == NULL) {
		why = "out of memory";
	} else if ((n = read(fd, text, NAMES_FILE_MAX_BYTES + 1)) < 0 ||
	           n > NAMES_FILE_MAX_BYTES) {
		why = n < 0 ? strerror(errno) : "over " NAMES_FILE_MAX_TEXT;
	} else {
		text[n] = '\0';
		if (memchr(text, '\0', (size_t)n))
			why = "holds a NUL byte";
	}
	if (fd != -1)
		close(fd);
	if (why) {
		if (warn)
			log_warn("names file %s: %s; ignoring it (new URLs this time)", path, why);
		free(text);
		return NULL;
	}
	return text;
}

/* Calls fn for each line; -1 (and a warning) at the first bad one. */
static int
each_line(const char *path, const char *text, bool warn,
          void (*fn)(const struct names_line *l, void *ctx), void *ctx)
{
	const char *p = text, *nl;
	struct names_line l;
	int lineno = 1;

	for (; *p; p = nl + 1, lineno++) {
		nl = strchr(p, '\n');
		if (nl == NULL || split(p, (size_t)(nl - p), &l) == -1) {
			if (warn)
				log_warn("names file %s: line %d is not 'SERVER TARGET NAME'; ignoring "
				         "the file (new URLs this time)", path, lineno);
			return -1;
		}
		fn(&l, ctx);
	}
	return 0;
}

static void
remember(const struct names_line *l, void *ctx)
{
	struct client *c = ctx;
	struct target *t;
	int i;

	for (i = 0; i < c->ntargets; i++) {
		t = &c->targets[i];
		if (t->want[0] || t->remembered[0] || !line_is(l, c, t->label))
			continue;
		if (t->name_shared) {
			log_info("%s: another expose on this machine has its URL of last time; "
			         "this one gets a new URL", t->label);
			continue;
		}
		memcpy(t->remembered, l->name, l->name_len);
		t->remembered[l->name_len] = '\0';
	}
}

void
names_load(struct client *c)
{
	char path[4096], *text;
	int i;

	for (i = 0; i < c->ntargets; i++)
		c->targets[i].name_shared = c->targets[i].want[0] == '\0' &&
		                            lock_target(c, &c->targets[i]) == 0;
	if (c->new_url || names_path(path, sizeof path, "names") == -1 ||
	    (text = read_names(path, true)) == NULL)
		return;
	if (each_line(path, text, true, remember, c) == -1)
		for (i = 0; i < c->ntargets; i++)
			c->targets[i].remembered[0] = '\0';
	free(text);
}

struct rewrite {
	FILE *f;
	const struct client *c;
	const char *target;
	int kept;
};

static void
keep_other(const struct names_line *l, void *ctx)
{
	struct rewrite *w = ctx;

	if (w->kept >= NAMES_KEEP || line_is(l, w->c, w->target))
		return;
	fprintf(w->f, "%.*s %.*s %.*s\n", (int)l->server_len, l->server, (int)l->target_len,
	        l->target, (int)l->name_len, l->name);
	w->kept++;
}

static void
check_only(const struct names_line *l, void *ctx)
{
	(void)l;
	(void)ctx;
}

void
names_save(struct client *c, const struct target *t)
{
	char path[4096], tmp[4096 + 16], *text;
	struct rewrite w = { .c = c, .target = t->label, .kept = 1 };
	int fd, rc;

	if (t->want[0] || t->name_shared || strchr(t->label, '\n') ||
	    names_path(path, sizeof path, "names") == -1)
		return;
	snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1 || (w.f = fdopen(fd, "w")) == NULL) {
		log_warn("names file %s: cannot write %s: %s", path, tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	fprintf(w.f, "%s %s %s\n", c->dialed, t->label, t->name);
	/* What is unusable was said at the start: it is replaced. */
	if ((text = read_names(path, false)) != NULL) {
		if (each_line(path, text, false, check_only, NULL) == 0)
			each_line(path, text, false, keep_other, &w);
		free(text);
	}
	rc = fflush(w.f) | fsync(fd);
	if (fclose(w.f) != 0 || rc != 0 || rename(tmp, path) == -1) {
		log_warn("names file %s: cannot write it: %s", path, strerror(errno));
		unlink(tmp);
	}
}
