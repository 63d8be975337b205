"""doctor for real: the CLI as a subprocess, the server steps written under a
staging prefix with the real dhcpd -t, each broken situation built on disk,
`doctor --fix` (real mknod, real zstd) and the check passing afterwards."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from nfsroot_builder.doctor.base import ORDER

from doctor_scenes import KERNEL, NFS_INITRD, SCENES, newc, scene_id, seed_layout
from helpers import example_text, nfsroot_build, require, snapshot


@pytest.fixture
def server(tmp_path):
    require(shutil.which("dhcpd") is not None, "isc-dhcp-server is not installed")

    def make(text: str):
        cfg = tmp_path / "cluster.toml"
        cfg.write_text(text)
        stage = tmp_path / "stage"
        nfsroot_build("all", "-c", cfg, "--prefix", stage, "--to", "nfs-exports", check=True)
        return cfg, stage
    return make


def doctor(cfg, stage, *extra):
    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--json", *extra)
    assert "Traceback" not in res.stderr
    data = json.loads(res.stdout)
    return res, {c["check"]: c for c in data["checks"]}


@pytest.mark.parametrize("scene", SCENES, ids=[scene_id(s) for s in SCENES])
def test_doctor_check_fails_fix_passes(server, scene):
    text = example_text("seed")
    cfg, stage = server(scene.config_edit(text) if scene.config_edit else text)
    res, checks = doctor(cfg, stage)
    assert res.returncode == 0, checks
    scene.build(stage, "/NFSROOT/kerrighed")
    res, checks = doctor(cfg, stage)
    c = checks[scene.check]
    assert c["status"] == scene.status and scene.words in c["reason"], c
    assert res.returncode == (1 if scene.status == "fail" else 0)
    assert c["automatic_fix"] == (not scene.manual)

    # --fix --dry-run prints and changes nothing.
    before = snapshot(stage)
    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--fix", "--dry-run")
    assert snapshot(stage) == before and "Traceback" not in res.stderr

    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--fix")
    assert "Traceback" not in res.stderr
    line = next(x for x in res.stdout.splitlines() if f" {scene.check}: " in x)
    _, checks = doctor(cfg, stage)
    if scene.manual:
        assert "manual fix:" in line and checks[scene.check]["status"] == scene.status
        assert res.returncode == 1
    else:
        assert "fixed" in line, res.stdout + res.stderr
        assert checks[scene.check]["status"] == "ok", checks[scene.check]
        assert res.returncode == 0, res.stderr


def test_seed_dev_null_in_a_real_root(server):
    """Problem (a) for real: layout "seed" exports the root's /dev, whose null
    is a plain file here; --fix makes it the character device 1,3."""
    cfg, stage = server(seed_layout(example_text("seed")))
    dev = stage / "NFSROOT/kerrighed/dev"
    dev.mkdir(parents=True)
    (dev / "null").write_text("")
    _, checks = doctor(cfg, stage)
    assert "not the character device 1,3" in checks["writable-exports"]["reason"]
    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage, "--fix")
    st = os.stat(dev / "null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3), res.stderr
    assert st.st_mode & 0o777 == 0o666
    _, checks = doctor(cfg, stage)
    assert checks["writable-exports"]["status"] == "ok"


def test_zstd_initrd_is_read(server, tmp_path):
    """Debian 12+ compresses initrds with zstd: the check reads them with the real zstd."""
    require(shutil.which("zstd") is not None, "zstd is not installed")
    cfg, stage = server(example_text("seed"))
    raw = tmp_path / "main.cpio"
    raw.write_bytes(newc(NFS_INITRD))
    subprocess.run(["zstd", "-q", "-19", str(raw), "-o", str(tmp_path / "main.zst")], check=True)
    target = stage / "srv/tftp/kerrighed" / f"initrd.img-{KERNEL}"
    target.parent.mkdir(parents=True)
    target.write_bytes(newc(["kernel"]) + (tmp_path / "main.zst").read_bytes())
    _, checks = doctor(cfg, stage)
    assert checks["initrd-nfs"]["status"] == "ok", checks["initrd-nfs"]
    raw.write_bytes(newc(["scripts/local"]))
    subprocess.run(["zstd", "-q", "-f", str(raw), "-o", str(tmp_path / "main.zst")], check=True)
    target.write_bytes((tmp_path / "main.zst").read_bytes())
    _, checks = doctor(cfg, stage)
    assert "has no scripts/nfs" in checks["initrd-nfs"]["reason"]


def test_doctor_human_output_one_line_per_check(server):
    cfg, stage = server(example_text("seed"))
    res = nfsroot_build("doctor", "-c", cfg, "--prefix", stage)
    lines = [x for x in res.stdout.splitlines() if x.split(" ", 1)[0] in ("ok", "warn", "fail")]
    n = len(ORDER)   # every registered check, in order
    assert [x.split()[1].rstrip(":") for x in lines] == list(ORDER) and res.returncode == 0
    assert res.stdout.rstrip().endswith(f"{n} checks: {n} ok, 0 warn, 0 fail")
