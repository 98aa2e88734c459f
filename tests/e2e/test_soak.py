"""Soak: 10,000 clients connect, register, serve a request and leave, in
waves.  Afterwards the registry is empty, the broker's fds are back where
they started and its memory is flat.  Release build (sanitizers' own
allocations would hide the figure); leaks are the sanitized suite's job."""
import os
import signal

import pytest

import harness

CLIENTS = int(os.environ.get("SOAK_CLIENTS", "10000"))
WAVE = 100
RSS_GROWTH_LIMIT_KIB = 1024


def broker_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wave(stack, keys):
    clients = [harness.Client(stack.tmp, stack.broker.server, stack.app.port,
                              bin_dir=stack.bin, key_dir=k, wait_url=False) for k in keys]
    for c in clients:
        c.urls.append(c.next_line())
    for c in clients:
        out = stack.raw(f"GET /hello HTTP/1.1\r\nHost: {c.host}\r\n"
                        "Connection: close\r\n\r\n".encode())
        assert out.endswith(b"hello"), out[:200]
    for c in clients:
        c.proc.send(signal.SIGINT)
    for c in clients:
        assert c.proc.proc.wait(30) == 0
        c.proc.logf.close()
        os.unlink(c.log)


@pytest.mark.release
def test_soak_10000_clients(release_stack):
    s = release_stack
    keys = [os.path.join(s.tmp, f"key-{i}") for i in range(WAVE)]
    pid = s.broker.proc.pid
    wave(s, keys)                          # warm up: caches, pools, keys made
    fds0, rss0 = broker_fds(pid), harness.proc_status(pid)["VmRSS"]
    for _ in range(CLIENTS // WAVE - 1):
        wave(s, keys)
    harness.wait_for(lambda: s.broker.rows() == [], what="an empty registry")
    fds1, rss1 = broker_fds(pid), harness.proc_status(pid)["VmRSS"]
    print(f"soak: {CLIENTS} clients in waves of {WAVE}; broker fds {fds0} -> {fds1}, "
          f"RSS {rss0} -> {rss1} KiB (peak {harness.proc_status(pid)['VmHWM']} KiB); "
          f"registry rows 0")
    assert fds1 == fds0
    assert rss1 - rss0 < RSS_GROWTH_LIMIT_KIB
