from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Dynamic stagings"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from .tasks import resume_after_start, start_wake_ticker

        post_spawn.connect(resume_after_start, dispatch_uid="provisioning-resume-after-start")
        post_spawn.connect(start_wake_ticker, dispatch_uid="provisioning-wake-ticker")
