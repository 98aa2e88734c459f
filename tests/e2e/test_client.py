"""The client a developer looks at all day: several tunnels, other kinds
of targets, what the terminal shows, scripts' JSON, dev-server rewrites."""
import json
import os
import re
import signal
import subprocess

import harness


def test_several_tunnels_over_one_connection(stack):
    c = stack.client("--name", "web", stack.app.port, "--name", "backend",
                     f"http://127.0.0.1:{stack.app.port}", nurls=2)
    assert c.urls == [f"http://web.localhost:{stack.edge_port}/",
                      f"http://backend.localhost:{stack.edge_port}/"]
    for url in c.urls:
        assert stack.get(url + "hello") == (200, b"hello")
    assert len(stack.broker.rows()) == 2


def test_unix_socket_target(stack, tmp):
    path = os.path.join(tmp, "app.sock")
    app = harness.Process(["node", harness.APP_JS, path], os.path.join(tmp, "unixapp.log"),
                          stdout=subprocess.PIPE)
    try:
        assert harness.read_line(app.proc.stdout) == f"listening {path}"
        c = stack.client(f"unix:{path}")
        assert stack.get(c.url + "hello") == (200, b"hello")
        assert f"-> unix:{path}" in c.text()
    finally:
        app.stop()


def test_bad_target_one_line(stack):
    c = stack.client("ftp://x", wait_url=False)
    assert c.proc.exit_status(10) == 64
    assert "'ftp://x': not a target (give PORT, HOST:PORT, http://HOST:PORT, " \
        "https://HOST:PORT or unix:/PATH" in c.text()


def test_terminal_lines(stack):
    c = stack.expose_app()
    stack.get(c.url + "status/404")
    harness.wait_in_file(c.log, r"\d\d:\d\d:\d\d GET    /status/404 404 \d+ms req 0B resp 10B\n")
    text = c.text()
    assert re.search(rf"expose  {re.escape(c.url)} -> localhost:{stack.app.port}\n", text)
    assert re.search(r"expose  server ws://127\.0\.0\.1:\d+, key [0-9a-f]{16}, handshake \d+ ms",
                     text)
    assert "\033[" not in text        # no colour when stderr is not a terminal


def test_quiet_prints_urls_only(stack):
    c = stack.expose_app("-q")
    assert stack.get(c.url + "hello") == (200, b"hello")
    c.stop()
    assert c.text() == ""


def test_json_events_for_scripts(stack):
    c = stack.expose_app("--json", wait_url=False)
    event = json.loads(c.next_line())
    assert event["event"] == "url" and event["target"] == f"localhost:{stack.app.port}"
    assert stack.get(event["url"] + "status/201")[0] == 201
    req = json.loads(c.next_line())
    assert (req["event"], req["method"], req["path"], req["status"]) == \
        ("request", "GET", "/status/201", 201)
    assert req["url"] == event["url"] and req["ms"] >= 0


def test_json_says_when_the_link_is_lost_and_back(stack):
    """A script holding the URL learns that it answers 503 for now, and
    that it is the same URL again once the broker is back."""
    c = stack.expose_app("--json", "--name", "scripted", wait_url=False)
    url = json.loads(c.next_line())["url"]
    stack.broker.kill()
    lost = json.loads(c.next_line())
    assert lost["event"] == "disconnected" and lost["server"] == stack.broker.server
    assert lost["reason"]
    stack.broker.start()
    back = json.loads(c.next_line())
    assert back == {"event": "reconnected", "url": url, "target": f"localhost:{stack.app.port}",
                    "server": stack.broker.server}
    assert stack.get(url + "hello") == (200, b"hello")


def test_qr_code(stack):
    c = stack.expose_app("--qr")
    harness.wait_in_file(c.log, "\u2588{10}")


def test_ctrl_c_twice_exits(stack):
    c = stack.expose_app()
    c.proc.send(signal.SIGINT)
    c.proc.send(signal.SIGINT)
    assert c.proc.exit_status(10) in (0, 130)


