from django.contrib import admin
from django.urls import path
from mozilla_django_oidc.views import OIDCLogoutView

from . import api, slack_views, sso, tokens, views

urlpatterns = [
    path("", views.home, name="home"),
    path("fleet/table/", views.fleet_partial, name="fleet_partial"),
    path("history/", views.history, name="history"),
    path("stagings/new/", views.create, name="create"),
    path("stagings/new/name/", views.name_preview_partial, name="name_preview"),
    path("stagings/<int:pk>/", views.staging_detail, name="staging"),
    path("stagings/<int:pk>/progress/", views.staging_progress_partial, name="staging_progress"),
    path("stagings/<int:pk>/destroy/", views.destroy, name="destroy"),
    path("stagings/<int:pk>/redeploy/", views.redeploy, name="redeploy"),
    path("stagings/<int:pk>/recreate/", views.recreate, name="recreate"),
    path("stagings/<int:pk>/login/", views.reveal_login, name="reveal_login"),
    path("stagings/<int:pk>/extend/", views.extend, name="extend"),
    path("stagings/<int:pk>/keep/", views.keep, name="keep"),
    path("sweep/", views.leftovers, name="leftovers"),
    path("sweep/run/", views.sweep_now, name="sweep_now"),
    path("sweep/delete/", views.delete_leftovers, name="delete_leftovers"),
    path("setup/", views.setup, name="setup"),
    path("tokens/", tokens.api_tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", tokens.revoke, name="revoke_api_token"),
    api.urls(),
    path("notifications/", views.notifications_page, name="notifications"),
    path("notifications/read/", views.mark_notifications_read, name="notifications_read"),
    path("login/", sso.LoginView.as_view(), name="login"),
    # POST only; ends the provider's session too for whoever signed in there (dashboard/sso.py).
    path("logout/", OIDCLogoutView.as_view(), name="logout"),
    # The names mozilla-django-oidc reverses.
    path("oidc/authenticate/", sso.SignInStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", sso.SignInCallback.as_view(), name="oidc_authentication_callback"),
    path("admin/login/", sso.admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("slack/commands", slack_views.commands, name="slack_commands"),
    path("slack/interactions", slack_views.interactions, name="slack_interactions"),
]
