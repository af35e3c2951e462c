"""Shared fixtures.

* ``alice`` owns stagings, ``bob`` is a colleague, ``admin`` is staff.
* ``aws``: moto's in-process ``mock_aws`` with fake credentials in us-east-1 and no
  ``AWS_ENDPOINT_URL``, our cached boto3 clients reset on the way in and out, and the sandbox's
  RegisterTaskDefinition rules (what ECS refuses) installed as in the sandbox.
* ``host_env``: ``aws`` seeded with a small host environment (VPC, ALB listener, ECS cluster with
  web and worker services, ECR images, RDS sources with snapshots, the host DB password secret)
  and the DS_* settings pointed at it (no account API, 0.01 s polling, ECS tasks reported as
  running). Returns a ``HostEnv`` with the ids tests need. Its RDS keeps AWS's rules where
  moto does not (``provisioning.sandbox.rds_rules``): restores take what they are told, a
  master password with ``"/@`` or a space is refused, the DBInstances quota is answered.
* ``push_image(tag, layer=...)`` pushes another image to the app repository (a new ``layer``
  gives a new digest under the same tag).
* ``tasks_keep_running``: moto's ECS tasks stay RUNNING however often they are described.
* ``aws_secret_rules``: the sandbox's Secrets Manager rules (deleted names not free at once).
* ``cli_user``: the ``ds`` command acts as alice.

Helpers live in modules of their own, never in a test module: factories.py (rows, step
contexts, hand-made AWS resources), running.py (operations run in this process), footprint.py
(what moto holds for a staging), faults.py (failures injected at our AWS wrappers),
command_line.py (``ds`` as a script runs it), inline_code.py, present.py and stack.py (the
sandbox in other processes), browser/chromium.py.
"""

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from unittest import mock

import boto3
import botocore.session
import pytest
from moto import mock_aws

from provisioning.aws import base
from provisioning.sandbox import delays, ecs_rules, rds_rules, secrets_rules

REGION = "us-east-1"
CLUSTER = "host-staging"
WEB_SERVICE = "host-web"
WORKER_SERVICE = "host-worker"
DOMAIN = "dynamic.test"
HOST_DB = "host-db"
QA_DB = "qa-db"
DB_PARAMETER_GROUP = "host-staging-pg16"
REPOSITORY = "app"
WEB_PORT = 8000
# Tags pushed to the app repository at seeding time, one image each.
SEEDED_TAGS = ("main", "feature-Login_Page", "release-1.2")
SIDECAR_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
# A branch whose image is seeded (tag feature-Login_Page).
BRANCH = "feature/Login_Page"


@pytest.fixture(autouse=True)
def _in_process_runs_go_on_through_waits(settings):
    """A test that runs an operation in-process waits for it: each wait still parks the step
    and the operation, and the same call resumes it when due (in production the worker is
    given back instead, and the queue brings the operation back)."""
    settings.DS_HOLD_WORKER_SECONDS = 60


