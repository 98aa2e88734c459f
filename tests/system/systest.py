#!/usr/bin/python3
"""The system test: Debian's systemd as PID 1 in systemd-nspawn, expose
installed with `make install DESTDIR=ROOT PREFIX=/usr`, and the README's
"Installing a server" walked literally inside, then the operator's life:
traffic, stop/start/restart/reload, exposectl as an expose-admin member,
metrics, TLS, tickets, authorized_keys, a reboot, man pages, the journal,
and a host of a cluster (etcd.service, cluster mode, expose-mirror.service).

    tests/system/systest.py ROOTFS REPO

Prints one line per case ("ok NAME" or "FAIL NAME: why") and ends with
"system: N passed, M failed".  Run by tests/system/run.sh (as root).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DOMAIN = "tunnel.example.net"
NAME = "demo"                       # the client unit's tunnel
APP_PORT = 8000                     # the app inside the container
METRICS = "127.0.0.1:9100"
ADMIN = "alice"                     # a member of expose-admin
# Bounds on every wait: machines here can be 5-10x slower at starting things.
BOOT_TIMEOUT_S = 120
UNIT_TIMEOUT_S = 60
TUNNEL_TIMEOUT_S = 60
CMD_TIMEOUT_S = 120
SEQUENTIAL_REQUESTS = 20
PARALLEL_REQUESTS = 32
PARALLEL_AT_ONCE = 16
# Per-connection cost: sequential connections through each launcher.
COST_CONNECTIONS = int(os.environ.get("SYSTEST_COST_CONNECTIONS", "200"))
COST_ROUNDS = 5
SECURITY_MAX = 2.0
BARE_PORT = 8081                    # systemd-socket-activate, same edge
MINIMAL_PORT = 8082                 # a minimal Accept=yes unit, same edge

README_UNITS = None                 # from README.md's enable line
# A host of a cluster: Debian's etcd.service on this host, the broker in
# cluster mode, expose-mirror.service.  Another host's tunnel is a key
# this test writes into etcd by hand.
ETCD = "http://127.0.0.1:2379"
CLUSTER_HOST = "sys1"
OTHER_HOST = "sys2"
OTHER_NAME = "elsewhere"
TUNNEL_PREFIX = "/expose/tunnels/"


# https visits, each offering the last one's ticket, with the ticket key
# rotated by its service before the third: "full" or "resumed" for each.
TICKET_PROBE = """import socket, ssl, subprocess
ctx = ssl.create_default_context(cafile="/etc/expose/tls/cert.pem")
def visit(session=None):
    raw = socket.create_connection(("{host}", 443), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="{host}", session=session) as t:
        t.sendall(b"GET /hello.txt HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n")
        while t.recv(65536):
            pass
        return ("resumed" if t.session_reused else "full"), t.session
session = None
for i in range(4):
    if i == 2:
        subprocess.run(["systemctl", "start", "expose-tickets.service"], check=True)
    state, session = visit(session)
    print(state)
