"""Defects found in review of what landed with issues 11 and 13 that show
through the CLI in-process (tests/unit/test_review_findings.py has the rest)."""
from __future__ import annotations

import pytest

from nfsroot_builder import pathguard
from nfsroot_builder.cli import app

from helpers import snapshot, write


@pytest.mark.parametrize("command", [["check"], ["all", "--dry-run"], ["run", "hosts", "--dry-run"]])
def test_the_disk_is_checked_once_per_run_before_anything_changes(cli, tmp_path, seed_text, command,
                                                                 monkeypatch):
    """Pipeline.check looked at the root and TFTP root on disk, and then the
    preflight it calls did the same again."""
    checked = []
    real = pathguard.check_disk
    monkeypatch.setattr(pathguard, "check_disk", lambda ctx: checked.append(ctx.config.root.path) or real(ctx))
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 0, res.output
    assert checked == ["/NFSROOT/kerrighed"]


@pytest.mark.parametrize("command", [["check"], ["all", "--dry-run"], ["run", "hosts", "--dry-run"]])
def test_a_root_that_resolves_into_the_tftp_root_is_still_refused_by_every_command(cli, tmp_path, seed_text,
                                                                                   command):
    cfg = write(tmp_path, seed_text)
    (tmp_path / "stage/srv/tftp/nested").mkdir(parents=True)
    (tmp_path / "stage/NFSROOT").mkdir(parents=True)
    (tmp_path / "stage/NFSROOT/kerrighed").symlink_to(tmp_path / "stage/srv/tftp/nested")
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2 and "root.path: on disk:" in res.stderr and "inside tftp.root" in res.stderr
    assert snapshot(tmp_path) == before
