"""The identity provider as an OpenID Connect client sees it: its discovery document, and
whether its token endpoint knows our client.

The dashboard's sign-in (dashboard/sso.py) reads the endpoints and the signing keys' address
from the discovery document of ``DS_OIDC_ISSUER`` when it first needs them, and keeps them an
hour per process; ``ds doctor`` asks the same questions to say what is wrong before a person
meets it on the login page. Plain HTTP(S) with the standard library: no AWS here.
"""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_KEPT_SECONDS = 60 * 60
TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 256 * 1024
# A code no provider ever issued: the token endpoint judges the client before the code.
PROBE_CODE = "ds-doctor-probe-not-a-real-code"
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnreachable(Exception):
    """The provider did not answer as an OpenID provider does; the message says how."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    # RP-initiated logout: absent when the provider cannot end its session for us.
    end_session_endpoint: str


ACCEPTED, REFUSED, UNCLEAR = "accepted", "refused", "unclear"


@dataclass(frozen=True)
class ClientProbe:
    verdict: str  # ACCEPTED, REFUSED or UNCLEAR (the provider failed: 5xx)
    answer: str  # what the token endpoint said, e.g. "HTTP 400 invalid_grant"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


def _read_json(request: urllib.request.Request, timeout: float) -> tuple[int, dict]:
    """Status and JSON body of a request; error statuses are answers too."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_ANSWER_BYTES)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ProviderUnreachable(f"{request.full_url}: no answer "
                                  f"({getattr(exc, 'reason', exc)})") from exc
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}


def discover(issuer: str, timeout: float = TIMEOUT_SECONDS) -> ProviderMetadata:
    """The provider's discovery document, checked: it must name this very issuer (OpenID
    Connect Discovery 1.0, section 4.3) and the endpoints a login needs."""
    url = discovery_url(issuer)
    status, body = _read_json(urllib.request.Request(url), timeout)
    if status != 200:
        raise ProviderUnreachable(f"{url} answered HTTP {status}")
    if body.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnreachable(
            f"{url} names the issuer {body.get('issuer')!r}, not {issuer!r}: set "
            "DS_OIDC_ISSUER to exactly the provider's issuer")
    missing = [key for key in REQUIRED_ENDPOINTS if not body.get(key)]
    if missing:
        raise ProviderUnreachable(f"{url} lacks {', '.join(missing)}")
    return ProviderMetadata(
        issuer=body["issuer"],
        authorization_endpoint=body["authorization_endpoint"],
        token_endpoint=body["token_endpoint"],
        userinfo_endpoint=body.get("userinfo_endpoint", ""),
        jwks_uri=body["jwks_uri"],
        end_session_endpoint=body.get("end_session_endpoint", ""),
    )


_kept: dict[str, tuple[ProviderMetadata, float]] = {}
_lock = threading.Lock()


def provider_metadata(issuer: str) -> ProviderMetadata:
    """``discover`` kept for an hour per process: a login reads it four times, and a provider
    that is down for a moment does not sign out anybody already signed in."""
    with _lock:
        kept = _kept.get(issuer)
        if kept and time.monotonic() - kept[1] < DISCOVERY_KEPT_SECONDS:
            return kept[0]
    metadata = discover(issuer)
    with _lock:
        _kept[issuer] = (metadata, time.monotonic())
    return metadata


def forget_provider_metadata() -> None:
    with _lock:
        _kept.clear()


def probe_client(*, token_endpoint: str, client_id: str, client_secret: str,
                 redirect_uri: str, timeout: float = TIMEOUT_SECONDS) -> ClientProbe:
    """Whether the token endpoint knows the client and its secret. It is sent a code that was
    never issued: a provider checks the client first and answers ``invalid_client`` (RFC 6749
    section 5.2) for a wrong one, and ``invalid_grant`` (or another error about the request)
    once the client passed (``unauthorized_client`` too: the client is known, only not
    allowed that grant)."""
    fields = {"grant_type": "authorization_code", "code": PROBE_CODE,
              "redirect_uri": redirect_uri, "client_id": client_id}
    if client_secret:
        fields["client_secret"] = client_secret
    request = urllib.request.Request(
        token_endpoint, data=urllib.parse.urlencode(fields).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json"})
    status, body = _read_json(request, timeout)
    error = str(body.get("error", ""))
    answer = f"HTTP {status} {error}".strip()
    if status == 401 or error == "invalid_client":
        return ClientProbe(REFUSED, answer)
    if status >= 500:
        return ClientProbe(UNCLEAR, answer)
    return ClientProbe(ACCEPTED, answer)
