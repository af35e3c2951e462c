"""The app's images may live in another account's ECR registry: the registry id comes from the
image URI, and an image outside ECR is refused with a sentence."""

import boto3
import pytest

from provisioning.aws import ecr
from provisioning.aws.base import AwsError
from provisioning.config import load_config
from provisioning.errors import UserError
from provisioning.steps.image import resolve_image
from tests.conftest import CLUSTER, WEB_FAMILY, WEB_SERVICE
from tests.factories import stubbed_client

OTHER_ACCOUNT = "210987654321"


@pytest.mark.parametrize(("uri", "registry_id"), [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:main", "123456789012"),
    (f"{OTHER_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/app:feature-x", OTHER_ACCOUNT),
    (f"{OTHER_ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app", OTHER_ACCOUNT),
    (f"{OTHER_ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1", OTHER_ACCOUNT),
    ("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", None),
    ("ghcr.io/acme/app:main", None),
    ("registry:5000/team/app", None),
    ("nginx", None),
    ("12345.dkr.ecr.us-east-1.amazonaws.com/app:main", None),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/app:main", None),
])
def test_the_registry_id_is_the_account_in_an_ecr_uri(uri, registry_id):
    assert ecr.ImageReference.parse(uri).registry_id == registry_id


@pytest.fixture
def stubbed_ecr(monkeypatch):
    with stubbed_client(monkeypatch, ecr, "ecr") as stubber:
        yield stubber


def test_find_image_asks_the_registry_of_the_uri(stubbed_ecr):
    digest = "sha256:" + "ab" * 32
    stubbed_ecr.add_response(
        "describe_images",
        {"imageDetails": [{"registryId": OTHER_ACCOUNT, "repositoryName": "app",
                           "imageDigest": digest, "imageTags": ["main"]}]},
        {"registryId": OTHER_ACCOUNT, "repositoryName": "app", "imageIds": [{"imageTag": "main"}]},
    )
    found = ecr.find_image(registry_id=OTHER_ACCOUNT, repository="app", tag="main")
    assert found.digest == digest


def test_list_image_tags_asks_the_registry_of_the_uri(stubbed_ecr):
    stubbed_ecr.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": "sha256:" + "cd" * 32, "imageTags": ["develop"]}]},
        {"registryId": OTHER_ACCOUNT, "repositoryName": "app",
         "filter": {"tagStatus": "TAGGED"}},
    )
    tags = ecr.list_image_tags(registry_id=OTHER_ACCOUNT, repository="app")
    assert [t.tag for t in tags] == ["develop"]


def test_an_image_in_our_own_registry_is_found(host_env):
    account = host_env.registry.split(".", 1)[0]
    assert ecr.find_image(registry_id=account, repository="app", tag="main") is not None
    assert "main" in {t.tag for t in ecr.list_image_tags(registry_id=account, repository="app")}


def test_another_registry_is_asked_not_ours(host_env):
    # moto keeps one registry per account: the repository exists only in ours, so a call that
    # names the other account's registry cannot find it.
    with pytest.raises(AwsError) as refused:
        ecr.find_image(registry_id=OTHER_ACCOUNT, repository="app", tag="main")
    assert refused.value.code == "RepositoryNotFoundException"
    assert OTHER_ACCOUNT in refused.value.message


def _host_web_runs(image: str) -> None:
    ecs = boto3.client("ecs")
    current = ecs.describe_task_definition(taskDefinition=WEB_FAMILY)["taskDefinition"]
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu",
            "memory", "executionRoleArn", "taskRoleArn")
    definition = {k: current[k] for k in keep}
    definition["containerDefinitions"][0]["image"] = image
    arn = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=WEB_SERVICE, taskDefinition=arn)


def test_a_host_image_outside_ecr_is_a_user_error(host_env):
    _host_web_runs("ghcr.io/acme/app:main")
    with pytest.raises(UserError) as refused:
        resolve_image(load_config(), branch="main")
    assert "ghcr.io/acme/app" in refused.value.message
    assert "Amazon ECR" in refused.value.message


def test_a_host_image_in_another_account_is_looked_up_there(host_env):
    _host_web_runs(f"{OTHER_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app:main")
    with pytest.raises(AwsError) as refused:
        resolve_image(load_config(), branch="main")
    assert refused.value.code == "RepositoryNotFoundException"
    assert OTHER_ACCOUNT in refused.value.message


def test_the_branch_image_resolves_in_our_registry(host_env):
    image = resolve_image(load_config(), branch="feature/Login_Page")
    assert image.uri.startswith(f"{host_env.registry}/app@sha256:")
