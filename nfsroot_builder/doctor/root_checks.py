"""Checks of the built root (ctx.root) and of what the nodes boot from TFTP."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .. import chroot, versions
from ..context import Context
from ..files import sha256_file
from ..steps.initramfs import boot_kernel
from .base import Finding, check, ok
from .parse import comment_out_claims, ifupdown_claims, initrd_names

MAX_LISTED = 5


def _no_root(ctx: Context) -> Finding | None:
    if not (ctx.root / "etc").is_dir():
        return ok(f"no root built yet at {ctx.root}")
    return None


def _keep_copy(ctx: Context, path: Path) -> Path:
    """The seed's "make a backup ... in some other directory": a copy in the
    state dir's backup/root/ (version 1, 0.1's place) or backup/root.v<N>/
    (the version doctor checked, the current one) before a file of the root
    is removed or edited: fixing the same file in two versions keeps both."""
    tree = "root" if ctx.version_id == 1 else f"root.{versions.label(ctx.version_id)}"
    dest = ctx.state_dir / "backup" / tree / str(path.relative_to(ctx.root)).lstrip("/")
    ctx.files.ensure_file(dest, path.read_bytes(), path.stat().st_mode & 0o7777)
    return dest


# -- (b) ifupdown and the boot NIC ------------------------------------------------


def _interfaces_files(ctx: Context) -> list[Path]:
    main = ctx.root / "etc/network/interfaces"
    d = ctx.root / "etc/network/interfaces.d"
    files = [main] + (sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else [])
    return [f for f in files if f.is_file()]


@check("root-interfaces", seed="b")
def root_interfaces(ctx: Context) -> Finding:
    """ifupdown in the root leaves the boot NIC alone (the kernel configured it: ip=dhcp)."""
    if (f := _no_root(ctx)):
        return f
    claims = [(f, n, iface) for f in _interfaces_files(ctx) for n, iface in ifupdown_claims(f.read_text())]
    if not claims:
        return ok("no auto/allow-hotplug/dhcp stanza for a network card in the root's interfaces(5)")

    def apply(ctx: Context) -> set[str]:
        for f in sorted({f for f, _, _ in claims}):
            text = f.read_text()
            names = sorted({i for _, i in ifupdown_claims(text)})
            _keep_copy(ctx, f)
            note = (f"# nfsroot-build doctor: {', '.join(names)} commented out: the kernel configured the "
                    "boot NIC (ip=dhcp) and the root is on it; ifupdown must not touch it.\n")
            ctx.files.ensure_file(f, note + comment_out_claims(text), f.stat().st_mode & 0o7777)
        return set()
    where = "; ".join(f"{f}:{n}: {i}" for f, n, i in claims[:MAX_LISTED])
    return Finding("fail", f"ifupdown would reconfigure the card the root is mounted over, and the node "
                   f"hangs: {where}", "comment out those lines (the seed's fix; interfaces(5)), keeping lo",
                   apply)


# -- (c) udev persistent-net ------------------------------------------------------

GENERATED = "etc/udev/rules.d/70-persistent-net.rules"
GENERATORS = ("lib/udev/rules.d/75-persistent-net-generator.rules",
              "usr/lib/udev/rules.d/75-persistent-net-generator.rules")
SEED_GENERATOR = "etc/udev/persistent-net-generator.rules"
MASK = "etc/udev/rules.d/75-persistent-net-generator.rules"


@check("root-udev-net", seed="c")
def root_udev_net(ctx: Context) -> Finding:
    """No udev persistent-net rules in the shared root (they number NICs across nodes)."""
    if (f := _no_root(ctx)):
        return f
    root = ctx.root
    problems, remove, mask = [], [], False
    gen = root / GENERATED
    if gen.is_file() and re.search(r'SUBSYSTEM=="net".*NAME=', gen.read_text()):
        problems.append(f"{gen} names cards by MAC: the first node's card is eth0, the next node's eth1, ...")
        remove.append(gen)
    if (root / SEED_GENERATOR).is_file():
        problems.append(f"{root / SEED_GENERATOR} (the seed's generator) is present")
        remove.append(root / SEED_GENERATOR)
    masked = (root / MASK).is_symlink() and str((root / MASK).readlink()) == "/dev/null"
    for g in GENERATORS:
        if (root / g).is_file() and not masked:
            problems.append(f"{root / g} would write new rules at every boot of a new node")
            mask = True
            break
    if not problems:
        return ok("no persistent-net rules or generator in the root (names come from the hardware path)")

    def apply(ctx: Context) -> set[str]:
        for p in remove:
            _keep_copy(ctx, p)
            ctx.files.ensure_absent(p)
        if mask:
            # udev(7): a rules file in /etc masks the one of the same name in
            # /lib; a symlink to /dev/null disables it.
            ctx.files.ensure_symlink(root / MASK, "/dev/null")
        return set()
    return Finding("fail", "; ".join(problems),
                   "remove the generated rules (a copy goes to the state dir) and mask the generator "
                   f"with {MASK} -> /dev/null (udev(7))", apply)


# -- /etc/hostname -----------------------------------------------------------------


@check("root-hostname")
def root_hostname(ctx: Context) -> Finding:
    """The root has no /etc/hostname, so every node takes the name DHCP gives it."""
    if (f := _no_root(ctx)):
        return f
    p = ctx.root / "etc/hostname"
    if not p.is_file() or not p.read_text().strip():
        return ok("no /etc/hostname in the root: nodes keep their DHCP host name (hostname(5))")

    def apply(ctx: Context) -> set[str]:
        _keep_copy(ctx, p)
        ctx.files.ensure_absent(p)
        return set()
    return Finding("fail", f"{p} says {p.read_text().strip()!r}: every node would call itself that "
                   "instead of the name DHCP sends (use-host-decl-names)",
                   "remove it (a copy goes to the state dir; the hostname step does the same)", apply)


# -- what an interrupted chroot session left -----------------------------------------


@check("chroot-leftovers")
def chroot_leftovers(ctx: Context) -> Finding:
    """No interrupted chroot session left mounts, policy-rc.d or the build host's resolv.conf in the root."""
    if not ctx.root.is_dir():
        return ok(f"no root at {ctx.root}")
    found = chroot.leftovers(ctx)
    if not found:
        return ok("nothing of a chroot session is left in the root")

    def apply(ctx: Context) -> set[str]:
        chroot.recover(ctx)
        return set()
    return Finding("fail", "; ".join(found) + " (policy-rc.d would keep every daemon from starting on the nodes)",
                   "stop what runs in the root, unmount what is mounted under it, remove policy-rc.d and put "
                   "the root's resolv.conf back (what the next run does before its first step)", apply)


