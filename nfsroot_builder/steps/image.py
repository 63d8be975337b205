"""root.serve = "image": the version's root packed as one squashfs beside its
kernel and initrd, which nginx serves and live-boot fetches into RAM."""
from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..files import sha256_file
from ..render.root import ROOT_IMAGE
from .base import Step, StepResult
from .kernel_tftp import tftp_dir

# squashfs(5) superblock magic, "hsqs" on disk (little-endian 0x73717368).
SQUASHFS_MAGIC = b"hsqs"
# zstd level: on the lab's trixie root (347 MB) mksquashfs' default 15 took
# 13.8 s for 159.3 MB, level 3 0.94 s for 167.7 MB (5 % more, most of the
# tree being already-compressed kernel modules); docs/image-mode.md.
ZSTD_LEVEL = 3
# Not needed once the node runs: the kernel and initrd it booted are already
# in memory, and the TFTP root serves them (about 80 MB less per node's RAM).
EXCLUDED = ("boot/vmlinuz-*", "boot/initrd.img-*")


def image_path(ctx: Context) -> Path:
    return ctx.tftp_root / tftp_dir(ctx) / ROOT_IMAGE


def mksquashfs_argv(tree: Path, out: Path) -> list[str]:
    """mksquashfs(1): a new image (-noappend), zstd, no progress bar in the
    step log, the kernel and initrd left out (-wildcards for the globs)."""
    return ["mksquashfs", str(tree), str(out), "-noappend", "-comp", "zstd",
            "-Xcompression-level", str(ZSTD_LEVEL), "-no-progress", "-wildcards", "-e", *EXCLUDED]


def pack(ctx: Context) -> bool:
    """Pack ctx's version tree into its image: mksquashfs writes a new file
    beside it, which then replaces the old one in one rename (a node fetching
    the old image meanwhile keeps reading the old inode)."""
    out = image_path(ctx)
    made = out.with_name(f".{out.name}.new")
    ctx.files.ensure_dir(out.parent, 0o755)
    ctx.runner.run(mksquashfs_argv(ctx.root, made), contained=True)
    # What was packed, in the version's record: doctor's root-image check
    # compares the file nginx serves with it. None when mksquashfs made no
    # file (a dry-run, whose state is never saved).
    packed = image_facts(made)
    changed = ctx.files.move_into_place(made, out, 0o644)
    if packed and ctx.version_id in ctx.state.versions():
        ctx.state.set_version(ctx.version_id, image=packed)
    return changed


def image_facts(path: Path) -> dict | None:
    """{"size", "sha256"} of an image file, None when there is none."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return {"size": size, "sha256": sha256_file(path)}


def image_problems(ctx: Context) -> list[str]:
    """Why the version's image is not the packed tree as it is now (no side
    effects): missing, not a squashfs, or older than the tree's initrd (the
    initramfs step runs again whenever the tree changes)."""
    out = image_path(ctx)
    try:
        with open(out, "rb") as f:
            magic = f.read(4)
        st = out.stat()
    except OSError:
        return [f"{out} is missing"]
    if magic != SQUASHFS_MAGIC:
        return [f"{out} is not a squashfs image"]
    if st.st_mode & 0o777 != 0o644:
        return [f"{out} has mode {st.st_mode & 0o777:o}, not 644 (nginx serves it as user www-data)"]
    initrds = [p.stat().st_mtime for p in (ctx.root / "boot").glob("initrd.img-*")]
    if initrds and max(initrds) > st.st_mtime:
        return [f"{out} is older than the root's initrd: the tree changed after it was packed"]
    # The size only: hashing 170 MB at every status is doctor's job (root-image).
    packed = ctx.state.versions().get(ctx.version_id, {}).get("image")
    if packed and packed["size"] != st.st_size:
        return [f"{out} is {st.st_size} bytes, {packed['size']} when it was packed: it was replaced or cut"]
    return []


class RootImage(Step):
    """With root.serve = "image", pack the root version into a squashfs next to its kernel and initrd.

    `mksquashfs <root> <tftp.root>/<name>[.v<N>]/filesystem.squashfs -comp zstd`,
    the kernel and initrd under /boot left out. A version is immutable, so it
    is packed once, when it is built (and again only if its tree changes, as
    `lab up` does when it adds its report unit). nginx serves it (serve =
    "image" needs boot.transport = "http"); each node's menu has
    `boot=live fetch=http://<server>/<dir>/filesystem.squashfs`: live-boot
    in the initrd downloads it into RAM and runs / as a tmpfs overlay over
    it, so a running node needs no server. `root switch`/`rollback` point
    the menus at another version's directory, which holds that version's
    image. With root.serve = "nfs" (the default) this step does nothing and
    removes an image it made before.
    """
    name = "root-image"
    needs = ("initramfs", "kernel-to-tftp")

    def fingerprint(self, ctx: Context) -> dict:
        if ctx.config.root.serve != "image":
            return {}
        return {"serve": "image", "dir": tftp_dir(ctx), "argv": mksquashfs_argv(Path("<root>"), Path("<image>"))}

    def verify(self, ctx: Context) -> list[str]:
        if ctx.config.root.serve != "image":
            out = image_path(ctx)
            return [f"{out} is left from root.serve = \"image\""] if str(out) in ctx.files.record else []
        return image_problems(ctx)

    def run(self, ctx: Context) -> StepResult:
        out = image_path(ctx)
        if ctx.config.root.serve != "image":
            # Only an image this tool made; an admin's file of that name stays.
            return StepResult(changed=str(out) in ctx.files.record and ctx.files.ensure_absent(out))
        return StepResult(changed=pack(ctx), outputs={"image": str(out)})
