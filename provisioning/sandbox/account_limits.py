"""What AWS tells about the account, which moto leaves out, as ``ds doctor`` asks for it.

* ECS ``ListAccountSettings`` with ``effectiveSettings``: AWS answers every setting, the
  caller's own or else the account's default (the long ARN formats are ``enabled`` by default
  since 2021); moto answers only settings someone put.
* RDS ``DescribeAccountAttributes`` is answered by rds_rules, which also enforces the quota.
* IAM ``SimulatePrincipalPolicy``: a principal IAM does not know is ``NoSuchEntity``, as on AWS;
  a known user or role has its inline and attached policies (a user's groups' too) evaluated
  for each action and resource with the given condition keys: an explicit Deny wins, else an
  Allow, else ``implicitDeny``. Only ``StringEquals``/``StringLike`` conditions are understood;
  any other operator does not match, so the sandbox errs towards "denied". Moto does not
  implement the call.

``install`` runs in the sandbox's moto server process (from ``delays.install``), before it
serves.
"""

import fnmatch
import json
import re

_ECS_DEFAULTS = {
    "serviceLongArnFormat": "enabled",
    "taskLongArnFormat": "enabled",
    "containerInstanceLongArnFormat": "enabled",
    "awsvpcTrunking": "disabled",
    "containerInsights": "disabled",
    "dualStackIPv6": "disabled",
}

_installed = {"done": False}


# --- ECS ---------------------------------------------------------------------------------------

def _effective_settings(original):
    def list_account_settings(self):
        if not self._get_param("effectiveSettings"):
            return original(self)
        from moto.core.responses import ActionResult

        name, value = self._get_param("name"), self._get_param("value")
        put = {s.name: s.value for s in self.ecs_backend.list_account_settings()}
        root = f"arn:aws:iam::{self.current_account}:root"
        settings = [
            {"name": setting, "value": put.get(setting, default), "principalArn": root}
            for setting, default in _ECS_DEFAULTS.items()
        ]
        return ActionResult({"settings": [
            s for s in settings
            if (not name or s["name"] == name) and (not value or s["value"] == value)
        ]})

    return list_account_settings


# --- IAM ---------------------------------------------------------------------------------------

def _documents(backend, source_arn: str) -> list[dict]:
    """The identity policies of the user or role ``source_arn`` names; NoSuchEntity if none."""
    from moto.iam.access_control import IAMPolicy
    from moto.iam.exceptions import NotFoundException

    resource = source_arn.split(":", 5)[-1]
    kind, _, path_and_name = resource.partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    raw: list = []
    if kind == "role":
        if not any(role.name == name for role in backend.roles.values()):
            raise NotFoundException(f"The role with name {name} cannot be found.")
        raw += [doc for _, doc in (backend.get_role_policy(name, policy)
                                   for policy in backend.list_role_policies(name))]
        raw += backend.list_attached_role_policies(name)[0]
    elif kind == "user":
        if name not in backend.users:
            raise NotFoundException(f"The user with name {name} cannot be found.")
        raw += [backend.get_user_policy(name, policy) for policy in
                backend.list_user_policies(name)]
        raw += backend.list_attached_user_policies(name)[0]
        for group in backend.get_groups_for_user(name):
            raw += [backend.get_group_policy(group.name, policy)
                    for policy in backend.list_group_policies(group.name)]
            raw += backend.list_attached_group_policies(group.name)[0]
    else:
        raise NotFoundException(f"{source_arn} is not a user or role ARN.")
    documents = []
    for policy in raw:
        if isinstance(policy, str):
            documents.append(json.loads(policy))
        else:
            documents.append(IAMPolicy(policy)._policy_json)
    return documents


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns, value: str, *, ignore_case: bool) -> bool:
    flags = re.IGNORECASE if ignore_case else 0
    return any(re.match(fnmatch.translate(p), value, flags) for p in _listed(patterns))


def _conditions_hold(condition: dict, context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals":
                ok = any(a in _listed(expected) for a in actual)
            elif operator == "StringLike":
                ok = any(fnmatch.fnmatchcase(a, e) for a in actual for e in _listed(expected))
            else:
                ok = False
            if not ok:
                return False
    return True


def _applies(statement: dict, action: str, resource: str, context: dict) -> bool:
    if "Action" in statement:
        if not _matches(statement["Action"], action, ignore_case=True):
            return False
    elif _matches(statement.get("NotAction", []), action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _matches(statement["Resource"], resource, ignore_case=False):
            return False
    elif _matches(statement.get("NotResource", []), resource, ignore_case=False):
        return False
    return _conditions_hold(statement.get("Condition") or {}, context)


def _decide(documents: list[dict], action: str, resource: str, context: dict) -> str:
    allowed = False
    for document in documents:
        for statement in _listed(document.get("Statement", [])):
            if _applies(statement, action, resource, context):
                if statement.get("Effect") == "Deny":
                    return "explicitDeny"
                allowed = True
    return "allowed" if allowed else "implicitDeny"


def _simulate_principal_policy(self):
    from moto.core.responses import ActionResult

    documents = _documents(self.backend, self._get_param("PolicySourceArn"))
    context = {
        entry["ContextKeyName"]: list(entry.get("ContextKeyValues") or [])
        for entry in self._get_param("ContextEntries") or []
    }
    results = [
        {"EvalActionName": action, "EvalResourceName": resource,
         "EvalDecision": _decide(documents, action, resource, context),
         "MatchedStatements": [], "MissingContextValues": []}
        for action in self._get_param("ActionNames") or []
        for resource in self._get_param("ResourceArns") or ["*"]
    ]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install() -> None:
    if _installed["done"]:
        return
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.iam.responses import IamResponse

    EC2ContainerServiceResponse.list_account_settings = _effective_settings(
        EC2ContainerServiceResponse.list_account_settings)
    IamResponse.simulate_principal_policy = _simulate_principal_policy
    _installed["done"] = True
