from __future__ import annotations

import json
import re
import shlex
import tempfile
from pathlib import Path

from .. import groups, services
from ..context import Context
from ..errors import ValidationFailed
from ..render import header
from ..render.server import dhcpd_block, dhcpd_defaults_block, dnsmasq_dropin, kea_config, kea_json
from .base import Step, StepResult, stale_blocks

DHCPD_DEFAULTS = "/etc/default/isc-dhcp-server"
# Kea: Debian's package owns /etc/kea/kea-dhcp4.conf (one JSON object: no
# managed block fits in it), so the tool writes its own whole file and points
# the daemon at it: /etc/default/kea-dhcp4-server (read by the init script
# after its DAEMON_ARGS) and a systemd drop-in for the unit. The admin's file
# stays untouched; `undo` removes both and the package's file is read again.
KEA_CONFIG = "/etc/kea/kea-dhcp4-nfsroot-build.conf"
KEA_DEFAULTS = "/etc/default/kea-dhcp4-server"
KEA_DROPIN = "/etc/systemd/system/kea-dhcp4-server.service.d/nfsroot-build.conf"
# The unit each kind runs as (Debian's package names them so).
DHCP_UNIT = {"isc-dhcp-server": "isc-dhcp-server", "kea": "kea-dhcp4-server",
             "dnsmasq": "dnsmasq", "dnsmasq-proxy": "dnsmasq"}
DHCP_PACKAGE = {"isc-dhcp-server": "isc-dhcp-server", "kea": "kea-dhcp4-server",
                "dnsmasq": "dnsmasq", "dnsmasq-proxy": "dnsmasq"}


def dnsmasq_dropin_path(ctx: Context) -> str:
    # Debian's dnsmasq reads /etc/dnsmasq.d/* (CONFIG_DIR in /etc/default/dnsmasq).
    return f"/etc/dnsmasq.d/nfsroot-build-{ctx.config.name}.conf"


def dhcpd_test_argv(path: Path | str) -> list[str]:
    """`dhcpd -t`: the daemon's own parser decides (dhcpd(8)). Not -q: that
    also silences the message saying why a file is rejected."""
    return ["dhcpd", "-t", "-4", "-cf", str(path)]


def dhcpd_errors(output: str, path: Path | str, shown_as: str) -> list[str]:
    """dhcpd's own complaints (`line 2: semicolon expected.`), without its
    banner and bug-report boilerplate, naming shown_as instead of path."""
    lines = [line.replace(str(path), shown_as) for line in output.splitlines()]
    found = [line for line in lines if re.search(r" line \d+: ", line)]
    return found or [line for line in lines if line.strip()][-3:]


def dhcpd_checker(ctx: Context, target: Path):
    """A FileOps validator: the new dhcpd.conf must pass `dhcpd -t` before it replaces target."""
    def check(candidate: Path) -> None:
        argv = dhcpd_test_argv(candidate)
        res = ctx.runner.run(argv, probe=True, check=False)
        if not res.ok:
            errors = dhcpd_errors(res.stdout + res.stderr, candidate, str(target))
            raise ValidationFailed(f"{shlex.join(argv)} (exit {res.exit_code}) rejects the new {target}: "
                                   + " | ".join(errors[:4]))
    check.shown = " ".join(dhcpd_test_argv("<new file>"))
    return check


def kea_test_copy(text: str) -> str:
    """The config with interfaces ["*"]: `kea-dhcp4 -t` refuses an interface
    the machine lacks, and a staged build's interface lives in the lab's
    namespace only. Everything else is checked as written."""
    data = kea_json(text)
    data["Dhcp4"]["interfaces-config"]["interfaces"] = ["*"]
    return json.dumps(data)


def kea_checker(ctx: Context):
    """kea-dhcp4 -t: Kea's own parser decides (kea-dhcp4(8), -t)."""
    interface = ctx.config.server.interface

    def check(candidate: Path) -> None:
        if Path("/sys/class/net", interface).exists():
            ctx.runner.run(["kea-dhcp4", "-t", str(candidate)], probe=True)
            return
        with tempfile.NamedTemporaryFile("w", dir=candidate.parent, prefix=".kea-any-if.",
                                         suffix=".conf") as copy:
            copy.write(kea_test_copy(candidate.read_text()))
            copy.flush()
            ctx.runner.run(["kea-dhcp4", "-t", copy.name], probe=True)
    check.shown = "kea-dhcp4 -t <new file>"
    return check