def test_host_header_rewrite_for_dev_servers(stack):
    c = stack.expose_app("--host-header=rewrite")
    stack.app.reset()
    assert stack.get(c.url + "hello") == (200, b"hello")
    h = stack.app.requests()[0]["headers"]
    fields = dict(zip([k.lower() for k in h[::2]], h[1::2]))
    assert fields["host"] == f"localhost:{stack.app.port}"
    assert fields["x-forwarded-host"] == c.host
    out = stack.raw(f"GET /redirect-local HTTP/1.1\r\nHost: {c.host}\r\nConnection: close\r\n\r\n"
                    .encode())
    assert f"Location: {c.url}hello\r\n".encode() in out
    assert b"Set-Cookie: sid=1; Path=/\r\n" in out


def test_without_rewrite_the_app_sees_the_public_host(stack):
    c = stack.expose_app()
    out = stack.raw(f"GET /redirect-local HTTP/1.1\r\nHost: {c.host}\r\nConnection: close\r\n\r\n"
                    .encode())
    assert f"Location: http://localhost:{stack.app.port}/hello\r\n".encode() in out


def test_config_file_defaults_and_flags_win(tmp, stack):
    conf = os.path.join(tmp, "client.conf")
    with open(conf, "w") as f:
        f.write("# a developer's defaults\nhost-header = rewrite\nlocal-insecure = yes\n")
    c = stack.expose_app("-f", conf)
    stack.app.reset()
    assert stack.get(c.url + "hello") == (200, b"hello")
    assert dict_of(stack.app.requests()[0]["headers"])["host"] == f"localhost:{stack.app.port}"
    c = stack.expose_app("-f", conf, "--host-header", "keep")
    stack.app.reset()
    assert stack.get(c.url + "hello") == (200, b"hello")
    assert dict_of(stack.app.requests()[0]["headers"])["host"] == c.host
    with open(conf, "w") as f:
        f.write("host-header = always\n")
    bad = stack.expose_app("-f", conf, wait_url=False)
    assert bad.proc.exit_status(10) == 78    # EX_CONFIG
    assert f"{conf}:1: host-header = always: give rewrite or keep" in bad.text()


def dict_of(raw):
    return dict(zip([k.lower() for k in raw[::2]], raw[1::2]))


def test_bad_host_header_value(stack):
    c = stack.expose_app("--host-header=sometimes", wait_url=False)
    assert c.proc.exit_status(10) == 64
    assert "--host-header sometimes: give rewrite" in c.text()


def start_app(tmp, where, name):
    """The test app on a given port (or unix: path), once it listens."""
    app = harness.Process(["node", harness.APP_JS, str(where)], os.path.join(tmp, name),
                          stdout=subprocess.PIPE)
    assert harness.read_line(app.proc.stdout) == f"listening {where}"
    return app


def test_app_up_line_once_it_answers(stack, tmp):
    """Started before the app: a warning, then one line when the app
    answers (no visitor needed), and the tunnel serves it."""
    port = harness.free_port()
    path = os.path.join(tmp, "late.sock")
    c = stack.client(port, f"unix:{path}", nurls=2)
    for label in (f"localhost:{port}", f"unix:{path}"):
        assert f"nothing is listening on {label} yet" in c.text()
        assert f"{label} answers now" not in c.text()
    apps = [start_app(tmp, port, "late.log"), start_app(tmp, path, "late-unix.log")]
    try:
        for label, url in zip((f"localhost:{port}", f"unix:{path}"), c.urls):
            harness.wait_in_file(c.log, rf"{re.escape(label)} answers now: requests reach it\n")
            assert stack.get(url + "hello") == (200, b"hello")
        # The app goes away and comes back: warned, then up again.
        apps[0].stop()
        assert stack.get(c.urls[0] + "hello")[0] == 502
        apps[0] = start_app(tmp, port, "late2.log")
        harness.wait_for(lambda: c.text().count(f"localhost:{port} answers now") == 2,
                         what="a second up line")
        assert stack.get(c.urls[0] + "hello") == (200, b"hello")
    finally:
        for app in apps:
            app.stop()
    assert c.text().count(f"unix:{path} answers now") == 1


def test_no_up_line_when_the_app_was_up(stack):
    c = stack.expose_app()
    assert stack.get(c.url + "hello") == (200, b"hello")
    c.stop()
    assert "answers now" not in c.text() and "nothing is listening" not in c.text()
