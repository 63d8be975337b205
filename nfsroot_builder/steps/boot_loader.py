from __future__ import annotations

import hashlib
from pathlib import Path

from .. import signed_boot
from ..context import Context
from ..errors import NfsrootError
from ..files import directory_lock, sha256_file
from ..render import menus
from . import initramfs
from .base import Step, StepResult, stale_files

GRUB_PLATFORMS = {"i386-pc": "core.0", "x86_64-efi": "core.efi"}
IPXE_FILES = {"undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe", "ipxe.efi": "/usr/lib/ipxe/ipxe.efi"}
# From the host's pxelinux, syslinux-common and syslinux-efi packages, not
# the root's suite: the loader runs before any root kernel, and the host's
# packages are one syslinux build (pxelinux.0/lpxelinux.0 and ldlinux.c32
# must be: the core loads ldlinux.c32 of its own build only). ldlinux.c32
# and pxelinux.cfg/ sit in the directory of the DHCP filename (PXELINUX's
# path prefix), here the TFTP root. lpxelinux.0 rather than pxelinux.0: it
# brings its own TCP/IP stack (lwIP) over the PXE stack's UNDI driver, so
# the same binary fetches http:// URLs (boot.transport "http"); under TFTP
# both boot in the lab under QEMU's iPXE ROM (docs/troubleshooting.md,
# "PXELINUX"). syslinux.efi and ldlinux.e64 answer UEFI clients (option 93;
# a UEFI node boots through them in the lab, tests/e2e/test_boot_pxelinux.py).
PXELINUX_FILES = {"lpxelinux.0": "/usr/lib/PXELINUX/lpxelinux.0",
                  "ldlinux.c32": "/usr/lib/syslinux/modules/bios/ldlinux.c32",
                  "syslinux.efi": "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi",
                  "ldlinux.e64": "/usr/lib/syslinux/modules/efi64/ldlinux.e64"}


def grub_version(ctx: Context) -> str:
    """'grub-pc-bin=V1 grub-efi-amd64-bin=V2': a new GRUB on the host re-makes the netdir."""
    res = ctx.runner.run(["dpkg-query", "-W", "-f", "${Package}=${Version}\n", "grub-pc-bin", "grub-efi-amd64-bin"],
                         probe=True, check=False)
    return " ".join(sorted(res.stdout.split()))


def _shared_file(ctx: Context, path: Path, content: str | bytes | None = None, src: Path | None = None) -> bool:
    """Write a loader file of the TFTP root (content, or a copy of src) and
    record it as this build's even when another build wrote it first: builds
    side by side with one tftp.root share these files (their bytes do not
    depend on the build: render.shared_header), and `undo` of one keeps a
    file another build's record still has (sidebyside.py). Shared rather
    than a copy per build: the DHCP filename and GRUB's prefix name one
    path per TFTP root."""
    changed = ctx.files.copy_file(src, path, 0o644) if src is not None else ctx.files.ensure_file(path, content)
    ctx.files.share(path)
    return changed


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _signed_chain(ctx: Context, outputs: dict) -> bool:
    """shim, signed GRUB and grub/grub.cfg into the TFTP root (boot.secure_boot)."""
    t = ctx.tftp_root
    kernel = initramfs.newest_kernel(ctx.root)
    if kernel and not signed_boot.pe_signed(ctx.root / "boot" / f"vmlinuz-{kernel}"):
        raise NfsrootError(f"boot.secure_boot: the root's kernel {kernel} is not signed, so GRUB would "
                           f"refuse it under Secure Boot (install the signed linux-image-amd64)")
    files, versions = signed_boot.chain_files(ctx)
    changed = False
    for path, content in files.items():
        changed |= _shared_file(ctx, t / path, content)
    changed |= _shared_file(ctx, t / signed_boot.GRUB_CFG, menus.grub_signed_cfg(ctx.config))
    outputs["signed"] = versions
    outputs["signed_sha256"] = {path: hashlib.sha256(content).hexdigest() for path, content in files.items()}
    return changed


def _stale_chain(ctx: Context) -> list[str]:
    """The signed files as this step wrote them (by hash; the mirror is not asked)."""
    t = ctx.tftp_root
    written = ctx.output("boot-loader", "signed_sha256", {})
    bad = [str(t / s.tftp) for s in signed_boot.CHAIN
           if s.tftp not in written or not (t / s.tftp).is_file() or sha256_file(t / s.tftp) != written[s.tftp]]
    return bad + stale_files({t / signed_boot.GRUB_CFG: menus.grub_signed_cfg(ctx.config)})


