"""More than one host: three hosts as network namespaces that the test
makes and removes itself, each with a member of one etcd cluster, a broker
in cluster mode (with its peer link to the other hosts' brokers),
expose-mirror, and edges under the stock launcher.

Everything is real: etcd, exposed, expose-edge under
systemd-socket-activate, expose, the Node app and curl, each started in
its host's namespace with `ip netns exec`.  The namespaces are joined by
veth pairs on a bridge inside a fourth namespace, on addresses made here:
nothing is added to the machine's own interfaces.  Needs root (ip netns).
"""
import base64
import ctypes
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from nacl import bindings as nacl_b
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                                Ed25519PublicKey)

import harness

HOSTS = ("h1", "h2", "h3")
SUBNET = "10.77.0"
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
# The brokers' lease: a dead broker's tunnels leave etcd this long after.
LEASE_TTL_S = 4
PREFIX = "/expose/tunnels/"
# Where each broker's peer link listens (peer-listen), on its host's address.
PEER_PORT = 7001
CLONE_NEWNET = 0x40000000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ip netns needs root")


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


# A run's namespaces are named after its pid: xcPID then hub or a host's name.
NAMESPACE = re.compile(r"xc(\d+)(?:hub|" + "|".join(HOSTS) + r")")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def reap_stale_namespaces():
    """Deletes the namespaces of runs whose process is gone: a run killed
    before its clean-up (a bench cut short, a check interrupted) leaves
    them, and nothing else would remove them."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        m = NAMESPACE.fullmatch(line.split(" ", 1)[0])
        if m and not pid_alive(int(m.group(1))):
            subprocess.run(["ip", "netns", "del", m.group(0)], capture_output=True)


def in_ns(ns, fn, *args):
    """fn(*args) run on a thread that entered network namespace ns (a
    network namespace is per thread), so that the test itself can speak
    to etcd where it listens."""
    out = {}

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 (handed to the caller)
            out["error"] = e
        finally:
            os.close(fd)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def write_host_key(path):
    """A broker's host key in the form exposed reads (expose-key-v1 and the
    seed); returns the public key."""
    seed = os.urandom(32)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("expose-key-v1 " + base64.b64encode(seed).decode() + "\n")
    return raw_pk(Ed25519PrivateKey.from_private_bytes(seed))


def raw_pk(sk):
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)


def pk_line(name, pk):
    return f"names={name} expose-ed25519 {base64.b64encode(pk).decode()}\n"


def write_peer_keys(path, hosts, extra=""):
    with open(path, "w") as f:
        f.write("".join(pk_line(h.name, h.pk) for h in hosts) + extra)


def curl_result(stdout):
    body, _, code = stdout.rpartition(b"\n")
    return int(code or 0), body


def etcd_post(path, body, port=ETCD_CLIENT_PORT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.scaled(5))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


class Host:
    """One host: its namespace, etcd member, broker, mirror and edge."""

    def __init__(self, cluster, i):
        self.cluster = cluster
        self.i = i
        self.name = HOSTS[i - 1]
        self.ns = f"{cluster.tag}{self.name}"
        self.addr = f"{SUBNET}.{i}"
        self.tmp = os.path.join(cluster.tmp, self.name)
        os.makedirs(self.tmp)
        self.registry = os.path.join(self.tmp, "registry.db")
        self.etcd = self.broker = self.mirror = self.edge = None
        self.edge_port = 8080
        self.host_key = os.path.join(self.tmp, "host.key")
        self.peer_keys = os.path.join(self.tmp, "peer-keys")
        self.pk = write_host_key(self.host_key)

    def argv(self, *argv):
        return ["ip", "netns", "exec", self.ns, *argv]

    def endpoints(self):
        """Its own member first, then the others."""
        others = [h.addr for h in self.cluster.hosts if h is not self]
        return ",".join([f"http://127.0.0.1:{ETCD_CLIENT_PORT}"] +
                        [f"http://{a}:{ETCD_CLIENT_PORT}" for a in others])

    def start_etcd(self):
        peers = ",".join(f"{h.name}=http://{h.addr}:{ETCD_PEER_PORT}"
                         for h in self.cluster.hosts)
        self.etcd = harness.Process(self.argv(
            "etcd", "--name", self.name, "--data-dir", os.path.join(self.tmp, "etcd"),
            "--listen-peer-urls", f"http://{self.addr}:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{self.addr}:{ETCD_PEER_PORT}",
            "--listen-client-urls",
            f"http://{self.addr}:{ETCD_CLIENT_PORT},http://127.0.0.1:{ETCD_CLIENT_PORT}",
            "--advertise-client-urls", f"http://{self.addr}:{ETCD_CLIENT_PORT}",
            "--initial-cluster", peers, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster.tag), os.path.join(self.tmp, "etcd.log"))

    def etcd_healthy(self):
        def check():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", ETCD_CLIENT_PORT,
                                                  timeout=harness.scaled(2))
                conn.request("GET", "/health")
                return json.loads(conn.getresponse().read()).get("health") == "true"
            except (OSError, ValueError):
                return False
        return in_ns(self.ns, check)

    def etcd_call(self, path, body):
        return in_ns(self.ns, etcd_post, path, body)

    def start_broker(self, more_peers=""):
        peers = ",".join(f"{h.name}={h.addr}:{PEER_PORT}" for h in self.cluster.hosts)
        self.broker = NsBroker(self, extra=(
            "--etcd-endpoints", self.endpoints(), "--host-name", self.name,
            "--cluster-lease-ttl", str(LEASE_TTL_S),
            "--peer-listen", f"{self.addr}:{PEER_PORT}", "--peers", peers + more_peers,
            "--peer-keys", self.peer_keys, "--host-key", self.host_key))

    def restart_broker(self, more_peers=""):
        """A new broker here (no tunnels on it), linked again both ways."""
        starts = {h.name: len(h.log()) for h in self.cluster.hosts if h is not self}
        assert self.broker.proc.stop() == 0
        self.start_broker(more_peers)
        for h in self.cluster.hosts:
            if h is not self:
                harness.wait_for(lambda h=h: self.name in h.links_up(starts[h.name]),
                                 what=f"{h.name}'s link to the new broker on {self.name}")
        harness.wait_for(lambda: self.links_up() >= {h.name for h in self.cluster.hosts} -
                         {self.name}, what=f"{self.name}'s links to the others")

    def log(self):
        return open(self.broker.log, errors="replace").read()

    def metrics(self):
        """The broker's metrics (exposectl metrics): {series: value}."""
        out = subprocess.run([os.path.join(harness.BIN, "exposectl"), "--socket",
                              self.broker.socket, "metrics"],
                             capture_output=True, text=True, env=harness.sanitizer_env(),
                             timeout=harness.scaled(20))
        assert out.returncode == 0, out.stderr
        return {k: float(v) for k, v in (ln.rsplit(" ", 1) for ln in out.stdout.splitlines()
                                         if ln and not ln.startswith("#"))}

    def links_up(self, since=0):
        """The hosts this broker's links reached (dir=out), since offset."""
        return set(re.findall(r"peer link up host=(\S+) .* dir=out", self.log()[since:]))

    def start_mirror(self):
        log = os.path.join(self.tmp, "mirror.log")
        start = len(open(log).read()) if os.path.exists(log) else 0
        self.mirror = harness.Process(self.argv(
            os.path.join(harness.BIN, "expose-mirror"), "--registry", self.registry,
            "--etcd-endpoints", self.endpoints(), "--host-name", self.name, "-v"),
            log, env=harness.sanitizer_env())
        harness.wait_for(lambda: "synced copies=" in open(log).read()[start:],
                         what=f"{self.name}'s mirror to sync")

    def start_edge(self):
        self.edge = harness.Process(self.argv(
            "systemd-socket-activate", "--inetd", "-a", "-l",
            f"127.0.0.1:{self.edge_port}", os.path.join(harness.BIN, "expose-edge"),
            "--registry", self.registry, "--domain", "localhost",
            "--socket", self.broker.socket),
            os.path.join(self.tmp, "edge.log"), env=harness.sanitizer_env())
        harness.wait_in_file(os.path.join(self.tmp, "edge.log"),
                             r"Listening on 127\.0\.0\.1:%d" % self.edge_port)

    def rows(self):
        """{name: host} of the tunnels in this host's registry."""
        db = sqlite3.connect(f"file:{self.registry}?mode=ro", uri=True, timeout=10)
        try:
            return dict(db.execute("SELECT name, host FROM tunnels"))
        finally:
            db.close()

    def curl(self, name, path="/", *args):
        """A visitor on this host: real curl, in this host's namespace."""
        timeout = harness.scaled(20)
        return self.argv(
            "curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "--max-time",
            str(timeout), "-H", f"Host: {name}.localhost", *args,
            f"http://127.0.0.1:{self.edge_port}{path}")

    def get(self, name, path="/", *args):
        timeout = harness.scaled(20)
        out = subprocess.run(self.curl(name, path, *args), capture_output=True,
                             timeout=timeout + 10)
        return curl_result(out.stdout)

    def client(self, *args, key_dir=None, wait_url=True):
        c = NsClient(self, *args, key_dir=key_dir, wait_url=wait_url)
        self.cluster.clients.append(c)
        return c

    def app(self):
        a = harness.Process(self.argv("node", harness.APP_JS, "0"),
                            os.path.join(self.tmp, f"app-{len(self.cluster.apps)}.log"),
                            stdout=subprocess.PIPE)
        self.cluster.apps.append(a)
        return int(harness.read_line(a.proc.stdout).split()[1])


