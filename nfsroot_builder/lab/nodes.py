"""Power on QEMU nodes on the lab's taps and watch their serial consoles."""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import groups, versions
from ..errors import UsageError
from ..procs import stop
from .netns import tap_name
from .render import FACTS_MARK, HEARTBEAT_MARK

# The iPXE ROM QEMU's virtio NIC boots from (package ipxe-qemu).
VIRTIO_ROM = "/usr/lib/ipxe/qemu/efi-virtio.rom"
# Signs that a boot has failed for good: no point waiting for the timeout.
# A refused NFS mount is retried by the initramfs for minutes; the answer
# will not change in a lab, so the first refusal decides.
# OVMF: a PXE entry that could not boot (it goes on to HTTP boot, which
# the lab does not serve); every entry failed, then its UEFI shell, which
# waits forever.
FATAL = re.compile(r"Kernel panic|\(initramfs\) |No root device|error: (file|couldn't|failed|timeout)|"
                   r"No more network devices|PXE-E\d\d|ALERT!|"
                   r"BdsDxe: failed to load Boot\d+ \"UEFI PXEv4[^\n]*|"
                   r"No bootable option or device was found|UEFI Interactive Shell|grub rescue>|"
                   # Secure Boot refusals: shim's and GRUB's (shim_lock) messages.
                   r"Verification failed: \(0x1A\) Security Violation|bad shim signature|"
                   r"mount call failed - server replied: (Permission denied|No such file or directory)", re.IGNORECASE)


def accelerator() -> str:
    """KVM where it really works; TCG otherwise.

    kvm-pvm (a paravirtual hypervisor that exposes /dev/kvm inside a VM) runs
    no firmware, so QEMU's BIOS and iPXE would hang under it.
    """
    if os.access("/dev/kvm", os.R_OK | os.W_OK) and not Path("/sys/module/kvm_pvm").exists():
        return "kvm"
    return "tcg"


# Debian's ovmf package: the firmware code (read-only) and the template of
# its variable store, copied per node (the firmware writes its boot entries
# there). The 4M builds are the ones Debian maintains (README.Debian).
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
# Secure Boot (boot.secure_boot): the build that enforces it, and a variable
# store with Microsoft's keys enrolled (PK/KEK/db), so it trusts shim as a
# server's firmware does (ovmf's README.Debian).
OVMF_SECURE_CODE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
OVMF_SECURE_VARS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"


@dataclass(frozen=True)
class Firmware:
    """How a node's VM gets its firmware: QEMU options, the NIC's option ROM
    ("" = none, the firmware's own NIC driver), and the variable store
    template copied to the node's own vars file before power-on (None: no
    variable store)."""
    argv: tuple[str, ...]
    nic_rom: str
    vars_template: str | None = None


def firmware(kind: str, vars_file: Path, secure_boot: bool = False) -> Firmware:
    """The one place that maps a node's `firmware` to QEMU options.

    bios: SeaBIOS (QEMU's default) and iPXE's virtio ROM as the NIC's PXE.
    uefi: OVMF as two pflash drives: the code read-only, a per-node copy of
    the variable store. The NIC gets no option ROM: OVMF's own VirtioNetDxe
    and PXE client boot it, as a server's UEFI with its NIC's UNDI does; the
    ROM's iPXE would add a second network boot entry of its own. IPv6 PXE is
    off (opt/org.tianocore/IPv6PXESupport, OvmfPkg/RUNTIME_CONFIG.md): the
    lab serves IPv4 only, and OVMF would otherwise wait for a DHCPv6 answer
    after a failed IPv4 attempt.
    uefi with secure_boot: OVMF's Secure Boot build with Microsoft's keys. It
    keeps its variables in SMM, so the machine is q35 with SMM on and only
    SMM code may write the pflash (`secure=on`); QEMU refuses to start it
    otherwise. Works under TCG too.
    """
    if kind == "bios":
        return Firmware(argv=(), nic_rom=VIRTIO_ROM)
    if kind == "uefi":
        code, template = (OVMF_SECURE_CODE, OVMF_SECURE_VARS) if secure_boot else (OVMF_CODE, OVMF_VARS)
        machine = ("-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on") \
            if secure_boot else ()
        return Firmware(
            argv=(*machine,
                  "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                  "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
                  "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no"),
            nic_rom="", vars_template=template)
    raise UsageError(f"lab: no firmware {kind!r} (bios or uefi)")


