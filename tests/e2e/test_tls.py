"""HTTPS for visitors and WSS for clients, with certificates made here by
a throwaway CA (the openssl CLI), checked with curl, Python's ssl and a
websocket client over TLS."""
import asyncio
import os
import re
import socket
import ssl
import subprocess
import warnings

import pytest

import harness
from conftest import Stack

DOMAIN = "tunnel.test"
CA_CONF = """[ca]
default_ca = test
[test]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
"""


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, and a way to issue certificates for the tunnel domain."""
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=expose test CA",
            cwd=d)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CONF.format(dir=d))
    serial = [0]

    def issue(name, start="20251101000000Z", end="20301101000000Z"):
        serial[0] += 1
        key, csr, pem = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "pem"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={DOMAIN}", "-addext",
                f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN},DNS:localhost,IP:127.0.0.1",
                cwd=d)
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                "-in", csr, "-out", pem, "-startdate", start, "-enddate", end, "-notext",
                cwd=d)
        return pem, key
    return {"dir": d, "ca": os.path.join(d, "ca.pem"), "issue": issue}


@pytest.fixture
def tls_stack(tmp, pki):
    cert, key = pki["issue"]("site")
    s = Stack(tmp, domain=DOMAIN,
              broker_extra=("--cert", cert, "--key", key, "--scheme", "https"))
    s.cert, s.key, s.ca = cert, key, pki["ca"]
    s.tls_edge = harness.Edge(tmp, s.broker, program="expose-edge-tls",
                              extra=("--cert", cert, "--key", key, "--head-timeout", "1500"))
    s.wss = f"wss://localhost:{s.broker.ws_port}"
    yield s
    s.tls_edge.stop()
    s.close()


def curl_tls(s, url, *args):
    host = url.split("/")[2]
    return harness.curl("--cacert", s.ca, "--resolve", f"{host}:127.0.0.1", *args, url)


def connect(s, name, session=None, server_hostname=None, ctx=None):
    ctx = ctx or ssl.create_default_context(cafile=s.ca)
    raw = socket.create_connection(("127.0.0.1", s.tls_edge.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=server_hostname or f"{name}.{DOMAIN}",
                           session=session)


def https_url(s, c):
    name = c.host.split(".")[0]
    return f"https://{name}.{DOMAIN}:{s.tls_edge.port}/"


def test_https_through_the_tunnel(tls_stack):
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    assert c.url.startswith("https://")
    url = https_url(s, c)
    assert curl_tls(s, url + "hello") == (200, b"hello")
    code, body = curl_tls(s, url + "sink", "--data-binary", "x" * 100000)
    assert code == 200 and b'"length":100000' in body
    req = s.app.requests()[-1]
    h = dict(zip([k.lower() for k in req["headers"][::2]], req["headers"][1::2]))
    assert h["x-forwarded-proto"] == "https"


def test_plain_edge_given_tls_hands_over_to_the_tls_edge(tls_stack):
    """expose-edge links no TLS library; with --tls (an older unit) it execs
    expose-edge-tls beside it, and the visitor gets https all the same."""
    s = tls_stack
    old = harness.Edge(s.tmp, s.broker, extra=("--tls", "--cert", s.cert, "--key", s.key))
    try:
        c = s.client("--ca", s.ca, s.app.port, server=s.wss)
        name = c.host.split(".")[0]
        url = f"https://{name}.{DOMAIN}:{old.port}/hello"
        assert curl_tls(s, url) == (200, b"hello")
        # The plain edge itself refuses TLS bytes: it is not an https edge.
        code, _ = curl_tls(s, f"https://{name}.{DOMAIN}:{s.edge.port}/hello")
        assert code != 200
    finally:
        old.stop()


def test_tls_edge_without_a_sibling_says_so(tmp, tls_stack):
    """A plain edge copied away from expose-edge-tls and given --tls says
    what is missing and exits 78 (configuration)."""
    lone = os.path.join(tmp, "lone")
    os.mkdir(lone)
    prog = os.path.join(lone, "expose-edge")
    with open(os.path.join(harness.BIN, "expose-edge"), "rb") as src, open(prog, "wb") as dst:
        dst.write(src.read())
    os.chmod(prog, 0o755)
    r = subprocess.run([prog, "--tls", "--registry", tls_stack.broker.registry],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=harness.scaled(30))
    assert r.returncode == 78
    assert b"expose-edge-tls" in r.stderr


def test_tls_sse_and_websocket(tls_stack):
    import websockets
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    name = c.host.split(".")[0]
    with connect(s, name) as t:
        t.sendall(f"GET /sse HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n\r\n".encode())
        got = harness.recv_until(t, b"data: first")
        assert harness.curl(s.app.url("/sse-next"))[1] == b"1"
        got = harness.recv_until(t, b"data: next", got)

    async def talk():
        ctx = ssl.create_default_context(cafile=s.ca)
        async with websockets.connect(f"wss://{name}.{DOMAIN}/ws", host="127.0.0.1",
                                      port=s.tls_edge.port, ssl=ctx,
                                      server_hostname=f"{name}.{DOMAIN}") as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
    asyncio.run(asyncio.wait_for(talk(), 20))


def test_https_download_to_a_slow_reader_arrives_whole(tls_stack):
    """A visitor that stops reading now and then: the edge's TLS write
    waits on it while more of the response queues behind (and the queue
    moves in memory); the response must still arrive whole."""
    import time
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    name = c.host.split(".")[0]
    n, pause_every = 4 * 1024 * 1024, 96 * 1024
    with connect(s, name) as t:
        t.sendall(f"GET /bytes?n={n} HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n"
                  "Connection: close\r\n\r\n".encode())
        got, next_pause = b"", pause_every
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            got += chunk
            if len(got) >= next_pause:
                time.sleep(0.05)      # the stalled reader is what is tested
                next_pause += pause_every
    body = got.partition(b"\r\n\r\n")[2]
    assert harness.status_of(got) == 200 and len(body) == n


def test_alpn_and_protocol_versions(tls_stack):
    s = tls_stack
    ctx = ssl.create_default_context(cafile=s.ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.tls_edge.port)),
                         server_hostname=f"x.{DOMAIN}") as t:
        assert t.selected_alpn_protocol() == "http/1.1"
        assert t.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(s.ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        old.wrap_socket(socket.create_connection(("127.0.0.1", s.tls_edge.port)),
                        server_hostname=f"x.{DOMAIN}")


def handshake_messages(s, *args):
    """openssl s_client with args against the https edge, with -msg: the
    handshake messages each way, and the key exchange's group."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_edge.port}",
                          "-servername", f"x.{DOMAIN}", "-CAfile", s.ca, "-msg", *args],
                         input=b"", capture_output=True, timeout=harness.scaled(20))
    text = out.stdout.decode(errors="replace")
    assert "Verify return code: 0" in text, text
    hellos = re.findall(r"^(>>>|<<<) TLS 1\.3, Handshake \[length [0-9a-f]+\], (ClientHello|ServerHello)$",
                        text, re.M)
    group = re.search(r"^Server Temp Key: (.*), \d+ bits$", text, re.M)
    return [m[1] for m in hellos], group and group.group(1)


