/*
 * The broker's part of the cluster (cluster.h): a thread that owns the
 * etcd client and the lease.  Handoff: the event loop appends jobs to
 * todo under the lock and signals the thread; the thread appends each
 * finished job to done and wakes the loop with lws_cancel_service; the
 * loop takes done (cluster_poll) and answers the BINDs.  Nothing else is
 * shared: the thread never touches a session, the loop never etcd.
 *
 * A name is the broker's cluster-wide when its key CLUSTER_PREFIX NAME
 * is: created by a transaction that finds no key, or, when the key is
 * the same client key's (it reconnected here before its old broker
 * noticed), replaced by a transaction that finds it unchanged.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "cluster.h"
#include "clock.h"
#include "etcd.h"
#include "log.h"
#include "cluster_key.h"

/* After a failed grant or keep-alive, the next try comes this much later. */
#define CLUSTER_RETRY_MS 500
/* What etcd says when a put names a lease that ran out. */
#define ETCD_LEASE_GONE "requested lease not found"
/* The lease is kept alive this many times a TTL. */
#define KEEPALIVES_PER_TTL 3

enum job_kind { JOB_CLAIM, JOB_RELEASE };

struct job {
	struct job *next;
	enum job_kind kind;
	char name[NAME_MAX_BYTES + 1];
	int64_t session;
	uint32_t index;
	int created;
	char owner[IDENTITY_PK_TEXT_BYTES];   /* the client's key */
	char *value;          /* claim: the key's value */
	char *bound;          /* claim: BOUND's payload, sent on success */
	size_t bound_len;
	int result;           /* claim: 1 the name is ours, 0 taken, -1 etcd failed */
	char why[ETCD_WHY_BYTES];
};

/* A name this broker holds, with its value: put again under a new lease
 * if the old one ran out while etcd was unreachable. */
struct held {
	struct map_node node;
	char name[NAME_MAX_BYTES + 1];
	char *value;
};

/* A write whose outcome etcd did not tell (a timeout while it had no
 * leader: the write may still commit later), or a delete that failed: the
 * key is deleted if it still holds value, once etcd answers again. */
struct doubt {
	struct doubt *next;
	char key[CLUSTER_KEY_BYTES];
	char *value;
};

struct cluster {
	struct lws_context *ctx;
	struct etcd etcd;
	char host[CLUSTER_HOST_BYTES];
	int ttl_s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	unsigned queued;
	int stop;
	/* the thread's own */
	int64_t lease;
	struct map held;
	struct doubt *doubts;
};

static void
job_free(struct job *j)
{
	free(j->value);
	free(j->bound);
	free(j);
}

/* --- the thread --- */

static void
hold(struct cluster *c, const char *name, const char *value)
{
	struct map_node *n = map_find(&c->held, name, strlen(name));
	struct held *h = n ? map_entry(n, struct held, node) : NULL;
	char *v = strdup(value);

	if (v == NULL)
		return;
	if (h == NULL && (h = calloc(1, sizeof *h)) != NULL) {
		snprintf(h->name, sizeof h->name, "%s", name);
		if (map_insert(&c->held, &h->node, h->name, strlen(h->name)) == -1) {
			free(h);
			h = NULL;
		}
	}
	if (h == NULL) {
		free(v);
		return;
	}
	free(h->value);
	h->value = v;
}

static void
unhold(struct cluster *c, const char *name)
{
	struct map_node *n = map_find(&c->held, name, strlen(name));
	struct held *h;

	if (n == NULL)
		return;
	h = map_entry(n, struct held, node);
	map_remove(&c->held, n);
	free(h->value);
	free(h);
}

/* The owner's key in a tunnel's value, or "". */
static void
value_owner(const char *value, char *out, size_t size)
{
	struct registry_tunnel t;
	json_t *hold_json;

	out[0] = '\0';
	if (value && cluster_decode(value, &t, &hold_json) == 0) {
		snprintf(out, size, "%s", t.key);
		json_decref(hold_json);
	}
}

/* Whether this broker holds name for owner. */
static int
held_by(struct cluster *c, const char *name, const char *owner)
{
	struct map_node *n = map_find(&c->held, name, strlen(name));
	char was[IDENTITY_PK_TEXT_BYTES];

	if (n == NULL)
		return 0;
	value_owner(map_entry(n, struct held, node)->value, was, sizeof was);
	return strcmp(was, owner) == 0;
}

