"""The repository stands on its own: module sizes, and no reference to a file outside it."""

from __future__ import annotations

import re

from tests.architecture.imports import ROOT

MAX_LINES = 400
SOURCES = [path for folder in ("authserver", "clients", "keys", "bench", "tests") for path in (ROOT / folder).rglob("*.py")
           if "migrations" not in path.parts]
TEXTS = [*SOURCES, *ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md"), *(ROOT / "templates").rglob("*.html"),
         ROOT / "Dockerfile", ROOT / "docker-entrypoint.sh", ROOT / ".ci" / "run"]


def test_no_module_over_the_size_limit():
    assert [f"{p.relative_to(ROOT)}: {n}" for p in SOURCES if (n := len(p.read_text().splitlines())) > MAX_LINES] == []


def test_nothing_refers_to_a_file_outside_the_repository():
    # Spelled in pieces so that this file does not match itself.
    outside = re.compile("|".join(("DESIGN" + r"\.md", r"\.\./" + "shared", "/work/" + "shared")))
    assert [str(p.relative_to(ROOT)) for p in TEXTS if outside.search(p.read_text())] == []


def test_settings_have_their_defaults_in_one_place():
    """Defaults live in authserver/conf.py: no ``getattr(settings, NAME, default)`` fallback elsewhere."""
    fallback = re.compile(r"getattr\(\s*settings\s*,[^,()]+,")
    code = [p for p in SOURCES if p.parts[len(ROOT.parts)] in {"authserver", "clients", "keys"}]
    assert [str(p.relative_to(ROOT)) for p in code if fallback.search(p.read_text())] == []
