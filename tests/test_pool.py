"""The warm pool against moto: refills, claims (also concurrent ones), renewal on a newer
snapshot, creates that take a pool database and destroys that delete it; and the ways a
database restored from another source gets working credentials."""

import re
import threading
from unittest import mock

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from dashboard.fleet import warm_pool
from provisioning import pool
from provisioning.aws import base, rds
from provisioning.config import load_config, parse_pool_sizes, parse_source_secrets
from provisioning.costs import Rates, database_hourly
from provisioning.lifecycle import plan_for
from provisioning.models import (
    Operation,
    OperationKind,
    PoolDatabase,
    PoolStatus,
    Staging,
    StagingStatus,
)
from provisioning.operations import request_create, request_destroy
from provisioning.runner import run_operation
from tests.conftest import BRANCH, HOST_DB, QA_DB, SNAPSHOT_SOURCES
from tests.factories import make_staging
from tests.running import steps_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]


@pytest.fixture(autouse=True)
def refills(monkeypatch):
    """Refills asked for: the tests refill the pool themselves, not a queue."""
    refills: list[bool] = []
    monkeypatch.setattr("provisioning.pool.request_refill", lambda: refills.append(True))
    return refills


@pytest.fixture
def qa_pool(host_env, settings):
    settings.DS_POOL_SIZES = {QA_DB: 2}
    return host_env


def instances() -> dict[str, dict]:
    return {i["DBInstanceIdentifier"]: i
            for i in boto3.client("rds").describe_db_instances()["DBInstances"]}


def tags_of(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("TagList", [])}


def fill(times: int = 3) -> None:
    """Refill until the pool settles: restore, (password,) ready. Moto is done at once."""
    for _ in range(times):
        result = pool.refill_pools()
        assert result.errors == []


def rows(**filters) -> list[PoolDatabase]:
    return list(PoolDatabase.objects.filter(**filters).order_by("instance_id"))


def create_and_run(owner, **kwargs) -> tuple[Staging, Operation]:
    staging = request_create(branch=BRANCH, owner=owner, **kwargs)
    operation = staging.latest_operation()
    assert run_operation(operation.pk) is True
    staging.refresh_from_db()
    operation.refresh_from_db()
    return staging, operation


def container_env(task_definition_arn: str) -> tuple[dict[str, str], dict[str, str]]:
    definition = boto3.client("ecs").describe_task_definition(
        taskDefinition=task_definition_arn)["taskDefinition"]
    app = definition["containerDefinitions"][0]
    return ({e["name"]: e["value"] for e in app.get("environment", [])},
            {s["name"]: s["valueFrom"] for s in app.get("secrets", [])})


# --- settings -------------------------------------------------------------------------------------

def test_pool_sizes_are_parsed_per_source():
    assert parse_pool_sizes("") == {}
    assert parse_pool_sizes(" host-db=2 , qa-db=0,") == {"host-db": 2, "qa-db": 0}
    assert parse_source_secrets("qa-db=qa/db-password") == {"qa-db": "qa/db-password"}


