"""Plain-data views of stagings for the command line and JSON (no HTTP, no templates)."""

from .models import Staging


def step_summary(step) -> dict:
    return {
        "key": step.key,
        "label": step.label,
        "state": step.state,
        "attempts": step.attempts,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "detail": step.detail,
        "error_call": step.error_call,
        "error_code": step.error_code,
        "error_message": step.error_message,
    }


def staging_summary(staging: Staging, *, with_steps: bool = False) -> dict:
    data = {
        "name": staging.name,
        "status": staging.status,
        "url": staging.url,
        "branch": staging.branch,
        "image": staging.image,
        "image_tag": staging.image_tag,
        "source": staging.source,
        "snapshot": staging.snapshot_id,
        "db_mode": staging.db_mode,
        "owner": staging.owner.get_username(),
        "login_username": staging.login_username,
        "login_url": staging.login_url,
        "created_at": staging.created_at,
        "ready_at": staging.ready_at,
        "destroyed_at": staging.destroyed_at,
        # None while kept: a kept staging does not expire.
        "expires_at": None if staging.kept else staging.expires_at,
        "kept": staging.kept,
        "error": staging.error,
    }
    if with_steps:
        operation = staging.latest_operation()
        data["operation"] = operation.kind if operation else None
        data["operation_status"] = operation.status if operation else None
        steps = list(operation.steps.all()) if operation else []
        data["steps"] = [step_summary(s) for s in steps]
        data["outcome"] = operation_outcome(operation, steps) if operation else ""
    return data


def source_summary(source) -> dict:
    """A snapshot source (operations.SourceInfo) as the API and the command line show it."""
    snapshot = source.newest_snapshot
    return {
        "name": source.instance_id,
        "is_host": source.is_host,
        "snapshot": snapshot.identifier if snapshot else None,
        "snapshot_taken_at": snapshot.created_at if snapshot else None,
    }


def operation_outcome(operation, steps) -> str:
    """What a finished operation says it changed (a redeploy: "nothing changed: the image is
    the same", or what it deployed); empty when it says nothing."""
    if not operation.is_finished:
        return ""
    return next((step.outputs.get("outcome", "") for step in steps
                 if step.key == "report" and step.outputs), "")
