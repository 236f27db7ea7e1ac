"""Request and response shapes of the API-key management API (keys/api.py).

A key is shown like ``manage.py apikey``'s ``describe()``: never the plaintext (only the creating
or rotating response carries it, as ``key``), never the digest.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from keys import policy
from keys.models import ApiKey, ApiKeyStatus

_DURATION_RE = re.compile(r"^(\d{1,9})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION_SECONDS = 10 * 365 * 86400  # far beyond any policy maximum; the services decide


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not ignored: a typo such as ``scope`` for ``scopes`` would
    otherwise silently issue a key with every scope of the client."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 0, "maximum": _MAX_DURATION_SECONDS},
            {"type": "string", "pattern": r"^\d{1,9}[smhd]$"},
        ],
        "description": "Seconds, or a number followed by s, m, h or d (e.g. `24h`, `30d`).",
        "example": "30d",
    }
)
class DurationField(serializers.Field):
    """Seconds (integer) or ``90s`` / ``15m`` / ``24h`` / ``30d`` → timedelta."""

    default_error_messages = {
        "invalid": "Use seconds or a number followed by s, m, h or d (e.g. 24h).",
        "min_value": "Must be at least {min_seconds} seconds.",
        "max_value": "Too long.",
    }

    def __init__(self, *, min_seconds: int = 0, **kwargs: Any) -> None:
        self.min_seconds = min_seconds
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> timedelta:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            seconds = data
        elif isinstance(data, str) and (match := _DURATION_RE.match(data.strip())):
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        elif isinstance(data, str) and data.strip().isdigit() and len(data.strip()) <= 10:
            seconds = int(data.strip())
        else:
            self.fail("invalid")
        if seconds < self.min_seconds:
            self.fail("min_value", min_seconds=self.min_seconds)
        if seconds > _MAX_DURATION_SECONDS:
            self.fail("max_value")
        return timedelta(seconds=seconds)

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{1,9}/(\d{0,9}[smhd]|sec|min|hour|day)$",
        "description": "N requests per period: `100/m`, `10/s`, `5000/h`, `100000/d`, `100/60s`.",
        "example": "100/m",
    }
)
class RateLimitField(serializers.Field):
    def to_internal_value(self, data: Any) -> tuple[int, int]:
        if not isinstance(data, str) or len(data) > 32:
            raise serializers.ValidationError("Use N/PERIOD such as 100/m.")
        try:
            return policy.parse_rate_limit(data.strip())
        except policy.KeyPolicyError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: tuple[int, int]) -> str:
        return f"{value[0]}/{value[1]}s"


class SpaceSeparatedListField(serializers.ListField):
    """A space-separated model field shown as a list."""

    child = serializers.CharField()

    def to_representation(self, data: Any) -> list[str]:
        return (data or "").split()


# -- Responses -------------------------------------------------------------------------------------


# The caller's address a key was last used from is personal data: shown only to a caller whose
# token carries this scope (keys.api puts ``personal_data`` in the serializer's context), as the
# admin shows it only with audit.view_personal_data.
PERSONAL_DATA_SCOPE = "authserver.keys.personal_data"
PERSONAL_FIELDS = ("last_used_ip",)


def personal_fields_optional(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook (settings.SPECTACULAR_SETTINGS): a personal field is absent
    without the personal-data scope, so no response schema may require it."""
    for schema in result.get("components", {}).get("schemas", {}).values():
        required = schema.get("required")
        if required and any(name in schema.get("properties", {}) for name in PERSONAL_FIELDS):
            schema["required"] = [name for name in required if name not in PERSONAL_FIELDS]
    return result


def without_personal_data(data: Any, context: dict[str, Any]) -> Any:
    if not context.get("personal_data"):
        for name in PERSONAL_FIELDS:
            data.pop(name, None)
    return data


