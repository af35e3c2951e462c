from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from . import checks  # noqa: F401 - registers the system checks
        from .private_files import tighten_sqlite_files

        connection_created.connect(tighten_sqlite_files, dispatch_uid="dashboard-private-sqlite")
