"""Authenticated encryption of small secrets under a key derived for one purpose.

`SecretBox` is what `FlowSealer` seals flow state with and what `bpart_auth.totp`
seals TOTP secrets with: AES-256-GCM with a random 96-bit nonce, under a key derived
from the app's secret with HKDF-SHA256 (no salt, `info` = the purpose). The secret
itself never keys anything, and each purpose derives its own unrelated key, so a
value sealed for one purpose never opens for another.

The sealed form is `v1.` followed by base64url (no padding) of nonce, ciphertext and
tag. `associated` data (for example the account a secret belongs to) is
authenticated, not stored: the same value must be given to `open`.

`secret_key` seals and opens; `fallback_secret_keys` only open, so a key can be
rotated without losing what was sealed before (a fallback never seals: compare
Flask 3.1.0, CVE-2025-47278).

Errors are the caller's: each box is given the `AuthError` subclass it raises for a
value it cannot open, and the noun its `detail` messages use, so `FlowSealer` keeps
raising `InvalidFlowState("flow state too long")` and the TOTP secrets raise theirs.

Examples:
    >>> from bpart_auth.errors import InvalidInput
    >>> box = SecretBox("an app secret of at least 32 bytes!", purpose=b"example v1",
    ...                 error=InvalidInput, noun="example")
    >>> sealed = box.seal(b"hello", associated=b"account-1")
    >>> sealed.startswith("v1."), box.open(sealed, associated=b"account-1")
    (True, b'hello')
    >>> try:
    ...     box.open(sealed, associated=b"account-2")
    ... except InvalidInput as error:
    ...     error.detail
    'example not authentic: tampered with, truncated or sealed under an unknown key'
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import TYPE_CHECKING, Final

from bpart_auth.errors import ConfigurationError, InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from bpart_auth.errors import AuthError

__all__ = ["MIN_SECRET_KEY_BYTES", "SecretBox"]

MIN_SECRET_KEY_BYTES: Final = 32
"""Shortest secret key accepted, in bytes (UTF-8 for a str): 256 bits if random.

`secrets.token_urlsafe(32)` (43 characters) is a good secret key.
"""

_VERSION: Final = "v1"
_PREFIX: Final = _VERSION + "."
_NONCE_BYTES: Final = 12  # 96 bits, the GCM standard nonce (NIST SP 800-38D)
_TAG_BYTES: Final = 16
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_VERSIONED: Final = re.compile(r"v[0-9]{1,3}\.")


def secret_key_bytes(secret: str | bytes, name: str) -> bytes:
    """`secret` as bytes, checked to be a str or bytes of at least 32 bytes.

    Raises:
        ConfigurationError: Another type, or too short; `detail` names `name`.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    elif not isinstance(secret, bytes):
        raise ConfigurationError(detail=f"{name} must be a str or bytes")
    if len(secret) < MIN_SECRET_KEY_BYTES:
        raise ConfigurationError(
            detail=f"{name} must be at least {MIN_SECRET_KEY_BYTES} bytes long, e.g. "
            "secrets.token_urlsafe(32)"
        )
    return secret


def _derive(secret: bytes, purpose: bytes) -> AESGCM:
    # cryptography is imported by the first box made, not by `import bpart_auth`: an
    # app without a secret_key never needs it.
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)
    return AESGCM(key)


def sealed_length(plaintext_bytes: int) -> int:
    """The length of what `SecretBox.seal` makes of `plaintext_bytes` bytes."""
    raw = _NONCE_BYTES + plaintext_bytes + _TAG_BYTES
    return len(_PREFIX) + (raw * 4 + 2) // 3


