"""A restored database is configured like its source; DB password secrets are read as AWS keeps
them; RDS's own rules (kept by the sandbox where moto does not); the botocore floor that every
parameter we send needs."""

import re
import tomllib
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from provisioning import pool
from provisioning.aws import base, rds, secretsmanager
from provisioning.errors import ExternalCallFailed
from provisioning.models import PoolStatus
from provisioning.sandbox import rds_rules
from provisioning.steps import database, task_definitions
from tests.conftest import DB_PARAMETER_GROUP, HOST_DB, QA_DB
from tests.factories import make_operation, make_staging, step_context

pytestmark = pytest.mark.django_db

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
NAME = "login-page"


def described(identifier: str) -> dict:
    return boto3.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)[
        "DBInstances"][0]


def parameter_group(instance: dict) -> str:
    return instance["DBParameterGroups"][0]["DBParameterGroupName"]


@pytest.fixture
def from_qa(host_env, alice):
    return make_staging(alice, name=NAME, source=QA_DB, snapshot_id=host_env.qa_snapshot)


def run(staging, key, step):
    operation = staging.latest_operation() or make_operation(staging)
    return step(step_context(operation, key))


# --- restore like the source --------------------------------------------------------------------

def assert_shaped_like_source(restored: dict, source: dict) -> None:
    assert parameter_group(restored) == parameter_group(source) == DB_PARAMETER_GROUP
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"][
        "DBSubnetGroupName"]
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]]
    assert restored["Endpoint"]["Port"] == source["Endpoint"]["Port"]
    assert restored["StorageType"] == source["StorageType"] == "gp3"
    # What a staging's database does not share with a long-lived one.
    assert restored["DBInstanceClass"] == "db.t3.micro"
    assert restored["BackupRetentionPeriod"] == 0
    assert restored["MultiAZ"] is False
    assert restored["PubliclyAccessible"] is False
    assert restored["DeletionProtection"] is False


def test_a_staging_database_is_restored_like_its_source(from_qa):
    run(from_qa, "database", database.restore_database)
    restored = described(f"ds-{NAME}")
    assert_shaped_like_source(restored, described(QA_DB))
    assert {t["Key"]: t["Value"] for t in restored["TagList"]} == {
        "dynamic-staging": NAME, "managed-by": "dynamic-stagings"}


def test_a_database_restored_from_the_host_is_not_protected_like_the_host(host_env, alice):
    staging = make_staging(alice, name=NAME, snapshot_id=host_env.host_snapshot)
    assert described(HOST_DB)["DeletionProtection"] is True
    run(staging, "database", database.restore_database)
    assert_shaped_like_source(described(f"ds-{NAME}"), described(HOST_DB))
    assert rds.delete_instance(instance_id=f"ds-{NAME}")


def test_a_pool_database_is_restored_like_its_source(host_env, settings):
    settings.DS_POOL_SIZES = {QA_DB: 1}
    result = pool.refill_pools()
    assert result.errors == [] and len(result.restored) == 1
    assert_shaped_like_source(described(result.restored[0]), described(QA_DB))


def test_an_unknown_source_restores_with_what_the_snapshot_gives(host_env):
    made = rds.restore_from_snapshot(instance_id="ds-orphan", snapshot_id=host_env.qa_snapshot,
                                     instance_class="db.t3.micro", like=None, tags={})
    assert made.parameter_group.startswith("default.postgres")
    assert made.backup_retention_days == 0


def test_provisioned_iops_are_asked_for_with_their_storage_type(host_env):
    source = rds.describe_instance(instance_id=QA_DB)
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **kwargs: sent.append(dict(params)))
    io_source = rds.DbInstance(**{**source.__dict__, "storage_type": "io1", "iops": 3000})
    rds.restore_from_snapshot(instance_id="ds-io", snapshot_id=host_env.qa_snapshot,
                              instance_class="db.t3.micro", like=io_source, tags={})
    assert (sent[0]["StorageType"], sent[0]["Iops"]) == ("io1", 3000)
    # A default option group is left to the restore: its name carries an engine version.
    assert "OptionGroupName" not in sent[0]


