"""Resource Groups Tagging API: every resource carrying our tags, whatever its service.

Its answer is a list of candidates, not of what exists: for minutes to an hour it keeps listing
stopped ECS tasks, deleted listener rules, task definitions being deleted, databases being
deleted and secrets scheduled for deletion (see provisioning/gone.py). AWS lists listener rules
with their tags; moto lists none, so rules are also looked up on the listener.
IAM: tag:GetResources.
"""

from dataclasses import dataclass

from .base import client, translated_errors


@dataclass(frozen=True)
class TaggedResource:
    arn: str
    tags: dict[str, str]


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


def tagged_resources(*, tags: dict[str, str]) -> list[TaggedResource]:
    """Every resource carrying all of ``tags``, with all its tags (a sweep needs their values)."""
    found: list[TaggedResource] = []
    filters = [{"Key": key, "Values": [value]} for key, value in tags.items()]
    with translated_errors("tag:GetResources"):
        pages = client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
            TagFilters=filters
        )
        for page in pages:
            found.extend(
                TaggedResource(
                    arn=m["ResourceARN"], tags={t["Key"]: t["Value"] for t in m.get("Tags", [])}
                )
                for m in page["ResourceTagMappingList"]
            )
    return found
