from __future__ import annotations

import re

from .. import chroot, kernels
from ..context import Context
from ..errors import NfsrootError
from ..render import root as R
from .base import Step, StepResult, digest

newest_kernel = kernels.newest_kernel   # where doctor and the tests look for it


def boot_kernel(ctx: Context) -> str | None:
    """The release of the kernel the nodes boot (root.kernel, see kernels.py)."""
    return kernels.boot_kernel(ctx.files.on_disk(ctx.root), ctx.config.root.kernel)


def chosen_kernel(ctx: Context) -> str:
    """boot_kernel for a step to act on: a placeholder in a dry-run before the
    kernel is installed; in a real run, a root without that kernel fails the
    step, naming what the root has."""
    try:
        return ctx.placeholder("kernel-version", boot_kernel(ctx))
    except NfsrootError:
        raise NfsrootError(kernels.describe_missing(ctx.root, ctx.config.root.kernel)) from None


def kernel_key(ctx: Context) -> dict:
    """The fingerprint part for root.kernel: absent for the default, so that
    states of builds made before root.kernel existed stay done."""
    spec = ctx.config.root.kernel
    return {} if spec == kernels.NEWEST else {"root.kernel": spec}


def _inputs(ctx: Context) -> dict[str, str | None]:
    """root path -> content of every initramfs input this tool writes (None: absent)."""
    cfg = ctx.config
    return {R.CONF_D: R.initramfs_conf(cfg), R.LAYOUT_SCRIPT: R.layout_script(cfg),
            R.LAYOUT_HOOK: R.layout_hook(cfg)}


class InitramfsConfig(Step):
    """Configure initramfs-tools for an NFS root: BOOT=nfs, MODULES=netboot, the layouts' script.

    The seed's "create a ramdisk image with network support", as a
    conf.d drop-in (initramfs.conf(5)), written before the initramfs step
    makes the root's one initrd (kernels install with INITRD=No). An
    init-bottom script (initramfs-tools(7)) makes the writable layouts the
    node's menu asks for: `nrb.layout=overlay` (a tmpfs overlay over the
    read-only root) or `nrb.layout=per-node nrb.var=<server>:<dir>` (the
    node's own NFS /var, which cannot be in a systemd fstab). A hook adds
    the overlay module. The initrd is thus the same for every layout and
    node: adding a node or changing the layout never rebuilds it.
    """
    name = "initramfs-config"
    needs = ("bootstrap",)

    def fingerprint(self, ctx: Context) -> dict:
        return {"files": digest(_inputs(ctx))}

    def verify(self, ctx: Context) -> list[str]:
        bad = [p for p, text in _inputs(ctx).items()
               if (text is None) != (not (ctx.root / p.lstrip("/")).exists())
               or (text is not None and (ctx.root / p.lstrip("/")).read_text() != text)]
        return [f"not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        changed = False
        for path, text in _inputs(ctx).items():
            target = ctx.root / path.lstrip("/")
            if text is None:
                changed |= ctx.files.ensure_absent(target)
            else:
                if not target.parent.is_dir():
                    changed |= ctx.files.ensure_dir(target.parent, 0o755)
                changed |= ctx.files.ensure_file(target, text, 0o755 if path != R.CONF_D else 0o644)
        return StepResult(changed=changed)


class Initramfs(Step):
    """Regenerate the initrd when its inputs changed, and check it can boot from NFS.

    The initrd is made for the kernel the nodes boot: root.kernel, the
    newest installed (by Debian version ordering) unless it names a kernel
    release (`uname -r`) or package. `update-initramfs -u -k <release>`
    runs in a chroot session when that kernel's initrd is missing (the kernel was installed with INITRD=No: one
    initrd per build, made here with the config in place) or older than the
    conf.d drop-in or the layout's scripts. Then
    `lsinitramfs` must list the NFS boot script (scripts/nfs), nfsmount, the
    drop-in and the layout's pieces; otherwise the step fails.
    """
    name = "initramfs"
    needs = ("initramfs-config", "root-packages")

    def fingerprint(self, ctx: Context) -> dict:
        return {"files": digest(_inputs(ctx)), **kernel_key(ctx)}

    def verify(self, ctx: Context) -> list[str]:
        out = ctx.state.outputs(self.name)
        if out.get("kernel") and out.get("kernel") != boot_kernel(ctx):
            return [f"root.kernel = {ctx.config.root.kernel!r} is not the kernel {out.get('kernel')} of the initrd"]
        initrd = ctx.root / "boot" / f"initrd.img-{out.get('kernel')}"
        if not out.get("kernel") or not initrd.exists():
            return ["no initrd checked yet"]
        st = initrd.stat()
        if [st.st_size, st.st_mtime_ns] != [out.get("size"), out.get("mtime_ns")]:
            return [f"{initrd} changed since it was checked"]
        return []

    def run(self, ctx: Context) -> StepResult:
        found = boot_kernel(ctx)
        kernel = chosen_kernel(ctx)
        initrd = ctx.root / "boot" / f"initrd.img-{kernel}"
        inputs = digest(_inputs(ctx))
        # What the tree holds (a dry-run of a cloned version: the tree it is cloned from).
        tree = ctx.files.on_disk(ctx.root)
        newest_input = max((p.stat().st_mtime for p in (tree / k.lstrip("/") for k in _inputs(ctx))
                            if p.exists()), default=0)
        initrd_seen = tree / "boot" / initrd.name
        # Stale if older than a file we wrote, or built from other inputs
        # (a layout script removed since leaves no newer file behind).
        recorded = ctx.state.outputs(self.name).get("inputs")
        # No kernel yet (only a dry-run gets here: the placeholder raises in a
        # real run): the kernel will be installed with INITRD=No, so this step
        # makes its initrd, as the real run will.
        # Or an input this run wrote (initramfs-config): a dry-run wrote none
        # on disk, so the copy's older files alone would hide the change (a
        # group root's first version, copied from the default root, gets
        # files with its own header: docs/groups.md).
        written = set(ctx.files.changed_paths)
        stale = found is None or not initrd_seen.exists() or initrd_seen.stat().st_mtime < newest_input \
            or (recorded is not None and recorded != inputs) \
            or any(str(ctx.root / k.lstrip("/")) in written for k in _inputs(ctx))
        with chroot.session(ctx) as ch:
            if stale:
                # Also makes a missing initrd (the kernel was installed with
                # INITRD=No): -u with -k needs no earlier one, and syncs it.
                ch.run(["update-initramfs", "-u", "-k", kernel])
            listing = ch.run(["lsinitramfs", f"/boot/initrd.img-{kernel}"])
        names = {line.strip().removeprefix("./") for line in listing.stdout.splitlines()}
        # A dry-run did not list anything; a real empty listing is a broken initrd.
        missing = [] if listing.dry else [w for w in R.initrd_must_contain(ctx.config)
                                          if not any(re.fullmatch(w, n) for n in names)]
        if missing:
            raise NfsrootError(f"{initrd} lacks {', '.join(missing)}: it cannot boot this NFS root")
        st = initrd.stat() if initrd.exists() else None
        return StepResult(changed=stale, outputs={
            "kernel": kernel, "inputs": inputs,
            "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None})