def test_x25519_visitor_is_not_asked_twice(tls_stack):
    """Browsers and OpenSSL send a key share for X25519 alone: the edge
    takes it, in one ClientHello, with no HelloRetryRequest (a round trip
    more on every new connection)."""
    hellos, group = handshake_messages(tls_stack)
    assert (hellos, group) == (["ClientHello", "ServerHello"], "X25519")


def test_visitor_without_x25519_still_served(tls_stack):
    """A visitor offering only P-256 gets P-256, also in one flight."""
    hellos, group = handshake_messages(tls_stack, "-groups", "P-256")
    assert (hellos, group) == (["ClientHello", "ServerHello"], "ECDH, prime256v1")


def test_sni_outside_the_domain_refused(tls_stack):
    s = tls_stack
    ctx = ssl.create_default_context(cafile=s.ca)
    ctx.check_hostname = False
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.tls_edge.port), timeout=10),
                        server_hostname="evil.example.com")
    harness.wait_in_file(s.tls_edge.log, r'tls refused addr=127\.0\.0\.1 sni="evil\.example\.com": '
                                         r"not a name under tunnel\.test")


def test_sni_cannot_forge_log_lines(tls_stack):
    """An SNI with a line break in it cannot make the journal show a line
    of its own: GnuTLS refuses a name that is not a DNS name before the
    edge sees it, and the edge logs the failed handshake on one line."""
    s = tls_stack
    forged = "expose-edge: access name=forged status=200"
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_edge.port}",
                          "-servername", f"x.example\n{forged}", "-CAfile", s.ca],
                         input=b"", capture_output=True, timeout=harness.scaled(20))
    assert b"New, (NONE), Cipher is (NONE)" in out.stdout, out.stdout
    harness.wait_in_file(s.tls_edge.log, r'tls handshake failed addr=127\.0\.0\.1 '
                                         r'reason="A disallowed SNI server name')
    s.tls_edge.wait_idle()
    with open(s.tls_edge.log, errors="replace") as f:
        assert not any(line.startswith(forged) for line in f)