# -- kernel and initrd in TFTP -----------------------------------------------------


def tftp_images(ctx: Context, prefix: str) -> list[Path]:
    """Kernels/initrds the nodes can boot: the TFTP directory of the root
    version checked (<tftp>/<name>/ or <name>.v<N>/, kernel-to-tftp) and the
    seed's top level."""
    out = []
    for d in (ctx.tftp_root / versions.tftp_dir_of(ctx.config.name, ctx.version_id), ctx.tftp_root):
        if d.is_dir():
            out += sorted(p for p in d.glob(f"{prefix}*") if p.is_file())
    return out


def _run_step(name: str):
    """A fix that re-runs a pipeline step (state, log and all), if the build has it."""
    def apply(ctx: Context) -> set[str]:
        from .. import session
        pipe = session.pipeline(ctx)
        pipe.run_step(pipe.step(name))
        return set()
    return apply


@check("tftp-kernel")
def tftp_kernel(ctx: Context) -> Finding:
    """The kernel in TFTP is the root's kernel the nodes boot (root.kernel: by default the newest)."""
    newest = boot_kernel(ctx)
    kernels = tftp_images(ctx, "vmlinuz")
    if newest is None:
        return ok(f"no kernel in {ctx.root}/boot yet")
    src = ctx.root / "boot" / f"vmlinuz-{newest}"
    if any(sha256_file(k) == sha256_file(src) for k in kernels):
        return ok(f"TFTP serves the root's newest kernel {newest}")
    from ..steps import STEPS
    have = ", ".join(str(k) for k in kernels) or "none"
    apply = _run_step("kernel-to-tftp") if any(s.name == "kernel-to-tftp" for s in STEPS) else None
    return Finding("fail", f"the root's newest kernel is {newest}, but TFTP serves {have}: nodes boot an "
                   "old kernel (or none) whose modules are not in the root",
                   "copy the newest kernel and initrd to TFTP (nfsroot-build run kernel-to-tftp)", apply)


def _zstd(ctx: Context):
    def decompress(data: bytes) -> bytes:
        # No zstd in the standard library: the zstd tool, on a scratch copy.
        with tempfile.TemporaryDirectory(prefix="nfsroot-doctor.") as tmp:
            src, dst = Path(tmp) / "i.zst", Path(tmp) / "i.cpio"
            src.write_bytes(data)
            res = ctx.runner.run(["zstd", "-q", "-d", "-f", str(src), "-o", str(dst)], probe=True, check=False)
            if not dst.exists():
                raise ValueError(f"zstd could not decompress it (exit {res.exit_code}): install zstd")
            return dst.read_bytes()
    return decompress


