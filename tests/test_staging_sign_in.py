"""Signing in in front of every staging (DS_STAGING_AUTH=oidc), on moto with the sandbox's
load balancer rules (provisioning/sandbox/elbv2_rules.py): AWS refuses an authenticate action
on an HTTP listener, wants each action's Order with the answering one last, and never shows the
client secret again.

A staging's rule signs people in (authenticate-oidc, Order 1) before it forwards (Order 2); with
DS_STAGING_BYPASS_HEADER a rule of higher priority for the same host forwards requests that
carry the staging's bypass token without signing in. The 100-rule check counts both, a redeploy
keeps both, a destroy removes both and the token, and the sweep finds both when no staging owns
them.
"""

import boto3
import pytest
from botocore.exceptions import ClientError
from django.test import Client
from django.urls import reverse

from provisioning import engine
from provisioning.aws import elbv2
from provisioning.aws.base import AwsError
from provisioning.errors import UserError
from provisioning.models import OperationKind, Staging, StagingStatus
from provisioning.runner import run_operation
from provisioning.sandbox import elbv2_rules
from provisioning.steps import routing
from provisioning.sweep import find_orphans
from tests.conftest import DOMAIN
from tests.factories import make_operation, make_staging, run_step

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]

ISSUER = "https://login.example.com"
CLIENT_SECRET_NAME = "idp/stagings-client"
BYPASS_HEADER = "X-Staging-Bypass"


@pytest.fixture
def aws_load_balancer_rules(aws):
    elbv2_rules.install()


@pytest.fixture
def https_listener(host_env, aws_load_balancer_rules) -> str:
    certificate = boto3.client("acm").request_certificate(
        DomainName=f"*.{DOMAIN}")["CertificateArn"]
    return boto3.client("elbv2").create_listener(
        LoadBalancerArn=host_env.load_balancer_arn, Protocol="HTTPS", Port=443,
        Certificates=[{"CertificateArn": certificate}],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no staging"}}],
    )["Listeners"][0]["ListenerArn"]


def sign_in_settings(settings, *, bypass: bool = True) -> None:
    settings.DS_STAGING_AUTH = "oidc"
    settings.DS_STAGING_OIDC_ISSUER = ISSUER
    settings.DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT = f"{ISSUER}/authorize"
    settings.DS_STAGING_OIDC_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.DS_STAGING_OIDC_USERINFO_ENDPOINT = f"{ISSUER}/userinfo"
    settings.DS_STAGING_OIDC_CLIENT_ID = "dynamic-stagings"
    settings.DS_STAGING_OIDC_SECRET_NAME = CLIENT_SECRET_NAME
    settings.DS_STAGING_BYPASS_HEADER = BYPASS_HEADER if bypass else ""


@pytest.fixture
def signing_in(https_listener, settings):
    boto3.client("secretsmanager").create_secret(Name=CLIENT_SECRET_NAME,
                                                 SecretString="stagings-client-secret")
    settings.DS_LISTENER_ARN = https_listener
    sign_in_settings(settings)
    return https_listener


def ran(staging: Staging) -> Staging:
    """Run the staging's newest operation here, to its end."""
    assert run_operation(staging.latest_operation().pk)
    return Staging.objects.get(pk=staging.pk)


def host_rules(listener_arn: str, name: str) -> list[dict]:
    rules = boto3.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    host = f"{name}.{DOMAIN}"
    return sorted(
        (rule for rule in rules if any(
            host in (c.get("HostHeaderConfig") or {}).get("Values", [])
            for c in rule["Conditions"])),
        key=lambda rule: int(rule["Priority"]))


def secret_exists(name: str) -> bool:
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    return any(s["Name"] == name and "DeletedDate" not in s for s in secrets)


