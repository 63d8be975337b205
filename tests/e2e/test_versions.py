"""Root versions booted in the lab (issue 10): v1 booted on n1 and n2; a
package added makes v2 while n1 keeps running from v1 (its heartbeat, read
from a file in its root over NFS, keeps coming; v1's checksums do not
change); n2 boots v2; after `root rollback` one `lab boot` is also the
canary's: n2 (which ran v2) boots v1 again, the rollback's, while n1, pinned
to v2 (`root switch v2 --nodes n1`), boots v2; `root prune --keep 1` then
refuses v1, which n2 still runs from, naming n2's address. (The rollback's
boot and the canary's were two boots of their own, ~60 s more, until both
were asserted on one.)"""
from __future__ import annotations

import json
import re
import time

import pytest

from helpers import nfsroot_build
from root_builds import config, new_build, remove_stage
from test_lab_boot import SERVER, boot, lab, report_times
from versions_helpers import checksums, root_list

HEARTBEAT = re.compile(r"NRB-LAB-REPORT-HEARTBEAT (\d+) (\S+)")


@pytest.fixture(scope="module")
def vlab(tmp_path_factory):
    b = new_build(tmp_path_factory, "vlab", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    lab(b, "up")
    yield b
    lab(b, "down", check=False)
    remove_stage(b.stage)


def beats(b, node: str) -> list[tuple[int, str]]:
    log = b.stage / "var/lib/nfsroot-build/vlab/lab/consoles" / f"{node}.log"
    return [(int(n), v) for n, v in HEARTBEAT.findall(log.read_text(errors="replace"))]


def booted(b, res, results, node: str, version: str) -> dict:
    r = results[node]
    assert r["ok"], f"{node}: {r['problem']}\n" + "\n".join(r["tail"]) + res.stderr
    assert r["facts"]["version"] == version, r["facts"]
    path = rows_path(b, version)
    assert r["facts"]["root"] in (f"nfs,{SERVER}:{path}", f"nfs4,{SERVER}:{path}"), r["facts"]
    assert f"pass {node}: login after" in res.stderr and f"version {version}" in res.stderr
    return r


def wait_for_beats(b, node: str, count: int, timeout: float = 60) -> list[tuple[int, str]]:
    """The node's heartbeats once there are `count` of them (one every 3 s after its report line)."""
    deadline = time.monotonic() + timeout
    while len(found := beats(b, node)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(found) >= count, found
    return found


def rows_path(b, version: str) -> str:
    return str(b.stage) + root_list(b)[version]["path"]


def test_build_v2_while_v1_runs_then_boot_rollback_and_canary(vlab):
    b = vlab
    res = lab(b, "boot", "n1", "n2", "--keep", "--json", "--timeout", "480", check=False)
    results = {r["name"]: r for r in json.loads(res.stdout)}
    report_times(res)
    for node in ("n1", "n2"):
        booted(b, res, results, node, "v1")
    pkgs_v1 = int(results["n1"]["facts"]["pkgs"])
    before = checksums(b.root)
    inode = (b.root / "etc/nfsroot-build/bootstrap.json").stat().st_ino
    start = wait_for_beats(b, "n1", 2)
    assert start[-1][1] == "v1", start
    # v2: one package more, built (cloned) while n1 and n2 run from v1.
    b.cfg.write_text(config("vlab", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                            packages=("iproute2", "hello")))
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    print(f"v2 built in {time.monotonic() - t0:.1f} s while n1 ran")
    assert "version v2 is current (was v1)" in res.stderr
    during = beats(b, "n1")
    assert len(during) > len(start) and all(v == "v1" for _n, v in during), during[-5:]
    # Beats every 3 s: none lost while the build ran (numbers consecutive).
    numbers = [n for n, _v in during]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    assert checksums(b.root) == before
    assert (b.root / "etc/nfsroot-build/bootstrap.json").stat().st_ino == inode
    # n2's next boot gets v2 (n1 keeps running from v1 meanwhile).
    res, results = boot(b, "n2")
    report_times(res)
    r = booted(b, res, results, "n2", "v2")
    assert int(r["facts"]["pkgs"]) == pkgs_v1 + 1
    after_switch = beats(b, "n1")
    assert len(after_switch) > len(during) and after_switch[-1][1] == "v1"
    # Rollback (nothing rebuilt), then the canary: v2 for n1 only. One `lab
    # boot`: n2, which ran v2, boots v1 again (the rollback's), and n1 v2
    # (its pin) at the same time.
    t0 = time.monotonic()
    nfsroot_build("root", "rollback", "-c", b.cfg, "--prefix", b.stage, check=True)
    print(f"rollback in {time.monotonic() - t0:.2f} s")
    nfsroot_build("root", "switch", "v2", "--nodes", "n1", "-c", b.cfg, "--prefix", b.stage, check=True)
    res = lab(b, "boot", "n1", "n2", "--keep", "--json", "--timeout", "480", check=False)
    results = {r["name"]: r for r in json.loads(res.stdout)}
    report_times(res)
    booted(b, res, results, "n2", "v1")
    booted(b, res, results, "n1", "v2")
    assert checksums(b.root) == before
    # Prune while n2 runs from v1: v2 for every node, then v3 (one package
    # more) leaves v1 neither current nor previous nor pinned, but mounted:
    # the lab's NFS-Ganesha, asked over its DBus, names n2's address.
    nfsroot_build("root", "switch", "v2", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.cfg.write_text(config("vlab", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                            packages=("iproute2", "hello", "less")))
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert "version v3 is current (was v2)" in res.stderr
    res = nfsroot_build("root", "prune", "--keep", "1", "-c", b.cfg, "--prefix", b.stage)
    assert res.returncode == 1, res.stdout + res.stderr
    refusal = next(line for line in res.stderr.splitlines() if line.startswith("refused to remove v1: "))
    assert "192.168.0.102" in refusal, res.stderr
    assert set(root_list(b)) == {"v1", "v2", "v3"} and checksums(b.root) == before
