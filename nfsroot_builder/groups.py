"""Node groups: which root, version and kernel arguments each node boots (docs/groups.md).

The top-level [root] is the *default root*, built by the build's own steps
as before. Each other root a [[group]] resolves to is a *group root*: its
own build of the root steps (ROOT_STEPS), with its own state (steps,
fingerprints, version series) under ``<state dir>/roots/<key>/`` and its
own TFTP directory ``<name>-<key>``, where key is made from its path. The
server steps (DHCP, exports, menus) stay the build's, run once, and read
what each group root serves from that root's state (``served``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import versions
from .config import Boot, Config, Node, root_key
from .state import State

# The steps that make one root and publish its kernel (and, root.serve =
# "image", its squashfs): run once per group root.
ROOT_STEPS = ("bootstrap", "root-password", "initramfs-config", "root-packages", "fstab", "mountnfs",
              "hosts", "hostname", "node-network", "node-var", "site-files", "site-hooks", "initramfs",
              "kernel-to-tftp", "root-image")


@dataclass(frozen=True)
class GroupRoot:
    key: str
    groups: tuple[str, ...]   # the [[group]]s that boot it, in file order
    config: Config            # the build's config with this root (name <name>-<key>)


def group_roots(cfg: Config) -> list[GroupRoot]:
    """Every root other than the default one, once, in the order of the
    first group naming it (a root shared by groups is built once)."""
    seen: dict[str, list[str]] = {}
    roots = {}
    for group in cfg.group:
        root = cfg.group_root(group.name)
        if root is cfg.root:
            continue
        seen.setdefault(root.path, []).append(group.name)
        roots.setdefault(root.path, root)
    return [GroupRoot(root_key(path), tuple(names),
                      cfg.model_copy(update={"name": f"{cfg.name}-{root_key(path)}", "root": roots[path]}))
            for path, names in seen.items()]


def root_of_group(cfg: Config) -> dict[str, GroupRoot]:
    """Group name -> its group root (groups on the default root are absent)."""
    return {g: gr for gr in group_roots(cfg) for g in gr.groups}


def state_dir(main_state_dir: Path, gr: GroupRoot) -> Path:
    return Path(main_state_dir) / "roots" / gr.key


def stored_roots(cfg: Config, main_state_dir: Path) -> list[GroupRoot]:
    """The group roots with a state on disk: the config's, and those of
    groups removed from it since (`undo` takes back what they wrote too)."""
    known = {gr.key: gr for gr in group_roots(cfg)}
    for path in sorted((Path(main_state_dir) / "roots").glob("*/state.json")):
        key = path.parent.name
        recs = State.load(path, readonly=True).versions()
        if key in known or not recs:
            continue
        root = cfg.root.model_copy(update={"path": recs[min(recs)]["path"]})
        known[key] = GroupRoot(key, (), cfg.model_copy(update={"name": f"{cfg.name}-{key}", "root": root}))
    return [gr for gr in known.values() if (state_dir(main_state_dir, gr) / "state.json").exists()]


def default_nodes(cfg: Config) -> list[Node]:
    """The nodes that boot the default root."""
    if not cfg.group:
        return cfg.nodes
    own = root_of_group(cfg)
    return [n for n in cfg.nodes if n.group not in own]


def nodes_of(cfg: Config, gr: GroupRoot) -> list[Node]:
    return [n for n in cfg.nodes if n.group in gr.groups]


@dataclass(frozen=True)
class Booted:
    """One version of a group root as its nodes boot it: its id, path,
    kernel, initrd and how it is served ("nfs" or "image", as it was built:
    versions.serve_of)."""
    vid: int
    path: str
    kernel_path: str | None
    initrd_path: str | None
    serve: str


@dataclass(frozen=True)
class Served(Booted):
    """What a group root serves now: the version nodes get, and every
    version to export; pins: (node, version) of its canaries
    (`root switch VERSION --group G --nodes ...`), in name order."""
    live: tuple[tuple[int, str], ...] = ()   # (version id, path) of every version to export
    pins: tuple[tuple[str, Booted], ...] = ()


def root_state(ctx, gr: GroupRoot) -> State:
    """Group root gr's state as on disk (read-only)."""
    return State.load(state_dir(ctx.state_dir, gr) / "state.json", readonly=True)


