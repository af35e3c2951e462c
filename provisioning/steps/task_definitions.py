"""The staging's web and worker task definitions, cloned from the host's current ones."""

from .. import gone
from ..aws import ecs, secretsmanager
from ..errors import ExternalCallFailed
from ..host import HostEnvironment, read_host_environment
from ..models import DbMode
from ..names import staging_tags
from ..stepkit import Skip, StepContext
from ..taskdefs import clone_task_definition, fingerprint
from .database import staging_db_instance


def staging_environment(ctx: StepContext) -> dict[str, str]:
    variables = {
        ctx.config.env_staging_name: ctx.staging.name,
        ctx.config.env_redis_namespace: ctx.names.redis_namespace,
    }
    if ctx.staging.db_mode == DbMode.DEDICATED:
        variables[ctx.config.env_db_instance] = staging_db_instance(ctx)
    return variables


def source_password_secret(ctx: StepContext) -> str:
    """What the task definitions' ``valueFrom`` names when the staging uses the source's own
    credentials (DS_SOURCE_DB_SECRETS): the secret's ARN, or for a JSON secret (as RDS keeps
    master passwords) its ``password`` key; else empty."""
    secret = ctx.config.source_db_secrets.get(ctx.staging.source, "")
    if ctx.staging.db_mode != DbMode.DEDICATED or not secret:
        return ""
    arn = secretsmanager.find_secret_arn(name=secret)
    if arn is None:
        raise ExternalCallFailed("secretsmanager:DescribeSecret", "ResourceNotFoundException",
                                 f"{secret} (DS_SOURCE_DB_SECRETS for {ctx.staging.source}) "
                                 "does not exist")
    return secretsmanager.read_db_password(secret_id=arn).value_from(arn)


def _give_secret(definition: dict, image: str, variable: str, value_from: str) -> None:
    """The app's containers read ``variable`` from the secret (ECS resolves it at task start,
    so the password never appears in the task definition)."""
    for container in definition["containerDefinitions"]:
        if container["image"] != image:
            continue
        container["environment"] = [e for e in container.get("environment", [])
                                    if e["name"] != variable]
        container["secrets"] = [s for s in container.get("secrets", [])
                                if s["name"] != variable] + [
            {"name": variable, "valueFrom": value_from}]


def _secrets(definition: dict) -> list:
    return sorted((c["name"], sorted((s["name"], s["valueFrom"]) for s in c.get("secrets", [])))
                  for c in definition["containerDefinitions"])


def _register_once(ctx: StepContext, definition: dict) -> str:
    """Reuse the family's latest revision when it is already what we want."""
    arns = ecs.list_task_definition_arns(family=definition["family"])
    if arns:
        latest = ecs.describe_task_definition(task_definition=arns[-1])
        if fingerprint(latest) == fingerprint(definition) and _secrets(latest) == _secrets(
                definition):
            ctx.progress(f"reused {arns[-1].rsplit('/', 1)[-1]}")
            return arns[-1]
    arn = ecs.register_task_definition(definition=definition, tags=staging_tags(ctx.staging.name))
    ctx.progress(f"registered {arn.rsplit('/', 1)[-1]}")
    return arn


def _clone(ctx: StepContext, host: HostEnvironment, host_definition: dict, family: str,
           cpu: str, memory: str) -> dict:
    definition = clone_task_definition(
        host_definition,
        family=family,
        app_image=host.image,
        image=ctx.output("image")["image"],
        cpu=cpu,
        memory=memory,
        environment=staging_environment(ctx),
    )
    secret_arn = source_password_secret(ctx)
    if secret_arn:
        _give_secret(definition, ctx.output("image")["image"], ctx.config.env_db_password,
                     secret_arn)
    token_arn = ctx.output("account_token").get("secret_arn")
    if token_arn:
        _give_secret(definition, ctx.output("image")["image"],
                     ctx.config.env_account_api_token, token_arn)
    return definition


def register_web_task_definition(ctx: StepContext) -> dict:
    host = read_host_environment(ctx.config)
    definition = _clone(ctx, host, host.web_task_definition, ctx.names.web_family,
                        ctx.config.web_cpu, ctx.config.web_memory)
    return {"arn": _register_once(ctx, definition)}


def register_worker_task_definition(ctx: StepContext) -> dict:
    host = read_host_environment(ctx.config)
    definition = _clone(ctx, host, host.worker_task_definition, ctx.names.worker_family,
                        ctx.config.worker_cpu, ctx.config.worker_memory)
    return {"arn": _register_once(ctx, definition)}


def _revisions(ctx: StepContext, status: str) -> list[str]:
    families = (ctx.names.web_family, ctx.names.worker_family)
    return [arn for f in families for arn in ecs.list_task_definition_arns(family=f, status=status)]


def remove_task_definitions(ctx: StepContext) -> dict:
    """Deregister every revision, then delete them: a deregistered revision still exists."""
    active = _revisions(ctx, "ACTIVE")
    for arn in active:
        ctx.check_cancelled()
        ecs.deregister_task_definition(arn=arn)
    inactive = _revisions(ctx, "INACTIVE")
    if not inactive:
        raise Skip("no task definition revisions left")
    gone.raise_refused_deletions(ecs.delete_task_definitions(arns=inactive), ctx.config)
    return {"deleted": [arn.rsplit("/", 1)[-1] for arn in inactive]}
