"""Staff passkeys: WebAuthn credentials as a second factor for the staff plane (issue 13).

A passkey is a django-otp device (:class:`~authserver.passkeys.models.PasskeyDevice`), so
``request.user.is_verified()`` and ``django_otp.devices_for_user`` see it like TOTP. The ceremonies
(W3C WebAuthn Level 2 §7.1 registration, §7.2 authentication) are py_webauthn's; this app keeps the
challenges server-side, single use and short-lived, and decides who may enrol and when."""
