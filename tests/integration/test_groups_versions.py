"""`root switch --group login` for real (docs/groups.md): the CLI as a
process with the real runner, on the seed example with a compute group on
[root] (ssi1) and a login group with its own root (ssi2). The switch
rewrites ssi2's menu and DHCP root-path only: ssi1's menu keeps its bytes
and inode, dhcpd -t accepts the file, and dhcpd itself, started on it in a
network namespace the test makes, sends ssi1 the default root and ssi2 the
login root's v1. The versions are records only (no trees, no boot): menus
and DHCP need none."""
from __future__ import annotations

import shutil

from test_dhcp_servers import KIND_FILE, TOOL, daemon_accepts, seed_with
from test_dhcp_uefi import segment  # noqa: F401 (a fixture)
from test_versions_canary_dhcp import MACS, daemon_answers, two_versions

from nfsroot_builder import config as config_mod
from nfsroot_builder import groups, versions
from nfsroot_builder.state import State

from helpers import nfsroot_build, require

GROUPS = ('[[group]]\nname = "compute"\n\n[[group]]\nname = "login"\n'
          'root.packages = ["iproute2", "less"]\n\n')


def test_a_switch_of_the_login_root_changes_only_login_nodes(tmp_path, segment):  # noqa: F811
    kind = "isc-dhcp-server"
    require(shutil.which(TOOL[kind]) is not None, f"{TOOL[kind]} not installed")
    cfg_path, stage = tmp_path / "cluster.toml", tmp_path / "stage"
    cfg_path.write_text(seed_with(kind).replace("\n[[node]]\n", "\n" + GROUPS + "[[node]]\n", 1)
                        .replace('name = "ssi1"\n', 'name = "ssi1"\ngroup = "compute"\n')
                        .replace('name = "ssi2"\n', 'name = "ssi2"\ngroup = "login"\n'))
    cfg = config_mod.parse(cfg_path.read_text())
    two_versions(cfg, stage)                                   # [root]: v1, v2 (current)
    (gr,) = groups.group_roots(cfg)
    login_state = groups.state_dir(stage / "var/lib/nfsroot-build" / cfg.name, gr) / "state.json"
    two_versions(gr.config, stage)                             # the login root: v1, v2 (current) ...
    login_state.parent.mkdir(parents=True)
    (stage / "var/lib/nfsroot-build" / gr.config.name / "state.json").rename(login_state)   # ... in its own dir
    args = ["-c", cfg_path, "--prefix", stage]
    nfsroot_build("root", "switch", "v2", *args, check=True)   # menus and DHCP as both serve v2
    menus = stage / cfg.tftp.root.lstrip("/") / "boot/grub"
    menu = {n: menus / f"grub.cfg-01-{mac.replace(':', '-')}" for n, mac in MACS.items()}
    compute = (menu["ssi1"].read_bytes(), menu["ssi1"].stat().st_ino, menu["ssi1"].stat().st_mtime_ns)
    login_v2 = f"{stage}{versions.path_of(gr.config.root.path, 2)}"
    assert f"nfsroot={cfg.server.address}:{login_v2}," in menu["ssi2"].read_text()

    res = nfsroot_build("root", "switch", "v1", "--group", "login", *args, check=True)
    assert f"{gr.key}: current root version: v1" in res.stderr, res.stderr
    assert State.load(login_state).current_version() == 1
    assert State.load(stage / "var/lib/nfsroot-build" / cfg.name / "state.json").current_version() == 2
    assert (menu["ssi1"].read_bytes(), menu["ssi1"].stat().st_ino, menu["ssi1"].stat().st_mtime_ns) == compute
    login_v1 = f"{stage}{gr.config.root.path}"
    assert f"nfsroot={cfg.server.address}:{login_v1}," in menu["ssi2"].read_text()
    checked = daemon_accepts(kind, stage / KIND_FILE[kind], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    answers, log = daemon_answers(segment, kind, stage, tmp_path)
    assert answers["ssi1"]["root_path"] == f"192.168.0.1:{stage}{versions.path_of(cfg.root.path, 2)}", (answers, log)
    assert answers["ssi2"]["root_path"] == f"192.168.0.1:{login_v1}", (answers, log)
