"""root.serve per group (issue 13 point 1, docs/groups.md): a config with
the compute group's root in RAM-image mode and the login nodes on the NFS
default root. Each node's menu, DHCP answer, packages and steps follow the
root (and version) it boots."""
from __future__ import annotations

from test_groups_rules import ctx_for, lab_with

from nfsroot_builder import config as config_mod
from nfsroot_builder import groups, versions
from nfsroot_builder.render.server import dhcpd_block
from nfsroot_builder.state import State
from nfsroot_builder.steps.node_menus import node_menu_files
from nfsroot_builder.steps.packages import wanted_packages
from nfsroot_builder.steps.root_packages import wanted

MIXED = """
[[group]]
name = "compute"
root.serve = "image"

[[group]]
name = "login"

"""
MENU = "boot/grub/grub.cfg-01-52-54-00-12-34-0{}"


def mixed():
    """lab1: compute (its own root, image); lab2: login (the default root, NFS)."""
    return config_mod.parse(lab_with(MIXED).replace("[boot]\n", '[boot]\ntransport = "http"\n', 1))


def _ready(state: State, cfg, vid: int, serve: str) -> None:
    tftp = versions.tftp_dir_of(cfg.name, vid)
    state.set_version(vid, path=versions.path_of(cfg.root.path, vid), status="ready", created="t", digest="d",
                      identity=versions.bootstrap_identity(cfg), kernel="6.12", tftp_dir=tftp, serve=serve,
                      kernel_path=f"/{tftp}/vmlinuz-6.12", initrd_path=f"/{tftp}/initrd.img-6.12")
    state.set_current(vid)
    state.save()


def test_the_compute_group_gets_a_root_of_its_own_in_image_mode():
    cfg = mixed()
    (gr,) = groups.group_roots(cfg)
    assert (gr.groups, gr.config.root.path, gr.config.root.serve) == (("compute",), "/srv/nfsroot/lab-compute", "image")
    assert cfg.root.serve == "nfs" and [n.name for n in groups.default_nodes(cfg)] == ["lab2"]


def test_menus_of_a_mixed_config(tmp_path):
    cfg = mixed()
    ctx = ctx_for(cfg, tmp_path)
    (gr,) = groups.group_roots(cfg)
    _ready(State(groups.state_dir(ctx.state_dir, gr) / "state.json"), gr.config, 1, "image")
    files = node_menu_files(ctx)
    compute, login = files[MENU.format(1)], files[MENU.format(2)]
    url = f"http://192.168.0.1/{gr.config.name}/filesystem.squashfs"
    assert "boot=live" in compute and f"fetch={url}" in compute and "nfsroot=" not in compute
    assert f"(http,192.168.0.1)/{gr.config.name}/vmlinuz-6.12" in compute
    assert f"nfsroot=192.168.0.1:{tmp_path}/stage/srv/nfsroot/lab,tcp,v3" in login and "boot=live" not in login


def test_a_canary_follows_its_versions_serve_mode(tmp_path):
    """The compute root's v2 served over NFS (built before root.serve was
    set): lab1 pinned to it gets an NFS menu; the config's mode does not decide."""
    cfg = mixed()
    ctx = ctx_for(cfg, tmp_path)
    (gr,) = groups.group_roots(cfg)
    state = State(groups.state_dir(ctx.state_dir, gr) / "state.json")
    _ready(state, gr.config, 1, "nfs")
    _ready(state, gr.config, 2, "image")
    state.set_pins({"lab1": 1})
    state.save()
    compute = node_menu_files(ctx)[MENU.format(1)]
    assert f"nfsroot=192.168.0.1:{tmp_path}/stage/srv/nfsroot/lab-compute,tcp,v3" in compute
    assert "boot=live" not in compute
    assert groups.booted_by(ctx, gr, "lab1").serve == "nfs"
    assert groups.node_root_paths(ctx) == {"lab1": "/srv/nfsroot/lab-compute"}


def test_dhcp_of_a_mixed_config(tmp_path):
    cfg = mixed()
    ctx = ctx_for(cfg, tmp_path)
    block = dhcpd_block(cfg, ctx.served, groups.node_root_paths(ctx))
    scopes = block.split("  group {   # [[group]] ")[1:]
    compute = next(s for s in scopes if s.startswith("compute"))
    login = next(s for s in scopes if s.startswith("login"))
    # The compute group's root-path names its own root (live-boot ignores it:
    # the menu's fetch= counts); the login group's nodes keep the default one.
    assert "option root-path" in compute and "lab-compute" in compute and "host lab1 " in compute
    assert "root-path" not in login.split("  }")[0] and "host lab2 " in login


def test_only_the_image_root_gets_live_boot_and_its_root_image_step(tmp_path):
    cfg = mixed()
    ctx = ctx_for(cfg, tmp_path)
    (gr,) = groups.group_roots(cfg)
    sub = groups.context(ctx, gr, dry_run=True)
    assert "live-boot" in wanted(sub) and "live-boot" not in wanted(ctx)
    assert "root-image" in groups.ROOT_STEPS
    assert "squashfs-tools" in wanted_packages(ctx)   # mksquashfs packs the compute root's versions
    assert "squashfs-tools" not in wanted_packages(ctx_for(config_mod.parse(lab_with()), tmp_path / "nfs"))


def test_an_image_default_root_is_no_seed_for_an_nfs_group_root(tmp_path):
    text = lab_with(MIXED.replace('root.serve = "image"', 'root.packages = ["less"]'))
    text = text.replace("[boot]\n", '[boot]\ntransport = "http"\n', 1).replace("[root]\n", '[root]\nserve = "image"\n', 1)
    cfg = config_mod.parse(text)
    ctx = ctx_for(cfg, tmp_path)
    (gr,) = groups.group_roots(cfg)
    ctx.state.set_version(1, path=cfg.root.path, status="ready", created="t", digest="d",
                          identity=versions.bootstrap_identity(cfg), clone_from=None, tftp_dir="lab")
    ctx.state.set_current(1)
    assert gr.config.root.serve == "image"   # a group root takes [root]'s keys it does not set
    assert groups.seed(ctx, gr) == "/srv/nfsroot/lab"
    nfs = config_mod.parse(text.replace('root.packages = ["less"]', 'root.packages = ["less"]\nroot.serve = "nfs"'))
    (gr_nfs,) = groups.group_roots(nfs)
    assert groups.seed(ctx, gr_nfs) is None


def test_the_lab_reports_from_a_group_roots_tree_too(tmp_path):
    """`lab up` puts its report unit into each group root's tree, not only
    the default root's: a login root bootstrapped (or copied before the lab
    ran) would otherwise never report, and its node never pass."""
    from nfsroot_builder import session
    from nfsroot_builder.lab import Lab
    from nfsroot_builder.lab.render import FACTS_UNIT
    cfg = config_mod.parse(lab_with())
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state")
    (gr,) = groups.group_roots(cfg)
    _ready(State(groups.state_dir(ctx.state_dir, gr) / "state.json"), gr.config, 1, "nfs")
    login = tmp_path / "stage" / gr.config.root.path.lstrip("/")
    (login / "etc/systemd/system").mkdir(parents=True)
    lab = Lab(ctx)
    lab.install_report_unit()
    assert (login / "etc/systemd/system" / FACTS_UNIT).is_file()
    assert (login / "etc/systemd/system/multi-user.target.wants" / FACTS_UNIT).is_symlink()
    lab.remove_report_unit()
    assert not (login / "etc/systemd/system" / FACTS_UNIT).exists()
