#!/usr/bin/env python3
"""Where an inventory run's time goes, measured in-process (one run each).

    breakdown.py CONFIG.toml        -> JSON on stdout: phase -> seconds

Phases: importing the CLI, reading the TOML, validating it (pydantic and the
cross-field checks), each step of a dry-run of the whole pipeline on an empty
prefix (fingerprint, render, diff; commands are not run), dhcpd -t on the
rendered dhcpd.conf, and writing the state file the run would leave.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    cfg_path = Path(sys.argv[1])
    out: dict[str, str] = {}

    def mark(name, t0):
        out[name] = f"{time.perf_counter() - t0:.3f}"

    t = time.perf_counter()
    importlib.import_module("nfsroot_builder.cli")   # what every command pays at start
    from nfsroot_builder import config as config_mod
    from nfsroot_builder import session
    mark("import nfsroot_builder.cli (typer, rich, pydantic, sh)", t)

    import tomllib
    text = cfg_path.read_text()
    t = time.perf_counter()
    tomllib.loads(text)
    mark("TOML parse (tomllib)", t)
    t = time.perf_counter()
    cfg = config_mod.parse(text, str(cfg_path))
    total = time.perf_counter() - t
    out["validate (config.parse minus TOML parse)"] = f"{total - float(out['TOML parse (tomllib)']):.3f}"

    with tempfile.TemporaryDirectory() as tmp:
        ctx = session.make_context(cfg, prefix=Path(tmp), dry_run=True, emit=lambda line: None)
        pipe = session.pipeline(ctx)
        original = pipe.run_step
        # Probes (dpkg-query, package indexes) run in a dry-run; time them as part of their step.
        for step in pipe.steps:
            t = time.perf_counter()
            try:
                original(step)
            except Exception as e:   # a step that cannot dry-run here: say so, go on
                out[f"dry-run step {step.name}"] = f"error: {type(e).__name__}: {str(e)[:80]}"
                continue
            mark(f"dry-run step {step.name}", t)
        state = ctx.state
        state.readonly = False
        state.path = Path(tmp) / "state.json"
        t = time.perf_counter()
        state.save()
        mark(f"state save ({state.path.stat().st_size // 1024} KiB)", t)

        from nfsroot_builder.render import Served
        from nfsroot_builder.render.server import dhcpd_block
        t = time.perf_counter()
        block = dhcpd_block(cfg, Served(tmp))
        mark("render dhcpd block", t)
        conf = Path(tmp) / "dhcpd.conf"
        conf.write_text(block)
        t = time.perf_counter()
        p = subprocess.run(["dhcpd", "-t", "-q", "-4", "-cf", str(conf)], capture_output=True)
        mark(f"dhcpd -t ({len(block) // 1024} KiB, exit {p.returncode})", t)
    json.dump(out, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
