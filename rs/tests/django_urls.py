from django.http import JsonResponse
from django.urls import path

from authserver_rs.django import require_scopes


@require_scopes("ai.infer")
def infer(request):
    return JsonResponse({"client_id": request.principal.client_id, "path": request.path_info})


def health(request):
    return JsonResponse({"ok": True, "principal": request.principal is not None})


urlpatterns = [path("v1/infer", infer), path("health", health)]