class NsBroker(harness.Broker):
    """exposed in a host's namespace, ready on READY=1 like any other."""

    def __init__(self, host, extra):
        self.host = host
        super().__init__(host.tmp, public_port=host.edge_port, registry=host.registry,
                         extra=extra)

    def start(self):
        if self.argv[0] != "ip":
            self.argv = self.host.argv(*self.argv)
        super().start()

    @property
    def server(self):
        return f"ws://127.0.0.1:{self.ws_port}"


class NsClient:
    """expose in a host's namespace; ready once it prints its URL."""

    def __init__(self, host, *args, key_dir=None, wait_url=True):
        self.key_dir = key_dir or os.path.join(host.tmp, f"key-{id(self)}")
        env = harness.sanitizer_env()
        env["XDG_CONFIG_HOME"] = self.key_dir
        self.proc = harness.Process(host.argv(
            os.path.join(harness.BIN, "expose"), "--server", host.broker.server,
            *[str(a) for a in args]), os.path.join(host.tmp, f"client-{id(self)}.log"),
            env=env, stdout=subprocess.PIPE)
        self.url = harness.read_line(self.proc.proc.stdout) if wait_url else None

    @property
    def name(self):
        return re.match(r"https?://([^.]+)\.", self.url).group(1)

    def text(self):
        return self.proc.text()


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        reap_stale_namespaces()
        self.tag = f"xc{os.getpid()}"
        self.hosts = []
        self.clients = []
        self.apps = []
        self.closed = False
        self.hub = f"{self.tag}hub"
        self.namespaces = [self.hub]
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for i in range(1, len(HOSTS) + 1):
            h = Host(self, i)
            self.hosts.append(h)
            ip("netns", "add", h.ns)
            self.namespaces.append(h.ns)
            ip("-n", self.hub, "link", "add", f"v{i}", "type", "veth", "peer", "name",
               "eth0", "netns", h.ns)
            ip("-n", self.hub, "link", "set", f"v{i}", "master", "br0", "up")
            ip("-n", h.ns, "addr", "add", f"{h.addr}/24", "dev", "eth0")
            ip("-n", h.ns, "link", "set", "eth0", "up")
            ip("-n", h.ns, "link", "set", "lo", "up")
        for h in self.hosts:
            write_peer_keys(h.peer_keys, self.hosts)
        for h in self.hosts:
            h.start_etcd()
        for h in self.hosts:
            harness.wait_for(h.etcd_healthy, what=f"etcd on {h.name} to be healthy")
        for h in self.hosts:
            h.start_broker()
            h.start_mirror()
            h.start_edge()
        others = {h.name for h in self.hosts}
        for h in self.hosts:
            harness.wait_for(lambda h=h: h.links_up() == others - {h.name},
                             what=f"{h.name}'s peer links up")

    def keys(self):
        """{name: value} of the tunnels in etcd, read on a live member."""
        live = next(h for h in self.hosts if h.etcd.alive())
        _, r = live.etcd_call("/v3/kv/range", {"key": b64(PREFIX),
                                                   "range_end": b64(PREFIX[:-1] + "0")})
        return {base64.b64decode(kv["key"]).decode()[len(PREFIX):]:
                json.loads(base64.b64decode(kv["value"])) for kv in r.get("kvs", [])}

    def leader(self):
        """The host whose member leads now."""
        ids = {}
        leader = None
        for h in self.hosts:
            if h.etcd is None or not h.etcd.alive():
                continue
            _, st = h.etcd_call("/v3/maintenance/status", {})
            ids[st["header"]["member_id"]] = h
            leader = st.get("leader", leader)
        return ids.get(leader)

    def close(self):
        if self.closed:
            return
        self.closed = True
        errors = []
        for c in self.clients:
            if c.proc.alive():
                c.proc.stop(signal.SIGINT)
        for h in self.hosts:
            for name in ("edge", "broker", "mirror"):
                p = getattr(h, name)
                if p is None:
                    continue
                try:
                    p.stop()
                except AssertionError as e:
                    errors.append(f"{h.name} {name}: {e}")
        for a in self.apps:
            if a.alive():
                a.stop()
        for h in self.hosts:
            if h.etcd.alive():
                h.etcd.stop()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for root, _, files in os.walk(self.tmp):
            for f in files:
                if f.endswith(".log"):
                    for line in harness.sanitizer_findings(os.path.join(root, f)):
                        errors.append(f"{f}: {line}")
        for h in self.hosts:
            shutil.rmtree(os.path.join(h.tmp, "etcd"), ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("cluster")))
    yield c
    c.close()


