"""The CLI in-process (typer's CliRunner) with the guard on (no real process, no socket):
exit codes, where output goes, and that bad input changes nothing."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nfsroot_builder import packages_index
from nfsroot_builder.cli import app
from nfsroot_builder.steps.root_packages import wanted

from helpers import write


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_init_prints_the_seed_example(cli):
    res = cli.invoke(app, ["init"])
    assert res.exit_code == 0 and 'path = "/NFSROOT/kerrighed"' in res.stdout
    assert cli.invoke(app, ["init", "--example", "lab"]).exit_code == 0
    assert cli.invoke(app, ["init", "--example", "nope"]).exit_code == 2


def test_list(cli):
    res = cli.invoke(app, ["list"])
    assert res.exit_code == 0 and "dhcp-server" in res.stdout and res.stdout.rstrip().endswith(
        "Restart the services whose configuration changed (the seed's last server step).")


@pytest.fixture
def suite(monkeypatch, seed_config):
    """The suite's package names without the mirror: exactly what the seed
    config's root asks for. (The real lookup fetches the Release file and the
    Packages index over HTTP; the socket guard fails any test that tries.)"""
    names = {p.split(":")[0] for p in wanted(SimpleNamespace(config=seed_config))}
    asked = []

    def available(ctx):
        asked.append(ctx.config.root.suite)
        return set(names)
    monkeypatch.setattr(packages_index, "available", available)
    return SimpleNamespace(names=names, asked=asked)


def test_dry_run_plan_on_stdout_nothing_written(cli, suite, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    stage = tmp_path / "stage"
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(stage), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "### step dhcp-server" in res.stdout and "### step services" in res.stdout
    assert "host ssi4 { hardware ethernet 52:54:00:00:00:04;" in res.stdout
    assert suite.asked, "the dry-run checks the package names against the suite"
    assert not stage.exists()


def test_dry_run_names_a_package_the_suite_lacks(cli, suite, tmp_path, seed_text):
    assert "nfs-commn" not in suite.names
    cfg = write(tmp_path, seed_text.replace("packages = [", 'packages = ["nfs-commn", ', 1))
    stage = tmp_path / "stage"
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(stage), "--dry-run"])
    assert res.exit_code in (1, 2), res.output
    assert "nfs-commn" in res.stderr and "Traceback" not in res.output
    assert not stage.exists()


@pytest.mark.parametrize("old,new,field", [
    ('mac = "52:54:00:00:00:04"', 'mac = "52:54:00:00:00"', "node[3].mac"),
    ('name = "ssi4"', 'name = "../x"', "node[3].name"),
    ('clients = ""', 'clients = "192.168.1.*"', "nfs.clients"),
    ('ip = "192.168.0.104"', 'ip = "192.168.0.101"', "node[3].ip"),
    ('loader = "grub"', 'loader = "lilo"', "boot.loader"),
    ('[server]', '[server]\nbogus = 1', "server.bogus"),
])
@pytest.mark.parametrize("command", [["all"], ["all", "--dry-run"], ["run", "dhcp-server"], ["check"], ["status"]])
def test_bad_config_exit_2_names_field_changes_nothing(cli, tmp_path, seed_text, old, new, field, command):
    cfg = write(tmp_path, seed_text.replace(old, new, 1))
    before = tree(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2, res.output
    assert field in res.stderr and "Traceback" not in res.output
    assert tree(tmp_path) == before


@pytest.mark.parametrize("content,words", [("", "is empty"), ("[server\n", "not valid TOML"),
                                            (None, "cannot be read")])
def test_broken_config_files(cli, tmp_path, content, words):
    cfg = tmp_path / "c.toml"
    if content is not None:
        cfg.write_text(content)
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2 and words in res.stderr
    assert not (tmp_path / "stage").exists()


def test_real_run_needs_root(cli, tmp_path, seed_text, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    res = cli.invoke(app, ["all", "-c", str(write(tmp_path, seed_text)), "--prefix", str(tmp_path / "s")])
    assert res.exit_code == 2 and "must run as root" in res.stderr
    assert not (tmp_path / "s").exists()


def test_status_json_and_unknown_step(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["status", "-c", str(cfg), "--prefix", str(tmp_path / "s"), "--json"])
    data = json.loads(res.stdout)
    assert {r["status"] for r in data["steps"]} == {"pending"}
    res = cli.invoke(app, ["run", "nope", "-c", str(cfg), "--dry-run"])
    assert res.exit_code == 2 and "no step named 'nope'" in res.stderr


def test_corrupt_state_is_reported_not_reset(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    sdir = tmp_path / "state"
    sdir.mkdir()
    (sdir / "state.json").write_text("{ not json")
    res = cli.invoke(app, ["status", "-c", str(cfg), "--state-dir", str(sdir)])
    assert res.exit_code == 2 and "corrupt" in res.stderr
    assert (sdir / "state.json").read_text() == "{ not json"
    (sdir / "state.json").write_text('{"version": 99, "steps": {}}')
    res = cli.invoke(app, ["status", "-c", str(cfg), "--state-dir", str(sdir)])
    assert res.exit_code == 2 and "newer nfsroot-build" in res.stderr
