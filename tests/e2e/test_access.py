"""Who may tunnel, and which names are whose: keys, reserved and denied
names, per-key limits, the handshake's defences, basic auth, allow lists,
and exposectl's view and actions."""
import asyncio
import base64
import os
import re
import socket
import sqlite3
import struct
import subprocess

import pytest

import harness
from conftest import Stack

SIGN_TAG = b"expose-auth-v2\x00"
SUBPROTOCOL = "expose.2"
NO_CHANNEL = b"\x00" * 32      # the channel binding over ws://


def frame(kind, stream, payload):
    return bytes([kind]) + len(payload).to_bytes(3, "big") + struct.pack(">I", stream) + payload


def speak(port, make_frames, read_frames=1, subprotocol=SUBPROTOCOL):
    """Opens a websocket to the broker by hand: make_frames(challenge)
    returns the frames to send; returns the frames the broker sent back
    (type, stream, payload), until it closes or read_frames arrive."""
    import websockets

    async def run():
        got = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/",
                                      subprotocols=[subprotocol]) as ws:
            msg = await ws.recv()
            challenge = msg[8:]
            for f in make_frames(challenge):
                await ws.send(f)
            try:
                while len(got) < read_frames:
                    msg = await asyncio.wait_for(ws.recv(), 10)
                    while msg:
                        n = int.from_bytes(msg[1:4], "big")
                        got.append((msg[0], struct.unpack(">I", msg[4:8])[0], msg[8:8 + n]))
                        msg = msg[8 + n:]
            except websockets.ConnectionClosed:
                pass
        return got
    return asyncio.run(run())


def signed_auth(key, challenge, server=None, version=None, nonce=None, dialed=None,
                binding=NO_CHANNEL, port=None):
    """An AUTH frame for a PyNaCl signing key, with parts changeable:
    dialed is the server URL signed for (ws://127.0.0.1:port by default)."""
    v, n, s = challenge[0], challenge[1:33], challenge[33:]
    s = server if server is not None else s
    dialed = dialed or f"ws://127.0.0.1:{port}".encode()
    msg = SIGN_TAG + bytes([version if version is not None else v]) + (nonce or n) + \
        bytes([len(s)]) + s + bytes([len(dialed)]) + dialed + binding
    sig = key.sign(msg).signature
    return frame(2, 0, bytes(key.verify_key) + sig + binding + dialed)


def errors(frames):
    return [(struct.unpack(">H", p[:2])[0], p[2:].decode()) for t, s, p in frames if t == 5]


def key_of(client_key_dir):
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "key"], capture_output=True,
                         text=True, env={**harness.sanitizer_env(),
                                         "XDG_CONFIG_HOME": client_key_dir}, check=True)
    return out.stdout.split()[1]


def ctl(stack, *args, check=False):
    return subprocess.run([os.path.join(stack.bin, "exposectl"), "--registry",
                           stack.broker.registry, "--socket", stack.broker.socket, *args],
                          capture_output=True, text=True, env=harness.sanitizer_env(),
                          check=check)


# --- the handshake ---

def test_valid_handshake_by_hand_binds(stack):
    from nacl.signing import SigningKey
    key = SigningKey.generate()
    port = stack.broker.ws_port
    got = speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                  frame(3, 1, b"name=byhand\n")])
    assert got[0][0] == 4 and b"name=byhand" in got[0][2]


@pytest.mark.parametrize("case", ["replayed_nonce", "other_server", "other_version",
                                  "weak_key", "garbage"])
