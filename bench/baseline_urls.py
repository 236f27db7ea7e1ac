"""URLs of the machine handler when the bench's baseline is on (AUTHSERVER_BENCH_BASELINE=1):
every real URL, plus ``/bench/bare``, a bare JSON view the bench compares everything against."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from authserver.urls import urlpatterns as _real


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"active": False})
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


urlpatterns = [*_real, path("bench/bare", bare, name="bench-bare")]