def test_no_sni_lets_host_route(tls_stack):
    """A visitor that sends no SNI (an address typed in, an old client):
    the handshake goes on and Host decides."""
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    name = c.host.split(".")[0]
    ctx = ssl.create_default_context(cafile=s.ca)
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", s.tls_edge.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=None) as t:
        t.sendall(f"GET /hello HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n"
                  "Connection: close\r\n\r\n".encode())
        got = harness.recv_until(t, b"hello")
    assert harness.status_of(got) == 200


def refused_handshake(s, *args):
    """openssl s_client with args against the https edge: no session comes
    of it, and the edge logs the failed handshake (the ClientHello reached
    it and it said no, rather than the client refusing to offer)."""
    before = open(s.tls_edge.log, errors="replace").read().count("tls handshake failed")
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_edge.port}",
                          "-servername", f"x.{DOMAIN}", "-CAfile", s.ca, *args],
                         input=b"", capture_output=True, timeout=harness.scaled(20))
    assert b"Cipher is (NONE)" in out.stdout or out.returncode != 0, out.stdout
    assert b"BEGIN CERTIFICATE" not in out.stdout
    harness.wait_for(lambda: open(s.tls_edge.log, errors="replace").read()
                     .count("tls handshake failed") > before, 30, "the edge's failure line")


@pytest.mark.parametrize("offer", [
    ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-SHA"),
    ("-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"),       # AEAD, no PFS
    ("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"),
    ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"),
], ids=["tls12-cbc-only", "tls12-static-rsa-only", "tls11", "tls10"])
def test_handshake_refused_without_an_aead_forward_secret_suite(tls_stack, offer):
    refused_handshake(tls_stack, *offer)


def test_garbage_first_record_refused(tls_stack):
    """Plain HTTP, and a record header claiming more than any record
    may hold: the edge ends the connection and logs why."""
    s = tls_stack
    for junk in (b"GET / HTTP/1.1\r\nHost: x.tunnel.test\r\n\r\n",
                 b"\x16\x03\x01\xff\xff" + b"\x00" * 64):
        with socket.create_connection(("127.0.0.1", s.tls_edge.port)) as raw:
            raw.sendall(junk)
            raw.settimeout(20)
            try:
                rest = raw.recv(4096)
                while rest and raw.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    harness.wait_for(lambda: open(s.tls_edge.log, errors="replace").read()
                     .count("tls handshake failed") >= 2, 30, "two failure lines")
    s.tls_edge.wait_idle()

def test_sni_and_host_must_agree(tls_stack):
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    with connect(s, "other") as t:
        t.sendall(f"GET /hello HTTP/1.1\r\nHost: {c.host.split('.')[0]}.{DOMAIN}\r\n\r\n".encode())
        out = t.recv(4096)
    assert harness.status_of(out) == 421


