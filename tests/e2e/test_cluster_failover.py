"""Clients that fail over: a client given several servers (the hosts of
one cluster) goes on to the next when its host is lost, and gets the same
URLs there, because its key still owns its names in the cluster.

The first tests need no cluster: dead servers only, and hostile server
lists, against one real broker on loopback.  The cluster tests reuse
test_cluster.py's three hosts (network namespaces with real etcd members,
brokers, mirrors, edges), with each broker listening on its host's own
address as well, so that a client on host 3 can dial host 1.
"""
import base64
import json
import os
import re
import signal
import subprocess
import time
import types

import pytest

import harness
import test_cluster

RECONNECT_MIN_MS = harness.bound("RECONNECT_MIN_MS")
CLIENT_SERVERS_MAX = 16    # cmd/expose/client.h
EX_CONFIG = 78


def run_client(tmp, *args, env_extra=None):
    """expose that is expected to stop at once: its exit status and stderr."""
    env = harness.sanitizer_env()
    env["XDG_CONFIG_HOME"] = os.path.join(tmp, "key")
    env.update(env_extra or {})
    out = subprocess.run([os.path.join(harness.BIN, "expose"), *args], env=env,
                         capture_output=True, text=True, timeout=harness.scaled(20))
    return out.returncode, out.stderr


def test_only_dead_servers_one_line_a_round_and_backoff(tmp):
    dead = [harness.free_port(), harness.free_port()]
    c = harness.Client(tmp, None, "--server", f"ws://127.0.0.1:{dead[0]}",
                       "--server", f"ws://127.0.0.1:{dead[1]}", "3000", wait_url=False)
    rounds = re.compile(r"cannot reach any of the 2 servers \(ws://127\.0\.0\.1:%d: [^)]*\); "
                        r"retrying ws://127\.0\.0\.1:%d in ([0-9.]+)s" % (dead[1], dead[0]))
    harness.wait_for(lambda: len(rounds.findall(c.text())) >= 3,
                     timeout=20, what="three rounds of the list")
    text = c.text()
    delays = [float(d) for d in rounds.findall(text)]
    # Each round's delay doubles (with +-25% jitter): the third is past
    # the first's largest, so the client does not spin.
    base = RECONNECT_MIN_MS / 1000
    assert base * 0.75 - 0.05 <= delays[0] <= base * 1.25 + 0.05, delays
    assert delays[2] >= base * 4 * 0.75 - 0.05 > base * 1.25, delays
    # Within a round it goes straight on to the next server: one info line
    # a hop, and one warning a round.
    hops = text.count(f"cannot reach ws://127.0.0.1:{dead[0]}: ")
    assert len(delays) <= hops <= len(delays) + 1, text
    assert c.proc.alive()
    # It keeps trying: once a server answers on the second address, it binds.
    broker = harness.Broker(tmp, ws_port=dead[1])
    try:
        url = harness.read_line(c.proc.proc.stdout, timeout=20)
        assert url.startswith("http://")
        assert c.stop() == 0
    finally:
        broker.stop()


def test_a_bad_url_among_good_ones_is_refused_by_name(tmp):
    rc, err = run_client(tmp, "--server", "ws://127.0.0.1:1", "--server", "http://evil", "3000")
    assert rc == EX_CONFIG
    assert "expose: --server http://evil: not a ws:// or wss:// URL" in err
    rc, err = run_client(tmp, "3000", env_extra={
        "EXPOSE_SERVER": "ws://127.0.0.1:1, ws://bad_host:2"})
    assert rc == EX_CONFIG
    assert "EXPOSE_SERVER ws://bad_host:2: the host must be a DNS name or an IPv4 address" in err
    rc, err = run_client(tmp, "--server", "ws://127.0.0.1:1,,ws://127.0.0.1:2", "3000")
    assert rc == EX_CONFIG
    assert "an empty entry in the list" in err


def test_too_many_or_too_long_servers_are_refused(tmp):
    many = ",".join(f"ws://127.0.0.1:{1000 + i}" for i in range(CLIENT_SERVERS_MAX + 1))
    rc, err = run_client(tmp, "--server", many, "3000")
    assert rc == EX_CONFIG
    assert f"at most {CLIENT_SERVERS_MAX} servers" in err
    flags = []
    for i in range(CLIENT_SERVERS_MAX * 40):
        flags += ["--server", f"ws://127.0.0.1:{1000 + i}"]
    rc, err = run_client(tmp, *flags, "3000")
    assert rc == EX_CONFIG and f"at most {CLIENT_SERVERS_MAX} servers" in err
    rc, err = run_client(tmp, "--server", "ws://" + "a" * 100000 + ":1", "3000")
    assert rc == EX_CONFIG
    assert "not a ws:// or wss:// URL" in err
    assert len(err) < 2000    # the URL is not echoed whole