/* Puts name's key under our lease: 1 ours, 0 another key's, -1 failed. */
static int
claim(struct cluster *c, const char *name, const char *value, const char *owner,
      char *why, size_t size)
{
	char key[CLUSTER_KEY_BYTES], was[IDENTITY_PK_TEXT_BYTES];
	struct etcd_kv now;
	int rc;

	if (c->lease == 0) {
		snprintf(why, size, "%s", c->etcd.why);
		return -1;
	}
	cluster_key(name, key, sizeof key);
	rc = etcd_put_new(&c->etcd, key, value, c->lease, &now);
	if (rc == 0) {
		value_owner(now.value, was, sizeof was);
		rc = strcmp(was, owner) == 0 ?
		     etcd_put_if_rev(&c->etcd, key, value, c->lease, now.mod_rev) : 0;
		if (rc == 0)
			snprintf(why, size, "name '%s' is taken", name);
		etcd_kv_free(&now);
	}
	if (rc == -1)
		snprintf(why, size, "%s", c->etcd.why);
	return rc;
}

static int grant(struct cluster *c);

static void
doubt(struct cluster *c, const char *name, const char *value)
{
	struct doubt *d = calloc(1, sizeof *d);

	if (d == NULL || (d->value = strdup(value)) == NULL) {
		free(d);
		log_warn("cluster: out of memory: %s%s may stay until the lease ends",
		         CLUSTER_PREFIX, name);
		return;
	}
	cluster_key(name, d->key, sizeof d->key);
	d->next = c->doubts;
	c->doubts = d;
}

/* Deletes the doubtful keys that still hold their value; those etcd does
 * not answer for stay for the next try. */
static void
settle(struct cluster *c)
{
	struct doubt **p = &c->doubts, *d;
	int rc;

	while ((d = *p) != NULL) {
		if ((rc = etcd_delete_if_value(&c->etcd, d->key, d->value)) == -1) {
			p = &d->next;
			continue;
		}
		if (rc == 1)
			log_info("cluster: deleted %s, written while etcd could not say", d->key);
		*p = d->next;
		free(d->value);
		free(d);
	}
}

static void
run_job(struct cluster *c, struct job *j)
{
	char key[CLUSTER_KEY_BYTES];

	if (c->doubts)
		settle(c);
	if (j->kind == JOB_CLAIM) {
		j->result = claim(c, j->name, j->value, j->owner, j->why, sizeof j->why);
		/* The lease ran out before a keep-alive could say so: a new one
		 * (with the held names put back), and the claim once more. */
		if (j->result == -1 && strstr(j->why, ETCD_LEASE_GONE) != NULL && grant(c) == 0)
			j->result = claim(c, j->name, j->value, j->owner, j->why, sizeof j->why);
		/* etcd cannot say, but the name is under our lease already for
		 * this key (its client came back to this broker): it stays. */
		if (j->result == -1 && held_by(c, j->name, j->owner)) {
			log_warn("cluster: name=%s stays its key's while etcd cannot be "
			         "reached: %s", j->name, j->why);
			j->result = 1;
		}
		if (j->result == 1)
			hold(c, j->name, j->value);
		if (j->result == -1)
			doubt(c, j->name, j->value);
		return;
	}
	cluster_key(j->name, key, sizeof key);
	if (c->lease && etcd_delete_if_lease(&c->etcd, key, c->lease) == -1) {
		struct map_node *n = map_find(&c->held, j->name, strlen(j->name));
		log_warn("cluster: cannot delete %s now (tried again later): %s", key,
		         c->etcd.why);
		if (n)
			doubt(c, j->name, map_entry(n, struct held, node)->value);
	}
	unhold(c, j->name);
}

struct reput { struct cluster *c; unsigned lost; };

static void
reput_one(struct map_node *n, void *ctx)
{
	struct reput *r = ctx;
	struct held *h = map_entry(n, struct held, node);
	char why[ETCD_WHY_BYTES], owner[IDENTITY_PK_TEXT_BYTES];

	value_owner(h->value, owner, sizeof owner);
	if (claim(r->c, h->name, h->value, owner, why, sizeof why) != 1) {
		log_warn("cluster: tunnel %s not restored in etcd: %s", h->name, why);
		r->lost++;
	}
}

