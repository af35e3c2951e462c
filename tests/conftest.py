"""Shared fixtures.

* ``alice`` owns stagings, ``bob`` is a colleague, ``admin`` is staff.
* ``aws``: moto's in-process ``mock_aws`` with fake credentials in us-east-1 and no
  ``AWS_ENDPOINT_URL``, our cached boto3 clients reset on the way in and out, and the sandbox's
  RegisterTaskDefinition rules (what ECS refuses) installed as in the sandbox.
* ``host_env``: ``aws`` seeded with the sandbox's own host environment, by the sandbox's own
  code (provisioning/sandbox/seed.py: VPC, ALB listener, ECS cluster with web and worker
  services, ECR images, RDS sources with aged snapshots, the host DB password secret), and the
  DS_* settings the sandbox would write for it, plus the tests' own knobs (no account API,
  0.01 s polling, ECS tasks reported as running). Returns a ``HostEnv`` with the ids tests
  need. Its RDS keeps AWS's rules where moto does not (``provisioning.sandbox.rds_rules``):
  restores take what they are told, a master password with ``"/@`` or a space is refused, the
  DBInstances quota is answered.
* ``push_image(tag, layer=...)`` pushes another image to the app repository (a new ``layer``
  gives a new digest under the same tag).
* ``tasks_keep_running``: moto's ECS tasks stay RUNNING however often they are described.
* ``aws_secret_rules``: the sandbox's Secrets Manager rules (deleted names not free at once).
* ``cli_user``: the ``ds`` command acts as alice.
* ``enqueued``: the operations handed to the queue, new or resumed; nothing runs them.
* ``run_at_once``: the queue runs each operation as soon as it is committed, in this process
  (and ``ds --wait`` looks every 0.01 s).
* ``aws_region``: AWS_REGION set for pages that price or link without the ``aws`` fixture.

Helpers live in modules of their own, never in a test module: factories.py (rows, step
contexts, hand-made AWS resources), running.py (operations run in this process), footprint.py
(what moto holds for a staging), faults.py (failures injected at our AWS wrappers),
command_line.py (``ds`` as a script runs it), pages.py (pages through the test client),
inline_code.py, present.py and stack.py (the sandbox in other processes), browser/chromium.py.
"""

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from unittest import mock

import boto3
import botocore.session
import pytest
from moto import mock_aws

from provisioning.aws import base
from provisioning.sandbox import delays, ecs_rules, rds_rules, secrets_rules, seed

# What the seed names (tests import these from here).
REGION = "us-east-1"
CLUSTER = seed.CLUSTER
WEB_SERVICE = seed.WEB_SERVICE
WORKER_SERVICE = seed.WORKER_SERVICE
WEB_FAMILY = seed.WEB_FAMILY
DOMAIN = seed.DOMAIN
HOST_DB = seed.HOST_DB
# A snapshot source other than the host: its newest snapshot is hours old, a newer one is still
# being taken (a restore must not take it).
QA_DB = "staging-marketing-db"
SNAPSHOT_SOURCES = (HOST_DB, *seed.OTHER_DBS)
DB_PARAMETER_GROUP = seed.PARAMETER_GROUP
REPOSITORY = seed.REPOSITORY
WEB_PORT = seed.APP_PORT
# Tags pushed to the app repository at seeding time, one image each.
SEEDED_TAGS = tuple(seed.IMAGE_AGES_HOURS)
# A branch whose image is seeded (tag feature-Login_Page), and a tag of another seeded image.
BRANCH = "feature/Login_Page"
RELEASE_TAG = "release-2026.11"


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
    raw = boto3.client("ecr").put_image(
        repositoryName=repository, imageManifest=seed.manifest(tag, layer), imageTag=tag
    )
    return raw["image"]["imageId"]["imageDigest"]


@dataclass(frozen=True)
class HostEnv:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str  # the ALB's and the app's
    db_security_group_id: str
    load_balancer_arn: str
    listener_arn: str
    host_target_group_arn: str
    registry: str
    web_task_definition_arn: str
    worker_task_definition_arn: str
    secret_arn: str
    host_db_password: str
    host_snapshot: str  # the newest a restore of the host's database may take
    qa_snapshot: str

    @classmethod
    def of(cls, made: dict) -> "HostEnv":
        """From what the seeder made (``seed.Seeder.made``)."""
        return cls(
            vpc_id=made["vpc"], subnet_ids=tuple(made["subnets"]),
            security_group_id=made["app_sg"], db_security_group_id=made["db_sg"],
            load_balancer_arn=made["dynamic_alb"], listener_arn=made["listener"],
            host_target_group_arn=made["host_target_group"],
            registry=made["image"].split("/", 1)[0],
            web_task_definition_arn=made["web_task_definition"],
            worker_task_definition_arn=made["worker_task_definition"],
            secret_arn=made["password_secret"], host_db_password=made["host_db_password"],
            host_snapshot=made["newest_snapshots"][HOST_DB],
            qa_snapshot=made["newest_snapshots"][QA_DB],
        )

    def image(self, tag: str) -> str:
        return f"{self.registry}/{REPOSITORY}:{tag}"


@pytest.fixture
def host_env(aws, settings, monkeypatch) -> Iterator[HostEnv]:
    # moto reads this when a service is created or updated: its tasks then count as running.
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    # RDS as AWS behaves where moto does not (restore settings, passwords, the quota).
    with rds_rules.applied():
        yield _configured_host(settings)


def _configured_host(settings) -> HostEnv:
    seeder = seed.seeded(None, REGION)
    # The DS_* variables the sandbox writes to env.json for this host, as settings.py reads them.
    for name, value in seeder.environment().items():
        setattr(settings, name, value.split(",") if name == "DS_SNAPSHOT_SOURCES" else value)
    # The tests' own.
    settings.DS_ACCOUNT_API_URL = ""
    settings.DS_ACCOUNT_API_TOKEN = ""
    settings.DS_POLL_SECONDS = 0.01
    settings.DS_DB_WAIT_SECONDS = 5
    settings.DS_SERVICE_WAIT_SECONDS = 5
    return HostEnv.of(seeder.made)


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
    monkeypatch.setattr("provisioning.tasks.enqueue_resume", calls.append)
    return calls


@pytest.fixture
def run_at_once(monkeypatch):
    """The queue runs each operation as soon as it is committed, in this process."""
    from provisioning.runner import run_operation

    monkeypatch.setattr("provisioning.tasks.enqueue_operation", run_operation)
    monkeypatch.setattr("provisioning.tasks.enqueue_resume", run_operation)
    monkeypatch.setattr("provisioning.management.commands.ds.WAIT_POLL_SECONDS", 0.01)


@pytest.fixture
def aws_region(monkeypatch):
    """The region the fleet's prices and the console links are for, where no ``aws`` fixture
    sets one."""
    monkeypatch.setenv("AWS_REGION", REGION)
