from __future__ import annotations

from .. import services
from ..context import Context
from .base import Step, StepResult


class Services(Step):
    """Restart the services whose configuration changed (the seed's last server step).

    Only services a step reported as changed are restarted; the list is kept
    in the state, so a run that dies before this step still restarts them on
    the next `--resume`.
    """
    name = "services"

    def verify(self, ctx: Context) -> list[str]:
        pending = ctx.state.pending_restarts
        return [f"pending restarts: {' '.join(pending)}"] if pending else []

    def run(self, ctx: Context) -> StepResult:
        pending = list(ctx.state.pending_restarts)
        for service in pending:
            services.restart(ctx, service)
            # Persist each success: a failure half-way keeps the rest pending.
            ctx.state.restarted(service)
            ctx.state.save()
        return StepResult(changed=bool(pending))
