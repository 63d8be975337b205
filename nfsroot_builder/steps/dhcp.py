from __future__ import annotations

import re
import shlex
from pathlib import Path

from ..context import Context
from ..errors import ValidationFailed
from ..render.server import dhcpd_block, dhcpd_defaults_block
from .base import Step, StepResult, stale_blocks

DHCPD_DEFAULTS = "/etc/default/isc-dhcp-server"


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


class DhcpServer(Step):
    """Configure isc-dhcp-server: a fixed address per node MAC, boot filename, root-path.

    The seed's four parts, updated: the cluster subnet with its site options
    (router, broadcast, domain, DNS, NTP) and `deny unknown-clients`, then a
    group with `next-server`, the boot loader's filename (BIOS or UEFI by the
    client's architecture, DHCP option 93), `option root-path` and one host
    per node (`use-host-decl-names` sends the node its name). It lives in a
    managed block of dhcpd.conf, checked with `dhcpd -t` before it replaces
    anything; the admin's own lines are kept. INTERFACESv4 names the
    cluster interface.
    """
    name = "dhcp-server"

    def fingerprint(self, ctx: Context) -> dict:
        c = ctx.config
        return {"server": c.server.model_dump(), "network": c.network.model_dump(),
                "nodes": [n.model_dump() for n in c.nodes], "boot.loader": c.boot.loader,
                "root.path": c.root.path, "dhcp": c.dhcp.model_dump()}

    def verify(self, ctx: Context) -> list[str]:
        bad = stale_blocks({ctx.host(ctx.config.dhcp.config_file): dhcpd_block(ctx.config, ctx.served),
                            ctx.host(DHCPD_DEFAULTS): dhcpd_defaults_block(ctx.config)})
        return [f"managed block missing or not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        conf = ctx.host(ctx.config.dhcp.config_file)
        changed = ctx.files.managed_block(conf, dhcpd_block(ctx.config, ctx.served),
                                          validate=dhcpd_checker(ctx, conf))
        changed |= ctx.files.managed_block(ctx.host(DHCPD_DEFAULTS), dhcpd_defaults_block(ctx.config))
        return StepResult(changed=changed, restart={"isc-dhcp-server"} if changed else set())
