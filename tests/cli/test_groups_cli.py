"""Node groups from the command line (docs/groups.md), in-process on a copy
of the lab example with a compute and a login group: node add/set/list
--group, status and root list sections, `run STEP --group`."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.cli import app

from helpers import example_text

GROUPS = ('[[group]]\nname = "compute"\n\n[[group]]\nname = "login"\n'
          'root.packages = ["iproute2", "less"]\n\n')


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(example_text("lab").replace("[[node]]", GROUPS + "[[node]]", 1)
                    .replace('name = "lab2"\n', 'name = "lab2"\ngroup = "login"\n'))
    return path


def invoke(cli, cfg, *args):
    return cli.invoke(app, [*args, "-c", str(cfg), "--prefix", str(cfg.parent / "stage")])


def test_node_add_set_and_list_with_groups(cli, cfg):
    res = invoke(cli, cfg, "node", "add", "c1", "--mac", "52:54:00:aa:00:01", "--group", "compute")
    assert res.exit_code == 0, res.output
    assert invoke(cli, cfg, "node", "set", "lab1", "--group", "login").exit_code == 0
    rows = json.loads(cli.invoke(app, ["node", "list", "-c", str(cfg), "--json"]).stdout)
    assert [(r["name"], r["group"]) for r in rows] == [("lab1", "login"), ("lab2", "login"), ("c1", "compute")]
    text = cli.invoke(app, ["node", "list", "-c", str(cfg)]).stdout
    assert text.splitlines()[0].split() == ["name", "mac", "ip", "firmware", "group"]


def test_node_add_with_an_unknown_group_exits_2_and_leaves_the_file(cli, cfg):
    before = cfg.read_bytes()
    res = invoke(cli, cfg, "node", "add", "c1", "--mac", "52:54:00:aa:00:01", "--group", "gpu")
    assert res.exit_code == 2 and "node[2].group: no [[group]] named 'gpu' (groups: compute, login)" in res.output
    assert cfg.read_bytes() == before


def test_status_and_root_list_show_the_group_root(cli, cfg):
    st = json.loads(invoke(cli, cfg, "status", "--json").stdout)
    (login,) = st["group_roots"]
    assert (login["group_root"], login["groups"], login["path"]) == \
        ("srv-nfsroot-lab-login", ["login"], "/srv/nfsroot/lab-login")
    assert login["steps"][0]["step"] == "bootstrap" and login["steps"][-1]["step"] == "root-image"
    assert {s["status"] for s in login["steps"]} == {"pending"}
    assert "group root srv-nfsroot-lab-login (groups: login)" in invoke(cli, cfg, "status").stdout
    listing = json.loads(invoke(cli, cfg, "root", "list", "--json").stdout)
    assert listing == {"versions": [], "group_roots": [{"group_root": "srv-nfsroot-lab-login", "groups": ["login"],
                                                        "path": "/srv/nfsroot/lab-login", "versions": []}]}


def test_run_a_root_step_on_one_groups_root(cli, cfg):
    res = invoke(cli, cfg, "run", "hosts", "--group", "login", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "/srv/nfsroot/lab-login/etc/hosts" in res.stdout and "/srv/nfsroot/lab/etc/hosts" not in res.stdout
    res = invoke(cli, cfg, "run", "hosts", "--group", "compute", "--dry-run")
    assert "/srv/nfsroot/lab/etc/hosts" in res.stdout and "lab-login" not in res.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "dhcp-server", "--group", "login"], "'dhcp-server' is not a root step"),
    (["run", "hosts", "--group", "gpu"], "--group 'gpu': no [[group]] of that name"),
])
def test_run_group_usage_errors_exit_2(cli, cfg, args, message):
    res = invoke(cli, cfg, *args, "--dry-run")
    assert res.exit_code == 2 and message in res.output, res.output


def test_a_config_without_groups_lists_as_before(cli, tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(example_text("lab"))
    assert json.loads(invoke(cli, path, "root", "list", "--json").stdout) == {"versions": []}
    assert "group_roots" not in json.loads(invoke(cli, path, "status", "--json").stdout)
    assert config_mod.load(path).group == []


def test_every_roots_preflight_runs_before_the_first_change(cli, cfg, monkeypatch):
    """A package [root] names that the suite lacks stops `all` before the
    login root (built first) is touched."""
    from nfsroot_builder import packages_index
    from nfsroot_builder.steps.root_packages import wanted
    monkeypatch.setattr(packages_index, "available",
                        lambda ctx: {p.split(":")[0] for p in wanted(ctx)} - {"nosuchpkg"})
    cfg.write_text(cfg.read_text().replace("packages = []", 'packages = ["nosuchpkg"]', 1))
    res = invoke(cli, cfg, "all", "--dry-run")
    assert res.exit_code != 0 and "nosuchpkg" in res.output, res.output
    assert "### step" not in res.output
