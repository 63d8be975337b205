"""A production boot server as a QEMU VM, for tests/production.

- `server_image()`: a Debian trixie server (systemd, the kernel NFS server,
  isc-dhcp-server, tftpd-hpa, python3-venv, mmdebstrap, debootstrap, GRUB's network
  images) bootstrapped on the host with mmdebstrap from the host's mirror
  through the shared .deb cache, written into an ext4 disk image with
  `mke2fs -d` (no loop device), kernel and initrd beside it. Cached under
  /var/cache/nfsroot-build/server-vm/<hash of its inputs>: a second run
  skips the build. The VM boots it with `snapshot=on`, so the cached image
  never changes.
- `local_repo()`: the air-gapped site's Debian repository, made from the
  .deb cache with apt-ftparchive and signed with a throwaway key (kept in
  the cache directory; its public half is baked into the image as the
  site's trusted key).
- `wheelhouse()`: the tool's wheel and its dependencies' wheels for the
  VM's Python, for `pip install --no-index --find-links`.
- `Lab`: a network namespace with a bridge and taps (nothing in the host's
  namespace), the server VM and the nodes on it; every PID it starts is
  kept and only those are killed.

The VM is driven without ssh: a unit baked into the image mounts four 9p
shares (ctl: the test's script and config, read-only; repo and wheels,
read-only; out: writable) and runs ctl/drive.sh, which writes its results
to out/.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from nfsroot_builder import aptsources
from nfsroot_builder.context import APT_CACHE
from nfsroot_builder.lab.netns import BRIDGE_MAC, tap_name
from nfsroot_builder.lab.nodes import accelerator, firmware, qemu_argv

CACHE = APT_CACHE.parent / "server-vm"
SUITE = "trixie"
SERVER_MAC = "52:54:00:12:35:fe"
SHARES = {"ctl": True, "repo": True, "wheels": True, "out": False}   # tag -> read-only
# What docs/server.md's server needs before the tool's first step (which
# finds them installed), plus what the VM needs to boot and be driven.
SERVER_PACKAGES = [
    "systemd", "systemd-sysv", "udev", "dbus", "kmod", "procps", "iproute2", "passwd", "netbase",
    "linux-image-amd64", "initramfs-tools", "zstd",
    "python3", "python3-venv",
    "nfs-kernel-server", "isc-dhcp-server", "tftpd-hpa", "mmdebstrap",
    # The seed example's bootstrapper (the production test builds it).
    "debootstrap",
    "grub-common", "grub-pc-bin", "grub-efi-amd64-bin",
]
NETWORK_UNIT = """[Match]
Name=eth0

[Network]
Address={address}
LinkLocalAddressing=no
IPv6AcceptRA=no
"""
DRIVER = """#!/bin/sh
# Mount the test's 9p shares and run its script; its output goes to out/.
for tag in ctl repo wheels out; do
    mkdir -p /mnt/$tag
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 $tag /mnt/$tag || exit 1
done
echo "nrb-driver: running /mnt/ctl/drive.sh" > /dev/ttyS0
exec /bin/sh /mnt/ctl/drive.sh > /mnt/out/drive.log 2>&1
"""
DRIVER_UNIT = """[Unit]
Description=nfsroot-build production test: run the script of the ctl share
After=systemd-networkd.service local-fs.target
Wants=systemd-networkd.service

[Service]
Type=exec
ExecStart=/usr/local/sbin/nrb-driver

