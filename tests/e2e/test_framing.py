"""Where each response ends, as the visitor reads it: the edge frames the
app's responses by RFC 9112 section 6.3, so that what it passes on, what
it logs and what it may add (its own error pages) match what the visitor
reads.  A 1xx, 204 or 304 has no body whatever its Content-Length says;
a body without a length ends at the close, and nothing may follow it."""
import re
import socket

import harness


def responses(data):
    """Splits what a visitor read into (status, body) pairs, framed as a
    browser frames them; bytes past the last frame are a failure."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"an incomplete head: {data[:200]!r}"
        status = harness.status_of(head)
        assert status, f"not a response: {head[:200]!r}"
        fields = dict((k.lower(), v.strip()) for k, _, v in
                      (line.partition(b":") for line in head.split(b"\r\n")[1:]))
        if 100 <= status < 200 or status in (204, 304):
            body, data = b"", rest
        elif b"content-length" in fields:
            n = int(fields[b"content-length"])
            assert len(rest) >= n, f"a short body: {rest!r}"
            body, data = rest[:n], rest[n:]
        else:
            body, data = rest, b""    # to the close
        out.append((status, body))
    return out


def statuses_logged(stack):
    return [int(re.search(r"status=(\d+)", line).group(1)) for line in stack.edge.accesses()]


def pipeline(host, *paths):
    """One connection's worth of GETs, the last closing it."""
    reqs = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n" for p in paths[:-1]]
    reqs.append(f"GET {paths[-1]} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    return "".join(reqs).encode()


def test_304_and_204_with_content_length_have_no_body(stack):
    c = stack.expose_app()
    out = stack.raw(pipeline(c.host, "/not-modified", "/no-content", "/hello"))
    assert responses(out) == [(304, b""), (204, b""), (200, b"hello")]
    # The edge's view matches: one access line each, with its own status.
    harness.wait_for(lambda: len(stack.edge.accesses()) == 3, what="three access lines")
    assert statuses_logged(stack) == [304, 204, 200]
    stack.edge.wait_idle()


def test_103_with_content_length_is_interim(stack):
    c = stack.expose_app()
    out = stack.raw(pipeline(c.host, "/early-hints", "/hello"))
    assert responses(out) == [(103, b""), (200, b"hinted"), (200, b"hello")]
    harness.wait_for(lambda: len(stack.edge.accesses()) == 2, what="two access lines")
    assert statuses_logged(stack) == [200, 200]
    stack.edge.wait_idle()


def test_close_delimited_body_ends_the_connection(stack):
    """The app answers without a length and closes; a request pipelined
    behind it must get no 502 page glued to the body: the visitor reads
    the body to the close, and the close is all that follows."""
    c = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=30) as s:
        s.sendall(pipeline(c.host, "/until-close", "/hello", "/hello"))
        out = harness.read_until_close(s)
    assert responses(out) == [(200, b"body until close")]
    assert b"502" not in out
    harness.wait_for(lambda: len(stack.edge.accesses()) >= 1, what="an access line")
    assert statuses_logged(stack) == [200]
    stack.edge.wait_idle()


def test_connection_close_response_ends_the_connection(stack):
    """Likewise after a response that says Connection: close."""
    c = stack.expose_app()
    req = (f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\nConnection: close\r\n\r\n"
           f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n\r\n").encode()
    out = stack.raw(req, timeout=harness.scaled(30))
    assert responses(out) == [(200, b"hello")]
    stack.edge.wait_idle()
