"""`check`, `all` and `run` share the preflight: bad input that used to pass
`check` and die later (a malformed mirror URL) stops them all before anything
is written."""
from __future__ import annotations

import pytest

from nfsroot_builder.cli import app

from helpers import snapshot, write


@pytest.mark.parametrize("command", [["check"], ["all", "--dry-run"], ["all"], ["run", "root-packages"]])
def test_malformed_mirror_stops_before_anything_is_written(cli, tmp_path, seed_text, command, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)   # a real run's root check passes; nothing may run anyway
    cfg = write(tmp_path, seed_text.replace('mirror = ""', 'mirror = "http://[::1"', 1))
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 1, res.output
    # check prints its results on stdout; all and run stop with the error on stderr
    assert "root.mirror 'http://[::1' is not a valid URL" in (res.stdout if command == ["check"] else res.stderr)
    assert not (tmp_path / "stage" / "etc").exists() and not (tmp_path / "stage" / "NFSROOT").exists()
    if command in (["check"], ["all", "--dry-run"]):
        assert snapshot(tmp_path) == before   # a real run only made its state dir's lock


def test_a_step_that_downloads_nothing_needs_no_mirror(cli, tmp_path, seed_text, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    cfg = write(tmp_path, seed_text.replace('mirror = ""', 'mirror = "http://[::1"', 1))
    res = cli.invoke(app, ["run", "tftp-server", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 0, res.output
