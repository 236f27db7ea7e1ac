"""URL map. OAuth endpoints live under the ``oauth2_provider`` namespace so DOT's metadata view
and redirects resolve them; the admin lives at an unguessable path (settings.ADMIN_PATH)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from authserver import health
from authserver.introspection import endpoint as introspection_endpoint
from authserver.oauth import views as oauth_views
from authserver.observability.views import metrics_view

oauth_patterns = (
    [
        path("oauth/authorize", oauth_views.AuthorizationView.as_view(), name="authorize"),
        path("oauth/token", oauth_views.TokenView.as_view(), name="token"),
        path("oauth/revoke", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
        path("oauth/introspect", introspection_endpoint.introspect, name="introspect"),
        path(
            ".well-known/oauth-authorization-server",
            oauth_views.ServerMetadataView.as_view(),
            name="oauth-server-metadata",
        ),
    ],
    "oauth2_provider",
)

urlpatterns = [
    path("", include(oauth_patterns)),
    path("accounts/", include("authserver.accounts.urls")),
    path("api/v1/", include("keys.api_urls")),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # a 404 unless AUTHSERVER_METRICS_TOKEN is presented
    path(f"{settings.ADMIN_PATH}/", admin.site.urls),
]