def visit(s, ctx, session=None, edge=None, name="resume"):
    """One connection to the https edge (or edge) offering session, one
    request read back (which brings TLS 1.3's ticket): (resumed, session)."""
    raw = socket.create_connection(("127.0.0.1", (edge or s.tls_edge).port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=f"{name}.{DOMAIN}", session=session) as t:
        t.sendall(f"GET / HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n\r\n".encode())
        t.recv(4096)
        return t.session_reused, t.session


def rotate_ticket_key(s):
    out = subprocess.run([os.path.join(s.bin, "exposectl"), "--registry",
                          s.broker.registry, "rotate-ticket-keys"], capture_output=True,
                         text=True, env=harness.sanitizer_env())
    assert out.returncode == 0, out.stderr


def test_sessions_resume_across_edge_processes(tls_stack):
    s = tls_stack
    ctx = ssl.create_default_context(cafile=s.ca)
    session, reused = None, []
    for _ in range(3):
        r, session = visit(s, ctx, session)
        reused.append(r)
    assert reused == [False, True, True]
    # One rotation and the ticket no longer opens (GnuTLS opens tickets
    # with one key): a full handshake, which brings a ticket that resumes.
    rotate_ticket_key(s)
    r, session = visit(s, ctx, session)
    assert not r
    assert visit(s, ctx, session)[0]


def test_ticket_resumes_on_another_edge_and_not_under_a_foreign_key(tls_stack, tmp):
    """A ticket from one launcher's edge resumes on a second launcher's
    (the shared tickets.key); an edge with another key file opens none of
    them and does a full handshake; one whose key file is missing serves
    without tickets and says so."""
    s = tls_stack
    foreign = os.path.join(tmp, "foreign.key")
    with open(foreign, "w") as f:
        f.write(os.urandom(64).hex() + "\n")
    os.chmod(foreign, 0o640)
    extra = ("--cert", s.cert, "--key", s.key)
    second = harness.Edge(tmp, s.broker, program="expose-edge-tls", extra=extra)
    other = harness.Edge(tmp, s.broker, program="expose-edge-tls",
                         extra=(*extra, "--ticket-keys", foreign))
    none = harness.Edge(tmp, s.broker, program="expose-edge-tls",
                        extra=(*extra, "--ticket-keys", os.path.join(tmp, "absent.key")))
    ctx = ssl.create_default_context(cafile=s.ca)
    try:
        _, first = visit(s, ctx)
        assert visit(s, ctx, first, second)[0]
        assert not visit(s, ctx, first, other)[0]
        assert not visit(s, ctx, first, none)[0]
        harness.wait_in_file(none.log, r"ticket-keys .*absent\.key: missing .*; sessions will "
                                       r"not resume")
    finally:
        second.stop()
        other.stop()
        none.stop()


def test_ticket_key_file_of_the_older_format(tls_stack):
    """tickets.key of three keys (lines of 160 hex digits, as before
    GnuTLS): the edge says how to replace it and serves without tickets;
    exposectl rotate-ticket-keys writes the new form and resumption works."""
    s = tls_stack
    path = os.path.join(os.path.dirname(s.broker.registry), "tickets.key")
    with open(path, "w") as f:
        f.write("".join(os.urandom(80).hex() + "\n" for _ in range(3)))
    ctx = ssl.create_default_context(cafile=s.ca)
    _, session = visit(s, ctx)
    harness.wait_in_file(s.tls_edge.log, r"ticket-keys .*tickets\.key: in the older format "
                                         r"of three keys .*; sessions will not resume")
    assert not visit(s, ctx, session)[0]
    rotate_ticket_key(s)
    with open(path) as f:
        assert len(f.read().strip()) == 128
    assert os.stat(path).st_mode & 0o777 == 0o640
    _, session = visit(s, ctx)
    assert visit(s, ctx, session)[0]


def test_each_resumption_brings_a_fresh_ticket_and_ends_with_close_notify(tls_stack):
    """Browsers use a TLS 1.3 ticket once: each resumed connection must
    leave them a new one.  And the edge ends with close_notify before its
    FIN, so a visitor can tell a whole response from a cut one."""
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    name = c.host.split(".")[0]
    ctx = ssl.create_default_context(cafile=s.ca)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF    # Python's default hides a cut
    session, reused, ids = None, [], []
    for _ in range(4):
        raw = socket.create_connection(("127.0.0.1", s.tls_edge.port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname=f"{name}.{DOMAIN}", session=session,
                             suppress_ragged_eofs=False) as t:
            t.sendall(f"GET /hello HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n"
                      "Connection: close\r\n\r\n".encode())
            got = b""
            while True:
                chunk = t.recv(4096)    # SSLEOFError on a FIN without close_notify
                if not chunk:
                    break
                got += chunk
            assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"hello")
            reused.append(t.session_reused)
            session = t.session
            ids.append(session.id)
    assert reused == [False, True, True, True]
    assert len(set(ids)) == 4, "a resumed connection got no new ticket"


def test_sni_given_as_an_address_is_ignored(tls_stack):
    """Some clients (wrk) send the address they connect to as SNI, which
    RFC 6066 forbids: the handshake goes on and Host decides, as with no
    SNI.  (Python never sends an address as SNI: openssl s_client does.)"""
    s = tls_stack
    c = s.client("--ca", s.ca, s.app.port, server=s.wss)
    name = c.host.split(".")[0]
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.tls_edge.port}",
                          "-servername", "127.0.0.1", "-CAfile", s.ca, "-quiet"],
                         input=f"GET /hello HTTP/1.1\r\nHost: {name}.{DOMAIN}\r\n"
                               "Connection: close\r\n\r\n".encode(),
                         capture_output=True, timeout=harness.scaled(20))
    assert out.stdout.startswith(b"HTTP/1.1 200 "), out.stderr
    assert out.stdout.endswith(b"hello")


