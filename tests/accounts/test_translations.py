"""The end-user pages are translatable, and the shipped German catalogue is complete and compiled.

* The committed ``django.mo`` is the compilation of the committed ``django.po`` (same catalogue,
  read back with :mod:`gettext`): they cannot drift.
* Every message the end-user templates and ``authserver.accounts`` mark for translation has a
  German translation, and no visible English is left outside the markers.
* ``Accept-Language: de`` gets the German pages; the machine endpoints never run the locale
  middleware (tests/introspection/test_hot_path_modules.py pins their path too).
"""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation.template import templatize

from authserver.handlers import BROWSER_ONLY_MIDDLEWARE, machine_middleware

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
TEMPLATES = [ROOT / "templates" / "base.html",
             *sorted((ROOT / "templates").glob("accounts/*.html")),
             *sorted((ROOT / "templates").glob("oauth/*.html")),
             *sorted((ROOT / "templates").glob("errors/*.html"))]
PYTHON = sorted((ROOT / "authserver" / "accounts").rglob("*.py"))
LANGUAGES = [code for code, _ in settings.LANGUAGES if code != "en"]

STRING = r"""u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
MARKERS = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}
MARKED = re.compile(rf"\b(?:n?gettext|_)\(\s*({STRING})(?:\s*,\s*({STRING}))?")


def read_po(path: Path) -> dict[object, str]:
    """msgid (or (msgid, n) for plurals) -> msgstr, as GNU gettext's .mo catalogue holds it."""
    catalogue: dict[object, str] = {}
    entries = path.read_text(encoding="utf-8").split("\n\n")
    for entry in entries:
        fields: dict[str, str] = {}
        current = ""
        for line in entry.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if not line.startswith('"'):
                current, _, line = line.partition(" ")
                fields[current] = ""
            fields[current] += ast.literal_eval(line)
        if "msgid" not in fields:
            continue
        if "msgid_plural" in fields:
            for key, value in fields.items():
                if key.startswith("msgstr["):
                    catalogue[(fields["msgid"], int(key[7:-1]))] = value
        else:
            catalogue[fields["msgid"]] = fields["msgstr"]
    return catalogue


def marked_messages() -> set[object]:
    """What makemessages would extract: the templates through Django's own ``templatize``, the
    Python sources' ``_()``/``gettext*()`` calls through ``ast``."""
    found: set[object] = set()
    for path in TEMPLATES:
        for singular, plural in MARKED.findall(templatize(path.read_text(encoding="utf-8"))):
            text = ast.literal_eval(singular.lstrip("u"))
            found.add((text, ast.literal_eval(plural.lstrip("u"))) if plural else text)
    for path in PYTHON:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS:
                args = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                found.add((args[0], args[1]) if node.func.id.startswith("n") else args[0])
    return found


def test_the_shipped_languages():
    assert settings.LANGUAGES[0][0] == "en" and LANGUAGES == ["de"]
    assert Path(settings.LOCALE_PATHS[0]) == LOCALE


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_is_the_compiled_po(language):
    directory = LOCALE / language / "LC_MESSAGES"
    with (directory / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    written = {key: value for key, value in read_po(directory / "django.po").items() if value}
    # The header: msgfmt leaves out POT-Creation-Date (reproducible builds); the plural rule must agree.
    header_po, header_mo = written.pop(""), compiled.pop("")
    assert re.search(r"Plural-Forms: .*", header_po)[0] == re.search(r"Plural-Forms: .*", header_mo)[0]
    assert compiled == written, "run locale/update.sh (docs/operations.md, Translations) and commit the .mo"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_message_is_translated(language):
    catalogue = read_po(LOCALE / language / "LC_MESSAGES" / "django.po")
    missing = []
    for message in marked_messages():
        if isinstance(message, tuple):
            ok = all(catalogue.get((message[0], n)) for n in (0, 1))
        else:
            ok = bool(catalogue.get(message))
        if not ok:
            missing.append(message)
    assert missing == []
    assert len(marked_messages()) > 40, "the extraction found the pages' messages"


def visible_text(source: str) -> list[str]:
    """Words a reader would see that no translation marker covers."""
    source = re.sub(r"\{%\s*blocktranslate.*?\{%\s*endblocktranslate\s*%\}", " ", source, flags=re.S)
    source = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", " ", source, flags=re.S)
    source = re.sub(r"<!--.*?-->|<[^>]*>|&[a-z]+;", " ", source, flags=re.S)
    return [word for word in re.findall(r"[A-Za-z][A-Za-z']+", source) if word != "authserver"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_untranslated_text_in_the_templates(path):
    assert visible_text(path.read_text(encoding="utf-8")) == []


def test_visible_text_finds_plain_english():
    assert visible_text("<p>{% translate 'Hi' %} Sign in {{ x }}</p>") == ["Sign", "in"]


def test_locale_middleware_is_browser_only():
    assert "authserver.accounts.middleware.PageLocaleMiddleware" in settings.MIDDLEWARE
    assert "authserver.accounts.middleware.PageLocaleMiddleware" in BROWSER_ONLY_MIDDLEWARE
    assert "authserver.accounts.middleware.PageLocaleMiddleware" not in machine_middleware()


@pytest.mark.django_db
def test_login_page_in_german(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    body = page.content.decode()
    assert '<html lang="de">' in body and "Anmelden" in body and "Benutzername" in body and "Username" not in body
    assert page["Content-Language"] == "de"
    staff = client.get(f"/{settings.ADMIN_PATH}/security/login/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Anmelden" not in staff and "Benutzername" not in staff, "the staff plane stays in English"
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Username" in english and '<html lang="en">' in english
