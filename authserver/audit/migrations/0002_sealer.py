"""Appends without the head lock: events get ``seq`` and ``chain`` from the sealer.

Existing events were chained in id order with ids 1, 2, 3, ... (the head lock handed them out),
so ``seq = id`` keeps every existing trail verifying unchanged, and the head's ``last_id`` becomes
``last_seq``. Those ids were written explicitly, which never advanced PostgreSQL's identity
sequence: it is moved past them here, before the first id comes from it.
"""

from django.core.management.color import no_style
from django.db import migrations, models
from django.db.models import F


def seq_from_id(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditEvent.objects.using(schema_editor.connection.alias).update(seq=F("id"))
    connection = schema_editor.connection
    for statement in connection.ops.sequence_reset_sql(no_style(), [AuditEvent]):
        schema_editor.execute(statement)


def seq_cleared(apps, schema_editor):
    pass  # the old schema ignores seq (the column is dropped)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="chain",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(seq_from_id, seq_cleared),
        migrations.RenameField(model_name="auditchainhead", old_name="last_id", new_name="last_seq"),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(("seq__isnull", True)), fields=["id"], name="audit_unsealed_idx"),
        ),
    ]
