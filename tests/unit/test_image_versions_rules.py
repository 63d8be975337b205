"""root.serve is recorded per version (issue 13 point 1): `root switch`,
`rollback` and a canary to a version built with serve = "nfs" give its
nodes NFS menus, to a version built with serve = "image" image menus,
whatever the config's root.serve says now; the DHCP root-path names each
node's version either way (live-boot ignores it, the NFS initrd needs it).
Staged states, no build: the menus and dhcpd.conf the steps write."""
from __future__ import annotations

import pytest
from test_image_mode_rules import HTTP, IMAGE, lab_text
from test_versions_rules import ready

from nfsroot_builder import session, versions
from nfsroot_builder.config import parse
from nfsroot_builder.doctor import run_checks
from nfsroot_builder.errors import UsageError
from nfsroot_builder.files import sha256_file
from nfsroot_builder.lab import Lab
from nfsroot_builder.lab.nodes import node_serve
from nfsroot_builder.render.menus import grub_cfg_name
from nfsroot_builder.state import State
from nfsroot_builder.steps.dhcp import DhcpServer
from nfsroot_builder.steps.image import RootImage, image_path
from nfsroot_builder.steps.node_menus import node_menu_files

from fakes import FakeRunner
from helpers import root_paths_by_node

V1, V2 = "/srv/nfsroot/lab", "/srv/nfsroot/lab.v2"


def stage(tmp_path, cfg, current: int, pins=None):
    """v1 built with serve = "nfs", v2 with serve = "image"; the context
    `root switch`/`rollback` serve with (the current version)."""
    prefix = tmp_path / "stage"
    ctx = session.make_context(cfg, prefix=prefix, runner=FakeRunner(), emit=lambda s: None, version="current")
    ready(ctx.state, 1, cfg, serve="nfs")
    ready(ctx.state, 2, cfg, serve="image")
    ctx.state.set_current(current)
    ctx.state.set_pins(pins or {})
    ctx.state.save()
    ctx = session.make_context(cfg, prefix=prefix, runner=FakeRunner(), emit=lambda s: None, version="current")
    ctx.state.set_step("kernel-to-tftp", outputs={"kernel_path": f"/lab.v{current}/vmlinuz-6.1".replace(".v1", ""),
                                                  "initrd_path": f"/lab.v{current}/initrd.img-6.1".replace(".v1", "")})
    return ctx


def menus_by_node(ctx) -> dict[str, str]:
    """Node name -> the menu the node-menus step writes for it."""
    files = node_menu_files(ctx)
    return {n.name: files[f"boot/grub/{grub_cfg_name(n)}"] for n in ctx.config.nodes}


def kind_of(menu: str) -> str:
    if "boot=live fetch=http://192.168.0.1/lab.v2/filesystem.squashfs" in menu:
        assert "nfsroot=" not in menu and "RAM image" in menu
        return "image v2"
    assert "fetch=" not in menu and "boot=live" not in menu and "/lab/vmlinuz-6.1" in menu, menu
    # nfsroot= names the served path: the staging prefix, then v1's tree.
    return "nfs v1" if f"{V1},tcp,v3" in menu and "nfsroot=192.168.0.1:/" in menu else "nfs ?"


def root_paths(ctx, tmp_path) -> dict[str, str]:
    DhcpServer().run(ctx)
    text = ctx.host(ctx.config.dhcp.config_file).read_text()
    return {n: p.rpartition(":")[2].removeprefix(f"{tmp_path}/stage")
            for n, p in root_paths_by_node(text, "isc-dhcp-server", ctx.config).items()}


@pytest.mark.parametrize("config_serve", ["image", "nfs"])
def test_switch_and_rollback_serve_each_version_as_it_was_built(tmp_path, config_serve):
    cfg = parse(lab_text(IMAGE, HTTP) if config_serve == "image" else lab_text(HTTP))
    # Rolled back (or switched) to v1, built over NFS: NFS menus, v1's root-path.
    ctx = stage(tmp_path, cfg, current=1)
    assert ctx.config.root.serve == "nfs" and ctx.config.root.path == V1
    assert {kind_of(m) for m in menus_by_node(ctx).values()} == {"nfs v1"}
    assert set(root_paths(ctx, tmp_path).values()) == {V1}
    # Switched to v2, built as an image: image menus naming v2's squashfs.
    ctx = stage(tmp_path, cfg, current=2)
    assert ctx.config.root.serve == "image" and ctx.config.root.path == V2
    assert {kind_of(m) for m in menus_by_node(ctx).values()} == {"image v2"}
    assert set(root_paths(ctx, tmp_path).values()) == {V2}


@pytest.mark.parametrize("current, pinned, kinds", [
    (1, 2, ["image v2", "nfs v1"]),    # an image canary on an NFS cluster
    (2, 1, ["nfs v1", "image v2"]),    # an NFS canary on an image cluster
])
def test_a_canary_gets_its_versions_mode_the_others_the_current_ones(tmp_path, current, pinned, kinds):
    cfg = parse(lab_text(IMAGE, HTTP))
    first, second = (n.name for n in cfg.nodes)
    ctx = stage(tmp_path, cfg, current=current, pins={first: pinned})
    got = menus_by_node(ctx)
    assert [kind_of(got[first]), kind_of(got[second])] == kinds
    paths = {1: V1, 2: V2}
    assert root_paths(ctx, tmp_path) == {first: paths[pinned], second: paths[current]}
    # The lab judges (and sizes) each node by its own version's mode.
    assert [node_serve(_Lab(ctx), n) for n in cfg.nodes] == [kinds[0][:-3].strip(), kinds[1][:-3].strip()]


