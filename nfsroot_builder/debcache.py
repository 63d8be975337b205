"""The .deb cache shared by every build on this host, safe for builds that
run at the same time.

apt locks the archives directory it downloads into for the whole install
(/var/cache/apt/archives/lock; apt-get(8)), and debootstrap and
mmdebstrap's sync-out write into theirs in place, so one directory shared by
two builds makes the second fail ("Could not get lock") or read a .deb while
the other writes it. Instead each build gets its own directory, a *lease*
keyed by its root (which the run has locked, see session.locked): it starts
with hard links to every .deb of the shared pool (no copy; apt verifies each
file's hash before use), apt and the bootstrappers download into it, and
what they downloaded is hard-linked back into the pool. A link appears
whole or not at all, so the pool never holds a partial file, and two builds
that fetched the same .deb simply keep the first one.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from .context import Context


def lease_dir(ctx: Context) -> Path:
    """The build's own archives directory, next to the pool (same file system: hard links)."""
    key = hashlib.sha256(str(ctx.root).encode()).hexdigest()[:16]
    return ctx.apt_cache.parent / "leases" / key


DEPMOD = "depmod"


def depmod_dir(ctx: Context) -> Path:
    """depmod's output per module tree (assets/depmod-cached: the bootstrap's
    depmod), shared by every build like the .deb pool."""
    return ctx.apt_cache.parent / DEPMOD


# An entry being stored is a .new.* directory for the seconds depmod-cached
# copies it; one older than this was left by a killed build.
STALE_NEW_ENTRY = 24 * 3600


def _remove_stale_new_entries(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".new.") and \
                    time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_NEW_ENTRY:
                shutil.rmtree(entry.path, ignore_errors=True)


def _link_debs(src: Path, dst: Path) -> int:
    """Hard-link every *.deb of src missing in dst; returns how many."""
    made = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(src):
            if not entry.name.endswith(".deb") or not entry.is_file(follow_symlinks=False):
                continue
            target = dst / entry.name
            try:
                os.link(entry.path, target)
            except FileExistsError:
                continue
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                # Another file system: copy under a temporary name, rename into place.
                tmp = dst / f".{entry.name}.{os.getpid()}.tmp"
                shutil.copyfile(entry.path, tmp)
                os.replace(tmp, target)
            made += 1
    return made


@contextlib.contextmanager
def lease(ctx: Context) -> Iterator[Path]:
    """The directory a build downloads .debs into; its new files reach the pool on the way out.

    A dry-run gets the path and nothing is made: the cache is not part of
    the plan (like apt's own cache, it changes nothing a node sees).
    """
    directory = lease_dir(ctx)
    if ctx.files.dry_run:
        yield directory
        return
    for d in (ctx.apt_cache, directory / "partial", depmod_dir(ctx)):
        d.mkdir(parents=True, exist_ok=True, mode=0o755)
    _remove_stale_new_entries(depmod_dir(ctx))
    _link_debs(ctx.apt_cache, directory)
    try:
        yield directory
    finally:
        # Also after a failure: what was downloaded is good (apt renames a
        # .deb into place only once its hash matched).
        _link_debs(directory, ctx.apt_cache)