def test_forged_handshakes_refused(stack, case):
    from nacl.signing import SigningKey
    key = SigningKey.generate()

    port = stack.broker.ws_port
    dialed = f"ws://127.0.0.1:{port}".encode()

    def forge(ch):
        if case == "replayed_nonce":          # signed for an earlier challenge
            return [signed_auth(key, ch, nonce=b"\x07" * 32, port=port)]
        if case == "other_server":
            return [signed_auth(key, ch, server=b"evil.example", port=port)]
        if case == "other_version":
            return [signed_auth(key, ch, version=1, port=port)]
        if case == "weak_key":                # a small-order point, any signature
            return [frame(2, 0, b"\x01" + b"\x00" * 31 + b"\x00" * 64 + NO_CHANNEL + dialed)]
        return [frame(2, 0, os.urandom(128) + dialed)]
    got = speak(stack.broker.ws_port, lambda ch: forge(ch) + [frame(3, 1, b"name=forged\n")])
    assert errors(got) == [(8, "the signature does not verify")]
    assert stack.broker.rows() == []


def test_second_auth_on_one_connection_refused(stack):
    from nacl.signing import SigningKey
    key = SigningKey.generate()
    port = stack.broker.ws_port
    got = speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                  signed_auth(key, ch, port=port)], read_frames=2)
    assert errors(got) == [(3, "malformed AUTH")]


def test_handshake_burst_from_one_address_cut_at_accept(tmp):
    s = Stack(tmp, broker_extra=("--handshake-rate", "1", "--handshake-burst", "3"))
    try:
        import websockets

        async def attempt():
            try:
                async with websockets.connect(f"ws://127.0.0.1:{s.broker.ws_port}/",
                                              subprotocols=[SUBPROTOCOL], open_timeout=5):
                    return "open"
            except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError,
                    websockets.ConnectionClosed):
                return "refused"
        results = [asyncio.run(attempt()) for _ in range(10)]
        assert results[:3] == ["open"] * 3
        assert results.count("refused") >= 6
    finally:
        s.close()


# --- closed servers ---

@pytest.fixture
def closed(tmp):
    keys_file = os.path.join(tmp, "authorized_keys")
    alice = os.path.join(tmp, "alice")
    bob = os.path.join(tmp, "bob")
    with open(keys_file, "w") as f:
        f.write(f"# the team\nmax-tunnels=2 expose-ed25519 {key_of(alice)} alice laptop\n")
        f.write("this line is not a key\n")
        f.write(f"names=billing expose-ed25519 {key_of(bob)} bob\n")
    s = Stack(tmp, broker_extra=("--authorized-keys", keys_file))
    s.keys_file, s.alice, s.bob = keys_file, alice, bob
    yield s
    s.close()


def test_closed_server_lets_listed_keys_in(closed):
    c = closed.expose_app(key_dir=closed.alice)
    assert closed.get(c.url + "hello") == (200, b"hello")
    harness.wait_in_file(closed.broker.log, r"authorized_keys \S+:3: expected OPTION=VALUE "
                         r"or 'expose-ed25519 KEY'; line skipped")


def test_closed_server_refuses_other_keys(closed, tmp):
    c = closed.expose_app(key_dir=os.path.join(tmp, "mallory"), wait_url=False)
    assert c.proc.exit_status(20) == 77
    assert "this key is not authorized on this server" in c.text()
    assert closed.broker.rows() == []


def test_removed_key_refused_at_next_handshake_and_kick_ends_it(closed):
    c = closed.expose_app("--name", "alice-app", key_dir=closed.alice)
    with open(closed.keys_file) as f:
        lines = [line for line in f if "alice" not in line]
    with open(closed.keys_file, "w") as f:
        f.writelines(lines)
    # The live tunnel stays until an operator ends it...
    assert closed.get(c.url + "hello") == (200, b"hello")
    out = ctl(closed, "kick", "alice-app")
    assert out.returncode == 0 and out.stdout.startswith("kicked alice-app")
    assert c.proc.exit_status(20) == 69
    assert "an operator ended this connection" in c.text()
    assert closed.broker.rows() == []
    # ... and the key cannot come back.
    again = closed.expose_app(key_dir=closed.alice, wait_url=False)
    assert again.proc.exit_status(20) == 77


