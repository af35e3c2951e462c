"""Last steps: tell the user where the staging is, or check that nothing is left."""

from .. import gone
from ..aws import elbv2, tagging
from ..errors import ExternalCallFailed
from ..names import staging_tags
from ..stepkit import StepContext
from .image import short_digest


def report_ready(ctx: StepContext) -> dict:
    url = ctx.config.url_for(ctx.names.host)
    ctx.update_staging(url=url, error="")
    ctx.progress(url)
    return {"url": url}


# What a redeploy that found nothing to change says (the page, `ds`, the step's log).
NOTHING_CHANGED = "nothing changed: the image is the same"


def redeploy_outcome(*, same_image: bool, deployed: bool, image: str) -> str:
    if same_image and not deployed:
        return f"{NOTHING_CHANGED} ({short_digest(image)})"
    if same_image:
        # The host's task definitions or the staging sizes changed since the last deploy.
        return "the image is the same, the task definitions changed: deployed again"
    return f"deployed {short_digest(image)}"


def report_redeployed(ctx: StepContext) -> dict:
    """As report_ready, saying what the redeploy changed: nothing, when ECS was asked to
    deploy nothing and the image is the one the staging ran."""
    outputs = report_ready(ctx)
    outcome = redeploy_outcome(
        same_image=bool(ctx.output("image").get("same_image")),
        deployed=any(ctx.output(key).get("deployed") for key in ("web_service",
                                                                 "worker_service")),
        image=ctx.output("image").get("image", ""),
    )
    ctx.progress(outcome)
    return {**outputs, "outcome": outcome}


def _described(arn: str) -> str:
    kind = gone.kind_of(arn)
    if kind not in gone.CHECKS:
        return f"{arn} (a {kind}: a type this check cannot ask about; remove it by hand)"
    return arn


def verify_nothing_left(ctx: StepContext) -> dict:
    """Ask AWS, not our records, whether anything of the staging remains. The tagging API
    still lists much that is already gone (see gone.py): each candidate is asked of its own
    service."""
    tagged = tagging.tagged_resource_arns(tags=staging_tags(ctx.staging.name))
    rules = [rule.arn for rule in elbv2.list_rules(listener_arn=ctx.config.listener_arn)
             if ctx.names.host in rule.hosts]
    candidates = list(dict.fromkeys([*tagged, *rules]))
    left = gone.left_after_settling(candidates, ctx.config)
    if left:
        raise ExternalCallFailed("tag:GetResources", "ResourcesLeft",
                                 ", ".join(_described(arn) for arn in left))
    going = len(candidates)
    ctx.progress(f"nothing left ({going} listed resource(s) already going away)" if going
                 else "no tagged resource and no rule left")
    return {"left": []}
