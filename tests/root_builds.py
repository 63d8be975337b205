"""Two real Debian trixie roots, each built once per test session through the
CLI under staging prefixes, shared by the integration and end-to-end tests
(registered as a plugin in tests/conftest.py):

- `mm`: mmdebstrap, layout tmpfs, GRUB;
- `deb`: debootstrap, layout per-node, iPXE; stopped with SIGTERM in the
  middle of root-packages and finished with `all --resume`.

Timings and sizes go to <basetemp>/root-build-figures.json.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from nfsroot_builder.procs import mounts_under

from helpers import example_text, nfsroot_build, require, status

HASH = "$6$nfsrootlab$h11iU6PTvJRLyy7/3jEA3/mAH5atrONLmymJs3/tJD/awHyv6YLTdglbrZc1fRX..67IS4Z0GOZceY9NqF97H1"
NODES = [("n1", "52:54:00:12:35:01", "192.168.0.101"), ("n2", "52:54:00:12:35:02", "192.168.0.102")]
BASE = ["linux-image-amd64", "initramfs-tools", "zstd", "nfs-common", "netbase", "systemd-sysv", "udev"]


def config(name: str, bootstrapper: str, layout: str, loader: str, packages=("iproute2",),
           local_debs=()) -> str:
    nodes = "".join(f'[[node]]\nname = "{n}"\nmac = "{m}"\nip = "{i}"\n\n' for n, m, i in NODES)
    return f"""name = "{name}"