def node_memory_mb(serve: str) -> int:
    """A node's RAM: 1 GiB; 2 GiB in RAM-image mode (serve = "image"), where
    the fetched squashfs (a ramfs copy) and the overlay's writes live in memory too."""
    return 2048 if serve == "image" else 1024


def qemu_argv(name: str, mac: str, tap: str, serial_log: Path, accel: str, fw: Firmware,
              memory_mb: int = 1024) -> list[str]:
    return [
        "qemu-system-x86_64", "-name", name, "-accel", accel, "-smp", "1", "-m", str(memory_mb),
        "-nographic", "-monitor", "none", "-no-reboot", "-nodefaults", *fw.argv,
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
        # disable-legacy=on: ipxe-qemu's virtio ROM carries the modern PCI id
        # (1af4:1041); on the default transitional device (1af4:1000) SeaBIOS
        # skips the ROM and the node never PXE-boots. bootindex=1: the NIC is
        # the first boot entry (SeaBIOS and OVMF both read QEMU's bootorder).
        "-device", f"virtio-net-pci,netdev=net0,mac={mac},disable-legacy=on,romfile={fw.nic_rom},bootindex=1",
        # An entropy source: without one a TCG guest's random pool fills
        # slowly and sshd/getrandom() block at boot (about 170 s on a
        # sysvinit root); virtio-rng feeds it from the host (virtio-rng(4)).
        "-device", "virtio-rng-pci",
        "-serial", f"file:{serial_log}",
    ]


@dataclass
class NodeResult:
    name: str
    ok: bool = False
    seconds: float | None = None      # power-on to login prompt
    hostname: str | None = None
    facts: dict = field(default_factory=dict)
    problem: str = ""
    serial_log: str = ""
    tail: list[str] = field(default_factory=list)


def parse_facts(text: str) -> dict:
    # The line may share the console with getty's prompt or escape codes;
    # only a finished line counts (the log is read while it is written).
    found = re.findall(re.escape(FACTS_MARK) + r" ([^\n]*)\n", text)
    if not found:
        return {}
    return dict(w.split("=", 1) for w in found[-1].split() if "=" in w)


# What sysv-rc prints for an init script that failed: lsb-base's
# log_end_msg/log_failure_msg ("[FAIL] ... failed!") and startpar's summary.
SYSV_FAILED = re.compile(r"^.*(\[FAIL\]|\bfailed!|service\(s\) returned failure).*$", re.MULTILINE)


def sysv_failures(text: str) -> str:
    """The console lines of failed init scripts, "; "-joined, or "none"."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)   # lsb-base colours "failed!" on a terminal
    found = [" ".join(m.group(0).split()) for m in SYSV_FAILED.finditer(text)]
    return "; ".join(dict.fromkeys(found)) or "none"


def node_record(lab, node) -> dict | None:
    """The state's record of the version the node boots next (its pin, else the current one)."""
    state = lab.ctx.state
    return state.versions().get(versions.node_versions(lab.cfg, state, None)[node.name])


def node_root(lab, node) -> str:
    """The root path (config-level) of the version the node boots next."""
    gr = groups.root_of_group(lab.cfg).get(node.group)
    if gr is not None:
        return groups.booted_by(lab.ctx, gr, node.name).path
    rec = node_record(lab, node)
    return rec["path"] if rec else lab.cfg.root.path


def node_serve(lab, node) -> str:
    """How the version the node boots next is served, as it was built
    ("nfs" or "image"): a canary pinned to an image version runs from RAM
    while the others mount NFS, whatever the config says now."""
    gr = groups.root_of_group(lab.cfg).get(node.group)
    if gr is not None:   # a [[group]]'s own root: its own series (docs/groups.md)
        return groups.booted_by(lab.ctx, gr, node.name).serve
    rec = node_record(lab, node)
    return versions.serve_of(rec) if rec else lab.cfg.root.serve


