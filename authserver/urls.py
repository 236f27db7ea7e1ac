"""URL map. OAuth endpoints live under the ``oauth2_provider`` namespace so DOT's metadata view
and redirects resolve them; the admin lives at an unguessable path (settings.ADMIN_PATH).

Each OAuth endpoint takes only its methods, decided before anything else (authserver.handlers:
``allow_methods``), and the error handlers below answer JSON on the machine endpoints."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from authserver import endpoints, handlers, health, notfound
from authserver.accounts.views import errors as error_pages
from authserver.accounts.views import pages as account_pages
from authserver.introspection import endpoint as introspection_endpoint
from authserver.oauth import views as oauth_views
from authserver.oauth.device import views as device_views
from authserver.observability.views import metrics_view
from authserver.revocation_stream import endpoint as revocations_endpoint
from authserver.rspaths import resource_metadata
from authserver.rspaths import views as rspaths_views
from authserver.staff.views import login as staff_login
from clients.registration import views as registration_views

allow = handlers.allow_methods
# An unknown URL under the admin path is the uniform 404 (authserver.notfound), not the admin's
# catch-all that redirects to its sign-in and tells a visitor where the admin is.
admin.site.final_catch_all_view = False


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (JSON, the API): answer with ours
    rather than a 404 logged as a WARNING each time (pages link it: admin/base_site.html, base.html)."""
    return HttpResponsePermanentRedirect(static("authserver/favicon.svg"))


# Each "oauth/<x>" entry is served at /oauth/<x> (AUTHSERVER_ENDPOINTS=fixed) or under the window's
# rotating prefix (rotating); the public well-known document only in fixed mode (authserver.endpoints).
oauth_patterns = (
    endpoints.mount([
        # RFC 6749 §3.1: GET and (for the consent form) POST.
        path("oauth/authorize", allow(oauth_views.AuthorizationView.as_view(), "GET", "HEAD", "POST", browser=True),
             name="authorize"),
        # POST only: RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1.
        path("oauth/token", allow(oauth_views.TokenView.as_view(), "POST"), name="token"),
        path("oauth/revoke", allow(oauth_views.RevokeTokenView.as_view(), "POST"), name="revoke-token"),
        path("oauth/device", allow(device_views.device_authorization, "POST"), name="device-authorization"),  # RFC 8628
        path("oauth/introspect", allow(introspection_endpoint.introspect, "POST"), name="introspect"),
        path("oauth/path-key", allow(rspaths_views.path_key, "POST"), name="path-key"),  # docs/rotating-paths.md
        path("oauth/discovery", allow(rspaths_views.discovery, "GET"), name="rs-discovery"),
        # RFC 9728: a resource server's protected-resource metadata, served on by the kit (issue 16).
        path("oauth/resource-metadata", allow(resource_metadata.resource_metadata, "GET"), name="resource-metadata"),
        # C7: server-sent events for resource servers' caches (docs/revocation-stream.md).
        path("oauth/revocations", allow(revocations_endpoint.revocations, "GET"), name="revocations"),
        # RFC 7591 §3 / RFC 7592 (docs/dynamic-registration.md): methods checked inside, after the
        # uniform 404 of AUTHSERVER_DCR=off.
        path("oauth/register", registration_views.register, name="register"),
        path("oauth/register/<str:client_id>", registration_views.register_client, name="register-client"),
        path(
            ".well-known/oauth-authorization-server",
            allow(oauth_views.ServerMetadataView.as_view(), "GET", "HEAD"),  # RFC 8414 §3
            name="oauth-server-metadata",
        ),
    ]),
    "oauth2_provider",
)

urlpatterns = [
    path("", include(oauth_patterns)),
    path("", allow(account_pages.home, "GET", "HEAD", browser=True), name="home"),
    path("accounts/", include("authserver.accounts.urls")),
    # The per-client discovery URL (issue 15, C3): RFC 8414 for whoever holds the capability.
    path("d/<str:capability>", oauth_views.discovery_document, name="discovery"),  # methods: checked inside
    path(f"{settings.API_PATH}/", include("keys.api_urls")),  # random per installation (docs/endpoints.md)
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # a 404 unless AUTHSERVER_METRICS_TOKEN is presented
    path("favicon.ico", allow(favicon, "GET", "HEAD"), name="favicon"),
    # The staff plane first: its pages, and the admin's own login, logout and password change taken
    # over by them (authserver.staff: no admin page opens without a second factor).
    path(f"{settings.ADMIN_PATH}/security/", include("authserver.staff.urls")),
    path(f"{settings.ADMIN_PATH}/login/", staff_login.admin_login),
    path(f"{settings.ADMIN_PATH}/logout/", staff_login.logout_view),
    path(f"{settings.ADMIN_PATH}/password_change/", staff_login.admin_password_change),
    path(f"{settings.ADMIN_PATH}/security/passkeys/", include("authserver.passkeys.urls")),
    path(f"{settings.ADMIN_PATH}/", admin.site.urls),
]

# Django's own 400 (oversized body, too many fields, bad host), 403 and 500: JSON error objects on the
# machine endpoints (authserver.handlers), plain pages elsewhere (authserver.accounts.views.errors).
handler400 = error_pages.bad_request
handler403 = error_pages.permission_denied
handler404 = notfound.page_not_found  # the uniform 404, browsers and clients alike (authserver.notfound)
handler500 = error_pages.server_error
