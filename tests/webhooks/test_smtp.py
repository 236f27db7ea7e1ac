"""E-mail over SMTP from the environment: an expiry warning reaches a real local SMTP server
(aiosmtpd) over STARTTLS with authentication, to the client's contact address."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keys import jobs
from keys.services import api_key_create
from tests.factories import make_client

SMTP_USER, SMTP_PASSWORD = "authserver", "smtp-password-for-the-test"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "smtp.crt", tmp / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (SMTP_USER.encode(),
                                                                               SMTP_PASSWORD.encode())
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def smtp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Controller, _Inbox]]:
    import ssl

    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client trusts this server's CA, as an operator would
    inbox = _Inbox()
    with socket.socket() as probe:  # aiosmtpd's start() connects to the port it was given: pick a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=inbox.authenticate, auth_required=True)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.mark.django_db
def test_expiry_warning_arrives_over_starttls_with_auth(settings, smtp_server):
    controller, inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "localhost", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = True, False
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = SMTP_USER, SMTP_PASSWORD
    owner, _ = make_client(name="customer")
    owner.contact_email = "ops@customer.example"
    owner.save(update_fields=["contact_email"])
    key, plaintext = api_key_create(client=owner, name="prod-eu", expires_in=dt.timedelta(days=2))

    assert jobs.expiry_warnings_send() == 1
    (message,) = inbox.messages
    assert message.rcpt_tos == ["ops@customer.example"]
    assert message.mail_from == settings.DEFAULT_FROM_EMAIL
    body = message.content.decode()
    assert "prod-eu" in body and key.hint in body and plaintext not in body
    assert inbox.logins == [SMTP_USER]


@pytest.mark.django_db
def test_a_wrong_smtp_password_fails_open(settings, smtp_server, caplog):
    controller, inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "localhost", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = True, False
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = SMTP_USER, "wrong-password-value"
    owner, _ = make_client(name="customer")
    owner.contact_email = "ops@customer.example"
    owner.save(update_fields=["contact_email"])
    api_key_create(client=owner, name="k", expires_in=dt.timedelta(days=2))
    assert jobs.expiry_warnings_send() == 1  # warned (recorded) though the e-mail failed
    assert inbox.messages == []
    assert "expiry e-mail failed" in caplog.text and "wrong-password-value" not in caplog.text


def _settings_from(env: dict[str, str]) -> dict[str, Any]:
    code = ("import django, json; from django.conf import settings; django.setup(); print(json.dumps({k: "
            "getattr(settings, k) for k in ['EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER', "
            "'EMAIL_USE_TLS', 'EMAIL_USE_SSL']}))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_SMTP")}
    done = subprocess.run([sys.executable, "-c", code], env={**base, "DJANGO_SETTINGS_MODULE": "authserver.settings",
                                                             **env}, capture_output=True, text=True, timeout=60)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_smtp_settings_come_from_the_environment():
    assert _settings_from({})["EMAIL_BACKEND"] != "django.core.mail.backends.smtp.EmailBackend"
    assert _settings_from({"AUTHSERVER_SMTP_HOST": "mail.example.com", "AUTHSERVER_SMTP_USER": "u",
                           "AUTHSERVER_SMTP_PASSWORD": "p"}) == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 587, "EMAIL_HOST_USER": "u", "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False}
    ssl_on = _settings_from({"AUTHSERVER_SMTP_HOST": "mail.example.com", "AUTHSERVER_SMTP_TLS": "ssl"})
    assert (ssl_on["EMAIL_PORT"], ssl_on["EMAIL_USE_TLS"], ssl_on["EMAIL_USE_SSL"]) == (465, False, True)
    plain = _settings_from({"AUTHSERVER_SMTP_HOST": "relay", "AUTHSERVER_SMTP_TLS": "none",
                            "AUTHSERVER_SMTP_PORT": "2525"})
    assert (plain["EMAIL_PORT"], plain["EMAIL_USE_TLS"], plain["EMAIL_USE_SSL"]) == (2525, False, False)


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTHSERVER_SMTP_TLS": "maybe"}, "AUTHSERVER_SMTP_TLS must be one of starttls, ssl, none"),
    ({"AUTHSERVER_SMTP_USER": "u"}, "go together"),
    ({"AUTHSERVER_SMTP_PORT": "x"}, "AUTHSERVER_SMTP_PORT must be an integer"),
])
def test_bad_smtp_settings_are_refused(env, message):
    from django.core.exceptions import ImproperlyConfigured

    from authserver import conf

    with pytest.raises(ImproperlyConfigured, match=message):
        conf.load({"AUTHSERVER_SMTP_HOST": "mail.example.com", **env})


def test_production_refuses_a_cleartext_smtp_password_and_the_http_override():
    from django.core.exceptions import ImproperlyConfigured

    from authserver import conf

    prod = {"AUTHSERVER_ENV": "production", "AUTHSERVER_SECRET_KEY": "k" * 50, "AUTHSERVER_ISSUER": "https://a.example",
            "AUTHSERVER_ALLOWED_HOSTS": "a.example", "DATABASE_URL": "postgres://u:p@db/a", "REDIS_URL": "redis://r/0"}
    conf.load(prod)  # the baseline is valid
    with pytest.raises(ImproperlyConfigured, match="in clear"):
        conf.load({**prod, "AUTHSERVER_SMTP_HOST": "m", "AUTHSERVER_SMTP_USER": "u", "AUTHSERVER_SMTP_PASSWORD": "p",
                   "AUTHSERVER_SMTP_TLS": "none"})
    with pytest.raises(ImproperlyConfigured, match="development only"):
        conf.load({**prod, "AUTHSERVER_WEBHOOK_ALLOW_HTTP_LOOPBACK": "1"})
    loaded = conf.load({**prod, "AUTHSERVER_SMTP_HOST": "m", "AUTHSERVER_SMTP_USER": "u",
                        "AUTHSERVER_SMTP_PASSWORD": "secret-smtp-pw"})
    assert loaded.webhooks.smtp_password == "secret-smtp-pw" and "secret-smtp-pw" not in repr(loaded)