def test_key_tunnel_limit(closed):
    closed.expose_app(key_dir=closed.alice)
    closed.expose_app(key_dir=closed.alice)
    third = closed.expose_app(key_dir=closed.alice, wait_url=False)
    assert third.proc.exit_status(20) != 0
    assert "this key already has 2 tunnels, its limit" in third.text()


def test_names_kept_for_a_key_in_authorized_keys(closed):
    other = closed.expose_app("--name", "billing", key_dir=closed.alice, wait_url=False)
    assert other.proc.exit_status(20) == 77
    assert "name 'billing' is taken" in other.text()
    c = closed.expose_app("--name", "billing", key_dir=closed.bob)
    assert closed.get(c.url + "hello") == (200, b"hello")


def test_kick_unknown_name(stack):
    out = ctl(stack, "kick", "nobody")
    assert out.returncode == 65 and "no live tunnel named nobody" in out.stderr


# --- names ---

def test_first_key_claims_a_name_and_gets_it_back(stack, tmp):
    a = os.path.join(tmp, "a")
    c = stack.expose_app("--name", "mine", key_dir=a)
    c.stop()
    other = stack.expose_app("--name", "mine", key_dir=os.path.join(tmp, "b"), wait_url=False)
    assert other.proc.exit_status(20) == 77
    assert "name 'mine' is taken" in other.text()
    assert "mine" not in other.text().replace("name 'mine' is taken", "")
    again = stack.expose_app("--name", "mine", key_dir=a)
    assert again.url == c.url
    names = ctl(stack, "names", check=True).stdout.split("\n")
    assert names[0].split()[:2] == ["mine", "claimed"]


def test_random_name_stays_its_keys(stack, tmp):
    a = stack.expose_app(key_dir=os.path.join(tmp, "a"))
    name = a.host.split(".")[0]
    a.stop()
    thief = stack.expose_app("--name", name, key_dir=os.path.join(tmp, "b"), wait_url=False)
    assert thief.proc.exit_status(20) == 77
    assert f"name '{name}' is taken" in thief.text()
    row = [line.split() for line in ctl(stack, "names", check=True).stdout.splitlines()
           if line.startswith(name)][0]
    assert row[1] == "random" and row[4] != "never"


def test_names_past_their_quarantine_are_deleted(tmp):
    """A random name is held for its key for the quarantine after its last
    use; then the broker deletes the row (at start, and hourly), so the
    names table does not grow forever."""
    import sqlite3
    import time
    from conftest import Stack
    s = Stack(tmp, broker_extra=("--name-quarantine", "1"))
    try:
        c = s.expose_app()
        name = c.host.split(".")[0]
        c.stop()

        def expires():
            with sqlite3.connect(s.broker.registry) as db:
                row = db.execute("SELECT expires FROM names WHERE name = ?", (name,)).fetchone()
            return row and row[0]
        until = harness.wait_for(expires, what="the name's quarantine to start")
        harness.wait_for(lambda: time.time() > until + 1, what="the quarantine to end")
        s.broker.stop()
        s.broker.start()
        assert expires() is None
        harness.wait_in_file(s.broker.log, r"exposed: names expired count=1")
    finally:
        s.close()


def test_denied_names(stack):
    c = stack.expose_app("--name", "www", wait_url=False)
    assert c.proc.exit_status(20) == 77
    assert "name 'www' is reserved by this server's operator" in c.text()


@pytest.mark.parametrize("bad", ["Bad_Name", "-x", "x" * 64, "xn--abc"])
def test_invalid_names_refused_by_client(stack, bad):
    c = stack.expose_app("--name", bad, wait_url=False)
    assert c.proc.exit_status(20) == 64
    assert f"--name {bad}:" in c.text()


def test_invalid_name_refused_by_broker(stack):
    from nacl.signing import SigningKey
    key = SigningKey.generate()
    port = stack.broker.ws_port
    got = speak(port, lambda ch: [signed_auth(key, ch, port=port),
                                  frame(3, 1, b"name=Bad_Name\n")])
    assert errors(got) == [(5, "name 'Bad_Name' is not valid: only a-z, 0-9 and '-' are allowed")]


