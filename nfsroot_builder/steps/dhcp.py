from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..render.server import dhcpd_block, dhcpd_defaults_block
from .base import Step, StepResult

DHCPD_DEFAULTS = "/etc/default/isc-dhcp-server"


def dhcpd_checker(ctx: Context):
    """dhcpd -t: the daemon's own parser decides (dhcpd(8), -t)."""
    def check(candidate: Path) -> None:
        ctx.runner.run(["dhcpd", "-t", "-q", "-4", "-cf", str(candidate)], probe=True)
    check.shown = "dhcpd -t -q -4 -cf <new file>"
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
        path = ctx.host(ctx.config.dhcp.config_file)
        if not path.exists() or dhcpd_block(ctx.config, ctx.served) not in path.read_text():
            return [f"{path} does not hold the current cluster block"]
        return []

    def run(self, ctx: Context) -> StepResult:
        conf = ctx.host(ctx.config.dhcp.config_file)
        changed = ctx.files.managed_block(conf, dhcpd_block(ctx.config, ctx.served),
                                          validate=dhcpd_checker(ctx))
        changed |= ctx.files.managed_block(ctx.host(DHCPD_DEFAULTS), dhcpd_defaults_block(ctx.config))
        return StepResult(changed=changed, restart={"isc-dhcp-server"} if changed else set())
