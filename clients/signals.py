"""Deleting a client deletes its keys and tokens: every worker must forget cached answers."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver

from authserver import generation
from clients.models import Client


@receiver(post_delete, sender=Client)
def _client_deleted(sender: Any, instance: Client, **kwargs: Any) -> None:
    generation.invalidate()