def test_duplicates_are_dialled_once_and_the_file_lists_servers(stack, tmp):
    dead = harness.free_port()
    s = stack.broker.server
    c = harness.Client(tmp, None, "--server", f"{s}, {s}", stack.app.port)
    stack.clients.append(c)
    assert c.url.startswith("http://")
    assert c.text().count(f"expose: --server {s}: given twice; dialled once") == 1
    c.stop()
    # server = in the config file: a list too; a dead first host is passed.
    conf = os.path.join(tmp, "expose.conf")
    with open(conf, "w") as f:
        f.write(f"server = ws://127.0.0.1:{dead}, {s}\n")
    c = harness.Client(tmp, None, "-f", conf, stack.app.port)
    stack.clients.append(c)
    assert c.url.startswith("http://")
    assert f"cannot reach ws://127.0.0.1:{dead}: " in c.text()
    assert f"trying {s}" in c.text()
    assert harness.curl(c.url + "hello")[0] == 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("ip netns needs root")
    c = test_cluster.Cluster(str(tmp_path_factory.mktemp("failover")))
    try:
        for h in c.hosts:
            listen_on_own_address(h)
        yield c
    finally:
        c.close()


def listen_on_own_address(h):
    """The broker again, listening on its host's address (the last --listen
    counts): clients on other hosts can dial it, and sign for it."""
    h.broker.stop()
    h.broker.argv = h.broker.argv + ["--listen", f"{h.addr}:{h.broker.ws_port}"]
    h.broker.start()


def own_url(h):
    return f"ws://{h.addr}:{h.broker.ws_port}"


class FailoverClient(test_cluster.NsClient):
    """expose on host h, given its own broker first, then the others'
    (by address: each listens on its host's own); ready on its URL."""

    def __init__(self, h, others, *args, key_dir=None, json_events=False):
        self.key_dir = key_dir or os.path.join(h.tmp, f"key-{id(self)}")
        env = harness.sanitizer_env()
        env["XDG_CONFIG_HOME"] = self.key_dir
        flags = []
        for o in (h, *others):
            flags += ["--server", own_url(o)]
        if json_events:
            flags.append("--json")
        self.proc = harness.Process(h.argv(
            os.path.join(harness.BIN, "expose"), *flags, *[str(a) for a in args]),
            os.path.join(h.tmp, f"client-{id(self)}.log"), env=env, stdout=subprocess.PIPE)
        h.cluster.clients.append(self)
        line = harness.read_line(self.proc.proc.stdout)
        self.url = json.loads(line)["url"] if json_events else line

    def event(self, *kinds):
        """The next --json event of one of these kinds (requests skipped)."""
        while True:
            e = json.loads(harness.read_line(self.proc.proc.stdout))
            if e["event"] in kinds:
                return e
            assert e["event"] == "request", e


def test_killed_broker_clients_move_with_the_same_urls(cluster):
    h1, h2, h3 = cluster.hosts
    named = FailoverClient(h3, (h1, h2), "--name", "mover", h3.app())
    port = h3.app()
    random = FailoverClient(h3, (h1, h2), port, json_events=True)
    for c in (named, random):
        harness.wait_for(lambda c=c: h1.rows().get(c.name) == "h3",
                         what=f"{c.name} copied to h1")
        assert h3.get(c.name, "/hello")[0] == 200
    h3.broker.kill()
    killed = time.monotonic()
    for c in (named, random):
        harness.wait_in_file(c.proc.log, r"moved to %s: same URL %s -> " % (
            re.escape(own_url(h1)), re.escape(c.url)))
    # A script reading --json hears both: the link lost, the URL back.
    assert random.event("disconnected", "moved", "reconnected")["event"] == "disconnected"
    assert random.event("moved", "reconnected") == {
        "event": "moved", "url": random.url, "target": f"localhost:{port}",
        "server": own_url(h1)}
    # Visitors on the host they moved to reach them, at once: its broker
    # wrote its own rows.
    for c in (named, random):
        code, body = h1.get(c.name, "/hello")
        assert code == 200, body
    moved = time.monotonic() - killed
    print(f"failover: h3's broker killed -> its clients served on h1 in {moved:.2f} s")
    keys = cluster.keys()
    assert keys["mover"]["host"] == "h1" and keys[random.name]["host"] == "h1"
    # The copies follow: on h2, and on h3, where the dead broker's own
    # rows give way to them (its successor would sweep them, but none may
    # come), so h3's edges route to h1 as soon as a broker there relays.
    for h in (h2, h3):
        for c in (named, random):
            harness.wait_for(lambda h=h, c=c: h.rows().get(c.name) == "h1",
                             what=f"{c.name}'s copy on {h.name}")
    # Nothing printed on stdout: the URLs did not change.
    for c in (named, random):
        assert "has a new URL" not in c.text()
        assert c.proc.alive()
    h3.broker.start()
    harness.wait_for(lambda: "h1" in h3.links_up(), what="h3's new broker's link to h1")
    for c in (named, random):
        assert h3.get(c.name, "/hello") == (200, b"hello")
    # The random name was recorded under h1's server: a new run of that
    # key, dialling h3 first, asks for it there (names across the cluster).
    random.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: random.name not in cluster.keys(), what="the key to go")
    again = FailoverClient(h3, (h1, h2), port, key_dir=random.key_dir)
    assert again.url == random.url
    harness.wait_in_file(again.proc.log, r"the same URL as last time")
    assert h3.get(again.name, "/hello")[0] == 200
    for c in (named, again):
        c.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: not {"mover", random.name} & set(cluster.keys()),
                     what="their keys to go")


