"""URLs of the management REST API; mounted at ``<settings.API_PATH>/`` (authserver/urls.py; random per
installation, docs/endpoints.md).

``keys``, ``keys/{id}``, ``keys/{id}/rotate|revoke|suspend|resume|usage``,
``clients/{client_id}/revoke-all`` and the OpenAPI schema at ``schema`` (public: it describes the
API, it grants nothing).
"""

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from keys.api import ApiKeyViewSet, ClientRevokeAllView


@extend_schema_view(get=extend_schema(exclude=True))
class SchemaView(SpectacularAPIView):
    """The OpenAPI document, without an entry for itself."""


router = SimpleRouter(trailing_slash=False)
router.register("keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    *router.urls,
    path("clients/<str:client_id>/revoke-all", ClientRevokeAllView.as_view(), name="api-client-revoke-all"),
    path("schema", SchemaView.as_view(), name="api-schema"),
]