def has_versions(ctx, gr: GroupRoot) -> bool:
    return bool(root_state(ctx, gr).versions())


def _booted(vid: int, rec: dict) -> Booted:
    return Booted(vid, rec["path"], rec.get("kernel_path"), rec.get("initrd_path"), versions.serve_of(rec))


def served(ctx, gr: GroupRoot) -> Served:
    """From the group root's own state: its current version once one is
    ready, else the version its build makes (its kernel then unknown
    until kernel-to-tftp ran: a dry-run shows a placeholder), and its pins."""
    state = root_state(ctx, gr)
    recs = state.versions()
    current = state.current_version()
    if current and recs.get(current, {}).get("status") == "ready":
        now = _booted(current, recs[current])
    else:
        t = versions.target(gr.config, state)
        out = state.outputs("kernel-to-tftp")
        now = Booted(t.vid, t.path, out.get("kernel_path"), out.get("initrd_path"), gr.config.root.serve)
    live = tuple((v, recs[v]["path"] if v in recs else now.path) for v in versions.live_versions(state, now.vid))
    pins = tuple((node, _booted(v, recs[v])) for node, v in sorted(state.pins().items())
                 if v != now.vid and recs.get(v, {}).get("status") == "ready")
    return Served(**now.__dict__, live=live, pins=pins)


def booted_by(ctx, gr: GroupRoot, node: str) -> Booted:
    """The version of group root gr node boots next: its pin, else the served one."""
    now = served(ctx, gr)
    return dict(now.pins).get(node, now)


def node_boots(ctx, gr: GroupRoot) -> list[tuple[Booted, list[Node]]]:
    """Group root gr's nodes by the version each boots next: its pin, else
    the served one (first)."""
    now = served(ctx, gr)
    pins = dict(now.pins)
    out: dict[int, tuple[Booted, list[Node]]] = {now.vid: (now, [])}
    for node in nodes_of(ctx.config, gr):
        booted = pins.get(node.name, now)
        out.setdefault(booted.vid, (booted, []))[1].append(node)
    return [(b, nodes) for b, nodes in out.values() if nodes]


def node_root_paths(ctx) -> dict[str, str]:
    """Node name -> root path (config-level) for every node that does not
    boot the run's default version: canaries (versions.pinned_root_paths)
    and the nodes of group roots. What DHCP sends them as root-path."""
    out = versions.pinned_root_paths(ctx)
    for gr in group_roots(ctx.config):
        for booted, nodes in node_boots(ctx, gr):
            out.update({n.name: booted.path for n in nodes})
    return out


def boot_of(cfg: Config, node: Node) -> Boot:
    return cfg.group_boot(node.group)


def by_boot(cfg: Config, nodes: list[Node]) -> list[tuple[Boot, list[Node]]]:
    """The nodes split by the [boot] their group gives them, in node order."""
    out: dict[str, tuple[Boot, list[Node]]] = {}
    for node in nodes:
        boot = boot_of(cfg, node)
        out.setdefault(boot.model_dump_json(), (boot, []))[1].append(node)
    return list(out.values())


def summary(ctx) -> dict:
    """What the server steps depend on of the group roots (their fingerprints)."""
    return {gr.key: {"groups": list(gr.groups), **asdict(served(ctx, gr))} for gr in group_roots(ctx.config)}


def seed(ctx, gr: GroupRoot) -> str | None:
    """The default root's current tree when group root gr can start as a
    copy of it (a clone, like a new version: docs/versions.md) instead of a
    bootstrap: the same bootstrap (suite, mirror, variant, ...) and a root
    that only adds to it. The steps after bootstrap install and write what
    gr's config asks for, but never take away what the copy holds: so not
    when [root] has packages or .debs gr lacks, another kernel package,
    init, extra sources, security setting, root.files tree, or hooks, or
    is a RAM image (live-boot) and gr an NFS root."""
    state, main = ctx.state, (ctx.base_config or ctx.config).root
    current = state.current_version()
    rec = state.versions().get(current or 0, {})
    mine = gr.config.root
    if rec.get("status") != "ready" or rec.get("identity") != versions.bootstrap_identity(gr.config):
        return None
    adds_only = set(main.packages) <= set(mine.packages) and set(main.local_debs) <= set(mine.local_debs) \
        and main.extra_sources == mine.extra_sources and not main.hooks and main.files in ("", mine.files) \
        and (main.kernel_package, main.init, main.security) == (mine.kernel_package, mine.init, mine.security) \
        and main.serve in ("nfs", mine.serve)   # an image root's live-boot is no NFS root's
    return rec["path"] if adds_only else None