def test_tunnel_on_host3_is_in_every_registry(cluster):
    h1, h2, h3 = cluster.hosts
    c = h3.client("--name", "three", h3.app())
    assert c.url == "http://three.localhost:8080/"
    assert cluster.keys()["three"]["host"] == "h3"
    for h in (h1, h2, h3):
        harness.wait_for(lambda h=h: h.rows().get("three") == "h3",
                         what=f"tunnel three in {h.name}'s registry")
    # exposectl list says which host holds it, on every host.
    for h in (h1, h3):
        out = subprocess.run([os.path.join(harness.BIN, "exposectl"), "--registry",
                              h.registry, "list"], capture_output=True, text=True,
                             check=True, env=harness.sanitizer_env()).stdout.split()
        assert out[1] == "three" and out[-1] == "h3", out
    # On its own host the visitor reaches the app, and on every other host
    # too: the local broker relays over its peer link to host 3's.
    for h in (h3, h1, h2):
        code, body = h.get("three", "/hello")
        assert (code, body) == (200, b"hello"), (h.name, code, body)
    c.proc.stop(signal.SIGINT)
    for h in (h1, h2, h3):
        harness.wait_for(lambda h=h: "three" not in h.rows(),
                         what=f"tunnel three gone from {h.name}'s registry")
    assert "three" not in cluster.keys()


# --- the peer link, seen by a peer that the test plays -----------------

CHALLENGE, AUTH, ERROR, OPEN, DATA, FIN, RST = 1, 2, 5, 16, 17, 18, 19
PEER_VERSION, SIGN_DIALER, SIGN_LISTENER = 0x81, 0x81, 0x82


def frame(kind, stream, payload=b""):
    return (bytes([kind]) + len(payload).to_bytes(3, "big") + stream.to_bytes(4, "big") +
            payload)


def signed(version, nonce, server, dialed, binding):
    """What a handshake signature covers (expose(7)): the tag, a version
    byte, the nonce, the challenger's name and the dialled address each
    after its length, and the binding: on the peer link, the signer's key
    that seals the link."""
    return (b"expose-auth-v2\0" + bytes([version]) + nonce + bytes([len(server)]) +
            server.encode() + bytes([len(dialed)]) + dialed.encode() + binding)


def xnonce(n):
    return n.to_bytes(8, "little") + bytes(16)