class BootLoader(Step):
    """Put the network boot loader the DHCP filename points at into the TFTP root.

    The seed's pxegrub (GRUB legacy built with one NIC driver, menu path in
    DHCP option 150) no longer exists. boot.loader:

    - "grub" (default): GRUB 2 from the host's grub-pc-bin and
      grub-efi-amd64-bin, made with grub-mknetdir(1): boot/grub/i386-pc/core.0
      (BIOS PXE) and boot/grub/x86_64-efi/core.efi (UEFI). GRUB fetches
      boot/grub/grub.cfg-01-<mac> by itself; boot/grub/grub.cfg answers a
      machine without one.
    - "ipxe": undionly.kpxe (BIOS) and ipxe.efi (UEFI) from the host's ipxe
      package, and ipxe/boot.ipxe, which chains the node's own script.
    - "pxelinux": lpxelinux.0 and ldlinux.c32 (BIOS) and syslinux.efi with
      ldlinux.e64 (UEFI) from the host's pxelinux, syslinux-common and
      syslinux-efi packages, and pxelinux.cfg/default for a machine without
      its own pxelinux.cfg/01-<mac>. lpxelinux.0 rather than pxelinux.0:
      the same binary also fetches http:// URLs (boot.transport "http").
    - "pxegrub": nothing is installed (bring your own /pxegrub binary); the
      node-menus step writes the legacy menus.

    boot.secure_boot = true adds Debian's signed chain for UEFI nodes, from
    the root's own suite (the two .debs fetched into the .deb cache and read
    in place, not installed anywhere): boot/shim/shimx64.efi (shim-signed,
    signed by Microsoft) and next to it boot/shim/grubx64.efi, the signed
    netboot GRUB of grub-efi-amd64-signed, which shim loads from its own
    directory. That GRUB reads grub/grub.cfg, which reads the node's
    boot/grub/grub.cfg-01-<mac>. The root's kernel must be signed
    (linux-image-amd64 is); the step refuses an unsigned one.

    grub-mknetdir runs again only when a core image is missing or the
    host's GRUB packages changed version.

    Builds side by side on one server share one tftp.root and these files
    (the same bytes whichever build writes them; grub-mknetdir's output is
    reproducible): `undo` of one build keeps each while another build's
    record has it.
    """
    name = "boot-loader"
    needs = ("tftp-server",)
    # 2: the fallback menus' header names no build (shared by builds side by side)
    version = 2

    def fingerprint(self, ctx: Context) -> dict:
        secure = {"secure_boot": True, "suite": ctx.config.root.suite} if ctx.config.boot.secure_boot else {}
        return {"loader": ctx.config.boot.loader, "tftp.root": ctx.config.tftp.root, **secure}

    def verify(self, ctx: Context) -> list[str]:
        """The menus and iPXE's binaries by content; GRUB's core images (made
        by grub-mknetdir, not by us) by presence and size."""
        cfg, t = ctx.config, ctx.tftp_root
        bad: list[str] = []
        if cfg.boot.loader == "grub":
            cores = [t / "boot/grub" / p / core for p, core in GRUB_PLATFORMS.items()]
            bad += [str(p) for p in cores if not p.is_file() or p.stat().st_size == 0]
            bad += stale_files({t / "boot/grub/grub.cfg": menus.grub_fallback(cfg)})
            if cfg.boot.secure_boot:
                bad += _stale_chain(ctx)
        elif cfg.boot.loader == "ipxe":
            wanted = {t / name: _read(Path(src)) for name, src in IPXE_FILES.items()}
            bad += stale_files({**wanted, t / "ipxe/boot.ipxe": menus.ipxe_boot(cfg)})
        elif cfg.boot.loader == "pxelinux":
            wanted = {t / name: _read(Path(src)) for name, src in PXELINUX_FILES.items()}
            bad += stale_files({**wanted, t / "pxelinux.cfg/default": menus.pxelinux_fallback(cfg)})
        return [f"missing or not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        # Builds side by side share the TFTP root's loader files, and two runs
        # at once once made grub-mknetdir fail ("cannot delete
        # boot/grub/locale/pt_BR.mo~": each run's temporary name~ files went
        # from under the other). One build at a time writes them; the tftp-server step
        # made the directory, so both runs lock the same one.
        with directory_lock(ctx.tftp_root):
            return self._write_loader_files(ctx)

    def _write_loader_files(self, ctx: Context) -> StepResult:
        cfg, t = ctx.config, ctx.tftp_root
        changed = False
        outputs = {}
        if cfg.boot.loader == "grub":
            version = grub_version(ctx)
            outputs["grub_version"] = version
            for platform, core in GRUB_PLATFORMS.items():
                if (t / "boot/grub" / platform / core).exists() and ctx.output(self.name, "grub_version") == version:
                    continue
                ctx.runner.run(["grub-mknetdir", f"--net-directory={t}", "--subdir=boot/grub",
                                "-d", f"/usr/lib/grub/{platform}"])
                changed = True
            changed |= _shared_file(ctx, t / "boot/grub/grub.cfg", menus.grub_fallback(cfg))
            if cfg.boot.secure_boot:
                changed |= _signed_chain(ctx, outputs)
        elif cfg.boot.loader == "ipxe":
            for name, src in IPXE_FILES.items():
                changed |= _shared_file(ctx, t / name, src=Path(src))
            changed |= _shared_file(ctx, t / "ipxe/boot.ipxe", menus.ipxe_boot(cfg))
        elif cfg.boot.loader == "pxelinux":
            for name, src in PXELINUX_FILES.items():
                changed |= _shared_file(ctx, t / name, src=Path(src))
            changed |= _shared_file(ctx, t / "pxelinux.cfg/default", menus.pxelinux_fallback(cfg))
        elif not (t / "pxegrub").exists():
            ctx.note(f"boot.loader = pxegrub: put your pxegrub binary at {t}/pxegrub")
        return StepResult(changed=changed, outputs=outputs)
