"""Periodic work: the orphan sweep and the warm-pool refill (see tasks.py)."""

from django.db import migrations

SCHEDULES = {
    "sweep orphaned resources": ("provisioning.tasks.sweep_orphans", 15),
    "refill warm database pools": ("provisioning.tasks.refill_pools", 1),
}


def add_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1},
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0003_audit_orphans_pool_secrets")]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
