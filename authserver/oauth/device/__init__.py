"""RFC 8628, the OAuth 2.0 device authorization grant (docs/device-flow.md).

DOT 3.4.1 ships the grant (``DeviceGrant``, ``views/device.py``), but stores the device code and the
user code in clear, answers an unknown code with a 404, never says ``slow_down`` and lets the user
code page be guessed without limit. This app keeps oauthlib's grant handler (``DeviceCodeGrant``,
which asks our validator for the code's status) and replaces the rest: a hash-only model, the
device authorization endpoint, the user-code page's services.
"""