def dnsmasq_checker(ctx: Context):
    """dnsmasq --test: dnsmasq's own parser decides (dnsmasq(8), --test)."""
    def check(candidate: Path) -> None:
        ctx.runner.run(["dnsmasq", "--test", f"--conf-file={candidate}"], probe=True)
    check.shown = "dnsmasq --test --conf-file=<new file>"
    return check


def kea_defaults_block() -> str:
    return f'DAEMON_ARGS="-c {KEA_CONFIG}"\n'


def kea_systemd_dropin(cfg) -> str:
    # An empty ExecStart= clears the unit's own (systemd.service(5)).
    return header(cfg) + f"[Service]\nExecStart=\nExecStart=/usr/sbin/kea-dhcp4 -c {KEA_CONFIG}\n"


def wanted_files(ctx: Context) -> dict[str, str]:
    """Whole files this kind owns (path -> content); dhcpd's block is apart."""
    cfg, kind = ctx.config, ctx.config.dhcp.server
    if kind == "kea":
        return {KEA_CONFIG: kea_config(cfg, ctx.served, groups.node_root_paths(ctx)),
                KEA_DROPIN: kea_systemd_dropin(cfg)}
    if kind in ("dnsmasq", "dnsmasq-proxy"):
        return {dnsmasq_dropin_path(ctx): dnsmasq_dropin(cfg, ctx.served, groups.node_root_paths(ctx))}
    return {}


