"""``accounts/apps``: the apps that hold access to the signed-in user's account, and revoking one.

GET lists them (authserver.oauth.connected_apps.selectors). Revoking is a POST with the CSRF token
and the field ``client`` (a client id; a Client ID Metadata Document's id is a URL, so it never goes
in the path), confirmed in the page first. Counted against ``apps.user`` (fails closed) before
anything is looked up. The user only ever sees and revokes their own grants: the service reads and
changes rows of ``request.user`` only, and answers an unknown client and another user's alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from authserver.oauth.connected_apps.selectors import connected_apps_for_user
from authserver.oauth.connected_apps.services import NotConnected, consent_revoke
from authserver.ratelimit.limiter import enforce, note

MAX_CLIENT_ID = 2048  # a CIMD client id is a URL; anything longer is no client of ours


@never_cache
@login_required
def connected_apps(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _revoke(request)
    return render(request, "accounts/apps.html", {"apps": connected_apps_for_user(user=request.user)})


def _revoke(request: HttpRequest) -> HttpResponse:
    note(request, enforce("apps.user", str(request.user.pk)))
    client_id = request.POST.get("client", "")
    if not client_id or len(client_id) > MAX_CLIENT_ID or "\x00" in client_id:
        return _not_connected(request)
    try:
        consent_revoke(user=request.user, client_id=client_id, actor=request.user)
    except NotConnected:
        return _not_connected(request)
    messages.success(request, _("Access revoked. The app can no longer use your account."))
    return HttpResponseRedirect(reverse("accounts:apps"))  # POST/redirect/GET: a reload revokes nothing


def _not_connected(request: HttpRequest) -> HttpResponse:
    # One answer for an unknown client, one that holds nothing for this user, and a malformed field.
    return render(request, "accounts/apps.html", {
        "apps": connected_apps_for_user(user=request.user),
        "error": _("That app has no access to your account."),
    }, status=404)
