"""stagingbot's two endpoints, as Slack calls them (see README "stagingbot").

Both check Slack's signature on the raw body first: unsigned, badly signed, stale (over five
minutes) or replayed requests get 401 and change nothing. Then they answer at once, within
Slack's 3 seconds; the work runs in the queue and answers on the request's ``response_url``.
No login and no CSRF token: the signature is the proof of origin.
"""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from provisioning.config import load_config
from provisioning.slack import intake
from provisioning.slack.verification import is_fresh_and_signed


def _refusal(request: HttpRequest) -> HttpResponse | None:
    if not load_config().slack_signing_secret:
        return HttpResponse("stagingbot is not configured here (DS_SLACK_SIGNING_SECRET).",
                            status=503, content_type="text/plain")
    if not is_fresh_and_signed(request.body, request.headers.get("X-Slack-Request-Timestamp"),
                               request.headers.get("X-Slack-Signature")):
        return HttpResponse("Bad, stale or replayed Slack signature.", status=401,
                            content_type="text/plain")
    return None


@csrf_exempt
@require_POST
def commands(request: HttpRequest) -> HttpResponse:
    """A slash command: an ephemeral answer now, the rest on its response_url."""
    refused = _refusal(request)
    if refused:
        return refused
    return JsonResponse(intake.take_command(request.POST))


@csrf_exempt
@require_POST
def interactions(request: HttpRequest) -> HttpResponse:
    """A button press: an empty 200 now (Slack shows nothing more), the answer on its
    response_url."""
    refused = _refusal(request)
    if refused:
        return refused
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        return HttpResponse("The payload is not JSON.", status=400, content_type="text/plain")
    intake.take_action(payload)
    return HttpResponse(status=200)
