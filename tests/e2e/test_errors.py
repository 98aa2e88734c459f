"""What users see when something is wrong: each case a clear answer."""
import os
import re
import signal
import sqlite3
import subprocess
import time

import harness


def test_unknown_tunnel_404_names_it(stack):
    code, body = stack.get(f"http://nosuchtunnel.localhost:{stack.edge_port}/")
    assert code == 404
    assert b"no tunnel named nosuchtunnel" in body


def test_host_outside_domain_404(stack):
    out = stack.raw(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")
    assert harness.status_of(out) == 404


def test_malformed_request_400_and_close(stack):
    c = stack.expose_app()
    stack.app.reset()
    out = stack.raw(f"GET / HTTP/1.1\r\nHost: {c.host}\r\nBad Header: x\r\n\r\n".encode())
    assert harness.status_of(out) == 400
    assert b"Connection: close" in out
    assert stack.app.requests() == []


def test_nothing_listening_502_says_so(stack):
    port = harness.free_port()
    c = stack.client(port)
    assert f"nothing is listening on localhost:{port} yet" in c.text()
    code, body = stack.get(c.url)
    assert code == 502
    assert f"nothing answered on localhost:{port} on the developer".encode() in body
    # The client keeps running, and serves once the app is up.
    assert c.proc.alive()


def test_tunnel_gone_between_lookup_and_relay_502(stack):
    # A row the broker does not hold: what an edge sees when the client
    # leaves between its registry lookup and its OPEN.
    db = sqlite3.connect(stack.broker.registry)
    db.execute("INSERT INTO tunnels (name, broker, session, key, addr, url, target, since)"
               " VALUES ('ghost', ?, 1, 'k', '192.0.2.1', 'u', 't', 0)",
               (stack.broker.socket,))
    db.commit()
    db.close()
    code, body = stack.get(f"http://ghost.localhost:{stack.edge_port}/")
    assert code == 502
    assert b"closed before the app answered" in body


def test_broker_down_503_then_back(stack):
    c = stack.expose_app("--name", "steady")
    stack.broker.kill()
    # Its rows remain until a broker sweeps them; its socket refuses.
    code, body = stack.get(c.url + "hello")
    assert code == 503
    assert b"not available right now" in body
    stack.broker.start()
    # The client reconnects by itself and takes its name back.
    harness.wait_in_file(c.log, r"reconnected: " + re.escape(c.url))
    assert stack.get(c.url + "hello") == (200, b"hello")
    assert len(stack.broker.rows()) == 1


def test_broker_that_never_answers_504(stack):
    """A broker that accepts the edge's connection but hangs (here: stopped)
    costs the visitor EDGE_BROKER_TIMEOUT_MS and a 504, not a hung request."""
    c = stack.expose_app()
    assert stack.get(c.url + "hello") == (200, b"hello")
    stack.broker.proc.send(signal.SIGSTOP)
    try:
        code, body = stack.get(c.url + "hello", timeout=harness.bound("EDGE_BROKER_TIMEOUT_MS")
                               / 1000 + 20)
    finally:
        stack.broker.proc.send(signal.SIGCONT)
    assert code == 504 and b"The tunnel service did not answer in time" in body
    harness.wait_in_file(stack.edge.log, r"expose-edge: broker .*: no answer to OPEN in \d+ ms")
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_client_killed_row_deleted(stack):
    c = stack.expose_app()
    assert len(stack.broker.rows()) == 1
    c.kill()
    harness.wait_for(lambda: stack.broker.rows() == [], what="row deleted")
    assert stack.get(c.url)[0] == 404


def test_ctrl_c_closes_cleanly(stack):
    c = stack.expose_app()
    assert c.stop() == 0
    # The row goes at once: the broker deleted it before the client exited.
    harness.wait_for(lambda: stack.broker.rows() == [], timeout=5, what="row deleted")


def test_client_waits_for_unreachable_server(stack, tmp):
    port = harness.free_port()
    c = stack.client(stack.app.port, server=f"ws://127.0.0.1:{port}", wait_url=False)
    harness.wait_in_file(c.log, r"cannot reach ws://127\.0\.0\.1:%d: .*; retrying in" % port)
    # A broker that comes up later gets the client.
    late = harness.Broker(os.path.join(tmp), ws_port=port, public_port=stack.edge_port,
                          socket_path=os.path.join(tmp, "late.sock"),
                          registry=stack.broker.registry)
    try:
        url = c.next_line(timeout=30)
        assert url.endswith(f".localhost:{stack.edge_port}/")
        assert stack.get(url + "hello") == (200, b"hello")
        c.stop()
    finally:
        late.stop()


def test_broker_bad_flag_one_line(tmp):
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "--public-port", "nope"],
                         capture_output=True, text=True, env=harness.sanitizer_env())
    assert out.returncode == 78
    assert out.stderr == "exposed: --public-port 'nope': want a port, 1 to 65535\n"


def test_broker_registry_not_writable(tmp):
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "--registry",
                          "/nonexistent/dir/registry.db", "--socket", f"{tmp}/b.sock"],
                         capture_output=True, text=True, env=harness.sanitizer_env())
    assert out.returncode == 74
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "registry /nonexistent/dir/registry.db: cannot open" in lines[0]


def test_broker_socket_in_use(stack, tmp):
    out = subprocess.run([os.path.join(harness.BIN, "exposed"), "--registry",
                          f"{tmp}/other.db", "--socket", stack.broker.socket,
                          "--listen", f"127.0.0.1:{harness.free_port()}"],
                         capture_output=True, text=True, env=harness.sanitizer_env(),
                         timeout=20)
    assert out.returncode == 69
    assert "in use by a running broker" in out.stderr
    # The running broker still serves.
    c = stack.expose_app()
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_client_without_server_one_line(tmp):
    env = harness.sanitizer_env()
    env.pop("EXPOSE_SERVER", None)
    env["XDG_CONFIG_HOME"] = tmp
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "3000"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 78
    assert "no server: give --server ws://HOST:PORT, set EXPOSE_SERVER" in out.stderr


def test_client_bad_name_one_line(tmp):
    env = harness.sanitizer_env()
    env["XDG_CONFIG_HOME"] = tmp
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "--server", "ws://127.0.0.1:1",
                          "--name", "Bad_Name", "3000"], capture_output=True, text=True, env=env)
    assert out.returncode == 64
    assert "--name Bad_Name:" in out.stderr


def test_server_from_environment(stack):
    c = stack.client(stack.app.port, server=None,
                     env_extra={"EXPOSE_SERVER": stack.broker.server})
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_server_from_config_file(stack, tmp):
    keys = f"{tmp}/conf-keys"
    os.makedirs(f"{keys}/expose")
    with open(f"{keys}/expose/expose.conf", "w") as f:
        f.write(f"# where my tunnels live\nserver = {stack.broker.server}\n")
    c = stack.client(stack.app.port, server=None, key_dir=keys)
    assert stack.get(c.url + "hello") == (200, b"hello")


def test_bad_config_file_names_file_and_line(tmp):
    conf = f"{tmp}/bad.conf"
    with open(conf, "w") as f:
        f.write("server = ws://127.0.0.1:1\nsever = typo\n")
    env = harness.sanitizer_env()
    env["XDG_CONFIG_HOME"] = tmp
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "-f", conf, "3000"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 78
    assert out.stderr.strip() == f"expose: {conf}:2: unknown key 'sever' (known: server, host-header, local-insecure, ca, inspect)"
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "-f", f"{tmp}/none.conf",
                          "3000"], capture_output=True, text=True, env=env)
    assert out.returncode == 78 and "none.conf: No such file or directory" in out.stderr
