"""`root list` and `root switch` with a version built in RAM-image mode
(issue 13 point 1), in-process: the mode each version was built with, and a
switch to an image version refused while the config has no HTTP transport."""
from __future__ import annotations

import json

from nfsroot_builder import config as config_mod
from nfsroot_builder import versions
from nfsroot_builder.cli import app
from nfsroot_builder.state import State

from helpers import example_text, write


def _setup(tmp_path):
    """v1 built over NFS (current), v2 built as an image; the config as the lab's example (tftp)."""
    cfg_path = write(tmp_path, example_text("lab"))
    cfg = config_mod.parse(example_text("lab"))
    prefix = tmp_path / "p"
    state = State(prefix / "var/lib/nfsroot-build" / cfg.name / "state.json")
    for vid, serve in ((2, "image"), (1, "nfs")):
        state.set_version(vid, path=versions.path_of(cfg.root.path, vid), status="ready", created=f"t{vid}",
                          digest="d", identity={"suite": cfg.root.suite}, kernel="6.12", kernel_path="/k",
                          initrd_path="/i", serve=serve)
        state.set_current(vid)
    state.save()
    return cfg_path, prefix, state.path


def test_root_list_json_names_each_versions_serve(cli, tmp_path):
    cfg_path, prefix, _state = _setup(tmp_path)
    res = cli.invoke(app, ["root", "list", "-c", str(cfg_path), "--prefix", str(prefix), "--json"])
    assert res.exit_code == 0, res.output
    assert {r["id"]: r["serve"] for r in json.loads(res.stdout)["versions"]} == {"v1": "nfs", "v2": "image"}


def test_switch_to_an_image_version_without_http_exits_2_naming_the_field(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    cfg_path, prefix, state = _setup(tmp_path)
    before = state.read_bytes()
    for extra in ([], ["--nodes", "lab1"]):
        res = cli.invoke(app, ["root", "switch", "v2", *extra, "-c", str(cfg_path), "--prefix", str(prefix)])
        assert res.exit_code == 2 and 'boot.transport = "http"' in res.output, res.output
        assert "Traceback" not in res.output
    assert state.read_bytes() == before