@pytest.mark.parametrize(("raw", "message"), [
    ("qa-db", "'qa-db' is not source=value"),
    ("qa-db=", "'qa-db=' is not source=value"),
    ("=2", "'=2' is not source=value"),
    ("qa-db=two", "the size for 'qa-db' must be a whole number (0 or more), not 'two'"),
    ("qa-db=-1", "must be a whole number (0 or more), not '-1'"),
    ("qa-db=1.5", "not '1.5'"),
    ("qa-db=1,qa-db=2", "'qa-db' is given twice"),
])
def test_pool_size_mistakes_are_named(raw, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_pool_sizes(raw)
    assert str(raised.value).startswith("DS_POOL_SIZES: ")
    assert message in str(raised.value)


def test_source_secret_mistakes_are_named():
    with pytest.raises(ImproperlyConfigured, match="DS_SOURCE_DB_SECRETS: 'qa-db' is not"):
        parse_source_secrets("qa-db")


def test_a_pool_for_an_unknown_source_is_reported_by_the_refill(host_env, settings):
    settings.DS_POOL_SIZES = {"prod-db": 1}
    result = pool.refill_pools()
    assert result.errors == ["DS_POOL_SIZES names 'prod-db', which is not one of "
                             f"DS_SNAPSHOT_SOURCES ({', '.join(SNAPSHOT_SOURCES)})"]
    assert result.restored == [] and rows() == []


@pytest.mark.parametrize("source", [
    "qa-db", "Staging_Marketing.DB", "x" * 63, "--", "a--b-", "9lives"])
def test_pool_instance_ids_are_valid_rds_identifiers(source):
    identifier = pool.new_instance_id(source)
    assert len(identifier) <= 63
    assert re.fullmatch(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*", identifier), identifier
    assert pool.new_instance_id(source) != identifier


# --- refilling ------------------------------------------------------------------------------------

def test_refill_restores_the_missing_databases_and_marks_them_ready(qa_pool):
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **kwargs: sent.append(dict(params)))
    with mock.patch("provisioning.aws.rds.set_master_password",
                    wraps=rds.set_master_password) as set_password:
        first = pool.refill_pools()
        assert len(first.restored) == 2
        assert [r.status for r in rows()] == [PoolStatus.RESTORING] * 2
        fill()
    ready = rows(status=PoolStatus.READY)
    assert len(ready) == 2 and all(r.ready_at for r in ready)
    assert {r.snapshot_id for r in ready} == {qa_pool.qa_snapshot}
    # Not the host's own database: the host's password is set before it counts as ready.
    assert sorted(c.kwargs["instance_id"] for c in set_password.call_args_list) == sorted(
        r.instance_id for r in ready)
    assert {c.kwargs["password"] for c in set_password.call_args_list} == {
        qa_pool.host_db_password}
    for row in ready:
        instance = instances()[row.instance_id]
        assert row.instance_id.startswith(f"dsp-{QA_DB}-")
        assert instance["DBInstanceClass"] == "db.t3.micro"
        assert tags_of(instance) | {"dynamic-staging-password": "host"} == {
            "managed-by": "dynamic-stagings", "dynamic-staging-pool": QA_DB,
            "dynamic-staging-password": "host"}
        assert "dynamic-staging" not in tags_of(instance)

    # Moto ignores it, AWS would first take a full backup of every pool database without it.
    assert [params["BackupRetentionPeriod"] for params in sent] == [0, 0]
    again = pool.refill_pools()
    assert again.restored == again.retired == []
    assert len(rows()) == 2


def test_a_host_pool_needs_no_password_change(host_env, settings):
    settings.DS_POOL_SIZES = {HOST_DB: 1}
    with mock.patch("provisioning.aws.rds.set_master_password") as set_password:
        fill(2)
    set_password.assert_not_called()
    assert [r.status for r in rows()] == [PoolStatus.READY]


def test_a_smaller_size_retires_the_surplus(qa_pool, settings):
    fill()
    settings.DS_POOL_SIZES = {QA_DB: 1}
    result = pool.refill_pools()
    assert len(result.retired) == 1
    pool.refill_pools()
    assert len(rows()) == 1
    assert set(instances()) >= {rows()[0].instance_id}
    assert len([i for i in instances() if i.startswith("dsp-")]) == 1


def test_a_newer_snapshot_renews_the_pool(qa_pool):
    fill()
    old = {r.instance_id for r in rows()}
    boto3.client("rds").create_db_snapshot(DBInstanceIdentifier=QA_DB,
                                           DBSnapshotIdentifier="qa-db-newer")
    newest = rds.newest_available_snapshot(rds.list_snapshots(instance_id=QA_DB))
    assert newest.identifier == "qa-db-newer"

    pool.refill_pools()
    # The old ones keep serving until the new ones are ready.
    assert {r.instance_id for r in rows(status=PoolStatus.READY)} == old
    assert len(rows(snapshot_id="qa-db-newer")) == 2
    fill()
    assert {r.snapshot_id for r in rows()} == {"qa-db-newer"}
    assert [r.status for r in rows()] == [PoolStatus.READY] * 2
    assert old.isdisjoint(instances())


def test_a_pool_database_deleted_behind_our_back_is_forgotten_and_replaced(qa_pool):
    fill()
    lost = rows()[0].instance_id
    boto3.client("rds").delete_db_instance(DBInstanceIdentifier=lost, SkipFinalSnapshot=True)
    result = pool.refill_pools()
    assert result.forgotten == [lost]
    fill()
    assert len(rows(status=PoolStatus.READY)) == 2
    assert lost not in {r.instance_id for r in rows()}


# --- claiming -------------------------------------------------------------------------------------

def test_a_create_takes_a_pool_database_and_skips_the_restore(qa_pool, alice, refills):
    fill()
    newest_first = rows(status=PoolStatus.READY)[-1]
    PoolDatabase.objects.filter(pk=newest_first.pk).update(created_at=newest_first.created_at
                                                           .replace(year=2100))
    with mock.patch("provisioning.aws.rds.restore_from_snapshot") as restore, \
            mock.patch("provisioning.aws.rds.set_master_password") as set_password:
        staging, operation = create_and_run(alice, source=QA_DB)
    restore.assert_not_called()
    set_password.assert_not_called()
    assert operation.status == "succeeded" and staging.status == StagingStatus.READY
    assert staging.db_instance == newest_first.instance_id
    assert steps_of(operation)["db_credentials"] == "skipped"
    assert refills == [True]  # a refill was asked for at once

    taken = PoolDatabase.objects.get(instance_id=staging.db_instance)
    assert taken.status == PoolStatus.CLAIMED and taken.staging_id == staging.pk
    assert taken.claimed_at
    assert tags_of(instances()[staging.db_instance])["dynamic-staging"] == staging.name
    assert f"ds-{staging.name}" not in instances()
    outputs = {s.key: s.outputs for s in operation.steps.all()}
    assert outputs["database"]["pool"] is True
    for key in ("web_task_definition", "worker_task_definition"):
        environment, _ = container_env(outputs[key]["arn"])
        assert environment["DB_INSTANCE_ID"] == staging.db_instance

    # The next one takes the other; the one after that restores its own.
    second, _ = create_and_run(alice, source=QA_DB, name="second")
    assert second.db_instance not in {staging.db_instance, ""}
    third, third_op = create_and_run(alice, source=QA_DB, name="third")
    assert third.db_instance == "ds-third"
    assert steps_of(third_op)["db_credentials"] == "done"


def test_concurrent_claims_never_share_a_database(qa_pool, alice):
    fill()
    claimers = [make_staging(alice, name=f"racer-{i}", source=QA_DB) for i in range(6)]
    start = threading.Barrier(len(claimers))
    won: dict[str, str | None] = {}

    def race(staging: Staging) -> None:
        try:
            start.wait()
            taken = pool.claim(staging)
            won[staging.name] = taken.instance_id if taken else None
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(s,)) for s in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [instance for instance in won.values() if instance]
    assert len(won) == 6 and len(taken) == 2 and len(set(taken)) == 2
    for row in rows():
        assert row.status == PoolStatus.CLAIMED
        assert won[row.staging.name] == row.instance_id


