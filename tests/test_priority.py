"""Listener rule priorities: free, deterministic, spread by name, and a lost race retried."""

import zlib
from unittest import mock

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.aws import elbv2
from provisioning.errors import ExternalCallFailed
from provisioning.models import OperationKind
from provisioning.steps import routing
from provisioning.steps.routing import choose_priority
from tests.conftest import DOMAIN
from tests.factories import make_operation, make_staging, step_context


def start_of(name: str) -> int:
    return 1 + zlib.crc32(name.encode()) % 1000


def test_free_listener_gives_the_names_start():
    assert choose_priority(set(), "login-page") == start_of("login-page")


def test_deterministic():
    used = {1, 5, 900}
    assert choose_priority(used, "login-page") == choose_priority(set(used), "login-page")


def test_names_spread_over_priorities():
    priorities = {choose_priority(set(), f"feature-{i}") for i in range(50)}
    assert len(priorities) > 40


def test_skips_used_priorities():
    start = start_of("login-page")
    used = {start, start + 1, start + 3}
    assert choose_priority(used, "login-page") == start + 2


def test_wraps_around_to_the_lowest_free_priority():
    start = start_of("login-page")
    used = set(range(start, elbv2.MAX_PRIORITY + 1)) | {1, 2}
    assert choose_priority(used, "login-page") == 3


def test_a_full_listener_is_an_error():
    with pytest.raises(ExternalCallFailed) as raised:
        choose_priority(set(range(1, elbv2.MAX_PRIORITY + 1)), "login-page")
    assert raised.value.code == "TooManyRules"


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(min_value=1, max_value=2000), max_size=300),
       st.text(min_size=1, max_size=28))
def test_always_free_and_in_range(used, name):
    priority = choose_priority(used, name)
    assert priority not in used
    assert 1 <= priority <= elbv2.MAX_PRIORITY


# --- the race against moto ----------------------------------------------------------------------

OTHER_TAGS = {"dynamic-staging": "other", "managed-by": "dynamic-stagings"}


def own_rules(listener_arn: str) -> list[dict]:
    rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    return [r for r in rules if not r["IsDefault"]]


@pytest.fixture
def rule_context(host_env, alice, db):
    operation = make_operation(make_staging(alice, name="login-page"), OperationKind.CREATE)
    group = routing.create_target_group(step_context(operation, "target_group"))
    return step_context(operation, "listener_rule", {"target_group": group})


def test_priority_taken_meanwhile_is_retried_with_another(rule_context, host_env):
    real_create_rule = elbv2.create_rule
    wanted = start_of("login-page")
    attempts: list[int] = []

    def racing_create_rule(**kwargs):
        attempts.append(kwargs["priority"])
        if len(attempts) == 1:
            # Another staging's create wins the race for the same priority.
            real_create_rule(**kwargs | {"host": f"other.{DOMAIN}"})
            raise elbv2.PriorityInUse(kwargs["priority"])
        return real_create_rule(**kwargs)

    with mock.patch("provisioning.aws.elbv2.create_rule", side_effect=racing_create_rule):
        outputs = routing.create_listener_rule(rule_context)

    assert attempts == [wanted, wanted + 1]
    assert outputs["priority"] == wanted + 1
    by_priority = {int(r["Priority"]): r for r in own_rules(host_env.listener_arn)}
    assert set(by_priority) == {wanted, wanted + 1}
    hosts = by_priority[wanted + 1]["Conditions"][0]["HostHeaderConfig"]["Values"]
    assert hosts == [f"login-page.{DOMAIN}"]
    assert "taken meanwhile" in rule_context.step.detail or rule_context.step.detail.startswith(
        "login-page.")


def test_moto_reports_priority_in_use_through_our_wrapper(rule_context, host_env):
    group_arn = rule_context.output("target_group")["arn"]
    elbv2.create_rule(listener_arn=host_env.listener_arn, priority=10, host=f"a.{DOMAIN}",
                      target_group_arn=group_arn, tags=OTHER_TAGS)
    with pytest.raises(elbv2.PriorityInUse):
        elbv2.create_rule(listener_arn=host_env.listener_arn, priority=10, host=f"b.{DOMAIN}",
                          target_group_arn=group_arn, tags=OTHER_TAGS)


def test_gives_up_after_repeated_races(rule_context, host_env):
    def always_taken(**kwargs):
        raise elbv2.PriorityInUse(kwargs["priority"])

    with mock.patch("provisioning.aws.elbv2.create_rule", side_effect=always_taken) as create, \
            pytest.raises(ExternalCallFailed) as raised:
        routing.create_listener_rule(rule_context)
    assert raised.value.code == "PriorityInUse"
    assert create.call_count == routing.PRIORITY_ATTEMPTS
    assert own_rules(host_env.listener_arn) == []


def test_existing_rules_of_other_stagings_are_skipped(rule_context, host_env):
    group_arn = rule_context.output("target_group")["arn"]
    wanted = start_of("login-page")
    for offset, host in enumerate(["x", "y"]):
        elbv2.create_rule(listener_arn=host_env.listener_arn, priority=wanted + offset,
                          host=f"{host}.{DOMAIN}", target_group_arn=group_arn, tags=OTHER_TAGS)
    assert routing.create_listener_rule(rule_context)["priority"] == wanted + 2
