"""`nfsroot-build root ...` in-process (issue 10 point 2): listing, and the
usage errors that change nothing."""
from __future__ import annotations

import json

from nfsroot_builder import config as config_mod
from nfsroot_builder import versions
from nfsroot_builder.cli import app
from nfsroot_builder.state import State

from helpers import example_text, write


def _setup(tmp_path):
    cfg_path = write(tmp_path, example_text("lab"))
    cfg = config_mod.parse(example_text("lab"))
    prefix = tmp_path / "p"
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    for vid in (1, 2):
        state.set_version(vid, path=versions.path_of(cfg.root.path, vid), status="ready", created=f"t{vid}",
                          digest="d", identity={"suite": cfg.root.suite}, kernel="6.12", kernel_path="/k",
                          initrd_path="/i")
        state.set_current(vid)
    state.set_pins({cfg.nodes[0].name: 1})
    state.save()
    return cfg_path, prefix, cfg


def test_root_list_json_names_state_and_nodes(cli, tmp_path):
    cfg_path, prefix, cfg = _setup(tmp_path)
    res = cli.invoke(app, ["root", "list", "-c", str(cfg_path), "--prefix", str(prefix), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in json.loads(res.stdout)["versions"]}
    assert rows["v2"]["state"] == "current" and rows["v1"]["state"] == "previous"
    assert rows["v1"]["nodes"] == [cfg.nodes[0].name]
    assert rows["v2"]["nodes"] == [n.name for n in cfg.nodes[1:]]
    assert rows["v1"]["size"] is None and rows["v1"]["suite"] == cfg.root.suite   # no tree on disk here
    res = cli.invoke(app, ["root", "list", "-c", str(cfg_path), "--prefix", str(prefix)])
    assert res.exit_code == 0 and "v2    current" in res.stdout, res.stdout


def test_root_switch_to_an_unknown_version_exits_2_and_changes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    cfg_path, prefix, _cfg = _setup(tmp_path)
    state = prefix / "var/lib/nfsroot-build/lab/state.json"
    before = state.read_bytes()
    for args in (["switch", "v9"], ["switch", "current"], ["switch", "v1", "--nodes", "nobody"]):
        res = cli.invoke(app, ["root", *args, "-c", str(cfg_path), "--prefix", str(prefix)])
        assert res.exit_code == 2, (args, res.output)
    assert state.read_bytes() == before
