"""Replicated boot servers ([[servers]], docs/replicas.md): `nfsroot-build
sync` brings each one to the primary's state with rsync, in the order that
keeps a server from offering what it does not hold: the version trees, then
the TFTP root, and last the files that name the server itself (its menus,
its DHCP and NFS configs), rendered for it.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import groups, versions
from .config import Config, Replica
from .context import Context
from .files import atomic_write
from .render.ha import kea_ha, preferred_servers, served_prefix
from .render.http import nginx_dropin
from .render.server import exports, ganesha_exports, kea_config
from .state import now
from .steps.dhcp import KEA_CONFIG
from .steps.nfs import exports_dropin, ganesha_dropin
from .steps.node_menus import MENU_DIRS, node_menu_files
from .steps.tftp import nginx_dropin_path

# -a: owners, modes, times, symlinks, devices; -H hard links within a tree
# (the root's own); -A -X: ACLs and extended attributes (file capabilities
# such as ping's live in security.capability); --numeric-ids: the root's
# uids are the root's, not the server's (rsync(1)). --mkpath: the replica's
# parent directories are made on first copy.
RSYNC_TREE = ["rsync", "-aHAX", "--numeric-ids", "--delete", "--mkpath", "--stats"]
# Rendered files: compared by checksum (-c), so a second sync copies none
# even though each sync writes them anew.
RSYNC_RENDERED = ["rsync", "-rlptc", "--mkpath", "--stats"]


@dataclass
class Copied:
    files: int = 0
    bytes: int = 0

    def add(self, other: Copied) -> None:
        self.files += other.files
        self.bytes += other.bytes


# rsync(1): "up to 20 additional hierarchies" for --compare-dest/--copy-dest/--link-dest.
MAX_LINK_DESTS = 20


def stats(out: str) -> Copied:
    """Files and bytes rsync transferred, from its --stats lines (rsync(1):
    "Number of regular files transferred", "Total transferred file size")."""
    def number(label: str) -> int:
        m = re.search(rf"^{label}: ([\d,]+)", out, re.M)
        return int(m.group(1).replace(",", "")) if m else 0
    return Copied(number("Number of regular files transferred"), number("Total transferred file size"))


def location(r: Replica, path: str) -> str:
    """rsync's name of a server path on the replica: a local path or host:path."""
    host = r.tree.split(":", 1)[0] + ":" if not r.tree.startswith("/") else ""
    return host + str(Path(served_prefix(r)) / path.lstrip("/"))


def replica_config(cfg: Config, r: Replica) -> Config:
    """The config as replica r serves it: itself as the server (next-server,
    root-path, nfsroot=, HTTP URLs). Not validated again (cfg was)."""
    server = cfg.server.model_copy(update={"address": r.address, "interface": r.interface or cfg.server.interface})
    return cfg.model_copy(update={"server": server})


def replica_context(ctx: Context, r: Replica) -> Context:
    """ctx as replica r sees it: its config, its tree as the prefix."""
    return replace(ctx, config=replica_config(ctx.config, r), prefix=Path(served_prefix(r)))


def ready_versions(ctx: Context) -> list[tuple[int, dict]]:
    """The default root's versions a replica gets: the finished ones (a
    building version is not offered anywhere yet; a failed one never)."""
    return [(vid, rec) for vid, rec in sorted(ctx.state.versions().items()) if rec["status"] == "ready"]


@dataclass(frozen=True)
class Held:
    """One root version as a replica holds it."""
    label: str    # "v2"; a group root's "<key>:v2" (docs/groups.md: each has its own series)
    path: str     # its tree (config-level path)
    tftp: str     # its kernel directory, relative to tftp.root
    ready: bool   # finished: copied and offered; otherwise kept off the replica


def series(ctx: Context) -> list[list[Held]]:
    """Every root version of the primary, one list per version series: the
    default root's, then each group root's (its own state under
    <state dir>/roots/<key>/, groups.py), oldest first."""
    cfg = ctx.base_config or ctx.config
    out = [[Held(versions.label(vid), rec["path"], versions.tftp_dir_of(cfg.name, vid), rec["status"] == "ready")
            for vid, rec in sorted(ctx.state.versions().items())]]
    for gr in groups.group_roots(cfg):
        recs = groups.root_state(ctx, gr).versions()
        out.append([Held(f"{gr.key}:{versions.label(vid)}", rec["path"], versions.tftp_dir_of(gr.config.name, vid),
                         rec["status"] == "ready") for vid, rec in sorted(recs.items())])
    return out