def test_a_lost_pool_database_falls_back_to_a_restore(qa_pool, alice):
    fill()
    for row in rows():
        boto3.client("rds").delete_db_instance(DBInstanceIdentifier=row.instance_id,
                                               SkipFinalSnapshot=True)
    staging, operation = create_and_run(alice, source=QA_DB)
    assert operation.status == "succeeded"
    assert staging.db_instance == f"ds-{staging.name}"
    assert {r.status for r in rows()} == {PoolStatus.RETIRING}


def test_destroy_deletes_the_claimed_database(qa_pool, alice):
    fill()
    staging, _ = create_and_run(alice, source=QA_DB)
    claimed = staging.db_instance
    assert claimed.startswith("dsp-")
    destroy = request_destroy(staging, user=alice)
    assert run_operation(destroy.pk) is True
    destroy.refresh_from_db()
    assert destroy.status == "succeeded", destroy.error
    assert {s.key: s.outputs for s in destroy.steps.all()}["database"] == {"deleted": claimed}
    assert claimed not in instances()


# --- credentials of another source ----------------------------------------------------------------

def plan(staging: Staging) -> dict[str, tuple[str, ...]]:
    operation = Operation(staging=staging, kind=OperationKind.CREATE)
    return {spec.key: spec.after for spec in plan_for(operation)}


