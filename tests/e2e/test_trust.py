"""Trust boundaries (issue 12): a server that relays another's handshake,
a second key after a live name, a key that claims names without end, and
hostile bytes in what a client says."""
import asyncio
import os
import socket
import ssl
import struct
import subprocess
import threading

import pytest

import harness
from conftest import Stack
from test_access import NO_CHANNEL, errors, frame, signed_auth, speak
from test_tls import pki  # noqa: F401  (the fixture)

CHALLENGE, AUTH, BIND, BOUND, ERROR = 1, 2, 3, 4, 5


def frames_of(msg):
    """The frames in one websocket message: (type, stream, payload)."""
    out = []
    while msg:
        n = int.from_bytes(msg[1:4], "big")
        out.append((msg[0], struct.unpack(">I", msg[4:8])[0], msg[8:8 + n]))
        msg = msg[8 + n:]
    return out


class HandshakeRelay:
    """A malicious server M: the developer's client dials it, and it
    relays the real broker's CHALLENGE to the client and the client's AUTH
    back to the broker, then asks the broker for the victim's name itself.
    What the broker answered M is in self.answers."""

    def __init__(self, broker_port, victim_name):
        self.broker_port = broker_port
        self.victim = victim_name.encode()
        self.answers = []
        self.done = threading.Event()
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_until_complete, args=(self.serve(),),
                         daemon=True).start()
        assert self.ready.wait(10)

    async def serve(self):
        import websockets
        async with websockets.serve(self.handle, "127.0.0.1", 0,
                                    subprotocols=["expose.2"]) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await asyncio.Future()

    async def handle(self, client):
        import websockets
        try:
            async with websockets.connect(f"ws://127.0.0.1:{self.broker_port}/",
                                          subprotocols=["expose.2"]) as broker:
                await client.send(await broker.recv())          # B's CHALLENGE
                auth = None
                while auth is None:
                    for f in frames_of(await client.recv()):
                        if f[0] == AUTH:
                            auth = frame(*f)
                # The client's AUTH, then M's own BIND for the victim's name.
                await broker.send(auth + frame(BIND, 1, b"name=" + self.victim + b"\n"))
                try:
                    while True:
                        msg = await asyncio.wait_for(broker.recv(), 10)
                        self.answers += frames_of(msg)
                        await client.send(msg)
                except (websockets.ConnectionClosed, asyncio.TimeoutError):
                    pass
        finally:
            self.done.set()


def test_relayed_handshake_cannot_bind_the_victims_name(stack, tmp):
    keys = os.path.join(tmp, "developer")
    victim = stack.expose_app("--name", "victim", key_dir=keys)
    held = stack.broker.sessions()
    relay = HandshakeRelay(stack.broker.ws_port, "victim")
    # The developer points the same key at M (a typo, a config from M).
    dupe = stack.client(stack.app.port, "--name", "victim", key_dir=keys,
                        server=f"ws://127.0.0.1:{relay.port}", wait_url=False)
    assert relay.done.wait(harness.scaled(20))
    assert errors(relay.answers) == [
        (8, f"signed for ws://127.0.0.1:{relay.port}, which is not this server "
            f"(ws://localhost:{stack.broker.ws_port},ws://127.0.0.1:{stack.broker.ws_port}): "
            "a server between you relayed it?")]
    assert BOUND not in [t for t, _, _ in relay.answers]
    assert dupe.proc.exit_status(20) == 77
    # The developer's own tunnel was not touched.
    assert stack.broker.sessions() == held
    assert victim.proc.alive()
    assert "another expose" not in victim.text()
    assert stack.get(victim.url + "hello") == (200, b"hello")
    harness.wait_in_file(stack.broker.log, r"handshake refused key=\w+ addr=127\.0\.0\.1 "
                         r"reason=\"signed for ws://127\.0\.0\.1:%d" % relay.port)


