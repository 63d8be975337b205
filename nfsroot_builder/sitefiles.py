"""A site's own files and hooks for the root (root.files, root.hooks): what
the tree holds, what it may hold, and what a version got from it.

Pure reading, no changes: the config checks the tree with ``problems``,
versions.root_digest folds ``digest`` into a root's identity (so editing a
file or a hook makes a new version), and the site-files and site-hooks steps
(steps/site.py) act on ``scan`` and ``to_remove``.

The tree mirrors the root: ``DIR/etc/ssh/sshd_config`` becomes the root's
``/etc/ssh/sshd_config``. ``DIR/nodes/<node>/var/...`` goes to that node's
own /var on the server (layout "per-node": ``<root.path>.nodes/<node>``);
no other layout has a per-node tree.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .files import sha256_file

NODES_DIR = "nodes"
# The part of a node's file system that is its own (layout per-node: /var,
# render.node_dir); DIR/nodes/<node>/var/x lands in that tree as x.
NODE_TREE = "var"
# What a version got from root.files, in the root (cloned with it: the next
# version removes what is no longer in DIR), and in each node's own tree.
MANIFEST = "etc/nfsroot-build/site-files.json"
NODE_MANIFEST = "lib/nfsroot-build/site-files.json"
# Which hooks ran in a tree, and in which version (site-hooks).
HOOKS_RAN = "etc/nfsroot-build/site-hooks.json"
# Files the build's own steps write in the root (fstab, hosts, hostname,
# node-network, mountnfs, initramfs-config, the chroot session): a copy from
# DIR would be overwritten by them, and each step would find the other's
# bytes at every `status`. tests/unit/test_root_files_rules.py checks this
# list against the steps' own.
RESERVED = ("etc/nfsroot-build", "etc/fstab", "etc/hosts", "etc/hostname", "etc/machine-id",
            "var/lib/dbus/machine-id", "etc/network/interfaces", "etc/resolv.conf",
            "etc/udev/rules.d/70-persistent-net.rules", "etc/udev/rules.d/75-persistent-net-generator.rules",
            "etc/default/rcS", "etc/default/nfs-common", "etc/idmapd.conf", "etc/mtab", "etc/rcS.d/S35mountnfs",
            "etc/inittab.d/nfsroot-build-serial.tab",
            "etc/systemd/system/multi-user.target.wants/remote-fs.target",
            "etc/initramfs-tools/conf.d/nfsroot-build",
            "etc/initramfs-tools/scripts/init-bottom/nfsroot-build-layout",
            "etc/initramfs-tools/hooks/nfsroot-build-layout", "usr/sbin/policy-rc.d")


@dataclass(frozen=True)
class Entry:
    """One path of the tree: kind "file" | "dir" | "link", its permission
    bits, owner and group, and the sha256 of a file's bytes or a link's target."""
    kind: str
    mode: int
    uid: int
    gid: int
    sha256: str = ""
    target: str = ""

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v != ""}


def _entry(path: Path) -> Entry | str:
    """The entry of path, or why it cannot be copied (a device, a FIFO, a socket)."""
    st = path.lstat()
    mode, ids = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    if stat.S_ISLNK(st.st_mode):
        return Entry("link", 0o777, *ids, target=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry("dir", mode, *ids)
    if stat.S_ISREG(st.st_mode):
        return Entry("file", mode, *ids, sha256=sha256_file(path))
    return "is not a regular file, directory or symlink"


def walk(top: Path) -> dict[str, Entry | str]:
    """Every path under top (relative, sorted, parents first) -> its Entry or
    a problem; symlinks are entries, never followed."""
    out: dict[str, Entry | str] = {}
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(dirpath) / name
            out[str(path.relative_to(top))] = _entry(path)
    return dict(sorted(out.items(), key=lambda kv: PurePosixPath(kv[0]).parts))


def scan(top: str | Path) -> tuple[dict[str, Entry], dict[str, dict[str, Entry]]]:
    """(the root's entries, node -> the entries of its own tree), both by path
    relative to where they land (a node's: relative to its /var). Paths with
    problems are left out (``problems`` names them)."""
    root: dict[str, Entry] = {}
    nodes: dict[str, dict[str, Entry]] = {}
    if not top:
        return root, nodes
    for rel, entry in walk(Path(top)).items():
        if isinstance(entry, str):
            continue
        parts = PurePosixPath(rel).parts
        if parts[0] != NODES_DIR:
            root[rel] = entry
        elif len(parts) > 3 and parts[2] == NODE_TREE:
            nodes.setdefault(parts[1], {})[str(PurePosixPath(*parts[3:]))] = entry
    return root, nodes


def reserved(rel: str) -> str | None:
    """The build's own path rel is, or is under, or None."""
    for r in RESERVED:
        if rel == r or rel.startswith(r + "/"):
            return r
    return None


def problems(top: str, layout: str, node_names: list[str]) -> list[str]:
    """What root.files' tree holds that cannot be copied, each naming the path."""
    if not top or not Path(top).is_dir():
        return []
    out = []
    known = set(node_names)
    for rel, entry in walk(Path(top)).items():
        parts = PurePosixPath(rel).parts
        if isinstance(entry, str):
            out.append(f"{rel} {entry}")
        elif parts[0] != NODES_DIR:
            if (r := reserved(rel)) and not (entry.kind == "dir" and r.startswith(rel + "/")):
                out.append(f"{rel}: /{r} is written by the build itself (its own steps), not from root.files")
        elif len(parts) == 1:
            if entry.kind != "dir":
                out.append(f"{rel}: must be a directory (nodes/<node>/var/... per node)")
        elif len(parts) == 2:
            if parts[1] not in known:
                out.append(f"{rel}: no node named {parts[1]!r} in the config")
            elif layout != "per-node":
                out.append(f"{rel}: node {parts[1]}: root.layout {layout!r} has no per-node tree "
                           "(only \"per-node\": each node's own /var)")
            elif entry.kind != "dir":
                out.append(f"{rel}: node {parts[1]}: must be a directory holding var/")
        elif len(parts) == 3 and parts[1] in known and layout == "per-node" \
                and (parts[2] != NODE_TREE or entry.kind != "dir"):
            out.append(f"{rel}: node {parts[1]}: /{parts[2]} is not the node's own tree: with layout "
                       "\"per-node\" that is the directory var/ (its /var on the server)")
    return out


def hook_id(path: str) -> dict:
    """What a hook is for the root's identity: its name, mode and bytes' sha256."""
    p = Path(path)
    try:
        return {"name": p.name, "mode": f"{stat.S_IMODE(p.stat().st_mode):o}", "sha256": sha256_file(p)}
    except OSError as e:
        return {"name": p.name, "error": e.strerror}


def tree_id(top: str, nodes: bool = True) -> dict:
    """The tree's identity: every path with kind, mode, owner, link target
    and bytes' sha256; without nodes/ unless nodes (the nodes' own trees are
    shared by all root versions: a change there is no new version)."""
    if not top or not Path(top).is_dir():
        return {"missing": top}
    return {rel: (e.as_json() if isinstance(e, Entry) else e) for rel, e in walk(Path(top)).items()
            if nodes or PurePosixPath(rel).parts[0] != NODES_DIR}


def _sha(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def digest(files: str, hooks: list[str], nodes: bool = False) -> dict:
    """What root.files and root.hooks add to a root's identity (versions.root_digest;
    nodes: with the nodes' own trees, the site-files step's fingerprint):
    nothing when neither is set, so roots built before them keep their version."""
    out: dict = {}
    if files:
        out["files"] = _sha(tree_id(files, nodes))
    if hooks:
        out["hooks"] = [hook_id(h) for h in hooks]
    return out


def to_remove(previous: dict[str, dict], wanted: dict[str, Entry]) -> list[str]:
    """The paths a version got from the tree that the tree no longer holds
    (or holds as another kind), deepest first: the files before their directories."""
    gone = [rel for rel, e in previous.items()
            if rel not in wanted or wanted[rel].kind != e.get("kind")]
    return sorted(gone, key=lambda rel: PurePosixPath(rel).parts, reverse=True)


def manifest_text(paths: dict[str, dict]) -> str:
    """A manifest: path -> its entry and whether site-files made it ("made")."""
    return json.dumps({"paths": paths}, indent=1, sort_keys=True) + "\n"