def gone(ctx: Context, r: Replica, all_series: list[list[Held]]) -> list[Held]:
    """What the replica holds from an earlier sync that the primary no longer
    has ready in all_series (`root prune` removed it): removed from the
    replica, last."""
    ready = {h.label for s in all_series for h in s if h.ready}
    held = ctx.state.replicas().get(r.name, {}).get("trees", {})
    return [Held(label, rec["path"], rec["tftp"], False) for label, rec in held.items() if label not in ready]


def rendered_files(ctx: Context, r: Replica, all_series: list[list[Held]] | None = None) -> dict[str, str]:
    """Server path -> content of the files that name replica r itself: the
    node menus, the Kea config (with r as HA peer), the NFS exports and, with
    boot.transport "http", the nginx drop-in. all_series: series(ctx), when
    the caller has read it already."""
    all_series = series(ctx) if all_series is None else all_series
    rctx = replica_context(ctx, r)
    cfg, served = rctx.config, rctx.served
    tftp = cfg.tftp.root.rstrip("/")
    out = {f"{tftp}/{rel}": text for rel, text in node_menu_files(rctx).items()}
    base = ctx.base_config or ctx.config
    out[KEA_CONFIG] = kea_config(cfg, served, groups.node_root_paths(rctx), ha=kea_ha(base, r.name),
                                 preferred=preferred_servers(base, ctx.served))
    roots = [(vid, rec["path"]) for vid, rec in ready_versions(ctx)]
    # The group roots' ready versions (sync copies them): exported beside the default root's.
    own = sorted(h.path for s in all_series[1:] for h in s if h.ready)
    if cfg.nfs.server == "ganesha":
        out[ganesha_dropin(cfg.name)] = ganesha_exports(cfg, served, roots, own)
    else:
        out[exports_dropin(cfg.name)] = exports(cfg, served, roots, own)
    if cfg.boot.transport == "http":
        out[nginx_dropin_path(rctx)] = nginx_dropin(cfg, served)
    return out


def tftp_filters(ctx: Context, all_series: list[list[Held]], removed: list[Held] = ()) -> list[str]:
    """rsync filter rules for the TFTP root: no per-node menus (the replica
    gets its own) and no kernel directory of a version that is not ready.
    Excluded files are also kept from --delete on the replica; so are
    (protect rules) the kernel directories of removed versions, which the
    replica's menus may still name until sync rewrites them."""
    directory, pattern = MENU_DIRS[ctx.config.boot.loader]
    rules = ["--filter=+ /ipxe/boot.ipxe", "--filter=+ /boot/grub/grub.cfg", f"--filter=- /{directory}/{pattern}"]
    rules += [f"--filter=- /{h.tftp}/" for s in all_series for h in s if not h.ready]
    rules += [f"--filter=P /{h.tftp}/" for h in removed]
    return rules


def removal_argv(empty: Path, dest: str, names: list[str]) -> list[str]:
    """rsync that deletes the directories names (and nothing else) in dest:
    an empty source, --delete, the names included and everything else
    excluded, which keeps it from deletion (rsync(1), FILTER RULES). One
    command for a local tree and a host:/path alike."""
    return ["rsync", "-r", "--delete", *(f"--filter=+ /{n}/***" for n in names), "--filter=- *",
            f"{empty}/", dest.rstrip("/") + "/"]


