"""Encrypted model fields: ``EncryptedTextField`` (str) and ``EncryptedJSONField`` (JSON values).

Stored as text: ``v<KEK version>:<base64url of the envelope ciphertext>``. The version prefix
lets rotation and ``keys status`` find what depends on a version with a plain ``LIKE 'v3:%'``;
it is also inside the authenticated ciphertext, so editing it fails closed.

The associated data is ``<app_label.model>\\0<field name>\\0<primary key>``: a ciphertext copied to
another row, column or table does not decrypt. The primary key must therefore be known *before*
the first insert: use a UUID primary key with a default (``models.UUIDField(primary_key=True,
default=uuid.uuid4)``); saving a row whose pk is still None raises ValueError.

Values are encrypted in ``Model.save()`` (``pre_save``) and decrypted lazily on first attribute
access. What cannot bind the row identity is refused rather than written in clear:
``QuerySet.update(field=...)``, ``bulk_update`` and lookups with a plaintext value raise TypeError
(``isnull`` works). ``.values()`` / ``.values_list()`` return the stored :class:`Ciphertext`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_save

from authserver.crypto import envelope
from authserver.crypto.keystore import DecryptionError


class Ciphertext(str):
    """A stored (encrypted) value, as read from or written to the database."""

    bound_pk: Any = None

    @property
    def version(self) -> int:
        head, sep, _ = self.partition(":")
        if not sep or not head.startswith("v") or not head[1:].isdigit():
            raise DecryptionError("not an encrypted field value")
        return int(head[1:])

    def blob(self) -> bytes:
        version = self.version
        try:
            raw = base64.urlsafe_b64decode(self.partition(":")[2].encode())
        except (binascii.Error, ValueError):
            raise DecryptionError("encrypted field value is not valid base64") from None
        if envelope.ciphertext_version(raw) != version:
            raise DecryptionError("encrypted field value: version prefix does not match the ciphertext")
        return raw


def _stored(blob: bytes, pk: Any) -> Ciphertext:
    value = Ciphertext(f"v{envelope.ciphertext_version(blob)}:" + base64.urlsafe_b64encode(blob).decode())
    value.bound_pk = pk
    return value


class EncryptedAttribute(DeferredAttribute):
    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            pk = value.bound_pk if value.bound_pk is not None else instance.pk
            value = cast("EncryptedFieldMixin", self.field).decrypt_value(pk, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # A data descriptor, so that every read goes through __get__ (lazy decryption).
        instance.__dict__[self.field.attname] = value


if TYPE_CHECKING:
    # What the mixin is always combined with, so mypy checks its super() calls against Field.
    _FieldBase = models.Field[Any, Any]
else:
    _FieldBase = object


class EncryptedFieldMixin(_FieldBase):
    descriptor_class = EncryptedAttribute

    def __init__(self, *args: Any, purpose: str | None = None, **kwargs: Any) -> None:
        self._purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self._purpose:
            kwargs["purpose"] = self._purpose
        return name, path, args, kwargs

    def contribute_to_class(self, cls: Any, name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        if not cls._meta.abstract:
            post_init.connect(_bind_loaded_ciphertexts, sender=cls, weak=False,
                              dispatch_uid=f"encrypted-fields-{cls._meta.label_lower}")
            pre_save.connect(_require_pk, sender=cls, weak=False,
                             dispatch_uid=f"encrypted-fields-pk-{cls._meta.label_lower}")

    # --- identity --------------------------------------------------------------------------------
    @property
    def purpose(self) -> str:
        return self._purpose or f"{self.model._meta.label_lower}.{self.name}".lower()

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def aad(self, pk: Any) -> bytes:
        if pk is None:
            raise ValueError(f"{self.label}: an encrypted field needs the primary key before the row is saved "
                             "(use a UUID primary key with a default)")
        return f"{self.model._meta.label_lower}\x00{self.name}\x00{pk}".encode()

    # --- plaintext <-> bytes (subclasses) --------------------------------------------------------
    def to_bytes(self, value: Any) -> bytes:
        raise NotImplementedError

    def from_bytes(self, data: bytes) -> Any:
        raise NotImplementedError

    # --- encryption -----------------------------------------------------------------------------
    def encrypt_value(self, pk: Any, value: Any) -> Ciphertext:
        return _stored(envelope.encrypt(self.purpose, self.to_bytes(value), self.aad(pk)), pk)

    def decrypt_bytes(self, pk: Any, stored: str) -> bytes:
        return envelope.decrypt(self.purpose, Ciphertext(stored).blob(), self.aad(pk))

    def decrypt_value(self, pk: Any, stored: str) -> Any:
        return self.from_bytes(self.decrypt_bytes(pk, stored))

    def reencrypt_stored(self, pk: Any, stored: str) -> Ciphertext:
        """The same plaintext under the current KEK version (rotation)."""
        blob = envelope.encrypt(self.purpose, self.decrypt_bytes(pk, stored), self.aad(pk))
        return _stored(blob, pk)

    # --- Django hooks ---------------------------------------------------------------------------
    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None:
            return None
        pk = model_instance.pk
        if isinstance(value, Ciphertext):
            if value.bound_pk is not None and value.bound_pk == pk:
                return value  # loaded and never read: unchanged
            value = self.decrypt_value(value.bound_pk if value.bound_pk is not None else pk, value)
        return self.encrypt_value(pk, value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else Ciphertext(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, Ciphertext):
            return str(value)
        raise TypeError(
            f"{self.label} is encrypted in Model.save() only; QuerySet.update(), bulk_update() and "
            "lookups by plaintext value are not supported")

    def get_prep_value(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        """Serialization (dumpdata) writes the ciphertext, never the plaintext."""
        value = self.pre_save(obj, False)
        return "" if value is None else str(value)


def _bind_loaded_ciphertexts(sender: Any, instance: Any, **kwargs: Any) -> None:
    for field in sender._meta.concrete_fields:
        if isinstance(field, EncryptedFieldMixin):
            value = instance.__dict__.get(field.attname)
            if isinstance(value, Ciphertext) and value.bound_pk is None:
                value.bound_pk = instance.pk


def _require_pk(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Refuse before the save's transaction starts (the AAD needs the primary key)."""
    if instance.pk is not None:
        return
    for field in sender._meta.concrete_fields:
        if isinstance(field, EncryptedFieldMixin) and instance.__dict__.get(field.attname) is not None:
            field.aad(None)  # raises ValueError


