from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Dynamic stagings"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from .tasks import resume_after_start

        post_spawn.connect(resume_after_start, dispatch_uid="provisioning-resume-after-start")