NFS_MODULE = re.compile(r"(usr/)?lib/modules/[^/]+/kernel/fs/nfs/nfs\.ko(\.(xz|gz|zst))?")
MODULES_DIR = re.compile(r"(?:usr/)?lib/modules/([^/]+)/")


def initrd_problems(ctx: Context, initrd: Path, newest: str | None) -> list[str]:
    try:
        names = initrd_names(initrd.read_bytes(), _zstd(ctx))
    except Exception as e:  # noqa: BLE001  (zlib/lzma/bz2/ValueError/OSError: all mean unreadable)
        return [f"{initrd} cannot be read as an initramfs: {e}"]
    problems = []
    if "scripts/nfs" not in names:
        problems.append(f"{initrd} has no scripts/nfs: initramfs-tools was not set to BOOT=nfs")
    versions = {m.group(1) for n in names if (m := MODULES_DIR.match(n))}
    # A kernel with NFS built in lists it in modules.builtin (modules.builtin(5)).
    builtin = any("kernel/fs/nfs/nfs.ko" in b.read_text() for v in versions
                  if (b := ctx.root / "lib/modules" / v / "modules.builtin").is_file())
    if not any(NFS_MODULE.fullmatch(n) for n in names) and not builtin:
        problems.append(f"{initrd} has no nfs module: MODULES=netboot (or most) was not set")
    if not any(n.endswith("/nfsmount") for n in names):
        problems.append(f"{initrd} has no nfsmount (klibc-utils)")
    if newest and versions and newest not in versions:
        problems.append(f"{initrd} holds modules for {', '.join(sorted(versions))}, not the root's "
                        f"newest kernel {newest}")
    return problems


@check("initrd-nfs")
def initrd_nfs(ctx: Context) -> Finding:
    """The initrd in TFTP can mount an NFS root (scripts/nfs, the nfs module, nfsmount)."""
    initrds = tftp_images(ctx, "initrd")
    if not initrds:
        return ok(f"no initrd in {ctx.tftp_root} yet (step kernel-to-tftp)")
    newest = boot_kernel(ctx)
    problems = [p for i in initrds for p in initrd_problems(ctx, i, newest)]
    if not problems:
        return ok(f"{len(initrds)} initrd(s) in TFTP carry NFS boot support")
    return Finding("fail", "; ".join(problems[:MAX_LISTED]),
                   "rebuild it in the root with BOOT=nfs and MODULES=netboot (initramfs.conf(5)) and "
                   "publish it: nfsroot-build run initramfs-config, run initramfs, run kernel-to-tftp")


# -- RAM-image mode ------------------------------------------------------------------


@check("root-image")
def root_image(ctx: Context) -> Finding:
    """root.serve "image": the squashfs nginx serves for each version nodes boot is the one packed (size, sha256)."""
    from ..render.root import ROOT_IMAGE
    from ..steps.image import image_path, image_problems
    recs = ctx.state.versions()
    booted = {v for v in versions.node_versions(ctx.config, ctx.state, None).values()
              if recs.get(v, {}).get("status") == "ready"}
    checked, problems = [], []
    for vid in sorted(booted | {ctx.version_id}):
        vctx = ctx if vid == ctx.version_id else versions.context_for(ctx, vid)
        if vctx.config.root.serve != "image":
            continue
        # nginx's drop-in serves the TFTP root (render/http.py): the node's
        # fetch=http://<server>/<version dir>/filesystem.squashfs is this file.
        image = image_path(vctx)
        url = f"http://{ctx.config.server.address}/{versions.tftp_dir_of(ctx.config.name, vid)}/{ROOT_IMAGE}"
        if vid not in booted and not image.exists():
            continue   # a version still building, not packed yet
        label = versions.label(vid)
        if found := image_problems(vctx):
            problems += [f"{label}: {p}" for p in found]
            continue
        packed = recs.get(vid, {}).get("image")
        if not packed:
            problems.append(f"{label}: {image} ({url}) has no record of being packed by this build "
                            "(copied by hand, or packed before the record existed)")
            continue
        size, digest = image.stat().st_size, sha256_file(image)
        if (size, digest) != (packed["size"], packed["sha256"]):
            problems.append(f"{label}: {image} ({url}) is {size} bytes, sha256 {digest[:12]}, not the image "
                            f"packed ({packed['size']} bytes, sha256 {packed['sha256'][:12]})")
            continue
        checked.append(f"{label} ({size / 1e6:.1f} MB)")
    if problems:
        return Finding("fail", "; ".join(problems[:MAX_LISTED]) + ": nodes would run another root than the version",
                       "pack the version again from its tree (nfsroot-build run root-image with the config "
                       "that built it; a version's tree never changes once built)")
    if not checked:
        return ok("no node boots a RAM-image version (root.serve = \"nfs\")")
    return ok(f"nginx serves the image packed for {', '.join(checked)}")