@pytest.mark.django_db(transaction=True)
def test_a_staging_signs_people_in_and_the_bypass_rule_comes_first(signing_in, alice):
    staging = ran(engine.request_create(branch="main", owner=alice, db_mode="shared"))
    assert staging.status == StagingStatus.READY, staging.error

    bypass, main = host_rules(signing_in, staging.name)
    assert int(bypass["Priority"]) < int(main["Priority"])
    actions = sorted(main["Actions"], key=lambda action: action["Order"])
    assert [(a["Type"], a["Order"]) for a in actions] == [
        ("authenticate-oidc", 1), ("forward", 2)]
    oidc = actions[0]["AuthenticateOidcConfig"]
    assert oidc["Issuer"] == ISSUER and oidc["ClientId"] == "dynamic-stagings"
    assert oidc["TokenEndpoint"] == f"{ISSUER}/token"
    assert oidc["SessionCookieName"] == f"AWSELBAuthSessionCookie-{staging.name}"
    assert "ClientSecret" not in oidc  # AWS never shows it again
    token = boto3.client("secretsmanager").get_secret_value(
        SecretId=f"dynamic-stagings/{staging.name}/bypass-token")["SecretString"]
    header = next(c for c in bypass["Conditions"] if c["Field"] == "http-header")
    assert header["HttpHeaderConfig"] == {"HttpHeaderName": BYPASS_HEADER, "Values": [token]}
    assert [a["Type"] for a in bypass["Actions"]] == ["forward"]
    assert bypass["Actions"][0]["TargetGroupArn"] == actions[1]["TargetGroupArn"]

    # A redeploy keeps both rules as they are.
    engine.request_redeploy(staging, user=alice)
    assert ran(staging).status == StagingStatus.READY
    assert [r["RuleArn"] for r in host_rules(signing_in, staging.name)] == [
        bypass["RuleArn"], main["RuleArn"]]

    # The destroy removes both and the token, and its check finds nothing left.
    engine.request_destroy(Staging.objects.get(pk=staging.pk), user=alice)
    staging = ran(staging)
    assert staging.status == StagingStatus.DESTROYED, staging.error
    assert host_rules(signing_in, staging.name) == []
    assert not secret_exists(f"dynamic-stagings/{staging.name}/bypass-token")


@pytest.mark.django_db(transaction=True)
def test_without_a_bypass_header_one_rule_signs_in(signing_in, settings, alice):
    settings.DS_STAGING_BYPASS_HEADER = ""
    staging = ran(engine.request_create(branch="main", owner=alice, db_mode="shared"))
    [rule] = host_rules(signing_in, staging.name)
    assert [a["Type"] for a in rule["Actions"]] == ["authenticate-oidc", "forward"]
    assert not secret_exists(f"dynamic-stagings/{staging.name}/bypass-token")


def test_an_http_listener_is_refused_before_anything_is_made(host_env, settings, alice):
    sign_in_settings(settings)
    with pytest.raises(UserError, match="only on an HTTPS listener.*HTTP:80"):
        engine.request_create(branch="main", owner=alice, db_mode="shared")
    assert not Staging.objects.exists()


def test_missing_settings_are_named_before_anything_is_made(signing_in, settings, alice):
    settings.DS_STAGING_OIDC_TOKEN_ENDPOINT = ""
    with pytest.raises(UserError, match="needs DS_STAGING_OIDC_TOKEN_ENDPOINT"):
        engine.request_create(branch="main", owner=alice, db_mode="shared")
    assert not Staging.objects.exists()


@pytest.mark.parametrize(("bypass", "refused"), [(True, True), (False, False)])
def test_the_rule_quota_counts_the_bypass_rule(signing_in, settings, monkeypatch, alice,
                                               bypass, refused):
    settings.DS_STAGING_BYPASS_HEADER = BYPASS_HEADER if bypass else ""
    monkeypatch.setattr("provisioning.operations.elbv2.load_balancer_usage",
                        lambda listener_arn: elbv2.LoadBalancerUsage("lb", 99, 10))
    if refused:
        with pytest.raises(UserError, match="holds 99 rules.*a staging needs 2"):
            engine.request_create(branch="main", owner=alice, db_mode="shared")
    else:
        engine.request_create(branch="main", owner=alice, db_mode="shared")


# --- the load balancer's rules, as AWS has them -----------------------------------------------


def sign_in_action(target_group_arn: str) -> list[dict]:
    return elbv2.rule_actions(target_group_arn=target_group_arn, sign_in=elbv2.OidcSignIn(
        issuer=ISSUER, authorization_endpoint=f"{ISSUER}/a", token_endpoint=f"{ISSUER}/t",
        userinfo_endpoint=f"{ISSUER}/u", client_id="c", client_secret="s",
        session_cookie_name="cookie"))