def test_auth_signed_for_another_server_name_refused(tmp):
    """A broker that answers only to its configured public URL refuses an
    AUTH signed for any other, the same host under another port or scheme
    included; a non-canonical URL is malformed."""
    from nacl.signing import SigningKey
    port = harness.free_port()
    s = Stack(tmp, ws_port=port, broker_extra=(
        "--server-urls", f"ws://Tunnel.Example.net:{port}/ , wss://tunnel.example.net"))
    try:
        key = SigningKey.generate()

        def attempt(dialed, binding=NO_CHANNEL):
            return errors(speak(port, lambda ch: [
                signed_auth(key, ch, dialed=dialed, binding=binding),
                frame(BIND, 1, b"name=elsewhere\n")]))
        ours = f"ws://tunnel.example.net:{port}".encode()
        for other in (f"ws://127.0.0.1:{port}", f"ws://tunnel.example.net:{port + 1}",
                      "ws://tunnel.example.net:443", "ws://evil.example:80"):
            got = attempt(other.encode())
            assert got and got[0][0] == 8 and got[0][1].startswith(
                f"signed for {other}, which is not this server"), (other, got)
        assert attempt(ours, binding=b"\x01" * 32) == [
            (8, "signed for another TLS connection: something between you and this "
                "server ended TLS and relayed it")]
        assert attempt(f"ws://Tunnel.example.net:{port}".encode()) == [(3, "malformed AUTH")]
        assert attempt(b"ws://tunnel.example.net") == [(3, "malformed AUTH")]
        assert s.broker.rows() == []
        got = speak(port, lambda ch: [signed_auth(key, ch, dialed=ours),
                                      frame(BIND, 1, b"name=elsewhere\n")])
        assert got[0][0] == BOUND and b"name=elsewhere" in got[0][2]
        metrics = subprocess.run(
            [os.path.join(s.bin, "exposectl"), "--socket", s.broker.socket, "metrics"],
            capture_output=True, text=True, env=harness.sanitizer_env()).stdout
        assert 'expose_handshakes_total{result="other_server"} 5' in metrics
    finally:
        s.close()


def test_bad_server_urls_refused_at_start(tmp):
    out = subprocess.run(
        [os.path.join(harness.BIN, "exposed"), "--check-config", "--server-urls",
         "ws://ok.example, http://tunnel.example.net"],
        capture_output=True, text=True, env=harness.sanitizer_env())
    assert out.returncode == 78
    assert "server-urls 'http://tunnel.example.net': want ws://HOST[:PORT] or " \
           "wss://HOST[:PORT]" in out.stderr


def test_old_protocol_client_told_to_upgrade(stack):
    """A client of protocol 1 gets, instead of a challenge, an ERROR it
    prints and stops on (code 8), and the close."""
    import websockets

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{stack.broker.ws_port}/",
                                      subprotocols=["expose.1"]) as ws:
            first = await ws.recv()
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                return first, True
            return first, False
    first, closed = asyncio.run(run())
    assert errors(frames_of(first)) == [(8, "this server speaks expose protocol 2; upgrade expose")]
    assert frames_of(first)[0][1] == 0 and closed