class ApiKeySerializer(serializers.ModelSerializer):
    """A key without its secret: the plaintext exists only in the create/rotate response."""

    client_id = serializers.CharField(source="client.client_id", read_only=True)
    scopes = SpaceSeparatedListField(
        source="scope", read_only=True, help_text="Scopes the key grants (a subset of the client's)."
    )
    audiences = serializers.ListField(child=serializers.CharField(), read_only=True)
    allowed_ips = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="CIDRs the key may be used from; empty allows any."
    )
    rate_limit = serializers.SerializerMethodField(help_text="`N/<seconds>s`, or null for no rate limit.")
    created_by = serializers.CharField(source="created_by_label", read_only=True)
    rotated_from = serializers.UUIDField(source="rotated_from_id", read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "hint",
            "client_id",
            "status",
            "scopes",
            "audiences",
            "allowed_ips",
            "rate_limit",
            "quota",
            "expires",
            "grace_ends",
            "rotated_from",
            "created",
            "created_by",
            "revoked",
            "suspended",
            "last_used",
            "last_used_ip",
            "uses",
        ]
        read_only_fields = fields

    def get_rate_limit(self, key: ApiKey) -> str | None:
        return f"{key.rate_limit}/{key.rate_limit_period}s" if key.rate_limit else None

    def to_representation(self, instance: Any) -> Any:
        return without_personal_data(super().to_representation(instance), self.context)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The plaintext key. Shown once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields

    def __init__(self, instance: ApiKey | None = None, *, plaintext: str = "", **kwargs: Any) -> None:
        self._plaintext = plaintext
        super().__init__(instance, **kwargs)

    def to_representation(self, instance: ApiKey) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["key"] = self._plaintext
        return data


class ApiKeyRotatedSerializer(ApiKeyCreatedSerializer):
    previous_id = serializers.UUIDField(source="rotated_from_id", read_only=True, help_text="The key that was rotated.")
    previous_valid_until = serializers.DateTimeField(
        source="rotated_from.grace_ends",
        read_only=True,
        allow_null=True,
        help_text="When the previous key stops working.",
    )

    class Meta(ApiKeyCreatedSerializer.Meta):
        fields = [*ApiKeyCreatedSerializer.Meta.fields, "previous_id", "previous_valid_until"]
        read_only_fields = fields


class UsageBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Start of the bucket (UTC).")
    requests = serializers.IntegerField(min_value=0)


class ApiKeyUsageSerializer(serializers.Serializer):
    key_id = serializers.UUIDField()
    granularity = serializers.ChoiceField(choices=["hour", "day"])
    start = serializers.DateTimeField(help_text="Start of the first bucket (UTC).")
    end = serializers.DateTimeField(help_text="End of the last bucket (UTC), exclusive.")
    total = serializers.IntegerField(min_value=0, help_text="Requests in the window.")
    uses = serializers.IntegerField(min_value=0, help_text="Requests over the key's lifetime.")
    last_used = serializers.DateTimeField(allow_null=True)
    last_used_ip = serializers.IPAddressField(
        allow_null=True, required=False,
        help_text="Personal data: only with the `authserver.keys.personal_data` scope (absent otherwise).")
    buckets = UsageBucketSerializer(many=True, help_text="Oldest first; buckets without requests are 0.")

    def to_representation(self, instance: Any) -> Any:
        return without_personal_data(super().to_representation(instance), self.context)


class CompromiseResponseSerializer(serializers.Serializer):
    response_id = serializers.UUIDField()
    client_id = serializers.CharField()
    effective = serializers.DateTimeField(
        help_text="Every key and token of the client created up to this instant is revoked."
    )
    status = serializers.CharField(help_text="pending, running or done: the job finishing the bookkeeping.")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    error_description = serializers.CharField()


# -- Requests --------------------------------------------------------------------------------------


class ApiKeyCreateSerializer(StrictSerializer):
    client_id = serializers.CharField(max_length=100, help_text="The client that owns the key.")
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        max_length=100,
        help_text="A subset of the client's allowed scopes; omitted: all of them.",
    )
    audiences = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        allow_null=True,
        max_length=100,
        help_text="A subset of the client's allowed audiences; omitted: all of them.",
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=100,
        help_text="IPv4/IPv6 CIDRs; empty allows any caller.",
    )
    expires_in = DurationField(
        min_seconds=1, required=False, allow_null=True, help_text="Lifetime; omitted: the server default."
    )
    rate_limit = RateLimitField(required=False, allow_null=True)
    quota = serializers.IntegerField(
        min_value=1,
        max_value=2**62,
        required=False,
        allow_null=True,
        help_text="Total uses allowed; omitted: unlimited.",
    )


class ApiKeyRotateSerializer(StrictSerializer):
    grace = DurationField(
        required=False,
        allow_null=True,
        help_text="How long the previous key keeps working; 0 revokes it now. Omitted: the server default.",
    )


class ApiKeyListQuerySerializer(serializers.Serializer):
    client = serializers.CharField(required=False, max_length=100, help_text="Only keys of this client_id.")
    status = serializers.ChoiceField(choices=ApiKeyStatus.choices, required=False)


class ApiKeyUsageQuerySerializer(serializers.Serializer):
    granularity = serializers.ChoiceField(choices=["hour", "day"], default="day")
    days = serializers.IntegerField(min_value=1, max_value=90, default=30)