def context(ctx, gr: GroupRoot, *, dry_run: bool, version: str | int = "build"):
    """The context that builds (or reads) group root gr: the run's runner,
    prefix and output, the root's own state and version series."""
    from .session import make_context
    sub = make_context(gr.config, prefix=ctx.prefix, state_dir=state_dir(ctx.state_dir, gr), dry_run=dry_run,
                       runner=ctx.runner, emit=ctx.emit, note=ctx.note, version=version,
                       seed=seed(ctx, gr) if version == "build" else None)
    return replace(sub, config_file=ctx.config_file)


def require_group(cfg: Config, group: str) -> None:
    """A usage error (exit 2) unless a [[group]] is named group."""
    from .errors import UsageError
    if cfg.group_named(group) is None:
        raise UsageError(f"--group {group!r}: no [[group]] of that name "
                         f"(groups: {', '.join(g.name for g in cfg.group) or 'none'})")


@dataclass(frozen=True)
class Series:
    """One root's version series, as `root list/diff/switch/rollback/prune
    --group G` and `update --group G` work on it: ctx's state holds its
    versions (the build's own context for the default root), nodes boot it."""
    ctx: object
    nodes: list[Node]
    group_root: GroupRoot | None   # None: the default root
    main: object                   # the build's own context: its server steps serve every root

    def label(self) -> str:
        return f"group root {self.group_root.key}" if self.group_root else "the default root"


def series(ctx, group: str | None, *, dry_run: bool, version: str | int = "current") -> Series:
    """The version series `--group group` names: group's own root's (its
    context: groups.context), or the default root's for no --group and for
    a group that boots [root] (the same as without --group)."""
    cfg = ctx.base_config or ctx.config
    if group is not None:
        require_group(cfg, group)
        gr = root_of_group(cfg).get(group)
        if gr is not None:
            return Series(context(ctx, gr, dry_run=dry_run, version=version), nodes_of(cfg, gr), gr, ctx)
    return Series(ctx, default_nodes(cfg), None, ctx)


@dataclass(frozen=True)
class Targets:
    """What one `all`/`run` works on: the group roots (each with its
    (from, to, only) range of ROOT_STEPS) and whether the build's own steps run."""
    group_roots: list[tuple[GroupRoot, tuple[str | None, str | None, str | None]]]
    main: bool


def run_targets(cfg: Config, group: str | None, from_step: str | None, to_step: str | None,
                only: str | None) -> Targets:
    """`run STEP` works on the default root; `run STEP --group G` on G's
    root (a root step) - on the default root when G shares it. `all` (with
    --from/--to) runs the group roots' part of its range, then its own."""
    from .errors import UsageError
    from .steps import STEPS
    names = [s.name for s in STEPS]
    if group is not None:
        require_group(cfg, group)
        if only not in ROOT_STEPS:
            raise UsageError(f"--group: {only!r} is not a root step; server steps run once for every group "
                             f"(root steps: {', '.join(ROOT_STEPS)})")
        gr = root_of_group(cfg).get(group)
        return Targets([(gr, (None, None, only))], False) if gr else Targets([], True)
    if only:
        return Targets([], True)
    first, last = names.index(ROOT_STEPS[0]), names.index(ROOT_STEPS[-1])
    start = from_step if from_step in ROOT_STEPS else None
    stop = to_step if to_step in ROOT_STEPS else None
    if (from_step and names.index(from_step) > last) or (to_step and names.index(to_step) < first):
        return Targets([], True)
    return Targets([(gr, (start, stop, None)) for gr in group_roots(cfg)], True)
