"""Step-up: sensitive staff actions ask for the second factor again when the last one is stale.

``fresh_factor_required`` wraps a view, a ``ModelAdmin`` view method or an admin action. When
``factor.recent(request, STAFF_STEP_UP_SECONDS)`` is false the wrapped code does not run at all:
a GET is sent to the second-factor page and back to the same URL afterwards; a POST is refused the
same way (nothing done: the form is shown again after the factor, to be submitted once more).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from authserver.staff import factor
from authserver.staff.stages import stage_url

F = TypeVar("F", bound=Callable[..., Any])


def is_fresh(request: HttpRequest) -> bool:
    return factor.recent(request, settings.STAFF_STEP_UP_SECONDS)


def step_up(request: HttpRequest) -> HttpResponse:
    """The answer to a stale request: to the second-factor page, then back to this URL."""
    if request.method != "GET":
        messages.warning(request, "Nothing was done: confirm your second factor, then submit again.")
    return HttpResponseRedirect(stage_url("staff:verify", request.get_full_path(), step_up="1"))


def fresh_factor_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        request = next(arg for arg in args if isinstance(arg, HttpRequest))
        if is_fresh(request):
            return view(*args, **kwargs)
        return step_up(request)

    return cast("F", wrapped)
