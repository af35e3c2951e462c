"""A destroy may supersede a create still running: wait until that runner has let go, so it
cannot make a resource after the destroy has looked for it."""

from django.utils import timezone

from ..claims import STALE_AFTER
from ..models import Operation
from ..stepkit import Skip, StepContext


def wait_for_superseded_runner(ctx: StepContext) -> dict:
    others = Operation.objects.filter(staging_id=ctx.staging.pk).exclude(pk=ctx.operation.pk)

    def released() -> tuple[bool, str]:
        holding = others.exclude(runner_token="").filter(
            heartbeat_at__gte=timezone.now() - STALE_AFTER
        )
        return not holding.exists(), "waiting for the earlier operation to stop"

    done, _ = released()
    if done:
        raise Skip("no earlier operation running")
    ctx.wait_until("the earlier operation's runner", released, STALE_AFTER.total_seconds() * 4)
    return {}
