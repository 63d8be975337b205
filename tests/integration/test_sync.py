"""`nfsroot-build sync` (issue 13, point 2; docs/replicas.md) on a real root:
the shared mmdebstrap build of tests/root_builds.py with a replica `b`
whose tree is a local directory.

- the first sync copies every ready version; a second copies nothing;
- after a new version (made cheaply: one file through root.files, a clone)
  a sync copies only that version: its unchanged files are hard links to
  the version before it on the replica; again a second sync copies nothing;
- `sync --dry-run` reports the same files and bytes and copies nothing;
- the replica's own files name it: its menus boot nfsroot=<b>:..., its Kea
  config (Kea HA, load-balancing) has b as next-server and this server;
- `status` lists b's versions;
- a version the replica holds and the primary no longer has (`root prune`)
  is removed from the replica by the next sync, and nothing else;
- the command sync removes a pruned version with deletes exactly the named
  directories (real rsync on a scratch tree: `mm` goes, `mm.v2` stays).

The config is put back afterwards by test_lab_boot's edit_config fixture.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nfsroot_builder import replicas
from nfsroot_builder.state import State

from helpers import nfsroot_build
from versions_helpers import root_list

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
import test_lab_boot  # noqa: E402

edit_config = test_lab_boot.edit_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real builds)")

REPLICA = "192.168.0.2"
LAST_NODE = 'ip = "192.168.0.102"\n'


def replica_keys(tree: Path) -> str:
    return (f'{LAST_NODE}\n[dhcp]\nserver = "kea"\n\n'
            f'[[servers]]\nname = "b"\naddress = "{REPLICA}"\ntree = "{tree}"\n')


def sync(b, *options) -> dict:
    t0 = time.monotonic()
    res = nfsroot_build("sync", "-c", b.cfg, "--prefix", b.stage, "--json", *options, check=True)
    [row] = json.loads(res.stdout)["replicas"]
    row["seconds"] = round(time.monotonic() - t0, 1)
    print(f"sync: {row}")
    return row


def ready(b) -> list[str]:
    return sorted((v for v, r in root_list(b).items() if r["state"] not in ("building", "failed")),
                  key=lambda v: int(v[1:]))


def test_sync_copies_a_new_version_only_then_nothing(mm, edit_config, tmp_path):
    b = mm
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)   # done, whatever ran before
    tree = tmp_path / "b"
    edit_config(b, LAST_NODE, replica_keys(tree))
    # Kea HA in the primary's own config, checked by `kea-dhcp4 -t` in the step.
    nfsroot_build("run", "dhcp-server", "-c", b.cfg, "--prefix", b.stage, check=True)
    kea = json.loads("\n".join(line for line in (b.stage / "etc/kea/kea-dhcp4-nfsroot-build.conf").read_text()
                               .splitlines() if not line.startswith("#")))
    ha = kea["Dhcp4"]["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert ha["this-server-name"] == "primary" and ha["mode"] == "load-balancing"
    assert [p["url"] for p in ha["peers"]] == ["http://192.168.0.1:8647/", f"http://{REPLICA}:8647/"]

    first = sync(b)
    held = ready(b)
    assert first["versions"] == held and first["bytes"] > 100 * 2**20, first
    again = sync(b)
    assert (again["files"], again["bytes"]) == (0, 0), again

    # A new version: one file more, cloned from the current one.
    site = tmp_path / "site"
    (site / "etc").mkdir(parents=True)
    (site / "etc/replica-test").write_text("made for the sync test\n")
    edit_config(b, "[root]\n", f'[root]\nfiles = "{site}"\n')
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    rows = root_list(b)
    new = next(v for v, r in rows.items() if r["state"] == "current")
    assert new not in held
    new_path, old_path = rows[new]["path"], rows[held[-1]]["path"]

    # --dry-run: what would be copied (rsync --dry-run), nothing copied.
    preview = sync(b, "--dry-run")
    assert not (tree / new_path.lstrip("/")).exists()
    third = sync(b)
    assert (preview["files"], preview["bytes"]) == (third["files"], third["bytes"]), (preview, third)
    assert third["versions"] == held + [new]
    kernel_dir = sum(p.stat().st_size for p in (tree / f"srv/tftp/mm/mm.{new}").iterdir())
    # Only the new version: its changed files and its kernel directory, far
    # less than one tree (the first sync copied hundreds of MB).
    assert third["bytes"] < kernel_dir + 10 * 2**20, (third, kernel_dir)
    assert (tree / new_path.lstrip("/") / "etc/replica-test").read_text() == "made for the sync test\n"
    # An unchanged file is one inode with the replica's previous version (--link-dest).
    same = "usr/bin/bash"
    assert (tree / new_path.lstrip("/") / same).stat().st_ino == (tree / old_path.lstrip("/") / same).stat().st_ino
    last = sync(b)
    assert (last["files"], last["bytes"]) == (0, 0), last

    # What `root prune` removed on the primary since an earlier sync: v9,
    # recorded as held by b (its tree and kernel directory there), gone from
    # the primary's versions. The next sync removes it from b, nothing else.
    state = State.load(b.stage / f"var/lib/nfsroot-build/{b.name}/state.json")
    trees = state.replicas()["b"]["trees"]
    state.set_replica("b", trees={**trees, "v9": {"path": "/srv/nfsroot/mm.v9", "tftp": "mm.v9"}})
    state.save()
    for stale in (tree / "srv/nfsroot/mm.v9/etc", tree / "srv/tftp/mm/mm.v9"):
        stale.mkdir(parents=True)
    pruned = sync(b)
    assert pruned["removed"] == ["v9"] and (pruned["files"], pruned["bytes"]) == (0, 0), pruned
    assert not (tree / "srv/nfsroot/mm.v9").exists() and not (tree / "srv/tftp/mm/mm.v9").exists()
    # (A further sync removes nothing: tests/unit/test_sync_prune_groups.py.)
    assert (tree / new_path.lstrip("/") / same).is_file() and (tree / old_path.lstrip("/") / same).is_file()

    # The replica's own files name it.
    menu = (tree / "srv/tftp/mm/boot/grub/grub.cfg-01-52-54-00-12-35-01").read_text()
    assert f"nfsroot={REPLICA}:{tree}{new_path},tcp,v3" in menu, menu
    assert "192.168.0.1" not in menu
    bkea = json.loads("\n".join(line for line in (tree / "etc/kea/kea-dhcp4-nfsroot-build.conf").read_text()
                                .splitlines() if not line.startswith("#")))["Dhcp4"]
    assert bkea["subnet4"][0]["next-server"] == REPLICA
    assert bkea["hooks-libraries"][1]["parameters"]["high-availability"][0]["this-server-name"] == "b"
    st = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, check=True).stdout
    assert f"server b ({REPLICA}): versions {', '.join(held + [new])}" in st, st


def test_the_removal_command_deletes_only_the_named_directories(tmp_path):
    """What sync runs for a version `root prune` removed (replicas.removal_argv):
    rsync's filter rules, proven on a real tree rather than read from the argv."""
    dest = tmp_path / "replica/srv/nfsroot"
    for name in ("mm", "mm.v2", "mm.v3", "other"):
        (dest / name / "etc").mkdir(parents=True)
        (dest / name / "etc/hostname").write_text(name)
    (dest / "mm.v2/etc/mm").mkdir()   # a name that is also inside a kept tree
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(replicas.removal_argv(empty, str(dest), ["mm", "mm.v3"]), check=True)
    assert sorted(p.name for p in dest.iterdir()) == ["mm.v2", "other"]
    assert (dest / "mm.v2/etc/mm").is_dir() and (dest / "mm.v2/etc/hostname").read_text() == "mm.v2"
