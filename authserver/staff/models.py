"""What the staff plane keeps of its own: which accounts must replace their password first."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PasswordChangeRequired(models.Model):
    """An account whose password was set for it once (``serve``'s first-run admin): its first login
    must choose a new password before anything else. Passwords set by the operator through
    ``createsuperuser`` or ``changepassword`` are their own and create no row."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="+")
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "password changes required"

    def __str__(self) -> str:
        return f"password change required for user {self.user_id}"