def test_services_start_when_the_restore_is_available(host_env, alice):
    after = plan(make_staging(alice, source=QA_DB))
    assert after["web_service"] == ("web_task_definition", "target_group", "listener_rule",
                                    "database")
    assert after["worker_service"] == ("worker_task_definition", "database")
    assert after["db_credentials"] == ("database",)
    # The app cannot be healthy before its password works.
    assert "db_credentials" in after["web_healthy"]
    assert after["web_task_definition"] == ("image",)


def test_a_pool_makes_the_task_definitions_wait_for_the_database_step(qa_pool, alice):
    after = plan(make_staging(alice, source=QA_DB))
    assert after["web_task_definition"] == after["worker_task_definition"] == (
        "image", "database")
    assert plan(make_staging(alice, name="from-host"))["web_task_definition"] == ("image",)


def test_a_source_secret_replaces_the_password_change(host_env, alice, settings):
    arn = boto3.client("secretsmanager").create_secret(
        Name="qa/db-password", SecretString="qa-db-password")["ARN"]
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/db-password"}
    planned = make_staging(alice, name="planned", branch="plan-only", source=QA_DB)
    assert "db_credentials" not in plan(planned)

    with mock.patch("provisioning.aws.rds.set_master_password") as set_password:
        staging, operation = create_and_run(alice, source=QA_DB)
    set_password.assert_not_called()
    assert operation.status == "succeeded", operation.error
    outputs = {s.key: s.outputs for s in operation.steps.all()}
    environment, secrets = container_env(outputs["web_task_definition"]["arn"])
    assert secrets["DB_PASSWORD"] == arn
    assert "DB_PASSWORD" not in environment
    # The host's connection string stays as the host's definition has it (the app points it at
    # the staging's DB_INSTANCE_ID).
    host_environment, _ = container_env(host_env.web_task_definition_arn)
    assert environment["DATABASE_URL"] == host_environment["DATABASE_URL"]


def test_a_missing_source_secret_fails_the_step_clearly(host_env, alice, settings):
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/no-such-secret"}
    staging, operation = create_and_run(alice, source=QA_DB)
    assert operation.status == "failed"
    assert f"qa/no-such-secret (DS_SOURCE_DB_SECRETS for {QA_DB}) does not exist" in operation.error


# --- the fleet page -------------------------------------------------------------------------------

def test_the_fleet_page_shows_the_pool_and_its_cost(qa_pool, alice, client):
    fill()
    pool.refill_pools()
    rates = Rates()
    each = database_hourly(rates.prices, load_config())
    summary = warm_pool(rates)
    (line,) = summary.lines
    assert (line.source, line.size, line.ready, line.restoring) == (QA_DB, 2, 2, 0)
    assert line.hourly == pytest.approx(2 * each) and summary.hourly == line.hourly
    assert each > 0

    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "Warm pool" in page and f'data-pool-source="{QA_DB}"' in page


def test_no_pool_no_section(host_env, alice, client):
    client.force_login(alice)
    assert "Warm pool" not in client.get("/").content.decode()