class SecretBox:
    """Seals bytes into versioned, authenticated, encrypted text, and opens it.

    Args:
        secret_key: The app's secret: at least 32 bytes (UTF-8 for a str). Seals and
            opens; never used directly as a key.
        fallback_secret_keys: Older secrets that still open, and never seal.
        purpose: The HKDF `info`: a distinct byte string for each kind of value
            (name a version in it, as `b"bpart_auth totp secret v1"`).
        error: The `AuthError` subclass `open` raises, with a `detail`.
        noun: What the box holds, for `detail` messages ("flow state").
        max_plaintext_bytes: The longest plaintext `seal` accepts; `open` refuses
            any text longer than such a plaintext sealed, before decoding it.

    Raises:
        ConfigurationError: A key shorter than 32 bytes or of the wrong type, a
            single key given as `fallback_secret_keys`, or an empty purpose.
    """

    __slots__ = ("_error", "_max_plaintext", "_max_sealed", "_noun", "_openers", "_sealer")

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        fallback_secret_keys: Sequence[str | bytes] = (),
        purpose: bytes,
        error: type[AuthError],
        noun: str,
        max_plaintext_bytes: int = 4096,
    ) -> None:
        if isinstance(fallback_secret_keys, (str, bytes)):
            raise ConfigurationError(
                detail="fallback_secret_keys must be a list of keys, not a single key"
            )
        if not purpose:
            raise ConfigurationError(detail="a SecretBox needs a purpose")
        self._sealer = _derive(secret_key_bytes(secret_key, "secret_key"), purpose)
        fallbacks = [
            _derive(secret_key_bytes(key, "each of fallback_secret_keys"), purpose)
            for key in fallback_secret_keys
        ]
        self._openers = (self._sealer, *fallbacks)
        self._error = error
        self._noun = noun
        self._max_plaintext = max_plaintext_bytes
        self._max_sealed = sealed_length(max_plaintext_bytes)

    def seal(self, data: bytes, *, associated: bytes = b"") -> str:
        """Encrypt and authenticate `data` (and `associated`) under `secret_key`.

        Args:
            data: The plaintext.
            associated: Authenticated too but not sealed; `open` needs it again.

        Returns:
            `v1.` and base64url text, safe in a cookie, a URL, a form or a column.

        Raises:
            InvalidInput: `data` longer than `max_plaintext_bytes`.
        """
        if len(data) > self._max_plaintext:
            raise InvalidInput(detail=f"the {self._noun} is over {self._max_plaintext} bytes")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._sealer.encrypt(nonce, data, associated)
        return _PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, sealed: object, *, associated: bytes = b"") -> bytes:
        """Check and decrypt what `seal` made, under `secret_key` or a fallback.

        Args:
            sealed: The sealed text, as it came back (any value: it is checked).
            associated: The same associated data it was sealed with.

        Returns:
            The plaintext.

        Raises:
            AuthError: Of the box's `error` class, for anything else: not a str, too
                long, another version, not base64url, truncated, tampered with,
                other associated data, or sealed under an unknown key.
        """
        if not isinstance(sealed, str):
            raise self._refuse("is not a str")
        if len(sealed) > self._max_sealed:
            raise self._refuse("too long")
        if not sealed.startswith(_PREFIX):
            if _VERSIONED.match(sealed):
                raise self._refuse("of an unsupported version")
            raise self._refuse("malformed: no version prefix")
        data = self._decode(sealed[len(_PREFIX) :])
        if len(data) <= _NONCE_BYTES + _TAG_BYTES:
            raise self._refuse("malformed: truncated")
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - _derive loaded it

        nonce, ciphertext = data[:_NONCE_BYTES], data[_NONCE_BYTES:]
        for opener in self._openers:
            try:
                plaintext = opener.decrypt(nonce, ciphertext, associated)
            except InvalidTag:
                continue
            break
        else:
            raise self._refuse(
                "not authentic: tampered with, truncated or sealed under an unknown key"
            )
        return plaintext

    def _decode(self, body: str) -> bytes:
        if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
            raise self._refuse("malformed: not base64url")
        try:
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:  # pragma: no cover - checked above
            raise self._refuse("malformed: not base64url") from exc

    def _refuse(self, reason: str) -> AuthError:
        return self._error(detail=f"{self._noun} {reason}")
