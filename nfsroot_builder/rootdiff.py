"""`root diff A B`: what differs between two root trees.

Packages from each root's dpkg status (added, removed, upgraded or
downgraded with both versions, by Debian version ordering) and the files
under /etc (added, removed, changed: content, link target or mode).
Read only; two roots of any origin (versions of one build, or not).
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .kernels import version_key
from .packages_index import installed


@dataclass
class RootDiff:
    added: list[tuple[str, str]] = field(default_factory=list)            # (package, version)
    removed: list[tuple[str, str]] = field(default_factory=list)
    upgraded: list[tuple[str, str, str]] = field(default_factory=list)    # (package, old, new)
    downgraded: list[tuple[str, str, str]] = field(default_factory=list)
    etc_added: list[str] = field(default_factory=list)                    # /etc/... paths
    etc_removed: list[str] = field(default_factory=list)
    etc_changed: list[str] = field(default_factory=list)

    @property
    def packages_changed(self) -> bool:
        return bool(self.added or self.removed or self.upgraded or self.downgraded)

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())

    def lines(self) -> list[str]:
        """One line per difference, as `root diff` and `update` print them."""
        out = [f"+ {p} {v}" for p, v in self.added] + [f"- {p} {v}" for p, v in self.removed]
        out += [f"  {p} {a} -> {b}" for p, a, b in self.upgraded]
        out += [f"  {p} {a} -> {b} (downgrade)" for p, a, b in self.downgraded]
        out += [f"+ {p}" for p in self.etc_added] + [f"- {p}" for p in self.etc_removed]
        out += [f"~ {p}" for p in self.etc_changed]
        return out

    def to_json(self) -> dict:
        return {"packages": {"added": [{"package": p, "version": v} for p, v in self.added],
                             "removed": [{"package": p, "version": v} for p, v in self.removed],
                             "upgraded": [{"package": p, "from": a, "to": b} for p, a, b in self.upgraded],
                             "downgraded": [{"package": p, "from": a, "to": b} for p, a, b in self.downgraded]},
                "etc": {"added": self.etc_added, "removed": self.etc_removed, "changed": self.etc_changed}}


def etc_files(root: Path) -> dict[str, str]:
    """/etc/<path> -> what identifies its content: sha256 and mode of a file,
    the target of a link, "dir <mode>" of a directory. Never follows a link
    out of the root."""
    out: dict[str, str] = {}
    top = Path(root) / "etc"
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = "/" + str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "-> " + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir {stat.S_IMODE(st.st_mode):o}"
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                out[rel] = f"{h.hexdigest()} {stat.S_IMODE(st.st_mode):o}"
            else:
                out[rel] = f"special {st.st_mode:o}"
    return out


def diff(a: Path, b: Path) -> RootDiff:
    """What changed from root a to root b."""
    d = RootDiff()
    pa, pb = installed(a), installed(b)
    d.added = [(p, pb[p]) for p in sorted(pb.keys() - pa.keys())]
    d.removed = [(p, pa[p]) for p in sorted(pa.keys() - pb.keys())]
    for p in sorted(pa.keys() & pb.keys()):
        if pa[p] != pb[p]:
            (d.upgraded if version_key(pb[p]) > version_key(pa[p]) else d.downgraded).append((p, pa[p], pb[p]))
    ea, eb = etc_files(a), etc_files(b)
    d.etc_added = sorted(eb.keys() - ea.keys())
    d.etc_removed = sorted(ea.keys() - eb.keys())
    d.etc_changed = sorted(p for p in ea.keys() & eb.keys() if ea[p] != eb[p])
    return d
