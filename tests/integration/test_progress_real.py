"""Live progress and per-run logs with real processes: the Runner's line
callback, the CLI's status line on a terminal (a pty) and its plain lines
on a pipe, and one log directory per run."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from nfsroot_builder.runner import Runner

from helpers import example_text, nfsroot_build, require

SERVER_STEPS = ["--to", "nfs-exports"]
# A dhcpd that talks for a while before accepting the config (the real one is silent and quick).
CHATTY_DHCPD = 'for i in 1 2 3 4 5; do echo "parsing line $i"; sleep 0.3; done\nexec /usr/sbin/dhcpd "$@"\n'


def test_runner_hands_every_output_line_to_on_line():
    lines: list[str] = []
    res = Runner(on_line=lines.append).run(["sh", "-c", "echo one; echo two >&2; printf 'three'"])
    assert res.ok
    assert sorted(lines) == ["one\n", "three", "two\n"]


@pytest.fixture
def chatty(tmp_path):
    require(os.path.exists("/usr/sbin/dhcpd"), "isc-dhcp-server is not installed")
    cfg = tmp_path / "cluster.toml"
    cfg.write_text(example_text("seed"))
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "dhcpd").write_text("#!/bin/sh\n" + CHATTY_DHCPD)
    (bindir / "dhcpd").chmod(0o755)
    return cfg, tmp_path / "stage", {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_plain_lines_on_a_pipe_and_a_log_dir_per_run(chatty):
    cfg, stage, env = chatty
    res = nfsroot_build("all", "-c", cfg, "--prefix", stage, *SERVER_STEPS, env=env, check=True)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", res.stderr), repr(res.stderr)
    assert re.search(r"^dhcp-server: .* \[3/4\]$", res.stderr, re.M), res.stderr
    assert re.search(r"^step times:\n(  \S+ +\d+\.\ds  (changed|unchanged)\n){4}  total", res.stderr, re.M)
    logs = stage / "var/lib/nfsroot-build/kerrighed/logs"
    first = (logs / "last").resolve()
    assert "parsing line 5" in (first / "dhcp-server.log").read_text()

    nfsroot_build("run", "dhcp-server", "-c", cfg, "--prefix", stage, env=env, check=True)
    second = (logs / "last").resolve()
    runs = sorted(p.name for p in logs.iterdir() if p.name != "last")
    assert runs == sorted([first.name, second.name]) and first != second
    assert sorted(p.name for p in first.iterdir()) == ["dhcp-server.log", "nfs-exports.log",
                                                       "server-packages.log", "tftp-server.log"]
    assert sorted(p.name for p in second.iterdir()) == ["dhcp-server.log"]


def test_live_status_line_on_a_terminal(chatty):
    cfg, stage, env = chatty
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "nfsroot_builder", "all", "-c", cfg, "--prefix", stage,
                             *SERVER_STEPS], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, env={**os.environ, **env, "COLUMNS": "120", "TERM": "xterm"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    # step, N of M, seconds, the command's last output line
    assert re.search(r"dhcp-server \(3/4\) \d+s +parsing line \d", text), text
    assert "step times:" in text
