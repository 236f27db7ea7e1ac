"""Every admin page reads well in Chromium: one date format, readable names, no raw Python data,
no default-looking placeholders, object tools clear of the title at 1280x800, and a visit logs no
WARNING (the favicon: 31 lines of "Not Found: /favicon.ico" in one visit before)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.conf import settings

from tests.browser.admin_seed import LONG_NAME, seed_admin_data
from tests.browser.conftest import admin_login, screenshot
from tests.factories import RS_AUDIENCE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ONE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$")
# Anything that looks like a date or a time of day, in any of the shapes Django or Python print.
DATE_LIKE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z| UTC)?)?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|June?|July?|Aug|Sept?|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}(?:, [\d:]+ ?[ap]\.m\.)?"
    r"|\b\d{1,2}:\d{2} ?[ap]\.m\.|\bmidnight\b|\bnoon\b"
)
UNREADABLE = re.compile(r"\b\w+ object \(\d+\)|\b[A-Z][A-Za-z]+ #\d+\b|\{'[a-z_]+': ")
# The page text outside raw data (audit details and JSON shown verbatim), form inputs and charts
# (their axes label ticks compactly: "Nov 30", "07:00").
PAGE_TEXT = """() => {
  const root = document.querySelector('#content') || document.body;
  const copy = root.cloneNode(true);
  copy.querySelectorAll('pre, code, textarea, input, select, script, style, svg').forEach(n => n.remove());
  return copy.innerText;
}"""


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def _check_page(page: Any, where: str) -> str:
    text = page.evaluate(PAGE_TEXT)
    # A day alone (2026-12-02) is the same format at a coarser grain; Django's date-hierarchy and
    # filter links ("December 2026", "Today") are navigation, not dates in a second format.
    for match in DATE_LIKE.finditer(text):
        found = match.group(0)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", found):
            assert ONE_FORMAT.match(found), f"{where}: a second date format: {found!r}"
    unreadable = UNREADABLE.search(text)
    assert unreadable is None, f"{where}: unreadable text {unreadable.group(0)!r}"
    return text


def test_every_admin_page_reads_well_and_logs_no_warning(page: Any, live_server: Any, superuser: Any,
                                                        caplog: Any) -> None:
    seeded = seed_admin_data()
    page.set_viewport_size({"width": 1280, "height": 800})
    admin_login(page, superuser)
    caplog.clear()
    caplog.set_level(logging.WARNING)

    page.goto(admin_url())
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(icon).status == 200
    # What a browser asks for on a page that names no icon (headless Chromium never does by itself).
    favicon = page.request.get("/favicon.ico")
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg+xml")
    changelists = sorted({href for href in page.eval_on_selector_all(
        "#content-main a[href$='/']", "els => els.map(e => e.getAttribute('href'))")
        if not href.endswith("/add/") and href.count("/") == 4})
    assert len(changelists) >= 20, changelists
    visited = []
    for url in changelists:
        page.goto(url)
        _check_page(page, url)
        first = page.locator("#result_list tbody tr th a, #result_list tbody tr td a").first
        if first.count():
            first.click()
            page.wait_for_load_state()
            _check_page(page, page.url)
            visited.append(page.url)
    assert len(visited) >= 12, visited

    # The client list: the audiences column names the audiences (never "-" for a client with some).
    page.goto(admin_url("clients/client/"))
    rows = {row.locator("th").inner_text(): row.locator("td.field-audiences_display").inner_text()
            for row in page.locator("#result_list tbody tr").all()}
    assert rows[LONG_NAME] == RS_AUDIENCE and rows["Inference API"] == f"resource server: {RS_AUDIENCE}", rows
    screenshot(page, "admin_readable_client_list")

    # Object tools clear of a long title at 1280 px; the delete confirmation names what goes with the client.
    web = seeded["web"]
    page.goto(admin_url(f"clients/client/{web.pk}/change/"))
    titles = [h.bounding_box() for h in page.locator("#content > h1, #content > h2").all()]  # title, subtitle
    assert len(titles) == 2
    for tool in page.locator(".object-tools li").all():
        box = tool.bounding_box()
        for title in titles:
            overlap = (box["x"] < title["x"] + title["width"] and title["x"] < box["x"] + box["width"]
                       and box["y"] < title["y"] + title["height"] and title["y"] < box["y"] + box["height"])
            assert not overlap, (tool.inner_text(), box, title)
    screenshot(page, "admin_readable_long_title_1280")
    page.goto(admin_url(f"clients/client/{web.pk}/delete/"))
    deleted = _check_page(page, "client delete confirmation")
    for readable in ("Access token: at_…", "Refresh token: rt_…", "Authorization code: ac_…",
                     "Scope of a client: ai.infer for ", "ID token for alice created ", "Compromise response: compromise"):
        assert readable in deleted, (readable, deleted)
    screenshot(page, "admin_readable_delete_confirmation")

    # The anomaly dashboard: evidence as a definition list, not a Python dict.
    page.goto(admin_url("anomaly/anomaly/dashboard/"))
    evidence = _check_page(page, "anomaly dashboard")
    assert page.locator("dl.as-facts dt", has_text="threshold").count() == 1
    assert "4,812" in evidence and "{" not in evidence
    screenshot(page, "admin_readable_anomaly_dashboard")

    # The key form: no placeholder that reads like a default; the help says what empty means.
    page.goto(admin_url("keys/apikey/add/"))
    for field in ("#id_expires_in", "#id_rate_limit"):
        assert page.locator(field).get_attribute("placeholder") is None, field
    assert "Empty = the server default, 90d" in page.inner_text(".field-expires_in .help")
    assert "Empty = no limit of the key's own" in page.inner_text(".field-rate_limit .help")
    screenshot(page, "admin_readable_key_form")

    warnings = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [], warnings