def copies_match_etcd(cluster, h):
    """h's copies of other hosts' tunnels are exactly etcd's."""
    keys = {n: v["host"] for n, v in cluster.keys().items() if v["host"] != h.name}
    rows = {n: host for n, host in h.rows().items() if host != h.name}
    return rows == keys


def test_mirror_behind_a_compaction_resyncs_to_etcd(cluster):
    h1, h2, _ = cluster.hosts
    log = h1.mirror.log
    start = len(open(log).read())
    gone = FailoverClient(h2, (), "--name", "compacted-away", h2.app())
    harness.wait_for(lambda: h1.rows().get("compacted-away") == "h2", what="the copy on h1")
    # The mirror stops while its member dies under its watch; meanwhile
    # tunnels come and go on h2, and etcd compacts past all of it.
    h1.mirror.send(signal.SIGSTOP)
    try:
        h1.etcd.kill()
        gone.proc.stop(signal.SIGINT)
        stays = FailoverClient(h2, (), "--name", "after-compaction", h2.app())
        harness.wait_for(lambda: "compacted-away" not in cluster.keys(), what="the key to go")
        _, r = h2.etcd_call("/v3/kv/range", {"key": test_cluster.b64("/"), "count_only": True})
        revision = r["header"]["revision"]
        status, _ = h2.etcd_call("/v3/kv/compaction", {"revision": revision, "physical": True})
        assert status == 200
    finally:
        h1.mirror.send(signal.SIGCONT)
    # Resuming from its revision, it finds that compacted, and lists again.
    harness.wait_in_file(log, r"watch cancelled \(compacted to revision %s\): resyncing"
                         % revision)
    harness.wait_for(lambda: re.search(r"cancelled.*\n(.*\n)*.*synced copies=",
                                       open(log).read()[start:]), what="the resync")
    assert "compacted-away" not in h1.rows()
    assert h1.rows().get("after-compaction") == "h2"
    harness.wait_for(lambda: copies_match_etcd(cluster, h1), what="h1's copies to match etcd")
    assert h1.mirror.alive()
    test_cluster.restart_member(h1)
    stays.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: "after-compaction" not in h1.rows(), what="the copy to go")


def hub_address(cluster):
    """An address in the hub namespace, outside the three hosts (once)."""
    addr = f"{test_cluster.SUBNET}.100"
    if not getattr(cluster, "hub_addr", None):
        test_cluster.ip("-n", cluster.hub, "addr", "add", f"{addr}/24", "dev", "br0")
        test_cluster.ip("-n", cluster.hub, "link", "set", "lo", "up")
        cluster.hub_addr = addr
    return addr


def cut_off(h, others, on=True):
    """h's traffic to the others dropped (both ways, for TCP): its member
    runs on, cut off from the majority; the hub still reaches it."""
    for o in others:
        test_cluster.ip("-n", h.ns, "route", "add" if on else "del", "blackhole",
                        f"{o.addr}/32")