class DhcpServer(Step):
    """Configure the DHCP server (`dhcp.server`): a fixed address per node MAC, boot filename, root-path.

    isc-dhcp-server (the default): the seed's four parts, updated: the
    cluster subnet with its site options (router, broadcast, domain, DNS,
    NTP) and `deny unknown-clients`, then a group with `next-server`, the
    boot loader's filename (BIOS or UEFI by the client's architecture, DHCP
    option 93), `option root-path` and one host per node
    (`use-host-decl-names` sends the node its name). It lives in a managed
    block of dhcpd.conf, checked with `dhcpd -t` before it replaces
    anything; the admin's own lines are kept. INTERFACESv4 names the
    cluster interface.

    kea: the same answers as a whole Kea config the tool owns,
    /etc/kea/kea-dhcp4-nfsroot-build.conf (reservations by MAC with host
    name, boot file by client class), checked with `kea-dhcp4 -t`; the
    daemon is pointed at it by /etc/default/kea-dhcp4-server and a systemd
    drop-in, so the package's /etc/kea/kea-dhcp4.conf is left as it is.
    With [[servers]] (replicated boot servers, docs/replicas.md) it also
    loads Kea's HA hook in load-balancing mode with every server as a peer.

    dnsmasq: a drop-in /etc/dnsmasq.d/nfsroot-build-<name>.conf with
    dhcp-host lines and the boot file by tag, checked with `dnsmasq --test`.
    dnsmasq-proxy: the same drop-in as proxyDHCP: the site's DHCP server
    gives each node its address (the node's `ip`) and host name, this one
    only the boot file (pxe-service); the root comes from the boot menu's
    nfsroot=.

    A node set to another root version than the others (`root switch
    VERSION --nodes`, a canary) gets that version's root-path, with every
    kind but dnsmasq-proxy (which sends no root-path); so does a node of a
    [[group]] with its own root, that root's (docs/groups.md).

    Files of a kind no longer configured are removed.
    """
    name = "dhcp-server"

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        return {"server": c.server.model_dump(), "network": c.network.model_dump(),
                # firmware: not here, the config answers both by option 93; group: by its root-path ("pinned").
                "nodes": [n.model_dump(exclude={"firmware", "group"}) for n in c.nodes], "boot.loader": c.boot.loader,
                "root.path": c.root.path, "dhcp": c.dhcp.model_dump(), "name": c.name,
                # Canaries' and group roots' own root-paths; absent without (fingerprints of builds without stay).
                **({"pinned": pinned} if (pinned := groups.node_root_paths(ctx)) else {}),
                # Replicated servers (Kea HA peers); absent without (fingerprints stay).
                **({"servers": [r.model_dump() for r in c.servers]} if c.servers else {})}

    def verify(self, ctx: Context) -> list[str]:
        problems = []
        conf = ctx.host(ctx.config.dhcp.config_file)
        if ctx.config.dhcp.server == "isc-dhcp-server":
            bad = stale_blocks({conf: dhcpd_block(ctx.config, ctx.served, groups.node_root_paths(ctx)),
                                ctx.host(DHCPD_DEFAULTS): dhcpd_defaults_block(ctx.config)}, ctx.config.name)
            if bad:
                problems.append(f"managed block missing or not as configured: {' '.join(bad)}")
        for path, content in wanted_files(ctx).items():
            p = ctx.host(path)
            if not p.is_file() or p.read_text() != content:
                problems.append(f"{p} is not the current {ctx.config.dhcp.server} config")
        return problems

    def run(self, ctx: Context) -> StepResult:
        cfg, files, kind = ctx.config, ctx.files, ctx.config.dhcp.server
        restart: set[str] = set()
        # Another kind's files first: two DHCP servers must not answer the same nodes.
        # (dnsmasq and dnsmasq-proxy share one drop-in, rewritten below.)
        for other in sorted({k for k, unit in DHCP_UNIT.items() if unit != DHCP_UNIT[kind]}):
            if self._remove(ctx, other):
                restart.add(DHCP_UNIT[other])
        changed = False
        if kind == "isc-dhcp-server":
            block = dhcpd_block(cfg, ctx.served, groups.node_root_paths(ctx))
            changed |= files.managed_block(ctx.host(cfg.dhcp.config_file), block,
                                           validate=dhcpd_checker(ctx, ctx.host(cfg.dhcp.config_file)))
            changed |= files.managed_block(ctx.host(DHCPD_DEFAULTS), dhcpd_defaults_block(cfg))
        elif kind == "kea":
            changed |= files.ensure_file(ctx.host(KEA_CONFIG), wanted_files(ctx)[KEA_CONFIG], validate=kea_checker(ctx))
            changed |= files.managed_block(ctx.host(KEA_DEFAULTS), kea_defaults_block())
            if files.ensure_file(ctx.host(KEA_DROPIN), kea_systemd_dropin(cfg)):
                changed = True
                if not ctx.staging and services.has_systemd():
                    ctx.runner.run(["systemctl", "daemon-reload"])
        else:
            changed |= files.ensure_file(ctx.host(dnsmasq_dropin_path(ctx)), wanted_files(ctx)[dnsmasq_dropin_path(ctx)],
                                         validate=dnsmasq_checker(ctx))
        if changed:
            restart.add(DHCP_UNIT[kind])
        # Where this build's config lives: another build on this server
        # compares its nodes with it (sidebyside.py); undo forgets it.
        outputs = {"config": str(ctx.config_file)} if ctx.config_file else {}
        return StepResult(changed=changed or bool(restart), restart=restart, outputs=outputs)

    @staticmethod
    def _remove(ctx: Context, kind: str) -> bool:
        """Take back what the tool wrote for a kind not configured now (only
        files the state records as the tool's: a same-named admin file stays)."""
        files = ctx.files

        def ours(path: str) -> Path | None:
            p = ctx.host(path)
            return p if str(p) in files.record and p.exists() else None
        removed = False
        if kind == "isc-dhcp-server":
            for path in (ctx.config.dhcp.config_file, DHCPD_DEFAULTS):
                if p := ours(path):
                    removed |= files.managed_block(p, None)
        elif kind == "kea":
            for path in (KEA_CONFIG, KEA_DROPIN):
                if p := ours(path):
                    removed |= files.ensure_absent(p)
            if p := ours(KEA_DEFAULTS):
                removed |= files.managed_block(p, None)
        elif p := ours(dnsmasq_dropin_path(ctx)):
            removed |= files.ensure_absent(p)
        return removed
