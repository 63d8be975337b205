"""`root list/diff/switch/rollback/prune --group G` (docs/groups.md): each
acts on G's root's version series, in-process on a staged copy of the lab
example (lab1: group compute on [root]; lab2: group login with its own
root), and re-renders only the menus and DHCP lines of the nodes that boot it."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import groups, versions
from nfsroot_builder.cli import app
from nfsroot_builder.state import State

from helpers import example_text, root_paths_by_node

GROUPS = ('[[group]]\nname = "compute"\n\n[[group]]\nname = "login"\n'
          'root.packages = ["iproute2", "less"]\n\n')
LOGIN = "/srv/nfsroot/lab-login"


def _versions(state: State, cfg, base: str, count: int) -> None:
    for vid in range(1, count + 1):
        tftp = versions.tftp_dir_of(cfg.name, vid)
        state.set_version(vid, path=versions.path_of(base, vid), status="ready", created=f"t{vid}", digest="d",
                          identity={"suite": cfg.root.suite}, kernel="6.12", kernel_path=f"/{tftp}/vmlinuz",
                          initrd_path=f"/{tftp}/initrd.img", tftp_dir=tftp)
        state.set_current(vid)
    state.save()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Both series with v1..v3, v3 current; the menus and DHCP as they serve that."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    path = tmp_path / "cluster.toml"
    path.write_text(example_text("lab").replace("[[node]]", GROUPS + "[[node]]", 1)
                    .replace('name = "lab1"\n', 'name = "lab1"\ngroup = "compute"\n')
                    .replace('name = "lab2"\n', 'name = "lab2"\ngroup = "login"\n'))
    cfg = config_mod.load(path)
    prefix = tmp_path / "stage"
    sdir = prefix / "var/lib/nfsroot-build" / cfg.name
    _versions(State(sdir / "state.json"), cfg, cfg.root.path, 3)
    (gr,) = groups.group_roots(cfg)
    _versions(State(groups.state_dir(sdir, gr) / "state.json"), gr.config, LOGIN, 3)
    return path, prefix, cfg, sdir, gr


def invoke(cli, setup, *args):
    path, prefix = setup[:2]
    return cli.invoke(app, [*args, "-c", str(path), "--prefix", str(prefix)])


def _menu(setup, node: int) -> str:
    _path, prefix, cfg = setup[:3]
    return (prefix / cfg.tftp.root.lstrip("/") / "boot/grub" /
            f"grub.cfg-01-{cfg.nodes[node].mac.replace(':', '-')}").read_text()


def _state(setup, gr=None) -> State:
    sdir = setup[3]
    return State.load((groups.state_dir(sdir, gr) if gr else sdir) / "state.json")


def _server_files(setup) -> dict[str, bytes]:
    """Every file the server steps wrote under the prefix but the states."""
    prefix = setup[1]
    return {str(p.relative_to(prefix)): p.read_bytes() for p in sorted(prefix.rglob("*"))
            if p.is_file() and "var/lib/nfsroot-build" not in str(p)}


def test_switch_and_rollback_of_the_login_root_touch_only_login_nodes(cli, setup):
    gr = setup[4]
    # v3 of both as served: a switch to the current version writes the menus and DHCP once.
    assert invoke(cli, setup, "root", "switch", "v3").exit_code == 0
    compute_menu, main_state = _menu(setup, 0), _state(setup).versions()
    assert f"{LOGIN}.v3," in _menu(setup, 1)
    before = _server_files(setup)

    res = invoke(cli, setup, "root", "switch", "v1", "--group", "login")
    assert res.exit_code == 0, res.output
    assert f"{gr.key}: current root version: v1" in res.output
    assert _state(setup, gr).current_version() == 1 and _state(setup, gr).previous_version() == 3
    assert _state(setup).versions() == main_state and _state(setup).current_version() == 3
    assert f"{LOGIN}," in _menu(setup, 1) and _menu(setup, 0) == compute_menu
    after = _server_files(setup)
    changed = sorted(k for k in after if before.get(k) != after[k])
    # lab2's menu and the DHCP config (its root-path); lab1's menu is the same bytes.
    assert any(k.endswith("grub.cfg-01-" + setup[2].nodes[1].mac.replace(":", "-")) for k in changed), changed
    assert not any(k.endswith(setup[2].nodes[0].mac.replace(":", "-")) for k in changed), changed
    assert "etc/dhcp/dhcpd.conf" in changed
    sent = root_paths_by_node(after["etc/dhcp/dhcpd.conf"].decode(), "isc-dhcp-server", setup[2])
    sent_before = root_paths_by_node(before["etc/dhcp/dhcpd.conf"].decode(), "isc-dhcp-server", setup[2])
    assert sent["lab2"].endswith(f"/stage{LOGIN}") and sent["lab1"] == sent_before["lab1"]

    res = invoke(cli, setup, "root", "rollback", "--group", "login")
    assert res.exit_code == 0 and f"rolled back {gr.key}" in res.output, res.output
    assert _state(setup, gr).current_version() == 3 and f"{LOGIN}.v3," in _menu(setup, 1)
    assert _menu(setup, 0) == compute_menu and _server_files(setup) == before


def test_a_canary_on_the_login_root(cli, setup):
    gr = setup[4]
    res = invoke(cli, setup, "root", "switch", "v2", "--group", "login", "--nodes", "lab2")
    assert res.exit_code == 0, res.output
    assert _state(setup, gr).pins() == {"lab2": 2} and _state(setup).pins() == {}
    menu = _menu(setup, 1)
    assert f"{LOGIN}.v2," in menu and f"/{gr.config.name}.v2/vmlinuz" in menu
    listing = json.loads(invoke(cli, setup, "root", "list", "--group", "login", "--json").stdout)
    assert {r["id"]: r["nodes"] for r in listing["versions"]} == {"v1": [], "v2": ["lab2"], "v3": []}


def test_a_group_on_the_default_root_acts_on_the_default_root(cli, setup):
    res = invoke(cli, setup, "root", "switch", "v2", "--group", "compute")
    assert res.exit_code == 0, res.output
    assert _state(setup).current_version() == 2 and _state(setup, setup[4]).current_version() == 3
    assert f"{setup[2].root.path}.v2," in _menu(setup, 0) and f"{LOGIN}.v3," in _menu(setup, 1)


def test_prune_of_the_login_root_keeps_current_previous_and_pins(cli, setup):
    gr = setup[4]
    assert invoke(cli, setup, "root", "switch", "v1", "--group", "login", "--nodes", "lab2").exit_code == 0
    res = invoke(cli, setup, "root", "prune", "--group", "login", "--keep", "1")
    # v3 current, v2 previous, v1 pinned (lab2's canary): nothing may go.
    assert res.exit_code == 1 and "refused to remove v1: node(s) lab2 are set to it" in res.output, res.output
    assert invoke(cli, setup, "root", "switch", "v3", "--group", "login", "--nodes", "lab2").exit_code == 0
    res = invoke(cli, setup, "root", "prune", "--group", "login", "--keep", "1")
    assert res.exit_code == 0 and "removed v1" in res.output, res.output
    assert sorted(_state(setup, gr).versions()) == [2, 3] and sorted(_state(setup).versions()) == [1, 2, 3]


@pytest.mark.parametrize("args, message", [
    (["root", "switch", "v1", "--group", "gpu"], "--group 'gpu': no [[group]] of that name (groups: compute, login)"),
    (["root", "switch", "v1", "--group", "login", "--nodes", "lab1"], "lab1 do(es) not boot group root"),
    (["root", "switch", "v1", "--nodes", "lab2"], "lab2 do(es) not boot the default root"),
    (["root", "switch", "v9", "--group", "login"], "no root version v9"),
    (["root", "prune", "--group", "gpu"], "no [[group]] of that name"),
    (["root", "diff", "v1", "v9", "--group", "login"], "no root version v9"),
    (["root", "list", "--group", "gpu"], "no [[group]] of that name"),
])
def test_group_usage_errors_exit_2_and_change_nothing(cli, setup, args, message):
    def files():   # but the lock files (made before the check: the default root's known gap too)
        return {p: p.read_bytes() for p in setup[1].rglob("*") if p.is_file() and p.name != "lock"}
    before = files()
    res = invoke(cli, setup, *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert files() == before


def test_rollback_without_a_previous_version_names_the_group_root(cli, setup):
    gr = setup[4]
    path = groups.state_dir(setup[3], gr) / "state.json"
    path.unlink()
    _versions(State(path), gr.config, LOGIN, 1)
    res = invoke(cli, setup, "root", "rollback", "--group", "login")
    assert res.exit_code == 2 and f"no previous root version of group root {gr.key}" in res.output, res.output


def test_update_dry_run_of_the_login_root_clones_its_current_version(cli, setup, monkeypatch):
    monkeypatch.setattr("nfsroot_builder.update._reachable", lambda url: True)   # the -security archive
    gr = setup[4]
    before = {p: p.read_bytes() for p in setup[1].rglob("*") if p.is_file()}
    res = invoke(cli, setup, "update", "--group", "login", "--dry-run")
    assert res.exit_code == 0, res.output
    assert f"# update of group root {gr.key}: v4 = a copy of v3 ({LOGIN}.v4)" in res.output
    assert f"{LOGIN}.v4" in res.output and f"{setup[2].root.path}.v4" not in res.output
    assert "then the build's nfs-exports, dhcp-server, node-menus and services serve v4" in res.output
    assert {p: p.read_bytes() for p in setup[1].rglob("*") if p.is_file()} == before
