"""Last steps: tell the user where the staging is, or check that nothing is left."""

from ..aws import ecs, elbv2, tagging
from ..aws.base import staging_tags
from ..errors import ExternalCallFailed
from ..runner import StepContext


def report_ready(ctx: StepContext) -> dict:
    url = ctx.config.url_for(ctx.names.host)
    ctx.update_staging(url=url, error="")
    ctx.progress(url)
    return {"url": url}


def _still_there(ctx: StepContext, arn: str) -> bool:
    """A deleted ECS service stays listed, tags and all, while it is INACTIVE."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "ecs" and parts[5].startswith("service/"):
        return ecs.describe_service(cluster=ctx.config.cluster, service=arn) is not None
    return True


def verify_nothing_left(ctx: StepContext) -> dict:
    """Ask AWS, not our records, whether anything of the staging remains."""
    tagged = tagging.tagged_resource_arns(tags=staging_tags(ctx.staging.name))
    left = [arn for arn in tagged if _still_there(ctx, arn)]
    left += [
        rule.arn for rule in elbv2.list_rules(listener_arn=ctx.config.listener_arn)
        if ctx.names.host in rule.hosts
    ]
    if left:
        raise ExternalCallFailed("tag:GetResources", "ResourcesLeft", ", ".join(left))
    ctx.progress("no tagged resource and no rule left")
    return {"left": []}
