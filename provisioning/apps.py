from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Dynamic stagings"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from . import notifications
        from .signals import operation_finished
        from .slack.channel import SlackChannel
        from .tasks import resume_after_start, start_wake_ticker, sync_schedules

        post_spawn.connect(resume_after_start, dispatch_uid="provisioning-resume-after-start")
        post_spawn.connect(start_wake_ticker, dispatch_uid="provisioning-wake-ticker")
        # After every migrate (a deployment, a new test database): schedules as declared.
        post_migrate.connect(sync_schedules, sender=self, dispatch_uid="provisioning-schedules")
        # Notifications: the end of each operation, told on every channel (Slack plugs in).
        operation_finished.connect(notifications.on_operation_finished,
                                   dispatch_uid="provisioning-notify-finished")
        notifications.register(SlackChannel())