/* A new lease, and every held name put under it again. */
static int
grant(struct cluster *c)
{
	struct reput r = { c, 0 };

	c->lease = 0;
	if (etcd_lease_grant(&c->etcd, c->ttl_s, &c->lease) == -1) {
		c->lease = 0;
		return -1;
	}
	map_each(&c->held, reput_one, &r);
	log_info("cluster lease=%lld ttl=%d host=%s tunnels=%zu lost=%u",
	         (long long)c->lease, c->ttl_s, c->host, c->held.count, r.lost);
	return 0;
}

/* Keeps the lease alive, or gets a new one; when the next try is due. */
static int64_t
tend_lease(struct cluster *c)
{
	int ttl = 0, rc;

	if (c->lease == 0) {
		rc = grant(c);
	} else if ((rc = etcd_lease_keepalive(&c->etcd, c->lease, &ttl)) == 0 && ttl <= 0) {
		log_warn("cluster: lease %lld ran out (etcd was unreachable too long): "
		         "putting this broker's tunnels back", (long long)c->lease);
		rc = grant(c);
	}
	if (rc == -1) {
		log_warn("cluster: etcd: %s", c->etcd.why);
		return clock_ms() + CLUSTER_RETRY_MS;
	}
	if (c->doubts)
		settle(c);
	return clock_ms() + (int64_t)c->ttl_s * 1000 / KEEPALIVES_PER_TTL;
}

/* The next job, waiting until due at most; NULL at due or at stop. */
static struct job *
next_job(struct cluster *c, int64_t due)
{
	struct timespec until;
	struct job *j;
	int64_t ms;

	pthread_mutex_lock(&c->lock);
	while (c->todo == NULL && !c->stop && (ms = due - clock_ms()) > 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->wake, &c->lock, &until);
	}
	if ((j = c->todo) != NULL) {
		c->todo = j->next;
		if (c->todo == NULL)
			c->todo_tail = &c->todo;
		c->queued--;
	}
	pthread_mutex_unlock(&c->lock);
	return j;
}

static void
finish(struct cluster *c, struct job *j)
{
	pthread_mutex_lock(&c->lock);
	j->next = NULL;
	*c->done_tail = j;
	c->done_tail = &j->next;
	pthread_mutex_unlock(&c->lock);
	lws_cancel_service(c->ctx);
}

static void
free_held(struct map_node *n, void *ctx)
{
	struct held *h = map_entry(n, struct held, node);

	free(h->value);
	free(h);
}

static void *
cluster_thread(void *arg)
{
	struct cluster *c = arg;
	int64_t due = 0;
	struct doubt *d;
	struct job *j;

	for (;;) {
		if (clock_ms() >= due)
			due = tend_lease(c);
		if ((j = next_job(c, due)) != NULL) {
			/* Stopping: the lease's revocation below does every release,
			 * and no one waits for a claim's answer. */
			if (!c->stop)
				run_job(c, j);
			if (j->kind == JOB_CLAIM)
				finish(c, j);
			else
				job_free(j);
			continue;
		}
		if (c->stop)
			break;
	}
	/* Stopping: the jobs are done; the lease takes every key with it. */
	if (c->lease && etcd_lease_revoke(&c->etcd, c->lease) == -1)
		log_warn("cluster: cannot revoke lease %lld (its keys go in %d s): %s",
		         (long long)c->lease, c->ttl_s, c->etcd.why);
	map_each(&c->held, free_held, NULL);
	map_free(&c->held);
	while ((d = c->doubts) != NULL) {
		c->doubts = d->next;
		free(d->value);
		free(d);
	}
	return NULL;
}

/* --- the event loop's side --- */

