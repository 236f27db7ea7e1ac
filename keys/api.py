"""Management REST API for API keys ("we eat our own cooking").

Authenticated only by OAuth access tokens of this server whose audience includes
``MANAGEMENT_API_AUDIENCE`` (authserver/api_auth.py). A token carrying the scopes below was issued
to an admin client: it manages every key. Writes go through keys.services, like the CLI and the
admin, with the actor recorded as ``api:<client_id>``. Services refuse with domain errors
(authserver.errors); the management API's exception handler (authserver.api_auth) answers them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status as http
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authserver.api_auth import ManagementAPIMixin, api_caller
from authserver.errors import NotFound
from clients.models import Client
from keys import services
from keys.models import ApiKey, ApiKeyUsage
from keys.serializers import (
    PERSONAL_DATA_SCOPE,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyListQuerySerializer,
    ApiKeyRotatedSerializer,
    ApiKeyRotateSerializer,
    ApiKeySerializer,
    ApiKeyUsageQuerySerializer,
    ApiKeyUsageSerializer,
    CompromiseResponseSerializer,
    ErrorSerializer,
)

KEYS_READ = "authserver.keys.read"
KEYS_WRITE = "authserver.keys.write"

_AUTH_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid request (also: a token in the URL)."),
    401: OpenApiResponse(
        ErrorSerializer, description="Missing, invalid, expired or revoked token, or a token not issued for this API."
    ),
    403: OpenApiResponse(ErrorSerializer, description="The token lacks the required scope."),
}
_KEY_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The key's id.")
_KEY_ERRORS = {**_AUTH_ERRORS, 404: OpenApiResponse(ErrorSerializer, description="No such key.")}


def _needs(scope: str) -> str:
    return f"Requires the scope `{scope}`."


class KeyPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _detail_url(request: Request, key: ApiKey) -> str:
    namespace = request.resolver_match.namespace if request.resolver_match else ""
    name = f"{namespace}:api-key-detail" if namespace else "api-key-detail"
    return reverse(name, kwargs={"pk": str(key.pk)})


@extend_schema_view(
    list=extend_schema(
        summary="List API keys",
        operation_id="keys_list",
        description=f"Newest first; never shows a key's secret. {_needs(KEYS_READ)}",
        parameters=[ApiKeyListQuerySerializer],
        # 404: a page past the last (DRF's PageNumberPagination); found by tests/fuzz.
        responses={200: ApiKeySerializer(many=True), **_AUTH_ERRORS,
                   404: OpenApiResponse(ErrorSerializer, description="No such page.")},
    ),
    create=extend_schema(
        summary="Create an API key",
        operation_id="keys_create",
        description="Issues a key for a client, within the client's allowed scopes and audiences. The "
        f"response carries the plaintext `key` once (`Cache-Control: no-store`). {_needs(KEYS_WRITE)}",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **_AUTH_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Show an API key",
        operation_id="keys_retrieve",
        description=_needs(KEYS_READ),
        parameters=[_KEY_ID],
        responses={200: ApiKeySerializer, **_KEY_ERRORS},
    ),
)
class ApiKeyViewSet(ManagementAPIMixin, viewsets.GenericViewSet):
    queryset = ApiKey.objects.select_related("client", "rotated_from").order_by("-created", "id")
    serializer_class = ApiKeySerializer
    pagination_class = KeyPagination
    lookup_value_regex = "[^/]+"
    read_actions = frozenset({"list", "retrieve", "usage"})
    read_scope = KEYS_READ
    write_scope = KEYS_WRITE

    def get_object(self) -> ApiKey:
        try:
            pk = uuid.UUID(str(self.kwargs["pk"]))
        except ValueError:
            raise NotFound("No such key.") from None
        key: ApiKey | None = self.get_queryset().filter(pk=pk).first()
        if key is None:
            raise NotFound("No such key.")
        return key

    @staticmethod
    def _shown(request: Request) -> dict[str, Any]:
        """Serializer context: personal data (the last caller's address) only for a caller whose
        token has the personal-data scope (keys.serializers)."""
        return {"personal_data": PERSONAL_DATA_SCOPE in api_caller(request).scopes}

    def list(self, request: Request) -> Response:
        query = ApiKeyListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        keys = self.get_queryset()
        if "client" in query.validated_data:
            keys = keys.filter(client__client_id=query.validated_data["client"])
        if "status" in query.validated_data:
            keys = keys.filter(status=query.validated_data["status"])
        page = self.paginate_queryset(keys)
        return self.get_paginated_response(ApiKeySerializer(page, many=True, context=self._shown(request)).data)

    def create(self, request: Request) -> Response:
        body = ApiKeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        owner = Client.objects.filter(client_id=data["client_id"]).first()
        if owner is None:
            raise ValidationError({"client_id": ["No such client."]})
        key, plaintext = services.api_key_create(
            client=owner,
            name=data["name"],
            scopes=data.get("scopes"),
            audiences=data.get("audiences"),
            allowed_ips=data.get("allowed_ips") or [],
            expires_in=data.get("expires_in"),
            rate_limit=data.get("rate_limit"),
            quota=data.get("quota"),
            actor=api_caller(request).actor,
        )
        return Response(
            ApiKeyCreatedSerializer(key, plaintext=plaintext).data,
            status=http.HTTP_201_CREATED,
            headers={"Location": _detail_url(request, key)},
        )

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(ApiKeySerializer(self.get_object(), context=self._shown(request)).data)

    @extend_schema(
        summary="Rotate an API key",
        operation_id="keys_rotate",
        description="Issues a successor with the same policy and returns its plaintext `key` once; the "
        f"previous key keeps working until `previous_valid_until`. {_needs(KEYS_WRITE)}",
        parameters=[_KEY_ID],
        request=ApiKeyRotateSerializer,
        responses={201: ApiKeyRotatedSerializer, **_KEY_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        body = ApiKeyRotateSerializer(data=request.data if request.data is not None else {})
        body.is_valid(raise_exception=True)
        new, plaintext = services.api_key_rotate(
            key=key, grace=body.validated_data.get("grace"), actor=api_caller(request).actor
        )
        return Response(
            ApiKeyRotatedSerializer(new, plaintext=plaintext).data,
            status=http.HTTP_201_CREATED,
            headers={"Location": _detail_url(request, new)},
        )

    @extend_schema(
        summary="Revoke an API key",
        operation_id="keys_revoke",
        description=f"Immediate and final. {_needs(KEYS_WRITE)}",
        parameters=[_KEY_ID],
        request=None,
        responses={200: ApiKeySerializer, **_KEY_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        return self._change(services.api_key_revoke)

    @extend_schema(
        summary="Suspend an API key",
        operation_id="keys_suspend",
        description=f"Reversible with resume. {_needs(KEYS_WRITE)}",
        parameters=[_KEY_ID],
        request=None,
        responses={200: ApiKeySerializer, **_KEY_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        return self._change(services.api_key_suspend)

    @extend_schema(
        summary="Resume a suspended API key",
        operation_id="keys_resume",
        description=_needs(KEYS_WRITE),
        parameters=[_KEY_ID],
        request=None,
        responses={200: ApiKeySerializer, **_KEY_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._change(services.api_key_resume)

    def _change(self, change: Any) -> Response:
        key = change(key=self.get_object(), actor=api_caller(self.request).actor)
        return Response(ApiKeySerializer(self.get_queryset().get(pk=key.pk), context=self._shown(self.request)).data)

    @extend_schema(
        summary="Usage of an API key",
        operation_id="keys_usage",
        description="Requests per hour or per day (UTC) over the last `days` days, oldest first, with empty "
        "buckets as 0. Counts are rolled up from the live counters about once a minute. "
        f"{_needs(KEYS_READ)}",
        parameters=[_KEY_ID, ApiKeyUsageQuerySerializer],
        responses={200: ApiKeyUsageSerializer, **_KEY_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        query = ApiKeyUsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        granularity, days = query.validated_data["granularity"], query.validated_data["days"]
        now = timezone.now()
        if granularity == "hour":
            step, count = timedelta(hours=1), days * 24
            last = now.replace(minute=0, second=0, microsecond=0)
        else:
            step, count = timedelta(days=1), days
            last = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = last - step * (count - 1)
        end = last + step
        buckets = {start + step * i: 0 for i in range(count)}
        rows = ApiKeyUsage.objects.filter(key=key, hour__gte=start, hour__lt=end).values_list("hour", "requests")
        for hour, requests in rows:
            bucket = start + step * int((hour - start) / step)
            if bucket in buckets:
                buckets[bucket] += requests
        payload = {
            "key_id": key.pk,
            "granularity": granularity,
            "start": start,
            "end": end,
            "total": sum(buckets.values()),
            "uses": key.uses,
            "last_used": key.last_used,
            "last_used_ip": key.last_used_ip,
            "buckets": [{"start": moment, "requests": requests} for moment, requests in buckets.items()],
        }
        return Response(ApiKeyUsageSerializer(payload, context=self._shown(request)).data)


class ClientRevokeAllView(ManagementAPIMixin, APIView):
    """Compromise response: every key and token of a client stops working now."""

    write_scope = KEYS_WRITE

    @extend_schema(
        summary="Revoke every key and token of a client",
        operation_id="clients_revoke_all",
        description="Compromise response: every API key and access token of the client created up to now "
        "stops working immediately; a background job finishes the bookkeeping. "
        f"{_needs(KEYS_WRITE)}",
        parameters=[OpenApiParameter("client_id", str, OpenApiParameter.PATH, description="The client's client_id.")],
        request=None,
        responses={
            202: CompromiseResponseSerializer,
            **_AUTH_ERRORS,
            404: OpenApiResponse(ErrorSerializer, description="No such client."),
        },
    )
    def post(self, request: Request, client_id: str) -> Response:
        # No client_id holds a NUL (PostgreSQL text cannot): don't ask, or the database error answers 503.
        owner = Client.objects.filter(client_id=client_id).first() if "\x00" not in client_id else None
        if owner is None:
            raise NotFound("No such client.")
        response = services.compromise_response_start(client=owner, actor=api_caller(request).actor)
        payload = {
            "response_id": response.pk,
            "client_id": owner.client_id,
            "effective": response.requested,
            "status": response.status,
        }
        return Response(CompromiseResponseSerializer(payload).data, status=http.HTTP_202_ACCEPTED)
