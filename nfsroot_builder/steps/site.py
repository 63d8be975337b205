"""The site's own files and hooks in the root (root.files, root.hooks)."""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import chroot, sitefiles, versions
from ..context import Context
from ..errors import CommandFailed, NfsrootError
from ..files import sha256_file
from ..render import node_dir
from .base import Step, StepResult


@dataclass
class Tree:
    """Where one part of root.files lands: the root, or a node's own /var."""
    what: str                               # "the root" | "node n1's /var" (for messages)
    top: Path
    wanted: dict[str, sitefiles.Entry]
    manifest: Path                          # what this tree got from root.files last time
    node: str | None = None


def trees(ctx: Context) -> list[Tree]:
    """The root, and with layout per-node every node that has files now or
    got some before (its own manifest is there: the nodes' trees are shared
    by all root versions, so only they know)."""
    cfg = ctx.config
    root_wanted, node_wanted = sitefiles.scan(cfg.root.files)
    out = [Tree("the root", ctx.root, root_wanted, ctx.root / sitefiles.MANIFEST)]
    if cfg.root.layout != "per-node":
        return out
    for node in cfg.nodes:
        top = Path(node_dir(cfg, ctx.served, node.name))
        if node.name in node_wanted or ctx.files.exists(top / sitefiles.NODE_MANIFEST):
            out.append(Tree(f"node {node.name}'s /var", top, node_wanted.get(node.name, {}),
                            top / sitefiles.NODE_MANIFEST, node.name))
    return out


def _manifest(ctx: Context, path: Path) -> dict:
    """A manifest as planned so far (a dry-run) or on disk: {"paths": {...}}."""
    data = ctx.files.read(path)
    try:
        out = json.loads(data) if data else {}
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _owner(path: Path) -> tuple[int, int]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:   # planned, not made (a dry-run): made by whoever runs it
        return os.geteuid(), os.getegid()
    return st.st_uid, st.st_gid


def _matches(path: Path, e: sitefiles.Entry) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if e.kind == "dir":
        return os.path.isdir(path) and not os.path.islink(path)
    if (st.st_uid, st.st_gid) != (e.uid, e.gid):
        return False
    if e.kind == "link":
        return os.path.islink(path) and os.readlink(path) == e.target
    return os.path.isfile(path) and not os.path.islink(path) and (st.st_mode & 0o7777) == e.mode \
        and sha256_file(path) == e.sha256


