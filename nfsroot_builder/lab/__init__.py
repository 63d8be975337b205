"""The lab: the configured boot server run in an isolated network namespace,
and QEMU nodes that PXE-boot from it.

`up` starts the configured DHCP server (dhcpd, Kea or dnsmasq), in.tftpd,
rpcbind and NFS-Ganesha inside the namespace
with the files the pipeline wrote (under the staging prefix), `boot` powers
on nodes and waits for their login prompt, `down` kills exactly the PIDs
`up`/`boot` recorded and deletes the namespace.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .. import versions
from ..config import PRIMARY_SERVER
from ..context import Context
from ..errors import NfsrootError, UsageError
from ..files import atomic_write
from ..procs import stop
from ..steps.nfs import group_paths
from . import netns
from .render import FACTS_SCRIPT, FACTS_SYSV_SCRIPT, FACTS_TAB, FACTS_TAB_TEXT, FACTS_UNIT, FACTS_UNIT_TEXT, ganesha_conf

NEEDED_STEPS = ("dhcp-server", "tftp-server")
# The record's name of a node's QEMU (nodes.boot): qemu-<node>.
NODE_PREFIX = "qemu-"


@dataclass
class Proc:
    name: str
    pid: int
    exe: str          # the program the PID must still be running, checked before a kill
    server: str = PRIMARY_SERVER   # whose daemon it is (replicated servers)


class Lab:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.cfg = ctx.config
        self.ns = netns.namespace(self.cfg, ctx.state_dir)
        self.dir = ctx.state_dir / "lab"
        self.record_path = self.dir / "lab.json"
        self.server = PRIMARY_SERVER   # whose daemons this Lab starts (replicas: docs/replicas.md)
        self.owner = self              # the Lab whose record lists every process

    def replica_labs(self) -> list[Lab]:
        """One Lab per [[servers]] replica: its own namespace joined to the
        bridge by a veth pair, its daemons on its address serving its tree
        (what `nfsroot-build sync` put there), its directory under ours.
        A namespace each, not a second address in ours: every server needs
        its own rpcbind on port 111, and killing one server's daemons must
        leave the other's portmapper alive."""
        from ..replicas import replica_context
        out = []
        # A replica on another host (tree host:/path) is no part of the lab.
        for r in (r for r in self.cfg.servers if r.tree.startswith("/")):
            rctx = replica_context(self.ctx, r)
            rctx.state_dir = self.dir / "servers" / r.name
            sub = Lab(rctx)
            sub.ns, sub.server, sub.owner, sub.record_path = f"{self.ns}-{r.name}", r.name, self, self.record_path
            out.append(sub)
        return out

    # -- the record of what we started ------------------------------------------
    def load(self) -> dict:
        try:
            return json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return {"procs": []}
        except ValueError as e:
            raise NfsrootError(f"lab record {self.record_path} is corrupt ({e}); "
                               f"'ip netns delete {self.ns}' and kill the lab's processes by hand") from None

    def save(self, record: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.record_path, (json.dumps(record, indent=2) + "\n").encode(), 0o600)

    def add_proc(self, record: dict, name: str, pid: int, exe: str) -> None:
        proc = {"name": name, "pid": pid, "exe": exe}
        if self.server != PRIMARY_SERVER:
            proc["server"] = self.server   # `lab kill-server` finds a replica's daemons by this
        record["procs"].append(proc)
        self.owner.save(record)   # at once: a crash right after must still be cleanable by `down`

    # -- up -----------------------------------------------------------------------
    def check_built(self) -> None:
        missing = [s for s in NEEDED_STEPS if self.ctx.state.step(s).get("status") != "done"]
        if missing:
            raise UsageError(f"the pipeline has not finished {', '.join(missing)}: "
                             f"run 'nfsroot-build all' with the same -c/--prefix first")

    def up(self) -> list[Proc]:
        from .daemons import start_daemons
        self.check_built()
        record = self.load()
        if netns.exists(self.ctx.runner, self.ns) or record["procs"]:
            raise UsageError(f"lab {self.ns} is already up (or was not cleaned): run 'nfsroot-build lab down' first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.install_report_unit()
        self.write_ganesha_conf()
        (self.dir / "dhcpd.leases").write_text("")
        # Recorded before it exists: `down` deletes only a namespace it made.
        record["namespace"] = self.ns
        self.save(record)
        netns.create(self.ctx.runner, self.cfg, self.ns)
        try:
            start_daemons(self, record)
            for sub in self.replica_labs():
                sub.up_replica(record)
        except BaseException:
            self.down()
            raise
        return [Proc(**p) for p in record["procs"]]

    def up_replica(self, record: dict) -> None:
        """A replica's namespace and daemons (see replica_labs)."""
        from .daemons import start_daemons
        if not self.ctx.host(self.cfg.tftp.root).is_dir():
            raise UsageError(f"lab: server {self.server} has no tree at {self.ctx.prefix}: "
                             f"run 'nfsroot-build sync' first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.install_report_unit()
        self.write_ganesha_conf()
        record.setdefault("replica_namespaces", []).append(self.ns)
        self.owner.save(record)
        netns.join(self.ctx.runner, self.owner.ns, self.owner.cfg.server.interface, self.ns, self.cfg, self.server)
        start_daemons(self, record)

    def kill_server(self, name: str) -> list[str]:
        """Kill one server's daemons by their recorded PIDs (a failure
        drill: docs/replicas.md); its namespace and the nodes stay."""
        record = self.load()
        known = {PRIMARY_SERVER, *(r.name for r in self.cfg.servers)}
        if name not in known:
            raise UsageError(f"no server {name!r}: the servers are {', '.join(sorted(known))}")
        procs = [p for p in record["procs"] if p.get("server", PRIMARY_SERVER) == name
                 and not p["name"].startswith("qemu-") and self.alive(p)]
        by_pid = {p["pid"]: p for p in procs}
        stop(by_pid, grace=5, alive=lambda pid: self.alive(by_pid[pid]))
        return [f"{p['name']} (pid {p['pid']})" for p in procs]

    def write_ganesha_conf(self) -> bool:
        """The lab's ganesha.conf, exporting every live root version; True if it changed."""
        path = self.dir / "ganesha.conf"
        # The group roots' versions from the primary's state (a replica's
        # Lab has a state dir of its own, without the roots/ states).
        text = ganesha_conf(self.cfg, self.ctx.served, str(self.dir), versions.export_roots(self.ctx),
                            group_paths(self.owner.ctx)).encode()
        if path.exists() and path.read_bytes() == text:
            return False
        atomic_write(path, text, 0o644)
        return True

    def refresh(self) -> None:
        """Before a boot: a root version built since `up` gets its export and
        the report unit. ganesha.nfsd re-reads its exports on SIGHUP
        (ganesha.conf(5)), adding new ones without touching the others'
        clients."""
        import signal
        self.install_report_unit()
        if self.write_ganesha_conf():
            for p in self.load()["procs"]:
                if p["name"] == "ganesha" and self.alive(p):
                    os.kill(p["pid"], signal.SIGHUP)

    def trees(self) -> list:
        """Every live root version's tree (each node boots its own), the group roots' too."""
        return [self.ctx.host(path) for _vid, path in versions.export_roots(self.ctx)] + \
            [self.ctx.host(path) for path in group_paths(self.owner.ctx)]

    def install_report_unit(self) -> None:
        for vid, path in versions.export_roots(self.ctx):
            if self._install_report_unit(self.ctx.host(path)):
                self._repack(vid)
        # The group roots' trees too (docs/groups.md): one bootstrapped, or
        # copied from a default root before the lab ever reported from it,
        # has no report unit, and its nodes would never report.
        # (The primary's state lists them: a replica's Lab has none of its own.)
        for path in group_paths(self.owner.ctx):
            self._install_report_unit(self.ctx.host(path))

    def _repack(self, vid: int) -> None:
        """A version served as a RAM image (root.serve = "image") carries the
        report unit only once its image is packed again: its nodes never
        read the tree itself. Only a version that has an image already."""
        from .. import session
        from ..steps import image
        ctx = versions.context_for(self.ctx, vid) if vid in self.ctx.state.versions() else self.ctx
        if image.image_path(ctx).is_file() and self.owner is not self:
            # A replica serves the primary's image byte for byte (the same
            # version on every server), which the primary's Lab packed again
            # just before (up: the primary first): copied, not packed anew,
            # so the version's record (size, sha256) holds for every server.
            owner = self.owner.ctx
            primary = versions.context_for(owner, vid) if vid in owner.state.versions() else owner
            self.ctx.files.copy_file(image.image_path(primary), image.image_path(ctx))
        elif image.image_path(ctx).is_file():
            # Under the run lock, saved: pack records the new image's size
            # and digest in the version's record (doctor's root-image check).
            with session.locked(ctx):
                image.pack(ctx)
                ctx.state.save()

    def _install_report_unit(self, root) -> bool:
        files = self.ctx.files
        if self.cfg.root.init == "sysvinit":
            changed = files.ensure_file(root / "usr/local/sbin/nfsroot-build-lab-report", FACTS_SYSV_SCRIPT, 0o755)
            return files.ensure_file(root / "etc/inittab.d" / FACTS_TAB, FACTS_TAB_TEXT) or changed
        changed = files.ensure_file(root / "usr/local/sbin/nfsroot-build-lab-report", FACTS_SCRIPT, 0o755)
        changed = files.ensure_file(root / "etc/systemd/system" / FACTS_UNIT, FACTS_UNIT_TEXT) or changed
        return files.ensure_symlink(root / "etc/systemd/system/multi-user.target.wants" / FACTS_UNIT,
                                    f"/etc/systemd/system/{FACTS_UNIT}") or changed

    def remove_report_unit(self) -> None:
        for root in self.trees():
            self._remove_report_unit(root)

    def _remove_report_unit(self, root) -> None:
        files = self.ctx.files
        if not root.is_dir():
            return
        files.ensure_absent(root / "etc/systemd/system/multi-user.target.wants" / FACTS_UNIT)
        files.ensure_absent(root / "etc/systemd/system" / FACTS_UNIT)
        files.ensure_absent(root / "etc/inittab.d" / FACTS_TAB)
        files.ensure_absent(root / "usr/local/sbin/nfsroot-build-lab-report")

    # -- status / down --------------------------------------------------------------
    @staticmethod
    def alive(proc: dict) -> bool:
        """True if the PID still runs the program we started (PIDs get reused)."""
        try:
            exe = os.readlink(f"/proc/{proc['pid']}/exe")
        except OSError:
            return False
        return os.path.basename(exe).removesuffix(" (deleted)") == os.path.basename(proc["exe"])

    def status(self) -> dict:
        record = self.load()
        return {"namespace": self.ns, "up": record.get("namespace") == self.ns and netns.exists(self.ctx.runner, self.ns),
                "procs": [{**p, "alive": self.alive(p)} for p in record["procs"]]}

    def stop_daemons(self) -> list[str]:
        """Kill the lab server's daemons (every recorded process but the
        nodes' QEMUs), by their recorded PIDs; the namespace and the running
        nodes stay. A node booted in RAM-image mode must keep running."""
        record = self.load()
        daemons = [p for p in record["procs"] if not p["name"].startswith(NODE_PREFIX)]
        by_pid = {p["pid"]: p for p in daemons if self.alive(p)}
        stop(by_pid, grace=10, alive=lambda pid: self.alive(by_pid[pid]))
        record["procs"] = [p for p in record["procs"] if p["name"].startswith(NODE_PREFIX)]
        self.save(record)
        return [f"{p['name']} (pid {p['pid']})" for p in by_pid.values()]

    def down(self) -> list[str]:
        """Kill exactly the recorded PIDs, delete the namespace. Safe to repeat."""
        record = self.load()
        done = []
        procs = [p for p in record["procs"] if self.alive(p)]
        by_pid = {p["pid"]: p for p in procs}
        stop(by_pid, grace=10, alive=lambda pid: self.alive(by_pid[pid]))
        done += [f"{p['name']} (pid {p['pid']})" for p in procs]
        for ns in record.get("replica_namespaces", []):
            if ns.startswith(f"{self.ns}-") and netns.exists(self.ctx.runner, ns):
                netns.delete(self.ctx.runner, ns)
                done.append(f"namespace {ns}")
        if record.get("namespace") == self.ns and netns.exists(self.ctx.runner, self.ns):
            netns.delete(self.ctx.runner, self.ns)
            done.append(f"namespace {self.ns}")
        self.remove_report_unit()
        for sub in self.replica_labs():
            sub.remove_report_unit()
        # dbus-daemon leaves its socket behind when killed: gone with the lab, so
        # `root prune` knows no lab Ganesha serves the staged tree (versions.ganesha_clients).
        (self.ctx.state_dir / versions.LAB_SYSTEM_BUS).unlink(missing_ok=True)
        self.record_path.unlink(missing_ok=True)
        return done
