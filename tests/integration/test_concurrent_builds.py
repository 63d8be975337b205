"""Runs at the same time: two different builds started in the same second
both succeed (they share the host's .deb cache); a second run over the same
root with another --state-dir is refused with exit 3 while the first works,
and SIGTERM stops the first with no process and no mount left behind."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from helpers import nfsroot_build
from root_builds import (
    BASE,
    installed,
    mounts_under,
    new_build,
    processes_gone,
    processes_in,
    record,
    remove_stage,
)


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nfsroot_builder", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_different_builds_started_together_both_succeed(tmp_path_factory):
    builds = [new_build(tmp_path_factory, "cc1", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub"),
              new_build(tmp_path_factory, "cc2", bootstrapper="mmdebstrap", layout="per-node", loader="ipxe",
                        packages=("iproute2", "less"))]
    try:
        t0 = time.monotonic()
        procs = [cli("all", "-c", b.cfg, "--prefix", b.stage) for b in builds]
        outputs = [p.communicate(timeout=1800) for p in procs]
        seconds = round(time.monotonic() - t0, 1)
        for b, p, (_out, err) in zip(builds, procs, outputs, strict=True):
            assert p.returncode == 0, f"{b.name}: {err[-3000:]}"
            have = {line.split("\t")[0].split(":")[0] for line in installed(b.root).splitlines()}
            assert set(BASE) <= have, b.name
            assert mounts_under(b.stage) == [] and processes_in(b.stage) == []
        assert "less" in installed(builds[1].root) and "less" not in installed(builds[0].root)
        record(tmp_path_factory, "two_builds_together", {"wall_seconds": seconds})
        print(f"two builds together: {seconds}s")
    finally:
        for b in builds:
            remove_stage(b.stage)


def test_same_root_other_state_dir_exits_3_and_sigterm_stops_everything(tmp_path_factory):
    b = new_build(tmp_path_factory, "lk", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    first_state, second_state = b.cfg.parent / "state-a", b.cfg.parent / "state-b"
    first = cli("all", "-c", b.cfg, "--prefix", b.stage, "--state-dir", first_state)
    try:
        # Wait until the bootstrapper works in the root, and a little longer
        # (apt-get and dpkg below it).
        while first.poll() is None and not any("mmdebstrap" in p for p in processes_in(b.stage)):
            time.sleep(0.1)
        assert first.poll() is None, first.communicate()[1][-3000:]
        time.sleep(5)
        second = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--state-dir", second_state)
        assert second.returncode == 3, second.stderr
        assert f"pid {first.pid}" in second.stderr and "the root" in second.stderr, second.stderr
        assert str(first_state) in second.stderr
        assert not (second_state / "state.json").exists()
        assert first.poll() is None   # the first run was not disturbed
        busy = processes_in(b.stage)
        t0 = time.monotonic()
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=120)
        stop_seconds = round(time.monotonic() - t0, 2)
        assert first.returncode == 130, err[-3000:]
        # Complete: nothing of the run is left (a process killed in the
        # middle of a write goes when the write is done) and nothing mounted.
        dying, gone_seconds = processes_gone(b.stage)
        assert processes_in(b.stage) == [], busy
        assert mounts_under(b.stage) == []
        record(tmp_path_factory, "sigterm_during_bootstrap",
               {"seconds_to_exit": stop_seconds, "processes_before": len(busy),
                "dying_after_exit": dying, "seconds_until_gone": gone_seconds})
        print(f"SIGTERM during bootstrap: exit after {stop_seconds}s, {len(busy)} processes were running, "
              f"{len(dying)} still dying at exit, gone after {gone_seconds}s")
        # The stopped bootstrap is not taken for done: --resume redoes it.
        status = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, "--state-dir", first_state,
                               "--json", check=True)
        bootstrap = next(r for r in json.loads(status.stdout)["steps"] if r["step"] == "bootstrap")
        assert bootstrap["status"] in ("interrupted", "failed"), bootstrap
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        remove_stage(b.stage)