class Sealed:
    """The peer link's records (lib/seal), spoken by the test: our X25519
    key first, then every byte in XChaCha20-Poly1305 records under a
    counter nonce, with the keys crypto_kx gives each direction."""

    def __init__(self, sock, dialer):
        self.sock = sock
        self.kx, sk = nacl_b.crypto_kx_keypair()
        self.wire = self.kx            # what we sent, as it went
        self.raw = b""
        sock.sendall(self.kx)
        while len(self.raw) < 32:
            more = sock.recv(65536)
            assert more, "closed before its key exchange key"
            self.raw += more
        self.their_kx, self.raw = self.raw[:32], self.raw[32:]
        keys = (nacl_b.crypto_kx_client_session_keys if dialer else
                nacl_b.crypto_kx_server_session_keys)
        self.rx, self.tx = keys(self.kx, sk, self.their_kx)
        self.rx_n = self.tx_n = 0

    def record(self, plain):
        c = nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, None,
                                                               xnonce(self.tx_n), self.tx)
        self.tx_n += 1
        return len(c).to_bytes(4, "big") + c

    def send(self, plain):
        rec = self.record(plain)
        self.wire += rec
        self.sock.sendall(rec)

    def recv(self):
        """The next record opened, or None at the close."""
        while True:
            if len(self.raw) >= 4:
                n = int.from_bytes(self.raw[:4], "big")
                if len(self.raw) >= 4 + n:
                    c, self.raw = self.raw[4:4 + n], self.raw[4 + n:]
                    plain = nacl_b.crypto_aead_xchacha20poly1305_ietf_decrypt(
                        c, None, xnonce(self.rx_n), self.rx)
                    self.rx_n += 1
                    return plain
            try:
                more = self.sock.recv(65536)
            except ConnectionResetError:
                more = b""
            if not more:
                return None
            self.raw += more


class Peer:
    """A connection to a broker's peer-listen from another host's
    namespace: the test speaks the link's records and frames itself."""

    def __init__(self, frm, to):
        self.to = to
        self.dialed = f"ws://{to.addr}:{PEER_PORT}"
        self.sock = in_ns(frm.ns, socket.create_connection, (to.addr, PEER_PORT),
                          harness.scaled(10))
        self.sock.settimeout(harness.scaled(20))
        self.sealed = Sealed(self.sock, dialer=True)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, frames):
        self.sealed.send(frames)

    def read(self):
        """The next frame (kind, stream, payload), or None at the close."""
        while True:
            if len(self.buf) >= 8:
                n = int.from_bytes(self.buf[1:4], "big")
                if len(self.buf) >= 8 + n:
                    f = (self.buf[0], int.from_bytes(self.buf[4:8], "big"), self.buf[8:8 + n])
                    self.buf = self.buf[8 + n:]
                    return f
            more = self.sealed.recv()
            if more is None:
                return None
            self.buf += more

    def challenge(self):
        kind, stream, p = self.read()
        assert (kind, stream, p[0]) == (CHALLENGE, 0, PEER_VERSION)
        assert p[33:].decode() == self.to.name
        self.nonce = p[1:33]

    def hello(self, name, sk, pk=None, dialed=None, nonce=None, binding=None):
        """Our CHALLENGE and AUTH, as a dialer named name; returns them."""
        self.mine = os.urandom(32)
        self.name = name
        dialed = dialed or self.dialed
        binding = binding or self.sealed.kx
        sig = sk.sign(signed(SIGN_DIALER, nonce or self.nonce, self.to.name, dialed, binding))
        out = (frame(CHALLENGE, 0, bytes([PEER_VERSION]) + self.mine + name.encode()) +
               frame(AUTH, 0, (pk or raw_pk(sk)) + sig + binding + dialed.encode()))
        self.send(out)
        return out

    def proven(self):
        """The listener's AUTH: its key and a signature over our challenge."""
        kind, _, p = self.read()
        assert kind == AUTH, p
        assert p[:32] == self.to.pk
        assert p[96:128] == self.sealed.their_kx     # it signed the link's key
        assert p[128:].decode() == self.dialed
        Ed25519PublicKey.from_public_bytes(p[:32]).verify(
            p[32:96], signed(SIGN_LISTENER, self.mine, self.name, self.dialed,
                             self.sealed.their_kx))

    def refused(self):
        """The ERROR that ends a refused handshake, then the close."""
        f = self.read()
        assert f is not None and f[0] == ERROR, f
        assert self.read() is None
        return f[2][2:].decode()


def set_peer_keys(h, extra=""):
    """h's peer-keys: the hosts' keys and extra lines (read again at the
    next handshake)."""
    tmp = h.peer_keys + ".new"
    write_peer_keys(tmp, h.cluster.hosts, extra)
    os.rename(tmp, h.peer_keys)


@pytest.fixture(scope="module")
def tester(cluster):
    """A key host 3 lists in peer-keys for a host named tester."""
    sk = Ed25519PrivateKey.generate()
    set_peer_keys(cluster.hosts[2], pk_line("tester", raw_pk(sk)))
    return sk


def test_visitor_on_host1_reaches_host3_post_download_and_websocket(cluster):
    h1, _, h3 = cluster.hosts
    c = h3.client("--name", "far", h3.app())
    harness.wait_for(lambda: h1.rows().get("far") == "h3", what="far copied to h1")
    before = {h.name: harness.fd_count(h.broker.proc.pid) for h in (h1, h3)}
    m1, m3 = h1.metrics(), h3.metrics()
    body = os.urandom(3 * 1024 * 1024)
    path = os.path.join(cluster.tmp, "body.bin")
    with open(path, "wb") as f:
        f.write(body)
    # A body and a download of many windows: the link's credit carries them.
    code, out = h1.get("far", "/sink", "--data-binary", f"@{path}")
    assert code == 200, out
    assert json.loads(out) == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    code, out = h1.get("far", "/bytes?n=5000000")
    assert code == 200 and len(out) == 5000000
    # A websocket: the upgrade, then frames both ways.
    assert in_ns(h1.ns, ws_echo, h1.edge_port, "far", b"across hosts") == b"across hosts"
    # The app saw the visitor's address as host 1's edge did.
    log = json.loads(h3.get("far", "/__log")[1])
    fwd = [dict(zip(map(str.lower, e["headers"][::2]), e["headers"][1::2])) for e in log]
    assert any(f.get("x-forwarded-for") == "127.0.0.1" for f in fwd), fwd
    # The operator sees the link and its streams: host 1 relayed the POST,
    # the download and the websocket to host 3, which served them.
    relayed = 'expose_peer_streams_total{peer="h3"}'
    now1, now3 = h1.metrics(), h3.metrics()
    assert now1['expose_peer_link_up{peer="h3"}'] == 1
    assert now1[relayed] - m1[relayed] >= 3
    assert now3["expose_peer_streams_in_total"] - m3["expose_peer_streams_in_total"] >= 3
    assert now3["expose_peer_links_in"] == 2    # h1's and h2's
    # Each relayed stream's descriptors (the edge's connection on host 1,
    # the socketpair on host 3) went with it.
    for h in (h1, h3):
        harness.wait_for(lambda h=h: harness.fd_count(h.broker.proc.pid) <= before[h.name],
                         what=f"{h.name}'s broker's descriptors back to before")
    c.proc.stop(signal.SIGINT)


