"""The tunnel end to end: what a developer gets from `expose PORT`."""
import hashlib
import json
import re
import socket
import subprocess
import threading

import pytest

import harness
from conftest import Stack


def forwarded(headers):
    """Raw header list -> {lower name: [values]}."""
    out = {}
    for name, value in zip(headers[::2], headers[1::2]):
        out.setdefault(name.lower(), []).append(value)
    return out


def test_url_is_first_stdout_line_and_listed(stack):
    c = stack.expose_app()
    assert re.fullmatch(r"http://[a-z]+-[a-z]+-[a-z2-9]{11}\.localhost:%d/" % stack.edge_port,
                        c.url)
    rows = stack.broker.rows()
    assert len(rows) == 1
    url, name, addr, fp, age, target = rows[0]
    assert url == c.url and c.url.startswith(f"http://{name}.")
    assert addr == "127.0.0.1" and len(fp) == 16
    assert target == f"localhost:{stack.app.port}"


def test_get_reaches_app_with_forwarded_fields(stack):
    c = stack.expose_app()
    code, body = stack.get(c.url + "hello")
    assert (code, body) == (200, b"hello")
    req = stack.app.requests()[-1]
    h = forwarded(req["headers"])
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == [c.host]
    assert h["host"] == [c.host]


def test_named_tunnel(stack):
    c = stack.expose_app("--name", "myapp")
    assert c.url == f"http://myapp.localhost:{stack.edge_port}/"
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_name_taken_by_another_key_is_refused(stack):
    stack.expose_app("--name", "taken")
    other = stack.expose_app("--name", "taken", wait_url=False)
    rc = other.proc.exit_status(20)
    assert rc != 0
    assert "name 'taken' is taken" in other.text()
    assert len(stack.broker.rows()) == 1


def test_methods_and_statuses(stack):
    c = stack.expose_app()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        code, body = stack.get(c.url + "echo", "-X", method)
        assert code == 200 and json.loads(body)["method"] == method
    code, body = stack.get(c.url + "echo", "-I")
    assert code == 200 and body.startswith(b"HTTP/1.1 200")
    for status in (201, 204, 301, 304, 404, 418, 500, 503):
        assert stack.get(c.url + f"status/{status}")[0] == status