class TlsRelay:
    """A server that ends TLS with a certificate the client trusts and
    relays the bytes inside over its own TLS connection to the broker: the
    URL check alone cannot tell it from the broker (it is listed), the TLS
    channel binding can."""

    def __init__(self, cert, key, ca, broker_port, port):
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(cert, key)
        self.client_ctx = ssl.create_default_context(cafile=ca)
        self.broker_port = broker_port
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = port
        self.socks = []
        self.errors = []    # what failed, for a failing test to show
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        """Each connection in a thread of its own: one that fails its
        handshake does not stop the next from being relayed."""
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return    # closed
            self.socks.append(raw)
            threading.Thread(target=self.relay, args=(raw,), daemon=True).start()

    def upstream(self):
        return self.client_ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", self.broker_port)),
            server_hostname="localhost")

    def relay(self, raw):
        try:
            a = self.server_ctx.wrap_socket(raw, server_side=True)
            b = self.upstream()
        except OSError as e:
            self.errors.append(repr(e))
            raw.close()
            return
        self.socks += [a, b]
        for src, dst in ((a, b), (b, a)):
            threading.Thread(target=self.pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.listener.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_tls_relay_caught_by_channel_binding(tmp, pki):  # noqa: F811
    cert, key = pki["issue"]("site")
    port, relay_port = harness.free_port(), harness.free_port()
    s = Stack(tmp, ws_port=port, broker_extra=(
        "--cert", cert, "--key", key,
        "--server-urls", f"wss://localhost:{port},wss://localhost:{relay_port}"))
    relay = TlsRelay(cert, key, pki["ca"], port, relay_port)
    try:
        keys = os.path.join(tmp, "developer")
        victim = s.client("--ca", pki["ca"], "--name", "victim", s.app.port, key_dir=keys,
                          server=f"wss://localhost:{port}")
        held = s.broker.sessions()
        dupe = s.client("--ca", pki["ca"], "--name", "victim", s.app.port, key_dir=keys,
                        server=f"wss://localhost:{relay_port}", wait_url=False)
        assert dupe.proc.exit_status(20) == 77, (dupe.text(), relay.errors)
        assert "signed for another TLS connection" in dupe.text()
        assert s.broker.sessions() == held and victim.proc.alive()
    finally:
        relay.close()
        s.close()


def test_tls_ending_proxy_in_front_of_plain_broker(tmp, pki):  # noqa: F811
    """An operator whose load balancer ends TLS lists its wss:// URL: the
    broker cannot see that channel and takes the client's binding."""
    cert, key = pki["issue"]("lb")
    proxy_port, port = harness.free_port(), harness.free_port()
    s = Stack(tmp, ws_port=port, broker_extra=("--server-urls", f"wss://localhost:{proxy_port}"))
    proxy = PlainProxy(cert, key, port, proxy_port)
    try:
        c = s.client("--ca", pki["ca"], s.app.port, server=f"wss://localhost:{proxy_port}")
        assert s.get(c.url + "hello") == (200, b"hello")
        # Dialed directly, the broker is not what it was configured as.
        direct = s.client(s.app.port, server=f"ws://127.0.0.1:{port}", wait_url=False)
        assert direct.proc.exit_status(20) == 77
        assert f"signed for ws://127.0.0.1:{port}, which is not this server" in direct.text()
    finally:
        proxy.close()
        s.close()


class PlainProxy(TlsRelay):
    """A load balancer: TLS from clients, plain TCP to the broker."""

    def __init__(self, cert, key, broker_port, port):
        super().__init__(cert, key, None, broker_port, port)

    def upstream(self):
        return socket.create_connection(("127.0.0.1", self.broker_port))


# --- item 5: a refused BIND changes nothing; a live name never lapses ---

def name_row(registry, name):
    import sqlite3
    with sqlite3.connect(f"file:{registry}?mode=ro", uri=True) as db:
        return db.execute("SELECT key, kind, expires FROM names WHERE name = ?",
                          (name,)).fetchone()


def hand_bind(port, key, name, read_frames=1):
    return speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                   frame(BIND, 1, b"name=" + name.encode() + b"\n")],
                 read_frames=read_frames)


def test_live_random_name_cannot_be_taken_while_or_after_use(tmp):
    """A second key asks for a live random name after its quarantine would
    have lapsed: refused, and it records nothing; when the owner's tunnel
    ends the name is still the owner's."""
    import time
    from nacl.signing import SigningKey
    s = Stack(tmp, broker_extra=("--name-quarantine", "3"))
    try:
        owner = s.expose_app(key_dir=os.path.join(tmp, "owner"))
        name = owner.host.split(".")[0]
        owner_key, kind, expires = name_row(s.broker.registry, name)
        assert kind == "random"
        harness.wait_for(lambda: time.time() > expires + 1, what="the quarantine to pass")
        thief = SigningKey.generate()
        port = s.broker.ws_port
        assert errors(hand_bind(port, thief, name)) == [(6, f"name '{name}' is taken")]
        assert name_row(s.broker.registry, name)[:2] == (owner_key, "random")
        assert s.get(owner.url + "hello") == (200, b"hello")
        owner.stop()
        harness.wait_in_file(s.broker.log, r"tunnel down name=%s" % name)
        assert errors(hand_bind(port, thief, name)) == [(6, f"name '{name}' is taken")]
        assert name_row(s.broker.registry, name)[:2] == (owner_key, "random")
    finally:
        s.close()


