"""Real dev servers through the tunnel, hot reload included: Vite, and
webpack-dev-server in Chromium.

Vite (tests/vite, installed from the npm registry with its default
settings: no server.allowedHosts, no hmr options) answers a request whose
Host is not localhost, *.localhost or an IP address with 403 "Blocked
request", and refuses its hot-reload websocket the same way.  The tunnel
domain here is therefore a real-looking name (tunnel.test, reached through
curl's --resolve and a websocket client connecting to 127.0.0.1), not
localhost, whose subdomains Vite lets through.  `expose --host-header=rewrite`
is what makes the default Vite work: the page, its modules, the HMR
websocket (subprotocol vite-hmr, path /?token=..., with the Origin a
browser sends) and an update pushed over it when a source file changes.

Not tested here: the rewrite of an absolute Location back to the public
host.  Vite has no endpoint that answers with an absolute localhost URL
(its only redirect, for a configured `base`, is relative), so there is
nothing real to check it against.

webpack-dev-server (tests/webpack, its defaults) writes its own address
into the page for its hot-reload websocket (ws://127.0.0.1:ITS_PORT/ws),
which bypasses the tunnel: a visitor's browser cannot reach it.  Started
with `--client-web-socket-url auto://0.0.0.0:0/ws`, the page opens the
websocket on its own origin, the public URL, and an edit reaches the page
in Chromium (tests/browser/hotreload.mjs).
"""
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import harness
from conftest import Stack

DOMAIN = "tunnel.test"
VITE_DIR = os.path.join(harness.ROOT, "tests", "vite")
VITE_JS = os.path.join(VITE_DIR, "node_modules", "vite", "bin", "vite.js")
VITE_SOURCES = ("package.json", "index.html", "main.js")
WEBPACK_DIR = os.path.join(harness.ROOT, "tests", "webpack")
WEBPACK_CLI = os.path.join(WEBPACK_DIR, "node_modules", "webpack-cli", "bin", "cli.js")
WEBPACK_SOURCES = ("package.json", "webpack.config.js", "src", "public")
# What makes webpack-dev-server's page open its websocket on the page's own
# origin (the public URL) rather than on the address it listens on.
WEBPACK_WS_FLAG = ("--client-web-socket-url", "auto://0.0.0.0:0/ws")
HOTRELOAD_JS = os.path.join(harness.ROOT, "tests", "browser", "hotreload.mjs")
WS_TIMEOUT_S = 30
# Vite says nothing when its file watcher is ready, so an edit made before
# it is may go unseen: the edit is repeated, each waited for this long.
EDIT_WAIT_S = 5
EDIT_TRIES = 6
# Chromium's start, and each step of the page.
BROWSER_STEP_S = 60


class DevServer:
    """A dev server serving a copy of a fixture directory, with the
    fixture's npm modules; ready once it answers HTTP."""

    def __init__(self, tmp, name, fixture, sources, program, argv):
        """argv: the command, given the root and the port."""
        if not os.path.exists(program):
            pytest.fail(f"{program} is missing: run `make deps` (it installs "
                        f"{os.path.relpath(fixture, harness.ROOT)}'s npm modules with npm ci)")
        self.name = name
        self.root = os.path.join(tmp, f"{name}-root")
        os.mkdir(self.root)
        for source in sources:
            copy = shutil.copytree if os.path.isdir(os.path.join(fixture, source)) else shutil.copy
            copy(os.path.join(fixture, source), os.path.join(self.root, source))
        os.symlink(os.path.join(fixture, "node_modules"), os.path.join(self.root, "node_modules"))
        self.port = harness.free_port()
        self.log = os.path.join(tmp, f"{name}.log")
        self.logf = open(self.log, "ab")
        env = dict(os.environ, NO_COLOR="1")
        self.proc = harness.spawn(argv(self.root, self.port), cwd=self.root, env=env,
                                  stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT)
        harness.wait_for(self.answers, what=f"{name} on port {self.port}")

    def answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def edit(self, name, text):
        with open(os.path.join(self.root, name), "w") as f:
            f.write(text)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


class Vite(DevServer):
    """`vite` serving a copy of tests/vite."""

    def __init__(self, tmp):
        super().__init__(tmp, "vite", VITE_DIR, VITE_SOURCES, VITE_JS, lambda root, port: [
            "node", VITE_JS, root, "--host", "127.0.0.1", "--port", str(port), "--strictPort"])


class Webpack(DevServer):
    """`webpack serve` (webpack-dev-server) on a copy of tests/webpack."""

    def __init__(self, tmp, *flags, name="webpack"):
        super().__init__(tmp, name, WEBPACK_DIR, WEBPACK_SOURCES, WEBPACK_CLI, lambda root, port: [
            "node", WEBPACK_CLI, "serve", "--config", os.path.join(root, "webpack.config.js"),
            "--host", "127.0.0.1", "--port", str(port), *flags])


