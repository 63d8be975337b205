"""Debian's signed network boot chain, for nodes with Secure Boot on
(boot.secure_boot): shim -> GRUB's signed netboot image -> the root's signed kernel.

- shim-signed's shimx64.efi.signed is signed by Microsoft's UEFI CA, the key
  firmware ships with; it carries Debian's key and checks what it loads
  against it (and against the SBAT revocation levels).
- grub-efi-amd64-signed's grubnetx64.efi.signed is GRUB built for the
  network and signed by Debian. shim fetches it over TFTP from the directory
  it was loaded from, as grubx64.efi (shim's netboot.c, DEFAULT_LOADER), so it
  is served under that name next to shim.
- The kernel of linux-image-amd64 (linux-image-<abi>-amd64, from
  linux-signed-amd64) is signed by Debian; GRUB has shim verify it.

The two loaders come from the root's own suite, so that their SBAT levels
match the kernel the root runs: their .debs are looked up in the suite's
Packages index, fetched into the tool's .deb cache (checked against the
index's SHA256) and read with python-debian's DebFile - no process, so a
dry-run predicts every file it writes.
"""
from __future__ import annotations

import hashlib
import io
import struct
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from . import packages_index
from .context import Context
from .errors import NfsrootError
from .files import atomic_write
from .render.server import SHIM_FILE


@dataclass(frozen=True)
class Signed:
    package: str
    member: str   # path in the .deb
    tftp: str     # path in the TFTP root


SHIM = Signed("shim-signed", "usr/lib/shim/shimx64.efi.signed", SHIM_FILE)
GRUB = Signed("grub-efi-amd64-signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
              SHIM_FILE.rsplit("/", 1)[0] + "/grubx64.efi")
CHAIN = (SHIM, GRUB)
# The signed netboot image's prefix is /grub on the TFTP server it came from;
# its built-in config sources $prefix/grub.cfg (debian/build-efi-images in
# Debian's grub2). It never looks for grub.cfg-01-<mac> by itself.
GRUB_CFG = "grub/grub.cfg"


def _deb(ctx: Context, record: dict[str, str]) -> bytes:
    """The .deb the index names: from the tool's .deb cache when its hash
    matches, else from the mirror (then kept in the cache; not in a dry-run)."""
    cached = ctx.apt_cache / Path(record["Filename"]).name
    try:
        data = cached.read_bytes()
        if hashlib.sha256(data).hexdigest() == record["SHA256"]:
            return data
    except OSError:
        pass
    url = f"{packages_index.mirror(ctx)}/{urllib.parse.quote(record['Filename'])}"
    data = packages_index._fetch(url)
    if hashlib.sha256(data).hexdigest() != record["SHA256"]:
        raise NfsrootError(f"{url} does not match the SHA256 of the suite's index (mirror syncing?)")
    if not ctx.files.dry_run:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data, 0o644)
    return data


def chain_files(ctx: Context) -> tuple[dict[str, bytes], dict[str, str]]:
    """(TFTP path -> content of shim and GRUB, package -> version) from the root's suite."""
    found = packages_index.records(ctx, tuple(s.package for s in CHAIN))
    from debian.debfile import DebFile  # here: python-debian is ~12 ms of every command's start-up
    files, versions = {}, {}
    for s in CHAIN:
        deb = DebFile(fileobj=io.BytesIO(_deb(ctx, found[s.package])))
        content = deb.data.get_content("./" + s.member)
        if not content:
            raise NfsrootError(f"{s.package} {found[s.package]['Version']} has no {s.member}")
        files[s.tftp] = content
        versions[s.package] = found[s.package]["Version"]
    return files, versions


def pe_signed(path: Path) -> bool:
    """Does this PE image (an EFI-stub kernel) carry an Authenticode signature?

    The certificate table is data directory 4 of the PE optional header
    (Microsoft PE/COFF specification, "Optional Header Data Directories");
    sbsign writes it, an unsigned image has it empty.
    """
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] != b"MZ" or len(head) < 0x40:
        return False
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    if head[pe:pe + 4] != b"PE\0\0" or pe + 24 + 152 > len(head):
        return False
    optional = pe + 24
    magic = struct.unpack_from("<H", head, optional)[0]
    directories = optional + {0x10B: 96, 0x20B: 112}.get(magic, 0)
    if directories == optional:
        return False
    _offset, size = struct.unpack_from("<II", head, directories + 4 * 8)
    return size > 0
