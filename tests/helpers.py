"""Helpers shared by the tests (a plain module: conftest files shadow each other)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from nfsroot_builder.render.server import kea_json


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


def root_paths_by_node(text: str, kind: str, cfg) -> dict[str, str]:
    """Node name -> the root-path the rendered file sends it (as the daemon would pick it)."""
    if kind == "kea":
        subnet = kea_json(text)["Dhcp4"]["subnet4"][0]
        default = next(o["data"] for o in subnet["option-data"] if o["name"] == "root-path")
        return {res["hostname"]: next((o["data"] for o in res.get("option-data", []) if o["name"] == "root-path"),
                                      default) for res in subnet["reservations"]}
    if kind == "isc-dhcp-server":
        # Scopes nest (a group {} per [[group]] in the build's group): a host
        # gets its own root-path, else its innermost scope's (dhcpd.conf(5)).
        def option(line: str) -> str:
            return line.split("option root-path ", 1)[1].split(";")[0].strip('"')
        out, scopes = {}, []
        for line in text[text.index("group {"):].splitlines():
            word = line.split("#", 1)[0].strip()   # "group {   # [[group]] login"
            if word.startswith("}") and word.endswith("{"):   # } elsif ... { / } else {: the same depth
                continue
            if word.endswith("{") and not word.startswith("host "):   # group {, if ... {: inherit
                scopes.append(scopes[-1] if scopes else None)
            elif word == "}" and scopes:
                scopes.pop()
            elif word.startswith("host "):
                out[word.split()[1]] = option(word) if "root-path" in word else scopes[-1]
            elif word.startswith("option root-path ") and scopes:
                scopes[-1] = option(word)
        return out
    # dnsmasq: a node's tags are the cluster's plus what its dhcp-host sets;
    # the root-path line whose tags all match (negated ones not set) is sent.
    tag = f"nrb-{cfg.name}"
    hosts = {}
    for line in text.splitlines():
        if line.startswith("dhcp-host="):
            fields = line.split("=", 1)[1].split(",")
            hosts[fields[-1]] = {tag} | {f[4:] for f in fields if f.startswith("set:")}
    rules = []
    for line in text.splitlines():
        if line.startswith("dhcp-option=") and "option:root-path," in line:
            head, _, value = line.split("=", 1)[1].partition("option:root-path,")
            tags = [t[4:] for t in head.split(",") if t.startswith("tag:")]
            rules.append((tags, value.strip('"')))
    out = {}
    for node, have in hosts.items():
        sent = [v for tags, v in rules if all((t[1:] not in have) if t.startswith("!") else (t in have)
                                              for t in tags)]
        assert len(sent) == 1, (node, sent)   # exactly one line applies: no precedence rule needed
        out[node] = sent[0]
    return out
