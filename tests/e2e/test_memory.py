"""Memory stays bounded: credit flow control keeps a slow reader's bytes
at the source, not in the broker or the client.  Release build: the
sanitizers' own allocations would hide what is measured here."""
import subprocess

import pytest

import harness

GIB = 1024 * 1024 * 1024
# What the broker and the client may grow by while carrying 1 GiB.
GROWTH_LIMIT_KIB = 8 * 1024
# The slow side reads at this rate: far below what the tunnel carries.
SLOW_BYTES_PER_S = 150 * 1024 * 1024


def peaks(stack, client):
    return {"broker": harness.proc_status(stack.broker.proc.pid)["VmHWM"],
            "client": harness.proc_status(client.proc.pid)["VmHWM"]}


def report(name, before, after):
    print(f"{name}: peak RSS broker {before['broker']} -> {after['broker']} KiB, "
          f"client {before['client']} -> {after['client']} KiB")
    for side in ("broker", "client"):
        assert after[side] - before[side] < GROWTH_LIMIT_KIB, side


@pytest.mark.release
def test_1gib_download_by_slow_reader(release_stack):
    s = release_stack
    c = s.expose_app()
    assert s.get(c.url + "hello") == (200, b"hello")
    before = peaks(s, c)
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                          "--limit-rate", str(SLOW_BYTES_PER_S), c.url + f"bytes?n={GIB}"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout == str(GIB)
    report("download", before, peaks(s, c))


@pytest.mark.release
def test_1gib_upload_to_slow_app(release_stack):
    s = release_stack
    c = s.expose_app()
    assert s.get(c.url + "hello") == (200, b"hello")
    before = peaks(s, c)
    gen = subprocess.Popen(["head", "-c", str(GIB), "/dev/zero"], stdout=subprocess.PIPE)
    out = subprocess.run(["curl", "-s", "-T", "-", "-H", "Content-Type: application/octet-stream",
                          c.url + f"sink?rate={SLOW_BYTES_PER_S}"],
                         stdin=gen.stdout, capture_output=True, text=True, timeout=120)
    gen.wait()
    assert f'"length":{GIB}' in out.stdout
    report("upload", before, peaks(s, c))
