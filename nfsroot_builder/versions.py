"""Roots as versions: complete trees side by side, one of them current.

On disk (docs/versions.md): version 1 lives at ``root.path`` itself (so a
0.1 root is version 1 as it is, never moved), version N >= 2 at
``<root.path>.v<N>``; its kernel and initrd in TFTP under ``<name>`` (v1) or
``<name>.v<N>``. A path never changes once a version exists: a node that
mounted it keeps it however the current version moves.

Which version is current, the previous one, the per-node pins (canaries)
and each version's record live in the state (``State.versions``, the one
owner); this module decides and reads, the state saves.

A run builds into its *target* version (``target``): the current one when
the config still gives the same root, else a new one - cloned from the
current tree when only what is installed or written in it changed,
bootstrapped from scratch when suite, mirror, variant, architecture,
components or bootstrapper changed. The target becomes current only after
the run succeeded and ``verify_tree`` found its kernel and an initrd that
can mount NFS (``finish_run``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from . import sitefiles
from .config import Config
from .errors import NfsrootError, UsageError
from .packages_index import installed

BOOTSTRAP_KEYS = ("bootstrapper", "suite", "variant", "architecture", "components", "mirror")
# What the kernel NFS server knows of its clients (exports(5), nfsd(7)).
RMTAB = Path("/var/lib/nfs/rmtab")
NFSD_CLIENTS = Path("/proc/fs/nfsd/clients")
# NFS-Ganesha's client list, asked over DBus: the call `ganesha_mgr
# show_clients` makes (Debian 12 packages no ganesha_mgr; dbus-send is in
# dbus-bin). Ganesha answers on the system bus; the lab's ganesha on the
# lab's own bus, whose socket is this path under the build's state dir.
GANESHA_SHOW_CLIENTS = ["dbus-send", "--system", "--print-reply", "--dest=org.ganesha.nfsd",
                        "/org/ganesha/nfsd/ClientMgr", "org.ganesha.nfsd.clientmgr.ShowClients"]
LAB_SYSTEM_BUS = "lab/run/dbus/system_bus_socket"


def path_of(base: str, vid: int) -> str:
    """The root path (as in the config, without prefix) of version vid."""
    return base if vid == 1 else f"{base}.v{vid}"


def tftp_dir_of(name: str, vid: int) -> str:
    """The TFTP directory (relative to tftp.root) of version vid's kernel and initrd."""
    return name if vid == 1 else f"{name}.v{vid}"


def parse_id(text: str) -> int:
    m = re.fullmatch(r"v?(\d+)", text.strip())
    if not m or int(m.group(1)) < 1:
        raise UsageError(f"{text!r} is not a version (v1, v2, ... as `root list` shows)")
    return int(m.group(1))


def label(vid: int) -> str:
    return f"v{vid}"


def with_root_path(cfg: Config, path: str, serve: str | None = None) -> Config:
    """The config with root.path set to one version's path, and root.serve to
    how that version is served when given (validated already: not re-validated)."""
    root = {"path": path, **({"serve": serve} if serve else {})}
    return cfg.model_copy(update={"root": cfg.root.model_copy(update=root)})


def serve_of(rec: dict) -> str:
    """How a version reaches its nodes, as it was built: "nfs" (they mount
    its tree) or "image" (they fetch its squashfs into RAM). A version's
    menus follow it, not the config's root.serve of the day: a switch,
    rollback or canary to an NFS version gives NFS menus, to an image
    version image menus (docs/image-mode.md). A record from before the key:
    "nfs", the only mode there was."""
    return rec.get("serve", "nfs")


def bootstrap_identity(cfg: Config) -> dict:
    r = cfg.root
    return {k: getattr(r, k) for k in BOOTSTRAP_KEYS}


