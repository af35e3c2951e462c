"""Every IAM action the dashboard's role needs, in one place, and the policy built from them.

This list is the source: ``docs/iam-policy.json`` is generated from it (``python manage.py ds
policy``), ``ds doctor`` simulates these actions, and the test suite records every AWS call the
engine makes (``DS_AWS_ACTION_LOG``, see aws/base.py) and fails when one is missing here.

Each statement narrows what AWS lets us narrow: creates must carry our ``managed-by`` tag
(``aws:RequestTag``), changes and deletes are limited to resources that carry it
(``aws:ResourceTag``), the login secrets to their name prefix, ``iam:PassRole`` to ECS tasks.
Describe and list calls, and the few actions that support no resource-level permission
(DeregisterTaskDefinition, DeleteTaskDefinitions), stay on ``*``.
"""

import json
from dataclasses import dataclass, field

from .names import MANAGED_BY_KEY, MANAGED_BY_VALUE

LOGIN_SECRET_PREFIX = "dynamic-stagings/"


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resource: str = "*"
    condition: dict = field(default_factory=dict)


def _request_tagged() -> dict:
    return {"StringEquals": {f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}


def _resource_tagged() -> dict:
    return {"StringEquals": {f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}


STATEMENTS: tuple[Statement, ...] = (
    Statement("ReadTheHostAndTheStagings", (
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:ListTaskDefinitions",
        "ecs:ListAccountSettings",
        "ecr:DescribeImages",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetHealth",
        "rds:DescribeAccountAttributes",
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshots",
        "secretsmanager:DescribeSecret",
        "tag:GetResources",
    )),
    # Actions ECS authorises on no particular resource.
    Statement("RetireTaskDefinitions", (
        "ecs:DeregisterTaskDefinition",
        "ecs:DeleteTaskDefinitions",
    )),
    Statement("CreateTaggedResources", (
        "ecs:CreateService",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:AddTags",
        "secretsmanager:CreateSecret",
        "secretsmanager:TagResource",
    ), condition=_request_tagged()),
    Statement("ChangeOnlyOurResources", (
        "ecs:UpdateService",
        "ecs:DeleteService",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DeleteRule",
        "rds:ModifyDBInstance",
        "rds:DeleteDBInstance",
    ), condition=_resource_tagged()),
    # A restore is authorised on the snapshot, subnet group, parameter and option groups too,
    # none of which carry our tags; the new instance is tagged in the same call.
    Statement("RestoreStagingDatabases", (
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:AddTagsToResource",
    )),
    Statement("KeepLoginSecrets", (
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:RestoreSecret",
        "secretsmanager:DeleteSecret",
    ), resource=f"arn:aws:secretsmanager:*:*:secret:{LOGIN_SECRET_PREFIX}*"),
    # The host's DB password secrets (DS_HOST_DB_PASSWORD_SECRET, DS_SOURCE_DB_SECRETS): narrow
    # this to their ARNs when applying the policy.
    Statement("ReadDatabasePasswordSecrets", ("secretsmanager:GetSecretValue",)),
    Statement("PassTheClonedTaskRoles", ("iam:PassRole",), condition={
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
)

# What ``ds doctor`` may use to check the policy; not needed for any operation.
DIAGNOSTIC_ACTIONS = (
    "ecs:DescribeClusters",
    "iam:GetRole",
    "iam:SimulatePrincipalPolicy",
    "sts:GetCallerIdentity",
)


def engine_actions() -> frozenset[str]:
    """Every action some statement allows."""
    return frozenset(action for statement in STATEMENTS for action in statement.actions)


def policy_document() -> dict:
    statements = []
    for statement in STATEMENTS:
        entry = {"Sid": statement.sid, "Effect": "Allow", "Action": sorted(statement.actions),
                 "Resource": statement.resource}
        if statement.condition:
            entry["Condition"] = statement.condition
        statements.append(entry)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json() -> str:
    return json.dumps(policy_document(), indent=2) + "\n"
