"""What the version tests (integration and e2e) share: a checksum list of a
tree and `root list --json`."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from helpers import nfsroot_build


def checksums(tree: Path) -> dict[str, str]:
    """path -> sha256 of every regular file, the target of every symlink."""
    out = {}
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(tree))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def root_list(b) -> dict[str, dict]:
    res = nfsroot_build("root", "list", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
    return {r["id"]: r for r in json.loads(res.stdout)["versions"]}
