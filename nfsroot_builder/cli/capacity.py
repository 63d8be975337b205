"""`nfsroot-build plan-capacity`: the boot-storm model (capacity.py) for the
config and the root version at hand (docs/scale.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import capacity
from ..errors import UsageError
from .build import build_app
from .common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, PrefixOpt, StateOpt, guarded, make_ctx

# live-boot's image beside the version's kernel (root.serve = "image", steps/image.py).
IMAGE_NAME = "filesystem.squashfs"


def built_sizes(ctx) -> dict[str, tuple[int, str]]:
    """The current version's kernel, initrd and squashfs that exist in the
    TFTP root: name -> (bytes, path)."""
    rec = ctx.state.versions().get(ctx.state.current_version() or 0) or {}
    found = {}
    candidates = {"kernel": rec.get("kernel_path"), "initrd": rec.get("initrd_path"),
                  "squashfs": rec.get("tftp_dir") and f"{rec['tftp_dir']}/{IMAGE_NAME}"}
    for what, rel in candidates.items():
        path = ctx.tftp_root / rel.lstrip("/") if rel else None
        if path and path.is_file():
            found[what] = (path.stat().st_size, str(path))
    return found


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise UsageError(f"{option} {value}: must be at least 1")


@build_app.command("plan-capacity")
@guarded
def plan_capacity(
        nodes: Annotated[int, typer.Option("--nodes", help="nodes powered on at once")],
        link: Annotated[str, typer.Option("--link", help="each server's link: 1G, 10G, 25G, 100M ...")] = "10G",
        servers: Annotated[int, typer.Option("--servers", help="boot servers sharing the nodes")] = 1,
        mode: Annotated[str | None, typer.Option("--mode", help="nfs or image (default: the config's root.serve)",
                                                 show_default=False)] = None,
        config: ConfigOpt = DEFAULT_CONFIG, prefix: PrefixOpt = Path("/"), state_dir: StateOpt = None,
        as_json: JsonOpt = False):
    """How long a boot storm of --nodes nodes takes and what saturates first (docs/scale.md)."""
    _positive(nodes, "--nodes")
    _positive(servers, "--servers")
    try:
        link_bps = capacity.parse_link(link)
    except ValueError as e:
        raise UsageError(f"--link {e}") from None
    if mode not in (None, "nfs", "image"):
        raise UsageError(f"--mode {mode!r}: nfs or image")
    ctx = make_ctx(config, prefix, state_dir, dry_run=True, version="current")
    cfg = ctx.config
    mode = mode or getattr(cfg.root, "serve", "nfs")
    built = built_sizes(ctx)
    defaults = {"kernel": capacity.KERNEL_BYTES, "initrd": capacity.INITRD_BYTES, "squashfs": capacity.SQUASHFS_BYTES}
    sizes = {k: built[k][0] if k in built else v for k, v in defaults.items()}
    sources = {k: f"built: {built[k][1]}" if k in built else f"measured default: {capacity.SIZE_SOURCES[k]}"
               for k in defaults}
    if mode == "nfs":
        sources.pop("squashfs")
    inputs = capacity.Inputs(capacity.boot_bytes(mode, cfg.boot.transport, overhead=capacity.WIRE_OVERHEAD, **sizes))
    result = capacity.storm(inputs, nodes, link_bps, servers)
    rows = capacity.table(inputs, link_bps, servers)
    if as_json:
        print(json.dumps({
            "nodes": nodes, "servers": servers, "link": capacity.link_label(link_bps), "link_bytes_per_s": link_bps,
            "mode": mode, "transport": cfg.boot.transport, "boot_bytes": inputs.boot_bytes, "sizes": sizes,
            "sources": sources, "throughput": inputs.throughput, "boot_seconds": inputs.boot_seconds,
            "measured_on": capacity.MEASURED_ON, "seconds": round(result.seconds, 1),
            "bottleneck": result.bottleneck, "link_seconds": round(result.link_seconds, 1),
            "daemon_seconds": {k: round(v, 1) for k, v in result.daemon_seconds.items()},
            "table": [{"nodes": r.nodes, "seconds": round(r.seconds, 1), "bottleneck": r.bottleneck} for r in rows],
        }, indent=2))
        return
    fb, fs = capacity.fmt_bytes, capacity.fmt_seconds
    print(f"{nodes} nodes at once, {servers} server(s) with a {capacity.link_label(link_bps)} link each, "
          f"mode {mode}, boot.transport {cfg.boot.transport}")
    print("one boot fetches: " + ", ".join(f"{p.upper()} {fb(b)}" for p, b in inputs.boot_bytes.items() if b))
    for what, src in sources.items():
        print(f"  {what} {fb(sizes[what])}: {src}")
    nfs = f", the root's reads over NFS {fb(capacity.NFS_ROOT_BYTES)}" if mode == "nfs" else ""
    print(f"  GRUB and its menus over TFTP {fb(capacity.TFTP_LOADER_BYTES)}{nfs}, one node alone "
          f"{inputs.boot_seconds:.0f} s: measured default")
    used = [p for p, b in inputs.boot_bytes.items() if b]
    print("each server sustains: " + ", ".join(f"{p.upper()} {fb(inputs.throughput[p])}/s" for p in used)
          + ": measured default")
    print(f"  (measured defaults: {capacity.MEASURED_ON}; docs/scale.md)")
    print(f"boot storm: {fs(result.seconds)}; saturates first: {result.bottleneck} (link {fs(result.link_seconds)}, "
          + ", ".join(f"{p.upper()} {fs(s)}" for p, s in result.daemon_seconds.items()) + " per server)")
    print("; ".join(f"{r.nodes:,} nodes: {fs(r.seconds)} ({r.bottleneck})" for r in rows))
