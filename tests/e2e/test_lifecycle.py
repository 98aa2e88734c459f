"""Registry rows live exactly as long as their websocket, whatever ends it."""
import asyncio
import os
import signal
import socket
import struct
import threading

import harness


class HalfOpenRelay:
    """A TCP relay that can freeze: both connections stay open but nothing
    flows, as when a laptop sleeps or a NAT forgets the connection."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.socks = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [a, b]
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self.pump, args=(src, dst), daemon=True).start()

    def pump(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                break
            self.frozen.wait(0) and self.frozen.wait()
            if self.frozen.is_set():
                continue     # swallowed: the connection is a black hole
            try:
                dst.sendall(data)
            except OSError:
                return
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.frozen.set()

    def close(self):
        self.listener.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def relayed_stack(tmp, broker_extra=()):
    """A stack whose broker is also dialed through a relay (a NAT, a load
    balancer): the relay's URL is one of its server-urls."""
    from conftest import Stack
    relay = HalfOpenRelay(None)
    port = harness.free_port()
    urls = f"ws://127.0.0.1:{port},ws://127.0.0.1:{relay.port}"
    s = Stack(tmp, ws_port=port, broker_extra=("--server-urls", urls, *broker_extra))
    relay.target = s.broker.ws_port
    return s, relay


def test_same_key_takes_name_over_from_half_open_session(tmp):
    stack, relay = relayed_stack(tmp)
    try:
        same_key_takes_name_over(stack, relay, tmp)
    finally:
        stack.close()


def same_key_takes_name_over(stack, relay, tmp):
    keys = os.path.join(tmp, "keys")
    old = stack.client(stack.app.port, "--name", "laptop", key_dir=keys,
                       server=f"ws://127.0.0.1:{relay.port}")
    relay.freeze()
    # The same key comes back on a new connection while the old one hangs.
    new = stack.client(stack.app.port, "--name", "laptop", key_dir=keys)
    assert new.url == old.url
    assert stack.get(new.url + "hello") == (200, b"hello")
    held = stack.broker.sessions()
    assert list(held) == ["laptop"]
    # The old websocket finally closes: the new session's row must stay
    # (the same row: compared by its session, not by the listing, whose
    # age column moves on).
    relay.close()
    harness.wait_in_file(stack.broker.log, r"client down")
    assert stack.broker.sessions() == held
    assert stack.get(new.url + "hello") == (200, b"hello")
    old.kill()


def test_restarted_broker_sweeps_rows_of_dead_one(stack):
    stack.expose_app()
    stack.expose_app()
    assert len(stack.broker.rows()) == 2
    stack.broker.kill()
    assert len(stack.broker.rows()) == 2       # left behind
    for c in stack.clients:
        c.kill()
    stack.broker.start()
    assert stack.broker.rows() == []
    assert "swept 2 tunnels" in stack.broker.proc.text()


def test_clean_broker_stop_removes_its_rows(stack):
    c = stack.expose_app()
    stack.broker.stop()
    assert stack.broker.rows() == []
    harness.wait_in_file(c.log, r"lost the connection to .*; retrying in")
    stack.broker.start()
    harness.wait_in_file(c.log, r"reconnected")


def handshake(port, auth_for):
    """Speaks the protocol by hand: returns the broker's ERROR (code, text)
    or None, after sending what auth_for(challenge) returns."""
    import websockets

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{port}/",
                                      subprotocols=["expose.2"]) as ws:
            msg = await ws.recv()
            kind, n1, n2, n3 = msg[0], msg[1], msg[2], msg[3]
            payload = msg[8:8 + (n1 << 16 | n2 << 8 | n3)]
            assert kind == 1
            for frame in auth_for(payload):
                await ws.send(frame)
            try:
                msg = await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                return None
            if msg[0] == 5:
                code = struct.unpack(">H", msg[8:10])[0]
                return code, msg[10:].decode()
            return msg[0], msg
    return asyncio.run(run())


def frame(kind, stream, payload):
    return struct.pack(">B", kind) + len(payload).to_bytes(3, "big") + \
        struct.pack(">I", stream) + payload


def test_bad_signature_refused_without_row(stack):
    dialed = f"ws://127.0.0.1:{stack.broker.ws_port}".encode()
    got = handshake(stack.broker.ws_port,
                    lambda ch: [frame(2, 0, b"\x01" * 32 + b"\x02" * 64 + b"\x00" * 32 + dialed),
                                frame(3, 1, b"name=sneaky\n")])
    assert got == (8, "the signature does not verify")
    assert stack.broker.rows() == []


def test_bind_before_auth_is_a_protocol_error(stack):
    got = handshake(stack.broker.ws_port, lambda ch: [frame(3, 1, b"name=early\n")])
    assert got == (3, "frame refused")
    assert stack.broker.rows() == []


def test_malformed_frame_closes_session(stack):
    got = handshake(stack.broker.ws_port, lambda ch: [b"\x11\xff\xff\xff\x00\x00\x00\x01"])
    assert got == (3, "data frame too large")
    c = stack.expose_app()
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_silent_client_hung_up_on_within_ping_budget(tmp):
    s, relay = relayed_stack(tmp, broker_extra=("--ping-interval", "1"))
    try:
        c = s.client(s.app.port, server=f"ws://127.0.0.1:{relay.port}")
        assert len(s.broker.rows()) == 1
        relay.freeze()     # a network cut: nothing flows, nothing closes
        harness.wait_for(lambda: s.broker.rows() == [], timeout=15,
                         what="the broker to hang up on a silent client")
        assert s.get(c.url)[0] == 404
        relay.close()
        c.kill()
    finally:
        s.close()


# Edge connections that say nothing, held beside a working tunnel.  The
# broker's loop watches every one of them (epoll, loop.c): the tunnel must
# keep serving, a reload must come through, the ones that close must be
# let go of (no descriptor or watcher left), and a stop with the rest
# still open must be clean (exit 0, no leak under the sanitizers).
IDLE_EDGES = 300


def test_idle_edge_connections_cost_the_tunnel_nothing(stack):
    c = stack.expose_app()
    pid = stack.broker.proc.pid
    before = harness.fd_count(pid)
    idle = harness.open_idle(stack.broker.socket, IDLE_EDGES, pid)
    try:
        for _ in range(3):
            assert stack.get(c.url + "hello") == (200, b"hello")
        stack.broker.proc.send(signal.SIGHUP)
        harness.wait_in_file(stack.broker.log, r"reloaded ")
        assert stack.get(c.url + "hello") == (200, b"hello")
        half = IDLE_EDGES // 2
        for s in idle[:half]:
            s.close()
        harness.wait_for(lambda: harness.fd_count(pid) <= before + IDLE_EDGES - half,
                         what="the broker to let go of the idle connections that closed")
        assert stack.get(c.url + "hello") == (200, b"hello")
        # Stopped with the other half still open: exit 0 (Broker.stop
        # checks it) and no row left; stack.close reads its log for the
        # sanitizers' findings.
        stack.broker.stop()
        assert stack.broker.rows() == []
    finally:
        for s in idle:
            s.close()
