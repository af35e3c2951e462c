"""Resource Groups Tagging API: every resource carrying our tags, whatever its service.

Listener rules are not returned by this API; list them with elbv2.list_rules instead.
IAM: tag:GetResources.
"""

from .base import client, translated_errors


def tagged_resource_arns(*, tags: dict[str, str]) -> list[str]:
    arns: list[str] = []
    filters = [{"Key": key, "Values": [value]} for key, value in tags.items()]
    with translated_errors("tag:GetResources"):
        pages = client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
            TagFilters=filters
        )
        for page in pages:
            arns.extend(m["ResourceARN"] for m in page["ResourceTagMappingList"])
    return arns
