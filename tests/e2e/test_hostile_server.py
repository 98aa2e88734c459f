"""A hostile server against the real client: what it sends is printed to a
developer's terminal, and what it asks for costs the developer's machine.
The server here is the attacker, speaking the protocol by hand (expose(7))
with the frame layout and limits read from lib/."""
import asyncio
import os
import re
import resource
import socket
import struct
import threading

import harness


def header_define(header, name):
    with open(os.path.join(harness.ROOT, "lib", header)) as f:
        m = re.search(rf"^#define {name} (.+)$", f.read(), re.M)
    assert m, f"{name} is not in lib/{header}"
    return m.group(1).strip().strip('"')


SUBPROTOCOL = header_define("frame.h", "FRAME_SUBPROTOCOL")
VERSION = int(header_define("frame.h", "FRAME_VERSION"))
CLIENT_STREAMS_MAX = harness.bound("STREAMS_PER_KEY_MAX")
CHALLENGE, AUTH, BIND, BOUND, ERROR, OPEN, RST = 1, 2, 3, 4, 5, 16, 19
CODE_LIMIT = 4


def frame(kind, stream, payload):
    return struct.pack(">B", kind) + len(payload).to_bytes(3, "big") + \
        struct.pack(">I", stream) + payload


def frames(msg):
    """The frames of one websocket message (a sender may batch several)."""
    while msg:
        n = int.from_bytes(msg[1:4], "big")
        yield msg[0], struct.unpack(">I", msg[4:8])[0], msg[8:8 + n]
        msg = msg[8 + n:]


class HostileServer:
    """A websocket server that greets with a CHALLENGE, takes AUTH and BIND,
    then runs script(ws) in its own thread's event loop."""

    def __init__(self, script):
        import websockets
        self.port = harness.free_port()
        self.script = script
        self.result = None
        self.ready = threading.Event()
        self.done = threading.Event()

        async def handler(ws):
            await ws.send(frame(CHALLENGE, 0, bytes([VERSION]) + os.urandom(32) + b"tunnel.test"))
            kinds = []
            while BIND not in kinds:
                kinds += [kind for kind, _, _ in frames(await ws.recv())]
            self.result = await self.script(ws)
            self.done.set()

        async def main():
            async with websockets.serve(handler, "127.0.0.1", self.port,
                                        subprotocols=[SUBPROTOCOL], max_size=None):
                self.ready.set()
                await asyncio.get_running_loop().run_in_executor(None, self.done.wait)

        self.thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(harness.scaled(10))

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    def stop(self):
        self.done.set()
        self.thread.join(harness.scaled(10))


def client_against(tmp, script, until):
    """Runs a client against a hostile server playing script until its log
    says until; returns (its stdout, its log)."""
    server = HostileServer(script)
    try:
        c = harness.Client(tmp, server.url, "1", wait_url=False)
        harness.wait_in_file(c.log, until)
        c.stop()
    finally:
        server.stop()
    return c.proc.proc.stdout.read(), c.text()


TERMINAL_CONTROLS = ("\x1b", "\x07", "\r", "\x9b", "\u009b")


def test_escape_sequences_in_a_url_are_refused(tmp):
    async def script(ws):
        await ws.send(frame(BOUND, 1, b"name=evil\nurl=http://evil\x1b]0;owned\x07.test/\x1b[2J\n"))
    out, text = client_against(tmp, script, r"malformed URL")
    assert b"\x1b" not in out and not any(ch in text for ch in TERMINAL_CONTROLS)
    assert "the server sent a malformed URL (http://evil?]0;owned?.test/?[2J)" in text
    assert "is it an expose server?" in text


def test_error_messages_reach_the_terminal_as_plain_text(tmp):
    async def script(ws):
        await ws.send(frame(ERROR, 0, struct.pack(">H", 8) + b"go away\x1b[2J\x9b31m\r\nfake: line"))
    _, text = client_against(tmp, script, r"the server ended the connection")
    assert not any(ch in text for ch in TERMINAL_CONTROLS)
    assert "the server ended the connection: go away?[2J?31m??fake: line" in text


