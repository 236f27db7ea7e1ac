"""``ApiKey.last_used_ip`` encrypted at rest (issue 13, item 7).

The clear column is renamed aside, the encrypted one added under the real name (its ciphertexts
are bound to ``keys.apikey`` / ``last_used_ip`` / the row's id), every stored address copied into
it through ``save()`` (which encrypts), and the clear column dropped. On PostgreSQL the old column
is ``inet``: its value is read as the address alone (no ``/32``), as the field returned it.
"""

import ipaddress

from django.db import migrations

import authserver.crypto.fields


def encrypt_addresses(apps, schema_editor):
    ApiKey = apps.get_model("keys", "ApiKey")
    for key in ApiKey.objects.exclude(last_used_ip_clear__isnull=True).only("pk", "last_used_ip_clear").iterator():
        key.last_used_ip = str(ipaddress.ip_interface(str(key.last_used_ip_clear)).ip)
        key.save(update_fields=["last_used_ip"])


def decrypt_addresses(apps, schema_editor):
    ApiKey = apps.get_model("keys", "ApiKey")
    for key in ApiKey.objects.exclude(last_used_ip__isnull=True).iterator():
        key.last_used_ip_clear = key.last_used_ip
        key.save(update_fields=["last_used_ip_clear"])


class Migration(migrations.Migration):

    dependencies = [
        ("keys", "0004_quota_lease_and_usage_batches"),
        ("crypto", "0002_schedules"),
    ]

    operations = [
        migrations.RenameField("apikey", "last_used_ip", "last_used_ip_clear"),
        migrations.AddField(
            model_name="apikey",
            name="last_used_ip",
            field=authserver.crypto.fields.EncryptedTextField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt_addresses, decrypt_addresses),
        migrations.RemoveField("apikey", "last_used_ip_clear"),
    ]