def ws_echo(port, name, message):
    """One websocket message to /ws and its echo, over a plain socket."""
    with socket.create_connection(("127.0.0.1", port), harness.scaled(20)) as s:
        s.settimeout(harness.scaled(20))
        s.sendall(f"GET /ws HTTP/1.1\r\nHost: {name}.localhost\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        head = harness.recv_until(s, lambda b: b"\r\n\r\n" in b)
        assert head.startswith(b"HTTP/1.1 101"), head
        rest = head.split(b"\r\n\r\n", 1)[1]
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(message)]) + mask +
                  bytes(b ^ mask[i % 4] for i, b in enumerate(message)))
        got = harness.recv_until(s, lambda b: len(b) >= 2 + len(message), rest)
        assert got[0] == 0x81 and got[1] == len(message), got
        return got[2:2 + len(message)]


def test_unlisted_peer_key_is_refused_with_the_fix(cluster):
    h1, _, h3 = cluster.hosts
    stranger = Ed25519PrivateKey.generate()
    text = "expose-ed25519 " + base64.b64encode(raw_pk(stranger)).decode()
    start = len(h3.log())
    p = Peer(h1, h3)
    p.challenge()
    p.hello("stranger", stranger)
    assert p.refused().startswith("key of host stranger not in peer-keys")
    lines = [ln for ln in h3.log()[start:].splitlines() if "peer refused" in ln]
    assert len(lines) == 1, lines
    assert f"add the line: names=stranger {text}" in lines[0]
    assert h3.metrics()['expose_peer_refused_total{peer="in"}'] >= 1
    # A listed key speaks only for the host it is listed for.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("h2", Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(open(cluster.hosts[1].host_key).read().split()[1])))
    p.proven()
    p.close()
    p = Peer(h1, h3)
    p.challenge()
    p.hello("h1", Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(open(cluster.hosts[1].host_key).read().split()[1])))
    assert "not in peer-keys" in p.refused()


def test_replayed_forged_and_relayed_handshakes_fail(cluster, tester):
    h1, h2, h3 = cluster.hosts
    p = Peer(h1, h3)
    p.challenge()
    recorded = p.hello("tester", tester)
    p.proven()             # the listener proved its key too
    p.close()
    wire = p.sealed.wire
    # The same AUTH on a new connection: it signed the old link's key.
    p = Peer(h1, h3)
    p.challenge()
    p.send(recorded)
    assert "signed for another sealing key" in p.refused()
    # The same bytes as they crossed the wire: sealed for the old link's
    # keys, they do not open on a new one.
    start = len(h3.log())
    p = Peer(h1, h3)
    p.challenge()
    p.sock.sendall(wire[32:])
    assert p.read() is None
    harness.wait_for(lambda: "does not open" in h3.log()[start:],
                     what="h3 logging a record that did not open")
    # A signature over a key of the test's choosing, not the link's: what
    # a host in the middle, with links of its own to both, would send.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", tester, binding=os.urandom(32))
    assert "signed for another sealing key" in p.refused()
    # A record changed on the way: the link ends, nothing of it is read.
    start = len(h3.log())
    p = Peer(h1, h3)
    p.challenge()
    rec = bytearray(p.sealed.record(frame(CHALLENGE, 0, bytes([PEER_VERSION]) +
                                          os.urandom(32) + b"tester")))
    rec[10] ^= 1
    p.sock.sendall(bytes(rec))
    assert p.read() is None
    harness.wait_for(lambda: "does not open" in h3.log()[start:],
                     what="h3 logging a changed record")
    # A listed key, signed by another.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", Ed25519PrivateKey.generate(), pk=raw_pk(tester))
    assert "does not verify" in p.refused()
    # Signed for another host's address: one that relays a handshake.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", tester, dialed=f"ws://{h2.addr}:{PEER_PORT}")
    assert "signed for another address" in p.refused()


def test_peer_streams_for_other_names_are_reset_and_garbage_ends_only_its_link(
        cluster, tester):
    h1, _, h3 = cluster.hosts
    c = h3.client("--name", "sturdy", h3.app())
    harness.wait_for(lambda: h1.rows().get("sturdy") == "h3", what="sturdy copied to h1")
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", tester)
    p.proven()
    # A name host 3 does not hold: that stream is reset, the link stays.
    p.send(frame(OPEN, 1, f"EXPOSE/1 OPEN nosuch {h1.addr} 5555 http".encode()))
    kind, stream, _ = p.read()
    assert (kind, stream) == (RST, 1)
    # One it holds: served like an edge's connection.
    p.send(frame(OPEN, 3, f"EXPOSE/1 OPEN sturdy {h1.addr} 5555 http".encode()) +
                   frame(DATA, 3, b"GET /hello HTTP/1.1\r\nHost: sturdy.localhost\r\n"
                                  b"Connection: close\r\n\r\n"))
    got = b""
    while True:
        kind, stream, payload = p.read()
        assert stream == 3
        if kind == FIN:
            break
        assert kind == DATA
        got += payload
    # OPENED comes first only if the app was slow (expose(7)).
    assert re.match(rb"(EXPOSE/1 OPENED\n)?EXPOSE/1 OK\nHTTP/1.1 200", got), got
    assert got.endswith(b"hello")
    # Garbage: a frame of no known type ends this link and nothing else.
    start = len(h3.log())
    p.send(frame(99, 0, b"junk"))
    assert p.read() is None
    harness.wait_for(lambda: "peer link down host=tester" in h3.log()[start:],
                     what="host 3 to log the link it ended")
    assert h1.get("sturdy", "/hello") == (200, b"hello")
    # A stream line that is not one ends the link too.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", tester)
    p.proven()
    p.send(frame(OPEN, 1, b"EXPOSE/9 SHOUT at everyone"))
    assert p.read() is None
    # Nor may a peer count wrong passwords here: those stay where they came.
    p = Peer(h1, h3)
    p.challenge()
    p.hello("tester", tester)
    p.proven()
    p.send(frame(OPEN, 1, f"EXPOSE/1 AUTHFAIL sturdy {h1.addr} 5555 http".encode()))
    assert p.read() is None
    assert h1.get("sturdy", "/hello") == (200, b"hello")
    c.proc.stop(signal.SIGINT)


