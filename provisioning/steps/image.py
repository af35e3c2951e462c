"""Resolve the branch's image in the host's repository, pinned by digest."""

from dataclasses import dataclass

from ..aws import ecr
from ..errors import UserError
from ..host import read_host_environment
from ..names import image_tag_for_branch
from ..runner import StepContext


@dataclass(frozen=True)
class ResolvedImage:
    uri: str  # registry/repository@sha256:..., what the task definitions run
    tag: str


def resolve_image(context_config, *, branch: str, tag: str | None = None) -> ResolvedImage:
    """The image for ``tag`` (default: the branch's tag), or UserError if there is none."""
    host = read_host_environment(context_config)
    tag = tag or image_tag_for_branch(branch)
    found = ecr.find_image(repository=host.image.repository, tag=tag)
    if found is None:
        raise UserError(
            f"No image tagged {tag!r} in repository {host.image.repository!r}: "
            "push an image for this branch first.",
            field="branch",
        )
    return ResolvedImage(uri=host.image.with_digest(found.digest), tag=tag)


def resolve_image_step(ctx: StepContext) -> dict:
    tag = ctx.operation.params.get("tag") or None
    image = resolve_image(ctx.config, branch=ctx.staging.branch, tag=tag)
    ctx.update_staging(image=image.uri, image_tag=image.tag)
    ctx.progress(f"{image.tag} -> {image.uri.rsplit('@', 1)[-1][:19]}")
    return {"image": image.uri, "tag": image.tag}
