"""Helpers shared by the tests (a plain module: conftest files shadow each other)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest


def example_text(name: str = "seed") -> str:
    return resources.files("nfsroot_builder.examples").joinpath(f"{name}.toml").read_text()


def require(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: prerequisite missing: {why}")
    pytest.skip(why)




def nfsroot_build(*args, env=None, check=False, timeout=1800, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "nfsroot_builder", *map(str, args)],
                         capture_output=True, text=True, env={**os.environ, **(env or {})},
                         timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"nfsroot-build {' '.join(map(str, args))} exited {res.returncode}:\n"
                             f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def status(cfg: Path, prefix: Path) -> dict[str, dict]:
    res = nfsroot_build("status", "-c", cfg, "--prefix", prefix, "--json", check=True)
    return {r["step"]: r for r in json.loads(res.stdout)["steps"]}


def snapshot(path: Path) -> dict[str, tuple]:
    """Every file under path with its bytes and mtime: 'touched nothing' means equal snapshots."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p)] = (st.st_mtime_ns, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def mark_root(root: Path, build: str) -> None:
    """Make `root` look like a root this build made (its marker), as a bootstrap leaves it."""
    from nfsroot_builder import pathguard
    marker = Path(root) / pathguard.BUILD_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"build": build}))


def console_unit(description: str, command: str) -> str:
    """A oneshot systemd unit that prints `command`'s output on the node's
    console before the login prompt: what an e2e test reads from a root's
    files (the lab's report line carries only its fixed facts)."""
    return ("[Unit]\n"
            f"Description={description} (nfsroot-build e2e)\n"
            "After=local-fs.target\nBefore=getty.target\n"
            "[Service]\nType=oneshot\nStandardOutput=journal+console\n"
            f"ExecStart=/bin/sh -c '{command}'\n"
            "[Install]\nWantedBy=multi-user.target\n")