class Silent:
    """A listener that never accepts: connections to it stay open (queued,
    or still connecting), as a stalled app's would."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]


def test_streams_a_server_opens_are_capped(tmp):
    """A server may open streams without end; the client holds at most
    CLIENT_STREAMS_MAX (each a connection to the app) and resets the rest
    with LIMIT."""
    extra = 20
    need = CLIENT_STREAMS_MAX + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        assert hard >= need, f"the test needs {need} descriptors; the hard limit is {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    app = Silent()

    async def script(ws):
        await ws.send(frame(BOUND, 1, b"name=many\nurl=http://many.test/\n"))
        for i in range(CLIENT_STREAMS_MAX + extra):
            await ws.send(frame(OPEN, 2 * i + 2, struct.pack(">I", 1) + b"192.0.2.1 1 http"))
        limits = []
        while len(limits) < extra:
            for kind, stream, payload in frames(await ws.recv()):
                if kind == RST and struct.unpack(">H", payload[:2])[0] == CODE_LIMIT:
                    limits.append(stream)
        return limits

    server = HostileServer(script)
    try:
        c = harness.Client(tmp, server.url, app.port)
        assert c.url == "http://many.test/"
        harness.wait_for(lambda: server.result, timeout=60, what="the client's LIMIT resets")
        fds = len(os.listdir(f"/proc/{c.proc.pid}/fd"))
        c.stop()
    finally:
        server.stop()
        app.sock.close()
    assert sorted(server.result) == [2 * i + 2 for i in range(CLIENT_STREAMS_MAX,
                                                              CLIENT_STREAMS_MAX + extra)]
    assert fds < CLIENT_STREAMS_MAX + harness.bound("CLIENT_SPARE_FDS")
    assert "the server opened more than 4096 streams at once; refusing more" in c.text()


def test_a_close_reason_reaches_the_terminal_as_plain_text(tmp):
    async def script(ws):
        await ws.close(code=1008, reason="bye\x1b]0;owned\x07\u009b2J")
    _, text = client_against(tmp, script, r"the server closed the connection")
    assert not any(ch in text for ch in TERMINAL_CONTROLS)
    assert "the server closed the connection: bye?]0;owned???2J" in text


class Mute:
    """A server that accepts connections and never says a word: a hung
    server, or a port something else holds."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(harness.scaled(20))
        self.port = self.sock.getsockname()[1]
        self.held = []

    def take(self):
        """Waits for the next connection and holds it open."""
        conn, _ = self.sock.accept()
        self.held.append(conn)

    def close(self):
        for s in self.held + [self.sock]:
            s.close()


HANDSHAKE_S = harness.bound("LINK_HANDSHAKE_TIMEOUT_S")
RECONNECT_MAX_S = harness.bound("RECONNECT_MAX_MS") / 1000


def test_a_silent_server_is_given_up_on_and_tried_again(tmp):
    """The client does not wait forever on a server that took the
    connection but never finishes TLS: it says so and dials again."""
    mute = Mute()
    try:
        c = harness.Client(tmp, f"wss://127.0.0.1:{mute.port}", "1", wait_url=False)
        mute.take()
        harness.wait_in_file(c.log, rf"did not finish the handshake within {HANDSHAKE_S} s",
                             timeout=HANDSHAKE_S * 3)
        assert "retrying in" in c.text()
        mute.sock.settimeout(harness.scaled(RECONNECT_MAX_S))
        mute.take()    # and it dials again
        assert c.stop() == 0
    finally:
        mute.close()


def test_ctrl_c_stops_a_client_whose_server_is_silent(tmp):
    """One Ctrl-C is enough while the handshake hangs, as at any time."""
    mute = Mute()
    try:
        for server in (f"ws://127.0.0.1:{mute.port}", f"wss://127.0.0.1:{mute.port}"):
            c = harness.Client(tmp, server, "1", wait_url=False)
            mute.take()
            assert c.stop() == 0, c.text()
    finally:
        mute.close()
