"""Restarting the server's daemons, on whatever init the host runs."""
from __future__ import annotations

from pathlib import Path

from .context import Context


def has_systemd() -> bool:
    # sd_booted(3): systemd is PID 1 iff this directory exists.
    return Path("/run/systemd/system").is_dir()


def restart(ctx: Context, service: str) -> None:
    control(ctx, service, "restart")


def state_of(ctx: Context, service: str) -> str:
    """"active", "inactive", "failed", ... as systemctl is-active(1) says;
    without systemd, "active" or "inactive" from the init script's status
    (LSB: exit 0 = running). A read-only probe: it runs in a dry-run too."""
    if has_systemd():
        res = ctx.runner.run(["systemctl", "is-active", service], probe=True, check=False)
        return res.stdout.strip() or "unknown"
    res = ctx.runner.run([f"/etc/init.d/{service}", "status"], probe=True, check=False)
    return "active" if res.ok else "inactive"


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
