"""ECR: does an image exist for a tag, and which tags does a repository hold.

The registry is the one the image URI names, which may belong to another account (a shared
build account is common): every call passes its registryId.

IAM: ecr:DescribeImages (for another account's registry, its repository policy must also allow
ecr:DescribeImages to our role).
"""

import re
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from .base import client, error_code, translated_errors

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: a private registry and its owner.
_PRIVATE_REGISTRY = re.compile(r"(\d{12})\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")


@dataclass(frozen=True)
class ImageTag:
    tag: str
    pushed_at: datetime | None


@dataclass(frozen=True)
class ImageReference:
    """An image URI split into registry, repository and tag."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, uri: str) -> "ImageReference":
        name, _, tag = uri.rpartition(":")
        if not name or "/" in tag:  # no tag: the colon belonged to a registry port
            name, tag = uri, "latest"
        registry, _, repository = name.partition("/")
        return cls(registry=registry, repository=repository, tag=tag)

    @property
    def registry_id(self) -> str | None:
        """The account owning this ECR private registry; None for any other registry."""
        found = _PRIVATE_REGISTRY.fullmatch(self.registry)
        return found.group(1) if found else None

    def with_tag(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"

    def with_digest(self, digest: str) -> str:
        return f"{self.registry}/{self.repository}@{digest}"

    def same_repository(self, uri: str) -> bool:
        other = ImageReference.parse(uri.split("@", 1)[0])
        return (other.registry, other.repository) == (self.registry, self.repository)


@dataclass(frozen=True)
class ImageInfo:
    digest: str
    pushed_at: datetime | None


def find_image(*, registry_id: str, repository: str, tag: str) -> ImageInfo | None:
    """The image a tag points at now, or None when the repository has no such tag."""
    with translated_errors("ecr:DescribeImages"):
        try:
            raw = client("ecr").describe_images(
                registryId=registry_id, repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return None
            raise
    detail = raw["imageDetails"][0]
    return ImageInfo(digest=detail["imageDigest"], pushed_at=detail.get("imagePushedAt"))


def list_image_tags(*, registry_id: str, repository: str) -> list[ImageTag]:
    """Every tag in the repository, newest push first."""
    tags: list[ImageTag] = []
    with translated_errors("ecr:DescribeImages"):
        pages = client("ecr").get_paginator("describe_images").paginate(
            registryId=registry_id, repositoryName=repository, filter={"tagStatus": "TAGGED"}
        )
        for page in pages:
            for detail in page["imageDetails"]:
                for tag in detail.get("imageTags", []):
                    tags.append(ImageTag(tag=tag, pushed_at=detail.get("imagePushedAt")))
    epoch = datetime.min
    tags.sort(key=lambda t: t.pushed_at.replace(tzinfo=None) if t.pushed_at else epoch,
              reverse=True)
    return tags
