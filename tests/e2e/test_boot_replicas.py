"""Replicated boot servers and RAM-image mode in one lab (issue 13 points 1
and 3; docs/replicas.md, docs/image-mode.md): the shared mmdebstrap build
(GRUB, layout tmpfs) switched to root.serve = "image" over HTTP (a new
version), with Kea and a second server `b` whose tree `nfsroot-build sync`
filled. `lab up` runs both servers' daemons, each in its own namespace on
its own address, and Kea HA (load-balancing) between them. n1 boots in RAM
from server A, A's daemons are killed by PID and n1 runs on; B goes to
partner-down; two nodes booted afterwards reach login from B (n2 with its
root over NFS from B's tree, n3 with its image from B's nginx: their report
lines name B); then every daemon of both servers is stopped and n1 still
prints its heartbeat. One lab, three boots: it replaced test_boot_image.py
(one node) and the two-node replica test, which booted the same three
nodes in two labs, and proves more (an image node over a server's death,
an image from a replica, node.server).

The config is put back afterwards by test_lab_boot's edit_config fixture.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from integration.test_dry_run_exact import differences, log_dir, performed, planned

from helpers import nfsroot_build, require
from test_lab_boot import boot, edit_config, lab, lab_up, namespaces, report_times  # noqa: F401 (fixtures)
from versions_helpers import root_list

REPLICA = "192.168.0.2"
HEARTBEAT = re.compile(r"NRB-LAB-REPORT-HEARTBEAT (\d+) (\S+)\n")


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


LAST_NODE = 'ip = "192.168.0.102"\n'


def kea_log(build, server: str = "b") -> Path:
    return server_log(build, server, "kea-dhcp4.log")


def wait_for_state(build, state: str, timeout: float = 60, server: str = "b") -> float:
    """Seconds until the server's Kea logs an HA transition to state (Kea's
    HA_STATE_TRANSITION message: "server transitions from X to Y state")."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        log = kea_log(build, server)
        if log.exists() and f"to {state} state" in log.read_text(errors="replace"):
            return time.monotonic() - t0
        time.sleep(0.5)
    tail = kea_log(build, server).read_text(errors="replace").splitlines()[-15:] \
        if kea_log(build, server).exists() else []
    raise AssertionError(f"server {server}'s Kea never went to {state}:\n" + "\n".join(tail))


N3 = '\n[[node]]\nname = "n3"\nmac = "52:54:00:12:35:03"\nip = "192.168.0.103"\n'
SERVER_DAEMONS = {"kea-dhcp4", "tftpd", "nginx", "rpcbind", "ganesha"}


def server_log(build, server: str, name: str) -> Path:
    lab_dir = build.stage / f"var/lib/nfsroot-build/{build.name}/lab"
    return (lab_dir if server == "primary" else lab_dir / "servers" / server / "lab") / "logs" / name


