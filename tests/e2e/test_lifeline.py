"""EXPOSE_LIFELINE (lib/lifeline.c) and tests/lifeline: what keeps a killed
test run from leaving clients behind that retry a dead broker forever."""
import os
import signal
import subprocess
import sys

import harness

# A parent that starts `expose` (retrying a server nothing listens on, so it
# would live forever) with its stderr in a file, says the child's pid, and
# waits to be killed.
PARENT = """
import os, subprocess, sys
env = dict(os.environ, EXPOSE_LIFELINE=str(os.getpid()))
child = subprocess.Popen(sys.argv[2:], env=env, stderr=open(sys.argv[1], "ab"))
print(child.pid, flush=True)
child.wait()
"""


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_program_dies_with_the_parent_that_named_itself(tmp):
    argv = [os.path.join(harness.BIN, "expose"), "--server",
            f"ws://127.0.0.1:{harness.free_port()}", "3000"]
    env = dict(harness.sanitizer_env(), XDG_CONFIG_HOME=tmp)
    log = os.path.join(tmp, "expose.log")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, log, *argv], env=env,
                              stdout=subprocess.PIPE)
    try:
        child = int(harness.read_line(parent.stdout))
        # Past its start (and its own check that the parent lives): retrying.
        harness.wait_in_file(log, r"cannot reach ws://")
        assert not gone(child)
        parent.send_signal(signal.SIGKILL)       # as a killed test run would be
        parent.wait()
        harness.wait_for(lambda: gone(child), what=f"expose (pid {child}) to die with its parent")
    finally:
        parent.kill()
        parent.wait()


def test_a_program_whose_parent_is_already_gone_exits_at_once(tmp):
    # Another process's pid: the parent it names is not its own.
    env = dict(harness.sanitizer_env(), XDG_CONFIG_HOME=tmp, EXPOSE_LIFELINE=str(os.getppid()))
    out = subprocess.run([os.path.join(harness.BIN, "expose"), "--server",
                          f"ws://127.0.0.1:{harness.free_port()}", "3000"],
                         env=env, capture_output=True, timeout=harness.scaled(20))
    assert out.returncode == 1 and out.stderr == b""


def test_the_wrapper_says_how_to_use_it():
    out = subprocess.run([harness.LIFELINE], capture_output=True, text=True,
                         timeout=harness.scaled(20))
    assert out.returncode == 64
    assert out.stderr == "usage: lifeline PROGRAM [ARG...]\n"
    out = subprocess.run([harness.LIFELINE, "/nonexistent/program"], capture_output=True,
                         text=True, timeout=harness.scaled(20))
    assert out.returncode == 127
    assert out.stderr == "lifeline: /nonexistent/program: No such file or directory\n"
