"""Restarting the server's daemons, on whatever init the host runs."""
from __future__ import annotations

from pathlib import Path

from .context import Context


def has_systemd() -> bool:
    # sd_booted(3): systemd is PID 1 iff this directory exists.
    return Path("/run/systemd/system").is_dir()


def restart(ctx: Context, service: str) -> None:
    if ctx.staging:
        # A staged tree is not what the host's daemons read; the lab runs its own.
        ctx.note(f"staging prefix {ctx.prefix}: not restarting the host's {service}")
        return
    if has_systemd():
        ctx.runner.run(["systemctl", "restart", service])
    else:
        ctx.runner.run([f"/etc/init.d/{service}", "restart"])
