"""Last steps: tell the user where the staging is, or check that nothing is left."""

from ..aws import elbv2, tagging
from ..aws.base import staging_tags
from ..errors import ExternalCallFailed
from ..runner import StepContext


def report_ready(ctx: StepContext) -> dict:
    url = ctx.config.url_for(ctx.names.host)
    ctx.update_staging(url=url, error="")
    ctx.progress(url)
    return {"url": url}


def verify_nothing_left(ctx: StepContext) -> dict:
    """Ask AWS, not our records, whether anything of the staging remains."""
    left = tagging.tagged_resource_arns(tags=staging_tags(ctx.staging.name))
    left += [
        rule.arn for rule in elbv2.list_rules(listener_arn=ctx.config.listener_arn)
        if ctx.names.host in rule.hosts
    ]
    if left:
        raise ExternalCallFailed("tag:GetResources", "ResourcesLeft", ", ".join(left))
    ctx.progress("no tagged resource and no rule left")
    return {"left": []}
