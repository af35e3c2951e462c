from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.db.backends.signals import connection_created

        from . import checks  # noqa: F401 - registers the system checks
        from .login_throttle import record_lockout
        from .private_files import tighten_sqlite_files

        user_locked_out.connect(record_lockout, dispatch_uid="dashboard-audit-lockouts")

        connection_created.connect(tighten_sqlite_files, dispatch_uid="dashboard-private-sqlite")