class FakeListener:
    """A peer broker that host h's broker dials, played by the test: it
    listens in h's namespace on loopback."""
    PORT = 7002

    def __init__(self, h, name):
        self.h = h
        self.name = name
        self.dialed = f"ws://127.0.0.1:{self.PORT}"
        self.sock = in_ns(h.ns, socket.create_server, ("127.0.0.1", self.PORT))
        self.sock.settimeout(harness.scaled(20))

    def handshake(self, sk):
        """Accepts the broker's next dial and answers it as self.name with
        sk; checks the broker's own proof on the way.  A Peer for what
        follows."""
        conn, _ = self.sock.accept()
        conn.settimeout(harness.scaled(20))
        p = Peer.__new__(Peer)
        p.sock, p.buf, p.to, p.dialed = conn, b"", self.h, self.dialed
        p.sealed = Sealed(conn, dialer=False)
        nonce = os.urandom(32)
        p.send(frame(CHALLENGE, 0, bytes([PEER_VERSION]) + nonce + self.name.encode()))
        kind, _, c = p.read()
        assert kind == CHALLENGE and c[33:] == self.h.name.encode()
        kind, _, a = p.read()
        assert kind == AUTH and a[:32] == self.h.pk and a[128:] == self.dialed.encode()
        assert a[96:128] == p.sealed.their_kx
        Ed25519PublicKey.from_public_bytes(a[:32]).verify(
            a[32:96], signed(SIGN_DIALER, nonce, self.name, self.dialed, p.sealed.their_kx))
        sig = sk.sign(signed(SIGN_LISTENER, c[1:33], self.h.name, self.dialed, p.sealed.kx))
        p.send(frame(AUTH, 0, raw_pk(sk) + sig + p.sealed.kx + self.dialed.encode()))
        return p

    def close(self):
        self.sock.close()


def test_dialer_checks_the_listener_key_and_lets_it_open_nothing(cluster):
    _, h2, _ = cluster.hosts
    fake = FakeListener(h2, "h9")
    sk = Ed25519PrivateKey.generate()
    h2.restart_broker(f",h9=127.0.0.1:{FakeListener.PORT}")
    # A listener whose key h2's peer-keys does not list for h9: refused.
    p = fake.handshake(sk)
    assert p.refused().startswith("key of host h9 not in peer-keys")
    assert "peer refused host=h9" in h2.log()
    # Listed: the link is up, and a listener may open no stream on it.
    start = len(h2.log())
    set_peer_keys(h2, pk_line("h9", raw_pk(sk)))
    p = fake.handshake(sk)
    harness.wait_for(lambda: "h9" in h2.links_up(start), what="h2's link to h9 up")
    p.send(frame(OPEN, 2, f"EXPOSE/1 OPEN x {h2.addr} 1 http".encode()))
    assert p.read() is None
    harness.wait_for(lambda: "peer link down host=h9" in h2.log()[start:],
                     what="h2 to end the link h9 opened a stream on")
    fake.close()
    set_peer_keys(h2)
    h2.restart_broker()


def test_link_cut_mid_request_gives_502_and_is_dialled_again(cluster):
    h1, _, h3 = cluster.hosts
    c = h3.client("--name", "steadfast", h3.app())
    harness.wait_for(lambda: h1.rows().get("steadfast") == "h3",
                     what="steadfast copied to h1")
    held = subprocess.Popen(h1.curl("steadfast", "/barrier?n=2"), stdout=subprocess.PIPE)
    harness.wait_for(lambda: b"/barrier" in h3.get("steadfast", "/__log")[1],
                     what="the request to reach the app")
    start = len(h1.log())
    # The kernel aborts host 1's end of its link to host 3; both brokers live.
    subprocess.run(h1.argv("ss", "-K", "dst", h3.addr, "dport", "=", f":{PEER_PORT}"),
                   check=True, capture_output=True)
    out, _ = held.communicate(timeout=harness.scaled(30))
    code, body = curl_result(out)
    assert code == 502 and b"closed before the app answered" in body, (code, body)
    harness.wait_for(lambda: "h3" in h1.links_up(start), what="h1's link to h3 dialled again")
    assert "peer link down host=h3" in h1.log()[start:]
    assert h1.get("steadfast", "/hello") == (200, b"hello")
    assert c.proc.alive()    # the tunnel itself never noticed
    c.proc.stop(signal.SIGINT)