class EncryptedTextField(EncryptedFieldMixin, models.TextField):
    description = "Text encrypted at rest (AES-256-GCM envelope, bound to the row)"

    def to_bytes(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"{self.label} takes str, not {type(value).__name__}")
        return value.encode()

    def from_bytes(self, data: bytes) -> Any:
        return data.decode()

    def to_python(self, value: Any) -> Any:
        return value if value is None or isinstance(value, str) else str(value)


class EncryptedJSONField(EncryptedFieldMixin, models.TextField):
    description = "A JSON value encrypted at rest (AES-256-GCM envelope, bound to the row)"
    # What django-stubs' plugin reads as the attribute's types: any JSON value, not TextField's str.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def to_bytes(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    def from_bytes(self, data: bytes) -> Any:
        return json.loads(data)

    def to_python(self, value: Any) -> Any:
        return value

    def formfield(self, form_class: type[forms.Field] | None = None,
                  choices_form_class: type[forms.ChoiceField] | None = None, **kwargs: Any) -> forms.Field | None:
        return super().formfield(form_class=form_class or forms.JSONField, choices_form_class=choices_form_class,
                                 **kwargs)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedFieldMixin]]:
    """Every concrete encrypted field of every installed model (each column once)."""
    from django.apps import apps

    found: list[tuple[type[models.Model], EncryptedFieldMixin]] = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if isinstance(field, EncryptedFieldMixin):
                found.append((model, field))
    return found