class SiteFiles(Step):
    """Copy root.files, the site's own tree, into the root; its nodes/<node>/var/ into each node's /var.

    root.files = "DIR" (relative to the config file's directory): DIR
    mirrors the root (DIR/etc/ssh/sshd_config is the root's
    /etc/ssh/sshd_config). Files and symlinks keep their owner, group and
    mode (a link's target as it is, never followed); a directory DIR adds
    gets DIR's mode and owner, one the root already has (a package's /etc)
    keeps its own. With layout "per-node", DIR/nodes/<node>/var/... goes
    to that node's own /var on the server (<root.path>.nodes/<node>);
    `check` refuses nodes/ for another layout, a name that is not a node,
    anything but var/ there, device files, and the files the build's own
    steps write (/etc/fstab, /etc/hosts, /etc/resolv.conf, ...).

    What a version got from DIR is listed in /etc/nfsroot-build/site-files.json
    in the root (a node's: /var/lib/nfsroot-build/site-files.json), so the
    next version (cloned from this one) removes what DIR no longer holds. A
    file DIR shadowed (a package's sshd_config) is kept in that list too and
    put back when it leaves DIR; a directory DIR added is removed once empty
    (DIR's directories are made with one `mkdir -p`, which leaves existing
    ones as they are). The tree's content (paths,
    modes, owners, link targets, bytes) is part of the root's identity: a
    change makes a new root version (docs/versions.md); a change under
    nodes/ only is copied into the nodes' trees, which all versions share.
    """
    name = "site-files"
    needs = ("bootstrap", "root-packages")

    def fingerprint(self, ctx: Context) -> dict:
        return sitefiles.digest(ctx.config.root.files, [], nodes=True)

    def verify(self, ctx: Context) -> list[str]:
        bad = []
        for t in trees(ctx):
            had = _manifest(ctx, t.manifest).get("paths", {})
            if set(had) != set(t.wanted):
                bad.append(f"{t.what}: {t.manifest} does not list what root.files holds")
            bad += [f"{t.top / rel}" for rel, e in t.wanted.items() if not _matches(t.top / rel, e)]
        return [f"not as in root.files: {' '.join(bad[:8])}" + (" ..." if len(bad) > 8 else "")] if bad else []

    def run(self, ctx: Context) -> StepResult:
        changed = False
        for t in trees(ctx):
            changed |= self._remove(ctx, t)
            record, copied = self._copy(ctx, t)
            changed |= copied
            if record:
                # 0600: it holds the bytes of the files DIR shadowed.
                changed |= ctx.files.ensure_file(t.manifest, sitefiles.manifest_text(record), 0o600)
            else:
                changed |= ctx.files.ensure_absent(t.manifest)
        return StepResult(changed=changed)

    def _remove(self, ctx: Context, t: Tree) -> bool:
        """Take out what this tree got from root.files before and DIR no longer holds."""
        had = _manifest(ctx, t.manifest).get("paths", {})
        changed, removed = False, set()
        for rel in sitefiles.to_remove(had, t.wanted):
            path, was = t.top / rel, had[rel]
            if was.get("made"):
                if was.get("kind") == "dir":
                    try:
                        left = [n for n in os.listdir(path) if str(path / n) not in removed]
                    except OSError:
                        left = []
                    if left:   # a package or a hook put files there: the directory stays
                        continue
                changed |= ctx.files.ensure_absent(path)
                removed.add(str(path))
            elif old := was.get("shadowed"):
                # The file DIR shadowed (a package's) comes back as it was.
                if "target" in old:
                    if not path.is_symlink():
                        changed |= ctx.files.ensure_absent(path)
                    changed |= ctx.files.ensure_symlink(path, old["target"])
                else:
                    if path.is_symlink():
                        changed |= ctx.files.ensure_absent(path)
                    changed |= ctx.files.ensure_file(path, base64.b64decode(old["data"]), old["mode"],
                                                     owner=(old["uid"], old["gid"]))
                changed |= ctx.files.ensure_owner(path, (old["uid"], old["gid"]))
        return changed

    def _copy(self, ctx: Context, t: Tree) -> tuple[dict[str, dict], bool]:
        """Make the tree hold what root.files gives it; (its manifest entries, changed)."""
        had = _manifest(ctx, t.manifest).get("paths", {})
        record: dict[str, dict] = {}
        changed = False
        # Which directories a fresh root will have is known only once the
        # packages are in: one `mkdir -p` of all DIR's directories, every
        # run, shows the same in a dry-run as in the real run, and changes
        # none that exists. Those it made get DIR's mode and owner.
        dirs = [rel for rel, e in t.wanted.items() if e.kind == "dir"]
        made_dirs = {rel for rel in dirs if rel in had and had[rel].get("made") or
                     rel not in had and not ctx.files.exists(t.top / rel)}
        for rel in dirs:
            path = t.top / rel
            if ctx.files.exists(path) and not ctx.files.is_dir(path):
                raise NfsrootError(f"root.files: {rel} is a directory in {ctx.config.root.files} "
                                   f"but not in {t.what} ({path}); nothing of it is replaced")
        if dirs:
            ctx.runner.run(["mkdir", "-p", "--", *(str(t.top / rel) for rel in dirs)])
        for rel, e in t.wanted.items():
            path = t.top / rel
            if e.kind == "dir":
                ctx.files.expect(path, mode=0o755)   # what mkdir -p made (umask 022)
                if rel in made_dirs:
                    changed |= ctx.files.ensure_mode(path, e.mode)
                    changed |= ctx.files.ensure_owner(path, (e.uid, e.gid))
                record[rel] = {**e.as_json(), "made": rel in made_dirs}
                continue
            before = had.get(rel)
            exists = ctx.files.exists(path)
            if exists and ctx.files.is_dir(path) and not path.is_symlink():
                raise NfsrootError(f"root.files: {rel} is a {e.kind} in {ctx.config.root.files} but a "
                                   f"directory in {t.what} ({path}); it is not replaced")
            entry = {**e.as_json(), "made": before["made"] if before else not exists}
            if before and before.get("shadowed"):
                entry["shadowed"] = before["shadowed"]
            elif exists and not before:
                # A file the root has (a package's): kept in the manifest to
                # put back when it leaves DIR (the manifest's own write is
                # the only change: a dry-run, which cannot know what the
                # packages bring, shows the same lines).
                entry["shadowed"] = self._original(ctx, path)
            source = Path(ctx.config.root.files) / (rel if t.node is None else
                                                     f"{sitefiles.NODES_DIR}/{t.node}/{sitefiles.NODE_TREE}/{rel}")
            if e.kind == "link":
                if exists and not path.is_symlink():
                    changed |= ctx.files.ensure_absent(path)
                changed |= ctx.files.ensure_symlink(path, e.target)
                changed |= ctx.files.ensure_owner(path, (e.uid, e.gid))
            else:
                if path.is_symlink():
                    changed |= ctx.files.ensure_absent(path)   # never write through a link
                changed |= ctx.files.ensure_file(path, source.read_bytes(), e.mode, owner=(e.uid, e.gid))
            record[rel] = entry
        return record, changed

    @staticmethod
    def _original(ctx: Context, path: Path) -> dict:
        uid, gid = _owner(path)
        if path.is_symlink():
            return {"target": os.readlink(path), "uid": uid, "gid": gid}
        return {"data": base64.b64encode(ctx.files.read(path) or b"").decode(), "mode": ctx.files.mode(path),
                "uid": uid, "gid": gid}