def judge(lab, node, text: str, result: NodeResult, root: str | None = None) -> bool:
    """Fill result from the console text; True once the node's fate is known.

    root: the config-level path the node must mount as /; by default the
    version the lab's state sets it to (a caller without that state, such
    as the production test's server VM, names it)."""
    cfg = lab.cfg
    node_root_cfg = cfg.group_root(node.group)   # [root], or the node's [[group]]'s own root
    m = re.search(r"^(\S+) login:", text, re.MULTILINE)
    if m:
        result.hostname = m.group(1)
    facts = parse_facts(text)
    if m and facts:
        if node_root_cfg.init == "sysvinit":
            facts["failed"] = sysv_failures(text)
        result.facts = facts
        path = root or node_root(lab, node)
        # Any boot server's own copy ([[servers]] replicas serve their tree, docs/replicas.md).
        expected = [f"{cfg.server.address}:{lab.ctx.served.path(path)}"] + \
            [f"{sub.cfg.server.address}:{sub.ctx.served.path(path)}" for sub in
             (lab.replica_labs() if cfg.servers else [])]
        expected_root = " or ".join(expected)
        problems = []
        if result.hostname != node.name:
            problems.append(f"hostname is {result.hostname!r}, not {node.name!r} (DHCP name not taken)")
        if facts:
            fstype, _, source = facts.get("root", ",").partition(",")
            if (cfg.root.serve if root else node_serve(lab, node)) == "image":
                # live-boot: a tmpfs overlay over the fetched squashfs; no NFS mount at all.
                if fstype != "overlay":
                    problems.append(f"/ is {facts.get('root')}, expected live-boot's overlay (root.serve = \"image\")")
                if facts.get("nfs", "0") != "0":
                    problems.append(f"{facts['nfs']} NFS mount(s) on a node in RAM-image mode")
            elif node_root_cfg.layout == "overlay":
                if fstype != "overlay":
                    problems.append(f"/ is {facts.get('root')}, expected an overlay")
            elif fstype not in ("nfs", "nfs4") or source not in expected:
                problems.append(f"/ is {facts.get('root')}, expected nfs from {expected_root}")
            if facts.get("failed", "none") != "none":
                problems.append(f"failed {'init scripts' if node_root_cfg.init == 'sysvinit' else 'units'}: "
                                f"{facts['failed']}")
            if node_root_cfg.init == "sysvinit" and facts.get("runlevel", "").rpartition(",")[2] != "2":
                problems.append(f"runlevel is {facts.get('runlevel')!r}, expected 2 (inittab's initdefault)")
            if cfg.boot.secure_boot and facts.get("secureboot") != "on":
                problems.append(f"Secure Boot is {facts.get('secureboot', 'not reported')}, "
                                "not on (boot.secure_boot = true)")
        result.problem = "; ".join(problems)
        result.ok = not problems
        return True
    fatal = FATAL.search(text)
    if fatal:
        result.problem = f"boot failed: {fatal.group(0).strip()}"
        return True
    return False


def watch(results: dict[str, NodeResult], consoles: dict[str, tuple[float, Path]], timeout: float,
          finished, alive, poll: float = 1.0) -> None:
    """Read each powered-on node's serial console (name -> (power-on time,
    log)) until finished(name, text, result) says it is judged, its QEMU
    dies or the timeout passes; a node that did not pass keeps the last 30
    console lines in its result."""
    pending = set(consoles)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(poll)
        for name in sorted(pending):
            t0, log = consoles[name]
            text = Path(log).read_text(errors="replace").replace("\r", "")
            res = results[name]
            if res.seconds is None and re.search(r"^\S+ login:", text, re.MULTILINE):
                res.seconds = round(time.monotonic() - t0, 1)
            if finished(name, text, res):
                pending.discard(name)
            elif not alive(name):
                res.problem = "QEMU exited before the node reached login"
                pending.discard(name)
    for name in pending:
        text = Path(consoles[name][1]).read_text(errors="replace").replace("\r", "")
        facts = parse_facts(text)
        results[name].problem = f"no login prompt within {timeout:.0f}s" + (
            f", though the node reported when its boot had finished: {' '.join(f'{k}={v}' for k, v in facts.items())}"
            if facts else "")
    for name, (_t0, log) in consoles.items():
        if not results[name].ok:
            results[name].tail = console_tail(Path(log).read_text(errors="replace").replace("\r", ""))


