"""Bad input and faults, through the CLI in-process (no real processes):
each case asserts the message, the exit code and that nothing changed on
disk. Cases already covered by test_cli.py / test_config.py (field errors,
all/status with broken files) are not repeated; these add doctor, undo,
run, hostile-but-valid values and the renderers' quoting."""
from __future__ import annotations

import json

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder.cli import app
from nfsroot_builder.render import Served, quote
from nfsroot_builder.render import server as rs

from helpers import snapshot, write

COMMANDS = [["doctor"], ["doctor", "--fix"], ["doctor", "--fix", "--dry-run"], ["doctor", "--json"],
            ["undo"], ["undo", "--dry-run"], ["undo", "--purge-root"], ["run", "dhcp-server"]]


@pytest.mark.parametrize("content,words", [
    ("", "is empty"), ("\n  \n", "is empty"), ("[server\naddress=", "is not valid TOML"),
    (None, "cannot be read"), ("dir", "cannot be read"), (b"\xff\xfe\x00name", "cannot be read")])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_broken_config_file_one_line_exit_2(cli, tmp_path, content, words, command):
    cfg = tmp_path / "c.toml"
    if content == "dir":
        cfg.mkdir()
    elif isinstance(content, bytes):
        cfg.write_bytes(content)
    elif content is not None:
        cfg.write_text(content)
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2, res.output
    assert words in res.stderr and "Traceback" not in res.output
    assert res.stderr.count("\n") <= 2   # "c.toml: 1 problem(s):" and the problem
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("state,words", [
    ("{ not json", "corrupt"), ('{"version": 99, "steps": {}}', "newer nfsroot-build"),
    ('["a list"]', "not an nfsroot-build state"), ('{"steps": {}, "files": []}', "not an nfsroot-build state"),
    ("", "corrupt")])
@pytest.mark.parametrize("command", COMMANDS + [["all"], ["all", "--dry-run"], ["status"]], ids=" ".join)
def test_bad_state_is_reported_never_reset(cli, tmp_path, seed_text, state, words, command):
    cfg = write(tmp_path, seed_text)
    sdir = tmp_path / "state"
    sdir.mkdir()
    (sdir / "state.json").write_text(state)
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--state-dir", str(sdir), "--prefix", str(tmp_path / "s")])
    assert res.exit_code == 2, res.output
    assert words in res.stderr and "Traceback" not in res.output
    if "newer" not in words:
        assert "move it away" in res.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command,what", [(["run", "dhcp-server"], "a real run"), (["undo"], "undo"),
                                          (["undo", "--purge-root"], "undo"), (["doctor", "--fix"], "doctor --fix")])
def test_not_root_says_so_before_doing_anything(cli, tmp_path, seed_text, monkeypatch, command, what):
    cfg = write(tmp_path, seed_text)
    stage = tmp_path / "stage"
    (stage / "etc/dhcp").mkdir(parents=True)
    (stage / "etc/dhcp/dhcpd.conf").write_text("# admin\n")
    before = snapshot(tmp_path)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(stage)])
    assert res.exit_code == 2 and f"{what} changes the system and must run as root" in res.stderr
    assert "--dry-run" in res.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", [["doctor"], ["undo", "--dry-run"], ["doctor", "--fix", "--dry-run"]],
                         ids=" ".join)
def test_read_only_commands_work_without_root(cli, tmp_path, seed_text, monkeypatch, command):
    cfg = write(tmp_path, seed_text)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert "must run as root" not in res.stderr and res.exit_code in (0, 1), res.output
    assert not (tmp_path / "stage").exists()


# -- hostile values: refused where they would change a file's meaning -------------