[server]
address = "192.168.0.1"
interface = "nrb-br0"
[network]
subnet = "192.168.0.0/24"
domain = "test.nfsroot"
[root]
path = "/srv/nfsroot/{name}"
suite = "trixie"
bootstrapper = "{bootstrapper}"
variant = "minbase"
packages = {json.dumps(list(packages))}
local_debs = {json.dumps(list(local_debs))}
password_hash = "{HASH}"
layout = "{layout}"
[tftp]
root = "/srv/tftp/{name}"
[boot]
loader = "{loader}"
kernel_args = ["console=ttyS0,115200n8"]
timeout = 0
[nfs]
server = "ganesha"
{nodes}"""


@dataclass
class Build:
    cfg: Path
    stage: Path
    name: str
    figures: dict = field(default_factory=dict)
    dry_run: str = ""   # the transcript of `all --dry-run` on the fresh prefix, before the build
    # What the first build made, kept aside: the shared builds are used by
    # later tests too (e2e boots add versions, TFTP files, runs whose logs
    # rotate the first run's away: runlogs.KEEP), and the reference tests
    # (dry-run exactness, kill -9 rounds) compare with the first build only.
    first_logs: Path | None = None   # a copy of that build's own log directory
    first_outside: dict | None = None   # outside_root() right after it
    first_state: dict | None = None   # its state.json right after it
    root_path: str = ""   # root.path when the config does not use /srv/nfsroot/<name> (the seed's)

    @property
    def root(self) -> Path:
        return self.stage / (self.root_path.lstrip("/") or f"srv/nfsroot/{self.name}")

    @property
    def tftp(self) -> Path:
        return self.stage / f"srv/tftp/{self.name}"

    @property
    def state(self) -> dict:
        return json.loads((self.stage / f"var/lib/nfsroot-build/{self.name}/state.json").read_text())

    def kernel(self) -> str:
        return self.state["steps"]["kernel-to-tftp"]["outputs"]["kernel"]


def step_seconds(build: Build, step: str) -> float:
    rec = (build.first_state or build.state)["steps"][step]
    return (datetime.fromisoformat(rec["finished"]) - datetime.fromisoformat(rec["started"])).total_seconds()


def installed(root: Path) -> str:
    """`dpkg-query -W` of the root: every package and version."""
    return subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W"],
                          capture_output=True, text=True, check=True).stdout


# Made anew by every build: the initrd (mkinitramfs writes file times into
# the cpio) and the state with its timestamps and logs.
NOT_REPRODUCIBLE = ("var/lib/nfsroot-build/", "initrd.img-")


def outside_root(build: Build) -> dict[str, str]:
    """sha256 of every file under the stage but outside the root, by path
    relative to the stage, with the stage's own path in the content replaced
    (it is part of the served paths in exports, dhcpd.conf and menus)."""
    out = {}
    stage = str(build.stage).encode()
    for p in sorted(build.stage.rglob("*")):
        rel = str(p.relative_to(build.stage))
        if p.is_relative_to(build.root) or any(k in rel for k in NOT_REPRODUCIBLE):
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p).replace(str(build.stage), "<stage>")
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes().replace(stage, b"<stage>")).hexdigest()
    return out


def processes_in(path: Path) -> list[str]:
    """Processes whose root, working directory or command line is under path."""
    top, found = str(path), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(link.startswith(top) for link in links) or top in cmd:
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] if (entry / "stat").exists() else "?"
            found.append(f"{entry.name} [{state}] {cmd[:300]}")
    return found


def processes_gone(path: Path, wait: float = 120.0) -> tuple[list[str], float]:
    """Wait until no process is left under path; (what was there at first, seconds it took).
    A SIGKILLed process in uninterruptible I/O (dpkg's fsync) dies only when the I/O is done."""
    t0 = time.monotonic()
    first = processes_in(path)
    while processes_in(path) and time.monotonic() - t0 < wait:
        time.sleep(0.1)
    return first, round(time.monotonic() - t0, 2)


def remove_stage(path: Path) -> None:
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", point], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sxb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def record(tmp_path_factory, key: str, figures: dict) -> None:
    out = tmp_path_factory.getbasetemp() / "root-build-figures.json"
    data = json.loads(out.read_text()) if out.exists() else {}
    data[key] = figures
    out.write_text(json.dumps(data, indent=2))


def new_build(tmp_path_factory, key, **kw) -> Build:
    require(os.path.exists("/usr/sbin/mmdebstrap") or os.path.exists("/usr/bin/mmdebstrap"), "mmdebstrap missing")
    base = tmp_path_factory.mktemp(key)
    cfg = base / "cluster.toml"
    cfg.write_text(config(key, **kw))
    return Build(cfg, base / "stage", key)


def plan_then_build(b: Build) -> None:
    """`all --dry-run` on the fresh prefix (test_dry_run_exact.py compares it
    with what the build does), then the build, with its figures."""
    b.dry_run = nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--dry-run", check=True).stdout
    t0 = time.monotonic()
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
    b.figures["build_seconds"] = round(time.monotonic() - t0, 1)
    b.first_logs = Path(shutil.copytree((b.stage / f"var/lib/nfsroot-build/{b.name}/logs/last").resolve(),
                                        b.stage.parent / "first-build-logs", symlinks=True))
    b.first_outside = outside_root(b)
    b.first_state = b.state
    b.figures["root_bytes"] = du(b.root)
    b.figures["initrd_bytes"] = (b.root / f"boot/initrd.img-{b.kernel()}").stat().st_size


@pytest.fixture(scope="session")
def mm(tmp_path_factory) -> Build:
    b = new_build(tmp_path_factory, "mm", bootstrapper="mmdebstrap", layout="tmpfs", loader="grub")
    plan_then_build(b)
    record(tmp_path_factory, "mmdebstrap", b.figures)
    return b


def step_record(b: Build, step: str) -> dict:
    """The step's record in the build's state file ({} before the first save)."""
    try:
        return b.state["steps"].get(step, {})
    except (OSError, ValueError):
        return {}


def step_log(b: Build, step: str, rec: dict) -> Path | None:
    """The log the state names for the step, else the newest <step>.log under
    the state dir's logs/ (one directory per run, or flat)."""
    if rec.get("log"):
        return Path(rec["log"])
    logs = sorted((b.stage / f"var/lib/nfsroot-build/{b.name}/logs").rglob(f"{step}.log"),
                  key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def wait_until_running(proc: subprocess.Popen, b: Build, step: str, command: str, then: str,
                       timeout: float = 1800) -> str:
    """Wait until the state says `step` is running and its log (the path the
    state names) shows it started `command` ("$ ..." line); then up to 60 s for
    a line with `then` (the command's own output, written in blocks). Returns
    what was seen last. Fails if the run ends first or the step finishes."""
    deadline = time.monotonic() + timeout
    seen, started_at = "", None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {step} ran {command!r}")
        rec = step_record(b, step)
        if rec.get("status") not in (None, "running"):
            raise AssertionError(f"{step} is {rec.get('status')} before {command!r} was seen")
        log = step_log(b, step, rec)
        if rec.get("status") == "running" and log:
            try:
                text = log.read_text(errors="replace")
            except OSError:
                text = ""
            if any(line.startswith("$ ") and command in line for line in text.splitlines()):
                seen = seen or "started"
                started_at = started_at or time.monotonic()
                tail = text[text.rindex(command):]
                if then in tail:
                    return "output"
                if time.monotonic() - started_at > 60:
                    return seen
        time.sleep(0.1)
    raise AssertionError(f"{step} did not run {command!r} within {timeout} s")


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Build:
    """debootstrap, stopped by SIGTERM while apt-get installs in the chroot, then resumed."""
    b = new_build(tmp_path_factory, "deb", bootstrapper="debootstrap", layout="per-node", loader="ipxe")
    t0 = time.monotonic()
    # Output to a file, not a pipe nobody reads while we wait (a full pipe would stall the run).
    out_path = b.cfg.with_name("interrupted-run.out")
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nfsroot_builder", "all", "-c", b.cfg, "--prefix", b.stage],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        # dpkg's "Unpacking <pkg>": apt-get is past the downloads, dpkg is writing the root.
        seen = wait_until_running(proc, b, "root-packages", "apt-get install", then="Unpacking ")
    except BaseException as e:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{e}\n{out_path.read_text(errors='replace')[-3000:]}") from e
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    err = out_path.read_text(errors="replace")
    steps = b.state["steps"]
    b.figures["sigterm"] = {"returncode": proc.returncode, "stderr": err[-2000:], "signalled_after": seen,
                            # every step the run started and did not finish: status and error
                            "unfinished": {s: [rec.get("status"), rec.get("error", "")]
                                           for s, rec in steps.items() if rec.get("status") != "done"},
                            "done": [s for s, rec in steps.items() if rec.get("status") == "done"],
                            "status": {s: r["status"] for s, r in status(b.cfg, b.stage).items()},
                            "mounts_after": mounts_under(b.stage),
                            "policy_rc_d_after": (b.root / "usr/sbin/policy-rc.d").exists()}
    nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, "--resume", check=True)
    b.figures["build_seconds_incl_interruption"] = round(time.monotonic() - t0, 1)
    b.figures["root_bytes"] = du(b.root)
    b.figures["initrd_bytes"] = (b.root / f"boot/initrd.img-{b.kernel()}").stat().st_size
    record(tmp_path_factory, "debootstrap", b.figures)
    return b


def seed_sysvinit_text() -> str:
    """`init --example seed` with the page's own layout: layout "seed" and
    init "sysvinit" (issue 12, point 5). Two changes only: suite trixie (sid's
    Release file on this mirror has expired) and the serial console last on
    the kernel line, so that /dev/console, where the init scripts print, is
    the serial port the lab reads."""
    text = example_text("seed")
    for old, new in (('suite = "sid"', 'suite = "trixie"'), ('layout = "tmpfs"', 'layout = "seed"'),
                     ('init = "systemd"', 'init = "sysvinit"'),
                     ('"console=ttyS0,115200n8", "console=tty0"', '"console=tty0", "console=ttyS0,115200n8"')):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="session")
def seed_sysv(tmp_path_factory) -> Build:
    """The seed example as a sysvinit root with layout "seed" (debootstrap,
    the page's packages), its dry-run recorded first like mm's."""
    require(os.path.exists("/usr/sbin/debootstrap"), "debootstrap missing")
    base = tmp_path_factory.mktemp("seed-sysv")
    cfg = base / "cluster.toml"
    cfg.write_text(seed_sysvinit_text())
    b = Build(cfg, base / "stage", "kerrighed", root_path="/NFSROOT/kerrighed")
    plan_then_build(b)
    record(tmp_path_factory, "seed-sysvinit", b.figures)
    return b


BUILDS = ["mm", "deb"]


@pytest.fixture(params=BUILDS)
def build(request) -> Build:
    return request.getfixturevalue(request.param)
