"""The inspector (expose --inspect): its API against the real stack, then
its page in a real browser (Debian's chromium driven by playwright-core,
tests/browser/inspector.mjs)."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

import harness

BROWSER_DIR = os.path.join(harness.ROOT, "tests", "browser")
BROWSER_SCRIPT = os.path.join(BROWSER_DIR, "inspector.mjs")
CHROMIUM = "/usr/bin/chromium"
ARTIFACT = os.path.join(harness.ROOT, "tests", "artifacts", "inspector.png")
SCREENSHOT_MAX_BYTES = 400 * 1024
BROWSER_TIMEOUT_S = 180
# What the inspector keeps of each body (INSPECT_BODY_BYTES in cmd/expose/client.h).
BODY_KEEP = 64 * 1024

# The inspector is on loopback: never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Inspector:
    """A client forwarding to the app, with its inspector on a free port."""

    def __init__(self, stack):
        self.port = harness.free_port()
        self.client = stack.expose_app(f"--inspect=127.0.0.1:{self.port}")
        self.base = f"http://127.0.0.1:{self.port}"
        # The address with the run's token, as the client prints it.
        m = harness.wait_in_file(
            self.client.log, rf"inspector (http://127\.0\.0\.1:{self.port}/\?token=([0-9a-f]+))")
        self.page, self.token = m.group(1), m.group(2)

    def call(self, method, path, body=None, content_type=None, headers=None):
        """(status, parsed JSON) of an API call; errors are answers too."""
        req = urllib.request.Request(self.base + path, data=body, method=method)
        # The run's token unless the caller says otherwise (None: no header).
        headers = {"X-Expose-Token": self.token, **(headers or {})}
        if content_type:
            req.add_header("Content-Type", content_type)
        for k, v in headers.items():
            if v is not None:
                req.add_header(k, v)
        try:
            with _opener.open(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def requests(self):
        status, body = self.call("GET", "/api/requests")
        assert status == 200, body
        return body["requests"]

    def detail(self, id_):
        status, body = self.call("GET", f"/api/requests/{id_}")
        assert status == 200, body
        return body

    def wait_entry(self, what, **fields):
        """The newest summary whose fields have these values, once there."""
        def found():
            hits = [s for s in self.requests()
                    if all(s.get(k) == v for k, v in fields.items())]
            return hits[-1] if hits else None
        return harness.wait_for(found, what=f"{what} in /api/requests")

    def replay(self, id_, edits=None):
        body = b"" if edits is None else json.dumps(edits).encode()
        return self.call("POST", f"/api/requests/{id_}/replay", body,
                         "application/json" if edits is not None else None)


class Events:
    """GET /api/events, read as a browser's EventSource would."""

    def __init__(self, port, token, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(f"GET /api/events?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n").decode()
        assert head.startswith("HTTP/1.1 200"), head
        assert "content-type: text/event-stream" in head.lower(), head

    def _until(self, sep):
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"the event stream closed (have {self.buf!r})")
            self.buf += chunk
        out, _, self.buf = self.buf.partition(sep)
        return out

    def next(self):
        """The next event's data as JSON; comments are skipped."""
        while True:
            block = self._until(b"\n\n").decode()
            data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
            if data:
                return json.loads("\n".join(data))

    def close(self):
        self.sock.close()


def b64(data):
    return base64.b64encode(data).decode()


def through(stack, client, path, *curl_args):
    """A request through the tunnel (curl reaches *.localhost on loopback)."""
    return stack.get(client.url + path.lstrip("/"), *curl_args)


# --- the API, without a browser ---