def console_tail(text: str, lines: int = 30) -> list[str]:
    """The console's last lines without the report's heartbeat, which would
    fill them: a node that never showed its login prompt once printed
    nothing but heartbeats in its last 30 lines."""
    kept = [line for line in text.splitlines() if HEARTBEAT_MARK not in line]
    skipped = text.count(HEARTBEAT_MARK)
    return kept[-lines:] + ([f"({skipped} heartbeat lines left out)"] if skipped else [])


def boot(lab, names: list[str], timeout: float = 600, keep: bool = False, progress=lambda m: None) -> list[NodeResult]:
    cfg = lab.cfg
    by_name = {n.name: (i, n) for i, n in enumerate(cfg.nodes)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"no node named {', '.join(unknown)} in the config")
    if not lab.status()["up"]:
        raise UsageError("the lab is not up: run 'nfsroot-build lab up' first")
    accel = accelerator()
    lab.refresh()
    record = lab.load()
    # `lab boot` of a node still running (--keep) power-cycles it: its next boot.
    running = {p["pid"]: p for p in record["procs"] if p["name"] in {f"qemu-{n}" for n in names} and lab.alive(p)}
    if running:
        stop(list(running), grace=5, alive=lambda pid: lab.alive(running[pid]))
        record["procs"] = [p for p in record["procs"] if p["pid"] not in running]
        lab.save(record)
    consoles = lab.dir / "consoles"
    consoles.mkdir(parents=True, exist_ok=True)
    started: dict[str, tuple[int, float, Path]] = {}
    results = {n: NodeResult(n) for n in names}
    for name in names:
        i, node = by_name[name]
        log = consoles / f"{name}.log"
        log.write_bytes(b"")
        vars_file = lab.dir / "firmware" / f"{name}.vars.fd"
        fw = firmware(node.firmware, vars_file, secure_boot=cfg.boot.secure_boot)
        if fw.vars_template:
            if not Path(fw.vars_template).is_file():
                raise UsageError(f"node {name} has firmware = {node.firmware!r}: {fw.vars_template} is "
                                 "missing (apt-get install ovmf)")
            # A fresh copy at each power-on: every boot starts from the same NVRAM.
            vars_file.parent.mkdir(exist_ok=True)
            shutil.copyfile(fw.vars_template, vars_file)
        argv = qemu_argv(name, node.mac, tap_name(i), log, accel, fw, memory_mb=node_memory_mb(node_serve(lab, node)))
        pid = lab.ctx.runner.spawn(["ip", "netns", "exec", lab.ns, *argv], log_path=lab.dir / "logs" / f"qemu-{name}.log")
        lab.add_proc(record, f"qemu-{name}", pid, shutil.which("qemu-system-x86_64") or "qemu-system-x86_64")
        started[name] = (pid, time.monotonic(), log)
        results[name].serial_log = str(log)
        progress(f"{name}: powered on ({accel}, {node.firmware}, mac {node.mac}), console {log}")
    watch(results, {name: (t0, log) for name, (_pid, t0, log) in started.items()}, timeout,
          finished=lambda name, text, res: judge(lab, by_name[name][1], text, res),
          alive=lambda name: lab.alive({"pid": started[name][0], "exe": "qemu-system-x86_64"}))
    if not keep:
        stop([pid for pid, _t0, _log in started.values()], grace=5,
             alive=lambda pid: lab.alive({"pid": pid, "exe": "qemu-system-x86_64"}))
        record = lab.load()
        record["procs"] = [p for p in record["procs"] if p["pid"] not in {s[0] for s in started.values()}]
        lab.save(record)
    return [results[n] for n in names]