# --- password secrets as AWS keeps them ---------------------------------------------------------

@pytest.mark.parametrize(("value", "password", "key"), [
    ("plain-password", "plain-password", ""),
    ('{"username": "app", "password": "from-json"}', "from-json", "password"),
    ('  {"password": "pg-secret", "engine": "postgres", "port": 5432}', "pg-secret", "password"),
])
def test_a_db_password_secret_is_a_bare_password_or_rds_json(value, password, key):
    read = secretsmanager.parse_db_password(value, secret_id="s")
    assert (read.password, read.json_key) == (password, key)
    assert read.value_from("arn:s") == (f"arn:s:{key}::" if key else "arn:s")
    assert password not in repr(read)


@pytest.mark.parametrize("value", [
    '{"username": "app", "password": "se"cret"}',
    '{"username": "app"}',
    '{"username": "app", "password": 12345678}',
    '{"username": "app", "password": ""}',
    "{not json at all, hunter2}",
])
def test_an_unreadable_db_password_secret_is_named_and_not_shown(value):
    with pytest.raises(ExternalCallFailed) as raised:
        secretsmanager.parse_db_password(value, secret_id="qa/db-password")
    assert "qa/db-password" in str(raised.value)
    assert "hunter2" not in str(raised.value) and "se\"cret" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def host_secret(host_env, value: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=host_env.secret_arn,
                                                    SecretString=value)


def test_the_host_password_is_taken_from_an_rds_json_secret(from_qa, host_env):
    host_secret(host_env, '{"username": "app", "password": "json-host-password"}')
    run(from_qa, "database", database.restore_database)
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.ModifyDBInstance",
        lambda params, **kwargs: sent.append(dict(params)))
    run(from_qa, "db_credentials", database.align_credentials)
    assert [p["MasterUserPassword"] for p in sent] == ["json-host-password"]


@pytest.mark.parametrize("password", ['pa"ss', "pa/ss", "pa@ss", "pa ss"])
def test_a_host_password_rds_refuses_is_refused_naming_the_secret(from_qa, host_env, settings,
                                                                 password):
    host_secret(host_env, password)
    run(from_qa, "database", database.restore_database)
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.ModifyDBInstance",
        lambda params, **kwargs: sent.append(dict(params)))
    with pytest.raises(ExternalCallFailed) as raised:
        run(from_qa, "db_credentials", database.align_credentials)
    assert raised.value.code == "InvalidParameterValue"
    assert settings.DS_HOST_DB_PASSWORD_SECRET in raised.value.message
    assert "DS_HOST_DB_PASSWORD_SECRET" in raised.value.message
    assert password not in raised.value.message
    assert sent == []


def test_a_pool_takes_the_host_password_from_an_rds_json_secret(host_env, settings):
    host_secret(host_env, '{"username": "app", "password": "json-host-password"}')
    settings.DS_POOL_SIZES = {QA_DB: 1}
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.ModifyDBInstance",
        lambda params, **kwargs: sent.append(dict(params)))
    for _ in range(3):
        assert pool.refill_pools().errors == []
    assert [p["MasterUserPassword"] for p in sent] == ["json-host-password"]
    assert pool.PoolDatabase.objects.get().status == PoolStatus.READY


def test_a_pool_refuses_a_host_password_rds_refuses(host_env, settings):
    host_secret(host_env, "with space")
    settings.DS_POOL_SIZES = {QA_DB: 1}
    pool.refill_pools()
    errors = pool.refill_pools().errors
    assert len(errors) == 1 and settings.DS_HOST_DB_PASSWORD_SECRET in errors[0]
    assert "with space" not in errors[0]
    assert pool.PoolDatabase.objects.get().status == PoolStatus.RESTORING