# --- item 4: names per key are capped, and unused claims expire ---

def test_claims_past_the_key_limit_refused(tmp):
    from nacl.signing import SigningKey
    s = Stack(tmp, broker_extra=("--names-per-key", "3"))
    try:
        key, port = SigningKey.generate(), s.broker.ws_port
        got = speak(port, lambda ch: [signed_auth(key, ch, port=port)] + [
            frame(BIND, i, b"name=claim%d\n" % i) for i in range(1, 5)] + [
            frame(BIND, 5, b"target=random\n")], read_frames=5)
        bound = sorted(p.split(b"\n")[0] for t, _, p in got if t == BOUND)
        claims = [b for b in bound if b.startswith(b"name=claim")]
        assert claims == [b"name=claim1", b"name=claim2", b"name=claim3"]
        assert len(bound) == 4          # and a random name: its tunnel counts instead
        limit = (4, "this key holds 3 names, this server's limit (names-per-key): use one "
                    "of them, or wait until one unused for 30 days is freed, or ask the "
                    "operator to release one")
        assert errors(got) == [limit]
        assert name_row(s.broker.registry, "claim4") is None
        # Later, with nothing live, the key's own names are still its own...
        assert [t for t, _, _ in hand_bind(port, key, "claim2")] == [BOUND]
        # ...its unused random name is freed first, and the claim still refused.
        assert errors(hand_bind(port, key, "claim4")) == [limit]
        assert name_row(s.broker.registry, "claim4") is None
        other = SigningKey.generate()
        assert [t for t, _, _ in hand_bind(port, other, "claim5")] == [BOUND]
    finally:
        s.close()


def test_random_names_of_one_key_stay_bounded(tmp):
    """A key that reconnects again and again gets a new random name each
    time; past names-per-key its oldest unused one is freed."""
    import sqlite3
    from nacl.signing import SigningKey
    s = Stack(tmp, broker_extra=("--names-per-key", "2"))
    try:
        key, port = SigningKey.generate(), s.broker.ws_port
        for _ in range(6):
            got = speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                          frame(BIND, 1, b"target=x\n")])
            assert got[0][0] == BOUND
        with sqlite3.connect(f"file:{s.broker.registry}?mode=ro", uri=True) as db:
            assert db.execute("SELECT count(*) FROM names").fetchone()[0] <= 3
    finally:
        s.close()


def test_unused_claims_expire(tmp):
    import time
    from nacl.signing import SigningKey
    s = Stack(tmp, broker_extra=("--claim-expiry", "1"))
    try:
        key, port = SigningKey.generate(), s.broker.ws_port
        assert [t for t, _, _ in hand_bind(port, key, "forgotten")] == [BOUND]
        harness.wait_in_file(s.broker.log, r"tunnel down name=forgotten")
        expires = name_row(s.broker.registry, "forgotten")[2]
        harness.wait_for(lambda: time.time() > expires + 1, what="the claim to expire")
        # Expired: another key may claim it now, and the sweep deletes rows.
        s.broker.stop()
        s.broker.start()
        harness.wait_in_file(s.broker.log, r"names expired count=1")
        assert name_row(s.broker.registry, "forgotten") is None
        assert [t for t, _, _ in hand_bind(port, SigningKey.generate(), "forgotten")] == [BOUND]
    finally:
        s.close()


# --- item 7: hostile bytes in what a client says ---

@pytest.mark.parametrize("hostile", [b"\x1b[31mred\x1b[0m", b"\x1b]0;pwned\x07", b"a\rb",
                                     b"caf\xc3\xa9", b"\xff\xfe", b"del\x7f"])
def test_bind_with_hostile_bytes_refused(stack, hostile):
    from nacl.signing import SigningKey
    key, port = SigningKey.generate(), stack.broker.ws_port
    got = speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                  frame(BIND, 1, b"name=hostile\ntarget=" + hostile + b"\n")])
    assert errors(got) == [(3, "BIND's target= holds a byte that is not printable ASCII: "
                               "only 0x20 to 0x7e are allowed")]
    assert stack.broker.rows() == []
    assert name_row(stack.broker.registry, "hostile") is None
    log = open(stack.broker.log, "rb").read()
    assert hostile not in log and b"\x1b" not in log