[Install]
WantedBy=multi-user.target
"""


def run(argv, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


# --- the site's local repository ---------------------------------------------------------

def repo_key() -> tuple[Path, bytes]:
    """(gpg home, public key) of the throwaway key that signs the local repository."""
    home = CACHE / "repo-key"
    pub = home / "public.asc"
    if not pub.exists():
        tmp = Path(tempfile.mkdtemp(prefix="repo-key.", dir=CACHE.mkdir(parents=True, exist_ok=True) or CACHE))
        tmp.chmod(0o700)
        run(["gpg", "--homedir", tmp, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
             "--quick-gen-key", "nfsroot-build test repository <nrb-test@example.invalid>", "rsa3072", "sign", "never"])
        (tmp / "public.asc").write_text(run(["gpg", "--homedir", tmp, "--armor", "--export"]).stdout)
        stop_agent(tmp)   # its sockets live in the home: the renamed home gets its own agent
        try:
            tmp.rename(home)
        except OSError:   # another run made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return home, pub.read_bytes()


def stop_agent(home: Path) -> None:
    """The gpg-agent that gpg started for this home (gpgconf(1) --kill): no process is left behind."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)


def suite_debs(suite: str) -> set[str]:
    """The .deb file names (name_version_arch.deb, an epoch's colon as %3a,
    as apt names them) of every package of the host mirror's suite and its
    -security suite: the repository holds one suite, as a site's mirror
    does. The shared cache also holds bookworm's .debs (the tests that build
    a second suite), and debootstrap, unlike apt, does not pick the newest
    of two versions of a package in one index: mixed, it unpacks both."""
    names = set()
    for base, dist in ((aptsources.host_mirror(), suite), (aptsources.host_security_uri(), f"{suite}-security")):
        if not base:
            continue
        url = f"{base}/dists/{dist}/main/binary-amd64/Packages.xz"
        try:
            with urllib.request.urlopen(url, timeout=120) as f:
                text = lzma.decompress(f.read()).decode(errors="replace")
        except OSError:
            if dist == suite:
                raise
            continue   # no security archive on this mirror: the cache has none of it either
        for para in text.split("\n\n"):
            fields = dict(re.findall(r"^(Package|Version|Architecture): (\S+)$", para, re.MULTILINE))
            if len(fields) == 3:
                names.add(f"{fields['Package']}_{fields['Version'].replace(':', '%3a')}_{fields['Architecture']}.deb")
    return names


def local_repo(dest: Path) -> Path:
    """A signed flat-pool repository of the cache's .debs of suite trixie (and trixie-security), component main."""
    home, _ = repo_key()
    pool = dest / "pool"
    pool.mkdir(parents=True)
    from debian.debian_support import Version
    wanted = suite_debs(SUITE)
    # One version of each package, the newest (trixie-security's over
    # trixie's), as apt would pick: debootstrap reads the first it finds.
    newest: dict[tuple[str, str], tuple[Version, str]] = {}
    for entry in os.scandir(APT_CACHE):
        if entry.name in wanted:
            name, version, arch = entry.name.removesuffix(".deb").split("_")
            v = Version(version.replace("%3a", ":"))
            if (name, arch) not in newest or newest[(name, arch)][0] < v:
                newest[(name, arch)] = (v, entry.name)
    for _v, filename in newest.values():
        try:
            os.link(APT_CACHE / filename, pool / filename)
        except OSError:
            shutil.copy2(APT_CACHE / filename, pool / filename)
    dists = dest / "dists" / SUITE
    binary = dists / "main/binary-amd64"
    binary.mkdir(parents=True)
    # --db: apt-ftparchive's cache of each .deb's control data (the second run reads no .deb).
    packages = run(["apt-ftparchive", "--db", CACHE / "ftparchive.db", "packages", "pool"], cwd=dest).stdout
    (binary / "Packages").write_text(packages)
    run(["xz", "-k", binary / "Packages"])
    release = run(["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Suite={SUITE}",
                   "-o", f"APT::FTPArchive::Release::Codename={SUITE}",
                   "-o", "APT::FTPArchive::Release::Components=main",
                   "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", dists]).stdout
    (dists / "Release").write_text(release)
    gpg = ["gpg", "--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        run([*gpg, "--clearsign", "-o", dists / "InRelease", dists / "Release"])
        run([*gpg, "--detach-sign", "--armor", "-o", dists / "Release.gpg", dists / "Release"])
    finally:
        stop_agent(home)
    return dest


# --- the tool, as wheels -------------------------------------------------------------------

def wheelhouse(dest: Path, checkout: Path, python_version: str) -> Path:
    """The tool's wheel and its dependencies' for the VM's Python (binary wheels only)."""
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "-q", "--no-deps", "-w", dest, checkout])
    wheel = next(dest.glob("nfsroot_build-*.whl"))
    run([*pip, "download", "-q", "-d", dest, "--only-binary=:all:", "--python-version", python_version,
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--implementation", "cp",
         wheel])
    return dest


