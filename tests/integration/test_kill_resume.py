"""kill -9 of nfsroot-build at a random point of bootstrap or root-packages,
then ONE `all --resume`: the result equals an uninterrupted build of the same
config under another prefix (for bootstrap the shared `mm` build of
root_builds.py; for root-packages a debootstrap build made here, since
mmdebstrap installs the root's packages in its own apt pass and leaves
root-packages nothing to do, so nothing to kill): the same
files outside the root, the same `dpkg-query -W` inside, no policy-rc.d,
nothing mounted, no process left behind.

Each phase is repeated NRB_KILL_ROUNDS times (default 1: a round is a
partial build plus a full resume, about a minute on 2 cores, and `make test`
has a 40-minute budget; every run draws a new kill point, so CI runs add up
to many points). The random seed is printed with every failure
(NRB_KILL_SEED repeats a run; NRB_KILL_ROUNDS=5 for a longer hunt).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from helpers import nfsroot_build
from root_builds import (
    Build,
    installed,
    mounts_under,
    new_build,
    outside_root,
    processes_gone,
    processes_in,
    remove_stage,
    step_seconds,
)

ROUNDS = int(os.environ.get("NRB_KILL_ROUNDS", "1"))
SEED = int(os.environ.get("NRB_KILL_SEED", str(int(time.time()))))


CHILD = """
import sys
from nfsroot_builder.runner import Runner
# A tree that changes its user (as apt-get does: it clears PR_SET_PDEATHSIG)
# and puts one process in a session of its own.
Runner().run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
              "sleep 3001 & setsid sleep 3002 & exec sleep 3003"], contained=True)
"""


def sleepers() -> list[str]:
    return subprocess.run(["pgrep", "-f", "^sleep 300[123]$"], capture_output=True, text=True).stdout.split()


def test_a_contained_tree_dies_with_a_killed_run():
    run = subprocess.Popen([sys.executable, "-c", CHILD])
    try:
        deadline = time.monotonic() + 30
        while len(sleepers()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sleepers()) == 3
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 10
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sleepers()
    for pid in left:   # ours: started by this test
        os.kill(int(pid), signal.SIGKILL)
    assert left == []


def apt_leftovers(b: Build) -> list[str]:
    """apt's lists and cached .debs in the root (root-packages tidies them away)."""
    return sorted(str(p.relative_to(b.root)) for d in ("var/lib/apt/lists", "var/cache/apt")
                  for p in (b.root / d).rglob("*") if p.is_file())


def state_of(b: Build) -> dict:
    try:
        return b.state
    except (OSError, ValueError):
        return {}


def kill_during(b: Build, step: str, delay: float) -> dict:
    """Start `all`, wait until step is running, wait delay seconds, SIGKILL the CLI."""
    proc = subprocess.Popen([sys.executable, "-m", "nfsroot_builder", "all", "-c", b.cfg, "--prefix", b.stage],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and state_of(b).get("steps", {}).get(step, {}).get("status") != "running":
            time.sleep(0.05)
        assert proc.poll() is None, f"the build ended before {step}: {proc.stderr.read().decode()[-2000:]}"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    # The kernel sends its SIGKILLs at once (PR_SET_PDEATHSIG, the PID
    # namespace); a process in uninterruptible I/O goes when the I/O is done.
    dying, seconds = processes_gone(b.stage)
    return {"killed_in": state_of(b)["steps"].get(step, {}).get("status"),
            "dying_after_kill": dying, "seconds_until_gone": seconds,
            "processes_after_kill": processes_in(b.stage),
            "mounts_after_kill": mounts_under(b.stage),
            "policy_rc_d_after_kill": (b.root / "usr/sbin/policy-rc.d").exists()}


@pytest.fixture(scope="module")
def kd(tmp_path_factory) -> Build:
    """An uninterrupted debootstrap build: root-packages installs the root's packages there."""
    b = new_build(tmp_path_factory, "kd", bootstrapper="debootstrap", layout="tmpfs", loader="grub")
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    yield b
    remove_stage(b.stage)


BOOTSTRAPPER = {"mm": "mmdebstrap", "kd": "debootstrap"}


@pytest.mark.parametrize("step,reference", [("bootstrap", "mm"), ("root-packages", "kd")])
def test_kill_9_then_one_resume_equals_an_uninterrupted_build(step, reference, request, tmp_path_factory):
    ref: Build = request.getfixturevalue(reference)
    rng = random.Random(f"{SEED}-{step}")
    reference_files = ref.first_outside if ref.first_outside is not None else outside_root(ref)
    reference_packages = installed(ref.root)
    seconds = step_seconds(ref, step)
    for round_ in range(ROUNDS):
        b = new_build(tmp_path_factory, ref.name, bootstrapper=BOOTSTRAPPER[ref.name], layout="tmpfs",
                      loader="grub")
        delay = rng.uniform(0.05, 0.9) * seconds
        where = f"seed {SEED}, round {round_}, kill -9 {delay:.1f}s into {step} (it takes {seconds:.0f}s)"
        try:
            after_kill = kill_during(b, step, delay)
            # The children died with the run, whatever they were doing.
            assert after_kill["processes_after_kill"] == [], where
            t0 = time.monotonic()
            res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume")
            assert res.returncode == 0, f"{where}: {json.dumps(after_kill)}\n{res.stderr[-3000:]}"
            resume_seconds = time.monotonic() - t0
            assert all(s["status"] == "done" for s in b.state["steps"].values()), where
            assert installed(b.root) == reference_packages, where
            assert outside_root(b) == reference_files, where
            assert apt_leftovers(b) == apt_leftovers(ref), where
            assert not (b.root / "usr/sbin/policy-rc.d").exists(), where
            assert not (b.root / "etc/nfsroot-build/chroot-session.json").exists(), where
            assert mounts_under(b.stage) == [], where
            assert processes_in(b.stage) == [], where
            status = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
            assert {r["status"] for r in json.loads(status.stdout)["steps"]} == {"done"}, where
            print(f"{where}: killed while {after_kill['killed_in']}, {len(after_kill['dying_after_kill'])} "
                  f"processes dying, gone after {after_kill['seconds_until_gone']}s, "
                  f"{len(after_kill['mounts_after_kill'])} mounts left, resume {resume_seconds:.1f}s")
        finally:
            remove_stage(b.stage)
