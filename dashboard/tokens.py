"""The API tokens page: everyone makes and revokes their own tokens; staff also see and may
revoke everybody's (a leaked token is stopped by whoever notices), but make tokens only for
themselves here (``ds token create --user`` makes one for anybody, for an operator).

A new token is shown once, in the answer to the POST that made it: that answer is not cached
and the token is kept nowhere but in what the browser shows (only its hash is stored).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from provisioning import audit, engine
from provisioning.errors import UserError
from provisioning.models import ApiToken

from .forms import ApiTokenForm


@sensitive_variables("issued")
@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = engine.issue_token(request.user, name=data["name"], scope=data["scope"],
                                        days=data["days"], channel=audit.WEB)
        except UserError as exc:
            form.add_user_error(exc)
        else:
            form = ApiTokenForm()
    return render(request, "api_tokens.html", {
        "form": form,
        "issued": issued,
        "tokens": list(engine.tokens_visible_to(request.user)),
        "show_owner": request.user.is_staff,
    })


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    if not engine.may_revoke_token(request.user, token):
        raise PermissionDenied("Only the token's owner or an admin may revoke it.")
    if engine.revoke_token(token, by=request.user, channel=audit.WEB):
        messages.success(request, f"Revoked the token {token.name} ({token.prefix}…): it "
                                  "no longer works.")
    else:
        messages.info(request, f"The token {token.name} was already revoked.")
    return redirect("api_tokens")
