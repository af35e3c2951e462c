"""Each staging keeps the image tag of its branch, indexed, so a tag from the registry finds
the branches it stands for (the create page's suggestions, a create typed with a tag)."""

import re

from django.db import migrations, models

# The rule of names.image_tag_for_branch as it stands when this migration is written: a
# migration must keep doing what it did, whatever the code later becomes.
_NOT_TAG_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
BATCH = 1000


def _tag(branch: str) -> str:
    tag = _NOT_TAG_CHAR.sub("-", branch)
    if tag[:1] in {".", "-"}:
        tag = "_" + tag[1:]
    return tag[:128]


def fill_branch_tags(apps, schema_editor):
    Staging = apps.get_model("provisioning", "Staging")
    changed = []
    for staging in Staging.objects.only("pk", "branch").iterator(chunk_size=BATCH):
        staging.branch_tag = _tag(staging.branch)
        changed.append(staging)
        if len(changed) == BATCH:
            Staging.objects.bulk_update(changed, ["branch_tag"])
            changed = []
    Staging.objects.bulk_update(changed, ["branch_tag"])


class Migration(migrations.Migration):

    dependencies = [
        ("provisioning", "0008_step_logs_and_schedule_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="staging",
            name="branch_tag",
            field=models.CharField(blank=True, db_index=True, max_length=128),
        ),
        migrations.RunPython(fill_branch_tags, migrations.RunPython.noop),
    ]