def test_page_and_empty_list(stack):
    ins = Inspector(stack)
    assert ins.requests() == []
    with _opener.open(ins.base + "/", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        page = r.read().decode("ascii")    # html2c needs the page ASCII
    for hook in ('data-testid="request-list"', "EventSource('/api/events?token=", "/api/requests/"):
        assert hook in page
    assert "innerHTML" not in page
    status, body = ins.call("GET", "/api/nothing-here")
    assert status == 404 and body["error"]


def test_only_its_own_pages_may_use_it(stack):
    """Another site's page (a form post, or a DNS-rebinding name for
    127.0.0.1) must not read captured requests nor replay them."""
    ins = Inspector(stack)
    assert through(stack, ins.client, "/hello") == (200, b"hello")
    id_ = ins.wait_entry("GET /hello", path="/hello")["id"]
    own = {"Origin": f"http://localhost:{ins.port}", "Host": f"localhost:{ins.port}"}
    assert ins.call("GET", f"/api/requests/{id_}", headers=own)[0] == 200
    refusals = [
        {"Host": f"rebound.example:{ins.port}"},
        {"Host": "127.0.0.1:1"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ]
    for headers in refusals:
        status, body = ins.call("POST", f"/api/requests/{id_}/replay", body=b"",
                                content_type="text/plain", headers=headers)
        assert status == 403, headers
        assert body["error"] == ("the inspector answers only its own pages: open it at "
                                 f"http://127.0.0.1:{ins.port}/ or http://localhost:{ins.port}/")
        assert ins.call("GET", f"/api/requests/{id_}", headers=headers)[0] == 403
    assert [r["url"] for r in stack.app.requests()].count("/hello") == 1    # no replay


def test_the_api_needs_the_runs_token(stack):
    """Other local users, and pages that guessed the port, get nothing
    without the token the client printed; a POST must carry it in the
    header (a form or a no-cors fetch cannot)."""
    ins = Inspector(stack)
    assert through(stack, ins.client, "/hello") == (200, b"hello")
    id_ = ins.wait_entry("GET /hello", path="/hello")["id"]
    needs = ("the inspector needs its token: open the address expose printed "
             f"(http://127.0.0.1:{ins.port}/?token=...)")
    for token in (None, "", "0" * 32, ins.token[:-1], ins.token + "0", ins.token.upper()):
        for method, path in (("GET", "/api/requests"), ("GET", f"/api/requests/{id_}"),
                             ("POST", f"/api/requests/{id_}/replay")):
            status, body = ins.call(method, path, b"" if method == "POST" else None,
                                    headers={"X-Expose-Token": token})
            assert (status, body) == (403, {"error": needs}), (token, method, path)
    # in the query: the event stream's way, never a POST's
    assert ins.call("GET", f"/api/requests?token={ins.token}",
                    headers={"X-Expose-Token": None})[0] == 200
    status, _ = ins.call("POST", f"/api/requests/{id_}/replay?token={ins.token}", b"",
                         headers={"X-Expose-Token": None})
    assert status == 403
    assert [r["url"] for r in stack.app.requests()].count("/hello") == 1    # no replay
    # every answer forbids framing and sniffing; the page allows its script only
    with _opener.open(ins.base + "/", timeout=10) as r:
        fields = r.headers
    assert fields["X-Frame-Options"] == "DENY"
    assert fields["X-Content-Type-Options"] == "nosniff"
    csp = fields["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]{44}';", csp), csp
    try:
        _opener.open(urllib.request.Request(ins.base + "/api/requests"), timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 403 and e.headers["X-Frame-Options"] == "DENY"


def test_a_request_is_listed_with_heads_and_bodies(stack):
    ins = Inspector(stack)
    payload = b"payload for the inspector \x00\xff binary too"
    body_file = os.path.join(stack.tmp, "payload.bin")
    with open(body_file, "wb") as f:
        f.write(payload)
    code, answer = through(stack, ins.client, "/echo?x=1", "--data-binary", f"@{body_file}",
                           "-H", "Content-Type: application/octet-stream",
                           "-H", "X-Probe: inspector")
    assert code == 200
    s = ins.wait_entry("POST /echo?x=1", path="/echo?x=1")
    assert s["method"] == "POST" and s["status"] == 200
    assert s["request_bytes"] == len(payload)
    assert s["response_bytes"] == len(answer)
    assert s["tunnel"] == ins.client.url
    assert s["upgraded"] is False and "replay_of" not in s
    assert s["time"].endswith("Z") and s["duration_ms"] >= 0

    x = ins.detail(s["id"])
    head = x["request"]["head"]
    assert head.startswith("POST /echo?x=1 HTTP/1.1\r\n"), head
    assert "\r\nX-Probe: inspector\r\n" in head and head.endswith("\r\n\r\n")
    assert base64.b64decode(x["request"]["body_base64"]) == payload
    assert x["request"]["body_size"] == len(payload) and x["request"]["body_truncated"] is False
    assert x["response"]["head"].startswith("HTTP/1.1 200 OK\r\n")
    echo = json.loads(base64.b64decode(x["response"]["body_base64"]))
    assert echo["url"] == "/echo?x=1"
    assert echo["sha256"] == hashlib.sha256(payload).hexdigest()
    assert json.loads(answer) == echo


def test_large_bodies_are_cut_and_not_replayed_as_is(stack):
    ins = Inspector(stack)
    code, _ = through(stack, ins.client, "/bytes?n=200000")
    assert code == 200
    s = ins.wait_entry("GET /bytes", path="/bytes?n=200000")
    x = ins.detail(s["id"])
    assert x["response"]["body_size"] == 200000 and x["response"]["body_truncated"] is True
    assert len(base64.b64decode(x["response"]["body_base64"])) == BODY_KEEP

    big = os.path.join(stack.tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(b"x" * (BODY_KEEP + 1000))
    code, _ = through(stack, ins.client, "/sink", "--data-binary", f"@{big}")
    assert code == 200
    s = ins.wait_entry("POST /sink", path="/sink")
    assert ins.detail(s["id"])["request"]["body_truncated"] is True
    status, body = ins.replay(s["id"])
    assert status == 400 and "larger than the inspector keeps" in body["error"]


def test_replay_sends_the_request_to_the_app_again(stack):
    ins = Inspector(stack)
    stack.app.reset()
    code, first = through(stack, ins.client, "/echo?again=1", "--data-binary", "same body",
                          "-H", "X-Replay-Probe: 1")
    assert code == 200
    s = ins.wait_entry("POST /echo?again=1", path="/echo?again=1")
    assert len(stack.app.requests()) == 1

    status, body = ins.replay(s["id"])
    assert status == 202 and body == {"replay_of": s["id"]}
    got = harness.wait_for(lambda: len(stack.app.requests()) == 2 and stack.app.requests(),
                           what="the app to get the replay")
    again = got[1]
    assert again["method"] == "POST" and again["url"] == "/echo?again=1"
    assert "X-Replay-Probe" in again["headers"]

    r = ins.wait_entry("the replay", replay_of=s["id"])
    assert r["id"] > s["id"] and r["path"] == "/echo?again=1" and r["status"] == 200
    echo = json.loads(base64.b64decode(ins.detail(r["id"])["response"]["body_base64"]))
    assert echo["sha256"] == json.loads(first)["sha256"]    # the same body went again
    # a replay can be replayed
    status, _ = ins.replay(r["id"])
    assert status == 202
    ins.wait_entry("the replay of the replay", replay_of=r["id"])


def test_edit_and_replay_changes_the_request(stack):
    ins = Inspector(stack)
    stack.app.reset()
    code, _ = through(stack, ins.client, "/echo?before=1")
    assert code == 200
    s = ins.wait_entry("GET /echo?before=1", path="/echo?before=1")
    new_body = "edited body, \u00e9t\u00e9".encode()
    status, body = ins.replay(s["id"], {
        "method": "PUT", "path": "/echo?after=1",
        "headers": [["Host", "localhost"], ["X-Edited", "yes"],
                    ["Content-Type", "text/plain; charset=utf-8"],
                    ["Content-Length", "999"]],    # set by expose, whatever this says
        "body_base64": b64(new_body)})
    assert status == 202, body
    got = harness.wait_for(lambda: len(stack.app.requests()) == 2 and stack.app.requests(),
                           what="the app to get the edited replay")
    edited = got[1]
    assert edited["method"] == "PUT" and edited["url"] == "/echo?after=1"
    fields = dict(zip(edited["headers"][::2], edited["headers"][1::2]))
    assert fields["X-Edited"] == "yes" and fields["Content-Length"] == str(len(new_body))
    assert "X-Forwarded-For" not in fields    # the headers are the edited list, whole

    r = ins.wait_entry("the edited replay", replay_of=s["id"])
    assert r["method"] == "PUT" and r["path"] == "/echo?after=1"
    x = ins.detail(r["id"])
    assert base64.b64decode(x["request"]["body_base64"]) == new_body
    echo = json.loads(base64.b64decode(x["response"]["body_base64"]))
    assert echo["length"] == len(new_body)

    # only the path: the captured headers and body go with it
    status, _ = ins.replay(s["id"], {"path": "/echo?only-path=1"})
    assert status == 202
    r = ins.wait_entry("the path-only replay", path="/echo?only-path=1")
    assert r["method"] == "GET" and r["replay_of"] == s["id"]


def test_events_arrive_as_requests_happen(stack):
    ins = Inspector(stack)
    events = Events(ins.port, ins.token)
    try:
        assert through(stack, ins.client, "/hello")[0] == 200
        e = events.next()
        assert (e["method"], e["path"], e["status"]) == ("GET", "/hello", 200)
        assert e["tunnel"] == ins.client.url
        assert through(stack, ins.client, "/status/404")[0] == 404
        e2 = events.next()
        assert (e2["path"], e2["status"]) == ("/status/404", 404) and e2["id"] > e["id"]
        assert ins.replay(e["id"])[0] == 202
        e3 = events.next()
        assert e3["replay_of"] == e["id"] and e3["path"] == "/hello" and e3["id"] > e2["id"]
        # the list holds what the events told, in order
        assert [s["id"] for s in ins.requests()] == [e["id"], e2["id"], e3["id"]]
    finally:
        events.close()


def test_api_errors(stack):
    ins = Inspector(stack)
    assert through(stack, ins.client, "/hello")[0] == 200
    s = ins.wait_entry("GET /hello", path="/hello")
    id_ = s["id"]

    for path in ("/api/requests/999999", "/api/requests/0"):
        status, body = ins.call("GET", path)
        assert status == 404 and "no such request" in body["error"], (path, body)
    status, body = ins.replay(999999)
    assert status == 404 and "no such request" in body["error"]

    bad = [
        (b"this is not json", "not JSON"),
        (json.dumps({"path": "no-slash"}).encode(), "path"),
        (json.dumps({"method": "GE T"}).encode(), "method"),
        (json.dumps({"path": "/a\r\nX-Injected: 1"}).encode(), "path"),
        (json.dumps({"headers": [["X-Bad", "a\r\nX-Injected: 1"]]}).encode(), "headers"),
        (json.dumps({"headers": [["X-Only-Name"]]}).encode(), "headers"),
        (json.dumps({"body_base64": "!!!not base64!!!"}).encode(), "base64"),
        # bounded: a path past the edge's own limit, a method past any
        # method, a field name that is no token, too many fields, a key
        # that is no edit, a body too large for the replay's buffer
        (json.dumps({"path": "/" + "a" * (harness.URI_MAX_BYTES + 1)}).encode(), "path"),
        (json.dumps({"method": "M" * 64}).encode(), "method"),
        (json.dumps({"headers": [["X Bad", "v"]]}).encode(), "headers"),
        (json.dumps({"headers": [["X-A", "v"]] * 101}).encode(), "headers"),
        (json.dumps({"headers": [["X-A", "\x1b[31mred"]]}).encode(), "headers"),
        (json.dumps({"paht": "/typo"}).encode(), "the edits must be"),
        (json.dumps({"body_base64": b64(b"x" * (BODY_KEEP * 2))}).encode(), "too large"),
    ]
    stack.app.reset()
    for edits, word in bad:
        status, body = ins.call("POST", f"/api/requests/{id_}/replay", edits, "application/json")
        assert status == 400, (edits, body)
        assert word in body["error"], (edits, body)
    assert stack.app.requests() == []    # none of them reached the app
    assert [r["id"] for r in ins.requests()] == [id_]


# --- the page, in a browser ---

def test_page_in_a_browser(stack):
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        missing.append("tests/browser/node_modules/playwright-core (npm ci --prefix tests/browser)")
    if not shutil.which("node"):
        missing.append("node (Debian package nodejs)")
    if missing:
        pytest.fail("the browser test needs " + " and ".join(missing) + ": run `make deps`",
                    pytrace=False)

    ins = Inspector(stack)
    os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
    if os.path.exists(ARTIFACT):
        os.unlink(ARTIFACT)
    stack.app.reset()
    out = subprocess.run(["node", BROWSER_SCRIPT, ins.page, ins.client.url, ARTIFACT],
                         capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S,
                         cwd=BROWSER_DIR)
    assert out.returncode == 0, f"inspector.mjs exited {out.returncode}:\n{out.stdout}{out.stderr}"
    assert "inspector.mjs: ok" in out.stdout, out.stdout + out.stderr

    with open(ARTIFACT, "rb") as f:
        png = f.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG"
    assert 2000 < len(png) <= SCREENSHOT_MAX_BYTES, f"the screenshot is {len(png)} bytes"

    # what the page did reached the app: the request, its replay and the edited one
    urls = [r["url"] for r in stack.app.requests()]
    followed = [u for u in urls if u.startswith("/echo?from=browser")]
    assert len(followed) == 2, urls
    assert any(u.startswith("/echo?edited=") for u in urls), urls


def test_another_origin_cannot_replay_read_or_frame_it(stack):
    """In a real browser: a hostile page on another loopback origin posts
    replays (a form, a no-cors fetch, a preflighted fetch), reads the list,
    frames the inspector even with its token; a page on a rebinding name
    reads with the token.  Nothing is replayed, read or framed."""
    ins = Inspector(stack)
    assert through(stack, ins.client, "/hello") == (200, b"hello")
    id_ = ins.wait_entry("GET /hello", path="/hello")["id"]
    stack.app.reset()
    out = subprocess.run(["node", os.path.join(BROWSER_DIR, "cross_origin.mjs"), ins.page,
                          str(id_), str(harness.free_port())],
                         capture_output=True, text=True, timeout=harness.scaled(BROWSER_TIMEOUT_S),
                         cwd=BROWSER_DIR)
    assert out.returncode == 0, f"cross_origin.mjs exited {out.returncode}:\n{out.stdout}{out.stderr}"
    assert "cross_origin.mjs: ok" in out.stdout, out.stdout + out.stderr
    got = json.loads(out.stdout.splitlines()[0])
    assert got["formPost"] == "submitted"    # it did reach the inspector
    assert stack.app.requests() == []        # and replayed nothing
    assert [s["id"] for s in ins.requests()] == [id_]