def test_large_bodies_both_ways(stack, tmp):
    c = stack.expose_app()
    n = 32 * 1024 * 1024
    code, body = stack.get(c.url + f"bytes?n={n}")
    assert code == 200 and len(body) == n
    expected = bytes(i % 251 for i in range(65536))
    assert body[:65536] == expected and body[-65536:] == expected[:65536]
    upload = f"{tmp}/upload.bin"
    with open(upload, "wb") as f:
        f.write(bytes(range(256)) * (n // 256))
    code, body = stack.get(c.url + "sink", "--data-binary", f"@{upload}")
    digest = hashlib.sha256(open(upload, "rb").read()).hexdigest()
    assert code == 200 and json.loads(body) == {"length": n, "sha256": digest}


def read_response(sock, got=b""):
    """One response with a Content-Length off a keep-alive socket:
    (status, body, bytes read past it)."""
    got = harness.recv_until(sock, b"\r\n\r\n", got)
    head, _, rest = got.partition(b"\r\n\r\n")
    n = int(re.search(rb"(?im)^content-length:[ \t]*(\d+)", head).group(1))
    rest = harness.recv_until(sock, lambda data: len(data) >= n, rest)
    return harness.status_of(head), rest[:n], rest[n:]


def test_bodies_past_the_edge_buffers_then_more_requests(stack):
    """The plain edge splices a sized body's bytes past its parser, all but
    the last; the connection must go on as HTTP after each body, both ways."""
    c = stack.expose_app()
    n = 3 * 1024 * 1024 + 7     # several pipes' worth, not a multiple of a page
    upload = bytes(range(256)) * (n // 256) + b"x" * (n % 256)
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=60) as s:
        s.sendall(f"POST /sink HTTP/1.1\r\nHost: {c.host}\r\nContent-Length: {n}\r\n"
                  "Content-Type: application/octet-stream\r\n\r\n".encode() + upload)
        code, body, extra = read_response(s)
        assert code == 200 and extra == b""
        assert json.loads(body) == {"length": n, "sha256": hashlib.sha256(upload).hexdigest()}
        s.sendall(f"GET /bytes?n={n} HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        code, body, extra = read_response(s)
        pattern = bytes(i % 251 for i in range(65536))
        assert code == 200 and extra == b"" and len(body) == n
        assert body == (pattern * (n // len(pattern) + 1))[:n]
        # An upload and a request behind it in one write: the second is
        # parsed, not spliced into the first one's body.
        s.sendall(f"POST /sink HTTP/1.1\r\nHost: {c.host}\r\nContent-Length: {n}\r\n\r\n"
                  .encode() + upload + f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n"
                  "Connection: close\r\n\r\n".encode())
        code, body, extra = read_response(s)
        assert code == 200 and json.loads(body)["length"] == n
        code, body, extra = read_response(s, extra)
        assert (code, body) == (200, b"hello")
    assert len(stack.edge.accesses()) == 4    # one edge process served all four


def test_a_stalled_download_holds_up_no_other_stream(stack):
    """Streams share the client's websocket, a window of each per message:
    one whose visitor stops reading must leave the others flowing, a bulk
    download beside it included, and get all its bytes when it reads on."""
    c = stack.expose_app()
    n = 64 * 1024 * 1024    # far past every buffer and window on the way
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=60) as stalled:
        stalled.sendall(f"GET /bytes?n={n} HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        head, _, body = harness.recv_until(stalled, b"\r\n\r\n").partition(b"\r\n\r\n")
        assert harness.status_of(head) == 200
        code, other = stack.get(c.url + f"bytes?n={n // 2}")
        assert code == 200 and len(other) == n // 2
        for _ in range(20):
            assert stack.get(c.url + "hello") == (200, b"hello")
        got = len(body)
        while got < n:
            chunk = stalled.recv(1 << 20)
            assert chunk, f"the stalled download ended at {got} of {n} bytes"
            got += len(chunk)
        assert got == n


def test_chunked_both_ways(stack):
    c = stack.expose_app()
    code, body = stack.get(c.url + "chunked")
    assert (code, body) == (200, b"one,two,three")
    code, body = stack.get(c.url + "echo", "-H", "Transfer-Encoding: chunked",
                           "--data-binary", "hello chunked")
    assert code == 200 and json.loads(body)["length"] == 13


def test_expect_100_continue(stack, tmp):
    c = stack.expose_app()
    upload = f"{tmp}/big.bin"
    with open(upload, "wb") as f:
        f.write(b"x" * 2_000_000)
    code, body = stack.get(c.url + "sink", "-H", "Expect: 100-continue",
                           "--data-binary", f"@{upload}", "-v")
    assert code == 200 and json.loads(body)["length"] == 2_000_000


def test_keep_alive_every_request_gets_forwarded_fields(stack):
    c = stack.expose_app()
    stack.app.reset()
    out = subprocess.run(["curl", "-s", "-v", c.url + "hello", c.url + "hello",
                          c.url + "hello"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "hellohellohello"
    assert "Re-using existing connection" in out.stderr
    reqs = stack.app.requests()
    assert len(reqs) == 3
    for r in reqs:
        assert forwarded(r["headers"])["x-forwarded-for"] == ["127.0.0.1"]
    # One public connection: one edge process served all three.
    assert len(stack.edge.accesses()) == 3


def test_pipelined_requests_answered_in_order(stack):
    c = stack.expose_app()
    req = (f"GET /status/201 HTTP/1.1\r\nHost: {c.host}\r\n\r\n"
           f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n\r\n"
           f"GET /status/202 HTTP/1.1\r\nHost: {c.host}\r\nConnection: close\r\n\r\n")
    out = stack.raw(req.encode())
    assert re.findall(rb"HTTP/1.1 (\d+)", out) == [b"201", b"200", b"202"]


def test_sse_events_arrive_as_sent(stack):
    c = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=20) as s:
        s.sendall(f"GET /sse HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        got = harness.recv_until(s, b"data: first")
        # The second event is only sent now: it must arrive on its own.
        assert harness.curl(stack.app.url("/sse-next"))[1] == b"1"
        got = harness.recv_until(s, b"data: next", got)


def test_websocket_through_tunnel(stack):
    import asyncio
    import websockets

    c = stack.expose_app()

    async def talk():
        async with websockets.connect(f"ws://{c.host}/ws", host="127.0.0.1",
                                      port=stack.edge_port, max_size=None) as ws:
            for i in range(50):
                await ws.send(f"message {i}")
                assert await ws.recv() == f"message {i}"
            big = bytes(range(256)) * 4096
            await ws.send(big)
            assert await ws.recv() == big
    asyncio.run(asyncio.wait_for(talk(), 30))


def test_200_concurrent_streams_on_one_tunnel(tmp):
    n = 200
    # All from 127.0.0.1: past the default streams-per-source (64).
    stack = Stack(tmp, broker_extra=("--streams-per-source", str(n)))
    try:
        c = stack.expose_app()
        results = []

        def one():
            results.append(harness.curl(c.url + f"barrier?n={n}", timeout=60))
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The app answers only once all 200 wait at once.
        assert results == [(200, f"released {n}".encode())] * n
    finally:
        stack.close()


# A count, not a memory check: on the release build (the sanitized one
# spends half a minute starting 100 clients; the soak covers far more).
@pytest.mark.release
def test_100_tunnels_on_one_broker(release_stack):
    stack = release_stack
    clients = [stack.expose_app() for _ in range(100)]
    assert len(stack.broker.rows()) == 100
    for c in clients:
        assert stack.get(c.url + "hello") == (200, b"hello")
    for c in clients:
        c.stop()
    assert stack.broker.rows() == []


def test_edge_on_fd3_as_systemd_passes_it(stack, tmp):
    # systemd Accept=yes: the connection is fd 3 and LISTEN_FDS=1.
    edge = harness.Edge(tmp, stack.broker, inetd=False)
    try:
        c = stack.expose_app()
        url = c.url.replace(f":{stack.edge_port}/", f":{edge.port}/")
        assert stack.get(url + "hello") == (200, b"hello")
        assert any("status=200" in line for line in edge.accesses())
    finally:
        edge.stop()