@pytest.fixture
def stack(tmp):
    s = Stack(tmp, domain=DOMAIN)
    yield s
    s.close()


@pytest.fixture
def vite(tmp):
    v = Vite(tmp)
    yield v
    v.stop()


def get(client, path, *args):
    """curl through the edge as a visitor of the public URL: (status,
    headers {lower name: value}, body)."""
    head = os.path.join(os.path.dirname(client.log), f"head-{time.monotonic_ns()}")
    code, body = harness.curl("--resolve", f"{client.host}:127.0.0.1", "-D", head, *args,
                              client.url + path.lstrip("/"))
    headers = {}
    with open(head, errors="replace", newline="") as f:
        for line in f.read().split("\r\n\r\n")[-2].split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return code, headers, body


def origin(client):
    """The public URL's origin, as a browser on the page sends it."""
    return client.url.rstrip("/")


def as_page(client, dest):
    """The headers a browser sends loading the page (dest "document") or a
    module script from it (dest "script"; no Origin: a same-origin GET
    carries none)."""
    if dest == "document":
        return ["-H", "Sec-Fetch-Dest: document", "-H", "Sec-Fetch-Mode: navigate",
                "-H", "Sec-Fetch-Site: none", "-H", "Accept: text/html,*/*;q=0.8"]
    return ["-H", f"Referer: {client.url}", "-H", f"Sec-Fetch-Dest: {dest}",
            "-H", "Sec-Fetch-Mode: cors", "-H", "Sec-Fetch-Site: same-origin"]


def hmr_uri(client, token):
    """What Vite's client opens: ws://<the page's host>/?token=<token>."""
    return f"ws://{client.host}/?token={token}"


def ws_token(client):
    """The token Vite puts in /@vite/client for its websocket."""
    code, _, body = get(client, "/@vite/client", *as_page(client, "script"))
    assert code == 200, body[:500]
    src = body.decode()
    # new WebSocket(`${socketProtocol}://${socketHost}?token=${wsToken}`, "vite-hmr")
    assert re.search(r"\?token=\$\{wsToken\}`,\s*\"vite-hmr\"", src), \
        "Vite's client no longer opens /?token=... with subprotocol vite-hmr"
    return re.search(r'const wsToken = "([^"]+)"', src).group(1)


def test_vite_blocks_the_public_host_without_rewrite(stack, vite):
    import websockets

    c = stack.client(vite.port)
    code, headers, body = get(c, "/", *as_page(c, "document"))
    hostname = c.host.rsplit(":", 1)[0]
    assert code == 403, body[:500]
    assert body.startswith(f'Blocked request. This host ("{hostname}") is not allowed.'.encode())

    # The HMR websocket is refused too.  Without Origin Vite asks no token,
    # so the one thing wrong is Host: the same request with the flag is let in.
    async def hmr(client):
        try:
            async with websockets.connect(hmr_uri(client, "none"), host="127.0.0.1",
                                          port=stack.edge_port, subprotocols=["vite-hmr"],
                                          open_timeout=WS_TIMEOUT_S) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), WS_TIMEOUT_S))
        except websockets.InvalidStatusCode as e:
            return e.status_code
    assert asyncio.run(asyncio.wait_for(hmr(c), 2 * WS_TIMEOUT_S)) == 400
    rewritten = stack.client("--host-header=rewrite", vite.port)
    assert asyncio.run(asyncio.wait_for(hmr(rewritten), 2 * WS_TIMEOUT_S)) == {"type": "connected"}


def test_vite_page_and_modules_through_rewrite(stack, vite):
    c = stack.client("--host-header=rewrite", vite.port)
    code, headers, body = get(c, "/", *as_page(c, "document"))
    assert code == 200, body[:500]
    assert headers["content-type"].startswith("text/html")
    assert b'<script type="module" src="/@vite/client"></script>' in body
    assert b'<script type="module" src="/main.js"></script>' in body

    code, headers, body = get(c, "/@vite/client", *as_page(c, "script"))
    assert code == 200, body[:500]
    assert headers["content-type"].startswith("text/javascript")
    assert b"vite-hmr" in body

    code, headers, body = get(c, "/main.js", *as_page(c, "script"))
    assert code == 200, body[:500]
    assert headers["content-type"].startswith("text/javascript")
    assert b"Hello from Vite through expose" in body
    assert b"import.meta.hot" in body

    # The flag form with a space works the same.
    c2 = stack.client("--host-header", "rewrite", vite.port)
    assert get(c2, "/", *as_page(c2, "document"))[0] == 200


