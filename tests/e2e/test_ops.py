"""Running it as a service: units, install, config errors, metrics, logs,
readiness and the watchdog, socket activation of the broker."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import harness
from conftest import Stack

ROOT = harness.ROOT
UNITS = ["expose.socket", "expose@.service", "expose-tls.socket", "expose-tls@.service",
         "expose-tickets.service", "expose-tickets.timer", "exposed.socket",
         "exposed-control.socket", "exposed.service", "expose-mirror.service"]


def make(*args, env=None):
    return subprocess.run(["make", "-s", "-C", ROOT, *args], capture_output=True, text=True,
                          env=env, timeout=300)


# --- units and install ---

def test_units_verify_and_score(tmp):
    prefix = os.path.join(tmp, "usr")
    out = make("install", f"PREFIX={prefix}")
    assert out.returncode == 0, out.stderr
    unitdir = os.path.join(prefix, "lib/systemd/system")
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    verify = subprocess.run(["systemd-analyze", "verify", *UNITS], cwd=unitdir,
                            capture_output=True, text=True, env=env)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    for service in ("expose@.service", "expose-tls@.service", "exposed.service",
                    "expose-tickets.service", "expose-mirror.service"):
        out = subprocess.run(["systemd-analyze", "security", "--offline=true", service],
                             cwd=unitdir, capture_output=True, text=True)
        score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout).group(1))
        print(f"systemd-analyze security {service}: {score}")
        assert score <= 2.0, out.stdout


@pytest.mark.parametrize("unit", ["expose.socket", "expose-tls.socket"])
def test_edge_socket_cannot_trip_the_trigger_limit(unit):
    text = open(os.path.join(ROOT, "units", unit)).read()
    assert "TriggerLimitIntervalSec=0" in text and "Accept=yes" in text
    assert re.search(r"^MaxConnections=\d+$", text, re.M)
    assert re.search(r"^MaxConnectionsPerSource=\d+$", text, re.M)


def test_install_and_uninstall_file_list(tmp):
    dest = os.path.join(tmp, "dest")
    assert make("install", f"DESTDIR={dest}", "PREFIX=/usr").returncode == 0
    files = sorted(os.path.relpath(os.path.join(d, f), dest)
                   for d, _, fs in os.walk(dest) for f in fs)
    assert files == sorted([
        "usr/bin/expose", "usr/sbin/exposed", "usr/sbin/expose-edge", "usr/sbin/exposectl",
        "usr/sbin/expose-edge-tls", "usr/sbin/expose-mirror",
        "usr/share/man/man8/expose-mirror.8",
        *[f"usr/lib/systemd/system/{u}" for u in UNITS],
        "usr/lib/sysusers.d/expose.conf", "usr/lib/tmpfiles.d/expose.conf",
        "usr/share/man/man1/expose.1", "usr/share/man/man5/expose.conf.5",
        "usr/share/man/man7/expose.7", "usr/share/man/man8/exposed.8",
        "usr/share/man/man8/expose-edge.8", "usr/share/man/man8/expose-edge-tls.8",
        "usr/share/man/man8/exposectl.8",
        "usr/share/doc/expose/README.md", "usr/share/doc/expose/expose.conf.example",
    ])
    unit = open(os.path.join(dest, "usr/lib/systemd/system/exposed.service")).read()
    assert "ExecStart=/usr/sbin/exposed\n" in unit
    # `man expose-edge-tls` finds the edge's page, which documents both.
    assert os.readlink(os.path.join(dest, "usr/share/man/man8/expose-edge-tls.8")) == \
        "expose-edge.8"
    assert make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr").returncode == 0
    assert [f for _, _, fs in os.walk(dest) for f in fs] == []


def test_example_config_is_valid(tmp):
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "-f",
                          os.path.join(ROOT, "units/expose.conf.example"), "--check-config"],
                         capture_output=True, text=True, env=harness.sanitizer_env())
    assert out.returncode == 0, out.stderr
    assert "domain = tunnel.example.net\n" in out.stdout


# --- config errors: one line, file:line, the fix, exit 78 ---

@pytest.mark.parametrize("text,line,message", [
    ("domain = a.example\nsever = typo\n", 2, "unknown key 'sever' (see expose.conf(5))"),
    ("public-port = 70000\n", 1, "public-port '70000': want a port, 1 to 65535"),
    ("head-timeout = soon\n", 1, "head-timeout 'soon': want milliseconds, 100 to 600000"),
    ("claim-names = maybe\n", 1, "claim-names 'maybe': want yes or no"),
    ("scheme = gopher\n", 1, "scheme 'gopher': want http or https"),
    ("# fine\n\njust words\n", 3, "expected 'key = value'"),
    ("domain = " + "a" * 2000 + "\n", 1, "line longer than 1024 bytes"),
])
def test_config_error_names_file_and_line(tmp, text, line, message):
    conf = os.path.join(tmp, "expose.conf")
    with open(conf, "w") as f:
        f.write(text)
    for prog in ("exposed", "exposectl"):
        args = ["--check-config"] if prog == "exposed" else ["list"]
        out = subprocess.run([os.path.join(harness.BIN, prog), "-f", conf, *args],
                             capture_output=True, text=True, env=harness.sanitizer_env())
        assert out.returncode == 78
        assert out.stderr == f"{prog}: {conf}:{line}: {message}\n"


@pytest.mark.parametrize("args,code,message", [
    (["--peers", "bad"], 78, "peers 'bad': not a list of NAME=ADDR:PORT"),
    (["--peers", "h2=10.0.0.2:7002"], 78,
     "peer-keys is empty: list the other hosts' keys in a file and name it (exposed(8))"),
    (["--peers", "h2=10.0.0.2:7002", "--peer-keys", "/nonexistent"], 78,
     "peer-keys /nonexistent: missing"),
    (["--peers", "h2=10.0.0.2:7002", "--peer-keys", "/dev/null", "--peer-listen", "nope"], 69,
     "peer-listen nope: Invalid argument (give another --peer-listen ADDR:PORT)"),
])
def test_bad_peer_link_settings_stop_the_broker_with_the_fix(tmp, args, code, message):
    """More than one host, set wrong: the broker does not start, and says
    which setting and why in one line (etcd need not answer for that)."""
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "--domain", "localhost",
                          "--listen", "127.0.0.1:0", "--socket", f"{tmp}/b.sock",
                          "--registry", f"{tmp}/r.db", "--host-key", f"{tmp}/host.key",
                          "--etcd-endpoints", "http://127.0.0.1:1", "--host-name", "h1", *args],
                         capture_output=True, text=True, env=harness.sanitizer_env(),
                         timeout=harness.scaled(20))
    assert out.returncode == code, out.stderr
    assert f"exposed: {message}\n" in out.stderr


def test_missing_config_file(tmp):
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "-f", f"{tmp}/none.conf",
                          "--check-config"], capture_output=True, text=True,
                         env=harness.sanitizer_env())
    assert out.returncode == 78
    assert out.stderr == f"exposed: {tmp}/none.conf: No such file or directory\n"


def test_flags_win_over_the_file(tmp):
    conf = os.path.join(tmp, "expose.conf")
    with open(conf, "w") as f:
        f.write("domain = file.example\nhead-timeout = 5000\n")
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "-f", conf, "--domain",
                          "flag.example", "--check-config"], capture_output=True, text=True,
                         env=harness.sanitizer_env())
    assert out.returncode == 0
    assert "domain = flag.example\n" in out.stdout and "head-timeout = 5000\n" in out.stdout


def test_a_repeated_flag_takes_its_last_value_and_a_bad_one_is_refused(tmp):
    exposed = os.path.join(harness.BIN, "exposed")
    conf = os.path.join(tmp, "expose.conf")
    open(conf, "w").close()
    # More flags than there are keys: each key is kept once, the last wins.
    args = ["--domain", "a.example"] * 60 + ["--domain", "last.example", "--check-config"]
    out = subprocess.run([exposed, "-f", conf] + args, capture_output=True,
                         text=True, env=harness.sanitizer_env())
    assert out.returncode == 0, out.stderr
    assert "domain = last.example\n" in out.stdout
    out = subprocess.run([exposed, "--no-such-key", "1"], capture_output=True, text=True,
                         env=harness.sanitizer_env())
    assert out.returncode == 64
    assert "unrecognized option '--no-such-key'" in out.stderr and "usage: exposed" in out.stderr
    out = subprocess.run([exposed, "--domain"], capture_output=True, text=True,
                         env=harness.sanitizer_env())
    assert out.returncode == 64 and "requires an argument" in out.stderr


def test_edge_with_broken_config_answers_503_and_logs(stack, tmp):
    conf = os.path.join(tmp, "broken.conf")
    with open(conf, "w") as f:
        f.write("head-timeout = never\n")
    edge = harness.Edge(tmp, stack.broker, extra=("-f", conf))
    try:
        out = harness.http_raw(edge.port, b"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n")
        assert harness.status_of(out) == 503
        harness.wait_in_file(edge.log, re.escape(f"expose-edge: {conf}:1: head-timeout "
                                                 "'never': want milliseconds"))
    finally:
        edge.stop()


# --- metrics and logs ---

def test_metrics_after_traffic(tmp):
    port = harness.free_port()
    s = Stack(tmp, broker_extra=("--metrics", f"127.0.0.1:{port}"))
    try:
        c = s.expose_app()
        for _ in range(3):
            assert s.get(c.url + "hello") == (200, b"hello")
        assert s.get(f"http://ghost.localhost:{s.edge_port}/")[0] == 404
        code, body = harness.curl(f"http://127.0.0.1:{port}/metrics")
        text = body.decode()
        assert code == 200
        assert "# TYPE expose_tunnels gauge\nexpose_tunnels 1\n" in text
        assert "expose_clients 1\n" in text
        assert re.search(r'^expose_streams_total 3$', text, re.M)
        to_clients = int(re.search(r'expose_bytes_total\{direction="to_clients"\} (\d+)', text).group(1))
        from_clients = int(re.search(r'expose_bytes_total\{direction="from_clients"\} (\d+)', text).group(1))
        assert to_clients > 3 * len("GET /hello HTTP/1.1\r\n") and from_clients > 3 * 5
        assert 'expose_handshakes_total{result="ok"} 1\n' in text
        assert 'expose_binds_total{result="ok"} 1\n' in text
        assert harness.curl(f"http://127.0.0.1:{port}/other")[0] == 404
        out = subprocess.run([os.path.join(s.bin, "exposectl"), "--socket", s.broker.socket,
                              "stats"], capture_output=True, text=True,
                             env=harness.sanitizer_env())
        assert out.returncode == 0
        assert "tunnels          1\n" in out.stdout
        assert "streams          0 now, 3 since start\n" in out.stdout
    finally:
        s.close()


def test_access_log_line(stack):
    c = stack.expose_app()
    stack.get(c.url + "status/201?x=1")
    line = stack.edge.accesses()[-1]
    name = c.host.split(".")[0]
    assert re.fullmatch(r"expose-edge: access time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                        rf"name={name} addr=127\.0\.0\.1 method=GET path=/status/201\?x=1 "
                        r"status=201 bytes=\d+ ms=\d+\n", line), line


def stderr_with_journal_stream(stream_is_stderr):
    """exposed's stderr (a pipe) with JOURNAL_STREAM naming that pipe, or
    naming another file, as a service's child redirected elsewhere has."""
    r, w = os.pipe()
    st = os.fstat(w if stream_is_stderr else 0)
    env = dict(harness.sanitizer_env(), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    subprocess.run([os.path.join(harness.BIN, "exposed"), "--public-port", "0"],
                   stdout=subprocess.DEVNULL, stderr=w, env=env, timeout=30)
    os.close(w)
    with os.fdopen(r) as f:
        return f.read()


def test_journald_priority_prefix(tmp):
    assert stderr_with_journal_stream(True).startswith("<3>exposed: --public-port '0'")


def test_no_prefix_when_stderr_is_not_the_journal_stream(tmp):
    assert stderr_with_journal_stream(False).startswith("exposed: --public-port '0'")


# --- readiness, watchdog, socket activation ---

def notify_socket(tmp):
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    return sock, path


def test_watchdog_pings_and_status(tmp):
    sock, path = notify_socket(tmp)
    ws = harness.free_port()
    env = dict(harness.sanitizer_env(), NOTIFY_SOCKET=path, WATCHDOG_USEC="300000",
               WATCHDOG_PID="")
    argv = [os.path.join(harness.BIN, "exposed"), "--listen", f"127.0.0.1:{ws}",
            "--socket", f"{tmp}/b.sock", "--registry", f"{tmp}/r.db"]
    env.pop("WATCHDOG_PID")
    p = harness.Process(argv, os.path.join(tmp, "broker.log"), env=env)
    try:
        msgs = []
        while not any("READY=1" in m for m in msgs):
            msgs.append(sock.recv(4096).decode())
        c = harness.Client(tmp, f"ws://127.0.0.1:{ws}", 9)
        pings = 0
        while pings < 3 or not any("STATUS=1 tunnels, 1 clients" in m for m in msgs):
            m = sock.recv(4096).decode()
            msgs.append(m)
            pings += m == "WATCHDOG=1"
        c.stop()
    finally:
        assert p.stop() == 0
        sock.close()


def test_broker_takes_sockets_from_systemd(tmp):
    """systemd-socket-activate passes the edges' Unix socket, the clients'
    port and the control socket, as exposed.socket would."""
    app = harness.App(tmp)
    ws, edge_port = harness.free_port(), harness.free_port()
    sock, notify = notify_socket(tmp)
    registry = os.path.join(tmp, "registry.db")
    env = dict(harness.sanitizer_env(), NOTIFY_SOCKET=notify)
    launcher = harness.Process(
        ["systemd-socket-activate", "-l", f"{tmp}/edges.sock", "-l", f"127.0.0.1:{ws}",
         "-l", f"{tmp}/ctl.sock", "--fdname=edges:clients:control", "-E", f"NOTIFY_SOCKET={notify}",
         os.path.join(harness.BIN, "exposed"), "--registry", registry,
         "--public-port", str(edge_port)],
        os.path.join(tmp, "broker.log"), env=env)
    try:
        harness.wait_in_file(launcher.log, r"Listening on 127\.0\.0\.1:%d" % ws)
        # The broker starts at the first connection, and says READY=1.
        c = harness.Client(tmp, f"ws://127.0.0.1:{ws}", app.port, wait_url=False)
        while "READY=1" not in sock.recv(4096).decode():
            pass
        c.urls.append(c.next_line())

        class B:
            pass
        b = B()
        b.registry, b.domain = registry, "localhost"
        edge = harness.Edge(tmp, b, port=edge_port)
        try:
            assert harness.curl(c.url + "hello") == (200, b"hello")
            out = subprocess.run([os.path.join(harness.BIN, "exposectl"), "--control",
                                  f"{tmp}/ctl.sock", "kick", c.host.split(".")[0]],
                                 capture_output=True, text=True, env=harness.sanitizer_env())
            assert out.returncode == 0, out.stderr
            assert c.proc.exit_status(20) == 69
        finally:
            edge.stop()
        harness.wait_in_file(launcher.log, rf"socket={re.escape(tmp)}/edges\.sock")
    finally:
        launcher.stop()
        app.stop()
        sock.close()


# --- reload (SIGHUP, and exposectl reload as ExecReload= runs it) ---

def wait_log(path, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if text in f.read():
                return
        time.sleep(0.05)
    with open(path) as f:
        raise AssertionError(f"no {text!r} in {f.read()!r}")


def test_reload_keeps_running_and_says_what_needs_a_restart(tmp):
    conf = os.path.join(tmp, "expose.conf")
    base = (f"domain = x.test\nlisten = 127.0.0.1:{harness.free_port()}\n"
            f"socket = {tmp}/b.sock\nregistry = {tmp}/r.db\n")
    with open(conf, "w") as f:
        f.write(base)
    log = os.path.join(tmp, "exposed.log")
    with open(log, "w") as err:
        p = subprocess.Popen([os.path.join(harness.BIN, "exposed"), "-f", conf],
                             stderr=err, env=harness.sanitizer_env())
    try:
        wait_log(log, "ready ")
        with open(conf, "w") as f:
            f.write(base.replace("x.test", "y.test") + "handshake-rate = 5\n")
        p.send_signal(signal.SIGHUP)
        wait_log(log, "domain changed to 'y.test': it applies at the next restart")
        wait_log(log, "reloaded ")
        with open(conf, "a") as f:
            f.write("bogus = 1\n")
        out = subprocess.run([os.path.join(harness.BIN, "exposectl"), "-f", conf, "reload"],
                             capture_output=True, text=True, env=harness.sanitizer_env(),
                             timeout=30)
        assert out.returncode != 0 and "unknown key 'bogus'" in out.stderr, out
        assert p.poll() is None
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0
