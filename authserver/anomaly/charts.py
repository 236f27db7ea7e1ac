"""The traffic around an anomaly as inline SVG (no JavaScript, no third-party assets)."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 160
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24


def traffic_svg(points: list[tuple[datetime, int, bool]], *, marker: datetime | None = None,
                limit: int | None = None, caption: str = "") -> SafeString:
    """Bars per minute (flagged minutes in the accent colour), the anomaly's minute and the limit as lines."""
    if not points:
        return mark_safe("")  # noqa: S308 - constant
    peak = max([c for _, c, _ in points] + [limit or 0, 1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(points)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / peak

    def n(value: float) -> str:
        return f"{value:.1f}"

    bars = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{} UTC: {}</title></rect>',
        ((n(LEFT + i * step), n(y(c)), n(max(step - 1, 0.5)), n(TOP + plot_h - y(c)), "bar flagged" if f else "bar",
          f"{m:%Y-%m-%d %H:%M}", c) for i, (m, c, f) in enumerate(points)))
    extra = []
    if marker is not None:
        for i, (m, _, _) in enumerate(points):
            if m == marker:
                extra.append(format_html('<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="marker"/>',
                                         n(LEFT + i * step + step / 2), TOP, TOP + plot_h))
    if limit:
        extra.append(format_html('<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" class="limit"/>'
                                 '<text x="{1}" y="{3}" text-anchor="end" class="lbl">limit {4}/min</text>',
                                 LEFT, WIDTH - RIGHT, n(y(limit)), n(y(limit) - 3), limit))
    first, last = points[0][0], points[-1][0]
    axis = format_html(
        '<text x="{0}" y="{1}" class="lbl" text-anchor="end">{2}</text>'
        '<text x="{0}" y="{3}" class="lbl" text-anchor="end">0</text>'
        '<text x="{4}" y="{5}" class="lbl">{6}</text>'
        '<text x="{7}" y="{5}" class="lbl" text-anchor="end">{8} UTC</text>',
        LEFT - 4, TOP + 8, peak, TOP + plot_h, LEFT, HEIGHT - 6, f"{first:%H:%M}", WIDTH - RIGHT, f"{last:%H:%M}")
    return format_html(
        '<svg class="as-anomaly-chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        # Styled by static/authserver/anomaly.css: an inline <style> is refused by the CSP.
        'xmlns="http://www.w3.org/2000/svg">{}{}{}</svg>',
        WIDTH, HEIGHT, caption, bars, mark_safe("".join(extra)), axis)  # noqa: S308 - built with format_html
