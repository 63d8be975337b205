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


def test_init_prints_todays_server_example_and_the_seed_on_request(cli):
    res = cli.invoke(app, ["init"])
    assert res.exit_code == 0 and 'suite = "trixie"' in res.stdout and 'bootstrapper = "mmdebstrap"' in res.stdout
    assert 'interface = "CHANGE-ME"' in res.stdout and "threads = 0" in res.stdout
    seed = cli.invoke(app, ["init", "--example", "seed"])
    assert seed.exit_code == 0 and 'path = "/NFSROOT/kerrighed"' in seed.stdout and 'suite = "sid"' in seed.stdout
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


def test_cli_habits_h_did_you_mean_run_help_lists_steps(cli, tmp_path, seed_text):
    assert cli.invoke(app, ["-h"]).exit_code == 0
    res = cli.invoke(app, ["run", "-h"])
    assert res.exit_code == 0 and "\n    bootstrap\n" in res.stdout and "    services" in res.stdout
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["run", "bootstrp", "-c", str(cfg), "--dry-run"])
    assert res.exit_code == 2 and "did you mean 'bootstrap'?" in res.stderr
    bad = write(tmp_path, seed_text.replace('clients = ""', 'client = ""'), "bad.toml")
    res = cli.invoke(app, ["check", "-c", str(bad), "--prefix", str(tmp_path / "s")])
    assert res.exit_code == 2 and "nfs.client: unknown key; did you mean 'clients'?" in res.stderr


def test_default_config_path_when_c_is_left_out(cli, tmp_path, monkeypatch):
    from nfsroot_builder.cli import common
    missing = tmp_path / "etc/cluster.toml"
    res = cli.invoke(app, ["status"])   # reads the default path (absent on a test machine: exit 2 either way)
    assert res.exit_code == 2 and "/etc/nfsroot-build/cluster.toml" in res.stderr
    monkeypatch.setattr(common, "DEFAULT_CONFIG", missing)
    res = cli.invoke(app, ["status", "-c", str(missing)])
    assert res.exit_code == 2
    assert f"no -c given and {missing} does not exist; write it with `nfsroot-build init >" in res.stderr


def test_dry_run_summary_first_whole_transcript_on_a_pipe_footer_would_run(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 0, res.output
    assert "plan: " in res.stderr and " command(s)" in res.stderr
    assert "like this one" not in res.stdout   # not a terminal: nothing folded
    assert sum(1 for line in res.stdout.splitlines() if line.startswith("+++ ") and "grub.cfg-01-" in line) == 4
    assert "dry-run: would run 22 step(s)" in res.stderr and "nothing was changed" in res.stderr
    assert " step(s) ran" not in res.stderr


def test_status_and_check_print_to_stdout_plain_on_a_pipe(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["status", "-c", str(cfg), "--prefix", str(tmp_path / "s")])
    assert res.exit_code == 0 and "build kerrighed\n" in res.stdout
    assert any(line.split()[:2] == ["bootstrap", "pending"] for line in res.stdout.splitlines())
    assert not any(c in res.stdout for c in "│━─┃|+")   # no box when piped
    res = cli.invoke(app, ["check", "-c", str(cfg), "--prefix", str(tmp_path / "s")])
    assert res.exit_code == 0 and f"{cfg}: ok (4 nodes" in res.stdout


@pytest.mark.parametrize("env,ascii", [({"LC_ALL": "C"}, True), ({"LC_ALL": "", "LANG": "en_US.UTF-8"}, False),
                                       ({"LC_ALL": "", "LC_CTYPE": "", "LANG": "C.utf8"}, False),
                                       ({"LC_ALL": "", "LC_CTYPE": "", "LANG": ""}, True)])
def test_tables_are_ascii_unless_the_locale_is_utf8(monkeypatch, env, ascii):
    from nfsroot_builder.cli.common import ascii_only
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ascii_only() is ascii


def test_real_run_on_the_host_stops_on_a_host_check_before_any_change(cli, tmp_path, seed_text, monkeypatch):
    """As on the host (staging off; files still under tmp_path): the seed's
    placeholder DNS servers fail the preflight, so nothing may be changed, and
    the dry-run predicts it."""
    from nfsroot_builder.context import Context
    monkeypatch.setattr(Context, "staging", property(lambda self: False))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    cfg = write(tmp_path, seed_text)
    before = tree(tmp_path)
    for dry in ([], ["--dry-run"]):
        res = cli.invoke(app, ["all", *dry, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
        assert res.exit_code == 1, res.output
        assert "preflight failed, nothing was changed" in res.stderr
        assert "network.dns_servers: 123.123.123.123, 124.124.124.124 are the seed page's placeholders" in res.stderr
        assert "### step" not in res.stdout
    # the real run took its lock in the state dir, and changed nothing else
    assert [p for p in tree(tmp_path) if p not in before] == [
        "stage", "stage/var", "stage/var/lib", "stage/var/lib/nfsroot-build", "stage/var/lib/nfsroot-build/kerrighed",
        "stage/var/lib/nfsroot-build/kerrighed/lock"]
