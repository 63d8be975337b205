"""`nfsroot-build root diff A B` in-process: two version trees on disk
(dpkg status and /etc only), text and --json; an unknown version exits 2."""
from __future__ import annotations

import json

from nfsroot_builder import config as config_mod
from nfsroot_builder import versions
from nfsroot_builder.cli import app
from nfsroot_builder.state import State

from helpers import example_text, write


def _tree(root, probe: str, motd: str) -> None:
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        f"Package: nrb-probe\nStatus: install ok installed\nVersion: {probe}\n\n"
        "Package: base-files\nStatus: install ok installed\nVersion: 13.8\n")
    (root / "etc").mkdir()
    (root / "etc/motd").write_text(motd)


def _setup(tmp_path):
    cfg_path = write(tmp_path, example_text("lab"))
    cfg = config_mod.parse(example_text("lab"))
    prefix = tmp_path / "p"
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    for vid, probe, motd in ((1, "1.0", "hello\n"), (2, "1.1", "hello again\n")):
        path = versions.path_of(cfg.root.path, vid)
        _tree(prefix / path.lstrip("/"), probe, motd)
        state.set_version(vid, path=path, status="ready", created=f"t{vid}", digest="d",
                          identity={"suite": cfg.root.suite}, kernel="6.12", kernel_path="/k", initrd_path="/i")
        state.set_current(vid)
    state.save()
    return cfg_path, prefix


def test_root_diff_text_and_json(cli, tmp_path):
    cfg_path, prefix = _setup(tmp_path)
    res = cli.invoke(app, ["root", "diff", "v1", "v2", "-c", str(cfg_path), "--prefix", str(prefix)])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == ["  nrb-probe 1.0 -> 1.1", "~ /etc/motd"]
    res = cli.invoke(app, ["root", "diff", "2", "1", "-c", str(cfg_path), "--prefix", str(prefix), "--json"])
    out = json.loads(res.stdout)
    assert out["packages"]["downgraded"] == [{"package": "nrb-probe", "from": "1.1", "to": "1.0"}]
    assert out["etc"]["changed"] == ["/etc/motd"]
    res = cli.invoke(app, ["root", "diff", "v1", "v1", "-c", str(cfg_path), "--prefix", str(prefix)])
    assert res.stdout.strip() == "no difference in packages or /etc"


def test_root_diff_of_an_unknown_version_exits_2(cli, tmp_path):
    cfg_path, prefix = _setup(tmp_path)
    for args in (["v1", "v9"], ["v1", "latest"]):
        res = cli.invoke(app, ["root", "diff", *args, "-c", str(cfg_path), "--prefix", str(prefix)])
        assert res.exit_code == 2, (args, res.output)
