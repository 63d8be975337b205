"""Root versions with real builds (issue 10, points 1, 2, 6 and 7): a changed
package list makes v2 as a clone beside v1, v1's tree unchanged (checksums
and inodes); switch, canary, rollback and prune; a suite change bootstraps
v3 from scratch; kill -9 while a version builds leaves the current one;
then one lab boot (marked e2e) shows the current version and the previous
suite's version both boot; `all --resume` finishes the killed version."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from test_dry_run_exact import assert_exact, log_dir

from helpers import nfsroot_build, require
from root_builds import config, new_build, record, remove_stage
from test_kill_resume import kill_during
from versions_helpers import checksums, root_list

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real builds)")


def menu(b, mac: str) -> str:
    return (b.tftp / f"boot/grub/grub.cfg-01-{mac.replace(':', '-')}").read_text()


@pytest.fixture(scope="module")
def ver(tmp_path_factory):
    b = new_build(tmp_path_factory, "ver", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    t0 = time.monotonic()
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["v1_seconds"] = round(time.monotonic() - t0, 1)
    yield b
    record(tmp_path_factory, "versions", b.figures)
    remove_stage(b.stage)


def test_new_package_makes_v2_beside_v1_and_switch_canary_rollback_prune(ver):
    b = ver
    v1 = root_list(b)
    assert list(v1) == ["v1"] and v1["v1"]["state"] == "current" and v1["v1"]["nodes"] == ["n1", "n2"]
    marker = b.root / "etc/nfsroot-build/bootstrap.json"
    inode = marker.stat().st_ino
    before = checksums(b.root)
    # Adding a package: a new version, cloned from v1, built beside it.
    b.cfg.write_text(config("ver", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub",
                            packages=("iproute2", "hello")))
    # Its dry-run first: nothing changes (no v2 tree, the state as it was) ...
    state_file = b.stage / "var/lib/nfsroot-build/ver/state.json"
    state_before = state_file.read_bytes()
    plan = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--dry-run", check=True).stdout
    assert state_file.read_bytes() == state_before and not (b.stage / "srv/nfsroot/ver.v2").exists()
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["v2_clone_seconds"] = round(time.monotonic() - t0, 1)
    # ... and it was exact: the later steps were planned against the tree the clone copies.
    assert_exact(plan, log_dir(state_file.parent))
    assert "version v2 is current (was v1)" in res.stderr
    v2root = b.stage / "srv/nfsroot/ver.v2"
    assert (v2root / "usr/bin/hello").exists() and not (b.root / "usr/bin/hello").exists()
    assert marker.stat().st_ino == inode and checksums(b.root) == before
    rows = root_list(b)
    assert rows["v2"]["state"] == "current" and rows["v1"]["state"] == "previous"
    assert rows["v2"]["packages"] == rows["v1"]["packages"] + 1
    assert "nfsroot=192.168.0.1:" + str(b.stage) + "/srv/nfsroot/ver.v2," in menu(b, "52:54:00:12:35:01")
    kernel = rows["v2"]["kernel"]
    assert (b.tftp / f"ver.v2/initrd.img-{kernel}").exists()
    assert (b.tftp / f"ver/initrd.img-{kernel}").exists()   # v1's stays
    ganesha = (b.stage / "etc/ganesha/nfsroot-build-ver.conf").read_text()
    assert f'Path = "{b.root}";' in ganesha and f'Path = "{v2root}";' in ganesha
    # A second run changes nothing and makes no version.
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)
    assert list(root_list(b)) == ["v1", "v2"]
    # Canary: n2 back on v1, n1 stays on v2.
    t0 = time.monotonic()
    nfsroot_build("root", "switch", "v1", "--nodes", "n2", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["switch_seconds"] = round(time.monotonic() - t0, 2)
    assert "/srv/nfsroot/ver.v2," in menu(b, "52:54:00:12:35:01")
    assert "/srv/nfsroot/ver," in menu(b, "52:54:00:12:35:02")
    assert "ver.v2" not in menu(b, "52:54:00:12:35:02")
    assert root_list(b)["v1"]["nodes"] == ["n2"]
    # Every node back on v2, then a rollback to v1.
    nfsroot_build("root", "switch", "v2", "-c", b.cfg, "--prefix", b.stage, check=True)
    t0 = time.monotonic()
    res = nfsroot_build("root", "rollback", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["rollback_seconds"] = round(time.monotonic() - t0, 2)
    rows = root_list(b)
    assert rows["v1"]["state"] == "current" and rows["v2"]["state"] == "previous"
    assert "ver.v2" not in menu(b, "52:54:00:12:35:01") and "ver.v2" not in menu(b, "52:54:00:12:35:02")
    # prune --keep 1 keeps the current and the previous version: nothing to remove.
    res = nfsroot_build("root", "prune", "--keep", "1", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert "kept v2: it is the previous version" in res.stderr and "nothing to prune" in res.stderr, res.stderr
    assert v2root.is_dir()
    assert checksums(b.root) == before


def test_suite_change_bootstraps_a_new_version_and_leaves_the_others(ver):
    b = ver
    marker = b.root / "etc/nfsroot-build/bootstrap.json"
    inode = marker.stat().st_ino
    b.cfg.write_text(config("ver", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub").replace(
        'suite = "trixie"', 'suite = "bookworm"'))
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["v3_bookworm_seconds"] = round(time.monotonic() - t0, 1)
    rows = root_list(b)
    new = max(rows, key=lambda v: int(v[1:]))
    assert rows[new]["suite"] == "bookworm" and rows[new]["state"] == "current", res.stderr
    assert marker.stat().st_ino == inode
    log = (b.stage / "var/lib/nfsroot-build/ver/logs/last/bootstrap.log").read_text()
    assert "mmdebstrap" in log and "--reflink" not in log   # from scratch, not a clone
    # prune --keep 1: v2 (trixie + hello) is neither current (v3) nor previous (v1): it goes.
    res = nfsroot_build("root", "prune", "--keep", "1", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert "removed v2" in res.stderr, res.stderr
    assert not (b.stage / "srv/nfsroot/ver.v2").exists() and not (b.tftp / "ver.v2").exists()
    assert marker.stat().st_ino == inode and sorted(root_list(b)) == ["v1", "v3"]


def test_kill_9_while_building_a_version_leaves_the_current_one(ver):
    b = ver
    before = root_list(b)
    current = next(v for v, r in before.items() if r["state"] == "current")
    current_path = before[current]["path"]
    menu_before = menu(b, "52:54:00:12:35:01")
    text = b.cfg.read_text()
    b.cfg.write_text(text.replace('packages = ["iproute2"]', 'packages = ["iproute2", "hello"]'))
    killed = kill_during(b, "root-packages", 2.0)
    assert killed["killed_in"] == "running" and not killed["processes_after_kill"], killed
    rows = root_list(b)
    new = max(rows, key=lambda v: int(v[1:]))
    assert rows[new]["state"] == "building" and rows[current]["state"] == "current", rows
    assert menu(b, "52:54:00:12:35:01") == menu_before and f"{current_path}," in menu_before
    ver.figures["killed_version"], ver.figures["current_at_kill"] = new, current


@pytest.mark.e2e
def test_after_the_kill_the_current_version_and_the_previous_suites_version_boot(ver):
    """Two acceptance lines in one `lab boot`: after the kill -9 (the test
    before), the current version (bookworm, v3) still boots, on n2; and after
    the suite change the previous version (trixie) still boots, on n1, set to
    it as a canary. Each report names its version and kernel. n1 is set back
    to the current version afterwards."""
    for tool in ("qemu-system-x86_64", "ganesha.nfsd", "rpcbind", "in.tftpd", "dhcpd"):
        require(shutil.which(tool) is not None, f"{tool} not installed")
    require(os.path.exists("/dev/net/tun"), "no /dev/net/tun")
    b = ver
    rows = root_list(b)
    new = next(v for v, r in rows.items() if r["state"] == "current")
    old = next(v for v, r in rows.items() if r["state"] == "previous")
    assert new == b.figures["current_at_kill"] and rows[b.figures["killed_version"]]["state"] == "building", rows
    assert (rows[old]["suite"], rows[new]["suite"]) == ("trixie", "bookworm"), rows
    assert rows[old]["kernel"] != rows[new]["kernel"], rows
    res = nfsroot_build("root", "switch", old, "--nodes", "n1", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert f"n1 boot {old} next; the others {new}" in res.stderr, res.stderr
    nfsroot_build("lab", "up", "-c", b.cfg, "--prefix", b.stage, check=True)
    try:
        t0 = time.monotonic()
        res = nfsroot_build("lab", "boot", "n1", "n2", "--json", "--timeout", "480", "-c", b.cfg, "--prefix", b.stage)
        b.figures["previous_and_current_boot_seconds"] = round(time.monotonic() - t0, 1)
    finally:
        nfsroot_build("lab", "down", "-c", b.cfg, "--prefix", b.stage)
    print("\n".join(line.strip() for line in res.stderr.splitlines() if "login after" in line))
    results = {r["name"]: r for r in json.loads(res.stdout or "[]")}
    for node, vid in (("n1", old), ("n2", new)):
        result = results.get(node)
        assert result and result["ok"], (node, result, res.stderr[-3000:])
        facts = result["facts"]
        assert facts["version"] == vid and facts["kernel"] == rows[vid]["kernel"], (node, facts)
        assert facts["root"] in (f"nfs,192.168.0.1:{b.stage}{rows[vid]['path']}",
                                 f"nfs4,192.168.0.1:{b.stage}{rows[vid]['path']}"), (node, facts)
    nfsroot_build("root", "switch", new, "--nodes", "n1", "-c", b.cfg, "--prefix", b.stage, check=True)
    assert root_list(b)[old]["nodes"] == [], root_list(b)


def test_resume_after_the_kill_finishes_the_version(ver):
    b = ver
    new, current = b.figures["killed_version"], b.figures["current_at_kill"]
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)
    assert f"version {new} is current (was {current})" in res.stderr, res.stderr
    rows = root_list(b)
    assert rows[new]["state"] == "current" and rows[current]["state"] == "previous"
    assert (b.stage / rows[new]["path"].lstrip("/") / "usr/bin/hello").exists()
