from __future__ import annotations

from ..context import Context
from ..render.server import tftpd_defaults_block
from .base import Step, StepResult, stale_blocks

TFTPD_DEFAULTS = "/etc/default/tftpd-hpa"


class TftpServer(Step):
    """Configure tftpd-hpa to serve the TFTP root (kernel, initrd, boot loader, menus).

    The seed's /etc/default/tftp-hpa used RUN_DAEMON and OPTIONS='-l -s';
    today's tftpd-hpa reads TFTP_DIRECTORY and TFTP_OPTIONS. The values go in
    a managed block at the end of the package's file (a later assignment wins),
    so the admin's own lines stay.
    """
    name = "tftp-server"

    def fingerprint(self, ctx: Context) -> dict:
        return {"tftp.root": ctx.config.tftp.root}

    def verify(self, ctx: Context) -> list[str]:
        if not ctx.tftp_root.is_dir():
            return [f"{ctx.tftp_root} is missing"]
        bad = stale_blocks({ctx.host(TFTPD_DEFAULTS): tftpd_defaults_block(ctx.config, ctx.served)})
        return [f"managed block missing or not as configured: {' '.join(bad)}"] if bad else []

    def run(self, ctx: Context) -> StepResult:
        changed = ctx.files.ensure_dir(ctx.tftp_root, 0o755)
        if ctx.files.managed_block(ctx.host(TFTPD_DEFAULTS), tftpd_defaults_block(ctx.config, ctx.served)):
            return StepResult(changed=True, restart={"tftpd-hpa"})
        return StepResult(changed=changed)