def sync_one(ctx: Context, r: Replica, all_series: list[list[Held]], preview: bool = False) -> dict:
    """Copy everything replica r lacks of all_series (series(ctx)) and the
    TFTP root; return what was copied. preview:
    rsync --dry-run (read-only: it runs in a dry-run too) says what would
    be copied, and nothing is written (the rendered files are staged in a
    temporary directory, the state is not saved)."""
    def run(argv: list[str]):
        if preview:
            # Without -A -X: rsync 3.2's --dry-run fails opening the xattrs
            # of directories it would create ("gen_entry_copy_xattrs: secure
            # open ... failed"); the files and bytes it reports are the same.
            argv = [a.replace("AX", "") if a == RSYNC_TREE[1] else a for a in argv]
            return ctx.runner.run([argv[0], "--dry-run", *argv[1:]], probe=True)
        return ctx.runner.run(argv)
    copied = Copied()
    held: dict[str, Held] = {}
    for versions_of_root in all_series:
        previous: list[str] = []
        for h in (h for h in versions_of_root if h.ready):
            # --link-dest: a file equal to one in an earlier version on the
            # replica becomes a hard link there, not a copy (a new version
            # costs only what changed). Every earlier version, newest first,
            # up to rsync's 20 (rsync(1), --link-dest): a version cloned from
            # an older one (after a rollback) finds its files there, not only
            # in the version numbered before it. Relative to the destination:
            # an absolute path keeps it valid over ssh too.
            link = [f"--link-dest={Path(served_prefix(r)) / p.lstrip('/')}" for p in previous[::-1][:MAX_LINK_DESTS]]
            res = run([*RSYNC_TREE, *link, f"{ctx.host(h.path)}/", location(r, h.path) + "/"])
            copied.add(stats(res.stdout))
            held[h.label] = h
            previous.append(h.path)
    cfg = ctx.config
    removed = gone(ctx, r, all_series)
    res = run([*RSYNC_TREE, *tftp_filters(ctx, all_series, removed), f"{ctx.tftp_root}/", location(r, cfg.tftp.root) + "/"])
    copied.add(stats(res.stdout))
    # Last: what makes nodes boot from r names only versions copied above.
    with tempfile.TemporaryDirectory(prefix="nfsroot-build-sync-") as scratch:
        staged = Path(scratch) if preview else ctx.state_dir / "replicas" / r.name
        for path, text in rendered_files(ctx, r, all_series).items():
            target = staged / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_text() != text:
                atomic_write(target, text.encode(), 0o644)
        res = run([*RSYNC_RENDERED, f"{staged}/", location(r, "/")])
        copied.add(stats(res.stdout))
        # Then what `root prune` removed on the primary: no menu of the
        # replica names it any more (rewritten just above), and its exports
        # list only what the replica holds.
        empty = Path(scratch) / "empty"
        empty.mkdir()
        for parent, names in removal_groups(removed, cfg.tftp.root).items():
            run(removal_argv(empty, location(r, parent), names))
    if not preview:
        ctx.state.set_replica(r.name, versions=[label for label in held if ":" not in label], synced=now(),
                              trees={label: {"path": h.path, "tftp": h.tftp} for label, h in held.items()})
        ctx.state.save()
    return {"server": r.name, "address": r.address, "tree": r.tree, "files": copied.files,
            "bytes": copied.bytes, "versions": list(held), "removed": [h.label for h in removed]}


def removal_groups(removed: list[Held], tftp_root: str) -> dict[str, list[str]]:
    """Parent directory -> the names in it to delete: each removed version's
    tree and kernel directory."""
    out: dict[str, list[str]] = {}
    for h in removed:
        for path in (h.path, f"{tftp_root.rstrip('/')}/{h.tftp}"):
            parent, _, name = path.rstrip("/").rpartition("/")
            out.setdefault(parent or "/", []).append(name)
    return out


def sync(ctx: Context, preview: bool = False) -> list[dict]:
    """Bring every replica to the primary's state (under the build's lock);
    preview: only say what would be copied (sync_one)."""
    cfg = ctx.base_config or ctx.config
    all_series = series(ctx)   # each root's state read once, for every replica
    return [sync_one(ctx, r, all_series, preview) for r in cfg.servers]


def status(ctx: Context) -> list[dict]:
    """Each replica's versions as the last sync left them, and whether it
    lacks a ready version the primary has, of any series (the default
    root's and each group root's)."""
    cfg = ctx.base_config or ctx.config
    ready = [h.label for s in series(ctx) for h in s if h.ready]
    recs = ctx.state.replicas()
    out = []
    for r in cfg.servers:
        rec = recs.get(r.name, {})
        # "trees" holds every series' labels; a state from before group
        # roots were synced has only "versions" (the default root's).
        held = list(rec.get("trees", {})) or rec.get("versions", [])
        out.append({"server": r.name, "address": r.address, "tree": r.tree, "versions": held,
                    "synced": rec.get("synced"), "missing": [v for v in ready if v not in held]})
    return out


def status_lines(ctx: Context) -> list[str]:
    """`status`'s lines for the replicas: each one's versions."""
    return [f"server {r['server']} ({r['address']}): versions {', '.join(r['versions']) or 'none'}"
            + (f"; lacks {', '.join(r['missing'])}: run `nfsroot-build sync`" if r["missing"] else "")
            + (f" (synced {r['synced']})" if r["synced"] else "")
            for r in status(ctx)]
