"""root.serve = "image" (issue 13 point 1) without a real root: the config
checks, the root-image step (its command, dry-run, verify, serve = "nfs"),
the menus' live-boot arguments, the root's packages, the initrd's contents,
the root's digest, and the lab's judge and daemon stop."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from nfsroot_builder import session, versions
from nfsroot_builder.config import parse
from nfsroot_builder.errors import ConfigError
from nfsroot_builder.lab import Lab
from nfsroot_builder.lab.nodes import NodeResult, judge, node_memory_mb
from nfsroot_builder.lab.render import FACTS_MARK, FACTS_SCRIPT
from nfsroot_builder.render import Served
from nfsroot_builder.render.menus import Images, menu_files
from nfsroot_builder.render.root import initrd_must_contain
from nfsroot_builder.steps import STEPS
from nfsroot_builder.steps.image import RootImage, image_path, image_problems, mksquashfs_argv
from nfsroot_builder.steps.packages import wanted_packages
from nfsroot_builder.steps.root_packages import wanted

from fakes import FakeRunner
from helpers import example_text

IMAGE = ('layout = "tmpfs"\n', 'layout = "tmpfs"\nserve = "image"\n')
HTTP = ("timeout = 0\n", 'timeout = 0\ntransport = "http"\n')


def lab_text(*edits) -> str:
    text = example_text("lab")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    return text


def image_config():
    return parse(lab_text(IMAGE, HTTP))


def problems(text) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return dict(e.value.problems)


def make_ctx(tmp_path, cfg, dry_run=False):
    runner = FakeRunner(emit=lambda line: None, dry_run=dry_run)
    return session.make_context(cfg, prefix=tmp_path / "stage", runner=runner, emit=lambda line: None,
                                dry_run=dry_run)


# -- config ------------------------------------------------------------------------

def test_serve_defaults_to_nfs_and_takes_image():
    assert parse(lab_text()).root.serve == "nfs"
    assert image_config().root.serve == "image"


def test_unknown_serve_names_the_field():
    got = problems(lab_text(('layout = "tmpfs"\n', 'layout = "tmpfs"\nserve = "ram"\n')))
    assert "'nfs' or 'image'" in got["root.serve"]


@pytest.mark.parametrize("layout", ["per-node", "seed"])
def test_image_mode_refuses_layouts_that_mount_nfs_after_boot(layout):
    extra = '\ninit = "sysvinit"' if layout == "seed" else ""
    got = problems(lab_text(('layout = "tmpfs"\n', f'layout = "{layout}"{extra}\nserve = "image"\n'), HTTP))
    assert set(got) == {"root.layout"}
    assert "over NFS" in got["root.layout"] and 'use layout "tmpfs" or "overlay"' in got["root.layout"]


def test_image_mode_needs_the_http_transport_in_the_same_round_as_field_errors():
    got = problems(lab_text(IMAGE, ('timeout = 0\n', 'timeout = "0"\n')))
    assert 'set boot.transport = "http"' in got["boot.transport"]
    assert "boot.timeout" in got   # the field error came in the same round


def test_image_mode_accepts_the_overlay_layout():
    cfg = parse(lab_text(('layout = "tmpfs"\n', 'layout = "overlay"\nserve = "image"\n'), HTTP))
    assert cfg.root.layout == "overlay"


def test_cli_check_exits_2_naming_the_field(tmp_path):
    from typer.testing import CliRunner

    from nfsroot_builder.cli import app
    cfg = tmp_path / "c.toml"
    cfg.write_text(lab_text(IMAGE))
    res = CliRunner().invoke(app, ["check", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2
    assert "boot.transport" in res.output
    assert not (tmp_path / "stage").exists()


# -- packages and the initrd ---------------------------------------------------------

def test_image_mode_adds_live_boot_to_the_root_and_squashfs_tools_to_the_server(tmp_path):
    nfs, image = make_ctx(tmp_path, parse(lab_text())), make_ctx(tmp_path, image_config())
    assert "live-boot" not in wanted(nfs) and "squashfs-tools" not in wanted_packages(nfs)
    assert {"live-boot", "live-boot-initramfs-tools", "busybox"} <= set(wanted(image))
    assert "squashfs-tools" in wanted_packages(image)


def test_the_initrd_must_carry_live_boot_in_image_mode():
    nfs, image = initrd_must_contain(parse(lab_text())), initrd_must_contain(image_config())
    assert not any("live" in r for r in nfs)
    assert r"scripts/live" in image and any("squashfs" in r for r in image)


def test_serve_nfs_leaves_the_roots_digest_and_image_makes_a_new_one():
    nfs = parse(lab_text())
    data = nfs.root.model_dump(mode="json")
    assert data.pop("serve") == "nfs"
    assert versions.root_digest(nfs) != versions.root_digest(image_config().model_copy(
        update={"boot": nfs.boot}))


# -- menus -------------------------------------------------------------------------

@pytest.mark.parametrize("loader", ["grub", "ipxe", "pxelinux"])
def test_menus_fetch_the_versions_image_instead_of_nfsroot(loader):
    cfg = parse(lab_text(IMAGE, HTTP, ('loader = "grub"', f'loader = "{loader}"')))
    images = Images("/lab.v2/vmlinuz-6.12", "/lab.v2/initrd.img-6.12")
    menus = menu_files(cfg, Served("/"), images)
    assert len(menus) == 2
    for text in menus.values():
        assert "boot=live fetch=http://192.168.0.1/lab.v2/filesystem.squashfs console=ttyS0,115200n8" in text
        assert "nfsroot=" not in text and "root=/dev/nfs" not in text and "nrb.layout" not in text
        assert " ip=" not in text   # live-boot would read ip= as static interface stanzas


def test_nfs_menus_are_unchanged():
    text = next(iter(menu_files(parse(lab_text()), Served("/"), Images("/lab/k", "/lab/i")).values()))
    assert "root=/dev/nfs nfsroot=192.168.0.1:/srv/nfsroot/lab,tcp,v3 ip=dhcp ro" in text
    assert "fetch=" not in text


# -- the root-image step -----------------------------------------------------------

def test_the_step_sits_after_kernel_to_tftp_before_the_menus():
    names = [s.name for s in STEPS]
    assert names.index("initramfs") < names.index("kernel-to-tftp") < names.index("root-image") \
        < names.index("node-menus")


def test_mksquashfs_is_zstd_new_image_and_leaves_kernel_and_initrd_out(tmp_path):
    argv = mksquashfs_argv(tmp_path / "root", tmp_path / "out")
    assert argv[:4] == ["mksquashfs", str(tmp_path / "root"), str(tmp_path / "out"), "-noappend"]
    assert argv[argv.index("-comp") + 1] == "zstd"
    assert argv[argv.index("-e") + 1:] == ["boot/vmlinuz-*", "boot/initrd.img-*"] and "-wildcards" in argv


def test_dry_run_prints_mksquashfs_and_the_install_and_changes_nothing(tmp_path):
    lines = []
    cfg = image_config()
    runner = FakeRunner(emit=lines.append, dry_run=True)
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=runner, emit=lines.append, dry_run=True)
    RootImage().run(ctx)
    out = image_path(ctx)
    assert out == ctx.tftp_root / "lab/filesystem.squashfs"
    assert lines[0] == f"# mkdir -p -m 755 {out.parent}"   # kernel-to-tftp makes it in a whole run
    assert lines[1].startswith(f"$ mksquashfs {ctx.root} {out.parent}/.filesystem.squashfs.new -noappend -comp zstd")
    assert f"# install -m 644 {out.parent}/.filesystem.squashfs.new {out}" in lines
    assert runner.executed == [] and not out.exists()


def fake_mksquashfs(argv):
    if argv[0] == "mksquashfs":
        with open(argv[2], "wb") as f:
            f.write(b"hsqs" + b"\0" * 92)
        return 0, "", ""
    return None


def test_run_packs_then_verify_is_clean_and_a_hand_edit_or_a_newer_initrd_is_stale(tmp_path):
    cfg = image_config()
    runner = FakeRunner(hook=fake_mksquashfs, emit=lambda line: None)
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    initrd = ctx.root / "boot/initrd.img-6.12"
    initrd.parent.mkdir(parents=True)
    initrd.write_bytes(b"initrd")
    os.utime(initrd, (1, 1))
    step = RootImage()
    assert step.verify(ctx) == [f"{image_path(ctx)} is missing"]
    res = step.run(ctx)
    assert res.changed and res.outputs == {"image": str(image_path(ctx))}
    assert [a[0] for a in runner.executed] == ["mksquashfs"]
    assert step.verify(ctx) == []
    assert (image_path(ctx).stat().st_mode & 0o777) == 0o644
    assert not list(image_path(ctx).parent.glob(".*.new"))
    assert str(image_path(ctx)) in ctx.files.record   # undo removes it
    os.utime(image_path(ctx), (10**9, 10**9))
    os.utime(initrd, (10**9 + 1, 10**9 + 1))   # the tree changed after the pack (a new initrd)
    assert "older than the root's initrd" in image_problems(ctx)[0]
    image_path(ctx).write_bytes(b"not an image")
    assert "not a squashfs" in step.verify(ctx)[0]


def test_serve_nfs_packs_nothing_and_removes_only_its_own_image(tmp_path):
    runner = FakeRunner(hook=fake_mksquashfs, emit=lambda line: None)
    ctx = session.make_context(image_config(), prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    RootImage().run(ctx)
    nfs_ctx = session.make_context(parse(lab_text()), prefix=tmp_path / "stage", runner=runner,
                                   emit=lambda line: None)
    nfs_ctx.files.undo.replace(dict(ctx.files.record))
    step = RootImage()
    assert step.fingerprint(nfs_ctx) == {}
    assert "left from" in step.verify(nfs_ctx)[0]
    assert step.run(nfs_ctx).changed and not image_path(nfs_ctx).exists()
    assert step.verify(nfs_ctx) == [] and [a[0] for a in runner.executed] == ["mksquashfs"]
    # An admin's file of that name, not recorded: left alone.
    image_path(nfs_ctx).write_bytes(b"admin")
    fresh = session.make_context(parse(lab_text()), prefix=tmp_path / "stage", runner=runner, emit=lambda line: None)
    assert not RootImage().run(fresh).changed and image_path(fresh).read_bytes() == b"admin"


# -- lab -----------------------------------------------------------------------------

class _Lab:
    """What judge reads of a lab: its config and where paths are served."""
    def __init__(self, cfg):
        self.cfg = cfg
        self.ctx = SimpleNamespace(served=Served("/"))


def judged(cfg, facts: str) -> NodeResult:
    lab = _Lab(cfg)
    node = cfg.nodes[0]
    text = f"{FACTS_MARK} {facts}\n{node.name} login: "
    res = NodeResult(node.name)
    assert judge(lab, node, text, res, root=cfg.root.path)
    return res


def test_judge_accepts_the_overlay_with_no_nfs_mount_in_image_mode():
    res = judged(image_config(), "host=lab1 root=overlay,overlay var=none nfs=0 failed=none")
    assert res.ok, res.problem


@pytest.mark.parametrize("facts, why", [
    ("root=nfs,192.168.0.1:/srv/nfsroot/lab nfs=1 failed=none", "expected live-boot's overlay"),
    ("root=overlay,overlay nfs=1 failed=none", "1 NFS mount(s)"),
])
def test_judge_refuses_an_nfs_root_or_any_nfs_mount_in_image_mode(facts, why):
    res = judged(image_config(), f"host=lab1 var=none {facts}")
    assert not res.ok and why in res.problem


def test_judge_in_nfs_mode_still_wants_the_nfs_root():
    cfg = parse(lab_text())
    assert not judged(cfg, "root=overlay,overlay nfs=0 failed=none").ok
    assert judged(cfg, "root=nfs,192.168.0.1:/srv/nfsroot/lab nfs=1 failed=none").ok


def test_the_report_counts_nfs_mounts_and_image_nodes_get_more_memory():
    assert "nfs=$nfs" in FACTS_SCRIPT and "$3 ~ /^nfs/" in FACTS_SCRIPT
    assert node_memory_mb("image") == 2048 and node_memory_mb("nfs") == 1024


def test_stop_daemons_kills_recorded_daemons_only_and_keeps_the_nodes(tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path, image_config())
    lab = Lab(ctx)
    procs = [{"name": "dhcpd", "pid": 101, "exe": "dhcpd"}, {"name": "nginx", "pid": 102, "exe": "nginx"},
             {"name": "ganesha", "pid": 103, "exe": "ganesha.nfsd"},
             {"name": "qemu-lab1", "pid": 104, "exe": "qemu-system-x86_64"}]
    lab.save({"namespace": lab.ns, "procs": procs})
    alive = {101, 102, 104}   # ganesha is already gone: not signalled, dropped from the record
    stopped = []

    def fake_stop(pids, grace, alive):
        stopped.extend(pids)

    import nfsroot_builder.lab as lab_mod
    monkeypatch.setattr(lab_mod, "stop", fake_stop)
    monkeypatch.setattr(Lab, "alive", staticmethod(lambda p: p["pid"] in alive))
    done = lab.stop_daemons()
    assert sorted(stopped) == [101, 102]
    assert done == ["dhcpd (pid 101)", "nginx (pid 102)"]
    record = json.loads(lab.record_path.read_text())
    assert record["procs"] == [procs[3]] and record["namespace"] == lab.ns
