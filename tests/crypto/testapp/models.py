"""Models with encrypted fields, installed only in tests (no migrations: created in the test database)."""

import uuid

from django.db import models

from authserver.crypto import EncryptedJSONField, EncryptedTextField


class Record(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=50, blank=True)
    note = EncryptedTextField(null=True, blank=True)
    data = EncryptedJSONField(null=True, blank=True)


class Other(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    secret = EncryptedTextField(null=True, purpose="test.other")


class AutoPk(models.Model):
    """An auto-increment pk is only known after insert: saving an encrypted value must refuse."""

    note = EncryptedTextField(null=True)
