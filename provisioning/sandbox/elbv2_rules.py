"""CreateRule and ModifyRule refuse what an Application Load Balancer refuses, in the moto
server's process (and in-process for the tests that ask for it).

Moto takes any action anywhere. AWS does not, and a staging's sign-in rule is exactly where the
difference would show first on a real account:

* an ``authenticate-oidc`` or ``authenticate-cognito`` action only on an HTTPS listener
  (InvalidLoadBalancerAction): the load balancer's session cookie and the provider's redirect
  need TLS;
* with more than one action, each needs its own ``Order``, and the last one (highest Order)
  must be the one that answers: ``forward``, ``redirect`` or ``fixed-response``; an
  authenticate action comes before it (InvalidLoadBalancerAction);
* the provider's endpoints and issuer are https URLs (ValidationError).

DescribeRules never shows the client secret: AWS keeps it and never sends it back, so it is
not kept here at all.
"""

import functools

_installed = {"done": False}
AUTHENTICATE = frozenset({"authenticate-oidc", "authenticate-cognito"})
ANSWERS = frozenset({"forward", "redirect", "fixed-response"})
OIDC_URLS = ("Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint")


class RuleRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_actions(*, listener_protocol: str, actions: list[dict]) -> None:
    """Raise RuleRefused as the load balancer would for the first rule ``actions`` break."""
    types = [action.get("Type") for action in actions]
    if AUTHENTICATE & set(types) and listener_protocol != "HTTPS":
        raise RuleRefused("InvalidLoadBalancerAction",
                          "Authenticate actions are supported only on HTTPS listeners, "
                          f"not on this {listener_protocol} listener.")
    if len(actions) > 1:
        orders = [action.get("Order") for action in actions]
        if None in orders or len(set(orders)) != len(orders):
            raise RuleRefused("InvalidLoadBalancerAction",
                              "Each action of a rule with several actions needs its own Order.")
        last = max(actions, key=lambda action: int(action["Order"]))
        if last.get("Type") not in ANSWERS:
            raise RuleRefused("InvalidLoadBalancerAction",
                              f"The last action must be one of {', '.join(sorted(ANSWERS))}, "
                              f"not {last.get('Type')}.")
    for action in actions:
        config = action.get("AuthenticateOidcConfig") or {}
        for key in OIDC_URLS:
            if action.get("Type") == "authenticate-oidc" and \
                    not str(config.get(key, "")).startswith("https://"):
                raise RuleRefused("ValidationError",
                                  f"AuthenticateOidcConfig {key} must be an https URL.")


def _without_client_secret(actions: list[dict]) -> list[dict]:
    kept = []
    for action in actions:
        config = action.get("AuthenticateOidcConfig")
        if config and "ClientSecret" in config:
            action = {**action, "AuthenticateOidcConfig": {
                key: value for key, value in config.items() if key != "ClientSecret"}}
        kept.append(action)
    return kept


def _refused(refused: RuleRefused):
    from moto.elbv2.exceptions import ELBClientError

    return ELBClientError(refused.code, refused.message)


def _checked_create(original):
    @functools.wraps(original)
    def wrapper(self, listener_arn, conditions, priority, actions, *args, **kwargs):
        listeners = self.describe_listeners(None, [listener_arn])
        if listeners:
            try:
                check_actions(listener_protocol=listeners[0].protocol, actions=actions)
            except RuleRefused as refused:
                raise _refused(refused) from None
        return original(self, listener_arn, conditions, priority,
                        _without_client_secret(actions), *args, **kwargs)

    return wrapper


def _checked_modify(original):
    @functools.wraps(original)
    def wrapper(self, rule_arn, conditions, actions, *args, **kwargs):
        rules = self.describe_rules(listener_arn=None, rule_arns=[rule_arn])
        if rules and actions:
            listener = self.describe_listeners(None, [rules[0].listener_arn])[0]
            try:
                check_actions(listener_protocol=listener.protocol, actions=actions)
            except RuleRefused as refused:
                raise _refused(refused) from None
        return original(self, rule_arn, conditions, _without_client_secret(actions or []),
                        *args, **kwargs)

    return wrapper


def install() -> None:
    """Patch moto's ELBv2 backend in this process (once)."""
    if _installed["done"]:
        return
    from moto.elbv2.models import ELBv2Backend

    ELBv2Backend.create_rule = _checked_create(ELBv2Backend.create_rule)
    ELBv2Backend.modify_rule = _checked_modify(ELBv2Backend.modify_rule)
    _installed["done"] = True