@pytest.fixture
def fast_password_hashing(settings):
    """Django's default hasher takes a noticeable part of a second per password by design."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(django_user_model, fast_password_hashing):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def bob(django_user_model, fast_password_hashing):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def admin(django_user_model, fast_password_hashing):
    return django_user_model.objects.create_user(
        "admin", "admin@example.com", "admin-password", is_staff=True, is_superuser=True
    )


@pytest.fixture(scope="session")
def _shared_botocore_loader():
    """One loader for every boto3 session the tests make: parsing the service models again for
    each new session (moto resets boto3's default one, our wrapper makes its own) costs about
    half a second per test."""
    loaders: dict = {}
    original = botocore.session.create_loader

    def shared(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    with mock.patch("botocore.session.create_loader", shared):
        yield


@pytest.fixture
def aws(monkeypatch, _shared_botocore_loader):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # not needed, slow to load
    for key, value in {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    base.reset_clients()
    ecs_rules.install()
    with mock_aws():
        yield
    base.reset_clients()


def push_image(tag: str, *, repository: str = REPOSITORY, layer: str = "") -> str:
    """Push a (fake) image under ``tag``; a different ``layer`` makes a different digest."""
    content = hashlib.sha256((layer or tag).encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": f"sha256:{content}",
        },
        # moto derives the image digest from the layer digests.
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 1024,
            "digest": f"sha256:{content}",
        }],
    }
    raw = boto3.client("ecr").put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
    )
    return raw["image"]["imageId"]["imageDigest"]


@dataclass(frozen=True)
class HostEnv:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    load_balancer_arn: str
    listener_arn: str
    host_target_group_arn: str
    registry: str
    web_task_definition_arn: str
    worker_task_definition_arn: str
    secret_arn: str
    host_snapshot: str
    qa_snapshot: str

    def image(self, tag: str) -> str:
        return f"{self.registry}/{REPOSITORY}:{tag}"


def _task_definition(family: str, image: str, secret_arn: str, *, web: bool) -> dict:
    app = {
        "name": "web" if web else "worker",
        "image": image,
        "essential": True,
        # As real hosts do: the app sized inside the task, room left for the log router.
        "cpu": 768,
        "memory": 1536,
        "memoryReservation": 1024,
        "logConfiguration": {"logDriver": "awsfirelens", "options": {
            "Name": "cloudwatch_logs", "region": REGION, "log_group_name": f"/ecs/{CLUSTER}",
            "log_stream_prefix": "web" if web else "worker"}},
        "environment": [
            {"name": "RAILS_ENV", "value": "staging"},
            {"name": "DB_INSTANCE_ID", "value": HOST_DB},
        ],
        "secrets": [{"name": "DATABASE_PASSWORD", "valueFrom": secret_arn}],
    }
    if web:
        app["portMappings"] = [{"containerPort": WEB_PORT, "protocol": "tcp"}]
    else:
        app["command"] = ["bundle", "exec", "sidekiq"]
    sidecar = {
        "name": "log-router",
        "image": SIDECAR_IMAGE,
        "essential": False,
        "cpu": 64,
        "memory": 128,
        "firelensConfiguration": {"type": "fluentbit"},
        "environment": [{"name": "FLB_LOG_LEVEL", "value": "info"}],
    }
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "1024",
        "memory": "2048",
        "executionRoleArn": "arn:aws:iam::123456789012:role/host-staging-execution",
        "taskRoleArn": "arn:aws:iam::123456789012:role/host-staging-task",
        "containerDefinitions": [app, sidecar],
    }


def seed_host_environment() -> HostEnv:
    ec2 = boto3.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.40.{i}.0/24",
                          AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    )
    sg_id = ec2.create_security_group(
        GroupName="host-staging", Description="host staging", VpcId=vpc_id
    )["GroupId"]

    elbv2 = boto3.client("elbv2")
    lb_arn = elbv2.create_load_balancer(
        Name="dynamic-stagings", Subnets=list(subnet_ids), SecurityGroups=[sg_id],
        Scheme="internet-facing", Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]
    host_tg_arn = elbv2.create_target_group(
        Name="host-web", Protocol="HTTP", Port=WEB_PORT, VpcId=vpc_id, TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no staging"}}],
    )["Listeners"][0]["ListenerArn"]

    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="host-staging/db-password", SecretString="host-password"
    )["ARN"]

    ecr = boto3.client("ecr")
    repo_uri = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
    registry = repo_uri.split("/", 1)[0]
    for tag in SEEDED_TAGS:
        push_image(tag)

    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    web_td = ecs.register_task_definition(
        **_task_definition("host-web", f"{repo_uri}:main", secret_arn, web=True)
    )["taskDefinition"]["taskDefinitionArn"]
    worker_td = ecs.register_task_definition(
        **_task_definition("host-worker", f"{repo_uri}:main", secret_arn, web=False)
    )["taskDefinition"]["taskDefinitionArn"]
    network = {"awsvpcConfiguration": {
        "subnets": list(subnet_ids), "securityGroups": [sg_id], "assignPublicIp": "DISABLED"}}
    ecs.create_service(
        cluster=CLUSTER, serviceName=WEB_SERVICE, taskDefinition=web_td, desiredCount=1,
        launchType="FARGATE", networkConfiguration=network,
        loadBalancers=[{"targetGroupArn": host_tg_arn, "containerName": "web",
                        "containerPort": WEB_PORT}],
    )
    ecs.create_service(
        cluster=CLUSTER, serviceName=WORKER_SERVICE, taskDefinition=worker_td, desiredCount=1,
        launchType="FARGATE", networkConfiguration=network,
    )

    rds = boto3.client("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="host-staging", DBSubnetGroupDescription="host staging",
        SubnetIds=list(subnet_ids),
    )
    # The sources' own parameter group: the app needs its settings (see test_restore_like_source).
    rds.create_db_parameter_group(
        DBParameterGroupName=DB_PARAMETER_GROUP, DBParameterGroupFamily="postgres16",
        Description="host staging databases",
    )
    rds.modify_db_parameter_group(DBParameterGroupName=DB_PARAMETER_GROUP, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "pending-reboot"},
    ])
    snapshots = {}
    for instance in (HOST_DB, QA_DB):
        rds.create_db_instance(
            DBInstanceIdentifier=instance, Engine="postgres", EngineVersion="16.3",
            DBInstanceClass="db.t3.medium", MasterUsername="app",
            MasterUserPassword=f"{instance}-password", AllocatedStorage=20, StorageType="gp3",
            DBSubnetGroupName="host-staging", VpcSecurityGroupIds=[sg_id],
            DBParameterGroupName=DB_PARAMETER_GROUP, BackupRetentionPeriod=7,
            DeletionProtection=instance == HOST_DB,
        )
        snapshot = f"{instance}-{datetime.now(UTC):%Y-%m-%d-%H-%M}"
        rds.create_db_snapshot(DBInstanceIdentifier=instance, DBSnapshotIdentifier=snapshot)
        snapshots[instance] = snapshot

    return HostEnv(
        vpc_id=vpc_id, subnet_ids=subnet_ids, security_group_id=sg_id,
        load_balancer_arn=lb_arn, listener_arn=listener_arn, host_target_group_arn=host_tg_arn,
        registry=registry, web_task_definition_arn=web_td, worker_task_definition_arn=worker_td,
        secret_arn=secret_arn, host_snapshot=snapshots[HOST_DB], qa_snapshot=snapshots[QA_DB],
    )


@pytest.fixture
def host_env(aws, settings, monkeypatch) -> Iterator[HostEnv]:
    # moto reads this when a service is created or updated: its tasks then count as running.
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    # RDS as AWS behaves where moto does not (restore settings, passwords, the quota).
    with rds_rules.applied():
        yield _configured_host(settings)


def _configured_host(settings) -> HostEnv:
    env = seed_host_environment()
    settings.DS_CLUSTER = CLUSTER
    settings.DS_WEB_SERVICE = WEB_SERVICE
    settings.DS_WORKER_SERVICE = WORKER_SERVICE
    settings.DS_LISTENER_ARN = env.listener_arn
    settings.DS_DOMAIN = DOMAIN
    settings.DS_URL_SCHEME = "https"
    settings.DS_HOST_DB_INSTANCE = HOST_DB
    settings.DS_SNAPSHOT_SOURCES = [HOST_DB, QA_DB]
    settings.DS_HOST_DB_PASSWORD_SECRET = env.secret_arn
    settings.DS_ACCOUNT_API_URL = ""
    settings.DS_ACCOUNT_API_TOKEN = ""
    settings.DS_POLL_SECONDS = 0.01
    settings.DS_DB_WAIT_SECONDS = 5
    settings.DS_SERVICE_WAIT_SECONDS = 5
    return env


@pytest.fixture(autouse=True)
def _empty_cache():
    """The create page keeps what it read from AWS for a minute; one test's AWS is not the
    next one's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def tasks_keep_running():
    """moto moves a task one state towards STOPPED each time it is described; AWS does not."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**6})
    yield
    state_manager.unset_transition("ecs::task")


@pytest.fixture
def aws_secret_rules(monkeypatch):
    """The sandbox's Secrets Manager rules on the in-process moto, for this test only."""
    from moto.secretsmanager.models import SecretsManagerBackend

    for name, make_wrapper in secrets_rules.PATCHES.items():
        original = getattr(SecretsManagerBackend, name)
        monkeypatch.setattr(SecretsManagerBackend, name,
                            functools.wraps(original)(make_wrapper(original)))
    monkeypatch.setitem(delays._settings, "scale", 0.01)  # names free after 0.3 s


@pytest.fixture
def cli_user(monkeypatch):
    """The user the ``ds`` command acts as."""
    monkeypatch.setenv("DS_USER", "alice")


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The operations handed to the queue, by id in order. No queue runs them: a test runs
    what it means to itself. A module whose every test needs it says so once:
    ``pytestmark = pytest.mark.usefixtures("enqueued")``."""
    calls: list[int] = []
    monkeypatch.setattr("provisioning.tasks.enqueue_operation", calls.append)
    return calls