def test_link_dropped_mid_request_gives_502_and_the_link_comes_back(cluster):
    h1, h2, h3 = cluster.hosts
    app = h3.app()
    c = h3.client("--name", "brittle", app)
    harness.wait_for(lambda: h1.rows().get("brittle") == "h3", what="brittle copied to h1")
    # A request the app holds (it answers once two wait), in flight when
    # host 3's broker dies.
    held = subprocess.Popen(h1.curl("brittle", "/barrier?n=2"), stdout=subprocess.PIPE)
    harness.wait_for(lambda: b"/barrier" in h3.get("brittle", "/__log")[1],
                     what="the request to reach the app")
    start = {h.name: len(h.log()) for h in (h1, h2)}
    drops = h1.metrics()['expose_peer_link_drops_total{peer="h3"}']
    h3.broker.kill()
    out, _ = held.communicate(timeout=harness.scaled(30))
    code, body = curl_result(out)
    assert code == 502 and b"closed before the app answered" in body, (code, body)
    # The operator sees the link down, and counted.
    m = h1.metrics()
    assert m['expose_peer_link_up{peer="h3"}'] == 0
    assert m['expose_peer_link_drops_total{peer="h3"}'] == drops + 1
    # Until it is back, visitors get the 502 at once, not a hang (or the 404
    # once the dead broker's lease took the copies).
    assert h1.get("brittle")[0] in (502, 404)
    # Back: the other hosts dial it again, the client binds the name again
    # (a new one with the same key, rather than wait out its retry), and
    # host 1's visitors reach the app through the new link.
    c.proc.stop(signal.SIGINT)
    h3.broker.start()
    for h in (h1, h2):
        harness.wait_for(lambda h=h: "h3" in h.links_up(start[h.name]),
                         what=f"{h.name}'s link to the new broker on h3")
    again = h3.client("--name", "brittle", app, key_dir=c.key_dir)
    harness.wait_for(lambda: h1.get("brittle", "/hello") == (200, b"hello"),
                     what="brittle reached from h1 again")
    again.proc.stop(signal.SIGINT)


def test_a_name_taken_over_on_another_host_is_copied_once_the_old_session_goes(cluster):
    """The same key binds its name on host 1 while its old session on
    host 3 lives on: host 3's broker keeps its own row (it holds that
    session), and its mirror holds the copy back until the row goes, with
    no event from etcd to say when."""
    h1, h2, h3 = cluster.hosts
    old = h3.client("--name", "twin", h3.app())
    harness.wait_for(lambda: h2.rows().get("twin") == "h3", what="twin copied to h2")
    new = h1.client("--name", "twin", h1.app(), key_dir=old.key_dir)
    assert new.url == old.url
    harness.wait_for(lambda: h2.rows().get("twin") == "h1", what="twin's copy on h2 moved")
    assert cluster.keys()["twin"]["host"] == "h1"
    assert h3.rows().get("twin") == "h3"    # the live session's own row
    old.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: h3.rows().get("twin") == "h1", what="the held-back copy on h3")
    assert h3.get("twin", "/hello") == (200, b"hello")
    # The old session's release deleted nothing of the new one's.
    assert cluster.keys()["twin"]["host"] == "h1"
    new.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: "twin" not in h3.rows(), what="twin gone from h3")


def test_name_claimed_on_host2_is_refused_to_another_key_on_host1(cluster):
    h1, h2, _ = cluster.hosts
    owner = h2.client("--name", "shared", h2.app())
    harness.wait_for(lambda: h1.rows().get("shared") == "h2", what="the copy on h1")
    # Host 1's registry already says so; the refusal is the single host's.
    other = h1.client("--name", "shared", h1.app(), wait_url=False)
    assert other.proc.exit_status(20) != 0
    assert "name 'shared' is taken" in other.text()
    # Without the copy (the mirror stopped, as if it lagged), etcd's
    # transaction refuses it just the same.
    assert h1.mirror.stop() == 0
    assert "shared" not in h1.rows()
    late = h1.client("--name", "shared", h1.app(), wait_url=False)
    assert late.proc.exit_status(20) != 0
    assert "name 'shared' is taken" in late.text()
    assert "shared" not in h1.rows()    # the refused BIND left nothing
    assert cluster.keys()["shared"]["host"] == "h2"
    h1.start_mirror()
    assert h1.rows().get("shared") == "h2"
    owner.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: "shared" not in cluster.keys(), what="the key to go")


def test_hostile_values_in_etcd_are_not_copied(cluster):
    h1 = cluster.hosts[0]
    bad = {"junk": "not json", "ctl": json.dumps({
        "name": "ctl", "host": "h\x1b[2J", "session": 1, "key": "k", "addr": "a",
        "url": "u", "target": "t", "since": 1, "auth": "", "allow": ""}),
        "mismatch": json.dumps({
        "name": "other", "host": "h9", "session": 1, "key": "k", "addr": "a",
        "url": "u", "target": "t", "since": 1, "auth": "", "allow": ""})}
    for name, value in bad.items():
        status, _ = h1.etcd_call("/v3/kv/put", {"key": b64(PREFIX + name), "value": b64(value)})
        assert status == 200
    for h in cluster.hosts:
        log = os.path.join(h.tmp, "mirror.log")
        harness.wait_for(lambda: all(f"etcd key {PREFIX}{n}: not a tunnel's value" in
                                     open(log).read() for n in bad),
                         what=f"{h.name}'s mirror to skip the bad values")
        assert not set(bad) & set(h.rows())
        assert h.mirror.alive()
    for name in bad:
        h1.etcd_call("/v3/kv/deleterange", {"key": b64(PREFIX + name)})


