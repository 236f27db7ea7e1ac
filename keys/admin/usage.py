"""A key's usage page: requests per hour and per day, next to its uses and quota."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse

from keys.admin.base import ApiKeyAdminBase
from keys.charts import usage_series
from keys.models import ApiKey


class ApiKeyUsageViews(ApiKeyAdminBase):
    @staticmethod
    def _usage_context(key: ApiKey) -> dict[str, Any]:
        hourly, daily = usage_series(key)
        charts = []
        for name, series, peak_format in (("hourly", hourly, "at %Y-%m-%d %H:00 UTC"), ("daily", daily, "on %Y-%m-%d")):
            peak = series.peak
            charts.append(
                {
                    "id": name,
                    "data": series,
                    "total_text": f"{series.total:,}",
                    "peak_text": f"{peak.requests:,} {peak.start.strftime(peak_format)}" if peak else "",
                }
            )
        return {
            "charts": charts,
            "usage_key": key,
            "uses_text": f"{key.uses:,}",
            "quota_text": f"{key.quota:,}" if key.quota else "",
        }

    def usage_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method not in {"GET", "HEAD"}:
            return HttpResponseNotAllowed(["GET"])
        key = self.get_object(request, unquote(object_id))
        if key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, key):
            raise PermissionDenied
        context = self._base_context(
            request,
            "API key usage",
            key=key,
            original=key,
            change_url=self._change_url(key),
            **self._usage_context(key),
        )
        return TemplateResponse(request, "admin/keys/apikey/usage.html", context)
