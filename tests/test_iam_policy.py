"""docs/iam-policy.json is the policy permissions.py builds, and names only real actions."""

import json
from pathlib import Path

import botocore.session

from provisioning import permissions

POLICY_FILE = Path(__file__).resolve().parent.parent / "docs" / "iam-policy.json"
# IAM prefix -> botocore service name, where they differ.
SERVICES = {"elasticloadbalancing": "elbv2", "tag": "resourcegroupstaggingapi",
            "cloudwatch": "cloudwatch"}
# Permission-only actions: no API operation of that name.
NOT_OPERATIONS = {"iam:PassRole"}


def test_the_policy_file_is_the_generated_policy():
    assert POLICY_FILE.read_text() == permissions.policy_json(), (
        "regenerate it: python manage.py ds policy > docs/iam-policy.json")


def test_every_action_is_an_operation_of_its_service():
    session = botocore.session.get_session()
    for action in sorted(permissions.engine_actions() | set(permissions.DIAGNOSTIC_ACTIONS)):
        if action in NOT_OPERATIONS:
            continue
        prefix, name = action.split(":")
        model = session.get_service_model(SERVICES.get(prefix, prefix))
        assert name in model.operation_names, f"{action} is not an operation of {prefix}"


def test_pass_role_only_to_ecs_tasks():
    statement = next(s for s in permissions.policy_document()["Statement"]
                     if "iam:PassRole" in s["Action"])
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_changes_and_deletes_are_limited_to_our_tagged_resources():
    document = permissions.policy_document()
    for statement in document["Statement"]:
        changing = [a for a in statement["Action"]
                    if a.split(":")[1].startswith(("Delete", "Update", "Modify"))
                    and a not in {"ecs:DeleteTaskDefinitions", "secretsmanager:DeleteSecret"}]
        if changing:
            assert statement["Condition"]["StringEquals"] == {
                "aws:ResourceTag/managed-by": "dynamic-stagings"}, statement["Sid"]
    json.dumps(document)  # serialisable as it is written