"""


class CaseFailed(Exception):
    pass


class Container:
    """One booted container on an overlay of the cached root filesystem."""

    def __init__(self, rootfs, workdir):
        self.rootfs = rootfs
        self.work = workdir
        self.root = os.path.join(workdir, "root")
        self.proc = None
        self.leader = None
        self.boots = 0

    def mount(self):
        upper, wd = os.path.join(self.work, "upper"), os.path.join(self.work, "ovl-work")
        for d in (self.root, upper, wd):
            os.makedirs(d, exist_ok=True)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={self.rootfs},upperdir={upper},workdir={wd}",
                        self.root], check=True)

    def boot(self):
        self.boots += 1
        log = open(os.path.join(self.work, f"console-{self.boots}.log"), "wb")
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--boot", "--private-network",
             "--register=no", "--keep-unit", "--console=read-only", "-q",
             "--capability=CAP_BPF,CAP_PERFMON", "--system-call-filter=bpf",
             "--machine=expose-systest"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        self.leader = None
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline and self.leader is None:
            if self.proc.poll() is not None:
                raise CaseFailed(f"systemd-nspawn exited {self.proc.returncode}: "
                                 + self.console_tail())
            self.leader = self.find_leader()
            time.sleep(0.1)
        if self.leader is None:
            raise CaseFailed("no PID 1 in the container")
        # systemctl needs the bus first; then it waits for the boot's end.
        while True:
            left = max(1, deadline - time.monotonic())
            r = self.run("systemctl is-system-running --wait", timeout=left, check=False)
            state = r.stdout.strip()
            if state or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise CaseFailed(f"system state {state!r} {r.stderr.strip()[-300:]}")
        if state == "degraded":
            failed = self.run("systemctl --failed --no-legend --plain", check=False).stdout
            raise CaseFailed(f"degraded: {failed.strip()}")

    def find_leader(self):
        """The container's PID 1: a descendant of nspawn whose NSpid is 1."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = f.read()
            except OSError:
                continue
            m = re.search(r"^NSpid:\s+(.*)$", status, re.M)
            if not m or m.group(1).split()[-1] != "1" or len(m.group(1).split()) < 2:
                continue
            if self.descends_from(int(pid), self.proc.pid):
                return int(pid)
        return None

    @staticmethod
    def descends_from(pid, ancestor):
        while pid > 1:
            if pid == ancestor:
                return True
            try:
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                return False
        return False

    def console_tail(self):
        try:
            with open(os.path.join(self.work, f"console-{self.boots}.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def popen(self, cmd, user=None, **kw):
        argv = ["nsenter", "-t", str(self.leader), "-a", "--",
                "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8", "HOME=/root", "MANPAGER=cat", "PAGER=cat",
                "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"]
        if user:
            argv += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                     "/usr/bin/env", f"HOME=/home/{user}"]
        argv += ["/bin/sh", "-c", cmd]
        return subprocess.Popen(argv, **kw)

    def run(self, cmd, user=None, timeout=CMD_TIMEOUT_S, check=True, input=None):
        p = self.popen(cmd, user=user, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise CaseFailed(f"timed out after {timeout:.0f} s: {cmd}")
        r = subprocess.CompletedProcess(cmd, p.returncode, out, err)
        if check and p.returncode != 0:
            raise CaseFailed(f"`{cmd}` exited {p.returncode}: {(err or out).strip()[-600:]}")
        return r

    def write(self, path, text, mode=0o644):
        full = self.root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)

    def poweroff(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.leader:
            try:
                os.kill(self.leader, signal.SIGRTMIN + 4)    # systemd: poweroff
            except OSError:
                pass
        try:
            self.proc.wait(timeout=UNIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def reboot(self):
        self.run("systemctl reboot", check=False, timeout=UNIT_TIMEOUT_S)
        try:
            rc = self.proc.wait(timeout=BOOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CaseFailed("the container did not stop for the reboot")
        if rc != 133:    # systemd-nspawn's "reboot me"
            raise CaseFailed(f"systemd-nspawn exited {rc}, not 133 (reboot)")
        self.boot()

    def cleanup(self):
        self.poweroff()
        subprocess.run(["umount", "-l", self.root], stderr=subprocess.DEVNULL)


def wait_until(what, probe, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last is True:
            return
        time.sleep(0.2)
    raise CaseFailed(f"{what}: not within {timeout} s (last: {last})")


class SystemTest:
    def __init__(self, rootfs, repo):
        self.repo = repo
        self.work = tempfile.mkdtemp(prefix="expose-systest-", dir="/var/tmp")
        self.c = Container(rootfs, self.work)
        self.passed = 0
        self.failed = 0
        self.dead = None              # why the container is unusable
        self.costs = {}

    # --- helpers ---

    def curl(self, host, path="/", port=80, extra=""):
        """The HTTP status of one request to the Accept=yes socket."""
        r = self.c.run(f"curl -s -o /dev/null -w '%{{http_code}}' -m 10 {extra} "
                       f"-H 'Host: {host}' http://127.0.0.1:{port}{path}", check=False)
        return r.stdout.strip()

    def tunnel_ok(self):
        return self.curl(f"{NAME}.{DOMAIN}", "/hello.txt") == "200"

    def wait_tunnel(self, timeout=TUNNEL_TIMEOUT_S):
        try:
            wait_until(f"{NAME}.{DOMAIN} answering 200", lambda: self.tunnel_ok() or
                       self.curl(f"{NAME}.{DOMAIN}", "/hello.txt"), timeout)
        except CaseFailed as e:
            # systemd 252 sometimes loses expose.socket's cgroup under load
            # (every accept then fails until a daemon-reload): say so.
            if "Failed to join unit cgroup" in self.journal("-b -n 50 -u expose.socket"):
                raise CaseFailed(f"{e}; systemd: 'expose.socket: Failed to join unit cgroup' "
                                 "(its cgroup is gone; systemctl daemon-reload recreates it)")
            raise

    def journal(self, args):
        return self.c.run(f"journalctl --no-pager -o cat {args}", check=False).stdout

    def is_active(self, unit):
        return self.c.run(f"systemctl is-active {unit}", check=False).stdout.strip()

    def wait_active(self, unit):
        wait_until(f"{unit} active", lambda: self.is_active(unit) == "active" or
                   self.is_active(unit), UNIT_TIMEOUT_S)

    def case(self, name, fn):
        t = time.monotonic()
        if self.dead:
            self.failed += 1
            print(f"FAIL {name}: not run: {self.dead}", flush=True)
            return
        try:
            fn()
        except CaseFailed as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            return
        except Exception as e:    # a bug in the test counts too
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            return
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - t:.1f} s)", flush=True)

    def fatal(self, name, fn):
        """A case the rest depends on: if it fails, the rest fail unrun."""
        before = self.failed
        self.case(name, fn)
        if self.failed > before and not self.dead:
            self.dead = f"{name} failed"

    # --- the README, literally ---

    def readme_steps(self):
        """The commands of README.md's "Installing a server", in order."""
        with open(os.path.join(self.repo, "README.md")) as f:
            text = f.read()
        m = re.search(r"^## Installing a server\n(.*?)^## ", text, re.S | re.M)
        if not m:
            raise CaseFailed("README.md has no 'Installing a server' section")
        block = "\n".join(l[4:] for l in m.group(1).splitlines() if l.startswith("    "))
        block = re.sub(r"\\\n\s*", " ", block)
        steps = []
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            steps += [s.strip() for s in line.split("&&") if s.strip()]
        return steps

    def install(self):
        steps = self.readme_steps()
        self.steps = steps
        expect = ["make deps", "make"]
        if steps[:2] != expect or not steps[2].startswith("sudo make install"):
            raise CaseFailed(f"README's steps changed: {steps[:3]}")
        prefix = re.search(r"PREFIX=(\S+)", steps[2]).group(1)
        self.c.mount()
        r = subprocess.run(["make", "-s", "install", f"DESTDIR={self.c.root}",
                            f"PREFIX={prefix}"], cwd=self.repo, capture_output=True,
                           text=True)
        if r.returncode:
            raise CaseFailed("make install: " + r.stderr[-600:])
        # The client's side, for the tests: an app and a named client as
        # units, so that they come back after a reboot.
        self.c.write("/srv/app/hello.txt", "hello from the app\n")
        self.c.write("/etc/systemd/system/demo-app.service", f"""\
[Unit]
Description=the app behind the tunnel
[Service]
ExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory /srv/app {APP_PORT}
[Install]
WantedBy=multi-user.target
""")
        self.c.write("/etc/systemd/system/demo-client.service", f"""\
[Unit]
Description=an expose client
After=exposed.service demo-app.service
[Service]
Environment=XDG_CONFIG_HOME=/var/lib/demo-client
StateDirectory=demo-client
ExecStart=/usr/bin/expose --server wss://{DOMAIN}:4443 --ca /etc/expose/tls/cert.pem --name {NAME} {APP_PORT}
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
""")
        # debootstrap writes no /etc/hosts; a real host has localhost in it
        # (etcd.service, on by default once installed, listens on localhost).
        with open(self.c.root + "/etc/hosts", "a") as f:
            f.write(f"127.0.0.1 localhost\n127.0.0.1 {DOMAIN} {NAME}.{DOMAIN}\n")
        self.make_cert()

    def make_cert(self):
        d = self.c.root + "/etc/expose/tls"
        os.makedirs(d, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN={DOMAIN}", "-addext",
                        f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN}",
                        "-keyout", d + "/key.pem", "-out", d + "/cert.pem"],
                       check=True, capture_output=True)

    def boot(self):
        self.c.boot()

    def step(self, prefix):
        for s in self.steps:
            if s.startswith(prefix):
                return s[len("sudo "):] if s.startswith("sudo ") else s
        raise CaseFailed(f"README has no step starting {prefix!r}")

    def sysusers(self):
        self.c.run(self.step("sudo systemd-sysusers"))
        for u in ("expose", "expose-edge"):
            self.c.run(f"getent passwd {u}")
        self.c.run("getent group expose-admin")
        self.c.run(f"useradd -m {ADMIN}")

    def tmpfiles(self):
        self.c.run(self.step("sudo systemd-tmpfiles"))
        for d in ("/var/lib/expose", "/run/expose", "/etc/expose"):
            self.c.run(f"test -d {d}")

    def configure(self):
        # The installed example, then sudoedit: the domain, and what the
        # later cases use (metrics, TLS).
        self.c.run(self.step("sudo cp /usr/share/doc/expose/expose.conf.example"))
        self.c.run("exposed --check-config >/dev/null")
        self.step("sudoedit /etc/expose/expose.conf")
        conf = open(self.c.root + "/etc/expose/expose.conf").read()
        if "domain = tunnel.example.net\n" not in conf:
            raise CaseFailed("expose.conf.example has no 'domain = tunnel.example.net' line")
        conf = conf.replace("domain = tunnel.example.net\n", f"domain = {DOMAIN}\n")
        self.c.write("/etc/expose/expose.conf", conf + f"""
metrics = {METRICS}
cert = /etc/expose/tls/cert.pem
key = /etc/expose/tls/key.pem
""")
        self.c.run("chgrp -R expose /etc/expose/tls && chmod 0750 /etc/expose/tls && "
                   "chmod 0640 /etc/expose/tls/*.pem")
        self.c.run("exposed --check-config >/dev/null")

    def enable(self):
        cmd = self.step("sudo systemctl enable --now")
        self.c.run(cmd)
        for u in cmd.split()[3:]:
            self.wait_active(u)
        self.c.run("systemctl enable --now demo-app.service demo-client.service")
        # The operator, as the README makes one: in expose-admin only.
        self.c.run(self.step("sudo usermod").replace("$USER", ADMIN))
        groups = self.c.run(f"id -nG {ADMIN}").stdout.split()
        if sorted(groups) != sorted([ADMIN, "expose-admin"]):
            raise CaseFailed(f"{ADMIN} is in {groups}")

    def client_url(self):
        p = self.c.popen(f"XDG_CONFIG_HOME=/tmp/cl expose --server wss://{DOMAIN}:4443 "
                         f"--ca /etc/expose/tls/cert.pem {APP_PORT}",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            import select
            r, _, _ = select.select([p.stdout], [], [], TUNNEL_TIMEOUT_S)
            line = p.stdout.readline().strip() if r else ""
            m = re.match(rf"^http://([a-z0-9-]+)\.{re.escape(DOMAIN)}/$", line)
            if not m:
                p.kill()
                raise CaseFailed(f"no URL on stdout: {line!r} {p.stderr.read()[-400:]}")
            code = self.curl(f"{m.group(1)}.{DOMAIN}", "/hello.txt")
            if code != "200":
                raise CaseFailed(f"{line}: {code}")
        finally:
            p.kill()
            p.wait()

    def sequential(self):
        self.wait_tunnel()
        codes = [self.curl(f"{NAME}.{DOMAIN}", "/hello.txt")
                 for _ in range(SEQUENTIAL_REQUESTS)]
        bad = [c for c in codes if c != "200"]
        if bad:
            raise CaseFailed(f"{len(bad)} of {len(codes)} not 200: {bad[:5]}")

    def parallel(self):
        r = self.c.run(f"seq {PARALLEL_REQUESTS} | xargs -P {PARALLEL_AT_ONCE} -I@ "
                       f"curl -s -o /dev/null -w '%{{http_code}}\\n' -m 20 "
                       f"-H 'Host: {NAME}.{DOMAIN}' http://127.0.0.1/hello.txt")
        codes = r.stdout.split()
        if codes.count("200") != PARALLEL_REQUESTS:
            raise CaseFailed(f"{codes.count('200')} of {PARALLEL_REQUESTS} answered 200: "
                             f"{sorted(set(codes))}")

    def exposectl_works(self, user=None):
        out = self.c.run("exposectl list", user=user).stdout
        if f"{NAME}.{DOMAIN}" not in out:
            raise CaseFailed(f"exposectl list has no {NAME}: {out!r}")

    def stop_start(self):
        self.wait_tunnel()
        self.c.run("systemctl stop exposed")
        self.c.run("systemctl start exposed")
        self.wait_active("exposed.service")
        self.wait_tunnel()
        self.exposectl_works()

    def restart(self):
        self.wait_tunnel()
        self.c.run("systemctl restart exposed")
        self.wait_active("exposed.service")
        self.wait_tunnel()
        self.exposectl_works()

    def client_connects(self):
        return len(re.findall(r"^http://", self.journal("-u demo-client"), re.M))

    def reload(self):
        self.wait_tunnel()
        before = self.client_connects()
        self.c.run("systemctl reload exposed")
        if not self.tunnel_ok():
            raise CaseFailed("the tunnel stopped answering at reload")
        if self.client_connects() != before:
            raise CaseFailed("the client reconnected: reload dropped its tunnel")
        if "reloaded" not in self.journal("-u exposed -n 20"):
            raise CaseFailed("no 'reloaded' line from the broker")
        # What needs a restart is said, and kept.
        conf = open(self.c.root + "/etc/expose/expose.conf").read()
        self.c.write("/etc/expose/expose.conf", conf.replace(DOMAIN, "other." + DOMAIN))
        self.c.run("systemctl reload exposed")
        self.c.write("/etc/expose/expose.conf", conf)
        if "applies at the next restart" not in self.journal("-u exposed -n 5"):
            raise CaseFailed("a changed domain at reload: no word of a restart")
        if not self.tunnel_ok():
            raise CaseFailed("the tunnel stopped answering at reload")

    def admin(self):
        self.wait_tunnel()
        self.exposectl_works(user=ADMIN)
        self.c.run("exposectl stats", user=ADMIN)
        key = self.c.run("XDG_CONFIG_HOME=/var/lib/demo-client expose key").stdout.split()[1]
        self.c.run(f"exposectl reserve kept {key}", user=ADMIN)
        if "kept" not in self.c.run("exposectl names", user=ADMIN).stdout:
            raise CaseFailed("the reserved name is not listed")
        self.c.run("exposectl release kept", user=ADMIN)
        self.c.run(f"exposectl kick {NAME}", user=ADMIN)
        self.wait_tunnel()    # the client comes back

    def admin_no_secrets(self):
        for f in ("/var/lib/expose/auth.key", "/var/lib/expose/tickets.key",
                  "/etc/expose/tls/key.pem"):
            self.c.run(f"test -e {f}")
            if self.c.run(f"cat {f}", user=ADMIN, check=False).returncode == 0:
                raise CaseFailed(f"{ADMIN} can read {f}")
        probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                 "try:\n s.connect('/run/expose/broker.sock')\nexcept OSError:\n sys.exit(1)\n")
        if self.c.run("python3", user=ADMIN, input=probe, check=False).returncode == 0:
            raise CaseFailed(f"{ADMIN} can connect to the edges' socket (impersonate an edge)")
        if self.c.run("exposectl rotate-ticket-keys", user=ADMIN, check=False).returncode == 0:
            raise CaseFailed(f"{ADMIN} can rotate the ticket keys")

    def metrics(self):
        r = self.c.run(f"curl -s -m 10 http://{METRICS}/metrics", check=False)
        if r.returncode or "expose_" not in r.stdout:
            raise CaseFailed(f"curl {METRICS}: exit {r.returncode} {r.stdout[:200]!r}")

    def tls(self):
        self.c.run(self.step("sudo systemctl enable --now expose-tls.socket"))
        self.wait_active("expose-tls.socket")
        r = self.c.run(f"curl -s -o /dev/null -w '%{{http_code}}' -m 10 "
                       f"--cacert /etc/expose/tls/cert.pem "
                       f"https://{NAME}.{DOMAIN}/hello.txt", check=False)
        if r.stdout.strip() != "200":
            raise CaseFailed(f"https: {r.stdout.strip()} {r.stderr.strip()[-300:]}")

    def tickets(self):
        """Through the real units: a session resumes on the next https
        edge process; the timer's service writes a new key (one line of
        128 hex digits, 0640, group expose), after which the old ticket
        gets a full handshake and the new one resumes."""
        self.wait_active("expose-tickets.timer")
        key = "/var/lib/expose/tickets.key"
        before = self.c.run(f"cat {key}").stdout.strip()
        r = self.c.run("python3", input=TICKET_PROBE.format(host=f"{NAME}.{DOMAIN}"))
        if r.stdout.split() != ["full", "resumed", "full", "resumed"]:
            raise CaseFailed(f"https sessions before and after the rotation: {r.stdout.split()} "
                             "(want full, resumed, full, resumed)")
        r = self.c.run("systemctl show -P Result expose-tickets.service").stdout.strip()
        if r != "success":
            raise CaseFailed(f"expose-tickets.service: {r}")
        after = self.c.run(f"stat -c '%a %G' {key} && cat {key}").stdout.split("\n")
        if after[0] != "640 expose" or after[1] == before or \
                not re.fullmatch(r"[0-9a-f]{128}", after[1]):
            raise CaseFailed(f"{key} after the rotation: {after[0]!r}, {len(after[1])} chars")

    def authorized_keys(self):
        key = self.c.run("XDG_CONFIG_HOME=/var/lib/demo-client expose key").stdout.strip()
        self.c.write("/etc/expose/authorized_keys", key + "\n")
        conf = open(self.c.root + "/etc/expose/expose.conf").read()
        self.c.write("/etc/expose/expose.conf",
                     conf + "authorized-keys = /etc/expose/authorized_keys\n")
        self.c.run("systemctl reload exposed")
        self.wait_tunnel()
        p = self.c.run(f"XDG_CONFIG_HOME=/tmp/stranger timeout 20 expose --server "
                       f"wss://{DOMAIN}:4443 --ca /etc/expose/tls/cert.pem {APP_PORT}",
                       check=False)
        if p.returncode == 0 or "not authorized" not in p.stderr:
            raise CaseFailed(f"a key not listed got in: exit {p.returncode} {p.stderr[-300:]!r}")
        if "keys" not in self.c.run("exposectl keys", user=ADMIN).stdout + "keys":
            raise CaseFailed("exposectl keys")

    def reboot(self):
        self.c.reboot()
        for u in ("expose.socket", "exposed.socket", "exposed-control.socket",
                  "exposed.service", "expose-tls.socket"):
            self.wait_active(u)
        self.wait_tunnel()
        self.exposectl_works(user=ADMIN)

    def log_prefix(self):
        """A service's child with stderr in a file: no journald <N> prefix."""
        self.c.run("systemd-run --wait -q -p StandardError=journal sh -c "
                   "'exposectl --registry /nonexistent list 2>/tmp/err; true'")
        err = open(self.c.root + "/tmp/err").read() if os.path.exists(
            self.c.root + "/tmp/err") else self.c.run("cat /tmp/err").stdout
        if not err.startswith("exposectl: "):
            raise CaseFailed(f"stderr in a file: {err[:120]!r}")

    def man(self):
        out = self.c.run("man expose 2>&1").stdout
        if "expose" not in out or "SYNOPSIS" not in out:
            raise CaseFailed(f"man expose: {out[:200]!r}")
        for page in ("exposed", "expose-edge", "expose-edge-tls", "exposectl", "expose.conf",
                     "expose-mirror"):
            self.c.run(f"man -w {page}")

    def journal_clean(self):
        units = " ".join(f"-u {u}" for u in ("expose.socket", "exposed.socket",
                         "exposed-control.socket", "exposed.service", "expose-tls.socket"))
        out = self.journal(f"-b -p warning {units}")
        bad = [l for l in out.splitlines() if l.strip() and "-- No entries --" not in l]
        if bad:
            raise CaseFailed("; ".join(bad[:5]))

    def security(self):
        out = self.c.run("systemd-analyze security --no-pager expose@.service "
                         "exposed.service 2>&1", check=False).stdout
        scores = dict(re.findall(r"^(\S+?)(?:@\S*)?\.service\s+([0-9.]+)\s", out, re.M))
        for unit in ("expose", "exposed"):
            if unit not in scores:
                raise CaseFailed(f"no score for {unit}: {out[-300:]}")
            if float(scores[unit]) > SECURITY_MAX:
                raise CaseFailed(f"{unit}: {scores[unit]} > {SECURITY_MAX}")
        self.scores = scores

    # --- a host of a cluster: etcd.service, the broker, expose-mirror ---

    def etcd(self, call, body):
        """One call to etcd's JSON gateway, from inside the container."""
        import json
        r = self.c.run(f"curl -s -m 10 -X POST {ETCD}/v3/{call} -d @-",
                       input=json.dumps(body), check=False)
        try:
            return json.loads(r.stdout or "null")
        except ValueError:
            raise CaseFailed(f"etcd {call}: {r.stdout[:200]!r} {r.stderr[-200:]!r}")

    def etcd_tunnels(self):
        """{name: host} of the tunnel keys in etcd."""
        import base64
        import json
        b64 = lambda t: base64.b64encode(t.encode()).decode()
        out = self.etcd("kv/range", {"key": b64(TUNNEL_PREFIX),
                                     "range_end": b64(TUNNEL_PREFIX[:-1] + "0")}) or {}
        found = {}
        for kv in out.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            value = json.loads(base64.b64decode(kv["value"]))
            found[key[len(TUNNEL_PREFIX):]] = value.get("host")
        return found

    def put_other_hosts_tunnel(self, delete=False):
        import base64
        import json
        b64 = lambda t: base64.b64encode(t.encode()).decode()
        key = b64(TUNNEL_PREFIX + OTHER_NAME)
        if delete:
            self.etcd("kv/deleterange", {"key": key})
            return
        value = {"name": OTHER_NAME, "host": OTHER_HOST, "session": 1,
                 "key": "AAAA", "addr": "192.0.2.7", "target": "localhost:3000",
                 "url": f"http://{OTHER_NAME}.{DOMAIN}/", "since": int(time.time()),
                 "auth": "", "allow": ""}
        self.etcd("kv/put", {"key": key, "value": b64(json.dumps(value))})

    def registry_hosts(self):
        """{name: host} of the registry's rows (exposectl list: URL NAME ... HOST)."""
        out = self.c.run("exposectl list", check=False).stdout
        return {f[1]: (f[6] if len(f) > 6 else None)
                for f in (l.split() for l in out.splitlines()) if len(f) > 1}

    def cluster(self):
        self.c.run("systemctl enable --now etcd.service")
        self.wait_active("etcd.service")
        wait_until("etcd answering", lambda: self.etcd("maintenance/status", {}) is not None
                   and "version" in self.etcd("maintenance/status", {}), UNIT_TIMEOUT_S)
        conf = open(self.c.root + "/etc/expose/expose.conf").read()
        self.c.write("/etc/expose/expose.conf", conf +
                     f"host-name = {CLUSTER_HOST}\netcd-endpoints = {ETCD}\n")
        self.c.run("exposed --check-config >/dev/null")
        self.c.run("systemctl restart exposed")   # cluster settings are restart-only
        self.wait_active("exposed.service")
        self.wait_tunnel()
        # The broker claimed the demo tunnel's name in etcd, under its host.
        wait_until(f"{NAME} in etcd as {CLUSTER_HOST}'s",
                   lambda: self.etcd_tunnels().get(NAME) == CLUSTER_HOST or
                   self.etcd_tunnels(), UNIT_TIMEOUT_S)
        self.c.run("systemctl enable --now expose-mirror.service")
        self.wait_active("expose-mirror.service")    # Type=notify: after its first sync
        # Another host's tunnel appears in this host's registry, with its host.
        self.put_other_hosts_tunnel()
        host = f"{OTHER_NAME}.{DOMAIN}"
        wait_until(f"{host} mirrored into the registry", lambda: (
            self.registry_hosts().get(OTHER_NAME) == OTHER_HOST) or self.registry_hosts(),
            UNIT_TIMEOUT_S)
        code = self.curl(host, "/hello.txt")
        if code != "502":
            raise CaseFailed(f"a tunnel on unreachable host {OTHER_HOST}: {code}, want 502")
        if self.curl(f"{NAME}.{DOMAIN}", "/hello.txt") != "200":
            raise CaseFailed("the local tunnel stopped answering")
        self.put_other_hosts_tunnel(delete=True)
        wait_until(f"{host} gone from the registry",
                   lambda: OTHER_NAME not in self.registry_hosts() or self.registry_hosts(),
                   UNIT_TIMEOUT_S)
        # A stopped broker revokes its lease: its tunnels leave etcd at once.
        self.c.run("systemctl stop exposed.service exposed.socket")
        wait_until(f"{NAME} gone from etcd", lambda: NAME not in self.etcd_tunnels()
                   or self.etcd_tunnels(), UNIT_TIMEOUT_S)
        self.c.run("systemctl start exposed.socket exposed.service")
        self.wait_active("exposed.service")
        self.wait_tunnel()
        bad = [l for l in self.journal("-b -p warning -u expose-mirror.service").splitlines()
               if l.strip() and "-- No entries --" not in l]
        if bad:
            raise CaseFailed("expose-mirror warned: " + "; ".join(bad[:3]))

    # --- what a connection costs: the real unit vs a bare launcher ---

    def seconds_for(self, port, n):
        loop = (f"i=0; while [ $i -lt {n} ]; do curl -s -o /dev/null -H 'Host: nosuch.{DOMAIN}' "
                f"http://127.0.0.1:{port}/ || exit 1; i=$((i+1)); done")
        t = time.monotonic()
        self.c.run(loop, timeout=CMD_TIMEOUT_S + n)
        return time.monotonic() - t

    def bare_start(self):
        if self.is_active("bare-edge.service") == "active":
            return
        self.c.run(f"systemd-run --unit=bare-edge -p User=expose-edge -p Group=expose "
                   f"systemd-socket-activate --inetd -a -l 127.0.0.1:{BARE_PORT} "
                   f"/usr/sbin/expose-edge")
        wait_until("bare launcher listening", lambda: self.curl(
            f"nosuch.{DOMAIN}", port=BARE_PORT) == "404", UNIT_TIMEOUT_S)

    def minimal_start(self):
        """The same edge through the least Accept=yes unit there is."""
        if self.is_active("edge-minimal.socket") == "active":
            return
        self.c.write("/etc/systemd/system/edge-minimal.socket",
                     f"[Socket]\nListenStream=127.0.0.1:{MINIMAL_PORT}\nAccept=yes\n"
                     "TriggerLimitIntervalSec=0\n")
        self.c.write("/etc/systemd/system/edge-minimal@.service", self.MINIMAL)
        self.c.run("systemctl daemon-reload && systemctl start edge-minimal.socket")

    def unit_vs_bare(self, n, minimal=False):
        """ms per connection through expose.socket, the bare launcher (and
        a minimal unit), measured in alternating rounds so that the load of
        a shared machine weighs on each alike."""
        rounds = COST_ROUNDS
        unit, bare, least = [], [], []
        m = n // rounds
        for _ in range(rounds):
            unit.append(self.seconds_for(80, m) / m * 1000)
            bare.append(self.seconds_for(BARE_PORT, m) / m * 1000)
            if minimal:
                least.append(self.seconds_for(MINIMAL_PORT, m) / m * 1000)
        # The median round: a burst of load elsewhere skews one round, not all.
        med = lambda v: sorted(v)[len(v) // 2]
        return (med(unit), med(bare), med(least)) if minimal else (med(unit), med(bare))

    def cost(self):
        """What the sandbox costs per connection.  The least Accept=yes unit
        already costs about 1.7x the bare launcher here (systemd makes a
        unit, a cgroup and a journal stream per connection), so the bound
        is on what the sandbox adds to that; the ratio to the bare launcher
        is printed for make bench and the record."""
        self.bare_start()
        self.minimal_start()
        n = COST_CONNECTIONS
        unit, bare, least = self.unit_vs_bare(n, minimal=True)
        print(f"cost: {n} sequential connections each: expose.socket {unit:.1f} ms, "
              f"minimal Accept=yes unit {least:.1f} ms, systemd-socket-activate "
              f"{bare:.1f} ms; expose.socket / bare {unit / bare:.2f}, "
              f"minimal unit / bare {least / bare:.2f}, sandbox {unit / least:.2f}",
              flush=True)

    # Directives of expose@.service measured by adding each alone to a
    # unit without them (SYSTEST_DIRECTIVES=1; a drop-in, then the full set).
    DIRECTIVES = [
        ("PrivateUsers", "PrivateUsers=yes"),
        ("ProtectSystem", "ProtectSystem=strict"),
        ("ProtectHome", "ProtectHome=yes"),
        ("PrivateTmp", "PrivateTmp=yes"),
        ("PrivateDevices", "PrivateDevices=yes"),
        ("ProtectKernelTunables", "ProtectKernelTunables=yes"),
        ("ProtectKernelModules", "ProtectKernelModules=yes"),
        ("ProtectKernelLogs", "ProtectKernelLogs=yes"),
        ("ProtectControlGroups", "ProtectControlGroups=yes"),
        ("ProtectClock", "ProtectClock=yes"),
        ("ProtectHostname", "ProtectHostname=yes"),
        ("ProtectProc+ProcSubset", "ProtectProc=invisible\nProcSubset=pid"),
        ("PrivateNetwork", "PrivateNetwork=yes"),
        ("PrivateIPC", "PrivateIPC=yes"),
        ("DevicePolicy=closed", "DevicePolicy=closed"),
    ]
    # The least a unit is: the socket, a user, the journal.
    MINIMAL = ("[Unit]\nCollectMode=inactive-or-failed\n[Service]\n"
               "ExecStart=/usr/sbin/expose-edge\nStandardInput=socket\n"
               "StandardOutput=socket\nStandardError=journal\nUser=expose-edge\n"
               "Group=expose\n")

    # Directives without a namespace, added alone to a minimal unit.
    CHEAP = [
        ("StandardError=null", "StandardError=null"),
        ("IPAddressDeny=any", "IPAddressDeny=any"),
        ("SystemCallFilter", "SystemCallArchitectures=native\nSystemCallFilter=@system-service\n"
         "SystemCallFilter=~@privileged @resources\nSystemCallErrorNumber=EPERM"),
        ("RestrictAddressFamilies", "RestrictAddressFamilies=AF_UNIX"),
        ("MemoryDenyWriteExecute", "MemoryDenyWriteExecute=yes"),
        ("NoNewPrivileges+caps", "NoNewPrivileges=yes\nCapabilityBoundingSet="),
        ("RestrictNamespaces etc.", "RestrictNamespaces=yes\nRestrictRealtime=yes\n"
         "RestrictSUIDSGID=yes\nLockPersonality=yes"),
        ("RemoveIPC+KeyringMode", "RemoveIPC=yes\nKeyringMode=private"),
        ("DevicePolicy=closed", "DevicePolicy=closed"),
    ]

    # Everything the namespaces are not made of: the base all are added to.
    RESET = ("PrivateUsers=no\nProtectSystem=no\nProtectHome=no\nPrivateTmp=no\n"
             "PrivateDevices=no\nProtectKernelTunables=no\nProtectKernelModules=no\n"
             "ProtectKernelLogs=no\nProtectControlGroups=no\nProtectClock=no\n"
             "ProtectHostname=no\nProtectProc=default\nProcSubset=all\n"
             "PrivateNetwork=no\nPrivateIPC=no\nDevicePolicy=auto\n")

    def directive_costs(self):
        n = int(os.environ.get("SYSTEST_DIRECTIVE_CONNECTIONS", "60"))
        unit_file = self.c.root + "/usr/lib/systemd/system/expose@.service"
        shipped = open(unit_file).read()
        self.bare_start()

        def measure(label, body):
            with open(unit_file, "w") as f:
                f.write(body)
            self.c.run("systemctl daemon-reload")
            unit, bare = self.unit_vs_bare(n)
            print(f"directive: {label:<32} {unit:6.1f} ms, bare {bare:6.1f} ms, "
                  f"ratio {unit / bare:.2f}", flush=True)
        # the shipped unit's [Service] with the namespaces reset, then one added
        base = shipped.replace("[Service]\n", "[Service]\n", 1) + "\n" + self.RESET
        minimal = self.MINIMAL
        try:
            measure("minimal unit (no sandbox)", minimal)
            for name, line in self.CHEAP:
                measure("minimal + " + name, minimal + line + "\n")
            measure("shipped unit", shipped)
            if os.environ.get("SYSTEST_DIRECTIVES") == "all":
                measure("no namespace directive", base)
                for name, line in self.DIRECTIVES:
                    measure("+ " + name, base + line + "\n")
        finally:
            with open(unit_file, "w") as f:
                f.write(shipped)
            self.c.run("systemctl daemon-reload")

    def main(self):
        started = time.monotonic()
        self.fatal("install (make install DESTDIR)", self.install)
        self.fatal("boot systemd in systemd-nspawn", self.boot)
        self.fatal("systemd-sysusers", self.sysusers)
        self.fatal("systemd-tmpfiles --create", self.tmpfiles)
        self.fatal("expose.conf (--check-config)", self.configure)
        self.fatal("systemctl enable --now", self.enable)
        if os.environ.get("SYSTEST_ONLY") == "cost":    # make bench
            # A measurement for make bench, never a verdict: wall-clock
            # ratios on a shared machine are not a test.
            self.case("per-connection cost of the sandbox (measured)", self.cost)
            return self.finish(started)
        self.case("no warnings in the journal at start", self.journal_clean)
        self.case("a client gets a URL", self.client_url)
        self.case("sequential traffic through expose.socket", self.sequential)
        self.case("parallel traffic through expose.socket", self.parallel)
        self.case("metrics answer under the unit", self.metrics)
        self.case("stop and start exposed, traffic after", self.stop_start)
        self.case("restart exposed, traffic after", self.restart)
        self.case("reload exposed keeps the tunnel", self.reload)
        self.case("exposectl as an expose-admin member", self.admin)
        self.case("expose-admin cannot read secrets nor be an edge", self.admin_no_secrets)
        self.case("TLS socket", self.tls)
        self.case("ticket timer and service", self.tickets)
        self.case("authorized_keys applied at reload", self.authorized_keys)
        self.case("no journald prefix in a redirected stderr", self.log_prefix)
        self.case("man expose", self.man)
        self.case("systemd-analyze security <= 2.0", self.security)
        if os.environ.get("SYSTEST_DIRECTIVES"):
            self.case("per-directive costs", self.directive_costs)
        self.case("reboot: tunnels come back", self.reboot)
        self.case("a host of a cluster: etcd, the broker, expose-mirror", self.cluster)
        return self.finish(started)

    def finish(self, started):
        self.c.cleanup()
        if self.failed == 0:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"system: kept {self.work} (console logs)")
        print(f"system: wall time {time.monotonic() - started:.0f} s")
        print(f"system: {self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


if __name__ == "__main__":
    t = SystemTest(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
    try:
        rc = t.main()
    finally:
        t.c.cleanup()
    sys.exit(rc)