def test_vite_hot_reload_websocket_through_rewrite(stack, vite):
    import websockets

    c = stack.client("--host-header=rewrite", vite.port)
    assert get(c, "/", *as_page(c, "document"))[0] == 200
    token = ws_token(c)
    # main.js is in Vite's module graph once the page has asked for it.
    code, _, body = get(c, "/main.js", *as_page(c, "script"))
    assert code == 200, body[:500]
    with open(os.path.join(VITE_DIR, "main.js")) as f:
        main_js = f.read()
    seen = []

    async def hot_reload():
        async with websockets.connect(hmr_uri(c, token), host="127.0.0.1",
                                      port=stack.edge_port, subprotocols=["vite-hmr"],
                                      origin=origin(c), open_timeout=WS_TIMEOUT_S) as ws:
            assert ws.subprotocol == "vite-hmr"
            first = json.loads(await asyncio.wait_for(ws.recv(), WS_TIMEOUT_S))
            assert first == {"type": "connected"}
            for n in range(EDIT_TRIES):
                vite.edit("main.js", main_js.replace("Hello from Vite through expose",
                                                     f"Hot reloaded through expose {n}"))
                try:
                    while True:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), EDIT_WAIT_S))
                        seen.append(msg)
                        if msg.get("type") in ("update", "full-reload"):
                            return msg
                except asyncio.TimeoutError:
                    continue
            raise AssertionError(f"no update over the websocket; got {seen}\n{vite.text()}")

    msg = asyncio.run(asyncio.wait_for(hot_reload(), WS_TIMEOUT_S + EDIT_WAIT_S * EDIT_TRIES))
    # main.js accepts itself (import.meta.hot.accept()): a js-update for it.
    assert msg["type"] == "update", msg
    assert [(u["type"], u["path"], u["acceptedPath"]) for u in msg["updates"]] == \
        [("js-update", "/main.js", "/main.js")], msg
    # What the browser then fetches has the new text.
    update = msg["updates"][0]
    code, _, body = get(c, f"/main.js?t={update['timestamp']}", *as_page(c, "script"))
    assert code == 200 and b"Hot reloaded through expose" in body, body[:500]


@pytest.fixture
def webpack(tmp):
    w = Webpack(tmp, *WEBPACK_WS_FLAG)
    yield w
    w.stop()


def test_webpack_page_names_its_own_address_unless_told(stack, tmp, webpack):
    """Without the flag the page's hot-reload socket would go to the dev
    server's own address, past the tunnel; with it, to the page's origin."""
    plain = Webpack(tmp, name="webpack-plain")
    try:
        c = stack.client("--host-header=rewrite", plain.port)
        code, _, body = get(c, "/main.js", *as_page(c, "script"))
        assert code == 200, body[:500]
        assert f"protocol=ws%3A&hostname=127.0.0.1&port={plain.port}&pathname=%2Fws".encode() \
            in body
    finally:
        plain.stop()
    c = stack.client("--host-header=rewrite", webpack.port)
    code, _, body = get(c, "/main.js", *as_page(c, "script"))
    assert code == 200, body[:500]
    assert b"protocol=auto%3A&username=&password=&hostname=0.0.0.0&port=0&pathname=%2Fws" in body


def test_webpack_hot_reload_reaches_the_page_in_chromium(stack, tmp, webpack):
    c = stack.client("--host-header=rewrite", webpack.port)
    with open(os.path.join(WEBPACK_DIR, "src", "index.js")) as f:
        source = f.read()
    log_path = os.path.join(tmp, "hotreload.log")
    browser_log = open(log_path, "ab")
    browser = harness.spawn(["node", HOTRELOAD_JS, c.url, "Hot reloaded through expose"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=browser_log,
                            cwd=os.path.dirname(HOTRELOAD_JS))
    try:
        _hot_reload_in_browser(browser, webpack, source, c)
    except (AssertionError, TimeoutError, EOFError) as e:
        browser_log.flush()
        with open(log_path, errors="replace") as f:
            raise AssertionError(f"{e}\nhotreload.mjs said:\n{f.read()[-4000:]}") from e
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait()
        browser_log.close()
    # The socket crossed the tunnel: the client logs it once it closed.
    wanted = re.compile(r"GET    /ws 101 \S+ req \d+B resp \S+, upgraded connection closed\n")
    harness.wait_for(lambda: wanted.search(c.text()), what="the hot-reload websocket's line")


def _hot_reload_in_browser(browser, webpack, source, c):
    """Reads hotreload.mjs's lines while editing the page's source."""
    sockets = []
    while True:
        line = harness.read_line(browser.stdout, BROWSER_STEP_S)
        if line.startswith("ready "):
            break
        assert line.startswith("websocket "), line
        sockets.append(line.split(" ", 1)[1])
    assert line == "ready Hello from webpack through expose"
    # Through the tunnel: the public host and port, not the dev server's.
    assert sockets == [f"ws://{c.host}/ws"]
    for n in range(EDIT_TRIES):
        webpack.edit("src/index.js", source.replace("Hello from webpack through expose",
                                                    f"Hot reloaded through expose {n}"))
        try:
            line = harness.read_line(browser.stdout, EDIT_WAIT_S)
            break
        except TimeoutError:
            continue
    assert re.fullmatch(r"updated Hot reloaded through expose \d", line), line
    assert browser.wait(harness.scaled(BROWSER_STEP_S)) == 0