def test_the_sandbox_refuses_sign_in_on_an_http_listener(host_env, aws_load_balancer_rules):
    with pytest.raises(ClientError) as refused:
        boto3.client("elbv2").create_rule(
            ListenerArn=host_env.listener_arn, Priority=5,
            Conditions=elbv2.rule_conditions(host=f"x.{DOMAIN}"),
            Actions=sign_in_action(host_env.host_target_group_arn))
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidLoadBalancerAction"
    assert "only on HTTPS listeners" in error["Message"]
    # Our wrapper names the call, the code and the message.
    with pytest.raises(AwsError, match="CreateRule: InvalidLoadBalancerAction"):
        elbv2.create_rule(listener_arn=host_env.listener_arn, priority=5, host=f"x.{DOMAIN}",
                          target_group_arn=host_env.host_target_group_arn, tags={"k": "v"},
                          sign_in=elbv2.OidcSignIn(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t",
                                                   f"{ISSUER}/u", "c", "s", "cookie"))


@pytest.mark.parametrize(("change", "words"), [
    (lambda actions: [{k: v for k, v in a.items() if k != "Order"} for a in actions],
     "its own Order"),
    (lambda actions: [{**actions[0], "Order": 3}, actions[1]], "The last action must be"),
    (lambda actions: [{**actions[0], "AuthenticateOidcConfig": {
        **actions[0]["AuthenticateOidcConfig"], "TokenEndpoint": "http://login/t"}},
        actions[1]], "must be an https URL"),
])
def test_the_sandbox_wants_actions_as_aws_does(https_listener, host_env, change, words):
    actions = change(sign_in_action(host_env.host_target_group_arn))
    with pytest.raises(ClientError, match=words):
        boto3.client("elbv2").create_rule(
            ListenerArn=https_listener, Priority=5,
            Conditions=elbv2.rule_conditions(host=f"x.{DOMAIN}"), Actions=actions)


# --- a create that stopped between the two rules, and the sweep --------------------------------


@pytest.fixture
def staging(signing_in, alice):
    return make_staging(alice, name="login-page")


def rule_steps(staging) -> dict:
    operation = make_operation(staging, OperationKind.CREATE)
    group = run_step(operation, "target_group", routing.create_target_group)
    run_step(operation, "bypass_token", routing.make_bypass_token)
    return {"operation": operation, "outputs": {"target_group": group}}


def test_a_rerun_makes_only_the_missing_rule_in_the_right_order(staging, settings):
    made = rule_steps(staging)
    # A first attempt made the main rule only (the bypass header was turned on since).
    settings.DS_STAGING_BYPASS_HEADER = ""
    first = run_step(made["operation"], "listener_rule", routing.create_listener_rule,
                     made["outputs"])
    settings.DS_STAGING_BYPASS_HEADER = BYPASS_HEADER
    second = run_step(made["operation"], "listener_rule", routing.create_listener_rule,
                      made["outputs"])
    assert second["arn"] == first["arn"]
    assert second["bypass_priority"] < second["priority"]
    assert len(host_rules(settings.DS_LISTENER_ARN, staging.name)) == 2
    # Run again, it makes nothing.
    assert run_step(made["operation"], "listener_rule", routing.create_listener_rule,
                    made["outputs"]) == second


def test_the_sweep_finds_both_rules_no_staging_owns(staging, settings):
    made = rule_steps(staging)
    output = run_step(made["operation"], "listener_rule", routing.create_listener_rule,
                      made["outputs"])
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.DESTROYED)
    found = {orphan.arn for orphan in find_orphans()}
    assert {output["arn"], output["bypass_arn"]} <= found
    assert any("bypass-token" in arn for arn in found)


def test_staff_see_the_bypass_header_and_the_owner_does_not(staging, admin, alice):
    rule_steps(staging)
    Staging.objects.filter(pk=staging.pk).update(status=StagingStatus.READY)
    token = boto3.client("secretsmanager").get_secret_value(
        SecretId=f"dynamic-stagings/{staging.name}/bypass-token")["SecretString"]
    staff = Client()
    staff.force_login(admin)
    page = staff.get(reverse("staging", args=[staging.pk])).content.decode()
    assert f"{BYPASS_HEADER}: {token}" in page
    owner = Client()
    owner.force_login(alice)
    page = owner.get(reverse("staging", args=[staging.pk])).content.decode()
    assert token not in page and "Sign-in bypass" not in page
