"""root.files and root.hooks (issue 11, point 4) without a real root: the
config's checks, the tree's rules, the root's identity (fingerprint), the
manifest diff, and the site-files / site-hooks steps on a tree under tmp_path
with a fake runner."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from nfsroot_builder import chroot, session, sitefiles, versions
from nfsroot_builder import config as config_mod
from nfsroot_builder.errors import CommandFailed, ConfigError
from nfsroot_builder.state import State
from nfsroot_builder.steps.initramfs import _inputs
from nfsroot_builder.steps.root_files import RootFileStep
from nfsroot_builder.steps.site import SiteFiles, SiteHooks

from fakes import FakeRunner
from helpers import example_text


def with_root_keys(text: str, **keys) -> str:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return text.replace("[root]\n", "[root]\n" + lines, 1)


def hook(path, body="#!/bin/sh\necho hi\n", mode=0o755):
    path.write_text(body)
    path.chmod(mode)
    return path


@pytest.fixture
def site(tmp_path):
    """A config dir with files/ (an sshd_config, a link, a 0700 dir) and hooks/enable.sh."""
    d = tmp_path / "site"
    (d / "files/etc/ssh").mkdir(parents=True)
    (d / "files/etc/ssh/sshd_config").write_text("PermitRootLogin prohibit-password\n")
    (d / "files/etc/ssh/sshd_config").chmod(0o600)
    (d / "files/root/.ssh").mkdir(parents=True)
    (d / "files/root/.ssh").chmod(0o700)
    (d / "files/root/.ssh/authorized_keys").write_text("ssh-ed25519 AAAAC3Nza admin@site\n")
    os.symlink("/etc/ssh/sshd_config", d / "files/etc/sshd_config.link")
    (d / "hooks").mkdir()
    hook(d / "hooks/enable.sh")
    return d


def parse(site, text=None, **keys):
    cfg_path = site / "cluster.toml"
    cfg_path.write_text(with_root_keys(text or example_text("lab"), **keys))
    return config_mod.load(cfg_path)


PER_NODE = example_text("lab").replace('layout = "tmpfs"', 'layout = "per-node"')


def problems_of(site, text=None, **keys) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        parse(site, text, **keys)
    return e.value.problems


# -- the config: checked up front, each problem naming its field ---------------

def test_relative_paths_are_from_the_config_files_directory(site, monkeypatch):
    monkeypatch.chdir("/")
    cfg = parse(site, files="files", hooks=["hooks/enable.sh"])
    assert cfg.root.files == str(site / "files")
    assert cfg.root.hooks == [str(site / "hooks/enable.sh")]


def test_missing_dir_and_hooks_name_their_fields(site):
    hook(site / "hooks/not-x.sh", mode=0o644)
    (site / "plain").write_text("")
    got = dict(problems_of(site, files="nope", hooks=["hooks/enable.sh", "hooks/missing.sh", "hooks/not-x.sh"]))
    assert "does not exist" in got["root.files"]
    assert "does not exist" in got["root.hooks[1]"]
    assert "not executable" in got["root.hooks[2]"]
    assert "root.hooks[0]" not in got
    assert "not a directory" in dict(problems_of(site, files="plain"))["root.files"]


def test_check_exits_2_naming_the_field_and_changes_nothing(site, tmp_path):
    from typer.testing import CliRunner

    from nfsroot_builder.cli import app
    cfg = site / "cluster.toml"
    cfg.write_text(with_root_keys(example_text("lab"), hooks=["hooks/gone.sh"]))
    stage = tmp_path / "stage"
    res = CliRunner().invoke(app, ["check", "-c", str(cfg), "--prefix", str(stage)])
    assert res.exit_code == 2, res.output
    assert "root.hooks[0]" in res.output and "gone.sh" in res.output
    assert not stage.exists()


def test_node_files_need_a_per_node_layout_and_a_known_node(site):
    (site / "files/nodes/lab1/var/lib").mkdir(parents=True)
    got = problems_of(site, files="files")   # the lab example: layout tmpfs
    assert any(f == "root.files" and "nodes/lab1" in m and "node lab1" in m and "tmpfs" in m for f, m in got), got
    (site / "files/nodes/ghost").mkdir()
    got = problems_of(site, PER_NODE, files="files")
    assert [m for _f, m in got] == ["nodes/ghost: no node named 'ghost' in the config"], got


def test_node_files_outside_var_and_the_builds_own_files_are_refused(site):
    (site / "files/nodes/lab1/etc").mkdir(parents=True)
    (site / "files/etc/hosts").write_text("10.0.0.1 x\n")
    os.mkfifo(site / "files/etc/fifo")
    msgs = [m for _f, m in problems_of(site, PER_NODE, files="files")]
    assert any(m.startswith("nodes/lab1/etc: node lab1: /etc is not the node's own tree") for m in msgs), msgs
    assert any(m.startswith("etc/hosts: /etc/hosts is written by the build itself") for m in msgs), msgs
    assert "etc/fifo is not a regular file, directory or symlink" in msgs


def test_reserved_covers_every_file_the_builds_own_root_steps_write(tmp_path):
    """sitefiles.RESERVED against the steps themselves, for each layout and init."""
    texts = [example_text("lab"), example_text("seed"),
             example_text("seed").replace('layout = "tmpfs"', 'layout = "seed"').replace(
                 'init = "systemd"', 'init = "sysvinit"')]
    seen = set()
    for text in texts:
        cfg = config_mod.parse(text)
        ctx = session.make_context(cfg, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                                   runner=FakeRunner(), emit=lambda line: None)
        for step in RootFileStep.__subclasses__():
            seen |= {rel.lstrip("/") for rel, want in step().wanted(ctx).items() if want[0] != "dir"}
        seen |= {rel.lstrip("/") for rel in _inputs(ctx)}
    seen |= {chroot.POLICY, "etc/nfsroot-build/bootstrap.json"}
    assert "etc/fstab" in seen and "etc/default/rcS" in seen
    assert [p for p in sorted(seen) if not sitefiles.reserved(p)] == []


# -- the root's identity: a new version when a hook or a file changes ----------

def test_unset_keys_leave_the_roots_digest_as_before(site):
    cfg = parse(site)
    data = cfg.root.model_dump(mode="json")
    for key in ("path", "files", "hooks", "serve"):
        data.pop(key)
    data["server"], data["nfs"] = cfg.server.address, cfg.nfs.model_dump(mode="json")
    import hashlib
    before = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert versions.root_digest(cfg) == before


@pytest.mark.parametrize("change", ["hook byte", "hook mode", "file byte", "file mode", "link target", "new dir"])
def test_a_hook_or_file_change_changes_the_roots_digest(site, change):
    cfg = parse(site, files="files", hooks=["hooks/enable.sh"])
    before = versions.root_digest(cfg)
    h, f = site / "hooks/enable.sh", site / "files/etc/ssh/sshd_config"
    if change == "hook byte":
        h.write_text(h.read_text().replace("hi", "ho"))
    elif change == "hook mode":
        h.chmod(0o700)
    elif change == "file byte":
        f.write_text("PermitRootLogin no\n")
    elif change == "file mode":
        f.chmod(0o640)
    elif change == "link target":
        (site / "files/etc/sshd_config.link").unlink()
        os.symlink("/etc/ssh/other", site / "files/etc/sshd_config.link")
    else:
        (site / "files/srv").mkdir()
    assert versions.root_digest(parse(site, files="files", hooks=["hooks/enable.sh"])) != before
    assert versions.root_digest(parse(site, files="files", hooks=["hooks/enable.sh"])) == \
        versions.root_digest(parse(site, files="files", hooks=["hooks/enable.sh"]))


def test_hook_order_counts_and_a_nodes_own_file_is_no_new_version(site):
    hook(site / "hooks/second.sh", "#!/bin/sh\necho 2\n")
    a = parse(site, hooks=["hooks/enable.sh", "hooks/second.sh"])
    b = parse(site, hooks=["hooks/second.sh", "hooks/enable.sh"])
    assert versions.root_digest(a) != versions.root_digest(b)
    cfg = parse(site, PER_NODE, files="files")
    digest, fingerprint = versions.root_digest(cfg), SiteFiles().fingerprint(_ctx(cfg, site))
    (site / "files/nodes/lab1/var").mkdir(parents=True)
    cfg2 = parse(site, PER_NODE, files="files")
    assert versions.root_digest(cfg2) == digest
    assert SiteFiles().fingerprint(_ctx(cfg2, site)) != fingerprint


def test_an_edited_hook_makes_a_new_version_cloned_from_the_current(site, tmp_path):
    cfg = parse(site, hooks=["hooks/enable.sh"])
    state = State.load(tmp_path / "state.json")
    t = versions.target(cfg, state)
    versions.begin(cfg, state, t, "now")
    state.set_version(1, status="ready")
    state.set_current(1)
    assert versions.target(cfg, state) == versions.Target(1, cfg.root.path, False, None)
    hook(site / "hooks/enable.sh", "#!/bin/sh\nsystemctl enable ssh\n")
    t2 = versions.target(parse(site, hooks=["hooks/enable.sh"]), state)
    assert (t2.vid, t2.new, t2.clone_from) == (2, True, 1)


# -- the manifest diff ---------------------------------------------------------

def test_to_remove_lists_what_left_the_tree_deepest_first():
    e = sitefiles.Entry
    had = {"etc": {"kind": "dir"}, "etc/a": {"kind": "file"}, "opt": {"kind": "dir"}, "opt/x": {"kind": "file"},
           "opt/x/y": {"kind": "link"}, "etc/b": {"kind": "link"}}
    wanted = {"etc": e("dir", 0o755, 0, 0), "etc/a": e("file", 0o644, 0, 0), "etc/b": e("file", 0o644, 0, 0)}
    assert sitefiles.to_remove(had, wanted) == ["opt/x/y", "opt/x", "opt", "etc/b"]


# -- the steps on a tree under tmp_path ----------------------------------------

def mkdir_p(argv):
    """The fake runner does what `mkdir -p -- DIR...` does (site-files' one command)."""
    if argv[:3] == ["mkdir", "-p", "--"]:
        for d in argv[3:]:
            os.makedirs(d, exist_ok=True)
        return 0, "", ""
    return None


def _ctx(cfg, base, dry_run=False, emit=None):
    return session.make_context(cfg, prefix=base / "stage", state_dir=base / "state", dry_run=dry_run,
                                runner=FakeRunner(hook=mkdir_p), emit=emit or (lambda line: None))


def _root(ctx):
    for d in ("etc/ssh", "etc/nfsroot-build", "tmp", "root"):
        (ctx.root / d).mkdir(parents=True, exist_ok=True)
    (ctx.root / "root").chmod(0o700)
    (ctx.root / "etc/ssh/sshd_config").write_text("# the package's\n")
    return ctx


def test_copy_keeps_modes_and_links_and_a_removed_file_goes_the_shadowed_comes_back(site):
    ctx = _root(_ctx(parse(site, files="files"), site))
    SiteFiles().run(ctx)
    r = ctx.root
    assert (r / "etc/ssh/sshd_config").read_text().startswith("PermitRootLogin")
    assert stat.S_IMODE((r / "etc/ssh/sshd_config").stat().st_mode) == 0o600
    assert os.readlink(r / "etc/sshd_config.link") == "/etc/ssh/sshd_config"
    assert stat.S_IMODE((r / "root/.ssh").stat().st_mode) == 0o700
    manifest = json.loads((r / sitefiles.MANIFEST).read_text())["paths"]
    assert manifest["etc/ssh/sshd_config"]["shadowed"]["data"] == base64.b64encode(b"# the package's\n").decode()
    assert stat.S_IMODE((r / sitefiles.MANIFEST).stat().st_mode) == 0o600   # a shadowed file may be secret
    assert manifest["root/.ssh"]["made"] and not manifest["etc/ssh"]["made"]
    assert not manifest["etc/ssh/sshd_config"]["made"]
    assert SiteFiles().verify(ctx) == []
    # A hand edit in the root: stale.
    (r / "root/.ssh/authorized_keys").write_text("someone else\n")
    assert "authorized_keys" in SiteFiles().verify(ctx)[0]
    # Out of DIR: the keys and their directory go, the package's sshd_config comes back.
    (site / "files/root/.ssh/authorized_keys").unlink()
    (site / "files/root/.ssh").rmdir()
    (site / "files/etc/ssh/sshd_config").unlink()
    ctx = _ctx(parse(site, files="files"), site)
    assert SiteFiles().verify(ctx) != []
    SiteFiles().run(ctx)
    assert not (r / "root/.ssh").exists() and (r / "root").is_dir()
    assert (r / "etc/ssh/sshd_config").read_text() == "# the package's\n"
    assert (r / "etc/ssh").is_dir()
    assert SiteFiles().verify(ctx) == []


def test_a_directory_it_made_stays_when_something_else_put_files_there(site):
    ctx = _root(_ctx(parse(site, files="files"), site))
    SiteFiles().run(ctx)
    (ctx.root / "root/.ssh/known_hosts").write_text("from a hook\n")
    (site / "files/root/.ssh/authorized_keys").unlink()
    (site / "files/root/.ssh").rmdir()
    SiteFiles().run(_ctx(parse(site, files="files"), site))
    assert not (ctx.root / "root/.ssh/authorized_keys").exists()
    assert (ctx.root / "root/.ssh/known_hosts").exists()


def test_files_unset_removes_all_it_copied(site):
    ctx = _root(_ctx(parse(site, files="files"), site))
    SiteFiles().run(ctx)
    ctx = _ctx(parse(site), site)
    SiteFiles().run(ctx)
    assert not (ctx.root / "etc/sshd_config.link").is_symlink() and not (ctx.root / sitefiles.MANIFEST).exists()
    assert (ctx.root / "etc/ssh/sshd_config").read_text() == "# the package's\n"


def test_the_dry_run_announces_what_the_real_run_logs(site, tmp_path):
    """Commands and file changes alike, as the pipeline logs them (test_dry_run_exact's lines)."""
    cfg = parse(site, files="files")
    planned: list[str] = []
    dry = _root(_ctx(cfg, site, dry_run=True, emit=planned.append))
    dry.runner.emit = planned.append
    SiteFiles().run(dry)
    real = _ctx(cfg, site)
    with open(tmp_path / "site-files.log", "w") as log:
        real.runner.log = log
        real.files.log = real.runner.log_line
        SiteFiles().run(real)
    logged = [line for line in (tmp_path / "site-files.log").read_text().splitlines() if not line.startswith("# exit")]
    assert [line for line in planned if line.startswith(("# ", "$ "))] == logged
    assert logged[0].startswith("$ mkdir -p -- ") and logged[0].endswith("/root/.ssh")
    assert any(line.startswith("# write ") and line.endswith("authorized_keys (33 bytes, mode 644)")
               for line in logged), "\n".join(logged)


def test_per_node_files_land_in_the_nodes_own_var(site):
    text = PER_NODE
    (site / "files/nodes/lab1/var/lib/site").mkdir(parents=True)
    (site / "files/nodes/lab1/var/lib/site/id").write_text("lab1\n")
    ctx = _root(_ctx(parse(site, text, files="files"), site))
    SiteFiles().run(ctx)
    node = ctx.host(ctx.config.root.path + ".nodes/lab1")
    assert (node / "lib/site/id").read_text() == "lab1\n"
    assert json.loads((node / sitefiles.NODE_MANIFEST).read_text())["paths"]["lib/site/id"]["made"]
    assert not (ctx.host(ctx.config.root.path + ".nodes/lab2")).exists()
    (site / "files/nodes/lab1/var/lib/site/id").unlink()
    SiteFiles().run(_ctx(parse(site, text, files="files"), site))
    assert not (node / "lib/site/id").exists()


def test_hooks_run_in_the_chroot_in_order_and_a_failure_names_the_hook(site, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    hook(site / "hooks/fail.sh", "#!/bin/sh\necho broken >&2\nexit 3\n")
    ctx = _root(_ctx(parse(site, hooks=["hooks/enable.sh", "hooks/fail.sh"]), site))
    ctx.runner.hook = lambda argv: (3, "", "broken\n") if argv[-1].endswith("fail.sh") else mkdir_p(argv)
    with pytest.raises(CommandFailed) as e:
        SiteHooks().run(ctx)
    msg = str(e.value)
    assert "root.hooks[1]" in msg and str(site / "hooks/fail.sh") in msg and "broken" in msg and "exit 3" in msg
    ran = [a for a in ctx.runner.executed if a[0] == "chroot"]
    assert [a[-1] for a in ran] == ["/tmp/nfsroot-build-hook-0-enable.sh", "/tmp/nfsroot-build-hook-1-fail.sh"]
    assert ran[0][:2] == ["chroot", str(ctx.root)]
    assert list((ctx.root / "tmp").iterdir()) == []   # the copies are gone, failed or not


def test_no_hooks_no_chroot(site):
    ctx = _root(_ctx(parse(site), site))
    assert SiteHooks().run(ctx).changed is False and ctx.runner.executed == []
    assert SiteHooks().fingerprint(ctx) == {} and SiteFiles().fingerprint(ctx) == {}


def test_hooks_run_once_per_version_never_again_in_it(site, monkeypatch):
    monkeypatch.setattr(chroot, "mounts_under", lambda root: [])
    monkeypatch.setattr(chroot, "stop_processes", lambda ctx, root: None)
    ctx = _root(_ctx(parse(site, hooks=["hooks/enable.sh"]), site))
    assert SiteHooks().verify(ctx) == ["root.hooks have not all run in this version "
                                       f"({ctx.root / sitefiles.HOOKS_RAN})"]
    assert SiteHooks().run(ctx).changed
    assert SiteHooks().verify(ctx) == []
    ran = len(ctx.runner.executed)
    assert not SiteHooks().run(ctx).changed and len(ctx.runner.executed) == ran   # e.g. back on a finished version
    ctx.version_id = 2   # a new version (a clone carries the record): they run again
    assert SiteHooks().verify(ctx) != []
    assert SiteHooks().run(ctx).changed and len(ctx.runner.executed) > ran
    ctx = _ctx(parse(site), site)
    assert SiteHooks().verify(ctx) != [] and SiteHooks().run(ctx).changed   # hooks gone: so is the record
    assert not (ctx.root / sitefiles.HOOKS_RAN).exists() and SiteHooks().verify(ctx) == []
