"""Beat schedule for webhook deliveries and secret overlaps (editable in the admin); the old server-wide key goes."""

from django.db import migrations

SCHEDULES = [
    ("Webhooks: due deliveries and retries, secrets past their overlap", "webhooks.sweep", 1, "minutes"),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def drop_server_wide_key(apps, schema_editor):
    # The server-wide "Authserver-Signature" key that no receiver could verify is gone: delete it.
    apps.get_model("crypto", "DataKey").objects.filter(purpose="secret:webhook-signing").delete()


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[task for _, task, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("crypto", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, remove),
                  migrations.RunPython(drop_server_wide_key, migrations.RunPython.noop)]
