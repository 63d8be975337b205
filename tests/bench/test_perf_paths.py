"""The fast paths added for the benchmarks behave exactly like the slow ones
they replace: address validation, cross-field checks, the inputs recorded in
the state, and batched file flushing."""
from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import files as files_mod
from nfsroot_builder import session
from nfsroot_builder.errors import ConfigError
from nfsroot_builder.pipeline import Pipeline
from nfsroot_builder.steps.base import Step, StepResult

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import gen_config


@pytest.mark.parametrize("value", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.000.1", "1.2.3",
                                   "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4.5", "a.b.c.d",
                                   "1..2.3", "99.199.249.255", "100.10.1.0", "1.2.3.04"])
def test_ipv4_fast_path_matches_ipaddress(value):
    try:
        expected = str(ipaddress.IPv4Address(value))
    except ValueError:
        expected = None
    try:
        got = config_mod._ipv4(value)
    except ValueError:
        got = None
    assert got == expected


def test_cross_checks_report_as_before():
    text = gen_config.render(3).replace('ip = "10.0.0.11"', 'ip = "10.1.0.1"') \
                               .replace('ip = "10.0.0.12"', 'ip = "10.0.255.255"') \
                               .replace('ip = "10.0.0.13"', 'ip = "10.0.0.1"')
    with pytest.raises(ConfigError) as e:
        config_mod.parse(text)
    msg = str(e.value)
    assert "node[0].ip: 10.1.0.1 is not in network.subnet 10.0.0.0/16" in msg
    assert "node[1].ip: 10.0.255.255 is the network or broadcast address" in msg
    assert "node[2].ip: 10.0.0.1 is the server's own address" in msg


class Writes(Step):
    """Write a file per node (a stand-in for the per-node menus)."""
    name = "writes"

    def fingerprint(self, ctx):
        return {"nodes": [n.model_dump() for n in ctx.config.nodes], "small": "x"}

    def run(self, ctx):
        for n in ctx.config.nodes:
            ctx.files.ensure_file(ctx.host(f"/srv/menus/{n.name}"), f"{n.mac}\n")
        return StepResult()


def test_state_records_large_inputs_by_digest_and_still_says_why(tmp_path):
    cfg = config_mod.parse(gen_config.render(200))
    ctx = session.make_context(cfg, prefix=tmp_path)
    Pipeline(ctx, [Writes]).run()
    rec = json.loads(ctx.state.path.read_text())["steps"]["writes"]
    assert rec["inputs"]["small"] == "x"
    assert rec["inputs"]["nodes"].startswith("sha256:")
    assert ctx.state.path.stat().st_size < 60_000   # 200 nodes' file records, not their inputs
    cfg2 = config_mod.parse(gen_config.render(200, extra=1))
    plan = Pipeline(session.make_context(cfg2, prefix=tmp_path), [Writes]).plan()
    assert (plan[0].status, plan[0].why) == ("stale", "config changed: nodes")
    assert Pipeline(session.make_context(cfg, prefix=tmp_path), [Writes]).plan()[0].status == "done"


def test_many_files_in_one_step_are_flushed_together(tmp_path, monkeypatch):
    fsyncs, syncfs = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    real_syncfs = files_mod._syncfs
    monkeypatch.setattr(files_mod, "_syncfs", lambda d: (syncfs.append(d), real_syncfs(d))[1])
    cfg = config_mod.parse(gen_config.render(150))
    ctx = session.make_context(cfg, prefix=tmp_path)
    Pipeline(ctx, [Writes]).run()
    menus = sorted((tmp_path / "srv/menus").iterdir())
    assert len(menus) == 150
    assert menus[0].read_text() == cfg.nodes[0].mac + "\n" and (menus[0].stat().st_mode & 0o777) == 0o644
    # the first FSYNC_EACH files one by one (as before), the rest with one syncfs; the state is fsynced too
    assert len(syncfs) == 1
    assert files_mod.FSYNC_EACH <= len(fsyncs) <= files_mod.FSYNC_EACH + 4
    assert not any(p.name.startswith(".") for p in menus), "no temp files left"


def test_untracked_prefix_check_is_by_path_component(tmp_path):
    ops = files_mod.FileOps(untracked=[Path("/srv/nfsroot/lab")])
    assert ops._is_untracked(Path("/srv/nfsroot/lab"))
    assert ops._is_untracked(Path("/srv/nfsroot/lab/etc/hosts"))
    assert not ops._is_untracked(Path("/srv/nfsroot/lab.nodes/n1"))
    assert not ops._is_untracked(Path("/srv/nfsroot"))


def test_package_names_line_scan_matches_python_debian():
    import io

    from debian.deb822 import Packages

    from nfsroot_builder.packages_index import package_names
    index = (b"Package: exim4-daemon-light\nVersion: 4.97\nProvides: mail-transport-agent, exim4-localscanner-abi-1,\n"
             b" libfoo (= 1.2), bar:any\nDescription: x\n continued\n\n"
             b"Package: vim\nProvides: editor\n\n"
             b"Package: linux-image-amd64\nDepends: a | b\n\n"
             b"Package: alt\nProvides: p1 | p2, p3 [amd64], p4 <!nocheck>\n")
    expected = set()
    for para in Packages.iter_paragraphs(io.BytesIO(index), fields=["Package", "Provides"], use_apt_pkg=False):
        expected.add(para["Package"])
        for dep in para.relations.get("provides", []):
            expected.update(alt["name"] for alt in dep)
    assert package_names(index) == expected
    assert {"mail-transport-agent", "libfoo", "bar", "editor", "p1", "p2", "p3", "p4"} <= expected


def test_removed_owned_files_leave_the_record(tmp_path):
    ops = files_mod.FileOps(backup_dir=tmp_path / "backup")
    ops.ensure_file(tmp_path / "menu-a", "a\n")
    (tmp_path / "admin").write_text("mine\n")
    ops.ensure_file(tmp_path / "admin", "ours\n")          # replaced: has a backup, undo restores it
    assert set(ops.record) == {str(tmp_path / "menu-a"), str(tmp_path / "admin")}
    ops.ensure_absent(tmp_path / "menu-a")
    ops.ensure_absent(tmp_path / "admin")
    assert set(ops.record) == {str(tmp_path / "admin")}


@pytest.mark.parametrize("data", [
    {"version": 1, "steps": {}, "pending_restarts": [], "files": {}},
    {"version": 1, "steps": {"a": {"status": "done", "inputs": {"x": [1, 2]}}}, "pending_restarts": ["tftpd-hpa"],
     "files": {"/etc/x": {"kind": "block", "backup": "/b/etc/x"}, "/srv/\"q\"": {"kind": "owned", "backup": None}}},
    {"files": {"/a": {"kind": "owned", "backup": None}}},
    {"version": 1, "steps": {}},
])
def test_state_encoding_round_trips(data):
    from nfsroot_builder.state import encode
    assert json.loads(encode(data)) == data
    assert encode(data).endswith("}\n")