def test_reserve_and_release(tmp):
    s = Stack(tmp, broker_extra=("--claim-names", "no"))
    try:
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        c = s.expose_app("--name", "shop", key_dir=a, wait_url=False)
        assert c.proc.exit_status(20) == 77
        assert "does not let clients claim names" in c.text()
        assert ctl(s, "reserve", "shop", key_of(b), check=True).stdout.startswith("shop reserved")
        assert ctl(s, "reserve", "shop", key_of(a)).returncode == 65
        c = s.expose_app("--name", "shop", key_dir=b)
        assert s.get(c.url + "hello") == (200, b"hello")
        c.stop()
        assert ctl(s, "release", "shop", check=True).stdout == "shop released\n"
        assert ctl(s, "release", "shop").returncode == 65
    finally:
        s.close()


# --- what visitors must show ---

def test_basic_auth(stack):
    c = stack.expose_app("--auth", "ann:s3cret pass")
    code, body = stack.get(c.url + "echo")
    assert code == 401
    out = stack.raw(f"GET / HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
    assert f'WWW-Authenticate: Basic realm="{c.host.split(".")[0]}"'.encode() in out
    assert stack.get(c.url + "echo", "-u", "ann:wrong")[0] == 401
    assert stack.get(c.url + "echo", "-u", "bob:s3cret pass")[0] == 401
    stack.app.reset()
    code, body = stack.get(c.url + "echo", "-u", "ann:s3cret pass")
    assert code == 200
    # The tunnel's credentials stop at the edge; the registry never saw them.
    assert b"authorization" not in body.lower()
    db = sqlite3.connect(stack.broker.registry)
    stored = db.execute("SELECT auth FROM tunnels").fetchone()[0]
    db.close()
    assert stored.startswith("ann:") and "s3cret" not in stored
    # Every request on a keep-alive connection is checked.
    good = base64.b64encode(b"ann:s3cret pass").decode()
    out = stack.raw((f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\nAuthorization: Basic {good}\r\n\r\n"
                     f"GET /smuggled HTTP/1.1\r\nHost: {c.host}\r\n\r\n").encode())
    assert [r["url"] for r in stack.app.requests()] == ["/echo", "/hello"]
    assert out.count(b"HTTP/1.1 200") == 1 and b"HTTP/1.1 401" in out


def test_bad_auth_value_refused(stack):
    c = stack.expose_app("--auth", "nocolon", wait_url=False)
    assert c.proc.exit_status(20) == 64
    assert "--auth: give USER:PASSWORD" in c.text()


def test_allow_list(stack):
    c = stack.expose_app("--allow", "127.0.0.0/8", "--allow", "::1")
    assert stack.get(c.url + "hello") == (200, b"hello")
    d = stack.expose_app("--allow", "203.0.113.0/24", "--allow", "2001:db8::/32")
    code, body = stack.get(d.url + "hello")
    assert code == 403 and b"may not reach this tunnel" in body
    bad = stack.expose_app("--allow", "10.0.0.1/8", wait_url=False)
    assert bad.proc.exit_status(20) == 64


def test_expose_key_prints_and_renews(tmp):
    env = {**harness.sanitizer_env(), "XDG_CONFIG_HOME": tmp}
    exe = os.path.join(harness.BIN, "expose")
    first = subprocess.run([exe, "key"], capture_output=True, text=True, env=env, check=True)
    assert first.stdout.startswith("expose-ed25519 ")
    same = subprocess.run([exe, "key"], capture_output=True, text=True, env=env, check=True)
    assert same.stdout == first.stdout
    ask = subprocess.run([exe, "key", "--new"], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    assert ask.returncode == 64 and "add --yes" in ask.stderr
    new = subprocess.run([exe, "key", "--new", "--yes"], capture_output=True, text=True,
                         env=env, check=True)
    assert new.stdout.split()[1] != first.stdout.split()[1]


def basic_from(port, host, source, creds=None):
    """A GET from a given source address, with basic-auth credentials."""
    auth = ""
    if creds is not None:
        auth = f"Authorization: Basic {base64.b64encode(creds.encode()).decode()}\r\n"
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0),
                                  timeout=harness.scaled(30)) as sock:
        sock.sendall(f"GET /hello HTTP/1.1\r\nHost: {host}\r\n{auth}"
                     "Connection: close\r\n\r\n".encode())
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def retry_after(response):
    m = re.search(rb"\r\nRetry-After: (\d+)\r\n", response)
    return int(m.group(1)) if m else None


