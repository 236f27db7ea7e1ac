"""The staff plane's second factor: who may reach the admin, and how recently they proved it.

A password alone opens nothing under the admin path: a staff member passes a second factor
(a django-otp device: TOTP, a WebAuthn passkey, or a recovery code) in the session, and sensitive
actions ask again when that proof is older than a few minutes (docs/security.md)."""
