"""End to end with DS_STAGING_AUTH=oidc on the sandbox: a real qcluster, the moto server with
AWS's rules on load balancer actions, `ds create --wait` and `ds destroy --wait`.

The operator's part is done first, as on a real account: an HTTPS listener (with an ACM
certificate) for the stagings, and the stagings' client secret in Secrets Manager. The staging's
rule then signs people in before it forwards, the bypass rule comes first for the same host,
and the destroy leaves neither rule nor the bypass token. On the sandbox's HTTP listener the
same create is refused before anything is made, naming the listener.
"""

import json

import pytest

from tests.present import tagged_and_present
from tests.stack import SandboxStack, running_stack

pytestmark = pytest.mark.e2e

ISSUER = "https://login.example.com"
SIGN_IN = {
    "DS_STAGING_AUTH": "oidc",
    "DS_STAGING_OIDC_ISSUER": ISSUER,
    "DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT": f"{ISSUER}/oauth2/v1/authorize",
    "DS_STAGING_OIDC_TOKEN_ENDPOINT": f"{ISSUER}/oauth2/v1/token",
    "DS_STAGING_OIDC_USERINFO_ENDPOINT": f"{ISSUER}/oauth2/v1/userinfo",
    "DS_STAGING_OIDC_CLIENT_ID": "dynamic-stagings",
    "DS_STAGING_OIDC_SECRET_NAME": "idp/stagings-client",
    "DS_STAGING_BYPASS_HEADER": "X-Staging-Bypass",
}


def operator_setup(stack: SandboxStack) -> dict:
    """An HTTPS listener on the stagings' load balancer and the client secret: what an
    operator makes once. Returns the environment every process of the stack gets."""
    elbv2 = stack.client("elbv2")
    http = elbv2.describe_listeners(ListenerArns=[stack.aws_env["DS_LISTENER_ARN"]])
    balancer = http["Listeners"][0]["LoadBalancerArn"]
    certificate = stack.client("acm").request_certificate(
        DomainName=f"*.{stack.aws_env['DS_DOMAIN']}")["CertificateArn"]
    https = elbv2.create_listener(
        LoadBalancerArn=balancer, Protocol="HTTPS", Port=443,
        Certificates=[{"CertificateArn": certificate}],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain"}}],
    )["Listeners"][0]["ListenerArn"]
    stack.client("secretsmanager").create_secret(Name=SIGN_IN["DS_STAGING_OIDC_SECRET_NAME"],
                                                 SecretString="stagings-client-secret")
    stack.http_listener = stack.aws_env["DS_LISTENER_ARN"]
    stack.env.update(SIGN_IN, DS_LISTENER_ARN=https)
    return {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("e2e-sign-in"), 0.01,
                       workers=operator_setup) as stack:
        yield stack


def host_rules(stack: SandboxStack, name: str) -> list[dict]:
    host = f"{name}.{stack.aws_env['DS_DOMAIN']}"
    rules = stack.client("elbv2").describe_rules(ListenerArn=stack.env["DS_LISTENER_ARN"])
    return sorted((r for r in rules["Rules"] for c in r["Conditions"]
                   if host in c.get("HostHeaderConfig", {}).get("Values", [])),
                  key=lambda rule: int(rule["Priority"]))


def test_a_staging_behind_sign_in_is_made_and_destroyed_whole(stack):
    created = stack.manage("ds", "create", "main", "--shared-db", "--wait", "--json")
    assert created.returncode == 0, created.stderr + stack.logs()
    name = json.loads(created.stdout)["name"]

    bypass, main = host_rules(stack, name)
    assert int(bypass["Priority"]) < int(main["Priority"])
    assert [(a["Type"], a["Order"]) for a in sorted(main["Actions"],
                                                     key=lambda a: a["Order"])] == [
        ("authenticate-oidc", 1), ("forward", 2)]
    assert [c["Field"] for c in bypass["Conditions"]] == ["host-header", "http-header"]
    assert [a["Type"] for a in bypass["Actions"]] == ["forward"]

    destroyed = stack.manage("ds", "destroy", name, "--wait", "--json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert host_rules(stack, name) == []
    assert tagged_and_present(stack, "dynamic-staging", name) == []


def test_on_the_http_listener_the_create_is_refused_before_anything(stack):
    refused = stack.manage("ds", "create", "develop", "--shared-db", "--json",
                           DS_LISTENER_ARN=stack.http_listener)
    assert refused.returncode == 2
    assert "only on an HTTPS listener" in refused.stderr and "HTTP:80" in refused.stderr
