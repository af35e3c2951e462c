"""A small OpenID provider on a real local HTTP server (pytest-httpserver) for the sign-in
tests: discovery document, signing keys, token and userinfo endpoints, and end_session.

It does what a provider must and a client cannot check for itself: the token endpoint knows
the client and its secret, takes each code once, for its redirect URI only, and checks the PKCE
verifier against the challenge the authorization request carried (S256). ID tokens are signed
with a real RSA key (PyJWT, which mozilla-django-oidc verifies with). The browser's visit to
the authorization endpoint is played by ``authorize``: it reads the request the dashboard
redirected to and issues a code for the person given.
"""

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Request, Response

CLIENT_ID = "dynamic-stagings-dashboard"
CLIENT_SECRET = "dashboard-client-secret"
KEY_ID = "test-key-1"


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_jwk(key, kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Grant:
    claims: dict
    nonce: str
    challenge: str
    challenge_method: str
    redirect_uri: str


@dataclass
class FakeProvider:
    server: object  # pytest_httpserver.HTTPServer
    key: object = field(default_factory=_new_key)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, dict] = field(default_factory=dict)
    token_requests: list[dict] = field(default_factory=list)
    # What the next ID token gets wrong on purpose (a forged nonce, a foreign audience...).
    tamper: dict = field(default_factory=dict)
    signing_key: object = None

    @property
    def issuer(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def url(self, path: str) -> str:
        return self.issuer + path

    def install(self, *, end_session: bool = True) -> "FakeProvider":
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "userinfo_endpoint": self.url("/userinfo"),
            "jwks_uri": self.url("/jwks"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }
        if end_session:
            document["end_session_endpoint"] = self.url("/logout")
        self.server.expect_request("/.well-known/openid-configuration").respond_with_json(
            document)
        self.server.expect_request("/jwks").respond_with_json(
            {"keys": [_public_jwk(self.key, KEY_ID)]})
        self.server.expect_request("/token", method="POST").respond_with_handler(self._token)
        self.server.expect_request("/userinfo").respond_with_handler(self._userinfo)
        return self

    def authorize(self, location: str, claims: dict) -> str:
        """Play the browser at the authorization endpoint: the query the dashboard sent, and a
        code for a person with ``claims``; returns the callback URL path with code and state."""
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.url("/authorize")
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            claims=claims, nonce=query.get("nonce", ""),
            challenge=query.get("code_challenge", ""),
            challenge_method=query.get("code_challenge_method", ""),
            redirect_uri=query["redirect_uri"])
        callback = urlsplit(query["redirect_uri"])
        return f"{callback.path}?code={code}&state={query['state']}"

    def _error(self, error: str, status: int = 400) -> Response:
        return Response(json.dumps({"error": error}), status=status,
                        content_type="application/json")

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append(form)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._error("invalid_client", 401)
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.redirect_uri != form.get("redirect_uri"):
            return self._error("invalid_grant")
        if grant.challenge_method != "S256" or s256(form.get("code_verifier", "")) != \
                grant.challenge:
            return self._error("invalid_grant")
        access_token = secrets.token_urlsafe(16)
        self.tokens[access_token] = grant.claims
        now = int(time.time())
        id_claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": grant.claims["sub"],
                     "nonce": grant.nonce, "iat": now, "exp": now + 300, **self.tamper}
        id_token = jwt.encode(id_claims, self.signing_key or self.key, algorithm="RS256",
                              headers={"kid": KEY_ID})
        return Response(json.dumps({"access_token": access_token, "token_type": "Bearer",
                                    "id_token": id_token, "expires_in": 300}),
                        content_type="application/json")

    def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        claims = self.tokens.get(token)
        if claims is None:
            return self._error("invalid_token", 401)
        return Response(json.dumps(claims), content_type="application/json")


def person(email: str, *, verified: bool = True, groups: tuple[str, ...] = (),
           sub: str = "") -> dict:
    return {"sub": sub or f"sub-{email}", "email": email, "email_verified": verified,
            "groups": list(groups), "given_name": email.split("@")[0].title()}