def test_killed_broker_tunnels_leave_every_registry(cluster):
    h1, h2, h3 = cluster.hosts
    owner = h3.client("--name", "doomed", h3.app())
    for h in (h1, h2):
        harness.wait_for(lambda h=h: h.rows().get("doomed") == "h3",
                         what=f"doomed copied to {h.name}")
    h3.broker.kill()
    killed = time.monotonic()
    # Until the lease runs out the copies stay: visitors elsewhere get the
    # 502 that says where, and then a 404, never a hang.
    seen = set()

    def gone():
        code, _ = h1.get("doomed")
        seen.add(code)
        return "doomed" not in h1.rows() and "doomed" not in h2.rows()
    harness.wait_for(gone, timeout=LEASE_TTL_S + 10, what="the lease to take the copies")
    print(f"cluster: a killed broker's tunnels left the other hosts' registries "
          f"{time.monotonic() - killed:.1f} s after (lease TTL {LEASE_TTL_S} s)")
    assert "doomed" not in cluster.keys()
    assert seen <= {502, 404}, seen
    assert h1.get("doomed")[0] == 404 and h2.get("doomed")[0] == 404
    # Host 3's own row is its dead broker's: the next broker sweeps it
    # (its client, which would bind the name again there, is stopped first).
    owner.proc.stop(signal.SIGINT)
    start = {h.name: len(h.log()) for h in (h1, h2)}
    h3.start_broker()
    assert "doomed" not in h3.rows()
    assert h3.get("doomed")[0] == 404
    # The other hosts' links reach the new broker (dialled with backoff).
    for h in (h1, h2):
        harness.wait_for(lambda h=h: "h3" in h.links_up(start[h.name]),
                         what=f"{h.name}'s link to the new broker on h3")


def test_etcd_leader_killed_routing_goes_on_and_names_resume(cluster):
    leader = cluster.leader()
    assert leader is not None
    local = leader.client("--name", "steady", leader.app())
    assert leader.get("steady")[0] == 200
    leader.etcd.kill()
    others = [h for h in cluster.hosts if h is not leader]
    # Routing never waits on etcd: the edge reads its registry.
    assert leader.get("steady")[0] == 200
    for h in others:
        assert h.get("steady", "/hello") == (200, b"hello")    # over the peer link
    # A new name on the host whose member died: its broker goes to the
    # others, and the claim succeeds once they have elected a leader.
    late = leader.client("--name", "after-election", leader.app())
    assert late.url == "http://after-election.localhost:8080/"
    assert cluster.keys()["after-election"]["host"] == leader.name
    for h in others:
        harness.wait_for(lambda h=h: h.rows().get("after-election") == leader.name,
                         what=f"the new name copied to {h.name}")
    # The mirror on the host whose member died goes to another member.
    elsewhere = others[0].client("--name", "seen-there", others[0].app())
    harness.wait_for(lambda: leader.rows().get("seen-there") == others[0].name,
                     what=f"{leader.name}'s mirror to follow another member")
    assert leader.get("steady")[0] == 200 and leader.get("after-election")[0] == 200
    # The member comes back and catches up.
    restart_member(leader)
    for c in (local, late, elsewhere):
        c.proc.stop(signal.SIGINT)


def test_host_cut_off_from_the_majority_refuses_new_names_and_says_why(cluster):
    h1, h2, h3 = cluster.hosts
    kept = h1.client("--name", "kept", h1.app())
    h2.etcd.kill()
    h3.etcd.kill()
    # Host 1's member is alone: no leader, no new name, and the client is
    # told why; the tunnel it has keeps serving.
    refused = h1.client("--name", "lonely", h1.app(), wait_url=False)
    assert refused.proc.exit_status(30) != 0
    assert "the cluster cannot be reached, so no name can be claimed now" in refused.text()
    assert "lonely" not in h1.rows()
    assert h1.get("kept")[0] == 200
    # A name this broker holds already stays its key's: the client back on
    # a new connection gets it.
    back = h1.client("--name", "kept", h1.app(), key_dir=kept.key_dir)
    assert back.url == "http://kept.localhost:8080/"
    assert h1.get("kept")[0] == 200
    restart_member(h2)
    restart_member(h3)
    again = h1.client("--name", "lonely", h1.app())
    assert again.url == "http://lonely.localhost:8080/"
    for c in (kept, back, again):
        if c.proc.alive():
            c.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: not {"kept", "lonely"} & set(cluster.keys()),
                     what="their keys to go")


def restart_member(h):
    """The killed member starts again on its data (it rejoins)."""
    h.start_etcd()
    harness.wait_for(h.etcd_healthy, what=f"etcd on {h.name} to rejoin")


def test_nothing_left_behind(cluster):
    baseline = {h.name: harness.fd_count(h.broker.proc.pid) for h in cluster.hosts}
    c = cluster.hosts[1].client("--name", "last", cluster.hosts[1].app())
    harness.wait_for(lambda: all(h.rows().get("last") == "h2" for h in cluster.hosts),
                     what="last in every registry")
    c.proc.stop(signal.SIGINT)
    harness.wait_for(lambda: not cluster.keys(), what="no tunnel keys in etcd")
    for h in cluster.hosts:
        harness.wait_for(lambda h=h: not h.rows(), what=f"{h.name}'s registry empty")
        harness.wait_for(lambda h=h: harness.fd_count(h.broker.proc.pid) <= baseline[h.name],
                         what=f"{h.name}'s broker's descriptors back to before")
    cluster.close()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert cluster.tag not in listed


def test_a_killed_runs_namespaces_are_reaped_and_a_live_ones_kept():
    """The fixture's own clean-up: what a killed run left goes, what a live
    run holds stays."""
    gone = harness.spawn(["/bin/true"])
    gone.wait()
    live = harness.spawn(["sleep", "300"])
    stale, held = f"xc{gone.pid}h2", f"xc{live.pid}hub"
    try:
        assert not pid_alive(gone.pid)
        ip("netns", "add", stale)
        ip("netns", "add", held)
        reap_stale_namespaces()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        names = {line.split(" ", 1)[0] for line in listed.splitlines()}
        assert stale not in names
        assert held in names
    finally:
        live.kill()
        live.wait()
        for ns in (stale, held):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
