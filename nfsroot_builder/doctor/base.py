"""The doctor's vocabulary: a Finding, and the registry its checks join with @check."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from ..context import Context

Apply = Callable[[Context], "set[str] | None"]   # returns services to restart


@dataclass
class Finding:
    status: str                  # ok | warn | fail
    reason: str
    fix: str = ""                # what to do, in words (and commands)
    apply: Apply | None = field(default=None, repr=False)   # the safe automatic fix
    check: str = ""
    seed: str = ""               # the seed page's problem it covers (a..e), if any

    @property
    def manual(self) -> bool:
        return self.apply is None

    def as_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "reason": self.reason, "fix": self.fix,
                "automatic_fix": not self.manual, "seed_problem": self.seed or None}


def ok(reason: str) -> Finding:
    return Finding("ok", reason)


@dataclass
class CheckDef:
    name: str
    seed: str
    fn: Callable[[Context], Finding]

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.fn) or "").splitlines()[0]


CHECKS: list[CheckDef] = []
# The seed's five problems first, in the page's order, then the newer ones.
ORDER = ("writable-exports", "root-interfaces", "root-udev-net", "nfs-state-files", "exports-syntax",
         "root-hostname", "tftp-readable", "initrd-nfs", "tftp-kernel", "root-image", "dhcpd-syntax", "dhcp-nodes", "dhcp-config",
         "http-server",
         "host-collisions", "other-builds", "world-no-root-squash", "nfs-threads", "chroot-leftovers", "group-roots")


def check(name: str, seed: str = ""):
    def deco(fn):
        CHECKS.append(CheckDef(name, seed, fn))
        return fn
    return deco
