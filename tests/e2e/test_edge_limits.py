"""Deadlines, stream caps and faults: slow or broken peers get the right
answer or a clean close, everyone else keeps being served, and nothing
(process, row) is left behind."""
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import harness
from conftest import Stack

# Short deadlines so that tests see them pass; expose.conf sets them.
FAST = ("--head-timeout", "600", "--idle-timeout", "600", "--body-timeout", "600")


@pytest.fixture
def fast(tmp):
    s = Stack(tmp, edge_extra=FAST)
    yield s
    s.close()


def test_slow_head_gets_408_and_process_exits(fast):
    c = fast.expose_app()
    with socket.create_connection(("127.0.0.1", fast.edge_port)) as s:
        s.sendall(f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\nX-Slow".encode())
        out = harness.read_until_close(s)
    assert harness.status_of(out) == 408
    fast.edge.wait_idle()


def test_idle_keep_alive_closed(fast):
    c = fast.expose_app()
    with socket.create_connection(("127.0.0.1", fast.edge_port)) as s:
        s.sendall(f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        out = harness.read_until_close(s)
    # The response, then the edge closed the idle connection by itself.
    assert harness.status_of(out) == 200 and out.endswith(b"hello")
    fast.edge.wait_idle()


def test_stalled_body_ends_connection(fast):
    c = fast.expose_app()
    with socket.create_connection(("127.0.0.1", fast.edge_port)) as s:
        s.sendall(f"POST /sink HTTP/1.1\r\nHost: {c.host}\r\nContent-Length: 100\r\n\r\n"
                  "only ten b".encode())
        out = harness.read_until_close(s)
    # The request was passed on; its body never came whole: no answer can
    # be given for it, only the close.
    assert out == b""
    fast.edge.wait_idle()


def test_connection_that_never_speaks_is_closed(fast):
    with socket.create_connection(("127.0.0.1", fast.edge_port)) as s:
        assert harness.read_until_close(s) == b""
    fast.edge.wait_idle()


def test_stream_cap_503_with_retry_after(tmp):
    s = Stack(tmp, broker_extra=("--streams-per-tunnel", "2"))
    try:
        c = s.expose_app()
        held = []

        def hold():
            held.append(harness.curl(c.url + "barrier?n=3"))
        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        harness.wait_for(lambda: len(s.app.requests()) == 2, what="two held requests")
        out = s.raw(f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        assert harness.status_of(out) == 503
        assert b"Retry-After: 1\r\n" in out
        # The third waiter, straight to the app, releases the two.
        assert harness.curl(s.app.url("/barrier?n=3"))[0] == 200
        for t in threads:
            t.join()
        assert [h[0] for h in held] == [200, 200]
        assert s.get(c.url + "hello") == (200, b"hello")
    finally:
        s.close()


def test_client_killed_mid_response(stack):
    c = stack.expose_app()
    other = stack.expose_app()
    with socket.create_connection(("127.0.0.1", stack.edge_port)) as sock:
        sock.sendall(f"GET /bytes?n=100000000 HTTP/1.1\r\nHost: {c.host}\r\n\r\n".encode())
        # the response is under way
        got = harness.recv_until(sock, lambda data: len(data) >= 100_000)
        c.kill()
        got += harness.read_until_close(sock)      # a close, not a hang
    assert harness.status_of(got) == 200 and len(got) < 100_000_000
    harness.wait_for(lambda: len(stack.broker.rows()) == 1, what="the row to go")
    assert stack.get(other.url + "hello") == (200, b"hello")
    stack.edge.wait_idle()


def test_app_closing_mid_body(stack):
    c = stack.expose_app()
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          c.url + "truncate"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 18            # curl: partial file
    assert out.stdout == "200 10"
    assert stack.get(c.url + "hello") == (200, b"hello")
    stack.edge.wait_idle()


def test_app_closing_without_answer_502(stack):
    c = stack.expose_app()
    code, body = stack.get(c.url + "close")
    assert code == 502 and b"closed the connection without answering" in body


def test_broker_restarted_during_traffic(stack):
    c = stack.expose_app("--name", "busy")
    n = 50
    results = []

    def one():
        results.append(harness.curl(c.url + f"barrier?n={n + 1}", timeout=60)[0])
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    harness.wait_for(lambda: len(stack.app.requests()) == n, what="50 requests in flight")
    stack.broker.kill()
    for t in threads:
        t.join(60)
    # Each in-flight request ends: a 502 page if nothing was sent, or a close.
    assert all(code in (502, 0) for code in results) and len(results) == n
    stack.broker.start()
    harness.wait_in_file(c.log, r"reconnected")
    assert stack.get(c.url + "hello") == (200, b"hello")
    stack.edge.wait_idle()


def test_registry_locked_by_long_writer_503_not_hang(stack):
    c = stack.expose_app("--name", "locked")
    # In WAL mode readers never wait for the broker; a writer that takes the
    # file exclusively (possible only while no broker has it open) makes
    # them wait, so the edge must give up after its busy timeout.
    stack.broker.kill()
    db = sqlite3.connect(stack.broker.registry, timeout=5)
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")
    try:
        # the busy timeout answers, not forever: curl's own limit would give 0
        code, body = stack.get(c.url + "hello", timeout=20)
        assert code == 503
        harness.wait_in_file(stack.edge.log, r"lookup failed: database is locked")
    finally:
        db.rollback()
        db.close()
    stack.broker.start()
    harness.wait_in_file(c.log, r"reconnected")
    assert stack.get(c.url + "hello") == (200, b"hello")


@pytest.mark.release
def test_500_slow_connections_do_not_stop_service(tmp):
    # 500 slowloris connections, a byte every 2 s; a 6 s head deadline.
    s = Stack(tmp, bin_dir=harness.RELEASE_BIN,
              edge_extra=("--head-timeout", "6000"))
    try:
        c = s.expose_app()
        slow = []
        for _ in range(500):
            sock = socket.create_connection(("127.0.0.1", s.edge_port))
            sock.sendall(b"G")
            slow.append(sock)
        stop = threading.Event()

        def drip():
            while not stop.wait(2):
                for sock in slow:
                    try:
                        sock.sendall(b"E")
                    except OSError:
                        pass
        dripper = threading.Thread(target=drip)
        dripper.start()
        served = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert s.get(c.url + "hello", timeout=10) == (200, b"hello")
            served += 1
        statuses = []
        for sock in slow:
            sock.settimeout(20)
            statuses.append(harness.status_of(harness.read_until_close(sock)))
            sock.close()
        stop.set()
        dripper.join()
        print(f"served {served} normal requests while 500 slow connections dripped")
        assert statuses == [408] * 500
        assert served > 0
        s.edge.wait_idle()
    finally:
        s.close()


def stalled_post(port, host, source="127.0.0.1"):
    """A POST whose body never comes whole: it holds a stream open."""
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    sock.sendall(f"POST /sink HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n"
                 "only some".encode())
    return sock


def get_from(port, host, source, path="/hello"):
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0),
                                  timeout=harness.scaled(30)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        return harness.read_until_close(sock)


def test_one_source_cannot_fill_a_tunnel(tmp):
    """Stalled requests from one address fill its share of the tunnel's
    streams, not the tunnel: past streams-per-source it gets 503, and
    another address is still served."""
    s = Stack(tmp, broker_extra=("--streams-per-source", "3"))
    held = []
    try:
        c = s.expose_app()
        held = [stalled_post(s.edge_port, c.host) for _ in range(3)]
        harness.wait_for(lambda: len(s.app.requests()) == 3, what="three stalled POSTs")
        out = get_from(s.edge_port, c.host, "127.0.0.1")
        assert harness.status_of(out) == 503
        assert b"Retry-After: 1\r\n" in out
        out = get_from(s.edge_port, c.host, "127.0.0.2")
        assert harness.status_of(out) == 200 and out.endswith(b"hello")
        # The stalled ones go: their address is served again.
        for sock in held:
            sock.close()
        harness.wait_for(lambda: harness.status_of(get_from(s.edge_port, c.host,
                                                            "127.0.0.1")) == 200,
                         what="the first address served again")
    finally:
        for sock in held:
            sock.close()
        s.close()
