"""The request log tells the whole truth: every exchange gets exactly one
line, when it ends, with its real status, duration and body bytes each
way; cut, abandoned and upgraded exchanges say so.  The --json events and
the inspector follow the same rule.  And the edge's access log says what
it actually sent."""
import base64
import json
import os
import re
import socket
import subprocess

import harness
from test_inspector import Inspector

LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<method>\S+) +(?P<path>\S+) (?P<status>\d+|-) "
                  r"(?P<took>\d+ms|[\d.]+s|\d+m\d\ds) req (?P<req>\S+) resp (?P<resp>\S+)"
                  r"(?:, (?P<end>.*))?$", re.M)
ABANDONED = "abandoned: the visitor went away"


def logged(c, path=None):
    """The request-log lines the client printed, parsed."""
    return [m.groupdict() for m in LINE.finditer(c.text())
            if path is None or m["path"] == path]


def wait_logged(c, path, n=1):
    """Once at least n lines for path are there, all of them."""
    def enough():
        lines = logged(c, path)
        return lines if len(lines) >= n else None
    return harness.wait_for(enough, what=f"{n} request-log line(s) for {path}")


def get(host, path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def test_every_pipelined_request_gets_its_line(stack):
    """More pipelined requests than the client follows at once: all are
    answered, and every one is logged, in order."""
    c = stack.expose_app()
    paths = [f"/echo?i={i}" for i in range(20)]
    data = b"".join(get(c.host, p) for p in paths[:-1]) + \
        get(c.host, paths[-1], "Connection: close\r\n")
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(data)
        out = harness.read_until_close(s)
    assert out.count(b"HTTP/1.1 200 OK") == 20
    harness.wait_for(lambda: len(logged(c)) >= 20, what="20 request-log lines")
    lines = logged(c)
    assert [x["path"] for x in lines] == paths
    assert all(x["status"] == "200" and x["end"] is None for x in lines), lines


def test_close_delimited_response_is_logged_whole(stack):
    c = stack.expose_app()
    out = stack.raw(get(c.host, "/until-close"))
    assert out.endswith(b"body until close")
    [x] = wait_logged(c, "/until-close")
    assert (x["status"], x["resp"], x["end"]) == ("200", "16B", None)


def test_answer_before_the_body_is_logged(stack, tmp):
    """Expect: 100-continue answered 413 before the body was sent."""
    c = stack.expose_app()
    body = os.path.join(tmp, "body")
    with open(body, "wb") as f:
        f.write(b"x" * (1 << 20))
    status, got = stack.get(c.url + "too-big", "-H", "Expect: 100-continue",
                            "--data-binary", f"@{body}")
    assert (status, got) == (413, b"too big")
    [x] = wait_logged(c, "/too-big")
    assert (x["method"], x["status"], x["req"], x["resp"], x["end"]) == \
        ("POST", "413", "0B", "7B", None)


def test_download_cut_by_the_visitor_is_abandoned(stack):
    c = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(get(c.host, "/bytes?n=100000000"))
        harness.recv_until(s, lambda got: len(got) > 200000)
    [x] = wait_logged(c, "/bytes?n=100000000")
    assert x["status"] == "200" and x["end"] == ABANDONED, x
    assert x["resp"].endswith(("KiB", "MiB")), x


def test_event_stream_left_is_abandoned(stack):
    c = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(get(c.host, "/sse"))
        harness.recv_until(s, b"data: first\n\n")
        assert logged(c, "/sse") == []          # not before it ends
    [x] = wait_logged(c, "/sse")
    assert (x["status"], x["resp"], x["end"]) == ("200", "13B", ABANDONED)


def test_response_cut_by_the_app(stack):
    c = stack.expose_app()
    stack.raw(get(c.host, "/truncate"))
    stack.raw(get(c.host, "/close"))
    [x] = wait_logged(c, "/truncate")
    assert (x["status"], x["resp"], x["end"]) == \
        ("200", "10B", "cut: the app closed before the end")
    [x] = wait_logged(c, "/close")
    assert (x["status"], x["resp"], x["end"]) == \
        ("-", "0B", "cut: the app closed without answering")


def ws_frame(payload):
    """A masked text frame, as a browser sends it."""
    mask = b"\x01\x02\x03\x04"
    return bytes([0x81, 0x80 | len(payload)]) + mask + \
        bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def websocket_session(stack, host):
    """Opens /ws, one echo, closes; returns the bytes each way after the
    upgrade (what the log must count)."""
    key = base64.b64encode(os.urandom(16)).decode()
    head = get(host, "/ws", f"Connection: Upgrade\r\nUpgrade: websocket\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    frame = ws_frame(b"hello")
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(head)
        got = harness.recv_until(s, b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 101"), got
        got = got.partition(b"\r\n\r\n")[2]
        s.sendall(frame)
        got = harness.recv_until(s, lambda g: len(g) >= 7, got)
        assert got == b"\x81\x05hello"
        yield len(frame), len(got)


def test_websocket_logged_when_it_closes(stack):
    c = stack.expose_app()
    for sent, got in websocket_session(stack, c.host):
        # Open: no line yet (it used to say 101 0B at the upgrade).
        assert logged(c, "/ws") == []
    [x] = wait_logged(c, "/ws")
    assert (x["status"], x["req"], x["resp"], x["end"]) == \
        ("101", f"{sent}B", f"{got}B", "upgraded connection closed")


def test_edge_logs_an_upgraded_connection_when_it_closes(stack):
    """The edge's access line of a websocket: none at the 101, one at the
    close with status 101, the bytes it wrote (the 101's head and what
    followed) and what passed each way after the 101."""
    c = stack.expose_app()
    key = base64.b64encode(os.urandom(16)).decode()
    head = get(c.host, "/ws", f"Connection: Upgrade\r\nUpgrade: websocket\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    frames = ws_frame(b"hello") + ws_frame(b"again, longer")

    def ws_lines():
        return [line for line in stack.edge.accesses() if "path=/ws " in line]
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(head)
        got = harness.recv_until(s, b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 101"), got
        head_len = got.index(b"\r\n\r\n") + 4
        s.sendall(frames)
        want = b"\x81\x05hello\x81\x0dagain, longer"
        got = harness.recv_until(s, lambda g: len(g) >= head_len + len(want), got)
        assert got[head_len:] == want
        assert ws_lines() == []     # open: not logged yet
    [line] = harness.wait_for(ws_lines, what="the edge's access line for /ws")
    m = re.search(r"method=GET path=/ws status=101 bytes=(\d+) ms=(\d+) "
                  r"raw_in=(\d+) raw_out=(\d+)$", line.rstrip("\n"))
    assert m, line
    assert [int(x) for x in (m[1], m[3], m[4])] == [len(got), len(frames), len(want)]


def test_json_events_follow_the_same_rule(stack):
    c = stack.expose_app("--json", wait_url=False)
    url = json.loads(c.next_line())
    assert url["event"] == "url"
    host = re.match(r"http://([^/]+)/", url["url"]).group(1)
    for _ in websocket_session(stack, host):
        pass
    ev = json.loads(c.next_line())
    assert (ev["event"], ev["path"], ev["status"], ev["end"], ev["upgraded"]) == \
        ("request", "/ws", 101, "closed", True)
    assert (ev["request_bytes"], ev["bytes"]) == (11, 7)
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(get(host, "/sse"))
        harness.recv_until(s, b"data: first\n\n")
    ev = json.loads(c.next_line())
    assert (ev["path"], ev["status"], ev["end"], ev["bytes"]) == ("/sse", 200, "abandoned", 13)


def test_inspector_follows_the_same_rule(stack):
    ins = Inspector(stack)
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(get(ins.client.host, "/sse"))
        harness.recv_until(s, b"data: first\n\n")
        assert [r for r in ins.requests() if r["path"] == "/sse"] == []
    entry = ins.wait_entry("the abandoned event stream", path="/sse")
    assert (entry["status"], entry["end"], entry["response_bytes"]) == (200, ABANDONED, 13)


# --- the edge's access log ---

def access(stack, n):
    harness.wait_for(lambda: len(stack.edge.accesses()) >= n, what=f"{n} access line(s)")
    return stack.edge.accesses()


def test_edge_logs_the_status_of_a_cut_response(stack):
    c = stack.expose_app()
    out = stack.raw(get(c.host, "/truncate"))
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"0123456789")
    [line] = access(stack, 1)
    assert re.search(rf"path=/truncate status=200 bytes={len(out)} ", line), line


def test_edge_logs_the_bytes_of_its_own_pages(stack):
    out = stack.raw(get(f"nobody.localhost:{stack.edge_port}", "/x"))
    assert harness.status_of(out) == 404
    [line] = access(stack, 1)
    assert re.search(rf"status=404 bytes={len(out)} ", line), line


def test_edge_logs_what_a_visitor_that_left_got(stack):
    c = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(get(c.host, "/sse"))
        got = harness.recv_until(s, b"data: first\n\n")
    [line] = access(stack, 1)
    assert re.search(rf"path=/sse status=200 bytes={len(got)} ", line), line
    stack.edge.wait_idle()
    assert len(stack.edge.accesses()) == 1
