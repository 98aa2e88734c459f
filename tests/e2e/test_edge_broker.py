"""The edge's Unix connection to the broker (expose(7), "The edge
socket"): the reply lines and the first response bytes, and a kept-alive
public connection whose tunnel goes away."""
import re
import socket
import subprocess

import harness


def open_stream(stack, host, path):
    """A Unix connection to the broker speaking as an edge: OPEN, then one
    request for path."""
    name = host.split(".")[0]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(harness.scaled(30))
    s.connect(stack.broker.socket)
    s.sendall(f"EXPOSE/1 OPEN {name} 127.0.0.1 5555 http\n"
              f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    return s


def barrier_arrivals(stack):
    return sum(1 for r in stack.app.requests() if r["url"].startswith("/barrier"))


def test_broker_sends_ok_line_before_the_response_and_opened_never_after(stack):
    c = stack.expose_app()
    with open_stream(stack, c.host, "/hello") as s:
        got = harness.read_until_close(s)
    m = re.fullmatch(rb"(EXPOSE/1 OPENED\n)?EXPOSE/1 OK\n(HTTP/1\.1 200 .*)", got, re.S)
    assert m, got[:300]
    assert m.group(2).endswith(b"\r\n\r\nhello")


def test_broker_says_opened_while_the_app_is_slow_then_ok(stack):
    """An app that takes its time still gets the edge an OPENED, so that
    the edge does not take a live broker for a hung one (504); the OK line
    and the response follow when the app answers, through a real edge too."""
    c = stack.expose_app()
    stack.app.reset()
    first = open_stream(stack, c.host, "/barrier?n=4")
    held = None
    last = None
    try:
        assert harness.recv_until(first, b"\n") == b"EXPOSE/1 OPENED\n"
        # Through the edge: its stream is opened before the app hears of it.
        held = subprocess.Popen(["curl", "-s", "--max-time", str(harness.scaled(60)),
                                 c.url + "barrier?n=4"], stdout=subprocess.PIPE)
        harness.wait_for(lambda: barrier_arrivals(stack) == 2, what="the edge's request held")
        # A stream opened after the edge's: once it hears OPENED, the
        # edge's (on the same delay, started earlier) went out before it.
        last = open_stream(stack, c.host, "/barrier?n=4")
        assert harness.recv_until(last, b"\n") == b"EXPOSE/1 OPENED\n"
        assert harness.curl(c.url + "barrier?n=4") == (200, b"released 4")
        out, _ = held.communicate(timeout=harness.scaled(60))
        assert out == b"released 4"
        for s in (first, last):
            got = harness.read_until_close(s)
            assert got.startswith(b"EXPOSE/1 OK\nHTTP/1.1 200 "), got[:200]
            assert got.endswith(b"released 4")
    finally:
        first.close()
        if last:
            last.close()
        if held and held.poll() is None:
            held.kill()
            held.wait()
    assert "504" not in "".join(stack.edge.accesses())


def test_kept_alive_connection_of_a_closed_tunnel_serves_no_more(stack):
    """The edge looks its tunnel up once per connection; a tunnel that goes
    away must still end what its connections can reach."""
    c = stack.expose_app()
    stack.app.reset()
    req = f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", stack.edge_port),
                                  timeout=harness.scaled(30)) as s:
        s.sendall(req)
        got = harness.recv_until(s, b"\r\n\r\nhello")
        assert harness.status_of(got) == 200
        c.kill()
        harness.wait_for(lambda: stack.broker.rows() == [], what="the tunnel's row deleted")
        try:
            s.sendall(req)
            rest = harness.read_until_close(s)
        except (BrokenPipeError, ConnectionResetError):
            rest = b""
    # The close, or the edge's page: never the app's answer.
    assert harness.status_of(rest) in (None, 502), rest[:200]
    assert [r["url"] for r in stack.app.requests()] == ["/hello"]
    assert stack.get(c.url + "hello")[0] == 404
