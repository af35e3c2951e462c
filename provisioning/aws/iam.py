"""IAM: whether a principal's policies allow the actions the engine needs (ds doctor only).

IAM: iam:SimulatePrincipalPolicy, iam:GetRole.
"""

from dataclasses import dataclass

from botocore.exceptions import ClientError

from .base import client, error_code, translated_errors


@dataclass(frozen=True)
class Evaluation:
    action: str
    resource: str
    decision: str  # "allowed", "explicitDeny" or "implicitDeny"

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def role_arn(*, name: str) -> str | None:
    """The role's full ARN, path included (an assumed-role ARN leaves the path out); None when
    there is no such role."""
    with translated_errors("iam:GetRole"):
        try:
            return client("iam").get_role(RoleName=name)["Role"]["Arn"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise


def simulate_principal_policy(
    *,
    principal_arn: str,
    actions: list[str],
    resource_arns: list[str] | None = None,
    context: dict[str, str] | None = None,
) -> list[Evaluation]:
    """How the principal's identity policies decide each action (on each resource, or on "*"),
    given the condition keys in ``context``."""
    kwargs: dict = {"PolicySourceArn": principal_arn, "ActionNames": actions}
    if resource_arns:
        kwargs["ResourceArns"] = resource_arns
    if context:
        kwargs["ContextEntries"] = [
            {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
            for key, value in context.items()
        ]
    evaluations: list[Evaluation] = []
    with translated_errors("iam:SimulatePrincipalPolicy"):
        for page in client("iam").get_paginator("simulate_principal_policy").paginate(**kwargs):
            evaluations.extend(
                Evaluation(
                    action=raw["EvalActionName"],
                    resource=raw.get("EvalResourceName", "*"),
                    decision=raw["EvalDecision"],
                )
                for raw in page["EvaluationResults"]
            )
    return evaluations