def test_image_node_outlives_its_server_two_nodes_boot_from_the_other(mm, lab_up, edit_config, tmp_path):  # noqa: F811
    """Issue 13 point 3 in one lab: two servers, Kea HA, boot.transport
    "http", the mm root switched to RAM-image mode (a new version). n1 boots
    in image mode from A, the primary (its node.server: Kea's load-balancing
    would send it to b), A's daemons are killed and n1's heartbeat goes on;
    then n2 (a canary pinned to v1, built over NFS: the NFS-root path from a
    replica) and n3 (image) boot from B, their report lines naming B;
    last every daemon of both servers is stopped and n1 still beats. Also
    what test_boot_image.py asserted: the image version's dry-run is exact,
    doctor's root-image check, rollback/switch between the modes."""
    require(shutil.which("mksquashfs") is not None, "squashfs-tools not installed")
    require(shutil.which("nginx") is not None, "nginx not installed")
    tree = tmp_path / "b"
    # One edit: edit_config puts edits back one by one (an `all` each), and
    # serve = "image" without transport = "http" is refused (exit 2).
    text = mm.cfg.read_text()
    edit_config(mm, text, text.replace('layout = "tmpfs"\n', 'layout = "tmpfs"\nserve = "image"\n', 1)
                .replace("timeout = 0\n", 'timeout = 0\ntransport = "http"\n', 1)
                .replace(LAST_NODE, f'{LAST_NODE}{N3}\n[dhcp]\nserver = "kea"\n\n'
                                    f'[[servers]]\nname = "b"\naddress = "{REPLICA}"\ntree = "{tree}"\n', 1)
                # n1 prefers the primary: whichever server Kea's load-balancing
                # has answer it (n1's MAC hashes to b), it boots from A.
                .replace('name = "n1"\n', 'name = "n1"\nserver = "primary"\n', 1))
    args = ("all", "-c", mm.cfg, "--prefix", mm.stage, "--resume")
    plan = planned(nfsroot_build(*args, "--dry-run", check=True).stdout)
    t0 = time.monotonic()
    res = nfsroot_build(*args, check=True)
    version = next(v for v, row in root_list(mm).items() if row["state"] == "current")
    assert version != "v1" and f"version {version} is current" in res.stderr, res.stderr
    print(f"image version {version} built in {time.monotonic() - t0:.1f} s")
    step = mm.state["steps"]["root-image"]
    image = Path(step["outputs"]["image"])
    assert image.parent.name == f"mm.{version}" and image.read_bytes()[:4] == b"hsqs"
    # The dry-run announced mksquashfs and the image's install, and everything
    # else the real run did (test_dry_run_exact.py's comparison).
    assert any(line.startswith("$ mksquashfs ") for line in plan["root-image"]), plan.get("root-image")
    assert f"# install -m 644 {image.parent}/.filesystem.squashfs.new {image}" in plan["root-image"]
    real = performed(log_dir(mm.stage / "var/lib/nfsroot-build/mm"), list(plan))
    assert not differences(plan, real), "\n".join(differences(plan, real))
    grub = {n: mm.tftp / f"boot/grub/grub.cfg-01-52-54-00-12-35-0{n[1]}" for n in ("n1", "n2", "n3")}
    fetch = f"boot=live fetch=http://192.168.0.1/mm.{version}/filesystem.squashfs"
    assert fetch in grub["n1"].read_text() and "nfsroot=" not in grub["n1"].read_text()
    # Each version is served as it was built: a rollback to v1 (NFS) gives
    # NFS menus and v1's root-path, a switch back image menus.
    nfsroot_build("root", "rollback", "-c", mm.cfg, "--prefix", mm.stage, check=True)
    menu = grub["n1"].read_text()
    assert f"root=/dev/nfs nfsroot=192.168.0.1:{mm.root},tcp,v3" in menu and "fetch=" not in menu, menu
    nfsroot_build("root", "switch", version, "-c", mm.cfg, "--prefix", mm.stage, check=True)
    assert fetch in grub["n1"].read_text()
    # n2 a canary of v1: it boots / over NFS, the others the image.
    nfsroot_build("root", "switch", "v1", "--nodes", "n2", "-c", mm.cfg, "--prefix", mm.stage, check=True)
    assert "nfsroot=" in grub["n2"].read_text() and fetch in grub["n3"].read_text()

    row = json.loads(nfsroot_build("sync", "-c", mm.cfg, "--prefix", mm.stage, "--json", check=True).stdout)
    print(f"sync: {row}")
    b_menu = tree / grub["n3"].relative_to(mm.stage)
    assert fetch.replace("192.168.0.1", REPLICA) in b_menu.read_text()

    # lab up adds its report unit to the trees: the image is packed again on
    # the primary and copied to b; the record follows (doctor's check).
    t1 = time.monotonic()
    lab_up(mm)
    check = root_image_check(mm)
    assert check["status"] == "ok" and f"the image packed for {version}" in check["reason"], check
    b_image = tree / image.relative_to(mm.stage)
    assert b_image.stat().st_size == image.stat().st_size and b_image.read_bytes() == image.read_bytes()
    print(f"lab up (a repack, a copy to b) and doctor: {time.monotonic() - t1:.1f} s")
    procs = json.loads(lab(mm, "status", "--json").stdout)["procs"]
    daemons = [p for p in procs if not p["name"].startswith("qemu-")]
    for server in ("primary", "b"):
        assert SERVER_DAEMONS <= {p["name"] for p in daemons if p.get("server", "primary") == server}, procs
    print(f"HA load-balancing after {wait_for_state(mm, 'LOAD-BALANCING'):.1f} s")

    res = lab(mm, "boot", "n1", "--keep", "--json", "--timeout", "480", check=False)
    report_times(res)
    r = {x["name"]: x for x in json.loads(res.stdout)}["n1"] if res.stdout.strip() else None
    assert r and r["ok"], (r and f"{r['problem']}\n" + "\n".join(r["tail"])) or res.stderr
    assert r["hostname"] == "n1"
    assert r["facts"]["root"].startswith("overlay,") and r["facts"]["nfs"] == "0", r["facts"]
    assert r["facts"]["version"] == version and r["facts"]["failed"] == "none", r["facts"]
    # A: n1's preferred server (node.server), named by its fetch= URL.
    a, b, a_address, b_address, b_root = "primary", "b", "192.168.0.1", REPLICA, f"{tree}/srv/nfsroot/mm"
    assert r["facts"]["fetch"] == f"http://{a_address}/mm.{version}/filesystem.squashfs", r["facts"]
    # '<client> [<time>] "GET <path> HTTP/1.1" 200 <bytes> <seconds>': the whole image went to n1 from A.
    access = server_log(mm, a, "nginx-access.log").read_text()
    got = re.findall(rf'^192\.168\.0\.101 \[[^]]+\] "GET /mm\.{version}/filesystem\.squashfs HTTP/1\.\d" '
                     r'200 (\d+) ([\d.]+)$', access, re.M)
    assert got and int(got[-1][0]) == image.stat().st_size, access
    print(f"n1 fetched {int(got[-1][0]) / 1e6:.1f} MB from {a} in {float(got[-1][1]):.1f} s; "
          f"login after {r['seconds']} s")
    console = Path(r["serial_log"])
    before = wait_for_beats(console, 1)
    assert before and before[-1][1] == version, before[-3:]

    print(lab(mm, "kill-server", a).stderr.strip())
    st = json.loads(lab(mm, "status", "--json").stdout)["procs"]
    assert not [p for p in st if p.get("server", "primary") == a and p["alive"] and p["name"] != "qemu-n1"], st
    assert all(p["alive"] for p in st if p.get("server", "primary") == b), st
    print(f"{b} partner-down after {wait_for_state(mm, 'PARTNER-DOWN', server=b):.1f} s")
    after_a = wait_for_beats(console, len(before) + 1)[len(before):]
    assert after_a and all(v == version for _n, v in after_a), after_a

    res, results = boot(mm, "n2", "n3")
    report_times(res)
    assert set(results) == {"n2", "n3"}, res.stderr
    for x in results.values():
        assert x["ok"], f"{x['name']}: {x['problem']}\n" + "\n".join(x["tail"])
        assert x["hostname"] == x["name"]
    # n2, v1's canary: / over NFS from B's own copy; n3: the image from B's nginx.
    n2, n3 = results["n2"]["facts"], results["n3"]["facts"]
    assert n2["root"].startswith(f"nfs,{b_address}:{b_root}") and n2["version"] == "v1", n2
    assert n3["root"].startswith("overlay,") and n3["nfs"] == "0" and n3["version"] == version, n3
    assert n3["fetch"] == f"http://{b_address}/mm.{version}/filesystem.squashfs", n3
    assert res.returncode == 0

    # Every daemon of both servers stopped: n1 runs on, from RAM.
    t2 = time.monotonic()
    res = lab(mm, "stop-daemons")
    assert not [p for p in daemons if runs(p)], "a lab daemon still runs"
    qemu = [p for p in json.loads(lab(mm, "status", "--json").stdout)["procs"] if p["name"] == "qemu-n1"]
    assert qemu and runs(qemu[0])
    seen = len(beats(console))
    after = wait_for_beats(console, seen + 3)[seen:]
    assert len(after) >= 3 and all(v == version for _n, v in after), after
    numbers = [n for n, _v in beats(console)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers   # none lost
    assert runs(qemu[0])
    print(f"n1 heartbeats: {len(numbers)} in all, {len(after)} with no server ({time.monotonic() - t2:.1f} s)")
    # B's namespace goes with `lab down` (lab_up's teardown checks the lab's own and every PID).
    replica_ns = json.loads(lab(mm, "status", "--json").stdout)["namespace"] + "-b"
    assert replica_ns in namespaces()
    lab(mm, "down")
    assert replica_ns not in namespaces()
