from __future__ import annotations

from .. import services
from ..context import Context
from .base import Step, StepResult
from .nfs import EXPORTS_RELOAD, exported_paths


class Services(Step):
    """Restart the services whose configuration changed (the seed's last server step).

    Only services a step reported as changed are restarted; the list is kept
    in the state, so a run that dies before this step still restarts them on
    the next `--resume`. Changed kernel NFS exports are applied here with
    `exportfs -ra` (no restart: clients keep their mounts), after checking
    that every exported directory exists. Before a daemon's first restart
    its state (`systemctl is-active`) is recorded: `undo` puts it back,
    restarting a daemon that ran and stopping one that did not.
    """
    name = "services"

    def verify(self, ctx: Context) -> list[str]:
        pending = ctx.state.pending_restarts
        return [f"pending restarts: {' '.join(pending)}"] if pending else []

    def run(self, ctx: Context) -> StepResult:
        pending = list(ctx.state.pending_restarts)
        for service in pending:
            if service == EXPORTS_RELOAD:
                _apply_exports(ctx)
            else:
                if not ctx.staging and service not in ctx.state.services_before:
                    # What undo puts the daemon back to (a fresh server's
                    # isc-dhcp-server is failed: no subnet for its interface).
                    ctx.state.first_restart(service, services.state_of(ctx, service))
                services.restart(ctx, service)
            # Persist each success: a failure half-way keeps the rest pending.
            ctx.state.restarted(service)
            ctx.state.save()
        return StepResult(changed=bool(pending))


def _apply_exports(ctx: Context) -> None:
    if ctx.staging:   # a staged tree is not what the host's nfsd exports
        ctx.note(f"staging prefix {ctx.prefix}: not running exportfs -ra on the host")
        return
    missing = [str(p) for p in exported_paths(ctx) if not p.is_dir()]
    # A dry-run of `all` has not built the root: placeholder() lets it pass there only.
    ctx.placeholder(f"the exported directories {' '.join(missing)} (step bootstrap makes the root)",
                    not missing)
    ctx.runner.run(["exportfs", "-ra"])