class _Lab:
    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.config


def test_versions_record_the_serve_they_were_built_with(tmp_path):
    nfs, image = parse(lab_text(HTTP)), parse(lab_text(IMAGE, HTTP))
    ctx = session.make_context(nfs, prefix=tmp_path / "p", runner=FakeRunner(), emit=lambda s: None)
    assert ctx.state.versions()[1]["serve"] == "nfs"
    ready(ctx.state, 1, nfs)
    ctx.state.save()
    ctx2 = session.make_context(image, prefix=tmp_path / "p", runner=FakeRunner(), emit=lambda s: None)
    assert ctx2.version_id == 2 and ctx2.state.versions()[2]["serve"] == "image"
    # A clone for `update` is served as the version it copies; a record from before the key is NFS.
    assert versions.serve_of({}) == "nfs"
    ctx2.state.set_version(2, status="ready")
    ctx2.state.set_current(2)
    vid = versions.start_clone(ctx2, "t")
    assert ctx2.state.versions()[vid]["serve"] == "image"
    assert versions.context_for(ctx2, vid).config.root.serve == "image"
    assert versions.context_for(ctx2, 1).config.root.serve == "nfs"


def test_switch_to_an_image_version_needs_the_http_transport(tmp_path):
    cfg = parse(lab_text())   # serve = "nfs", transport = "tftp"
    ctx = stage(tmp_path, cfg, current=1)
    with pytest.raises(UsageError, match='boot.transport = "http"'):
        versions.switch(ctx, 2, [])
    with pytest.raises(UsageError, match='boot.transport = "http"'):
        versions.switch(ctx, 2, [cfg.nodes[0].name])
    assert ctx.state.current_version() == 1 and ctx.state.pins() == {}
    assert versions.switch(ctx, 1, []).startswith("current root version: v1")


# -- what was packed, and doctor's root-image check ------------------------------------

def packing_runner(sizes: list[int]) -> FakeRunner:
    """mksquashfs writes a squashfs of the next size in sizes (each pack a new image)."""
    def hook(argv):
        if argv[0] != "mksquashfs":
            return None
        with open(argv[2], "wb") as f:
            f.write(b"hsqs" + b"\0" * (sizes.pop(0) - 4))
        return 0, "", ""
    return FakeRunner(hook=hook, emit=lambda line: None)


def packed_v1(tmp_path, sizes):
    """v1 built with serve = "image": packed by the root-image step, ready, current, saved."""
    cfg = parse(lab_text(IMAGE, HTTP))
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=packing_runner(sizes), emit=lambda s: None)
    RootImage().run(ctx)
    ctx.state.set_version(1, status="ready", kernel_path="/lab/vmlinuz-6.1", initrd_path="/lab/initrd.img-6.1")
    ctx.state.set_current(1)
    ctx.state.save()
    return ctx


def test_pack_records_the_images_size_and_digest_and_verify_sees_a_cut_image(tmp_path):
    ctx = packed_v1(tmp_path, [100])
    image = image_path(ctx)
    assert ctx.state.versions()[1]["image"] == {"size": 100, "sha256": sha256_file(image)}
    assert RootImage().verify(ctx) == []
    image.write_bytes(b"hsqs" + b"\0" * 50)
    assert "is 54 bytes, 100 when it was packed" in RootImage().verify(ctx)[0]


def test_doctor_compares_the_image_nginx_serves_with_the_one_packed(tmp_path):
    ctx = packed_v1(tmp_path, [100])
    f = finding(ctx, "root-image")
    assert f.status == "ok" and f.reason == "nginx serves the image packed for v1 (0.0 MB)"
    image = image_path(ctx)
    image.write_bytes(b"hsqs" + b"\1" * 96)   # the same size, other bytes
    f = finding(ctx, "root-image")
    assert f.status == "fail" and "http://192.168.0.1/lab/filesystem.squashfs) is 100 bytes" in f.reason
    assert "not the image packed (100 bytes" in f.reason and "run root-image" in f.fix
    image.unlink()
    assert "v1: " in finding(ctx, "root-image").reason and "is missing" in finding(ctx, "root-image").reason
    # An NFS build: nothing to check.
    nfs = session.make_context(parse(lab_text()), prefix=tmp_path / "other", runner=FakeRunner(), emit=lambda s: None)
    assert finding(nfs, "root-image").status == "ok"


def test_doctor_checks_a_canarys_image_version_too(tmp_path):
    cfg = parse(lab_text(IMAGE, HTTP))
    ctx = stage(tmp_path, cfg, current=1, pins={cfg.nodes[0].name: 2})   # v2 (image) has no image file
    f = finding(ctx, "root-image")
    assert f.status == "fail" and f.reason.startswith(f"v2: {tmp_path}/stage/srv/tftp/lab/lab.v2/filesystem.squashfs is missing")


def test_lab_up_repacks_an_image_version_and_records_it(tmp_path):
    ctx = packed_v1(tmp_path, [100, 120])
    lab = Lab(session.make_context(ctx.base_config, prefix=ctx.prefix, runner=ctx.runner, emit=lambda s: None,
                                   version="current"))
    lab.install_report_unit()   # the report unit is new in v1's tree: packed again
    on_disk = State.load(ctx.state.path).versions()[1]["image"]
    assert on_disk == {"size": 120, "sha256": sha256_file(image_path(ctx))}
    assert finding(lab.ctx, "root-image").status == "ok"


def finding(ctx, name):
    return next(f for f in run_checks(ctx, only=[name]))
