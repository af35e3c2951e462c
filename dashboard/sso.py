"""Signing in with the company's identity provider (OpenID Connect, through mozilla-django-oidc).

The flow is the authorization code flow with PKCE (S256) and a nonce: "Sign in with <provider>"
starts it (``SignInStart``), the provider sends the browser back to ``SignInCallback`` with a
code, the backend (``SignInBackend``) trades it for tokens at the token endpoint, checks the ID
token's signature (the provider's published keys), nonce, issuer, audience and expiry, reads
the user's claims, and decides:

* the e-mail must be present and verified (``email_verified`` true) and, with
  ``DS_OIDC_ALLOWED_DOMAINS``, of one of those domains;
* the user with that e-mail (any case) is the one signed in, a local user made earlier
  included; on the first sign-in a user is made, named by the e-mail, with no password;
* with ``DS_OIDC_STAFF_GROUPS``, the user is staff exactly while the groups claim names one of
  them, decided again at every sign-in (and at every re-check, below).

A refusal is a page that says why (403), never a traceback nor a redirect back into the flow.
The endpoints and keys' address come from the issuer's discovery document
(provisioning/oidc.py), read when first needed: the dashboard starts while the provider is
down, and its login page says so.

Password logins (``LocalPasswordBackend``) work only while ``DS_LOCAL_LOGIN`` allows them: by
default exactly when no provider is configured. With a provider, ``DS_LOCAL_LOGIN=1`` keeps
them for a break-glass admin; django-axes throttles them as before.

Every ``DS_OIDC_RECHECK_MINUTES`` a page request of someone signed in with the provider is sent
back to it (``prompt=none``: no page when its session is alive), so somebody it no longer lets
in loses the dashboard within minutes, not when the session cookie expires. Requests under
``EXEMPT_PREFIXES`` are never sent anywhere: the JSON API, Slack and GitHub check their own
credentials, and a redirect to a login page means nothing to them.
"""

import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.contrib import admin, messages
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from provisioning import audit, engine
from provisioning.config import EngineConfig, load_config
from provisioning.models import AuditAction, SignInMethod
from provisioning.oidc import ProviderMetadata, ProviderUnreachable, provider_metadata

logger = logging.getLogger(__name__)

# Paths a sign-in never redirects: entry points with credentials of their own, and the steps
# of signing in and out themselves.
EXEMPT_PREFIXES = (
    "/api/", "/slack/", "/github/",
    "/oidc/", "/login/", "/logout/", "/admin/login/", "/static/",
)
# What a silent re-check may answer when the provider's own session is over: sign in again.
SIGN_IN_AGAIN_ERRORS = frozenset({
    "login_required", "interaction_required", "consent_required",
    "account_selection_required",
})
SIGN_IN_BACKEND = "dashboard.sso.SignInBackend"
USERNAME_MAX_LENGTH = 150


def is_exempt(path: str) -> bool:
    return path.startswith(EXEMPT_PREFIXES)