def test_renewed_certificate_serves_the_next_connection(tls_stack, pki):
    s = tls_stack
    with connect(s, "x") as t:
        first = t.getpeercert()["serialNumber"]
    cert, key = pki["issue"]("renewed")
    os.replace(cert, s.cert)
    os.replace(key, s.key)
    with connect(s, "x") as t:
        assert t.getpeercert()["serialNumber"] != first


def test_renewed_certificate_reaches_the_broker(tls_stack, pki):
    s = tls_stack
    ctx = ssl.create_default_context(cafile=s.ca)

    def serial():
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.broker.ws_port)),
                             server_hostname="localhost") as t:
            return t.getpeercert()["serialNumber"]
    first = serial()
    cert, key = pki["issue"]("broker-renewed")
    os.replace(key, s.key)
    os.replace(cert, s.cert)
    harness.wait_in_file(s.broker.log, "reloaded")
    assert serial() != first


def test_wss_client_refuses_an_untrusted_server(tls_stack):
    s = tls_stack
    c = s.client(s.app.port, server=s.wss, wait_url=False)
    harness.wait_in_file(c.log, r"cannot reach wss://localhost:\d+: its certificate is not "
                         r"trusted for localhost: unable to get local issuer certificate "
                         r"\(for a private CA give --ca FILE\)")
    assert s.broker.rows() == []


def test_wss_client_refuses_an_expired_certificate(tmp, pki):
    cert, key = pki["issue"]("expired", start="20200101000000Z", end="20200102000000Z")
    s = Stack(tmp, domain=DOMAIN, broker_extra=("--cert", cert, "--key", key))
    try:
        c = s.client("--ca", pki["ca"], s.app.port, server=f"wss://localhost:{s.broker.ws_port}",
                     wait_url=False)
        harness.wait_in_file(c.log, r"its certificate is not trusted for localhost: "
                             r"certificate has expired")
    finally:
        s.close()


def test_ca_only_for_wss(tmp):
    env = dict(harness.sanitizer_env(), XDG_CONFIG_HOME=tmp)
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "--server", "ws://127.0.0.1:1",
                          "--ca", "/etc/hostname", "3000"], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 78 and "--ca /etc/hostname: only for a wss:// server" in out.stderr


def test_ca_without_certificates_refused_at_start(tmp):
    env = dict(harness.sanitizer_env(), XDG_CONFIG_HOME=tmp)
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "--server", "wss://127.0.0.1:1",
                          "--ca", "/etc/hostname", "3000"], capture_output=True, text=True,
                         env=env, timeout=harness.scaled(20))
    assert out.returncode == 78
    assert out.stderr.strip().endswith(
        "--ca /etc/hostname: no CA certificate in it (give a PEM file)"), out.stderr


def test_stalled_handshake_times_out(tls_stack):
    s = tls_stack
    with socket.create_connection(("127.0.0.1", s.tls_edge.port)) as raw:
        raw.sendall(b"\x16\x03\x01\x00\xff")       # a ClientHello that never finishes
        raw.settimeout(20)
        assert raw.recv(4096) == b""
    harness.wait_in_file(s.tls_edge.log, r"tls handshake timed out addr=127\.0\.0\.1")
    s.tls_edge.wait_idle()


