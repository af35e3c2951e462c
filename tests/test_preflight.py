"""Quotas and settings that would stop a create half-way are refused before anything is made,
naming the quota (with the numbers) or the setting."""

import io

import boto3
import pytest
from django.core.management import call_command

from provisioning import permissions
from provisioning.aws import elbv2, rds
from provisioning.errors import UserError
from provisioning.models import DbMode, Staging
from provisioning.operations import request_create, request_destroy
from tests.conftest import BRANCH, QA_DB, RELEASE_TAG

pytestmark = pytest.mark.django_db


def tagged_resources() -> list[str]:
    return [m["ResourceARN"] for m in boto3.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "managed-by", "Values": ["dynamic-stagings"]}]
    )["ResourceTagMappingList"]]


def refused(**kwargs) -> UserError:
    with pytest.raises(UserError) as raised:
        request_create(branch=BRANCH, **kwargs)
    assert not Staging.objects.exists()
    assert tagged_resources() == []
    return raised.value


def second_listener_with_rules(host_env, count: int) -> None:
    """Another listener of the same load balancer (say HTTPS) holding ``count`` rules."""
    elb = boto3.client("elbv2")
    listener = elb.create_listener(
        LoadBalancerArn=host_env.load_balancer_arn, Protocol="HTTP", Port=8443,
        DefaultActions=[{"Type": "fixed-response",
                         "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    for priority in range(1, count + 1):
        elb.create_rule(
            ListenerArn=listener, Priority=priority,
            Conditions=[{"Field": "host-header", "Values": [f"other-{priority}.example.com"]}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
        )


def test_rules_on_all_listeners_of_the_load_balancer_count(host_env, alice):
    second_listener_with_rules(host_env, elbv2.MAX_RULES_PER_ALB)
    error = refused(owner=alice)
    assert "100 rules" in error.message and "Rules per Application Load Balancer" in error.message


def test_the_hundredth_rule_is_still_allowed(host_env, alice):
    second_listener_with_rules(host_env, elbv2.MAX_RULES_PER_ALB - 1)
    assert request_create(branch=BRANCH, owner=alice).name


def test_load_balancer_usage_counts_rules_and_attached_target_groups(host_env):
    second_listener_with_rules(host_env, 3)
    usage = elbv2.load_balancer_usage(listener_arn=host_env.listener_arn)
    assert usage.load_balancer_arn == host_env.load_balancer_arn
    assert usage.rules == 3
    assert usage.target_groups == 0
    elb = boto3.client("elbv2")
    group = elb.create_target_group(Name="attached", Protocol="HTTP", Port=80,
                                    VpcId=host_env.vpc_id, TargetType="ip")
    elb.create_rule(ListenerArn=host_env.listener_arn, Priority=7,
                    Conditions=[{"Field": "host-header", "Values": ["a.example.com"]}],
                    Actions=[{"Type": "forward",
                              "TargetGroupArn": group["TargetGroups"][0]["TargetGroupArn"]}])
    assert elbv2.load_balancer_usage(listener_arn=host_env.listener_arn).target_groups == 1


def test_a_load_balancer_with_100_target_groups_is_refused(host_env, alice, monkeypatch):
    full = elbv2.LoadBalancerUsage(host_env.load_balancer_arn, rules=10, target_groups=100)
    monkeypatch.setattr(elbv2, "load_balancer_usage", lambda **_: full)
    error = refused(owner=alice)
    assert "100 target groups" in error.message and "Target Groups per" in error.message


def test_another_source_without_any_password_setting_is_refused(host_env, alice, settings):
    settings.DS_HOST_DB_PASSWORD_SECRET = ""
    settings.DS_SOURCE_DB_SECRETS = {}
    error = refused(owner=alice, source=QA_DB)
    assert error.field == "source" and "DS_HOST_DB_PASSWORD_SECRET" in error.message


def test_another_source_with_its_own_secret_needs_no_host_password(host_env, alice, settings):
    settings.DS_HOST_DB_PASSWORD_SECRET = ""
    settings.DS_SOURCE_DB_SECRETS = {QA_DB: "qa/db-password"}
    assert request_create(branch=BRANCH, owner=alice, source=QA_DB).source == QA_DB


def test_the_host_source_and_shared_mode_need_no_password_setting(host_env, alice, settings):
    settings.DS_HOST_DB_PASSWORD_SECRET = ""
    assert request_create(branch=BRANCH, owner=alice).name
    assert request_create(branch="main", owner=alice, db_mode=DbMode.SHARED).name


def test_no_listener_configured_is_refused_by_name(host_env, alice, settings):
    settings.DS_LISTENER_ARN = ""
    assert "DS_LISTENER_ARN" in refused(owner=alice).message


def test_a_full_db_instance_quota_refuses_a_dedicated_create(host_env, alice, monkeypatch):
    monkeypatch.setattr(rds, "instance_quota", lambda: rds.Quota(used=40, maximum=40))
    error = refused(owner=alice)
    assert error.field == "db_mode"
    assert "40 DB instances" in error.message and "quota" in error.message
    # A shared database needs no instance.
    assert request_create(branch=BRANCH, owner=alice, db_mode=DbMode.SHARED).name


def test_the_db_instance_quota_is_asked_of_aws(host_env, alice):
    """The sandbox rules answer DescribeAccountAttributes with what exists (of 40)."""
    quota = rds.instance_quota()
    assert 0 < quota.used < quota.maximum == 40
    assert request_create(branch=BRANCH, owner=alice).name


def test_operations_in_flight_per_person_are_bounded_but_not_destroys(host_env, alice, bob,
                                                                      settings):
    settings.DS_MAX_INFLIGHT_PER_USER = 2
    first = request_create(branch=BRANCH, owner=alice, db_mode=DbMode.SHARED)
    request_create(branch="main", owner=alice, db_mode=DbMode.SHARED)
    error = refused_after(2, branch=RELEASE_TAG, owner=alice, db_mode=DbMode.SHARED)
    assert "2 operations under way" in error.message
    assert request_create(branch=RELEASE_TAG, owner=bob, db_mode=DbMode.SHARED).name
    assert request_destroy(first, user=alice).kind == "destroy"


def refused_after(existing: int, **kwargs) -> UserError:
    with pytest.raises(UserError) as raised:
        request_create(**kwargs)
    assert Staging.objects.filter(owner=kwargs["owner"]).count() == existing
    return raised.value


def test_ds_policy_prints_the_policy_file():
    out = io.StringIO()
    call_command("ds", "policy", stdout=out)
    assert out.getvalue() == permissions.policy_json()
