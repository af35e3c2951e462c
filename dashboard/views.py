"""The dashboard's pages. Each view validates, calls the engine, then redirects or renders;
the queries live in dashboard.fleet and dashboard.progress, the cost math in
provisioning.costs.

The staging's progress partial answers 286 ("stop polling") once nothing will change, and its
markup then carries no ``hx-trigger``. The fleet table is polled by every open fleet page (every
3 s while something changes, else every 10 s) so that stagings others make appear: it sends
back the version it was rendered from (If-None-Match) and gets 304, nothing to render, until
anybody's staging changes. Asked for without HTMX, both redirect to their full page, which
always works without JavaScript.

A test account's password is never on a page until its owner (or an admin) asks for it with a
POST: it is then read from Secrets Manager, the look is recorded in the audit trail, and the
answer is marked uncacheable. It is never logged, nor kept anywhere but in AWS.

The Setup page (staff only) shows ``ds doctor``'s report. It costs a few dozen AWS calls, so
it is kept in the cache for a few minutes; the fleet page only reads that copy to say how many
problems it had, and never runs a check itself.
"""

from urllib.parse import quote as urlquote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import quote_etag, url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from provisioning import audit, doctor, engine, notifications, tasks
from provisioning import sweep as orphan_sweep
from provisioning.config import load_config
from provisioning.costs import Rates, cost_so_far
from provisioning.errors import ExternalCallFailed, UserError
from provisioning.expiry import expiry_of
from provisioning.lifecycle import RowChange
from provisioning.models import (
    LOG_LINES_KEPT_PER_STEP,
    AuditAction,
    Orphan,
    Staging,
    StagingStatus,
    StepLog,
)
from provisioning.reconcile import reconcile

from . import fleet as fleet_queries
from .charts import daily_cost_chart
from .console import resource_links, service_logs_url
from .forms import CreateStagingForm, DeleteLeftoversForm, aws_problem, load_choices
from .progress import is_settled, load_progress, offered_actions

HISTORY_PAGE_SIZE = 50
EXAMPLE_BRANCH = "feature/new-login"


def _staging(pk: int) -> Staging:
    return get_object_or_404(Staging.objects.select_related("owner"), pk=pk)


def _staging_for_action(request: HttpRequest, pk: int) -> Staging:
    staging = _staging(pk)
    if not engine.may_act(request.user, staging):
        raise PermissionDenied("Only the staging's owner or an admin may do this.")
    return staging


def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only an admin may do this.")


def _current_orphans():
    return Orphan.objects.filter(deleted_at__isnull=True)


def _staging_url(staging: Staging) -> str:
    return reverse("staging", args=[staging.pk])


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _row_urls() -> fleet_queries.RowUrls:
    marker = fleet_queries.RowUrls.MARKER
    return fleet_queries.RowUrls.from_reversed(reverse("staging", args=[marker]),
                                               reverse("destroy", args=[marker]),
                                               reverse("extend", args=[marker]),
                                               reverse("recreate", args=[marker]))


def _fleet_context(request: HttpRequest, filters: fleet_queries.FleetFilters,
                   state: fleet_queries.FleetState) -> dict:
    query = filters.as_query()
    fleet_url = reverse("home") + (f"?{query}" if query else "")
    return {
        "fleet": fleet_queries.load_fleet(request.user, filters, _row_urls(), state),
        "filters": filters,
        # Reversed once here, not once per row: the table is polled.
        "fleet_url": fleet_url,
        "next_here": urlquote(fleet_url, safe="/"),
        "owner_filters": fleet_queries.OWNER_FILTERS,
        "statuses": fleet_queries.LIVE_STATUSES,
    }