def test_client_on_a_cut_off_host_moves_to_one_that_gives_names(cluster):
    h1, h2, h3 = cluster.hosts
    hub_address(cluster)
    app = harness.Process(["ip", "netns", "exec", cluster.hub, "node", harness.APP_JS, "0"],
                          os.path.join(cluster.tmp, "hub-app.log"), stdout=subprocess.PIPE)
    cluster.apps.append(app)
    port = int(harness.read_line(app.proc.stdout).split()[1])
    cut_off(h1, (h2, h3))
    try:
        env = harness.sanitizer_env()
        env["XDG_CONFIG_HOME"] = os.path.join(cluster.tmp, "hub-key")
        log = os.path.join(cluster.tmp, "hub-client.log")
        c = harness.Process(["ip", "netns", "exec", cluster.hub,
                             os.path.join(harness.BIN, "expose"), "--server", own_url(h1),
                             "--server", own_url(h2), "--name", "fled", str(port)],
                            log, env=env, stdout=subprocess.PIPE)
        assert harness.read_line(c.proc.stdout) == "http://fled.localhost:8080/"
        text = c.text()
        assert (f"localhost:{port}: the cluster cannot be reached, so no name can be claimed "
                f"now") in text and "; trying the next server" in text
        harness.wait_in_file(log, r"expose  server %s," % re.escape(own_url(h2)))
        code, body = h2.get("fled", "/hello")
        assert code == 200, body
        # etcd says so too, read where the majority is (h1's member cannot).
        _, r = h2.etcd_call("/v3/kv/range", {"key": test_cluster.b64(test_cluster.PREFIX + "fled")})
        assert json.loads(base64.b64decode(r["kvs"][0]["value"]))["host"] == "h2"
    finally:
        cut_off(h1, (h2, h3), on=False)
    c.stop(signal.SIGINT)
    harness.wait_for(lambda: "fled" not in cluster.keys(), what="the key to go")
    harness.wait_for(lambda: copies_match_etcd(cluster, h1), what="h1's mirror to catch up")


def test_mirror_on_a_cut_off_member_notices_and_moves(cluster):
    h1, h2, h3 = cluster.hosts
    hub = cluster.hub
    hub_address(cluster)
    # A mirror outside the three hosts, watching h1's member first.
    observer_log = os.path.join(cluster.tmp, "observer-mirror.log")
    observer = harness.Process([
        "ip", "netns", "exec", hub, os.path.join(harness.BIN, "expose-mirror"),
        "--registry", os.path.join(cluster.tmp, "observer.db"), "--etcd-endpoints",
        f"http://{h1.addr}:2379,http://{h2.addr}:2379", "--host-name", "observer", "-v"],
        observer_log, env=harness.sanitizer_env())
    cut = False
    mirror_log = log_after(h1.mirror.log)
    try:
        harness.wait_in_file(observer_log, r"synced copies=")
        # h1 is cut off from h2 and h3 (its member runs on, and the
        # observer still reaches it).
        cut_off(h1, (h2, h3))
        cut = True
        harness.wait_in_file(observer_log, r"etcd member %s:2379 cannot serve the cluster "
                             r"\(cut off from the majority\?\); watching %s:2379 from revision"
                             % (re.escape(h1.addr), re.escape(h2.addr)))
        # h1's own mirror has no member to go to: it says so once, and
        # keeps its copies.
        harness.wait_for(lambda: "no etcd member can serve the cluster now" in mirror_log(),
                         what="h1's mirror to say it has no member")
        c = FailoverClient(h2, (), "--name", "seen-past-the-cut", h2.app())
        db = os.path.join(cluster.tmp, "observer.db")
        harness.wait_for(lambda: "seen-past-the-cut" in open_rows(db),
                         what="the observer to copy a tunnel made after the cut")
        cut_off(h1, (h2, h3), on=False)
        cut = False
        harness.wait_for(lambda: "etcd serves the cluster again" in mirror_log(),
                         what="h1's mirror to say etcd serves again")
        harness.wait_for(lambda: h1.rows().get("seen-past-the-cut") == "h2",
                         what="h1's mirror to catch up after the cut")
        c.proc.stop(signal.SIGINT)
        harness.wait_for(lambda: "seen-past-the-cut" not in open_rows(db), what="the copy to go")
    finally:
        if cut:
            for o in (h2, h3):
                subprocess.run(["ip", "-n", h1.ns, "route", "del", "blackhole",
                                f"{o.addr}/32"], capture_output=True)
        assert observer.stop() == 0


def log_after(path):
    """A function that reads what path gets from now on."""
    start = os.path.getsize(path)

    def read():
        with open(path, errors="replace") as f:
            f.seek(start)
            return f.read()
    return read


def open_rows(db):
    """{name: host} in registry db, read as a host's are."""
    return test_cluster.Host.rows(types.SimpleNamespace(registry=db))