HOSTILE_PATHS = ["/srv/$HOME/root", "/srv/a,rw", "/srv/a b", "/srv/`id`", "/srv/a(rw)", "/srv/*",
                 "/srv/a|b", "/srv/a&b", "/srv/a:b", "/srv/ä", "/srv/a\nb", "/srv/a%i", "/srv/a=b",
                 "/srv/a!b", "/srv/a>b", "/srv/a[0]"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.parametrize("key", ["root.path", "tftp.root", "dhcp.config_file"])
def test_hostile_paths_refused_exit_2(cli, tmp_path, seed_text, path, key):
    old = {"root.path": 'path = "/NFSROOT/kerrighed"', "tftp.root": 'root = "/srv/tftp"',
           "dhcp.config_file": 'config_file = "/etc/dhcp/dhcpd.conf"'}[key]
    text = seed_text.replace(old, f"{old.split(' = ')[0]} = {json.dumps(path)}", 1)
    cfg = write(tmp_path, text)
    before = snapshot(tmp_path)
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(tmp_path / "stage"), "--dry-run"])
    assert res.exit_code == 2, res.output
    assert key in res.stderr and "may hold only letters" in res.stderr
    assert snapshot(tmp_path) == before


def test_hostile_prefix_refused(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["all", "-c", str(cfg), "--prefix", str(tmp_path / "a,rw"), "--dry-run"])
    assert res.exit_code == 2 and "--prefix" in res.stderr
    assert not (tmp_path / "a,rw").exists()


@pytest.mark.parametrize("old,new,field", [
    ('domain = "mycluster.home"', 'domain = "a\\"; option x \\"y"', "network.domain"),
    ('interface = "eth0"', 'interface = "eth0\\"; rm"', "server.interface"),
    ('name = "ssi4"', 'name = "ssi4 { }"', "node[3].name"),
    ('kernel_args = ["console=ttyS0,115200n8"', 'kernel_args = ["init=/bin/sh;reboot"', "boot.kernel_args"),
    ('kernel_args = ["console=ttyS0,115200n8"', 'kernel_args = ["$(reboot)"', "boot.kernel_args"),
    ('mirror = ""', 'mirror = "http://x/\\"; echo"', "root.mirror"),
    ('name = "kerrighed"', 'name = "../../etc"', "name"),
    ('password_hash = "!"', 'password_hash = "$6$a$b:0:0"', "root.password_hash"),
])
def test_hostile_values_refused_exit_2(cli, tmp_path, seed_text, old, new, field):
    assert old in seed_text
    cfg = write(tmp_path, seed_text.replace(old, new, 1))
    before = snapshot(tmp_path)
    res = cli.invoke(app, ["doctor", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2, res.output
    assert field in res.stderr
    assert snapshot(tmp_path) == before


def test_odd_but_valid_values_render_literally(seed_text):
    text = (seed_text.replace('path = "/NFSROOT/kerrighed"', 'path = "/srv/n+f_s-root.v1~x"')
            .replace('domain = "mycluster.home"', 'domain = "a-b.example"'))
    cfg = config_mod.parse(text)
    dhcpd = rs.dhcpd_block(cfg, Served())
    assert 'option root-path "192.168.0.1:/srv/n+f_s-root.v1~x";' in dhcpd
    assert 'option domain-name "a-b.example";' in dhcpd
    assert "/srv/n+f_s-root.v1~x 192.168.0.0/24(ro," in rs.exports(cfg, Served())
    import inspect

    from nfsroot_builder.render import menus
    args = (cfg, Served(), cfg.nodes[0])[:len(inspect.signature(menus.kernel_cmdline).parameters)]
    assert "nfsroot=192.168.0.1:/srv/n+f_s-root.v1~x,tcp,v3 " in menus.kernel_cmdline(*args)


def test_quote_escapes_for_dhcpd_and_ganesha():
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


def test_state_stays_after_failed_undo_problems(cli, tmp_path, seed_text, monkeypatch):
    """A state with a record outside the prefix: undo says so, exits 1, touches nothing, keeps the record."""
    cfg = write(tmp_path, seed_text)
    stage = tmp_path / "stage"
    sdir = stage / "var/lib/nfsroot-build/kerrighed"
    sdir.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("x")
    state = {"version": 1, "steps": {}, "pending_restarts": [],
             "files": {str(victim): {"kind": "owned", "backup": None}}}
    (sdir / "state.json").write_text(json.dumps(state))
    before = snapshot(tmp_path)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    res = cli.invoke(app, ["undo", "-c", str(cfg), "--prefix", str(stage)])
    assert res.exit_code == 1 and "outside the staging prefix" in res.stderr
    assert victim.exists() and json.loads((sdir / "state.json").read_text())["files"]
    after = snapshot(tmp_path)
    # Only the lock file (and its pid file, removed again) may appear.
    assert {k for k in after if k not in before} <= {str(sdir / "lock")}


# -- issue 9 point 16: never build over (or remove) a directory the build did not make ----

SYSTEM_ROOTS = [("root.path", 'path = "/NFSROOT/kerrighed"', "/"), ("root.path", 'path = "/NFSROOT/kerrighed"', "/etc"),
                ("tftp.root", 'root = "/srv/tftp"', "/"), ("tftp.root", 'root = "/srv/tftp"', "/etc")]


def nothing_planned(res) -> bool:
    """The dry-run transcript holds no step, no command and no file change."""
    return "### step" not in res.stdout and not any(line.startswith(("$ ", "# ", "--- ", "+++ "))
                                                    for line in res.stdout.splitlines())


@pytest.mark.parametrize("key,old,path", SYSTEM_ROOTS, ids=[f"{k}={p}" for k, _, p in SYSTEM_ROOTS])
@pytest.mark.parametrize("command", [["check"], ["all", "--dry-run"], ["run", "bootstrap", "--dry-run"],
                                     ["all", "--dry-run", "--prefix", "/"]], ids=" ".join)
def test_system_directory_as_root_exit_2_nothing_planned(cli, tmp_path, seed_text, key, old, path, command):
    cfg = write(tmp_path, seed_text.replace(old, f'{old.split(" = ")[0]} = "{path}"', 1))
    prefix = [] if "--prefix" in command else ["--prefix", str(tmp_path / "stage")]
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), *prefix])
    assert res.exit_code == 2, res.output
    assert f"{key}: {path} is a system directory" in res.stderr and "Traceback" not in res.output
    assert nothing_planned(res) and res.stdout == ""
    assert snapshot(tmp_path) == before


