"""root.serve = "image" (issue 13 point 1): the shared mm root switched to
RAM-image mode, which makes a new version (live-boot in the root, the tree
packed as a squashfs beside its kernel; kernel, initrd and image over HTTP).
n1 boots with / an overlay over the squashfs in RAM and no NFS mount; then
every daemon of the lab server is stopped, by PID, and n1's console keeps
printing its heartbeat, read from a file in its root, with its version.
The image version's dry-run is exact (test_dry_run_exact.py's comparison:
mksquashfs and the image's install announced), and doctor's root-image check
finds the image nginx serves to be the one packed, before and after `lab up`
packed it again with its report unit.
Put back afterwards (edit_config): the build's previous version is current again.
Then `root rollback` to the NFS version and `root switch` back (menus and
root-path, no boot). One node, one boot: its cost in CI is the image
version's build (a clone), the boot and three heartbeats."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import datetime
from pathlib import Path

from integration.test_dry_run_exact import differences, log_dir, performed, planned

from helpers import nfsroot_build, require
from test_lab_boot import edit_config, lab, lab_up, report_times  # noqa: F401 (fixtures)
from versions_helpers import root_list

HEARTBEAT = re.compile(r"NRB-LAB-REPORT-HEARTBEAT (\d+) (\S+)\n")
DAEMONS = {"dhcpd", "tftpd", "rpcbind", "ganesha", "nginx"}


def runs(p: dict) -> bool:
    """True while the recorded PID still runs the recorded program."""
    try:
        return os.path.basename(os.readlink(f"/proc/{p['pid']}/exe")).removesuffix(" (deleted)") \
            == os.path.basename(p["exe"])
    except OSError:
        return False


def beats(console: Path) -> list[tuple[int, str]]:
    return [(int(n), v) for n, v in HEARTBEAT.findall(console.read_text(errors="replace").replace("\r", ""))]


def root_image_check(build) -> dict:
    """doctor's root-image finding (the other checks look at the host's own files)."""
    res = nfsroot_build("doctor", "-c", build.cfg, "--prefix", build.stage, "--json")
    return next(c for c in json.loads(res.stdout)["checks"] if c["check"] == "root-image")


def wait_for_beats(console: Path, count: int, timeout: float = 20) -> list[tuple[int, str]]:
    """The heartbeats once there are count of them (one each 3 s after the
    report), or what there is after timeout seconds."""
    deadline = time.monotonic() + timeout
    while len(got := beats(console)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


def test_node_runs_from_ram_after_every_lab_daemon_is_stopped(mm, lab_up, edit_config):  # noqa: F811
    require(shutil.which("mksquashfs") is not None, "squashfs-tools not installed")
    require(shutil.which("nginx") is not None, "nginx not installed")
    # One edit for both keys: edit_config puts edits back one by one, and
    # serve = "image" without transport = "http" is refused (exit 2).
    text = mm.cfg.read_text()
    span = text[text.index('layout = "tmpfs"\n'):text.index("timeout = 0\n") + len("timeout = 0\n")]
    edit_config(mm, span, span.replace('layout = "tmpfs"\n', 'layout = "tmpfs"\nserve = "image"\n')
                .replace("timeout = 0\n", 'timeout = 0\ntransport = "http"\n'))
    args = ("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume")
    plan = planned(nfsroot_build(*args, "--dry-run", check=True).stdout)
    t0 = time.monotonic()
    res = nfsroot_build(*args, check=True)
    version = next(v for v, row in root_list(mm).items() if row["state"] == "current")
    assert version != "v1" and f"version {version} is current" in res.stderr, res.stderr
    print(f"image version {version} built in {time.monotonic() - t0:.1f} s")
    step = mm.state["steps"]["root-image"]
    image = Path(step["outputs"]["image"])
    pack = (datetime.fromisoformat(step["finished"]) - datetime.fromisoformat(step["started"])).total_seconds()
    print(f"root-image: packed in {pack:.1f} s, {image.stat().st_size / 1e6:.1f} MB ({image})")
    assert image.parent.name == f"mm.{version}" and image.read_bytes()[:4] == b"hsqs"
    # The dry-run announced the mksquashfs command and the image's install,
    # and everything else the real run did (test_dry_run_exact.py's comparison).
    assert any(line.startswith("$ mksquashfs ") for line in plan["root-image"]), plan.get("root-image")
    assert f"# install -m 644 {image.parent}/.filesystem.squashfs.new {image}" in plan["root-image"]
    real = performed(log_dir(mm.stage / "var/lib/nfsroot-build/mm"), list(plan))
    assert not differences(plan, real), "\n".join(differences(plan, real))
    menu = (mm.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-01").read_text()
    assert f"boot=live fetch=http://192.168.0.1/mm.{version}/filesystem.squashfs" in menu
    assert "nfsroot=" not in menu

    # lab up adds its report unit to the tree: the image is packed again and
    # its record follows (doctor would fail on the build's record otherwise).
    t1 = time.monotonic()
    lab_up(mm)
    check = root_image_check(mm)
    assert check["status"] == "ok" and f"the image packed for {version}" in check["reason"], check
    print(f"lab up (a repack) and doctor: {time.monotonic() - t1:.1f} s")
    procs = json.loads(lab(mm, "status", "--json").stdout)["procs"]
    daemons = [p for p in procs if not p["name"].startswith("qemu-")]
    assert DAEMONS <= {p["name"] for p in daemons}, procs
    res = lab(mm, "boot", "n1", "--keep", "--json", "--timeout", "480", check=False)
    report_times(res)
    r = {x["name"]: x for x in json.loads(res.stdout)}["n1"] if res.stdout.strip() else None
    assert r and r["ok"], (r and f"{r['problem']}\n" + "\n".join(r["tail"])) or res.stderr
    assert r["hostname"] == "n1"
    assert r["facts"]["root"].startswith("overlay,") and r["facts"]["nfs"] == "0", r["facts"]
    assert r["facts"]["version"] == version and r["facts"]["failed"] == "none", r["facts"]
    # '<client> [<time>] "GET <path> HTTP/1.1" 200 <bytes> <seconds>': the
    # whole image went to n1 over HTTP (after lab up repacked it with its report unit).
    access = (mm.stage / "var/lib/nfsroot-build/mm/lab/logs/nginx-access.log").read_text()
    got = re.findall(rf'^192\.168\.0\.101 \[[^]]+\] "GET /mm\.{version}/filesystem\.squashfs HTTP/1\.\d" '
                     r'200 (\d+) ([\d.]+)$', access, re.M)
    assert got and int(got[-1][0]) == image.stat().st_size, access
    print(f"n1 fetched {int(got[-1][0]) / 1e6:.1f} MB in {float(got[-1][1]):.1f} s; login after {r['seconds']} s")

    console = Path(r["serial_log"])
    t2 = time.monotonic()
    before = wait_for_beats(console, 1)
    assert before and before[-1][1] == version, before[-3:]
    res = lab(mm, "stop-daemons")
    assert all(name in res.stderr for name in DAEMONS), res.stderr
    assert not [p for p in daemons if runs(p)], "a lab daemon still runs"
    qemu = [p for p in json.loads(lab(mm, "status", "--json").stdout)["procs"] if p["name"] == "qemu-n1"]
    assert qemu and runs(qemu[0])
    # Three more heartbeats (9 s at least), with no server at all.
    after = wait_for_beats(console, len(before) + 3)[len(before):]
    assert len(after) >= 3 and all(v == version for _n, v in after), after
    numbers = [n for n, _v in beats(console)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers   # none lost
    assert runs(qemu[0])
    print(f"heartbeats: {len(after)} with no server, {time.monotonic() - t2:.1f} s from login")

    # Each version is served as it was built, whatever the config says now
    # (still "image"): a rollback to v1, built over NFS, gives NFS menus and
    # v1's root-path; a switch back to the image version, image menus.
    grub = mm.tftp / "boot/grub/grub.cfg-01-52-54-00-12-35-01"
    nfsroot_build("root", "rollback", "-c", mm.cfg, "--prefix", mm.stage, check=True)
    menu = grub.read_text()
    assert f"root=/dev/nfs nfsroot=192.168.0.1:{mm.root},tcp,v3" in menu and "fetch=" not in menu, menu
    assert f'option root-path "192.168.0.1:{mm.root}"' in (mm.stage / "etc/dhcp/dhcpd.conf").read_text()
    nfsroot_build("root", "switch", version, "-c", mm.cfg, "--prefix", mm.stage, check=True)
    assert f"boot=live fetch=http://192.168.0.1/mm.{version}/filesystem.squashfs" in grub.read_text()