def test_auth_guessing_throttled_per_source(stack):
    """Wrong passwords from one address are counted by the broker for
    every edge process: past the allowance (10 by default) that address
    gets 429 with Retry-After, even with the right password; another
    address is still let in."""
    c = stack.expose_app("--auth", "ann:s3cret pass")
    for _ in range(20):    # a browser's first requests, before it asks
        assert harness.status_of(basic_from(stack.edge_port, c.host, "127.0.0.1")) == 401
    got = [basic_from(stack.edge_port, c.host, "127.0.0.1", f"ann:guess{i}")
           for i in range(25)]
    codes = [harness.status_of(r) for r in got]
    assert codes == [401] * 10 + [429] * 15
    assert all(30 <= retry_after(r) <= 60 for r in got[10:])
    assert b"Too many wrong passwords" in got[-1]
    # No credentials is no guess (a browser's first request): asked for them.
    assert harness.status_of(basic_from(stack.edge_port, c.host, "127.0.0.1")) == 401
    # The guesser cannot get in by guessing right now.
    right = basic_from(stack.edge_port, c.host, "127.0.0.1", "ann:s3cret pass")
    assert harness.status_of(right) == 429 and retry_after(right) > 0
    # Another address, with the right password, is served.
    out = basic_from(stack.edge_port, c.host, "127.0.0.2", "ann:s3cret pass")
    assert harness.status_of(out) == 200 and out.endswith(b"hello")
    assert harness.status_of(basic_from(stack.edge_port, c.host, "127.0.0.2", "ann:no")) == 401
    # A tunnel without a password is no one's business here.
    open_tunnel = stack.expose_app()
    assert stack.get(open_tunnel.url + "hello") == (200, b"hello")
    harness.wait_in_file(stack.broker.log, r"basic-auth guessing throttled .*addr=127\.0\.0\.1")


def test_auth_file_and_environment(stack, tmp):
    """The password can stay off the command line, which every user can
    read in /proc/PID/cmdline."""
    path = os.path.join(tmp, "tunnel-auth")
    with open(path, "w") as f:
        f.write("ann:from a file\n")
    os.chmod(path, 0o600)
    c = stack.expose_app("--auth-file", path)
    assert stack.get(c.url + "hello", "-u", "ann:from a file") == (200, b"hello")
    assert stack.get(c.url + "hello", "-u", "ann:wrong")[0] == 401
    with open(f"/proc/{c.proc.pid}/cmdline", "rb") as f:
        assert b"from a file" not in f.read()

    e = stack.expose_app(env_extra={"EXPOSE_AUTH": "bob:from the env"})
    assert stack.get(e.url + "hello", "-u", "bob:from the env") == (200, b"hello")
    assert stack.get(e.url + "hello")[0] == 401

    bad = stack.expose_app("--auth-file", os.path.join(tmp, "missing"), wait_url=False)
    assert bad.proc.exit_status(20) == 64
    assert "--auth-file" in bad.text() and "No such file" in bad.text()
    with open(path, "w") as f:
        f.write("no colon here\n")
    bad = stack.expose_app("--auth-file", path, wait_url=False)
    assert bad.proc.exit_status(20) == 64
    assert "give USER:PASSWORD" in bad.text()
