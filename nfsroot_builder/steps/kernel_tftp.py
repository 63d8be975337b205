from __future__ import annotations

from pathlib import Path

from .. import versions
from ..context import Context
from .base import Step, StepResult
from .initramfs import boot_kernel, chosen_kernel, kernel_key


def images(ctx: Context, kernel: str) -> dict[str, str]:
    """name in the root's /boot -> TFTP path (under the version's own directory)."""
    d = tftp_dir(ctx)
    return {f"vmlinuz-{kernel}": f"/{d}/vmlinuz-{kernel}",
            f"initrd.img-{kernel}": f"/{d}/initrd.img-{kernel}"}


def tftp_dir(ctx: Context) -> str:
    return versions.tftp_dir_of(ctx.config.name, ctx.version_id)


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


class KernelToTftp(Step):
    """Copy the kernel the nodes boot and its initrd into the TFTP root, readable by tftpd.

    The seed's `cp /NFSROOT/kerrighed/boot/vmlinuz-xxx .../initrd-xxx /srv/tftp`.
    The kernel is root.kernel's (see initramfs): by default the newest,
    chosen by Debian version ordering (python-debian), not by name. Files
    go to <tftp.root>/<name>/ (one directory per build, so two clusters can
    share a TFTP root; <name>.v<N>/ for root version N >= 2, kept as long
    as the version exists) with mode 0644: Debian installs
    initrds 0600 and trixie's vmlinuz too, and tftpd-hpa runs as user tftp.
    Older kernels of this build are removed from the directory.
    """
    name = "kernel-to-tftp"
    needs = ("initramfs", "tftp-server")

    def fingerprint(self, ctx: Context) -> dict:
        return {"tftp.root": ctx.config.tftp.root, "name": ctx.config.name, "dir": tftp_dir(ctx), **kernel_key(ctx)}

    def verify(self, ctx: Context) -> list[str]:
        kernel = ctx.output(self.name, "kernel")
        if not kernel or kernel != boot_kernel(ctx):
            return [f"the kernel root.kernel = {ctx.config.root.kernel!r} names is not the one published"]
        bad = []
        written = ctx.output(self.name, "written", {})
        for src, dst in images(ctx, kernel).items():
            target, source = ctx.tftp_root / dst.lstrip("/"), ctx.root / "boot" / src
            # Size and mtime as this step left them: a copy edited or replaced
            # by hand shows, without hashing 100 MB on every status.
            if not target.exists() or (target.stat().st_mode & 0o777) != 0o644 \
                    or not source.exists() or target.stat().st_size != source.stat().st_size \
                    or (dst in written and _stamp(target) != written[dst]):
                bad.append(str(target))
        return [f"missing or different: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        kernel = chosen_kernel(ctx)
        wanted = images(ctx, kernel)
        changed = ctx.files.ensure_dir(ctx.tftp_root / tftp_dir(ctx), 0o755)
        for src, dst in wanted.items():
            changed |= ctx.files.copy_file(ctx.root / "boot" / src, ctx.tftp_root / dst.lstrip("/"), 0o644)
        keep = {dst.rsplit("/", 1)[-1] for dst in wanted.values()}
        here = ctx.tftp_root / tftp_dir(ctx)
        for old in sorted(here.glob("vmlinuz-*")) + sorted(here.glob("initrd.img-*")):
            if old.name not in keep:
                changed |= ctx.files.ensure_absent(old)
        written = {dst: _stamp(ctx.tftp_root / dst.lstrip("/")) for dst in wanted.values()
                   if (ctx.tftp_root / dst.lstrip("/")).exists()}
        return StepResult(changed=changed, outputs={"kernel": kernel, "kernel_path": wanted[f"vmlinuz-{kernel}"],
                                                    "initrd_path": wanted[f"initrd.img-{kernel}"],
                                                    "written": written})