# --- the server image ----------------------------------------------------------------------

def image_files(address: str, repo_public_key: bytes) -> dict[str, tuple[bytes, int]]:
    """Path in the image -> (content, mode) of what the test adds to the bootstrapped system."""
    return {
        "etc/hostname": (b"nrb-server\n", 0o644),
        "etc/hosts": (b"127.0.0.1 localhost\n127.0.1.1 nrb-server\n", 0o644),
        "etc/fstab": (b"/dev/vda / ext4 rw,errors=remount-ro 0 1\n", 0o644),
        # The air-gapped site: its only Debian source is the local repository.
        "etc/apt/sources.list": (f"deb file:///mnt/repo {SUITE} main\n".encode(), 0o644),
        "etc/apt/trusted.gpg.d/nrb-test-repo.asc": (repo_public_key, 0o644),
        "etc/systemd/network/10-eth0.network": (NETWORK_UNIT.format(address=address).encode(), 0o644),
        "usr/local/sbin/nrb-driver": (DRIVER.encode(), 0o755),
        "etc/systemd/system/nrb-driver.service": (DRIVER_UNIT.encode(), 0o644),
    }


def image_key(address: str) -> str:
    _, pub = repo_key()
    files = {k: [hashlib.sha256(v).hexdigest(), m] for k, (v, m) in image_files(address, pub).items()}
    data = json.dumps({"packages": SERVER_PACKAGES, "suite": SUITE, "mirror": aptsources.host_mirror(),
                       "files": files, "format": 1}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def server_image(address: str) -> tuple[Path, dict]:
    """The cached image directory (disk.raw, vmlinuz, initrd.img) and what making it took."""
    key = image_key(address)
    done = CACHE / f"image-{key}"
    if (done / "disk.raw").exists():
        return done, {"image_cached": True, "image_seconds": 0.0}
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"image-{key}.", dir=CACHE))
    root = work / "root"
    root.mkdir()
    try:
        link = "find {src} -maxdepth 1 -name '*.deb' -exec cp -lu -t {dst} -- {{}} +"
        archives = '"$1"/var/cache/apt/archives'
        run(["mmdebstrap", "--mode=root", "--variant=minbase", f"--include={','.join(SERVER_PACKAGES)}",
             "--skip=download/empty",
             '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial',
             "--setup-hook=" + link.format(src=APT_CACHE, dst=archives),
             "--customize-hook=" + link.format(src=archives, dst=APT_CACHE),
             SUITE, root, aptsources.host_mirror()], timeout=3600)
        _, pub = repo_key()
        for rel, (content, mode) in image_files(address, pub).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(mode)
        run(["chroot", root, "systemctl", "enable", "systemd-networkd.service", "nrb-driver.service"])
        # machine-id(5): empty means "first boot", systemd fills it.
        (root / "etc/machine-id").write_text("")
        kernel = sorted(root.glob("boot/vmlinuz-*"))[-1]
        shutil.copyfile(kernel, work / "vmlinuz")
        shutil.copyfile(root / f"boot/initrd.img-{kernel.name.removeprefix('vmlinuz-')}", work / "initrd.img")
        for stale in (root / "var/cache/apt/archives").glob("*.deb"):
            stale.unlink()
        # The disk holds the server and, later, the node root it builds: 8 GiB sparse.
        run(["mke2fs", "-q", "-t", "ext4", "-d", root, "-L", "nrb-server", work / "disk.raw", "8G"])
        shutil.rmtree(root)
        try:
            work.rename(done)
        except OSError:   # another run cached the same image meanwhile
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        run(["rm", "-rf", "--one-file-system", work])
        raise
    return done, {"image_cached": False, "image_seconds": round(time.monotonic() - t0, 1)}


