/* The etcd client (lib/etcd*.c) against a hostile or broken peer, and the
 * tunnel values of lib/cluster_key.c.  The peer is a forked process on
 * 127.0.0.1 that answers one connection with canned bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_key.h"
#include "etcd.h"

/* A canned peer's deadline for the client, per call. */
#define TEST_TIMEOUT_MS 2000

struct peer {
	pid_t pid;
	char endpoint[64];
};

/* Serves reply (in pieces split at '|') to one connection, then closes. */
static void
peer_start(struct peer *p, const char *reply)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), c;
	char req[4096];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(p->endpoint, sizeof p->endpoint, "http://127.0.0.1:%d", ntohs(a.sin_port));
	p->pid = fork();
	assert_true(p->pid != -1);
	if (p->pid == 0) {
		const char *s = reply, *bar;
		c = accept(fd, NULL, NULL);
		(void)!read(c, req, sizeof req);
		while ((bar = strchr(s, '|')) != NULL) {
			(void)!write(c, s, (size_t)(bar - s));
			usleep(10000);
			s = bar + 1;
		}
		(void)!write(c, s, strlen(s));
		close(c);
		_exit(0);
	}
	close(fd);
}

static void
peer_wait(struct peer *p)
{
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
}

/* etcd_call against a peer that answers reply. */
static json_t *
call_against(const char *reply, struct etcd *e)
{
	struct peer p;
	json_t *body = json_object(), *r;

	peer_start(&p, reply);
	assert_int_equal(etcd_init(e, p.endpoint, TEST_TIMEOUT_MS), 0);
	r = etcd_call(e, "/v3/kv/range", body);
	json_decref(body);
	peer_wait(&p);
	return r;
}

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

static void
test_endpoints_parse(void **state)
{
	static const char *const bad[] = {
		"", ",", "https://10.0.0.1:2379", "10.0.0.1", "http://10.0.0.1:", "http://:2379",
		"http://10.0.0.1:23x9", "http://10.0.0.1:2379,10.0.0.2",
	};
	struct etcd e;
	size_t i;

	assert_int_equal(etcd_init(&e, "http://127.0.0.1:2379,10.0.0.2:2379", 1000), 0);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.host[1], "10.0.0.2");
	assert_string_equal(e.port[1], "2379");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (etcd_init(&e, bad[i], 1000) != -1)
			fail_msg("'%s' was accepted", bad[i]);
	assert_non_null(strstr((etcd_init(&e, "https://a:1", 1000), e.why), "https"));
}

static void
test_good_replies(void **state)
{
	struct etcd e;
	json_t *r;

	r = call_against(OK_HEAD "Content-Length: 16\r\n\r\n{\"count\":\"3\"}   ", &e);
	assert_non_null(r);
	assert_int_equal(etcd_int(r, "count"), 3);
	json_decref(r);
	/* Chunked, in pieces; a stream's single message unwrapped. */
	r = call_against(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n9\r\n{\"res|ult\"\r\n"
	                 "e\r\n:{\"TTL\":\"7\"}}\n\r\n0\r\n\r\n", &e);
	assert_non_null(r);
	assert_int_equal(etcd_int(r, "TTL"), 7);
	json_decref(r);
}

static void
test_hostile_replies(void **state)
{
	static const char *const bad[] = {
		"",                                                  /* closed at once */
		"garbage\r\n\r\n",                                    /* not HTTP */
		OK_HEAD "\r\nnot json",
		OK_HEAD "\r\n[1,2]",                                  /* JSON, not an object */
		OK_HEAD "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		OK_HEAD "Transfer-Encoding: chunked\r\n\r\nffff\r\n{}\r\n0\r\n\r\n",
		OK_HEAD "Transfer-Encoding: chunked\r\n\r\n2\r\n{}",  /* no last chunk */
		"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\":\"etcdserver: no leader\","
		"\"message\":\"etcdserver: no leader\",\"code\":14}",
		OK_HEAD "\r\n{\"error\":\"etcdserver: requested lease not found\"}",
	};
	struct etcd e;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *r = call_against(bad[i], &e);
		if (r != NULL)
			fail_msg("reply %zu was taken", i);
		assert_true(e.why[0] != '\0');
	}
	call_against(bad[7], &e);
	assert_non_null(strstr(e.why, "no leader"));
}

static void
test_head_too_large_is_refused(void **state)
{
	char *reply = malloc(ETCD_HEAD_MAX_BYTES + 64);
	struct etcd e;

	memset(reply, 'a', ETCD_HEAD_MAX_BYTES + 32);
	memcpy(reply, "HTTP/1.1 200 OK\r\nX: ", 20);
	reply[ETCD_HEAD_MAX_BYTES + 32] = '\0';
	assert_null(call_against(reply, &e));
	if (strstr(e.why, "too large") == NULL)
		fail_msg("why: %s", e.why);
	free(reply);
}

static void
test_nothing_listening(void **state)
{
	struct peer p;
	struct etcd e;
	json_t *body = json_object();

	peer_start(&p, "");
	peer_wait(&p);    /* its port is closed now */
	assert_int_equal(etcd_init(&e, p.endpoint, TEST_TIMEOUT_MS), 0);
	assert_null(etcd_call(&e, "/v3/kv/range", body));
	assert_non_null(strstr(e.why, "cannot connect"));
	json_decref(body);
}