@pytest.mark.parametrize(("value", "suffix"), [
    ('{"username": "app", "password": "qa-db-password"}', ":password::"),
    ("qa-db-password", ""),
])
def test_ecs_reads_a_source_secret_by_its_json_key(from_qa, settings, value, suffix):
    arn = boto3.client("secretsmanager").create_secret(Name="qa/db-password",
                                                       SecretString=value)["ARN"]
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/db-password"}
    value_from = run(from_qa, "web_task_definition", task_definitions.source_password_secret)
    assert value_from == arn + suffix
    definition = {"containerDefinitions": [{"name": "web", "image": "app:x",
                                            "secrets": [{"name": "DB_PASSWORD",
                                                         "valueFrom": "old"}]}]}
    task_definitions._give_secret(definition, "app:x", "DB_PASSWORD", value_from)
    assert definition["containerDefinitions"][0]["secrets"] == [
        {"name": "DB_PASSWORD", "valueFrom": arn + suffix}]


def test_an_unreadable_source_secret_fails_naming_it(from_qa, settings):
    boto3.client("secretsmanager").create_secret(Name="qa/db-password",
                                                 SecretString='{"user": "app"}')
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/db-password"}
    with pytest.raises(ExternalCallFailed, match="qa/db-password"):
        run(from_qa, "web_task_definition", task_definitions.source_password_secret)


# --- RDS's rules, as the sandbox keeps them -----------------------------------------------------

@pytest.fixture
def rules(aws):
    with rds_rules.applied():
        yield boto3.client("rds")


def make_instance(client, identifier: str, **extra) -> dict:
    return client.create_db_instance(**{
        "DBInstanceIdentifier": identifier, "Engine": "postgres", "EngineVersion": "16.3",
        "DBInstanceClass": "db.t3.micro", "MasterUsername": "app",
        "MasterUserPassword": "Valid-pass1", "AllocatedStorage": 20, **extra})["DBInstance"]


@pytest.mark.parametrize("password", ['pa"ss word', "pa/ssword", "pa@ssword", "pass word",
                                      "pässword1", "pass\tword"])
def test_rds_refuses_a_master_password_with_what_aws_refuses(rules, password):
    with pytest.raises(ClientError) as created:
        make_instance(rules, "db-a", MasterUserPassword=password)
    error = created.value.response["Error"]
    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == rds_rules.INVALID_PASSWORD_MESSAGE
    make_instance(rules, "db-b", MasterUserPassword="Printable-~!#$%^&*()1")
    with pytest.raises(ClientError, match="not a valid password"):
        rules.modify_db_instance(DBInstanceIdentifier="db-b", MasterUserPassword=password,
                                 ApplyImmediately=True)


def test_rds_restores_with_what_it_is_told_and_the_default_parameter_group(rules):
    rules.create_db_parameter_group(DBParameterGroupName="custom", Description="custom",
                                    DBParameterGroupFamily="postgres16")
    make_instance(rules, "source", DBParameterGroupName="custom", MultiAZ=True,
                  PubliclyAccessible=True, BackupRetentionPeriod=7, DeletionProtection=True)
    rules.create_db_snapshot(DBInstanceIdentifier="source", DBSnapshotIdentifier="snap")
    plain = rules.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="plain", DBSnapshotIdentifier="snap")["DBInstance"]
    assert parameter_group(plain) == "default.postgres16"
    assert (plain["DeletionProtection"], plain["BackupRetentionPeriod"]) == (False, 7)
    told = rules.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="told", DBSnapshotIdentifier="snap", DBParameterGroupName="custom",
        MultiAZ=False, PubliclyAccessible=False, BackupRetentionPeriod=0,
        DeletionProtection=False)["DBInstance"]
    assert parameter_group(told) == "custom"
    assert (told["MultiAZ"], told["PubliclyAccessible"], told["BackupRetentionPeriod"],
            told["DeletionProtection"]) == (False, False, 0, False)
    # Without backups RDS takes no automated snapshot of the new instance.
    snapshots = rules.describe_db_snapshots(SnapshotType="automated")["DBSnapshots"]
    assert "told" not in {s["DBInstanceIdentifier"] for s in snapshots}
    assert "plain" in {s["DBInstanceIdentifier"] for s in snapshots}