static void
submit(struct cluster *c, struct job *j)
{
	pthread_mutex_lock(&c->lock);
	j->next = NULL;
	*c->todo_tail = j;
	c->todo_tail = &j->next;
	c->queued++;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

int
cluster_claim(struct tunnel *t, int created, const char *auth, const char *allow,
              const char *bound, size_t len)
{
	struct session *s = t->s;
	struct cluster *c = s->b->cluster;
	struct registry_tunnel row = {
		.name = t->name, .host = c->host, .session = s->id, .key = s->key,
		.addr = s->addr, .url = t->url, .target = t->target, .since = t->since,
		.auth = auth, .allow = allow,
	};
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL || c->queued >= CLUSTER_QUEUE_MAX ||
	    (j->value = cluster_encode(&row)) == NULL || (j->bound = malloc(len)) == NULL) {
		if (j)
			job_free(j);
		tunnel_refused(t, created, CODE_INTERNAL, "the broker is too busy to claim "
		               "the name in the cluster: try again");
		return 0;
	}
	j->kind = JOB_CLAIM;
	snprintf(j->name, sizeof j->name, "%s", t->name);
	snprintf(j->owner, sizeof j->owner, "%s", s->key);
	j->session = s->id;
	j->index = t->index;
	j->created = created;
	memcpy(j->bound, bound, len);
	j->bound_len = len;
	submit(c, j);
	return 0;
}

void
cluster_release(struct tunnel *t)
{
	struct cluster *c = t->s->b->cluster;
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL) {
		log_warn("cluster: out of memory: %s%s stays until the lease ends",
		         CLUSTER_PREFIX, t->name);
		return;
	}
	j->kind = JOB_RELEASE;
	snprintf(j->name, sizeof j->name, "%s", t->name);
	submit(c, j);
}

/* A claim came back: answer its BIND, if its tunnel is still there. */
static void
answer(struct broker *b, struct job *j)
{
	struct tunnel *t = tunnel_find(b, j->name);
	char msg[ETCD_WHY_BYTES + 96];

	if (t == NULL || t->s->id != j->session || t->index != j->index)
		return;    /* gone meanwhile: its release follows this claim */
	if (j->result == 1) {
		mux_control(&t->s->mux, FRAME_BOUND, j->index, j->bound, j->bound_len);
		log_info("tunnel up name=%s url=%s key=%s addr=%s target=%s host=%s", t->name,
		         t->url, t->s->fp, t->s->addr, t->target, b->cluster->host);
		return;
	}
	if (j->result == 0) {
		tunnel_refused(t, j->created, CODE_NAME_TAKEN, j->why);
		return;
	}
	snprintf(msg, sizeof msg, "the cluster cannot be reached, so no name can be "
	         "claimed now (etcd: %s)", j->why);
	tunnel_refused(t, j->created, CODE_INTERNAL, msg);
}

void
cluster_poll(struct broker *b)
{
	struct cluster *c = b->cluster;
	struct job *list, *j;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	list = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	pthread_mutex_unlock(&c->lock);
	while ((j = list) != NULL) {
		list = j->next;
		answer(b, j);
		job_free(j);
	}
}

static int
check_settings(const struct settings *set, struct etcd *e)
{
	if (!cluster_host_ok(set->host_name)) {
		log_err("host-name '%s': with etcd-endpoints set, name this host (1 to 63 "
		        "letters, digits, dots and hyphens) in expose.conf", set->host_name);
		return -1;
	}
	if (etcd_init(e, set->etcd_endpoints, ETCD_CALL_TIMEOUT_MS) == -1) {
		log_err("etcd-endpoints '%s': %s", set->etcd_endpoints, e->why);
		return -1;
	}
	return 0;
}

int
cluster_start(struct broker *b)
{
	const struct settings *set = &b->cfg->set;
	struct cluster *c;
	sigset_t all, old;
	int rc;

	if (set->etcd_endpoints[0] == '\0')
		return 0;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		log_err("cluster: out of memory");
		return -1;
	}
	if (check_settings(set, &c->etcd) == -1) {
		free(c);
		return -1;
	}
	c->ctx = b->ctx;
	snprintf(c->host, sizeof c->host, "%s", set->host_name);
	c->ttl_s = set->cluster_lease_ttl_s;
	c->todo_tail = &c->todo;
	c->done_tail = &c->done;
	map_init(&c->held);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	/* Signals stay the event loop's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, cluster_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_err("cluster: cannot start its thread");
		free(c);
		return -1;
	}
	b->cluster = c;
	log_info("cluster host=%s etcd=%s lease-ttl=%d", c->host, set->etcd_endpoints,
	         c->ttl_s);
	return 0;
}

void
cluster_stop(struct broker *b)
{
	struct cluster *c = b->cluster;
	struct job *j;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	while ((j = c->done) != NULL) {
		c->done = j->next;
		job_free(j);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
	b->cluster = NULL;
}
