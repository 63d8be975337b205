"""root.files and root.hooks on a real root (issue 11, point 4): the shared
debootstrap build of tests/root_builds.py (`deb`: layout per-node, so a
node's own /var gets its files too).

- files + hooks make a new version (cloned from the current one) holding
  the files with their owner, mode and symlinks, and the hooks' effect; the
  old version is untouched; a second run re-runs nothing;
- a file taken out of DIR is not in the next version (nor in the node's /var);
- a failing hook stops the build with exit 1, naming the hook and its last
  output lines; the current version stays current.

The config is put back afterwards by test_lab_boot's edit_config fixture
(`all --resume` makes v1 current again, nothing is rebuilt)."""
from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from helpers import nfsroot_build
from versions_helpers import checksums, root_list

# test_lab_boot's edit_config fixture, shared (pytest finds fixtures among a
# module's names); its directory is on sys.path only when e2e is collected too.
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
import test_lab_boot  # noqa: E402

edit_config = test_lab_boot.edit_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real builds)")

SITE_UID, SITE_GID = 4242, 4243   # no user of the root: the numbers must come through as they are
UNIT = """[Unit]
Description=site hello (root.files + root.hooks test)
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""
ENABLE = """#!/bin/sh
# Enables the unit root.files brought (files are in before hooks run).
set -e
systemctl enable site-hello.service
echo "hook ran in $(cat /etc/nfsroot-build/version)" > /etc/site-hook-ran
"""
FAIL = """#!/bin/sh
echo "checking the site licence"
echo "site check failed: no licence file" >&2
exit 7
"""


def make_site(base: Path) -> Path:
    files = base / "files"
    (files / "etc/systemd/system").mkdir(parents=True)
    (files / "etc/systemd/system/site-hello.service").write_text(UNIT)
    (files / "root/.ssh").mkdir(parents=True)
    (files / "root/.ssh").chmod(0o700)
    keys = files / "root/.ssh/authorized_keys"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest admin@site\n")
    keys.chmod(0o600)
    (files / "etc/site").mkdir()
    secret = files / "etc/site/owned.conf"
    secret.write_text("owned by a site account\n")
    secret.chmod(0o640)
    os.chown(secret, SITE_UID, SITE_GID)
    os.symlink("../site/owned.conf", files / "etc/site/link.conf")
    (files / "nodes/n1/var/lib/site").mkdir(parents=True)
    (files / "nodes/n1/var/lib/site/node-id").write_text("n1 of the site\n")
    (base / "hooks").mkdir()
    for name, body in (("enable.sh", ENABLE), ("fail.sh", FAIL)):
        (base / "hooks" / name).write_text(body)
        (base / "hooks" / name).chmod(0o755)
    return base


def current(b) -> tuple[str, Path]:
    rows = root_list(b)
    vid = next(v for v, r in rows.items() if r["state"] == "current")
    return vid, b.stage / rows[vid]["path"].lstrip("/")


def node_var(b, node: str) -> Path:
    return b.stage / f"srv/nfsroot/{b.name}.nodes/{node}"


def test_files_and_hooks_make_a_version_removal_follows_and_a_failing_hook_stops(deb, edit_config, tmp_path):
    b = deb
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)   # done, whatever ran before
    site = make_site(tmp_path)
    earlier = set(root_list(b))   # versions other tests made on the shared build
    v0, tree0 = current(b)
    before = checksums(tree0)
    keys = f'files = "{site}/files"\nhooks = ["{site}/hooks/enable.sh"]\n'
    edit_config(b, "[root]\n", "[root]\n" + keys)
    # The dry-run shows the copy and the hook's chroot command.
    plan = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--dry-run", check=True).stdout
    assert "### step site-files" in plan and "### step site-hooks" in plan
    assert "/root/.ssh/authorized_keys (66 bytes, mode 600)" in plan, plan[-3000:]
    assert "/usr/bin/env -i" in plan and "/tmp/nfsroot-build-hook-0-enable.sh" in plan
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    print(f"version with files and a hook: {time.monotonic() - t0:.1f} s")
    v1, tree = current(b)
    assert v1 != v0 and f"version {v1} is current (was {v0})" in res.stderr
    assert checksums(tree0) == before   # the old version is untouched
    owned = tree / "etc/site/owned.conf"
    st = owned.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (SITE_UID, SITE_GID, 0o640)
    assert os.readlink(tree / "etc/site/link.conf") == "../site/owned.conf"
    assert stat.S_IMODE((tree / "root/.ssh").stat().st_mode) == 0o700
    assert stat.S_IMODE((tree / "root/.ssh/authorized_keys").stat().st_mode) == 0o600
    assert (tree / "etc/site-hook-ran").read_text() == f"hook ran in {v1}\n"
    assert os.readlink(tree / "etc/systemd/system/multi-user.target.wants/site-hello.service") \
        == "/etc/systemd/system/site-hello.service"
    assert (node_var(b, "n1") / "lib/site/node-id").read_text() == "n1 of the site\n"
    assert not (node_var(b, "n2") / "lib/site").exists()
    assert not list((tree / "tmp").glob("nfsroot-build-hook-*")), "the hook's copy stays in the root"
    log = (b.stage / f"var/lib/nfsroot-build/{b.name}/logs/last/site-hooks.log").read_text()
    assert "Created symlink" in log   # the hook's own output is in the step's log
    # Nothing changed: nothing runs, no new version.
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)
    assert "0 step(s) ran, 22 skipped as done" in res.stderr, res.stderr
    assert current(b)[0] == v1

    # A file out of DIR: the next version does not have it, the node's /var neither.
    (site / "files/etc/site/link.conf").unlink()
    (site / "files/nodes/n1/var/lib/site/node-id").unlink()
    t0 = time.monotonic()
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    print(f"version with a file removed: {time.monotonic() - t0:.1f} s")
    v2, tree2 = current(b)
    assert v2 != v1 and tree2 != tree
    assert not (tree2 / "etc/site/link.conf").is_symlink() and (tree2 / "etc/site/owned.conf").is_file()
    assert (tree / "etc/site/link.conf").is_symlink()   # v1 keeps what it was built with
    assert not (node_var(b, "n1") / "lib/site/node-id").exists()
    manifest = json.loads((tree2 / "etc/nfsroot-build/site-files.json").read_text())["paths"]
    assert "etc/site/link.conf" not in manifest and "etc/site/owned.conf" in manifest

    # A failing hook: exit 1 naming it and its last output; v2 stays current.
    edit_config(b, "hooks = [", f'hooks = ["{site}/hooks/fail.sh", ')
    t0 = time.monotonic()
    res = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage)
    print(f"failing hook: {time.monotonic() - t0:.1f} s")
    assert res.returncode == 1, res.stderr
    assert "step 'site-hooks' failed" in res.stderr and f"root.hooks[0] {site}/hooks/fail.sh" in res.stderr
    assert "exit 7" in res.stderr and "site check failed: no licence file" in res.stderr
    assert "Traceback" not in res.stderr
    rows = root_list(b)
    assert current(b)[0] == v2
    building = [r for v, r in rows.items() if v not in earlier | {v1, v2}]
    assert [r["state"] for r in building] == ["building"], rows
    # No node is sent to the half-made tree: the menus still name v2's.
    menus = b"".join(p.read_bytes() for p in b.tftp.rglob("*") if p.is_file() and p.stat().st_size < 65536)
    assert building[0]["path"].encode() + b"," not in menus and rows[v2]["path"].encode() + b"," in menus