def test_exposectl_escapes_what_the_registry_holds(stack):
    """Whatever wrote a row (an older broker, a hand edit), exposectl list
    and names print no control bytes."""
    import sqlite3
    c = stack.expose_app()
    name = c.host.split(".")[0]
    with sqlite3.connect(stack.broker.registry) as db:
        db.execute("UPDATE tunnels SET target = ? WHERE name = ?",
                   ("\x1b]0;pwned\x07\x1b[2J\rfake\\line", name))
        db.execute("INSERT INTO names (name, key, kind, since) VALUES (?, 'k', 'claimed', 1)",
                   ("evil\x1b[31m",))
    out = subprocess.run([os.path.join(stack.bin, "exposectl"), "--registry",
                          stack.broker.registry, "list"], capture_output=True,
                         env=harness.sanitizer_env(), check=True).stdout
    assert out.split()[-1] == rb"\x1b]0;pwned\x07\x1b[2J\x0dfake\x5cline"
    names = subprocess.run([os.path.join(stack.bin, "exposectl"), "--registry",
                            stack.broker.registry, "names"], capture_output=True,
                           env=harness.sanitizer_env(), check=True).stdout
    assert rb"evil\x1b[31m claimed" in names
    for text in (out, names):
        assert not any(b < 0x20 and b != 0x0a or b >= 0x7f for b in text)


def test_client_shows_a_non_ascii_unix_path_as_question_marks(stack, tmp):
    path = os.path.join(tmp, "caf\u00e9.sock")
    c = stack.client(f"unix:{path}")
    rows = stack.broker.rows()
    assert rows and rows[0][-1] == f"unix:{os.path.join(tmp, 'caf??.sock')}"
    c.stop()


def test_registry_bounded_over_all_keys(tmp):
    """Keys cost nothing to make: names-max bounds what all of them hold."""
    import sqlite3
    from nacl.signing import SigningKey
    s = Stack(tmp, broker_extra=("--names-max", "2"))
    try:
        port = s.broker.ws_port
        for name in ("first", "second"):
            assert [t for t, _, _ in hand_bind(port, SigningKey.generate(), name)] == [BOUND]
        assert errors(hand_bind(port, SigningKey.generate(), "third")) == [
            (4, "this server holds 2 names, its limit (names-max): use a random name, "
                "or ask its operator")]
        for _ in range(3):          # random names still work, replacing unused ones
            got = speak(port, lambda ch: [signed_auth(SigningKey.generate(), ch, port=port),
                                          frame(BIND, 1, b"target=x\n")])
            assert got[0][0] == BOUND
        with sqlite3.connect(f"file:{s.broker.registry}?mode=ro", uri=True) as db:
            assert db.execute("SELECT count(*) FROM names").fetchone()[0] <= 3
    finally:
        s.close()


def test_client_tells_which_to_upgrade_against_an_old_server(stack):
    """The client offers expose.2 then expose.1: a broker of protocol 1
    picks the second, and its CHALLENGE says 1."""
    import websockets
    ready, port = threading.Event(), []

    async def old_broker(ws):
        await ws.send(frame(CHALLENGE, 0, b"\x01" + b"\x00" * 32 + b"localhost"))
        await asyncio.sleep(5)

    async def serve():
        async with websockets.serve(old_broker, "127.0.0.1", 0,
                                    subprotocols=["expose.1"]) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            await asyncio.sleep(harness.scaled(30))
    threading.Thread(target=asyncio.run, args=(serve(),), daemon=True).start()
    assert ready.wait(10)
    c = stack.client(stack.app.port, server=f"ws://127.0.0.1:{port[0]}", wait_url=False)
    assert c.proc.exit_status(20) == 76
    assert "the server speaks expose protocol 1, this client 2: upgrade whichever is older" \
        in c.text()