# --- the network and the VMs ---------------------------------------------------------------

class Lab:
    """A namespace with a bridge; a tap per VM. Starts and stops only its own processes."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.ns = f"nrb-prodvm-{hashlib.sha256(str(workdir).encode()).hexdigest()[:6]}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.taps: list[str] = []
        self.accel = accelerator()

    def ip(self, *args) -> None:
        run(["ip", "-n", self.ns, *args])

    def up(self, taps: int) -> None:
        run(["ip", "netns", "add", self.ns])
        self.ip("link", "set", "lo", "up")
        # No address on the bridge: the server VM holds server.address.
        self.ip("link", "add", "br0", "address", BRIDGE_MAC, "type", "bridge")
        self.ip("link", "set", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self.ip("link", "set", "br0", "up")
        for i in range(taps):
            tap = tap_name(i)
            self.ip("tuntap", "add", "dev", tap, "mode", "tap")
            self.ip("link", "set", tap, "master", "br0")
            self.ip("link", "set", tap, "up")
            self.taps.append(tap)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"qemu-{name}.log", "wb")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.procs[name] = proc
        return proc

    def server(self, image: Path, shares: dict[str, Path], memory_mb: int = 2048) -> Path:
        """Boot the server VM on the first tap; returns its serial log."""
        serial = self.dir / "server-serial.log"
        argv = ["qemu-system-x86_64", "-name", "nrb-server", "-accel", self.accel, "-smp", "2", "-m", str(memory_mb),
                "-nographic", "-monitor", "none", "-no-reboot", "-nodefaults",
                "-kernel", image / "vmlinuz", "-initrd", image / "initrd.img",
                "-append", "root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0 systemd.show_status=1",
                # snapshot=on: writes go to a temporary file; the cached image stays as built.
                "-drive", f"file={image / 'disk.raw'},if=virtio,format=raw,snapshot=on,cache=unsafe",
                "-netdev", f"tap,id=net0,ifname={tap_name(0)},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=net0,mac={SERVER_MAC}",
                "-device", "virtio-rng-pci",   # entropy for sshd/getrandom under TCG
                "-serial", f"file:{serial}"]
        for tag, path in shares.items():
            ro = ",readonly=on" if SHARES[tag] else ""
            argv += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=passthrough{ro}"]
        self.start("server", [str(a) for a in argv])
        return serial

    def node(self, index: int, name: str, mac: str) -> Path:
        serial = self.dir / f"{name}-serial.log"
        serial.write_bytes(b"")
        self.start(name, qemu_argv(name, mac, tap_name(index), serial, self.accel,
                                   firmware("bios", self.dir / f"{name}.vars.fd")))
        return serial

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        # `ip netns exec` execs QEMU: the PID is QEMU's own.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def down(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if Path(f"/run/netns/{self.ns}").exists():
            subprocess.run(["ip", "netns", "delete", self.ns], check=False)


def wait_for(path: Path, timeout: float, alive=lambda: True, what: str = "") -> float:
    """Seconds until path exists; AssertionError after timeout or when alive() turns false."""
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no {what or path.name} within {timeout:.0f} s")
        if not alive():
            raise AssertionError(f"the VM stopped before {what or path.name}")
        # Half a second: a marker file is cheap to look for, and each of the
        # test's three waits would otherwise add a second on average.
        time.sleep(0.5)
    return round(time.monotonic() - t0, 1)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").replace("\r", "").splitlines()[-lines:])
    except OSError:
        return f"({path} missing)"
