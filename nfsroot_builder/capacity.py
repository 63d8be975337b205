"""The boot-storm model: how long N nodes powered on at once take to boot,
and which resource saturates first (docs/scale.md).

Pure functions over measured inputs (bench/storm.py; the figures below are
its run's). For each server of K, its share of the nodes, N/K, must be
sent:

- over its link: N/K x (bytes of one boot, every protocol) / link speed;
- by its daemons, which share its CPU: N/K x the sum over the protocols of
  (bytes of one boot over it / the daemon's measured throughput on a whole
  server). Each throughput was measured with the daemon alone on the
  machine, so their times add up rather than overlap.

storm time = max(one node's own boot time, link time, daemon time); the
larger of the last two is the resource that saturates first. What a boot
costs per protocol depends on the mode: NFS root (root.serve "nfs": the
boot loader and menus over TFTP, kernel and initrd over TFTP or HTTP
(boot.transport), then / read over NFS) or RAM image ("image": the same,
plus the squashfs over HTTP, and no NFS).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# -- measured inputs (bench/storm.py; bench/RESULTS.md, "Boot storm"; raw: bench/storm-results.json)
MEASURED_ON = "bench/storm.py, 2026-11-30 09:36 UTC, 4 lab nodes at once, 2-core shared VM"
# Bytes sent to one node per boot, by protocol, in the lab: nftables counters
# in the lab's namespace (wire bytes, headers included) over 4 nodes, with
# boot.transport "http", so TFTP carried GRUB and its menus only, and NFS
# what a minbase trixie root reads up to login (layout tmpfs).
TFTP_LOADER_BYTES = 304_818
NFS_ROOT_BYTES = 30_013_450
# The wire carried 1.9 % more than the files over HTTP (41,325,644 bytes a
# boot for a 40,547,393-byte kernel and initrd): headers, applied to file sizes.
WIRE_OVERHEAD = 1.0192
# The lab's trixie kernel and initrd, and img2's squashfs (zstd 3) of the same root.
KERNEL_BYTES = 12_171_200
INITRD_BYTES = 28_376_193
SQUASHFS_BYTES = 167_700_000
SIZE_SOURCES = {"kernel": "the lab's trixie kernel", "initrd": "the lab's trixie initrd",
                "squashfs": "RAM-image mode's squashfs of the lab's minbase trixie root, zstd level 3"}
# What one server sustains, bytes/s, each daemon alone on the 2-core machine.
# nginx and in.tftpd: the highest aggregate over 1-16 parallel clients on
# loopback (the clients ran on the same cores: lower bounds); nginx for
# initrd-sized files and for the squashfs separately (16 clients each);
# in.tftpd with 1468-byte blocks (what PXE ROMs ask for; 65464-byte blocks
# reached 1.8 GB/s on loopback, but a node's NIC and its firmware limit them
# to the MTU). NFS: Ganesha sent 120.1 MB to the 4 nodes for 2.20 s of its
# CPU time (/proc; 24,059 NFSv3 operations), 54.6 MB per CPU second, times
# the 2 cores. (An earlier run: 1.85 s for 119.9 MB; nginx 1,196 and
# 2,491 MB/s, in.tftpd 119 MB/s: the spread of a shared machine.)
MEASURED_CORES = 2
NGINX_BPS = 830.4e6
NGINX_IMAGE_BPS = 2_322.5e6
TFTPD_BPS = 133.7e6
GANESHA_BPS = 109.1e6
# One node alone, power-on to login in the lab (bench/RESULTS.md, lab-boot-1;
# QEMU under TCG: a real node's firmware and kernel are faster, so this floor
# is pessimistic). Four at once took 168.4-182.1 s on the 2 cores: TCG's CPU.
BOOT_SECONDS = 39.1

LINK_UNITS = {"M": 10**6, "G": 10**9, "T": 10**12}
NODE_COUNTS = (100, 1_000, 10_000)


def parse_link(text: str) -> float:
    """'10G', '1G', '25G', '100M', '2.5G' (bits per second, SI) -> bytes per
    second. ValueError on anything else."""
    # A lower-case b only: "10GB/s" would be bytes, which a link is not sold in.
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([MGTmgt])(?:bit/s|bit|bps|b/s)?\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a link speed: a number and M, G or T (bits per second), e.g. 10G")
    return float(m.group(1)) * LINK_UNITS[m.group(2).upper()] / 8


def link_label(bytes_per_s: float) -> str:
    """The inverse of parse_link: 1.25e9 bytes/s -> '10G'."""
    bits = bytes_per_s * 8
    unit = next((u for u in ("T", "G") if bits >= LINK_UNITS[u]), "M")
    return f"{bits / LINK_UNITS[unit]:g}{unit}"


@dataclass(frozen=True)
class Inputs:
    """One boot's bytes by protocol (to the node), what one server's daemon
    for each sustains (bytes/s), and one node's own boot time."""
    boot_bytes: dict[str, float]
    throughput: dict[str, float] = field(default_factory=lambda: {
        "tftp": TFTPD_BPS, "http": NGINX_BPS, "http-image": NGINX_IMAGE_BPS, "nfs": GANESHA_BPS})
    boot_seconds: float = BOOT_SECONDS


