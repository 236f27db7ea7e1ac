"""Scopes of the management REST API (keys/api.py): granted to admin clients only."""

from django.db import migrations

SCOPES = {
    "authserver.keys.read": "Management API: list API keys, show a key and its usage (every client's keys).",
    "authserver.keys.write": "Management API: create, rotate, revoke, suspend and resume API keys, and revoke "
                             "everything of a client (every client's keys).",
}


def create(apps, schema_editor):
    Scope = apps.get_model("clients", "Scope")
    for name, description in SCOPES.items():
        scope, created = Scope.objects.get_or_create(name=name, defaults={"description": description})
        if not created and not scope.description:
            scope.description = description
            scope.save(update_fields=["description"])


def remove(apps, schema_editor):
    apps.get_model("clients", "Scope").objects.filter(name__in=list(SCOPES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0002_schedules"),
        ("clients", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, remove)]