def test_plain_http_redirects_except_acme(tmp, pki):
    cert, key = pki["issue"]("redirect")
    s = Stack(tmp, domain=DOMAIN, edge_extra=("--redirect-http", "yes", "--https-port", "8443"))
    try:
        c = s.expose_app("--name", "moved")
        out = s.raw(f"GET /a?b=c HTTP/1.1\r\nHost: moved.{DOMAIN}:{s.edge_port}\r\n\r\n".encode())
        assert harness.status_of(out) == 308
        assert f"Location: https://moved.{DOMAIN}:8443/a?b=c\r\n".encode() in out
        # An OAuth callback's long query moves whole (the longest target the edge takes).
        long = "/callback?state=" + "s" * (harness.URI_MAX_BYTES - 16)
        out = s.raw(f"GET {long} HTTP/1.1\r\nHost: moved.{DOMAIN}\r\n\r\n".encode())
        assert harness.status_of(out) == 308
        assert f"\r\nLocation: https://moved.{DOMAIN}:8443{long}\r\n".encode() in out
        out = s.raw(f"GET /.well-known/acme-challenge/token HTTP/1.1\r\nHost: moved.{DOMAIN}\r\n"
                    "Connection: close\r\n\r\n".encode())
        assert harness.status_of(out) == 200           # the app's answer, not a redirect
        assert [r["url"] for r in s.app.requests()] == ["/.well-known/acme-challenge/token"]
    finally:
        s.close()


def test_https_url_first_then_http(tmp, pki):
    cert, key = pki["issue"]("both")
    s = Stack(tmp, domain=DOMAIN, broker_extra=("--cert", cert, "--key", key, "--scheme",
                                                "https", "--public-port", "443",
                                                "--http-port", "80"))
    try:
        c = s.client("--ca", pki["ca"], s.app.port, server=f"wss://localhost:{s.broker.ws_port}",
                     nurls=2)
        assert c.urls[0].startswith(f"https://") and c.urls[0].endswith(f".{DOMAIN}/")
        assert c.urls[1] == c.urls[0].replace("https://", "http://")
    finally:
        s.close()


@pytest.fixture
def https_app(tmp, pki):
    """An https app whose certificate the system does not trust (our CA)."""
    cert, key = pki["issue"]("app")
    app = harness.App(tmp, tls=(cert, key))
    yield app
    app.stop()


def test_https_target_checked_by_default(stack, https_app):
    c = stack.client(f"https://localhost:{https_app.port}")
    code, body = stack.get(c.url + "hello")
    assert code == 502, body
    harness.wait_in_file(c.log, r"https://localhost:\d+: its certificate is not trusted for "
                            r"localhost: .* \(for a self-signed certificate give "
                            r"--local-insecure\)")
    # the tunnel still serves its next visitor once the app is fixed
    assert stack.get(stack.expose_app().url + "hello") == (200, b"hello")


def test_https_target_with_local_insecure(tmp, stack, https_app):
    import websockets
    c = stack.client("--local-insecure", f"https://localhost:{https_app.port}/ignored")
    assert stack.get(c.url + "hello") == (200, b"hello")
    upload = os.path.join(tmp, "upload")
    with open(upload, "wb") as f:
        f.write(b"y" * 300000)
    code, body = stack.get(c.url + "sink", "--data-binary", "@" + upload)
    assert code == 200 and b'"length":300000' in body
    code, body = stack.get(c.url + "bytes?n=2000000")
    assert code == 200 and len(body) == 2000000
    req = https_app.requests()[-1]
    assert req["url"] == "/bytes?n=2000000"

    async def talk():
        async with websockets.connect(f"ws://{c.host}/ws", host="127.0.0.1",
                                      port=stack.edge_port) as ws:
            await ws.send("through tls to the app")
            assert await ws.recv() == "through tls to the app"
    asyncio.run(asyncio.wait_for(talk(), 20))


def test_https_target_that_speaks_plain_http(stack):
    c = stack.client("--local-insecure", f"https://127.0.0.1:{stack.app.port}")
    code, _ = stack.get(c.url + "hello")
    assert code == 502
    harness.wait_in_file(c.log, r"https://127.0.0.1:\d+: TLS with 127.0.0.1 failed: ")
    assert stack.get(c.url + "hello")[0] == 502    # and again, cleanly