def _stage_root(tmp_path):
    root = tmp_path / "stage/NFSROOT/kerrighed"
    root.mkdir(parents=True)
    return root


@pytest.mark.parametrize("command", [["check"], ["all", "--dry-run"], ["all", "--dry-run", "--resume"],
                                     ["run", "bootstrap", "--dry-run"], ["run", "dhcp-server", "--dry-run"]],
                         ids=" ".join)
def test_non_empty_root_without_marker_exit_2_nothing_planned(cli, tmp_path, seed_text, command):
    cfg = write(tmp_path, seed_text)
    (_stage_root(tmp_path) / "thesis.tex").write_text("years of work\n")
    before = snapshot(tmp_path)
    res = cli.invoke(app, [*command, "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2, res.output
    assert "root.path:" in res.stderr and "non-empty directory that no nfsroot-build made" in res.stderr
    assert nothing_planned(res)
    assert snapshot(tmp_path) == before


def test_root_of_another_build_exit_2(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    marker = _stage_root(tmp_path) / "etc/nfsroot-build/build.json"
    marker.parent.mkdir(parents=True)
    marker.write_text('{"build": "other"}\n')
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2 and "holds the root of build 'other'" in res.stderr and nothing_planned(res)


@pytest.mark.parametrize("content", ["empty", "lost+found", "marker", "0.1 marker"])
def test_empty_or_marked_root_is_accepted(cli, tmp_path, seed_text, content):
    cfg = write(tmp_path, seed_text)
    root = _stage_root(tmp_path)
    if content == "lost+found":
        (root / "lost+found").mkdir()
    elif content != "empty":
        (root / "etc/nfsroot-build").mkdir(parents=True)
        (root / "usr").mkdir()
        name = "build.json" if content == "marker" else "bootstrap.json"
        (root / "etc/nfsroot-build" / name).write_text('{"build": "kerrighed"}\n')
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 0, res.output
    assert "### step bootstrap" in res.stdout
    removes = any(line.startswith("$ rm -rf --one-file-system") for line in res.stdout.splitlines())
    assert removes == content.endswith("marker")   # an empty root is used as it is, never removed


@pytest.mark.parametrize("key,link", [("root.path", "stage/NFSROOT/kerrighed"), ("tftp.root", "stage/srv/tftp")])
@pytest.mark.parametrize("target", ["/", "/etc"])
def test_root_that_resolves_to_a_system_directory_exit_2(cli, tmp_path, seed_text, key, link, target):
    cfg = write(tmp_path, seed_text)
    (tmp_path / link).parent.mkdir(parents=True)
    (tmp_path / link).symlink_to(target)
    before = snapshot(tmp_path)
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2, res.output
    assert f"{key}:" in res.stderr and f"-> {target} on disk" in res.stderr and nothing_planned(res)
    assert snapshot(tmp_path) == before


def test_root_holding_the_state_directory_exit_2(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage"),
                           "--state-dir", str(tmp_path / "stage/NFSROOT/kerrighed/var/state")])
    assert res.exit_code == 2 and "overlaps the state directory" in res.stderr and nothing_planned(res)


# -- issue 9 point 22: the config file itself ---------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_config_that_is_no_regular_file_exit_2(cli, tmp_path, kind):
    import os
    path = tmp_path / "c.toml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = kind
    res = cli.invoke(app, ["check", "-c", str(path), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2 and "not a regular file" in res.stderr, res.output


@pytest.mark.parametrize("dry", [["--dry-run"], []], ids=["dry-run", "real"])
def test_undo_purge_root_never_removes_an_unmarked_root(cli, tmp_path, seed_text, dry):
    cfg = write(tmp_path, seed_text)
    root = _stage_root(tmp_path)
    (root / "thesis.tex").write_text("years of work\n")
    before = snapshot(root)
    res = cli.invoke(app, ["undo", "--purge-root", *dry, "-c", str(cfg), "--prefix", str(tmp_path / "stage"),
                           "--state-dir", str(tmp_path / "state")])
    assert res.exit_code == 1 and "refusing to remove" in res.stderr and "no nfsroot-build made" in res.stderr
    assert snapshot(root) == before   # (the real run takes its lock in the state dir)


def test_root_that_resolves_into_the_tftp_root_exit_2(cli, tmp_path, seed_text):
    cfg = write(tmp_path, seed_text)
    (tmp_path / "stage/srv/tftp/nested").mkdir(parents=True)
    (tmp_path / "stage/NFSROOT").mkdir(parents=True)
    (tmp_path / "stage/NFSROOT/kerrighed").symlink_to(tmp_path / "stage/srv/tftp/nested")
    res = cli.invoke(app, ["check", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 2 and "root.path: on disk:" in res.stderr and "inside tftp.root" in res.stderr
    assert f"on disk under --prefix {tmp_path / 'stage'}" in res.stderr


def test_tftp_root_may_hold_the_admins_files(cli, tmp_path, seed_text):
    # Unlike the root, the TFTP root is never removed: the build adds its own
    # files next to an existing PXE setup's and removes only menus it wrote.
    cfg = write(tmp_path, seed_text)
    (tmp_path / "stage/srv/tftp").mkdir(parents=True)
    (tmp_path / "stage/srv/tftp/pxelinux.0").write_bytes(b"\x00admin")
    res = cli.invoke(app, ["all", "--dry-run", "-c", str(cfg), "--prefix", str(tmp_path / "stage")])
    assert res.exit_code == 0, res.output
    assert "pxelinux.0" not in res.stdout