/* The watch: events across chunk boundaries, then a compaction. */
static void
test_watch_stream(void **state)
{
	const char *k = "L2V4cG9zZS90dW5uZWxzL2E=";   /* /expose/tunnels/a */
	char reply[1024];
	struct etcd_watch w;
	struct etcd_event *ev;
	struct peer p;
	struct etcd e;
	char why[128];
	int n;

	snprintf(reply, sizeof reply, OK_HEAD "Transfer-Encoding: chunked\r\n\r\n"
	         "%zx\r\n{\"result\":{\"created\":true}}\n\r\n|"
	         "%zx\r\n{\"result\":{\"events\":[{\"kv\":{\"key\":\"%s\",\"value\":\"eA==\","
	         "\"mod_revision\":\"5\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"%s\",|"
	         "\"mod_revision\":\"6\"}}]}}\n\r\n"
	         "%zx\r\n{\"result\":{\"compact_revision\":\"9\",\"canceled\":true}}\n\r\n",
	         strlen("{\"result\":{\"created\":true}}\n"),
	         strlen("{\"result\":{\"events\":[{\"kv\":{\"key\":\"\",\"value\":\"eA==\","
	                "\"mod_revision\":\"5\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"\","
	                "\"mod_revision\":\"6\"}}]}}\n") + 2 * strlen(k), k, k,
	         strlen("{\"result\":{\"compact_revision\":\"9\",\"canceled\":true}}\n"));
	peer_start(&p, reply);
	assert_int_equal(etcd_init(&e, p.endpoint, TEST_TIMEOUT_MS), 0);
	assert_int_equal(etcd_watch_open(&e, &w, CLUSTER_PREFIX, 1), 0);
	assert_int_equal(etcd_watch_next(&w, TEST_TIMEOUT_MS, &ev, &n, why, sizeof why), 1);
	assert_int_equal(n, 0);    /* "created" */
	assert_int_equal(etcd_watch_next(&w, TEST_TIMEOUT_MS, &ev, &n, why, sizeof why), 1);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].kind, ETCD_PUT);
	assert_string_equal(ev[0].kv.key, "/expose/tunnels/a");
	assert_string_equal(ev[0].kv.value, "x");
	assert_int_equal(ev[1].kind, ETCD_DELETE);
	assert_int_equal(ev[1].kv.mod_rev, 6);
	etcd_events_free(ev, n);
	assert_int_equal(etcd_watch_next(&w, TEST_TIMEOUT_MS, &ev, &n, why, sizeof why), -1);
	assert_non_null(strstr(why, "compacted"));
	etcd_watch_close(&w);
	peer_wait(&p);
}

static void
test_tunnel_values(void **state)
{
	struct registry_tunnel t = {
		.name = "app", .host = "h1", .session = 42, .key = "k", .addr = "10.0.0.9",
		.url = "http://app.example.net/", .target = "localhost:3000", .since = 7,
		.auth = "", .allow = "",
	}, back;
	static const char *const bad[] = {
		"", "{", "[]", "{\"name\":\"app\"}",
		"{\"name\":\"a\",\"host\":\"h\\u001b[2J\",\"session\":1,\"key\":\"k\",\"addr\":\"a\","
		"\"url\":\"u\",\"target\":\"t\",\"since\":1,\"auth\":\"\",\"allow\":\"\"}",
		"{\"name\":\"a\",\"host\":\"\",\"session\":1,\"key\":\"k\",\"addr\":\"a\","
		"\"url\":\"u\",\"target\":\"t\",\"since\":1,\"auth\":\"\",\"allow\":\"\"}",
		"{\"name\":\"a\",\"host\":\"h\",\"session\":\"1\",\"key\":\"k\",\"addr\":\"a\","
		"\"url\":\"u\",\"target\":\"t\",\"since\":1,\"auth\":\"\",\"allow\":\"\"}",
	};
	char *value = cluster_encode(&t);
	json_t *hold;
	size_t i;

	assert_non_null(value);
	assert_int_equal(cluster_decode(value, &back, &hold), 0);
	assert_string_equal(back.name, "app");
	assert_string_equal(back.host, "h1");
	assert_int_equal(back.session, 42);
	assert_string_equal(back.target, "localhost:3000");
	json_decref(hold);
	free(value);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cluster_decode(bad[i], &back, &hold) != -1)
			fail_msg("value %zu was taken", i);
	assert_string_equal(cluster_key_name("/expose/tunnels/app"), "app");
	assert_null(cluster_key_name("/expose/tunnels/"));
	assert_null(cluster_key_name("/other/app"));
}

static void
test_base64_and_prefix(void **state)
{
	char end[64], *b = etcd_b64("/expose/", 8), *s;

	assert_string_equal(b, "L2V4cG9zZS8=");
	s = etcd_unb64(b);
	assert_string_equal(s, "/expose/");
	free(b);
	free(s);
	assert_null(etcd_unb64("not base64!"));
	assert_null(etcd_unb64("AGE="));    /* a NUL inside */
	etcd_prefix_end("/expose/tunnels/", end, sizeof end);
	assert_string_equal(end, "/expose/tunnels0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints_parse),
		cmocka_unit_test(test_good_replies),
		cmocka_unit_test(test_hostile_replies),
		cmocka_unit_test(test_head_too_large_is_refused),
		cmocka_unit_test(test_nothing_listening),
		cmocka_unit_test(test_watch_stream),
		cmocka_unit_test(test_tunnel_values),
		cmocka_unit_test(test_base64_and_prefix),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
