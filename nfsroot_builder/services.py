"""Restarting the server's daemons, on whatever init the host runs."""
from __future__ import annotations

from pathlib import Path

from .context import Context


def has_systemd() -> bool:
    # sd_booted(3): systemd is PID 1 iff this directory exists.
    return Path("/run/systemd/system").is_dir()


def restart(ctx: Context, service: str) -> None:
    control(ctx, service, "restart")


def control(ctx: Context, service: str, action: str) -> None:
    """restart / stop / start a host service (skipped under a staging prefix)."""
    if ctx.staging:
        # A staged tree is not what the host's daemons read; the lab runs its own.
        ctx.note(f"staging prefix {ctx.prefix}: not running {action} of the host's {service}")
        return
    if has_systemd():
        ctx.runner.run(["systemctl", action, service])
    else:
        ctx.runner.run([f"/etc/init.d/{service}", action])