def test_rds_answers_its_instance_quota_and_keeps_to_it(rules, monkeypatch):
    def quota() -> dict:
        found = rules.describe_account_attributes()["AccountQuotas"]
        return next(q for q in found if q["AccountQuotaName"] == "DBInstances")

    assert (quota()["Used"], quota()["Max"]) == (0, 40)
    monkeypatch.setenv(rds_rules.QUOTA_VARIABLE, "2")
    make_instance(rules, "one")
    make_instance(rules, "two")
    assert (quota()["Used"], quota()["Max"]) == (2, 2)
    with pytest.raises(ClientError) as refused:
        make_instance(rules, "three")
    assert refused.value.response["Error"]["Code"] == "InstanceQuotaExceeded"
    rules.delete_db_instance(DBInstanceIdentifier="two", SkipFinalSnapshot=True)
    make_instance(rules, "three")


def test_a_bad_quota_setting_is_refused(monkeypatch):
    monkeypatch.setenv(rds_rules.QUOTA_VARIABLE, "many")
    with pytest.raises(ValueError, match=rds_rules.QUOTA_VARIABLE):
        rds_rules.instance_quota()


def test_rules_applied_for_a_block_leave_moto_as_it_was(aws):
    from moto.rds.models import RDSBackend
    from moto.rds.responses import RDSResponse

    restore = RDSBackend.restore_db_instance_from_db_snapshot
    with rds_rules.applied():
        boto3.client("rds").describe_account_attributes()
        assert RDSBackend.restore_db_instance_from_db_snapshot is not restore
    assert RDSBackend.restore_db_instance_from_db_snapshot is restore
    assert not hasattr(RDSResponse, "describe_account_attributes")
    with pytest.raises(NotImplementedError):
        boto3.client("rds").describe_account_attributes()


# --- the lowest botocore that pyproject.toml allows ---------------------------------------------

# Parameters we send that recent botocore releases added, with the first release that has each
# (checked against the published service models). A parameter botocore does not know is
# refused before the call is made, so the floor must be at least each of these.
LATE_PARAMETERS = {
    ("rds", "RestoreDBInstanceFromDBSnapshot", "BackupRetentionPeriod"): "1.42.46",
}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def floors() -> dict[str, str]:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    found = {}
    for requirement in dependencies:
        matched = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)(?:\s*,.*)?", requirement)
        if matched:
            found[matched.group(1).lower()] = matched.group(2)
    return found


def test_the_botocore_floor_has_every_late_parameter_we_send():
    found = floors()
    assert "botocore" in found, "botocore needs its own floor: boto3's allows older ones"
    assert version(found["boto3"]) >= version(found["botocore"]), (
        "boto3 X.Y.Z requires botocore X.Y.*: a lower boto3 floor would not hold the botocore one")
    for (service, operation, parameter), introduced in LATE_PARAMETERS.items():
        assert version(found["botocore"]) >= version(introduced), (
            f"{service} {operation} {parameter} needs botocore>={introduced}")


def test_the_late_parameters_are_ones_we_send(host_env):
    """The table is about what the restore really sends, in botocore's current model."""
    model = botocore.session.get_session().get_service_model("rds")
    sent: list[dict] = []
    base.client("rds").meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **kwargs: sent.append(dict(params)))
    rds.restore_from_snapshot(instance_id="ds-floor", snapshot_id=host_env.qa_snapshot,
                              instance_class="db.t3.micro",
                              like=rds.describe_instance(instance_id=QA_DB), tags={})
    restore = model.operation_model("RestoreDBInstanceFromDBSnapshot").input_shape.members
    assert set(sent[0]) <= set(restore)
    for service, operation, parameter in LATE_PARAMETERS:
        assert (service, operation) == ("rds", "RestoreDBInstanceFromDBSnapshot")
        assert parameter in sent[0]