def root_digest(cfg: Config) -> str:
    """What a build writes into the tree depends on, but where it lives and
    the inventory: the root section without its path, the server address and
    [nfs] (fstab, the initrd's mounts), and the content of root.files and
    root.hooks. A change to any makes a new version.

    The nodes are not in it: adding a node rewrites the current version's
    /etc/hosts in place (one atomic rename, as 0.1 did), so running nodes
    learn the new name, and a cluster of 10,000 nodes does not copy its
    root for each one it adds.
    """
    data = cfg.root.model_dump(mode="json")
    data.pop("path", None)
    # root.files and root.hooks count by what they hold (paths, modes,
    # owners, bytes), not by where they are; unset, they add nothing, so a
    # root built before they existed keeps its version.
    for key in ("files", "hooks"):
        data.pop(key, None)
    # root.serve = "nfs" (the default) adds nothing either: a root built
    # before the key existed keeps its version; "image" makes a new one.
    if data.get("serve") == "nfs":
        data.pop("serve")
    data.update(sitefiles.digest(cfg.root.files, cfg.root.hooks))
    data["server"] = cfg.server.address
    data["nfs"] = cfg.nfs.model_dump(mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Target:
    """What a run builds into."""
    vid: int
    path: str                 # config-level path of the tree
    new: bool                 # not in the state yet
    clone_from: int | None    # clone this ready version's tree first
    # The first version of a group root may start as a copy of another
    # series' tree (groups.seed): its config-level path.
    clone_path: str | None = None


def target(cfg: Config, state, seed: str | None = None) -> Target:
    """The version this run builds into (see the module doc). seed: a tree
    of another series the first version may be cloned from (groups.seed)."""
    recs = state.versions()
    if not recs:
        return Target(1, path_of(cfg.root.path, 1), True, None, seed)
    digest = root_digest(cfg)
    current = state.current_version()
    if current and recs[current]["digest"] == digest and recs[current]["status"] == "ready":
        return Target(current, recs[current]["path"], False, None)
    # An older version made from the same inputs (a config change undone):
    # it becomes current again, nothing is rebuilt.
    for vid, rec in sorted(recs.items(), reverse=True):
        if rec["status"] == "ready" and rec["digest"] == digest:
            return Target(vid, rec["path"], False, None)
    # A build of the same inputs that did not finish: resume it (all --resume).
    for vid, rec in sorted(recs.items(), reverse=True):
        if rec["status"] == "building" and rec["digest"] == digest:
            return Target(vid, rec["path"], False, rec.get("clone_from"))
    vid = max(recs) + 1
    source = None
    if current and recs[current]["status"] == "ready" \
            and recs[current].get("identity") == bootstrap_identity(cfg):
        source = current
    return Target(vid, path_of(cfg.root.path, vid), True, source)


def begin(cfg: Config, state, t: Target, when: str) -> None:
    """Record the target as building (a new version) before any step runs."""
    if not t.new or t.vid in state.versions():
        return
    state.set_version(t.vid, path=t.path, status="building", created=when, digest=root_digest(cfg),
                      identity=bootstrap_identity(cfg), clone_from=t.clone_from,
                      tftp_dir=tftp_dir_of(cfg.name, t.vid), serve=cfg.root.serve,
                      **({"clone_path": t.clone_path} if t.clone_path else {}))


def adopt_legacy(cfg: Config, state, root_disk: Path, when: str) -> bool:
    """A 0.1 state (steps done, no versions) or a 0.1 root on disk: it is version 1
    as it is (nothing moved or removed). True when adopted."""
    if state.versions():
        return False
    ktftp = state.step("kernel-to-tftp")
    if ktftp.get("status") != "done" or not (root_disk / "etc/nfsroot-build/bootstrap.json").is_file():
        return False
    out = ktftp.get("outputs", {})
    state.set_version(1, path=path_of(cfg.root.path, 1), status="ready", created=when,
                      digest=root_digest(cfg), identity=bootstrap_identity(cfg), clone_from=None,
                      tftp_dir=cfg.name, kernel=out.get("kernel"), kernel_path=out.get("kernel_path"),
                      initrd_path=out.get("initrd_path"), adopted=True, serve=cfg.root.serve)
    state.set_current(1)
    return True


def clone_source(ctx) -> Path | None:
    """The tree (under the prefix) the run's version is cloned from, or None
    (bootstrapped from scratch)."""
    rec = ctx.state.versions().get(ctx.version_id, {})
    src = rec.get("clone_from")
    if rec.get("status") != "building" or not (src or rec.get("clone_path")):
        return None
    return ctx.host(rec["clone_path"] if rec.get("clone_path") else ctx.state.versions()[src]["path"])


def require_building(ctx) -> None:
    """Only a version still being built is ever emptied and made again."""
    rec = ctx.state.versions().get(ctx.version_id, {})
    if rec.get("status") in ("ready",):
        raise NfsrootError(f"root version {label(ctx.version_id)} ({ctx.root}) is finished and may be "
                           f"booted: it is never rebuilt in place (its bootstrap marker is missing or "
                           f"different; `root list`, then change the config to build a new version)")


def verify_tree(tree: Path, kernel: str | None) -> list[str]:
    """Why a built tree cannot become current (kernel, initrd), without running anything."""
    if not kernel:
        return ["no kernel was published for it"]
    problems = [f"{tree}/boot/{f} is missing" for f in (f"vmlinuz-{kernel}", f"initrd.img-{kernel}")
                if not (tree / "boot" / f).is_file()]
    return problems


# The steps a run must have run or found done for its version to become current.
FINISHING_STEPS = frozenset({"initramfs", "kernel-to-tftp", "node-menus"})
# A group root's build (groups.py): the build's own node-menus step follows it.
ROOT_FINISHING_STEPS = frozenset({"initramfs", "kernel-to-tftp"})


def finish_run(ctx, report: list[tuple[str, str]], required: frozenset[str] = FINISHING_STEPS) -> str | None:
    """After a successful run: the target becomes current once its tree
    verified and its kernel is in TFTP (the initramfs step checked that the
    initrd lists the NFS boot script). Returns a line for the admin or None."""
    state = ctx.state
    vid = ctx.version_id
    rec = state.versions().get(vid)
    if rec is None or rec["status"] == "ready" and state.current_version() == vid:
        return None
    steps = {name for name, what in report if what in ("changed", "unchanged", "done")}
    if not required <= steps:
        return None   # a partial run (--to, run STEP): the version stays building
    out = state.outputs("kernel-to-tftp")
    problems = verify_tree(ctx.root, out.get("kernel"))
    if problems:
        state.set_version(vid, status="failed", error="; ".join(problems))
        state.save()
        raise NfsrootError(f"version {label(vid)} did not verify, it stays failed: {'; '.join(problems)}")
    state.set_version(vid, status="ready", kernel=out.get("kernel"), kernel_path=out.get("kernel_path"),
                      initrd_path=out.get("initrd_path"), serve=ctx.config.root.serve)
    old = state.current_version()
    state.set_current(vid)
    state.save()
    return f"version {label(vid)} is current" + (f" (was {label(old)})" if old and old != vid else "")


def node_versions(cfg: Config, state, run_target: int | None) -> dict[str, int]:
    """Node name -> the version its next boot gets: its pin, else the current
    version (this run's target while it builds it: the menus a build writes
    name what it makes current at its end)."""
    current = run_target or state.current_version() or 1
    pins = state.pins()
    recs = state.versions()
    return {n.name: pins[n.name] if n.name in pins and pins[n.name] in recs else current for n in cfg.nodes}


def pinned_root_paths(ctx) -> dict[str, str]:
    """Node name -> root path (config-level) of the version a node is pinned
    to (`root switch VERSION --nodes`), for the configured nodes pinned to
    another version than the one this run serves (ctx.config.root.path).
    What the DHCP server sends those nodes as root-path."""
    pins = ctx.state.pins()
    if not pins:
        return {}
    recs = ctx.state.versions()
    return {n.name: recs[pins[n.name]]["path"] for n in ctx.config.nodes
            if pins.get(n.name) in recs and pins[n.name] != ctx.version_id}


def live_versions(state, run_target: int | None) -> list[int]:
    """The versions the NFS server exports: every one in the state that is
    not failed (its tree exists), and the run's target."""
    out = {vid for vid, rec in state.versions().items() if rec["status"] != "failed"}
    if run_target:
        out.add(run_target)
    return sorted(out)


def export_roots(ctx) -> list[tuple[int, str]]:
    """(version id, config-level path) of every version the NFS server exports."""
    recs = ctx.state.versions()
    vid = ctx.version_id
    return [(v, recs[v]["path"] if v in recs else ctx.config.root.path) for v in live_versions(ctx.state, vid)] \
        or [(vid, ctx.config.root.path)]


def menu_target(ctx) -> int | None:
    """The version this run's menus send unpinned nodes to: the run's own,
    once its kernel is published (kernel-to-tftp ran for it), else the
    current one (`run node-menus` after a config change must not send nodes
    to a tree that is not built)."""
    vid = ctx.version_id
    if ctx.state.versions().get(vid, {}).get("status") == "ready":
        return vid
    published = ctx.state.outputs("kernel-to-tftp").get("kernel_path") or ""
    name = (ctx.base_config or ctx.config).name
    return vid if published.startswith(f"/{tftp_dir_of(name, vid)}/") else ctx.state.current_version()


def node_groups(ctx) -> list[tuple[Config, list, int]]:
    """The nodes by the version they boot next: (config with that version's
    root.path, nodes, version id); this run's target first."""
    recs = ctx.state.versions()
    by_version: dict[int, list] = {}
    wanted = node_versions(ctx.config, ctx.state, menu_target(ctx))
    for node in ctx.config.nodes:
        by_version.setdefault(wanted[node.name], []).append(node)
    out = []
    for vid, nodes in sorted(by_version.items(), key=lambda kv: kv[0] != ctx.version_id):
        if vid == ctx.version_id:
            out.append((ctx.config, nodes, vid))
        else:
            out.append((with_root_path(ctx.config, recs[vid]["path"], serve_of(recs[vid])), nodes, vid))
    return out


def relock(ctx, when: str) -> None:
    """After the state was read again under the run lock: the run's version
    is recorded (building) if the reload dropped the in-memory record."""
    base = ctx.base_config or ctx.config
    adopt_legacy(base, ctx.state, ctx.host(base.root.path), when)
    recs = ctx.state.versions()
    if ctx.version_id not in recs:
        current = ctx.state.current_version()
        source = current if current and recs.get(current, {}).get("status") == "ready" \
            and recs[current].get("identity") == bootstrap_identity(base) else None
        begin(base, ctx.state, Target(ctx.version_id, ctx.config.root.path, True, source,
                                      None if recs else ctx.seed_path), when)


# -- the API `update` (and the CLI) use ----------------------------------------
def start_clone(ctx, when: str) -> int:
    """A new version (building) recorded as a clone of the current one; the
    tree is made by the bootstrap step of a context for it (``context_for``;
    the real update makes the context again from the saved state)."""
    state = ctx.state
    current = state.current_version()
    recs = state.versions()
    if not current or recs[current]["status"] != "ready":
        raise NfsrootError("no current root version to clone: run `nfsroot-build all` first")
    base = ctx.base_config or ctx.config
    vid = max(recs) + 1
    state.set_version(vid, path=path_of(base.root.path, vid), status="building", created=when,
                      digest=recs[current]["digest"], identity=recs[current].get("identity"),
                      clone_from=current, tftp_dir=tftp_dir_of(base.name, vid), serve=serve_of(recs[current]))
    state.save()
    return vid


def context_for(ctx, vid: int):
    """ctx for version vid, on the same state (a dry-run's new version lives
    in memory only: a context made again would read the state from disk)."""
    rec = ctx.state.versions()[vid]
    cfg = with_root_path(ctx.base_config or ctx.config, rec["path"], serve_of(rec))
    new = replace(ctx, config=cfg, version_id=vid)
    new.files.untracked.append(new.root)   # like every version's tree: --purge-root removes it whole
    return new


def set_status(ctx, vid: int, status: str, **fields) -> None:
    ctx.state.set_version(vid, status=status, **fields)
    ctx.state.save()


def make_current(ctx, vid: int, kernel: str | None, kernel_path: str | None, initrd_path: str | None) -> None:
    """vid becomes current after its tree verified (kernel and initrd there)."""
    rec = ctx.state.versions()[vid]
    problems = verify_tree(ctx.host(rec["path"]), kernel)
    if problems:
        set_status(ctx, vid, "failed", error="; ".join(problems))
        raise NfsrootError(f"version {label(vid)} did not verify: {'; '.join(problems)}")
    ctx.state.set_version(vid, status="ready", kernel=kernel, kernel_path=kernel_path, initrd_path=initrd_path)
    ctx.state.set_current(vid)
    ctx.state.save()


def discard(ctx, vid: int) -> None:
    """Remove a version that is not current, previous or pinned (its tree,
    its TFTP directory, its record)."""
    state = ctx.state
    refuse = why_kept(ctx, vid)
    if refuse:
        raise NfsrootError(f"version {label(vid)} is kept: {refuse}")
    rec = state.versions()[vid]
    from . import chroot, pathguard
    tree = ctx.host(rec["path"])
    if tree.exists():
        pathguard.require_removable(tree, (ctx.base_config or ctx.config).name)
        chroot.unmount_all(ctx, tree)
        ctx.runner.run(["rm", "-rf", "--one-file-system", str(tree)])
    tftp = ctx.tftp_root / rec.get("tftp_dir", "")
    if rec.get("tftp_dir") and vid != 1 and tftp.is_dir():
        ctx.runner.run(["rm", "-rf", "--one-file-system", str(tftp)])
    state.drop_version(vid)
    state.save()


def why_kept(ctx, vid: int, clients: dict[str, list[str]] | None = None) -> str | None:
    """Why prune must keep vid, or None. clients: version path (served) -> addresses mounting it."""
    state = ctx.state
    if vid == state.current_version():
        return "it is current"
    if vid == state.previous_version():
        return "it is the previous version (`root rollback` goes back to it)"
    pinned = sorted(n for n, p in state.pins().items() if p == vid)
    if pinned:
        return f"node(s) {', '.join(pinned)} are set to it"
    rec = state.versions()[vid]
    who = (clients or {}).get(ctx.served.path(rec["path"]))
    if who:
        return f"NFS client(s) {', '.join(sorted(who))} have it mounted"
    return None


# -- what `root list`, `switch`, `rollback` and `prune` do ---------------------
def state_word(state, vid: int) -> str:
    rec = state.versions()[vid]
    if vid == state.current_version():
        return "current"
    if rec["status"] in ("building", "failed"):
        return rec["status"]
    return "previous" if vid == state.previous_version() else "older"


def tree_size(tree: Path) -> int | None:
    """Bytes in the tree's files (st_blocks: what a clone really costs), None if it is gone."""
    if not tree.is_dir():
        return None
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def package_count(tree: Path) -> int | None:
    """Installed packages (packages_index.installed: dpkg's status file, no process)."""
    if not (tree / "var/lib/dpkg/status").is_file():
        return None
    return len(installed(tree))


def switch(ctx, vid: int, nodes: list[str]) -> str:
    """Record that the next boot of every node (or of nodes: a canary) gets vid."""
    state = ctx.state
    recs = state.versions()
    if vid not in recs:
        raise UsageError(f"no root version {label(vid)}; `nfsroot-build root list` shows them")
    if recs[vid]["status"] != "ready":
        raise UsageError(f"root version {label(vid)} is {recs[vid]['status']}, not finished: it cannot be booted")
    cfg = ctx.base_config or ctx.config
    known = {n.name for n in cfg.nodes}
    unknown = [n for n in nodes if n not in known]
    if unknown:
        raise UsageError(f"--nodes: no node named {', '.join(unknown)} in the config")
    if serve_of(recs[vid]) == "image" and cfg.boot.transport != "http":
        # Its menus name kernel, initrd and squashfs on the server's nginx,
        # which only boot.transport = "http" configures (config.py's check).
        raise UsageError(f'root version {label(vid)} was built with root.serve = "image": its nodes fetch it '
                         f'from nginx, which needs boot.transport = "http" (the config has '
                         f'"{cfg.boot.transport}")')
    if nodes:
        pins = state.pins()
        for n in nodes:
            if vid == state.current_version():
                pins.pop(n, None)
            else:
                pins[n] = vid
        state.set_pins(pins)
        state.save()
        return f"{', '.join(nodes)} boot {label(vid)} next; the others {label(state.current_version())}"
    state.set_current(vid)
    state.set_pins({})
    state.save()
    return f"current root version: {label(vid)}; every node boots it next"


def serve(ctx, exports: bool = False) -> None:
    """Menus and the DHCP root-path for the state's current version and pins:
    the pipeline's own steps, so they are checked, recorded and undoable like
    any run of them (exports list every version already: nothing there;
    exports=True: a group root's new version, which they do not list yet)."""
    from .pipeline import Pipeline
    from .steps import STEPS
    wanted = ("dhcp-server", "node-menus", "services") + (("nfs-exports",) if exports else ())
    Pipeline(ctx, [s for s in STEPS if s.name in wanted]).run()


def nfs_clients(ctx) -> dict[str, list[str]]:
    """Served path -> addresses of NFS clients that mount it, asked of the server.

    The kernel server: /var/lib/nfs/rmtab (rpc.mountd's record of NFSv3 mounts,
    "host:path:count") and /proc/fs/nfsd/clients/*/info (NFSv4 clients: their
    address only, so they count for every version, "*"). NFS-Ganesha: its
    DBus client list through `ganesha_mgr show_clients` (addresses only: "*").
    """
    out: dict[str, list[str]] = {}
    try:
        for line in RMTAB.read_text().splitlines():
            host, _, rest = line.partition(":")
            path = rest.rsplit(":", 1)[0]
            if host and path:
                out.setdefault(path, []).append(host)
    except OSError:
        pass
    for info in sorted(NFSD_CLIENTS.glob("*/info")):
        try:
            m = re.search(r"^address: \"?([^\"\n]+)", info.read_text(), re.MULTILINE)
        except OSError:
            continue
        if m:
            out.setdefault("*", []).append(m.group(1).rsplit(":", 1)[0])
    if ctx.config.nfs.server == "ganesha":
        if addrs := ganesha_clients(ctx):
            out.setdefault("*", []).extend(addrs)
    return out


class ServerNotAsked(NfsrootError):
    """The NFS server could not say which clients it has: prune must not guess "none"."""


def ganesha_clients(ctx) -> list[str]:
    """IPv4 addresses of NFS-Ganesha's clients (ShowClients over DBus): the
    system bus's Ganesha, or under a staging prefix the lab's. Raises
    ServerNotAsked when Ganesha cannot be asked (no dbus-send, no DBus,
    Ganesha not on it): prune then keeps what it would have removed."""
    env, cwd = None, None
    if ctx.staging:
        # A staged tree is served by the lab's Ganesha only: no lab bus, no lab, no clients.
        lab_bus = ctx.state_dir / LAB_SYSTEM_BUS
        if not lab_bus.exists():
            return []
        # Relative to the socket's directory: libdbus refuses a socket path
        # longer than 99 bytes ("Socket name too long"), which a staging
        # prefix under pytest's basetemp already passes.
        env, cwd = {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={lab_bus.name}"}, lab_bus.parent
    if not shutil.which("dbus-send"):
        raise ServerNotAsked("dbus-send is not installed (package dbus-bin)")
    res = ctx.runner.run(GANESHA_SHOW_CLIENTS, probe=True, check=False, env=env, cwd=cwd)
    if not res.ok:
        raise ServerNotAsked(f"`{' '.join(GANESHA_SHOW_CLIENTS[:2])} ... ShowClients` failed: "
                             f"{(res.stderr.strip().splitlines() or ['no output'])[-1]}")
    # Clients appear as "::ffff:192.168.0.101" (IPv4-mapped) or plain dotted quads.
    return sorted(set(re.findall(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b", res.stdout)))


def prune(ctx, keep: int, server=None) -> tuple[list[int], list[tuple[int, str]], list[tuple[int, str]]]:
    """Remove finished versions beyond the keep newest (and failed ones).
    Returns (removed, kept: [(id, why)] the current and previous versions,
    which always stay, refused: [(id, why)] those it would have removed but
    must keep: a node is pinned to it or the NFS server has clients).
    server: the context whose NFS server is asked (a group root's series:
    the build's own context, groups.series), default ctx."""
    state = ctx.state
    recs = state.versions()
    ready = sorted((v for v, r in recs.items() if r["status"] == "ready"), reverse=True)
    always = [v for v in (state.current_version(), state.previous_version()) if v in recs]
    kept = [(v, why_kept(ctx, v) or "") for v in always]
    candidates = [v for v in ready[keep:] + [v for v, r in recs.items() if r["status"] == "failed"]
                  if v not in always]
    try:
        clients, unasked = nfs_clients(server or ctx), None
    except ServerNotAsked as e:
        clients, unasked = {}, str(e)
    anyone = clients.pop("*", [])
    removed, refused = [], []
    for vid in sorted(candidates):
        why = why_kept(ctx, vid, clients)
        if why is None and anyone and recs[vid]["status"] == "ready":
            why = (f"NFS client(s) {', '.join(sorted(set(anyone)))} are connected and the server "
                   f"does not say what they mount")
        if why is None and unasked and recs[vid]["status"] == "ready":
            why = f"the NFS server could not be asked which clients mount it: {unasked}"
        if why:
            refused.append((vid, why))
            continue
        discard(ctx, vid)
        removed.append(vid)
    return removed, kept, refused
