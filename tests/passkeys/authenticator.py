"""A software WebAuthn authenticator for Django-client tests: EC P-256 (ES256), "none" attestation.

It builds what a browser and an authenticator would send (W3C WebAuthn Level 2 §6.1 authenticator
data, §6.5.4 attestation object, §5.8.1 client data) from the options our endpoints answer, and
lets a test lie about any part of it: the origin, the RP id, the user-verified flag, the counter.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.encode_cbor import encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40
AAGUID = bytes(16)


@dataclass
class SoftAuthenticator:
    origin: str = "http://testserver"
    sign_count: int = 0
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
               uv: bool = True) -> dict[str, Any]:
        """navigator.credentials.create(): a registration credential for ``options`` (the server's JSON)."""
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        flags = UP | AT | (UV if uv else 0)
        attested = AAGUID + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        auth_data = rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": bytes_to_base64url(self.credential_id), "rawId": bytes_to_base64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(self._client_data("webauthn.create", options["challenge"], origin)),
                "attestationObject": bytes_to_base64url(attestation), "transports": ["internal"],
            },
        }

    def get(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None, uv: bool = True,
            sign_count: int | None = None) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion over ``options``' challenge, the counter advanced."""
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([UP | (UV if uv else 0)]) + struct.pack(">I", self.sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": bytes_to_base64url(self.credential_id), "rawId": bytes_to_base64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data), "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature), "userHandle": None,
            },
        }