def login_locked(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """What a locked-out login gets (django-axes calls it; see dashboard/login_throttle.py)."""
    config = load_config()
    return render(request, "login_locked.html", {
        "failure_limit": config.login_failure_limit,
        "lockout_minutes": config.login_lockout_minutes,
    }, status=429)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    filters = fleet_queries.FleetFilters.from_params(request.GET)
    context = _fleet_context(request, filters, fleet_queries.fleet_state())
    context["chart"] = daily_cost_chart(context["fleet"].daily)
    context["estimates"] = context["fleet"].rates
    context["pool"] = fleet_queries.warm_pool(context["fleet"].rates)
    context["leftovers"] = _current_orphans().count()
    context["setup_report"] = doctor.last_report() if request.user.is_staff else None
    return render(request, "fleet.html", context)


@login_required
@require_GET
def fleet_partial(request: HttpRequest) -> HttpResponse:
    """Polled by every open fleet page, so that stagings others make, change or destroy show
    up: 304 when the fleet's version is the one the page sent (If-None-Match), else the
    table with its new version."""
    if not request.htmx:
        query = request.GET.urlencode()
        return redirect(reverse("home") + (f"?{query}" if query else ""))
    filters = fleet_queries.FleetFilters.from_params(request.GET)
    state = fleet_queries.fleet_state()
    etag = quote_etag(state.version(request.user, filters))
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = render(request, "partials/fleet_table.html",
                          _fleet_context(request, filters, state))
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    owner = request.GET.get("owner", "all")
    owner = owner if owner in fleet_queries.OWNER_FILTERS else "all"
    page = fleet_queries.history_page(request.user, owner, request.GET.get("page"),
                                      HISTORY_PAGE_SIZE)
    return render(request, "history.html", {
        "page": page,
        "rows": fleet_queries.history_rows(page.object_list, Rates(), _row_urls(),
                                           request.user),
        "owner": owner,
        "owner_filters": fleet_queries.OWNER_FILTERS,
    })


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    """The create form. Above it, how much of the caps the user has used (the button is off
    at a cap); a branch that already has a live staging gets that staging offered, once."""
    choices = load_choices()
    form = CreateStagingForm(request.POST or None, sources=choices.sources)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            staging = engine.request_create(
                branch=data["branch"], owner=request.user, name=data["name"] or None,
                source=data["source"] or None, db_mode=data["db_mode"],
                ttl_hours=data["ttl"] or None,
            )
        except UserError as exc:
            form.add_user_error(exc)
        except ExternalCallFailed as exc:
            form.add_error(None, aws_problem(exc))
        else:
            return redirect(_staging_url(staging))
    return render(request, "create.html", {
        "form": form, "choices": choices,
        # Read after the request: a create just made counts.
        "allowance": engine.create_allowance(request.user),
        "refused_for": _existing_offer(request, form.existing_staging),
        "preview": _name_preview(request, form.data.get("branch", ""),
                                 form.data.get("name", "")),
        # The refusal under the name field says it already; the preview does not repeat it.
        "conflict_shown": bool(form.errors.get("name")),
    })


def _existing_offer(request: HttpRequest, staging: Staging | None) -> dict | None:
    """A live staging of the branch asked for, with what the user may do with it."""
    if staging is None:
        return None
    return {"staging": staging, "may_redeploy": engine.may_redeploy(request.user, staging)}


def _name_preview(request: HttpRequest, branch: str, name: str) -> dict:
    if not branch.strip() and not name.strip():
        return {"example_branch": EXAMPLE_BRANCH, "example": engine.derive_name(EXAMPLE_BRANCH)}
    plan = engine.preview_create(branch, name)
    return {"plan": plan, "existing": _existing_offer(request, plan.existing)}


@login_required
@require_GET
def name_preview_partial(request: HttpRequest) -> HttpResponse:
    preview = _name_preview(request, request.GET.get("branch", ""), request.GET.get("name", ""))
    return render(request, "partials/name_preview.html", {"preview": preview})


LOG_LINES_WHILE_POLLING = 20


def _live_context(request: HttpRequest, staging: Staging) -> dict:
    recent = fleet_queries.recent_operations(staging)
    progress = load_progress(staging, recent[0] if recent else None)
    config = load_config()
    outputs = fleet_queries.resource_outputs(staging) if staging.is_live else {}
    web_service = outputs.get("web_service", {}).get("arn")
    may_act = engine.may_act(request.user, staging)
    settled = is_settled(staging, progress)
    if progress:
        # Polled every two seconds while the operation runs: only each step's newest lines.
        StepLog.objects.attach_to(
            progress.steps, LOG_LINES_KEPT_PER_STEP if settled else LOG_LINES_WHILE_POLLING)
    rates = Rates()
    return {
        "staging": staging,
        "progress": progress,
        "settled": settled,
        "offered": offered_actions(staging, progress, may_act),
        "may_reveal": may_act and bool(staging.login_secret_arn),
        "resources": resource_links(outputs, cluster=config.cluster),
        "logs_url": service_logs_url(web_service, cluster=config.cluster) if web_service else "",
        "operations": recent,
        # The facts at the top are polled too: a staging destroyed while its page is open
        # must stop showing an hourly cost.
        "hourly": rates.hourly(staging.db_mode) if staging.is_live else None,
        "so_far": cost_so_far(rates, fleet_queries.lifetime_of(staging)),
        "estimates": rates,
        # Its URLs and console links lead nowhere real: the pages say so.
        "sandbox": config.sandbox,
        # The countdown is polled with the facts: a destroyed staging has none.
        "expiry": expiry_of(staging),
        "changes": engine.offered_changes(request.user, staging),
        "ttl_hours": config.ttl_hours,
    }


def _detail_context(request: HttpRequest, staging: Staging) -> dict:
    context = _live_context(request, staging)
    # Outside the polled part: read once per page, not every two seconds.
    context["audit_trail"] = audit.trail_for(staging)
    return context


@login_required
@require_GET
def staging_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staging = _staging(pk)
    context = _detail_context(request, staging)
    if request.user.is_staff:
        context["bypass"] = _bypass(staging)
    return render(request, "staging.html", context)


def _bypass(staging: Staging) -> dict | None:
    """For staff: the header with which automated tests skip the staging's sign-in."""
    try:
        found = engine.reveal_bypass(staging)
    except ExternalCallFailed as exc:
        return {"problem": f"could not read it from AWS ({exc.call}: {exc.code})"}
    return {"header": found[0], "token": found[1]} if found else None


@sensitive_variables()
@login_required
@require_POST
@never_cache
def reveal_login(request: HttpRequest, pk: int) -> HttpResponse:
    """The test account's password: in place for HTMX, else on the staging page."""
    staging = _staging(pk)
    if not engine.may_act(request.user, staging):
        # Somebody asked for a password that is not theirs to see: worth knowing who.
        audit.record(AuditAction.REVEAL_REFUSED, actor=request.user, staging=staging,
                     detail="not the staging's owner or an admin")
        raise PermissionDenied("Only the staging's owner or an admin may do this.")
    reveal = {"password": "", "problem": ""}
    if not staging.login_secret_arn:
        reveal["problem"] = "No password is kept for this staging."
    else:
        try:
            reveal["password"] = engine.reveal_login(staging)
        except ExternalCallFailed as exc:
            reveal["problem"] = (f"Could not read the password from AWS ({exc.call}: "
                                 f"{exc.code}). Try again in a minute.")
        else:
            audit.record(AuditAction.REVEAL_LOGIN, actor=request.user, staging=staging)
    if request.htmx:
        return render(request, "partials/login_password.html",
                      {"staging": staging, "reveal": reveal})
    context = _detail_context(request, staging)
    context["reveal"] = reveal
    return render(request, "staging.html", context)


@login_required
@require_GET
def staging_progress_partial(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.htmx:
        return redirect("staging", pk=pk)
    staging = _staging(pk)
    context = _live_context(request, staging)
    response = render(request, "partials/staging_live.html", context)
    if context["settled"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
@require_http_methods(["GET", "POST"])
def destroy(request: HttpRequest, pk: int) -> HttpResponse:
    staging = _staging_for_action(request, pk)
    back = _safe_next(request, _staging_url(staging))
    if staging.status == StagingStatus.DESTROYED:
        messages.info(request, f"{staging.name} is already destroyed.")
        return redirect(_staging_url(staging))
    if request.method == "POST":
        try:
            engine.request_destroy(staging, user=request.user)
        except UserError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Destroying {staging.name}: everything it made in AWS "
                                      "is being removed.")
        return redirect(back)
    return render(request, "destroy.html", {"staging": staging, "next": back})


@login_required
@require_POST
def redeploy(request: HttpRequest, pk: int) -> HttpResponse:
    staging = _staging_for_action(request, pk)
    try:
        engine.request_redeploy(staging, user=request.user)
    except UserError as exc:
        messages.error(request, exc.message)
    except ExternalCallFailed as exc:
        messages.error(request, aws_problem(exc))
    else:
        messages.success(request, f"Redeploying {staging.name} with the newest image of "
                                  f"{staging.branch}.")
    return redirect(_staging_url(staging))


def _staging_for_change(request: HttpRequest, pk: int, change: str) -> Staging:
    staging = _staging(pk)
    if not engine.may(change, request.user, staging):
        raise PermissionDenied("Only an admin may do this." if change == RowChange.KEEP
                               else "Only the staging's owner or an admin may do this.")
    return staging


@login_required
@require_POST
def extend(request: HttpRequest, pk: int) -> HttpResponse:
    """Expire ``hours`` from now (empty: DS_TTL_HOURS), capped at DS_MAX_TTL_HOURS."""
    staging = _staging_for_change(request, pk, RowChange.EXTEND)
    try:
        extension = engine.extend(staging, user=request.user, hours=request.POST.get("hours"))
    except UserError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, extension.sentence(staging.name))
    return redirect(_safe_next(request, _staging_url(staging)))


@login_required
@require_POST
def keep(request: HttpRequest, pk: int) -> HttpResponse:
    """Keep without expiry (``kept=1``) or stop keeping (``kept=0``): admins only."""
    staging = _staging_for_change(request, pk, RowChange.KEEP)
    kept = request.POST.get("kept") != "0"
    try:
        changed = engine.set_kept(staging, user=request.user, kept=kept)
    except UserError as exc:
        messages.error(request, exc.message)
    else:
        if not changed:
            messages.info(request, f"{staging.name} already was as asked.")
        elif kept:
            messages.success(request, f"{staging.name} is kept: it does not expire.")
        else:
            messages.success(request, f"{staging.name} is no longer kept: it expires in "
                                      f"{load_config().ttl_hours:g} hours unless extended.")
    return redirect(_safe_next(request, _staging_url(staging)))


@login_required
@require_POST
def recreate(request: HttpRequest, pk: int) -> HttpResponse:
    """The destroyed (or lost) staging made again; its page, or the old one saying why not."""
    staging = _staging_for_change(request, pk, RowChange.RECREATE)
    try:
        again = engine.request_recreate(staging, user=request.user)
    except UserError as exc:
        messages.error(request, f"Cannot recreate {staging.name}: {exc.message}")
    except ExternalCallFailed as exc:
        messages.error(request, aws_problem(exc))
    else:
        messages.success(request, f"Recreating {again.name} from {again.branch}.")
        return redirect(_staging_url(again))
    return redirect(_safe_next(request, _staging_url(staging)))


@login_required
@require_GET
def leftovers(request: HttpRequest) -> HttpResponse:
    return render(request, "leftovers.html", {
        "orphans": list(_current_orphans().order_by("kind", "arn")),
        "sweeps": audit.recent([AuditAction.SWEEP, AuditAction.SWEEP_DELETE]),
        "schedule_runs": tasks.recent_runs(),
        "last_sweep_at": orphan_sweep.last_sweep_at(),
        "may_delete": request.user.is_staff,
    })


def _sweep_problem(exc: ExternalCallFailed) -> str:
    return (f"AWS did not answer as expected ({exc.call}: {exc.code}: {exc.message}). "
            "Try again in a minute; the periodic sweep also tries again by itself.")


def _leftovers_phrase(count: int) -> str:
    return f"{count} leftover{'' if count == 1 else 's'}"


@login_required
@require_POST
def sweep_now(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    try:
        reconciled = reconcile(delete=False, actor=request.user)
    except ExternalCallFailed as exc:
        messages.error(request, _sweep_problem(exc))
    else:
        found = reconciled.orphans
        if reconciled.lost:
            messages.warning(request, "AWS no longer has the resources of "
                             + ", ".join(judged.name for judged in reconciled.lost)
                             + ": marked lost (destroy or recreate each on its page).")
        if found:
            messages.warning(request, f"The sweep found {_leftovers_phrase(len(found))} in AWS.")
        else:
            messages.success(request, "The sweep found nothing left behind in AWS.")
    return redirect("leftovers")


@login_required
@require_POST
def delete_leftovers(request: HttpRequest) -> HttpResponse:
    """Queue the deletion: removing a service waits for it to drain, minutes on real AWS."""
    _require_staff(request)
    form = DeleteLeftoversForm(request.POST, orphans=_current_orphans())
    if not form.is_valid():
        messages.error(request, form.first_error())
        return redirect("leftovers")
    chosen = sorted(set(form.cleaned_data["orphan"]))
    tasks.enqueue_orphan_deletion(chosen, request.user.pk)
    messages.success(request, f"Deleting {_leftovers_phrase(len(chosen))} in the background, "
                              "in dependency order. Each one leaves this list once AWS "
                              "confirms it is gone; a failure shows here with the AWS error.")
    return redirect("leftovers")


@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """The last report while it is fresh, else a new one; a POST asks for a new one."""
    _require_staff(request)
    report = None if request.method == "POST" else doctor.last_report()
    if report is None:
        report = doctor.run_checks(load_config())
        doctor.remember(report)
    if request.method == "POST":
        return redirect("setup")
    return render(request, "setup.html", {"report": report})


NOTIFICATIONS_SHOWN = 50


@login_required
@require_GET
def notifications_page(request: HttpRequest) -> HttpResponse:
    shown = list(notifications.inbox(request.user).select_related("staging")
                 [:NOTIFICATIONS_SHOWN])
    return render(request, "notifications.html", {
        "notifications": shown,
        "unread": sum(1 for item in shown if item.is_unread),
        "email_note": load_config().email_enabled and bool(request.user.email),
    })


@login_required
@require_POST
def mark_notifications_read(request: HttpRequest) -> HttpResponse:
    """One notification (``id``) or, without it, all of the user's: marked read."""
    raw = request.POST.get("id", "")
    notifications.mark_read(request.user, int(raw) if raw.isdecimal() else None)
    return redirect(_safe_next(request, reverse("notifications")))
