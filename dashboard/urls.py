from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

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
    path("sweep/", views.leftovers, name="leftovers"),
    path("sweep/run/", views.sweep_now, name="sweep_now"),
    path("sweep/delete/", views.delete_leftovers, name="delete_leftovers"),
    path("setup/", views.setup, name="setup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
