"""The URL survives restarts: the client remembers the name it last got
for each server and target (the file "names" beside its key) and asks for
it again, says whether it got it back and if not why; --new-url opts out.
The file is local state: whatever it holds gives one warning, never a
crash."""
import os
import re
import subprocess

import pytest

import harness

SAME = "(the same URL as last time; --new-url for a new one)"


def names_file(key_dir):
    return os.path.join(key_dir, "expose", "names")


def ctl(stack, *args):
    return subprocess.run([os.path.join(stack.bin, "exposectl"), "--registry",
                           stack.broker.registry, "--socket", stack.broker.socket, *args],
                          capture_output=True, text=True, env=harness.sanitizer_env(), check=True)


def url_line(c):
    """The client's stderr line for its URL, once written (stdout's comes first)."""
    return harness.wait_in_file(c.log, rf"expose  {re.escape(c.url)} -> .*\n").group(0)


def name_of(url):
    return re.match(r"https?://([^.]+)\.", url).group(1)


def test_restart_gets_the_same_url(stack, tmp):
    keys = os.path.join(tmp, "keys")
    first = stack.expose_app(key_dir=keys)
    assert SAME not in url_line(first)
    assert first.stop() == 0
    with open(names_file(keys)) as f:
        assert f.read() == f"{stack.broker.server} localhost:{stack.app.port} " \
                           f"{name_of(first.url)}\n"
    again = stack.expose_app(key_dir=keys)
    assert again.url == first.url
    assert url_line(again) == f"expose  {again.url} -> localhost:{stack.app.port} {SAME}\n"
    assert stack.get(again.url + "hello") == (200, b"hello")


@pytest.mark.parametrize("between", ["client killed", "broker restarted"])
def test_same_url_after(stack, tmp, between):
    """Killed, its tunnel may still be up when it starts again: the same
    key takes its name over.  A restarted broker keeps the names."""
    keys = os.path.join(tmp, "keys")
    first = stack.expose_app(key_dir=keys)
    if between == "client killed":
        first.kill()
    else:
        assert first.stop() == 0
        stack.broker.stop()
        stack.broker.start()
    again = stack.expose_app(key_dir=keys)
    assert again.url == first.url and SAME in url_line(again)
    assert stack.get(again.url + "hello") == (200, b"hello")


def test_name_taken_meanwhile_says_why(stack, tmp):
    keys = os.path.join(tmp, "keys")
    first = stack.expose_app(key_dir=keys)
    name = name_of(first.url)
    assert first.stop() == 0
    # The operator frees it, and another key claims it.
    ctl(stack, "release", name)
    thief = stack.expose_app("--name", name, key_dir=os.path.join(tmp, "other"))
    assert thief.url == first.url
    again = stack.expose_app(key_dir=keys)
    assert again.url != first.url and SAME not in url_line(again)
    assert f"localhost:{stack.app.port}: not the URL of last time: the server refused its " \
           f"name (name '{name}' is taken); a new one follows" in again.text()
    assert stack.get(again.url + "hello") == (200, b"hello")
    # The new name is the one remembered now.
    assert again.stop() == 0
    third = stack.expose_app(key_dir=keys)
    assert third.url == again.url and SAME in url_line(third)


def test_new_url_opts_out(stack, tmp):
    keys = os.path.join(tmp, "keys")
    first = stack.expose_app(key_dir=keys)
    assert first.stop() == 0
    fresh = stack.expose_app("--new-url", key_dir=keys)
    assert fresh.url != first.url and SAME not in url_line(fresh)
    assert fresh.stop() == 0
    # ... and that new URL is the one remembered.
    again = stack.expose_app(key_dir=keys)
    assert again.url == fresh.url


def test_named_targets_are_not_remembered(stack, tmp):
    keys = os.path.join(tmp, "keys")
    named = stack.expose_app("--name", "chosen", key_dir=keys)
    assert named.stop() == 0
    assert not os.path.exists(names_file(keys))


def test_two_at_once_do_not_take_each_others_url(stack, tmp):
    """A second client for the same target while the first runs gets a new
    URL (the server would hand the first one's name over to the key)."""
    keys = os.path.join(tmp, "keys")
    first = stack.expose_app(key_dir=keys)
    assert first.stop() == 0
    first = stack.expose_app(key_dir=keys)
    second = stack.expose_app(key_dir=keys)
    assert second.url != first.url
    assert f"localhost:{stack.app.port}: another expose on this machine has its URL of " \
           "last time; this one gets a new URL" in second.text()
    assert first.proc.alive()
    assert stack.get(first.url + "hello") == (200, b"hello")
    assert stack.get(second.url + "hello") == (200, b"hello")
    # The second does not overwrite what the first recorded.
    assert second.stop() == 0 and first.stop() == 0
    assert name_of(first.url) in open(names_file(keys)).read()
    assert name_of(second.url) not in open(names_file(keys)).read()


HOSTILE = {
    "oversized": lambda server, target: (f"{server} {target} quiet-otter\n" * 3000).encode(),
    "binary": lambda server, target: bytes(range(256)) * 4,
    "nul": lambda server, target: f"{server} {target} quiet\0otter\n".encode(),
    "bad name": lambda server, target: f"{server} {target} ../../etc/passwd\n".encode(),
    "no newline": lambda server, target: f"{server} {target} quiet-otter".encode(),
    "two fields": lambda server, target: f"{server} quiet-otter\n".encode(),
    "escape": lambda server, target: f"{server} {target}\033[2J quiet-otter\n".encode(),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_names_file_one_warning_and_a_new_url(stack, tmp, kind):
    keys = os.path.join(tmp, "keys")
    os.makedirs(os.path.join(keys, "expose"))
    path = names_file(keys)
    with open(path, "wb") as f:
        f.write(HOSTILE[kind](stack.broker.server, f"localhost:{stack.app.port}"))
    c = stack.expose_app(key_dir=keys)
    warnings = [line for line in c.text().splitlines() if "names file" in line]
    assert len(warnings) == 1, c.text()
    assert warnings[0].startswith(f"expose: names file {path}: ")
    assert "ignoring" in warnings[0] and SAME not in url_line(c)
    assert stack.get(c.url + "hello") == (200, b"hello")
    assert c.stop() == 0
    # Replaced by what this run got.
    with open(path) as f:
        assert f.read() == f"{stack.broker.server} localhost:{stack.app.port} {name_of(c.url)}\n"


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo"])
def test_names_file_not_a_file(stack, tmp, kind):
    keys = os.path.join(tmp, "keys")
    os.makedirs(os.path.join(keys, "expose"))
    path = names_file(keys)
    if kind == "directory":
        os.mkdir(path)
    elif kind == "symlink":
        os.symlink("/etc/passwd", path)
    else:
        os.mkfifo(path)
    c = stack.expose_app(key_dir=keys)
    warnings = [line for line in c.text().splitlines() if "names file" in line]
    assert warnings and warnings[0].startswith(f"expose: names file {path}: "), c.text()
    assert stack.get(c.url + "hello") == (200, b"hello")
    assert c.stop() == 0
