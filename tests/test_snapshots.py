"""Which snapshot a dedicated database is restored from: the newest *available* one."""

from datetime import UTC, datetime, timedelta

import boto3

from provisioning.aws import rds
from provisioning.config import load_config
from provisioning.operations import list_sources, source_info
from tests.conftest import QA_DB, SNAPSHOT_SOURCES

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def snapshot(identifier: str, hours: int, status: str = "available") -> rds.Snapshot:
    return rds.Snapshot(identifier=identifier, instance_id="qa-db",
                        created_at=T0 + timedelta(hours=hours), status=status, kind="manual")


def test_picks_the_newest():
    snapshots = [snapshot("old", 0), snapshot("newest", 48), snapshot("middle", 24)]
    assert rds.newest_available_snapshot(snapshots).identifier == "newest"


def test_skips_snapshots_that_are_not_available():
    snapshots = [
        snapshot("old", 0),
        snapshot("being-taken", 72, status="creating"),
        snapshot("broken", 60, status="failed"),
        snapshot("copying", 50, status="copying"),
        snapshot("usable", 24),
    ]
    assert rds.newest_available_snapshot(snapshots).identifier == "usable"


def test_none_when_nothing_is_available():
    assert rds.newest_available_snapshot([]) is None
    assert rds.newest_available_snapshot([snapshot("x", 1, status="creating")]) is None


def test_manual_and_automated_snapshots_compete_on_age():
    automated = rds.Snapshot("rds:qa-db-2025-03-03", "qa-db", T0 + timedelta(days=2),
                             "available", "automated")
    manual = rds.Snapshot("qa-db-before-migration", "qa-db", T0 + timedelta(days=1),
                          "available", "manual")
    assert rds.newest_available_snapshot([manual, automated]) is automated


def test_against_rds_the_newest_snapshot_of_the_source_is_chosen(aws):
    client = boto3.client("rds")
    for instance in ("qa-db", "other-db"):
        client.create_db_instance(
            DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername="app", MasterUserPassword="password", AllocatedStorage=20,
        )
    for identifier in ("qa-db-monday", "qa-db-tuesday", "qa-db-wednesday"):
        client.create_db_snapshot(DBInstanceIdentifier="qa-db", DBSnapshotIdentifier=identifier)
    client.create_db_snapshot(DBInstanceIdentifier="other-db",
                              DBSnapshotIdentifier="other-db-thursday")

    snapshots = rds.list_snapshots(instance_id="qa-db")
    assert {"qa-db-monday", "qa-db-tuesday", "qa-db-wednesday"} <= {
        s.identifier for s in snapshots}
    assert all(s.instance_id == "qa-db" for s in snapshots)
    assert all(s.created_at.tzinfo is not None for s in snapshots)
    assert rds.newest_available_snapshot(snapshots).identifier == "qa-db-wednesday"


def test_source_info_for_the_host_and_another_source(host_env):
    config = load_config()
    host = source_info(config, "host-db")
    assert host.is_host and host.newest_snapshot.identifier == host_env.host_snapshot
    assert host.snapshot_taken_at == host.newest_snapshot.created_at
    qa = source_info(config, QA_DB)
    assert not qa.is_host and qa.newest_snapshot.identifier == host_env.qa_snapshot
    assert [s.instance_id for s in list_sources()] == list(SNAPSHOT_SOURCES)


def test_a_source_without_snapshots(aws, settings):
    settings.DS_SNAPSHOT_SOURCES = ["lonely-db"]
    settings.DS_HOST_DB_INSTANCE = "host-db"
    info = source_info(load_config(), "lonely-db")
    assert info.newest_snapshot is None and info.snapshot_taken_at is None
