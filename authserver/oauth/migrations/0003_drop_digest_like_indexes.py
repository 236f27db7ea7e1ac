"""Drop the ``varchar_pattern_ops`` twins of the credential-digest indexes (PostgreSQL only).

Django gives every indexed ``CharField`` on PostgreSQL a second, ``_like`` index for ``LIKE``
queries. Nothing ever searches a digest by pattern; the unique B-tree answers the equality
lookups. The twin only doubled what every lookup competes for in the buffer cache and what every
insert maintains (measured by the bench: 10k vs 1M stored tokens).
"""

from django.db import migrations

DIGESTS = [("oauth", "AccessToken", "token_checksum"), ("oauth", "Grant", "code"), ("keys", "ApiKey", "digest")]


def _like_indexes(apps, schema_editor):
    for app_label, model_name, field_name in DIGESTS:
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        yield model, column, schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, _, name in _like_indexes(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, column, name in _like_indexes(apps, schema_editor):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)} ON "
            f"{schema_editor.quote_name(model._meta.db_table)} ({schema_editor.quote_name(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("oauth", "0002_cleanup_schedule"), ("keys", "0003_management_api_scopes")]

    operations = [migrations.RunPython(drop, restore)]
