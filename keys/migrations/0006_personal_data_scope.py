"""The management API's personal-data scope (keys.serializers.PERSONAL_DATA_SCOPE): a key's last
caller address is shown only to a caller whose token carries it. Granted to admin clients only."""

from django.db import migrations

NAME = "authserver.keys.personal_data"
DESCRIPTION = "Management API: see the personal data kept with API keys (the address a key was last used from)."


def create(apps, schema_editor):
    Scope = apps.get_model("clients", "Scope")
    Scope.objects.get_or_create(name=NAME, defaults={"description": DESCRIPTION})


def remove(apps, schema_editor):
    apps.get_model("clients", "Scope").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("keys", "0005_last_used_ip_encrypted"),
        ("clients", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, remove)]
