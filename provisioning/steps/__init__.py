"""The step graphs of create, redeploy and destroy (README "What it does").

Each step is idempotent: it finds what an earlier attempt made by derived name and tags before
making anything. ``after`` lists the steps that must be done first; everything else runs at
the same time, so the slowest chain (usually the database) sets the time.
"""

from .. import account_api
from ..config import EngineConfig, load_config
from ..models import DbMode, Operation
from ..pool import pool_enabled
from ..stepkit import StepSpec
from . import account, database, handover, image, report, routing, services, task_definitions


def _database_steps(operation: Operation,
                    config: EngineConfig) -> tuple[list[StepSpec], tuple[str, ...]]:
    """The DB steps, and what the web service's health wait needs of them. The services start
    as soon as the restore is available; a password change then runs while their tasks boot
    (see steps/database.py)."""
    staging = operation.staging
    if staging.db_mode != DbMode.DEDICATED:
        return [], ()
    label = (f"Take a warm database of {staging.source} (or restore one)"
             if pool_enabled(config, staging.source)
             else f"Restore database from {staging.source}")
    steps = [StepSpec("database", label, database.restore_database)]
    if config.needs_host_password(staging.source):
        steps.append(StepSpec("db_credentials", "Give the database the host's credentials",
                              database.align_credentials, after=("database",)))
    return steps, tuple(step.key for step in steps)


def _token_steps(config: EngineConfig) -> tuple[list[StepSpec], tuple[str, ...]]:
    """The staging's own account API token, when its app serves the API: the task
    definitions hand it to the containers, so they wait for it."""
    if not account.own_token(config):
        return [], ()
    return [StepSpec("account_token", "Make the staging's account API token",
                     account.make_account_token)], ("account_token",)


def _bypass_steps(config: EngineConfig) -> tuple[list[StepSpec], tuple[str, ...]]:
    """The staging's bypass token, when its rules let automated tests skip signing in: the
    bypass rule carries it, so the rules wait for it."""
    if not routing.bypass_wanted(config):
        return [], ()
    return [StepSpec("bypass_token", "Make the staging's bypass token",
                     routing.make_bypass_token)], ("bypass_token",)


def create_plan(operation: Operation) -> list[StepSpec]:
    config = load_config()  # read once: the progress estimate builds plans on every poll
    db_steps, db_ready = _database_steps(operation, config)
    bypass_steps, bypass_made = _bypass_steps(config)
    db_made = db_ready[:1]
    token_steps, token_made = _token_steps(config)
    account_after = ("web_healthy",) if account_api.targets_staging(
        config.account_api_url) else ()
    # A database taken from the pool has an id known only once the database step took it.
    definitions_after = ("image", *db_made) if db_made and pool_enabled(
        config, operation.staging.source) else ("image",)
    definitions_after += token_made
    return [
        StepSpec("image", "Find the branch's image", image.resolve_image_step),
        *token_steps,
        *db_steps,
        StepSpec("web_task_definition", "Register the web task definition",
                 task_definitions.register_web_task_definition, after=definitions_after),
        StepSpec("worker_task_definition", "Register the worker task definition",
                 task_definitions.register_worker_task_definition, after=definitions_after),
        StepSpec("target_group", "Create the target group", routing.create_target_group),
        *bypass_steps,
        StepSpec("listener_rule", "Add the listener rule", routing.create_listener_rule,
                 after=("target_group", *bypass_made)),
        StepSpec("web_service", "Start the web service", services.create_web_service,
                 after=("web_task_definition", "target_group", "listener_rule", *db_made)),
        StepSpec("worker_service", "Start the worker service", services.create_worker_service,
                 after=("worker_task_definition", *db_made)),
        StepSpec("web_healthy", "Wait until the web service is healthy",
                 services.wait_web_healthy, after=("web_service", *db_ready)),
        StepSpec("worker_steady", "Wait until the worker is running",
                 services.wait_worker_steady, after=("worker_service",)),
        StepSpec("account", "Create the test account", account.create_account,
                 after=account_after),
        StepSpec("report", "Report the URL and login", report.report_ready,
                 after=("web_healthy", "worker_steady", "account")),
    ]


def redeploy_plan(operation: Operation) -> list[StepSpec]:
    token_steps, token_made = _token_steps(load_config())
    return [
        StepSpec("image", "Find the new image", image.resolve_image_step),
        *token_steps,
        StepSpec("web_task_definition", "Register the web task definition",
                 task_definitions.register_web_task_definition, after=("image", *token_made)),
        StepSpec("worker_task_definition", "Register the worker task definition",
                 task_definitions.register_worker_task_definition,
                 after=("image", *token_made)),
        StepSpec("web_service", "Deploy to the web service", services.update_web_service,
                 after=("web_task_definition",)),
        StepSpec("worker_service", "Deploy to the worker service",
                 services.update_worker_service, after=("worker_task_definition",)),
        StepSpec("web_healthy", "Wait until the web service is healthy",
                 services.wait_web_healthy, after=("web_service",)),
        StepSpec("worker_steady", "Wait until the worker is running",
                 services.wait_worker_steady, after=("worker_service",)),
        # Also after the steps whose outputs say what changed (done by then anyway).
        StepSpec("report", "Report the URL and what changed", report.report_redeployed,
                 after=("web_healthy", "worker_steady", "image", "web_service",
                        "worker_service")),
    ]


def destroy_plan(operation: Operation) -> list[StepSpec]:
    """The create graph backwards: routing first, services before their target group and
    before the database, the database last, then a check that AWS holds nothing more."""
    return [
        StepSpec("handover", "Stop the operation it supersedes",
                 handover.wait_for_superseded_runner),
        StepSpec("account", "Remove the test account", account.remove_account,
                 after=("handover",)),
        StepSpec("listener_rule", "Remove the listener rule", routing.remove_listener_rules,
                 after=("handover",)),
        StepSpec("web_service", "Remove the web service", services.remove_web_service,
                 after=("account",)),
        StepSpec("worker_service", "Remove the worker service", services.remove_worker_service,
                 after=("account",)),
        StepSpec("target_group", "Remove the target group", routing.remove_target_group,
                 after=("listener_rule", "web_service")),
        StepSpec("task_definitions", "Remove the task definitions",
                 task_definitions.remove_task_definitions,
                 after=("web_service", "worker_service")),
        StepSpec("database", "Delete the database", database.remove_database,
                 after=("web_service", "worker_service")),
        StepSpec("login_secret", "Delete the login secret", account.remove_login_secret,
                 after=("account",)),
        StepSpec("account_token", "Delete the account API token",
                 account.remove_account_token, after=("account",)),
        StepSpec("bypass_token", "Delete the bypass token", routing.remove_bypass_token,
                 after=("listener_rule",)),
        StepSpec("verify", "Check that nothing is left", report.verify_nothing_left,
                 after=("target_group", "task_definitions", "database", "login_secret",
                        "account_token", "bypass_token")),
    ]
