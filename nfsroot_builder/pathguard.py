"""Which directories a build may make, fill and remove: never the host's own.

The root is removed whole (``rm -rf``) when a bootstrap is redone, so a
``root.path`` of ``/``, ``/etc`` or someone's data directory would be lost.
Two rules keep that from happening, checked before anything is planned:

* a root or TFTP root is never a system directory (``/``, ``/etc``, ``/var``,
  ``/srv`` itself, ...) nor inside a tree the OS owns (``/usr``, ``/proc``, ...),
  as configured and as it resolves on disk under the prefix (symlinks
  followed); root and TFTP root do not overlap;
* an existing root is used only when it is empty or holds the marker the
  bootstrap step writes before anything else (:data:`BUILD_MARKER`, naming
  the build); only such a directory is ever removed.

Pure path rules (:func:`system_path_problem`, :func:`overlap_problem`) serve
config validation; :func:`check_disk` looks at the disk for ``check`` and
before a run.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .errors import ConfigError, NfsrootError

if TYPE_CHECKING:   # context imports config, which imports this module
    from .context import Context

# Written by the bootstrap step into a root it makes, before the first file
# of the base system: {"build": <config name>}.
BUILD_MARKER = "etc/nfsroot-build/build.json"
# What a finished 0.1 bootstrap left (bootstrap.json): a root made by this tool too.
LEGACY_MARKER = "etc/nfsroot-build/bootstrap.json"

# Directories that belong to the OS, the admin or other software (FHS 3.0
# ch. 3-5); a build may live below some of them (/srv/nfsroot), never be one.
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lost+found", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/local", "/usr/share", "/usr/src",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail",
    "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/var/www",
    "/var/lib/nfsroot-build", "/var/cache/nfsroot-build", "/var/cache/nfsroot-build/apt",
})
# Trees nothing of a build may be inside: dpkg's files (/usr, /etc, the
# merged-/usr links, /boot) and the kernel's and runtime file systems.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/proc", "/run", "/sbin", "/sys", "/usr")
# A fresh file system mounted on the root holds only this: still "empty".
EMPTY_FS_ENTRIES = {"lost+found"}


def _norm(path: str) -> PurePosixPath:
    # normpath keeps a leading "//" (POSIX leaves it implementation-defined); Linux does not.
    return PurePosixPath(os.path.normpath("/" + str(path).lstrip("/")))


def _inside(path: PurePosixPath, tree: str) -> bool:
    return path == PurePosixPath(tree) or PurePosixPath(tree) in path.parents


def system_path_problem(path: str) -> str | None:
    """Why a directory may not hold a root or TFTP root, or None."""
    p = _norm(path)
    if str(p) in SYSTEM_DIRS:
        return f"{p} is a system directory; use a directory of its own such as /srv/nfsroot/<name>"
    top = p.parts[1] if len(p.parts) > 1 else ""
    for tree in SYSTEM_TREES:
        if _inside(p, tree):
            return f"{p} is inside {tree}, which the system owns; use a directory under /srv"
    if re.fullmatch(r"lib(32|64|x32|o32)?", top):   # FHS /lib<qual>, merged-/usr links
        return f"{p} is inside /{top}, which the system owns; use a directory under /srv"
    return None


def overlap_problem(root: str, tftp_root: str) -> str | None:
    """Why the NFS root and the TFTP root may not be where they are, or None."""
    r, t = _norm(root), _norm(tftp_root)
    if r == t:
        return f"is the same directory as tftp.root ({t}); they need one each"
    if t in r.parents:
        return f"{r} is inside tftp.root {t}: the whole root would be served over TFTP"
    if r in t.parents:
        return f"tftp.root {t} is inside the root {r}: rebuilding the root would remove it"
    return None


def marker_build(root: Path) -> str | None:
    """The build named by the root's marker; "" for a 0.1 root; None if unmarked."""
    try:
        return str(json.loads((root / BUILD_MARKER).read_text())["build"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "" if (root / LEGACY_MARKER).is_file() else None


def is_empty(directory: Path) -> bool:
    return {e.name for e in os.scandir(directory)} <= EMPTY_FS_ENTRIES


def foreign_root_problem(root: Path, build: str) -> str | None:
    """Why an existing directory must not become (or be removed as) this build's root."""
    if not root.exists() and not root.is_symlink():
        return None
    if not root.is_dir():
        return f"{root} exists and is not a directory"
    try:
        if is_empty(root):
            return None
    except OSError as e:
        return f"{root} cannot be read: {e.strerror}"
    owner = marker_build(root)
    if owner is None:
        return (f"{root} is a non-empty directory that no nfsroot-build made (no {BUILD_MARKER} "
                "in it), and a bootstrap removes the root whole; use an empty or new directory, "
                "or move its contents away")
    if owner and owner != build:
        return (f"{root} holds the root of build {owner!r} ({BUILD_MARKER}), not of {build!r}; "
                "use another root.path")
    return None


def require_removable(root: Path, build: str) -> None:
    """Raise unless root may be removed whole: a marked root of this build, or empty."""
    why = system_path_problem(os.path.realpath(root)) or foreign_root_problem(root, build)
    if why:
        raise NfsrootError(f"refusing to remove {root}: {why}")


def refuse_host_root(path: Path, what: str) -> None:
    """Guard for helpers that act on everything under a path (unmount, kill)."""
    if os.path.realpath(path) == "/":
        raise NfsrootError(f"refusing to {what} under {path}: it is the host's own /")


def disk_problems(*, prefix: Path, root_path: str, tftp_path: str, build: str,
                  own_dirs: dict[str, Path]) -> list[tuple[str, str]]:
    """(field, message) for root.path and tftp.root as they are on disk under prefix.

    own_dirs: the tool's own directories (state, .deb cache) by name; a root
    that holds one of them would remove it on a rebuild.
    """
    out: list[tuple[str, str]] = []
    root_disk = prefix / root_path.lstrip("/")
    tftp_disk = prefix / tftp_path.lstrip("/")
    root_real, tftp_real = os.path.realpath(root_disk), os.path.realpath(tftp_disk)
    for field, configured, disk, real in (("root.path", root_path, root_disk, root_real),
                                          ("tftp.root", tftp_path, tftp_disk, tftp_real)):
        if why := system_path_problem(real):
            shown = disk if str(disk) == real else f"{disk} -> {real}"
            out.append((field, f"{configured} is {shown} on disk: {why}"))
    if not out and (why := overlap_problem(root_real, tftp_real)):
        out.append(("root.path", f"on disk: {why}"))
    if not any(f == "root.path" for f, _ in out) and (why := foreign_root_problem(root_disk, build)):
        out.append(("root.path", why))
    for name, own in own_dirs.items():
        own_real = PurePosixPath(os.path.realpath(own))
        for field, real in (("root.path", root_real), ("tftp.root", tftp_real)):
            r = PurePosixPath(real)
            if r == own_real or r in own_real.parents or own_real in r.parents:
                out.append((field, f"{real} overlaps the {name} {own_real}"))
    return out


def check_disk(ctx: Context) -> None:
    """Raise ConfigError (exit 2) if the root or TFTP root is unsafe on disk; no side effects."""
    cfg = ctx.config
    problems = disk_problems(prefix=ctx.prefix, root_path=cfg.root.path, tftp_path=cfg.tftp.root,
                             build=cfg.name,
                             own_dirs={"state directory": ctx.state_dir, ".deb cache": ctx.apt_cache})
    if problems:
        raise ConfigError(f"on disk under --prefix {ctx.prefix}", problems)
