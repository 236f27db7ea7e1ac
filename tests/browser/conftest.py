"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright against ``live_server``.

The browser is required: CI installs ``chromium``, so a missing binary is a failure, not a skip.
Screenshots of every page the tests visit go to ``tests/screenshots/`` (PNGs are gitignored).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from authserver import counters, revocation
from keys.models import ApiKey, ApiKeyUsage
from keys.verification import api_key_verify
from tests.factories import RS_AUDIENCE, ScopeFactory, make_client
from tests.helpers import staff_login

# Playwright's sync API keeps an asyncio loop "running" in this thread, which trips Django's
# async-safety check on every ORM call made by the test itself (the live server thread is unaffected).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("AUTHSERVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
ADMIN_PASSWORD = "admin-password-for-browser-tests"
APP_HOST = "app.example.test"


class _AppHandler(BaseHTTPRequestHandler):
    server: FakeApp

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/favicon.ico":
            self.send_error(404)
            return
        self.server.hits.append(f"https://{APP_HOST}{self.path}")
        body = (
            b"<!doctype html><meta charset=utf-8><title>app.example.test</title>"
            b"<h1 style='font:20px system-ui;margin:2rem'>app.example.test received the callback</h1>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeApp(ThreadingHTTPServer):
    """The client application at https://app.example.test, reached through a host-resolver rule.

    Playwright's ``page.route`` does not see the target of a server redirect (only the first URL
    of a redirect chain is routed), so the authorization response's 302 is followed by the
    browser for real, to this server, and the request it makes is recorded in ``hits``.
    """

    daemon_threads = True

    def __init__(self, cert_dir: Path) -> None:
        super().__init__(("127.0.0.1", 0), _AppHandler)
        self.hits: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*_self_signed(cert_dir, APP_HOST))
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "app.pem", directory / "app-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="package")
def fake_app(tmp_path_factory: Any) -> Iterator[FakeApp]:
    server = FakeApp(tmp_path_factory.mktemp("fake-app"))
    thread = threading.Thread(target=server.serve_forever, name="fake-app", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="package")
def browser(fake_app: FakeApp) -> Iterator[Any]:
    # Package scope: Playwright's loop is stopped before the rest of the suite runs.
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Only app.example.test resolves (to the fake app); every other name fails closed, so no
    # test can reach the network by accident.
    rules = f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1:{fake_app.port}, MAP * ~NOTFOUND, EXCLUDE localhost"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, rules])
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(request: Any, browser: Any, live_server: Any) -> Iterator[Any]:
    # ignore_https_errors: the fake app's certificate is self-signed (the live server is plain http).
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, ignore_https_errors=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
        if request.node.stash.get(CALL_FAILED, False):
            # What the browser showed when the test failed, for the CI artefacts.
            screenshot(page, f"FAILED-{request.node.name}")
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def superuser(transactional_db: Any) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.test", ADMIN_PASSWORD)


def totp_code(user: Any) -> str:
    """The code the user's authenticator app shows now (a confirmed TOTP device, created if missing);
    django-otp accepts each code once, so the device forgets the last one it saw (a test's next login)."""
    from django_otp.oath import totp

    from authserver.staff.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="browser test authenticator", confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0,
                                                   throttling_failure_timestamp=None)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def admin_login(page: Any, user: Any, password: str = ADMIN_PASSWORD, shot: str | None = None) -> None:
    from django.conf import settings

    totp_code(user)  # the account has an authenticator before it signs in
    page.goto(f"/{settings.ADMIN_PATH}/")
    if shot:
        screenshot(page, shot)
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    # The second factor (authserver.staff): the account's authenticator, enrolled here if it has none.
    page.wait_for_selector("#verify-form")
    page.fill("#id_code", totp_code(user))
    page.click("#verify-form input[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.locator("#user-tools").count() == 1, page.content()


# -- The API-key admin (test_admin_keys_*) ---------------------------------------------------------

OTHER_AUDIENCE = "https://embeddings.example.test"
CALLER_IP = "203.0.113.9"
User = get_user_model()


@pytest.fixture
def fresh_key_counters(settings: Any, tmp_path: Any) -> Any:
    """Empty verification caches and a private usage-counter store for each test (the key admin
    modules use it for all their tests: ``pytestmark = pytest.mark.usefixtures(...)``)."""
    revocation.clear_caches()
    if not settings.REDIS_URL:
        settings.DATA_DIR = tmp_path
    counters.reset_for_tests()
    revocation.reset_for_tests()
    yield
    counters.reset_for_tests()
    revocation.reset_for_tests()


@pytest.fixture
def customer(transactional_db: Any) -> Any:
    ScopeFactory(name="ai.admin", description="Manage models")  # exists, but this client may not use it
    client, _ = make_client(
        name="Acme inference", scopes=["ai.infer", "ai.embed"], audiences=[RS_AUDIENCE, OTHER_AUDIENCE]
    )
    return client


@pytest.fixture
def http_superuser(db: Any) -> HttpClient:
    http = HttpClient()
    staff_login(http, User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


@pytest.fixture
def owner(db: Any) -> Any:
    client, _ = make_client(name="owner", scopes=["ai.infer"], audiences=[RS_AUDIENCE])
    return client


def admin_url(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def key_url(key: ApiKey, view: str = "change") -> str:
    return admin_url(f"keys/apikey/{key.pk}/{view}/")


def key_active(plaintext: str, audience: str = RS_AUDIENCE, ip: str | None = CALLER_IP) -> bool:
    return api_key_verify(key=plaintext, audience=audience, client_ip=ip)["active"] is True


def assert_nowhere(page: Any, paths: list[str], *values: str) -> None:
    for path in paths:
        page.goto(path)
        html = page.content()
        for value in values:
            assert value not in html, f"{value[:6]}… found on {path}"


def apikey_url(name: str, *args: Any) -> str:
    return reverse(f"admin:keys_apikey_{name}", args=args)


def staff_with(*codenames: str) -> HttpClient:
    user = User.objects.create_user("staff", password="x-unused-password-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    http = HttpClient()
    staff_login(http, user)
    return http


def add_form(client: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "client": client.pk,
        "name": "k",
        "audiences": RS_AUDIENCE,
        "allowed_ips": "",
        "expires_in": "",
        "rate_limit": "",
        "quota": "",
        **overrides,
    }


def seed_usage(key: ApiKey, *, now: dt.datetime | None = None) -> int:
    """Thirty days of plausible traffic: a daily rhythm, busier on weekdays, a quiet gap, a spike."""
    now = (now or timezone.now()).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    rows, total = [], 0
    for h in range(30 * 24):
        hour = now - dt.timedelta(hours=h)
        if 30 <= h < 38:  # an outage on the client's side: no traffic at all (gap filled with zeros)
            continue
        daily = 0.55 + 0.45 * math.sin((hour.hour - 8) / 24 * 2 * math.pi)
        weekday = 1.0 if hour.weekday() < 5 else 0.45
        requests = int(40 + 260 * daily * weekday + (h * 37 % 23))
        if h == 5:
            requests *= 3  # a spike a few hours ago
        rows.append(ApiKeyUsage(key=key, hour=hour, requests=requests))
        total += requests
    ApiKeyUsage.objects.bulk_create(rows)
    ApiKey.objects.filter(pk=key.pk).update(uses=total, last_used=timezone.now() - dt.timedelta(minutes=3))
    key.last_used_ip = CALLER_IP  # encrypted: written through save(), never update()
    key.save(update_fields=["last_used_ip"])
    return total
