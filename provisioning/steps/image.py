"""Resolve the branch's image in the host's repository, pinned by digest."""

from dataclasses import dataclass

from ..aws import ecr
from ..aws.ecr import ImageReference
from ..errors import Refusal, UserError
from ..host import read_host_environment
from ..models import OperationKind
from ..names import image_tag_for_branch
from ..stepkit import StepContext


@dataclass(frozen=True)
class ResolvedImage:
    uri: str  # registry/repository@sha256:..., what the task definitions run
    tag: str


def registry_id_of(image: ImageReference) -> str:
    """The ECR registry (account) holding the host's image, or UserError when it is not in an
    ECR private registry: the branch images are looked up with ECR's API."""
    if image.registry_id is None:
        raise UserError(
            f"The host's web image {image.registry}/{image.repository} is not in an Amazon ECR "
            "private registry (<account>.dkr.ecr.<region>.amazonaws.com), so the images of "
            "branches cannot be looked up.",
            field="branch", code=Refusal.NOT_CONFIGURED,
        )
    return image.registry_id


def resolve_image(context_config, *, branch: str, tag: str | None = None) -> ResolvedImage:
    """The image for ``tag`` (default: the branch's tag), or UserError if there is none."""
    host = read_host_environment(context_config)
    tag = tag or image_tag_for_branch(branch)
    found = ecr.find_image(
        registry_id=registry_id_of(host.image), repository=host.image.repository, tag=tag
    )
    if found is None:
        raise UserError(
            f"No image tagged {tag!r} in repository {host.image.repository!r}: "
            "push an image for this branch first.",
            field="branch",
        )
    return ResolvedImage(uri=host.image.with_digest(found.digest), tag=tag)


# What the staging ran before this step changed it: kept across a rerun of the step, which
# would otherwise find its own change.
PREVIOUS_IMAGE = "previous_image"


def short_digest(uri: str) -> str:
    return uri.rsplit("@", 1)[-1][:19]


def resolve_image_step(ctx: StepContext) -> dict:
    tag = ctx.operation.params.get("tag") or None
    image = resolve_image(ctx.config, branch=ctx.staging.branch, tag=tag)
    if ctx.operation.kind != OperationKind.REDEPLOY:
        ctx.update_staging(image=image.uri, image_tag=image.tag)
        ctx.progress(f"{image.tag} -> {short_digest(image.uri)}")
        return {"image": image.uri, "tag": image.tag}
    previous = ctx.recall(PREVIOUS_IMAGE)
    if previous is None:
        previous = ctx.staging.image
        ctx.remember(PREVIOUS_IMAGE, previous)
    ctx.update_staging(image=image.uri, image_tag=image.tag)
    same = previous == image.uri
    ctx.progress(f"{image.tag} -> {short_digest(image.uri)}"
                 + (" (the image the staging runs already)" if same else ""))
    return {"image": image.uri, "tag": image.tag, "same_image": same}
