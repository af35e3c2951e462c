"""Calling the JSON API from tests: a token per user, requests with its bearer header."""

import json

from django.test import Client

from provisioning import engine


def token_for(user, scope: str = "write", **fields) -> str:
    """A new token's secret, as its owner would paste it."""
    return engine.issue_token(user, name=fields.pop("name", f"{user.username}-{scope}"),
                              scope=scope, **fields).secret


def call(method: str, path: str, token: str | None = None, body=None, *,
         client: Client | None = None, headers: dict[str, str] | None = None):
    """``method`` on ``/api/v1/<path>`` with the token (and a JSON body); the response."""
    client = client or Client()
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value
             for name, value in (headers or {}).items()}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if body is not None:
        extra["data"] = body if isinstance(body, str | bytes) else json.dumps(body)
        extra["content_type"] = "application/json"
    elif method.lower() in {"post", "put", "patch"}:
        # As curl -X POST sends it: no body at all (the test client would send an empty form).
        extra["data"], extra["content_type"] = b"", "application/json"
    return getattr(client, method.lower())(f"/api/v1/{path.lstrip('/')}", **extra)
