"""A software WebAuthn authenticator and browser, for tests of passkey flows.

`SoftAuthenticator` plays both halves of `navigator.credentials`: it reads the options
JSON a relying party made, and answers in the browser's JSON shape (`toJSON()`), with
attestation "none" at registration and an ES256 (P-256) signature at each assertion.
Its keys live in memory. Switches on each call make it misbehave for negative tests: a
wrong origin or RP id, no user verification, a chosen sign count.

Needs `cbor2` and `cryptography` (both come with the `mfa` extra).

Examples:
    >>> import json
    >>> phone = SoftAuthenticator(origin="https://example.com", rp_id="example.com")
    >>> options = {"challenge": "AAAA", "rp": {"id": "example.com"}, "user": {"id": "AQ"}}
    >>> answer = phone.create(json.dumps(options))
    >>> answer["type"], answer["id"] == answer["rawId"]
    ('public-key', True)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SoftAuthenticator"]

_UP: Final = 0x01
_UV: Final = 0x04
_BE: Final = 0x08
_BS: Final = 0x10
_AT: Final = 0x40
_ES256: Final = -7
_AAGUID: Final = bytes(16)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class _Credential:
    credential_id: bytes
    rp_id: str
    user_handle: bytes
    private_key: ec.EllipticCurvePrivateKey
    sign_count: int


class SoftAuthenticator:
    """An in-memory passkey provider with a browser in front of it.

    Args:
        origin: The origin it reports in clientDataJSON ("https://example.com").
        rp_id: The RP id it hashes into authenticatorData when the options name none.
        user_verification: Whether it verifies the user (the UV flag).
        backed_up: Whether its passkeys are synced (the BE and BS flags), as a phone's.
        counter: Whether it keeps a sign counter (a security key does, +1 a use); a
            synced passkey says 0 always.

    Examples:
        >>> key = SoftAuthenticator(origin="https://example.com", rp_id="example.com",
        ...                         backed_up=False, counter=True)
        >>> len(key.credential_ids)
        0
    """

    def __init__(
        self,
        *,
        origin: str,
        rp_id: str,
        user_verification: bool = True,
        backed_up: bool = True,
        counter: bool = True,
    ) -> None:
        self.origin = origin
        self.rp_id = rp_id
        self.user_verification = user_verification
        self.backed_up = backed_up
        self.counter = counter
        self._credentials: dict[str, _Credential] = {}

    @property
    def credential_ids(self) -> list[str]:
        """The ids (base64url) of the passkeys it holds, oldest first."""
        return list(self._credentials)

    def set_sign_count(self, credential_id: str, sign_count: int) -> None:
        """Set a passkey's counter, e.g. back to an old value as a clone would have it."""
        self._credentials[credential_id].sign_count = sign_count

    def create(
        self,
        options: str | Mapping[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool | None = None,
        cross_origin: bool = False,
    ) -> dict[str, Any]:
        """Answer `navigator.credentials.create()` options: a new passkey's credential.

        Args:
            options: The creation options JSON (or dict) the relying party made.
            origin: Report this origin instead of the authenticator's (misbehave).
            rp_id: Bind to this RP id instead of the options' (misbehave).
            user_verified: Override the UV flag for this answer.
            cross_origin: Claim the ceremony ran in a cross-origin frame.

        Raises:
            ValueError: As a browser's InvalidStateError, when one of its passkeys is in
                `excludeCredentials`.
        """
        data = json.loads(options) if isinstance(options, str) else dict(options)
        excluded = {item["id"] for item in data.get("excludeCredentials", [])}
        if excluded & set(self._credentials):
            raise ValueError("InvalidStateError: this authenticator is already registered")
        bound_rp_id = rp_id or data.get("rp", {}).get("id") or self.rp_id
        credential_id = secrets.token_bytes(16)
        private_key = ec.generate_private_key(ec.SECP256R1())
        credential = _Credential(
            credential_id=credential_id,
            rp_id=bound_rp_id,
            user_handle=_unb64url(data["user"]["id"]),
            private_key=private_key,
            sign_count=0,
        )
        self._credentials[_b64url(credential_id)] = credential
        numbers = private_key.public_key().public_numbers()
        cose_key = cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: _ES256,  # alg
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = _AAGUID + struct.pack(">H", len(credential_id)) + credential_id + cose_key
        auth_data = self._authenticator_data(
            bound_rp_id, user_verified=user_verified, sign_count=0, extra_flags=_AT
        )
        client_data = self._client_data(
            "webauthn.create", data["challenge"], origin, cross_origin=cross_origin
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data + attested})
        return {
            "id": _b64url(credential_id),
            "rawId": _b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": _b64url(client_data),
                "attestationObject": _b64url(attestation),
                "transports": ["hybrid", "internal"],
            },
        }

    def get(
        self,
        options: str | Mapping[str, Any],
        *,
        credential_id: str | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool | None = None,
        sign_count: int | None = None,
        user_handle: bool = True,
        cross_origin: bool = False,
    ) -> dict[str, Any]:
        """Answer `navigator.credentials.get()` options: an assertion by one passkey.

        Args:
            options: The request options JSON (or dict) the relying party made.
            credential_id: Which passkey answers, when several could (the user's pick).
            origin: Report this origin instead of the authenticator's (misbehave).
            rp_id: Hash this RP id instead of the passkey's (misbehave).
            user_verified: Override the UV flag for this answer.
            sign_count: Report this counter instead of the next one (misbehave).
            user_handle: Whether to include the user handle.
            cross_origin: Claim the ceremony ran in a cross-origin frame.

        Raises:
            ValueError: As a browser's NotAllowedError, when it has no passkey that fits.
        """
        data = json.loads(options) if isinstance(options, str) else dict(options)
        allowed = [item["id"] for item in data.get("allowCredentials", [])]
        wanted_rp_id = data.get("rpId") or self.rp_id
        candidates = [
            key
            for key, credential in self._credentials.items()
            if credential.rp_id == wanted_rp_id and (not allowed or key in allowed)
        ]
        if credential_id is not None:
            candidates = [key for key in candidates if key == credential_id]
        if not candidates:
            raise ValueError("NotAllowedError: no passkey for this request")
        key = candidates[0]
        credential = self._credentials[key]
        if self.counter:
            credential.sign_count += 1
        count = credential.sign_count if sign_count is None else sign_count
        auth_data = self._authenticator_data(
            rp_id or credential.rp_id, user_verified=user_verified, sign_count=count
        )
        client_data = self._client_data(
            "webauthn.get", data["challenge"], origin, cross_origin=cross_origin
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = credential.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": key,
            "rawId": key,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": _b64url(client_data),
                "authenticatorData": _b64url(auth_data),
                "signature": _b64url(signature),
                "userHandle": _b64url(credential.user_handle) if user_handle else None,
            },
        }

    def _authenticator_data(
        self, rp_id: str, *, user_verified: bool | None, sign_count: int, extra_flags: int = 0
    ) -> bytes:
        flags = _UP | extra_flags
        if self.user_verification if user_verified is None else user_verified:
            flags |= _UV
        if self.backed_up:
            flags |= _BE | _BS
        return (
            hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)
        )

    def _client_data(
        self, kind: str, challenge: str, origin: str | None, *, cross_origin: bool
    ) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": cross_origin,
            },
            separators=(",", ":"),
        ).encode()
