"""The sandbox's identity provider: a real OpenID Connect provider on loopback
(oidc-provider-mock, an authlib-based Flask app), so that `make run` signs people in through the
same redirects, tokens and checks as a company's provider would.

Its people, all with verified e-mails:

* ``demo@example.com``, in the group ``staging-admins``: staff (DS_OIDC_STAFF_GROUPS); the same
  e-mail as the sandbox's ``demo`` user, which it so signs in as;
* ``sam@example.com``, in ``engineering``: a colleague, not staff;
* ``outsider@elsewhere.example``: another domain than DS_OIDC_ALLOWED_DOMAINS, so refused.

The provider's page also takes any other subject typed in; it is given that text as its e-mail,
unverified, and is refused for that.

The dashboard is registered as a client (OAuth 2.0 Dynamic Client Registration), with its
callback URLs: the token endpoint then checks the client secret and the redirect URI as a real
provider does. What this provider does not do: check the PKCE verifier (the dashboard sends one;
tests/oidc_provider.py is a provider that checks it) and answer ``prompt=none`` without a page
(its page comes up at each re-check: the sandbox sets DS_OIDC_RECHECK_MINUTES high).
"""

import json
import os
import threading
import urllib.request
import warnings
from dataclasses import dataclass

PROVIDER_NAME = "Sandbox SSO"
ALLOWED_DOMAIN = "example.com"
STAFF_GROUP = "staging-admins"
DEMO_EMAIL = "demo@example.com"
COLLEAGUE_EMAIL = "sam@example.com"
OUTSIDER_EMAIL = "outsider@elsewhere.example"
# A working day: this provider shows its page where a real one would answer without one.
RECHECK_MINUTES = 8 * 60
PEOPLE = {
    DEMO_EMAIL: {"name": "Demo Admin", "given_name": "Demo", "groups": [STAFF_GROUP]},
    COLLEAGUE_EMAIL: {"name": "Sam Colleague", "given_name": "Sam", "groups": ["engineering"]},
    OUTSIDER_EMAIL: {"name": "Out Sider", "given_name": "Out", "groups": ["partners"]},
}


def callback_urls(dashboard_url: str) -> list[str]:
    """The dashboard's callback under both loopback names a browser may use."""
    base = dashboard_url.rstrip("/")
    urls = [f"{base}/oidc/callback/"]
    if "://127.0.0.1:" in base:
        urls.append(base.replace("://127.0.0.1:", "://localhost:") + "/oidc/callback/")
    return urls


@dataclass
class SandboxIdentityProvider:
    issuer: str
    client_id: str
    client_secret: str
    server: object

    @property
    def environment(self) -> dict[str, str]:
        """What the dashboard needs to sign in with it (README "Signing in")."""
        return {
            "DS_OIDC_ISSUER": self.issuer,
            "DS_OIDC_CLIENT_ID": self.client_id,
            "DS_OIDC_CLIENT_SECRET": self.client_secret,
            "DS_OIDC_PROVIDER_NAME": PROVIDER_NAME,
            "DS_OIDC_ALLOWED_DOMAINS": ALLOWED_DOMAIN,
            "DS_OIDC_STAFF_GROUPS": STAFF_GROUP,
            "DS_OIDC_RECHECK_MINUTES": str(RECHECK_MINUTES),
            # The demo password stays, as a break-glass login beside the provider.
            "DS_LOCAL_LOGIN": "1",
        }

    def stop(self) -> None:
        self.server.shutdown()


def _register_client(issuer: str, redirect_uris: list[str]) -> tuple[str, str]:
    request = urllib.request.Request(
        f"{issuer}/oauth2/clients", method="POST",
        data=json.dumps({"redirect_uris": redirect_uris,
                         "token_endpoint_auth_method": "client_secret_post"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        client = json.load(response)
    return client["client_id"], client["client_secret"]


def start_identity_provider(*, dashboard_url: str, port: int = 0) -> SandboxIdentityProvider:
    """Serve the provider on 127.0.0.1 (a thread of this process) and register the dashboard
    at ``dashboard_url`` as its client."""
    # authlib refuses OAuth over plain http unless told that this is a test.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    with warnings.catch_warnings():
        # Its authlib version warns about its own modules: nothing a sandbox user can act on.
        warnings.simplefilter("ignore")
        import oidc_provider_mock
    import werkzeug.serving

    people = [
        oidc_provider_mock.User(sub=email, claims={"email": email, "email_verified": True,
                                                   **claims})
        for email, claims in PEOPLE.items()
    ]
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True,
                                 user_claims=people)
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="sandbox-identity-provider",
                     daemon=True).start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    client_id, client_secret = _register_client(issuer, callback_urls(dashboard_url))
    return SandboxIdentityProvider(issuer, client_id, client_secret, server)