def boot_bytes(mode: str, transport: str, kernel: float = KERNEL_BYTES, initrd: float = INITRD_BYTES,
               squashfs: float = SQUASHFS_BYTES, loader: float = TFTP_LOADER_BYTES,
               nfs_root: float = NFS_ROOT_BYTES, overhead: float = 1.0) -> dict[str, float]:
    """What one boot fetches, by protocol, in a mode ("nfs" or "image") and
    boot.transport ("tftp" or "http"); the files' sizes times overhead (the
    wire's headers: WIRE_OVERHEAD). "http-image" is the squashfs, apart
    from the kernel and initrd because nginx serves a large file faster."""
    if mode not in ("nfs", "image"):
        raise ValueError(f"mode {mode!r}: nfs or image")
    if transport not in ("tftp", "http"):
        raise ValueError(f"transport {transport!r}: tftp or http")
    out = {"tftp": float(loader), "http": 0.0, "http-image": 0.0, "nfs": 0.0}
    out[transport] += (kernel + initrd) * overhead
    if mode == "image":
        out["http-image"] = squashfs * overhead     # live-boot's fetch= of the image, over nginx
    else:
        out["nfs"] = float(nfs_root)
    return out


@dataclass(frozen=True)
class Storm:
    nodes: int
    servers: int
    link: float                    # bytes/s, each server's
    seconds: float
    bottleneck: str                # "link", "server (tftp)", "server (http)", "server (nfs)" or "node boot"
    link_seconds: float
    daemon_seconds: dict[str, float]   # by protocol, each server's

    @property
    def server_seconds(self) -> float:
        return sum(self.daemon_seconds.values())


def storm(inputs: Inputs, nodes: int, link: float, servers: int = 1) -> Storm:
    """The boot-storm time of `nodes` nodes powered on at once, spread evenly
    over `servers` servers, each with a link of `link` bytes/s."""
    if nodes < 1 or servers < 1 or link <= 0:
        raise ValueError("nodes and servers must be at least 1, the link faster than 0")
    share = nodes / servers
    per_boot = sum(inputs.boot_bytes.values())
    link_s = share * per_boot / link
    daemons = {}
    for proto, nbytes in inputs.boot_bytes.items():
        if nbytes <= 0:
            continue
        rate = inputs.throughput.get(proto, 0.0)
        if rate <= 0:
            raise ValueError(f"no measured throughput for {proto}, which a boot uses ({nbytes:.0f} bytes)")
        daemons[proto] = share * nbytes / rate
    server_s = sum(daemons.values())
    seconds = max(inputs.boot_seconds, link_s, server_s)
    if inputs.boot_seconds >= max(link_s, server_s):
        bottleneck = "node boot"
    elif link_s >= server_s:
        bottleneck = "link"
    else:
        bottleneck = f"server ({max(daemons, key=daemons.get)})"
    return Storm(nodes=nodes, servers=servers, link=link, seconds=seconds, bottleneck=bottleneck,
                 link_seconds=link_s, daemon_seconds=daemons)


def table(inputs: Inputs, link: float, servers: int = 1, counts=NODE_COUNTS) -> list[Storm]:
    return [storm(inputs, n, link, servers) for n in counts]


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


# The table in docs/scale.md (tests/unit/test_capacity_rules.py checks the doc against it).
DOC_CASES = [(mode, transport, link, servers) for mode, transport in (("nfs", "http"), ("nfs", "tftp"), ("image", "http"))
             for link in ("1G", "10G", "25G") for servers in (1, 4)]


def doc_table() -> str:
    """docs/scale.md's table: the storm time and what saturates first, for
    100 / 1,000 / 10,000 nodes, with the measured defaults."""
    head = ["| mode | kernel and initrd over | link | servers | " + " | ".join(f"{n:,} nodes" for n in NODE_COUNTS) + " |",
            "| --- | --- | --- | --- |" + " --- |" * len(NODE_COUNTS)]
    rows = []
    for mode, transport, link, servers in DOC_CASES:
        inputs = Inputs(boot_bytes(mode, transport, overhead=WIRE_OVERHEAD))
        cells = [f"{fmt_seconds(s.seconds)} ({s.bottleneck})" for s in table(inputs, parse_link(link), servers)]
        rows.append(f"| {mode} | {transport.upper()} | {link} | {servers} | " + " | ".join(cells) + " |")
    return "\n".join(head + rows) + "\n"
