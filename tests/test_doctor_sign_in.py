"""``ds doctor`` on signing in: the dashboard's provider (discovery document read, the client
accepted by the token endpoint, or refused as ``invalid_client``), and what each staging's
authenticate-oidc action needs (settings, an HTTPS listener, a readable client secret)."""

import boto3
import pytest

from provisioning import doctor
from provisioning.config import load_config
from provisioning.oidc import forget_provider_metadata
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider

pytestmark = pytest.mark.django_db


def lines(prefix: str) -> dict[str, doctor.Check]:
    found = doctor.run_checks(load_config())
    return {c.check: c for c in found.checks if c.check.startswith(prefix)}


@pytest.fixture
def provider(httpserver, settings, host_env):
    forget_provider_metadata()
    fake = FakeProvider(httpserver).install()
    settings.DS_OIDC_ISSUER, settings.DS_OIDC_CLIENT_ID = fake.issuer, CLIENT_ID
    settings.DS_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.DS_OIDC_ALLOWED_DOMAINS = ["example.com"]
    return fake


def test_a_provider_that_knows_the_client_passes(provider):
    found = lines("sign-in")
    assert found["sign-in"].status == doctor.OK
    assert "logout ends its session too" in found["sign-in"].found
    client = found["sign-in client"]
    assert client.status == doctor.OK and "invalid_grant" in client.found
    assert "sign-in domains" not in found


def test_a_wrong_client_secret_fails(provider, settings):
    settings.DS_OIDC_CLIENT_SECRET = "not-it"
    client = lines("sign-in")["sign-in client"]
    assert client.status == doctor.FAIL
    assert "HTTP 401 invalid_client" in client.found and "DS_OIDC_CLIENT_SECRET" in client.fix


def test_an_unreachable_provider_fails(host_env, settings):
    settings.DS_OIDC_ISSUER, settings.DS_OIDC_CLIENT_ID = "http://127.0.0.1:9", CLIENT_ID
    check = lines("sign-in")["sign-in"]
    assert check.status == doctor.FAIL and "no answer" in check.found


def test_a_discovery_document_of_another_issuer_fails(provider, settings):
    settings.DS_OIDC_ISSUER = provider.issuer + "/realms/other"
    provider.server.expect_request("/realms/other/.well-known/openid-configuration"
                                   ).respond_with_json({"issuer": provider.issuer})
    check = lines("sign-in")["sign-in"]
    assert check.status == doctor.FAIL and "names the issuer" in check.found


def test_any_domain_is_a_warning(provider, settings):
    settings.DS_OIDC_ALLOWED_DOMAINS = []
    assert lines("sign-in")["sign-in domains"].status == doctor.WARN


def test_without_a_provider_it_says_passwords(host_env):
    check = lines("sign-in")["sign-in"]
    assert check.status == doctor.OK and "user names and passwords" in check.found


# --- each staging's sign-in --------------------------------------------------------------------


def staging_sign_in(settings) -> None:
    settings.DS_STAGING_AUTH = "oidc"
    settings.DS_STAGING_OIDC_ISSUER = "https://login.example.com"
    settings.DS_STAGING_OIDC_AUTHORIZATION_ENDPOINT = "https://login.example.com/authorize"
    settings.DS_STAGING_OIDC_TOKEN_ENDPOINT = "https://login.example.com/token"
    settings.DS_STAGING_OIDC_USERINFO_ENDPOINT = "https://login.example.com/userinfo"
    settings.DS_STAGING_OIDC_CLIENT_ID = "stagings"
    settings.DS_STAGING_OIDC_SECRET_NAME = "idp/stagings-client"


def test_sign_in_on_an_http_listener_fails(host_env, settings, monkeypatch):
    staging_sign_in(settings)
    boto3.client("secretsmanager").create_secret(Name="idp/stagings-client",
                                                 SecretString="secret")
    monkeypatch.setattr(doctor.oidc, "probe_client",
                        lambda **kwargs: doctor.oidc.ClientProbe(doctor.oidc.ACCEPTED, "HTTP 400"))
    check = lines("staging sign-in")["staging sign-in"]
    assert check.status == doctor.FAIL
    assert "HTTP:80" in check.found and "only on HTTPS listeners" in check.found


def test_missing_staging_settings_fail(host_env, settings):
    staging_sign_in(settings)
    settings.DS_STAGING_OIDC_CLIENT_ID = ""
    check = lines("staging sign-in")["staging sign-in"]
    assert check.status == doctor.FAIL and "DS_STAGING_OIDC_CLIENT_ID" in check.found


def test_plain_http_endpoints_fail(host_env, settings):
    staging_sign_in(settings)
    settings.DS_STAGING_OIDC_TOKEN_ENDPOINT = "http://login.example.com/token"
    check = lines("staging sign-in")["staging sign-in"]
    assert check.status == doctor.FAIL and "not https" in check.found


def test_an_unreadable_client_secret_fails(host_env, settings):
    staging_sign_in(settings)
    checks = [c for c in doctor.run_checks(load_config()).checks
              if c.check == "staging sign-in"]
    assert any("ResourceNotFoundException" in c.found and c.status == doctor.FAIL
               for c in checks)


def test_a_bypass_header_without_staging_sign_in_is_a_warning(host_env, settings):
    settings.DS_STAGING_BYPASS_HEADER = "X-Staging-Bypass"
    assert lines("staging bypass")["staging bypass"].status == doctor.WARN


@pytest.mark.parametrize(("bypass", "status"), [("X-Staging-Bypass", doctor.FAIL),
                                                ("", doctor.WARN)])
def test_the_rule_quota_line_counts_the_bypass_rule(host_env, settings, monkeypatch, bypass,
                                                    status):
    staging_sign_in(settings)
    settings.DS_STAGING_BYPASS_HEADER = bypass
    monkeypatch.setattr(doctor.elbv2, "load_balancer_usage",
                        lambda listener_arn: doctor.elbv2.LoadBalancerUsage("lb", 99, 10))
    check = lines("listener rules")["listener rules"]
    assert check.status == status
    assert f"Each staging takes {'2 rules' if bypass else '1 rule'}" in check.fix
