"""Fixtures: a whole stack (app, broker, edge) per test, and clients."""
import glob
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "release: runs on the release build (memory, speed)")
    print(f"e2e: starting a process costs {harness.SPAWN_MS:.1f} ms here; "
          f"deadlines are scaled by {harness.SLOWNESS:.1f}")


def pytest_collection_modifyitems(config, items):
    """pytest-timeout's per-test bound (--timeout), scaled to this machine
    like every other deadline: a hung test fails alone, a slow machine's
    test does not."""
    base = config.getoption("timeout", None)
    if not base:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(harness.scaled(float(base))))


class Stack:
    def __init__(self, tmp, bin_dir=None, domain="localhost", edge_extra=(), broker_extra=(),
                 ws_port=None):
        self.tmp = tmp
        self.bin = bin_dir or harness.BIN
        self.clients = []
        self.app = harness.App(tmp)
        self.edge_port = harness.free_port()
        self.broker = harness.Broker(tmp, domain=domain, public_port=self.edge_port,
                                     bin_dir=self.bin, extra=broker_extra, ws_port=ws_port)
        self.edge = harness.Edge(tmp, self.broker, bin_dir=self.bin, port=self.edge_port,
                                 extra=edge_extra)

    def client(self, *args, **kw):
        kw.setdefault("bin_dir", self.bin)
        server = kw.pop("server", self.broker.server)
        c = harness.Client(self.tmp, server, *args, **kw)
        self.clients.append(c)
        return c

    def expose_app(self, *args, **kw):
        """A client forwarding to the app."""
        return self.client(*args, self.app.port, **kw)

    def get(self, url, *curl_args, timeout=60):
        return harness.curl(*curl_args, url, timeout=timeout)

    def raw(self, data, **kw):
        return harness.http_raw(self.edge_port, data, **kw)

    def close(self):
        errors = []
        for c in self.clients:
            if c.proc.alive():
                c.stop()
        for name, stop in (("edge", self.edge.stop), ("broker", self.broker.stop),
                           ("app", self.app.stop)):
            try:
                stop()
            except AssertionError as e:
                errors.append(f"{name}: {e}")
        for log in glob.glob(os.path.join(self.tmp, "*.log")):
            for line in harness.sanitizer_findings(log):
                errors.append(f"{os.path.basename(log)}: {line}")
        if errors:
            raise AssertionError("\n".join(errors))


@pytest.fixture
def tmp(tmp_path):
    return str(tmp_path)


@pytest.fixture
def stack(tmp):
    s = Stack(tmp)
    yield s
    s.close()


@pytest.fixture
def release_stack(tmp):
    s = Stack(tmp, bin_dir=harness.RELEASE_BIN)
    yield s
    s.close()
