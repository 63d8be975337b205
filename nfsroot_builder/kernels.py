"""Which kernel the nodes boot: root.kernel, resolved against the root.

root.kernel is "newest" (the newest /boot/vmlinuz-* by Debian version
ordering), a kernel release (what `uname -r` prints, e.g. 6.1.0-57-amd64)
or a package name (linux-image-6.1.0-57-amd64, a site's own kernel
package, or a metapackage such as linux-image-amd64 whose dependency ships
the kernel). A release or package that is not already installed by the
stock kernel is installed: from the suite, an extra source, or
root.local_debs (whose control files are read without running anything).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path


def version_key(version: str):
    """Debian version ordering (6.12.10 > 6.12.9, which a string sort gets wrong);
    python-debian imported here, not at start-up (~12 ms of every command)."""
    from debian.debian_support import Version
    return Version(version)


NEWEST = "newest"
# A kernel release starts with its version number (uname -r: 6.1.0-57-amd64,
# 6.12.57+deb13-amd64); a Debian package name starts with a letter or digit
# but never with "<digits>.<digits>".
RELEASE = re.compile(r"^[0-9]+\.[0-9]+[A-Za-z0-9.+~_-]*$")


def is_release(spec: str) -> bool:
    return bool(RELEASE.match(spec))


def installed_releases(root: Path) -> list[str]:
    """Every /boot/vmlinuz-<release> of the root, oldest first (Debian version ordering)."""
    return sorted((p.name.removeprefix("vmlinuz-") for p in (Path(root) / "boot").glob("vmlinuz-*")), key=version_key)


def newest_kernel(root: Path) -> str | None:
    """The newest /boot/vmlinuz-<version> of the root, by Debian version ordering
    (python-debian; 6.12.10 > 6.12.9, which a string sort gets wrong)."""
    return (installed_releases(root) or [None])[-1]


def _package_list(root: Path, package: str) -> list[str]:
    info = Path(root) / "var/lib/dpkg/info"
    for name in (f"{package}.list", *(p.name for p in sorted(info.glob(f"{package}:*.list")))):
        if (info / name).exists():
            return (info / name).read_text().splitlines()
    return []


def _depends(root: Path, package: str) -> list[str]:
    """The names in an installed package's Depends (first alternative of each)."""
    from .packages_index import status_field
    field = status_field(root, package, "Depends") or ""
    return [item.split("|")[0].split("(")[0].split(":")[0].strip() for item in field.split(",") if item.strip()]


def releases_of_package(root: Path, package: str, depth: int = 2) -> list[str]:
    """The kernel releases an installed package ships in /boot, or, for a
    metapackage (linux-image-amd64), those of the linux-image-* packages it depends on."""
    found = [line.removeprefix("/boot/vmlinuz-") for line in _package_list(root, package)
             if line.startswith("/boot/vmlinuz-")]
    if not found and depth:
        for dep in _depends(root, package):
            if dep.startswith("linux-image-"):
                found += releases_of_package(root, dep, depth - 1)
    return sorted(found, key=version_key)


def boot_kernel(root: Path, spec: str) -> str | None:
    """The release of the kernel the nodes boot, per root.kernel; None when the
    root does not have it (yet). The one answer for initramfs, kernel-to-tftp,
    doctor, status and `root list`."""
    if spec == NEWEST:
        return newest_kernel(root)
    if is_release(spec):
        return spec if (Path(root) / "boot" / f"vmlinuz-{spec}").exists() else None
    releases = [r for r in releases_of_package(root, spec) if (Path(root) / "boot" / f"vmlinuz-{r}").exists()]
    return releases[-1] if releases else None


def describe_missing(root: Path, spec: str) -> str:
    have = ", ".join(installed_releases(root)) or "none"
    return f"root.kernel = {spec!r}: the root has no such kernel in /boot (kernels there: {have})"


@lru_cache(maxsize=64)
def _deb_package(path: str, size: int, mtime_ns: int) -> str | None:
    from debian.arfile import ArError
    from debian.debfile import DebError, DebFile
    try:
        return DebFile(path).debcontrol()["Package"]
    except (ArError, DebError, OSError, KeyError, EOFError, ValueError):
        return None


def deb_package(path: str) -> str | None:
    """The Package field of a .deb (None if it is missing or not a .deb)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return _deb_package(path, st.st_size, st.st_mtime_ns)


def package_to_install(spec: str, local_debs: list[str]) -> str | None:
    """The package root.kernel asks to install from the archive (or an extra
    source): None for "newest" and for a kernel one of root.local_debs ships."""
    if spec == NEWEST:
        return None
    candidates = {f"linux-image-{spec}", f"linux-image-{spec}-unsigned"} if is_release(spec) else {spec}
    if any(deb_package(d) in candidates for d in local_debs):
        return None
    return f"linux-image-{spec}" if is_release(spec) else spec