class SignInRefused(Exception):
    """The provider signed the person in, but the dashboard does not let them in."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _metadata() -> ProviderMetadata:
    return provider_metadata(load_config().oidc_issuer)


def sso_setting(attr: str, *default):
    """What mozilla-django-oidc asks of Django's settings, answered from ours: the client from
    DS_OIDC_*, the endpoints from the discovery document, the rest as settings.py sets it."""
    config = load_config()
    dynamic = {
        "OIDC_RP_CLIENT_ID": lambda: config.oidc_client_id,
        "OIDC_RP_CLIENT_SECRET": lambda: config.oidc_client_secret,
        "OIDC_RP_SCOPES": lambda: config.oidc_scopes,
        "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS": lambda: config.oidc_recheck_minutes * 60,
        "OIDC_OP_AUTHORIZATION_ENDPOINT": lambda: _metadata().authorization_endpoint,
        "OIDC_OP_TOKEN_ENDPOINT": lambda: _metadata().token_endpoint,
        "OIDC_OP_USER_ENDPOINT": lambda: _metadata().userinfo_endpoint,
        "OIDC_OP_JWKS_ENDPOINT": lambda: _metadata().jwks_uri,
    }
    if attr in dynamic:
        return dynamic[attr]()
    return import_from_settings(attr, *default)


# --- who may come in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    email: str
    groups: tuple[str, ...]
    first_name: str
    last_name: str


def _groups(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()


def identity_from_claims(claims: dict, config: EngineConfig) -> Identity:
    """The person the provider vouches for, or SignInRefused saying why they may not enter."""
    provider = config.provider_name
    email = str(claims.get("email") or "").strip()
    if "@" not in email:
        raise SignInRefused(
            f"{provider} sent no e-mail address for this account, and the dashboard knows "
            "people by their e-mail. Ask whoever runs the dashboard to have the provider send "
            "the email claim.")
    # Some providers send the boolean as a string.
    if claims.get("email_verified") not in (True, "true"):
        raise SignInRefused(
            f"{provider} has not verified the e-mail address {email}, so it cannot stand for "
            "you here. Verify it with the provider, then sign in again.")
    domain = email.rsplit("@", 1)[1].lower()
    allowed = config.oidc_allowed_domains
    if allowed and domain not in allowed:
        raise SignInRefused(
            f"{email} is not an address of {', '.join(allowed)}: this dashboard is only for "
            "those. Sign in to the provider with your work account and try again.")
    return Identity(email=email, groups=_groups(claims.get(config.oidc_groups_claim)),
                    first_name=str(claims.get("given_name") or "")[:150],
                    last_name=str(claims.get("family_name") or "")[:150])


def staff_from_groups(identity: Identity, config: EngineConfig) -> bool | None:
    """Staff exactly while a group of DS_OIDC_STAFF_GROUPS is named; None (leave it as the
    admin set it) when that setting is empty."""
    if not config.oidc_staff_groups:
        return None
    return bool(set(identity.groups) & set(config.oidc_staff_groups))


def _free_username(email: str) -> str:
    """The e-mail, lower-cased, as the user name: what people recognise in the fleet's owner
    column. Taken already by a local user with another e-mail, it gets a number."""
    users = get_user_model().objects
    base = email.lower()[:USERNAME_MAX_LENGTH]
    candidate, number = base, 1
    while users.filter(username=candidate).exists():
        number += 1
        suffix = f"-{number}"
        candidate = base[:USERNAME_MAX_LENGTH - len(suffix)] + suffix
    return candidate


# --- authentication backends -------------------------------------------------------------------


class LocalPasswordBackend(ModelBackend):
    """Django's user name and password, while DS_LOCAL_LOGIN allows them. A session made with
    a password ends when they are turned off."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not load_config().local_login:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        if not load_config().local_login:
            return None
        user = super().get_user(user_id)
        if user is not None:
            setattr(user, audit.SIGNED_IN_WITH, SignInMethod.PASSWORD)
        return user


class SignInBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, configured from DS_OIDC_* and the discovery document,
    with the checks it leaves to its users (issuer, audience, verified e-mail, domains) and
    staff from groups."""

    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_RP_IDP_SIGN_KEY = None
    get_settings = staticmethod(sso_setting)

    def __init__(self, *args, **kwargs):
        # The library reads the endpoints here; they are read when a sign-in needs them, so
        # that loading a signed-in user never waits for the provider.
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802 (the library's name)
        return _metadata().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return _metadata().userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return _metadata().jwks_uri

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return load_config().oidc_client_id

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:  # noqa: N802
        return load_config().oidc_client_secret

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce: a password login never reaches the provider.
        if "nonce" not in kwargs or not load_config().oidc_enabled:
            return None
        return super().authenticate(request, **kwargs)

    def retrieve_matching_jwk(self, token):
        """The library finds the key by the token's ``kid``; a provider with one key may name
        none, and then its one signing key is the key."""
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        answer = requests.get(self.OIDC_OP_JWKS_ENDPOINT,
                              timeout=import_from_settings("OIDC_TIMEOUT", None))
        answer.raise_for_status()
        keys = [key for key in answer.json().get("keys", [])
                if key.get("use", "sig") == "sig"
                and key.get("alg", self.OIDC_RP_SIGN_ALGO) == self.OIDC_RP_SIGN_ALGO]
        if len(keys) != 1:
            raise SuspiciousOperation("the ID token names no key, and the provider has "
                                      f"{len(keys)} signing keys")
        return jwt.PyJWK(keys[0])

    def verify_token(self, token, **kwargs):
        """Signature and nonce (the library), expiry (PyJWT), and what the library leaves
        out: the token must come from our issuer and be meant for our client."""
        try:
            payload = super().verify_token(token, **kwargs)
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"the ID token is not valid: {exc}") from exc
        config = load_config()
        if str(payload.get("iss", "")).rstrip("/") != config.oidc_issuer.rstrip("/"):
            raise SuspiciousOperation(f"the ID token comes from {payload.get('iss')!r}, "
                                      f"not from {config.oidc_issuer!r}")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if config.oidc_client_id not in audiences:
            raise SuspiciousOperation("the ID token is meant for another client")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims completed by the userinfo endpoint's (some providers put the
        groups only in one of them); both must describe the same subject."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("the userinfo endpoint describes another subject")
            claims.update(userinfo)
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        config = load_config()
        identity = identity_from_claims(
            self.get_userinfo(access_token, id_token, payload), config)
        users = list(self.UserModel.objects.filter(email__iexact=identity.email)[:2])
        if len(users) > 1:
            raise SignInRefused(
                f"More than one dashboard account has the e-mail {identity.email}, so it is "
                "not clear which one is yours. Ask an admin to change or remove the others.")
        if users:
            user = users[0]
        else:
            user = self.UserModel.objects.create_user(
                _free_username(identity.email), email=identity.email,
                first_name=identity.first_name, last_name=identity.last_name)
            logger.info("made the dashboard user %s on its first sign-in", user.get_username())
        if not user.is_active:
            raise SignInRefused(
                f"The dashboard account of {identity.email} is turned off. Ask an admin.")
        staff = staff_from_groups(identity, config)
        if staff is not None and user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
            logger.info("%s is %s staff (groups: %s)", user.get_username(),
                        "now" if staff else "no longer", ", ".join(identity.groups) or "none")
        return user

    def get_user(self, user_id):
        if not load_config().oidc_enabled:
            return None
        user = super().get_user(user_id)
        if user is not None:
            setattr(user, audit.SIGNED_IN_WITH, SignInMethod.OIDC)
        return user


def signed_in_with_provider(request: HttpRequest) -> bool:
    backend = request.session.get(BACKEND_SESSION_KEY)
    return bool(backend) and issubclass(import_string(backend), OIDCAuthenticationBackend)


def provider_logout_url(request: HttpRequest) -> str:
    """Where the logout sends the browser: the provider's end_session_endpoint (OpenID Connect
    RP-Initiated Logout) for whoever signed in there, when the provider has one; our login
    page otherwise. Called before the session ends (OIDC_OP_LOGOUT_URL_METHOD)."""
    login_page = resolve_url(import_from_settings("LOGOUT_REDIRECT_URL", "login"))
    if not signed_in_with_provider(request):
        return login_page
    try:
        end_session = _metadata().end_session_endpoint
    except ProviderUnreachable:
        return login_page
    if not end_session:
        return login_page
    query = {"client_id": load_config().oidc_client_id,
             "post_logout_redirect_uri": request.build_absolute_uri(login_page)}
    if id_token := request.session.get("oidc_id_token"):
        query["id_token_hint"] = id_token
    return f"{end_session}?{urlencode(query)}"


# --- pages -------------------------------------------------------------------------------------


def _refused(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    config = load_config()
    return render(request, "sign_in_refused.html", {
        "reason": reason, "provider_name": config.provider_name,
    }, status=status)


def _unreachable(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("the identity provider did not answer: %s", exc)
    return _refused(request, f"{load_config().provider_name} did not answer, so nobody can sign "
                             "in with it right now. Try again in a minute.", 502)


class SignInStart(OIDCAuthenticationRequestView):
    """Sends the browser to the provider, with state, nonce and PKCE kept in the session."""

    get_settings = staticmethod(sso_setting)

    def __init__(self, **kwargs):
        # The library reads the endpoint here; it is read when a sign-in starts instead.
        View.__init__(self, **kwargs)

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:  # noqa: N802 (the library's name)
        return _metadata().authorization_endpoint

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return load_config().oidc_client_id

    def get(self, request):
        if not load_config().oidc_enabled:
            return redirect("login")  # which offers what there is
        try:
            return super().get(request)
        except ProviderUnreachable as exc:
            return _unreachable(request, exc)


class SignInCallback(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back. Every way this can end that is not a
    sign-in is a page saying why: nothing here redirects back into the flow."""

    get_settings = staticmethod(sso_setting)

    def get(self, request):
        if not load_config().oidc_enabled:
            return redirect("login")
        try:
            return super().get(request)
        except SignInRefused as refused:
            logger.info("sign-in refused: %s", refused.reason)
            return _refused(request, refused.reason, 403)
        except SuspiciousOperation as exc:
            logger.warning("sign-in not verified: %s", exc)
            return _refused(request, "This sign-in could not be verified, so it was not "
                                     "accepted. Start again from the login page.", 400)
        except requests.HTTPError as exc:
            # The token endpoint refused the dashboard itself (client id, secret, redirect URI).
            logger.error("the identity provider refused the dashboard's client: %s", exc)
            return _refused(request, f"{load_config().provider_name} refused this dashboard's "
                                     "sign-in request, so nobody can sign in with it until the "
                                     "dashboard's client settings are fixed (ds doctor checks "
                                     "them).", 502)
        except (ProviderUnreachable, requests.RequestException) as exc:
            return _unreachable(request, exc)

    def login_failure(self):
        error = self.request.GET.get("error", "")
        if error in SIGN_IN_AGAIN_ERRORS:
            messages.info(self.request, "Your sign-in has expired: sign in again.")
            return redirect("login")
        if error:
            description = self.request.GET.get("error_description", "")[:200]
            reason = (f"{load_config().provider_name} did not sign you in ({error}"
                      f"{': ' + description if description else ''}).")
        else:
            reason = ("This sign-in was not started in this browser, or was already used. "
                      "Start again from the login page.")
        return _refused(self.request, reason, 400)

    def login_success(self):
        response = super().login_success()
        setattr(self.user, audit.SIGNED_IN_WITH, SignInMethod.OIDC)
        audit.record(AuditAction.SIGN_IN, actor=self.user,
                     detail=f"with {load_config().provider_name}")
        return response


