"""ECR: does an image exist for a tag, and which tags does a repository hold.

IAM: ecr:DescribeImages.
"""

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from .base import client, error_code, translated_errors


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


def find_image(*, repository: str, tag: str) -> ImageInfo | None:
    """The image a tag points at now, or None when the repository has no such tag."""
    with translated_errors("ecr:DescribeImages"):
        try:
            raw = client("ecr").describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return None
            raise
    detail = raw["imageDetails"][0]
    return ImageInfo(digest=detail["imageDigest"], pushed_at=detail.get("imagePushedAt"))


def list_image_tags(*, repository: str) -> list[ImageTag]:
    """Every tag in the repository, newest push first."""
    tags: list[ImageTag] = []
    with translated_errors("ecr:DescribeImages"):
        pages = client("ecr").get_paginator("describe_images").paginate(
            repositoryName=repository, filter={"tagStatus": "TAGGED"}
        )
        for page in pages:
            for detail in page["imageDetails"]:
                for tag in detail.get("imageTags", []):
                    tags.append(ImageTag(tag=tag, pushed_at=detail.get("imagePushedAt")))
    epoch = datetime.min
    tags.sort(key=lambda t: t.pushed_at.replace(tzinfo=None) if t.pushed_at else epoch,
              reverse=True)
    return tags