def hooks_ran_text(ctx: Context) -> str:
    """What the hooks record in a tree once all ran in it: the version and each hook's identity."""
    return json.dumps({"version": versions.label(ctx.version_id),
                       **sitefiles.digest("", ctx.config.root.hooks)}, sort_keys=True) + "\n"


class SiteHooks(Step):
    """Run root.hooks, the site's executables, in the root's chroot, in order.

    Each hook (a path relative to the config file) is copied into the
    root's /tmp and run there as `chroot <root> /tmp/nfsroot-build-hook-<n>-<name>`
    in the chroot session root-packages uses (proc, sysfs, devpts,
    policy-rc.d: no daemon starts), after the packages and root.files are
    in; its output goes to this step's log. A hook that fails stops the
    build (exit 1) naming the hook (root.hooks[<n>]) and its last output
    lines; the version being built does not become current. Hooks run
    again in every new root version (it starts as a copy of the last one):
    write them so that a second run changes nothing (`systemctl enable` is).
    Once all ran, /etc/nfsroot-build/site-hooks.json in the tree records
    the version and the hooks: a version they ran in is never run again (a
    finished one may be booted). Each hook's name, mode and bytes are part
    of the root's identity: editing a hook makes a new root version.
    """
    name = "site-hooks"
    needs = ("bootstrap", "root-packages")

    def fingerprint(self, ctx: Context) -> dict:
        return sitefiles.digest("", ctx.config.root.hooks)

    def verify(self, ctx: Context) -> list[str]:
        ran = ctx.root / sitefiles.HOOKS_RAN
        if not ctx.config.root.hooks:
            return [f"{ran} is left from hooks no longer configured"] if ran.exists() else []
        try:
            ok = ran.read_text() == hooks_ran_text(ctx)
        except OSError:
            ok = False
        return chroot.leftovers(ctx) + ([] if ok else [f"root.hooks have not all run in this version ({ran})"])

    def run(self, ctx: Context) -> StepResult:
        hooks = ctx.config.root.hooks
        ran = ctx.root / sitefiles.HOOKS_RAN
        if not hooks:
            return StepResult(changed=ctx.files.ensure_absent(ran))
        if ctx.files.read(ran) == hooks_ran_text(ctx).encode():
            return StepResult(changed=False)   # they ran in this version: never again in a finished one
        with chroot.session(ctx) as ch:
            for i, hook in enumerate(hooks):
                inside = f"tmp/nfsroot-build-hook-{i}-{Path(hook).name}"
                ctx.files.ensure_file(ctx.root / inside, Path(hook).read_bytes(), 0o755)
                try:
                    ch.run([f"/{inside}"])
                except CommandFailed as e:
                    raise CommandFailed(f"root.hooks[{i}] {hook} (in the root's chroot: /{inside})",
                                        e.returncode, e.output_tail, e.log) from None
                finally:
                    ctx.files.ensure_absent(ctx.root / inside)
        ctx.files.ensure_file(ran, hooks_ran_text(ctx), 0o644)
        return StepResult(changed=True)
