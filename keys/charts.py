"""Usage of an API key as server-rendered SVG bar charts (no JavaScript, no third-party assets).

The data are the hourly rows of :class:`~keys.models.ApiKeyUsage` (rolled up from the counters by
a job): the last 48 hours hour by hour and the last 30 days day by day, in UTC, with the gaps
filled with zeros. Colours come from the admin's CSS variables (``.as-chart`` rules in the
templates), so the charts follow the light and dark themes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from keys.models import ApiKey, ApiKeyUsage

HOURS = 48
DAYS = 30

# Geometry of the drawing (user units of the viewBox; the SVG scales to the width of its box).
WIDTH, HEIGHT = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 36


@dataclass(frozen=True)
class Bucket:
    start: datetime
    requests: int
    tick: str  # x-axis label under this bar ("" for none)
    title: str  # tooltip


@dataclass(frozen=True)
class Series:
    buckets: list[Bucket]
    caption: str

    @property
    def total(self) -> int:
        return sum(b.requests for b in self.buckets)

    @property
    def peak(self) -> Bucket | None:
        best = max(self.buckets, key=lambda b: b.requests, default=None)
        return best if best is not None and best.requests else None

    def svg(self) -> SafeString:
        return bar_chart(self.buckets, caption=self.caption)


def _requests(n: int) -> str:
    return f"{n:,} request" + ("" if n == 1 else "s")


def usage_series(key: ApiKey, *, now: datetime | None = None) -> tuple[Series, Series]:
    """``(hourly, daily)``: the last 48 hours and the last 30 days of ``key``, zero-filled (one query)."""
    now = (now or timezone.now()).astimezone(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    today = this_hour.replace(hour=0)
    first_hour = this_hour - timedelta(hours=HOURS - 1)
    first_day = today - timedelta(days=DAYS - 1)

    per_hour: dict[datetime, int] = {}
    per_day: dict[datetime, int] = {}
    rows = ApiKeyUsage.objects.filter(key=key, hour__gte=min(first_hour, first_day), hour__lte=now)
    for hour, count in rows.values_list("hour", "requests"):
        hour = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        per_hour[hour] = per_hour.get(hour, 0) + count
        day = hour.replace(hour=0)
        per_day[day] = per_day.get(day, 0) + count

    hourly = []
    for i in range(HOURS):
        start = first_hour + timedelta(hours=i)
        n = per_hour.get(start, 0)
        if start.hour == 0:
            tick = start.strftime("%b %d")
        elif start.hour % 6 == 0:
            tick = start.strftime("%H:00")
        else:
            tick = ""
        title = f"{start:%Y-%m-%d %H:00}–{start + timedelta(hours=1):%H:00} UTC: {_requests(n)}"
        hourly.append(Bucket(start, n, tick, title))

    daily = []
    for i in range(DAYS):
        start = first_day + timedelta(days=i)
        n = per_day.get(start, 0)
        tick = start.strftime("%b %d") if (DAYS - 1 - i) % 5 == 0 else ""
        daily.append(Bucket(start, n, tick, f"{start:%a %Y-%m-%d} UTC: {_requests(n)}"))

    return (
        Series(hourly, "Requests per hour, last 48 hours (UTC)"),
        Series(daily, "Requests per day, last 30 days (UTC)"),
    )


def _nice_step(raw: float) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ (at least 1) that is >= ``raw``."""
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def _short(n: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size and n % (size // 10) == 0:
            text = f"{n / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{n:,}"


def bar_chart(buckets: list[Bucket], *, caption: str) -> SafeString:
    """One inline ``<svg>``: bars, a y axis with gridlines, x ticks, a tooltip per bar."""
    peak = max((b.requests for b in buckets), default=0)
    step = _nice_step(peak / 4)
    top = max(step, math.ceil(peak / step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = plot_w / max(len(buckets), 1)
    bar_w = max(slot * 0.72, 1.0)

    grid = []
    for value in range(0, top + 1, step):
        y = base - value / top * plot_h
        grid.append((f"{y:.1f}", f"{LEFT - 8}", f"{y + 4:.1f}", _short(value), f"{LEFT}", f"{WIDTH - RIGHT}"))
    grid_svg = format_html_join(
        "",
        '<line class="grid" x1="{4}" x2="{5}" y1="{0}" y2="{0}"/><text class="ylabel" x="{1}" y="{2}">{3}</text>',
        grid,
    )

    slots = []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot
        h = bucket.requests / top * plot_h if bucket.requests else 0.0
        if bucket.requests:
            h = max(h, 2.0)  # a single request stays visible next to thousands
        slots.append(
            (
                bucket.title,
                f"{x:.2f}",
                f"{TOP}",
                f"{slot:.2f}",
                f"{plot_h}",
                f"{x + (slot - bar_w) / 2:.2f}",
                f"{base - h:.2f}",
                f"{bar_w:.2f}",
                f"{h:.2f}",
                bucket.requests,
            )
        )
    slots_svg = format_html_join(
        "",
        '<g class="slot" data-requests="{9}"><title>{0}</title>'
        '<rect class="hit" x="{1}" y="{2}" width="{3}" height="{4}"/>'
        '<rect class="bar" x="{5}" y="{6}" width="{7}" height="{8}" rx="1.5"/></g>',
        slots,
    )

    ticks = []
    for i, bucket in enumerate(buckets):
        if bucket.tick:
            x = LEFT + (i + 0.5) * slot
            ticks.append((f"{x:.1f}", f"{base}", f"{base + 5}", f"{base + 19}", bucket.tick))
    ticks_svg = format_html_join(
        "",
        '<line class="tick" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/><text class="xlabel" x="{0}" y="{3}">{4}</text>',
        ticks,
    )

    empty = (
        format_html(
            '<text class="empty" x="{}" y="{}">No requests recorded in this period</text>',
            f"{LEFT + plot_w / 2:.1f}",
            f"{TOP + plot_h / 2:.1f}",
        )
        if not peak
        else mark_safe("")  # noqa: S308 - a constant
    )
    total = sum(b.requests for b in buckets)
    return format_html(
        '<svg class="as-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'preserveAspectRatio="xMinYMin meet" aria-label="{caption}: {total} in total">'
        "<title>{caption}</title>"
        "{grid}"
        '<line class="axis" x1="{left}" x2="{right}" y1="{base}" y2="{base}"/>'
        "{slots}{ticks}{empty}</svg>",
        w=WIDTH,
        h=HEIGHT,
        caption=caption,
        total=_requests(total),
        grid=grid_svg,
        left=LEFT,
        right=WIDTH - RIGHT,
        base=base,
        slots=slots_svg,
        ticks=ticks_svg,
        empty=empty,
    )