class LoginView(auth_views.LoginView):
    """The login page: "Sign in with <provider>" when one is configured, and the password form
    while local logins are on."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        config = load_config()
        context = super().get_context_data(**kwargs)
        context.update(oidc_enabled=config.oidc_enabled, local_login=config.local_login,
                       provider_name=config.provider_name,
                       # The sandbox's demo login `make run` made (never outside the sandbox).
                       demo_login=engine.demo_login() if config.local_login else None)
        if config.oidc_enabled:
            start = reverse("oidc_authentication_init")
            context["sign_in_url"] = (f"{start}?{urlencode({'next': context['next']})}"
                                      if context.get("next") else start)
        return context

    def post(self, request, *args, **kwargs):
        if not load_config().local_login:
            # No password is checked (nor counted by the throttle): there is nothing to guess.
            form = self.get_form_class()(request)
            return self.render_to_response(self.get_context_data(
                form=form, password_refused=True), status=403)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        _record_password_sign_in(form.get_user())
        return response


def _record_password_sign_in(user) -> None:
    setattr(user, audit.SIGNED_IN_WITH, SignInMethod.PASSWORD)
    audit.record(AuditAction.SIGN_IN, actor=user, detail="with a password")


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own password form while local logins are on (throttled like ours), else
    our login page, where the identity provider is."""
    if not load_config().local_login:
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("login") + (f"?{query}" if query else ""))
    was_signed_in = request.user.is_authenticated
    response = admin.site.login(request)
    if request.method == "POST" and not was_signed_in and request.user.is_authenticated:
        _record_password_sign_in(request.user)
    return response


# --- the re-check ------------------------------------------------------------------------------


class ProviderRecheckMiddleware(SessionRefresh):
    """mozilla-django-oidc's SessionRefresh, settings from ours, for page requests only: never
    under EXEMPT_PREFIXES, never an HTMX request (a poll cannot follow a redirect to the
    provider; the next page load does), never a POST."""

    get_settings = staticmethod(sso_setting)
    OIDC_EXEMPT_URLS: list = []
    OIDC_STATE_SIZE = 32
    OIDC_NONCE_SIZE = 32
    OIDC_USE_NONCE = True
    OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"

    def __init__(self, get_response):
        # The library reads the provider's endpoints here, at start-up; they are read when a
        # re-check is due instead.
        MiddlewareMixin.__init__(self, get_response)

    @property
    def OIDC_OP_AUTHORIZATION_ENDPOINT(self) -> str:  # noqa: N802 (the library's name)
        return _metadata().authorization_endpoint

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return load_config().oidc_client_id

    @property
    def OIDC_RP_SCOPES(self) -> str:  # noqa: N802
        return load_config().oidc_scopes

    def is_refreshable_url(self, request) -> bool:
        config = load_config()
        return (config.oidc_enabled and config.oidc_recheck_minutes > 0
                and request.method == "GET"
                and not is_exempt(request.path)
                and "HX-Request" not in request.headers
                and request.user.is_authenticated
                and signed_in_with_provider(request))

    def process_request(self, request):
        try:
            return super().process_request(request)
        except ProviderUnreachable as exc:
            # Keep serving whoever is signed in; the re-check comes once the provider is back.
            logger.warning("the re-check with the identity provider is put off: %s", exc)
            return None


def provider_origin(config: EngineConfig) -> str:
    """The provider's origin, which the logout form's redirect goes to (CSP form-action)."""
    if not config.oidc_enabled:
        return ""
    parts = urlsplit(config.oidc_issuer)
    return f"{parts.scheme}://{parts.netloc}"
