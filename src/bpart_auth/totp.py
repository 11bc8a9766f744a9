"""Authenticator-app codes (TOTP, RFC 6238), their QR codes, sealed secrets, recovery codes.

The primitives of the second factor; the sign-in step and the stored factors build
on them. Needs the `mfa` extra (`pip install "bpart-auth[mfa]"`: pyotp and segno);
`import bpart_auth` never imports this module.

- `new_secret`, `provisioning_uri` and `qr_svg` set up an authenticator app: a
  160-bit base32 secret, its `otpauth://` URI (SHA-1, 6 digits, 30 seconds: what
  every app reads) and that URI as an inline SVG QR code.
- `matching_step` checks a code the user typed and returns the time step it matched,
  for the single-use guard to consume once (a code is accepted once).
- `TotpSecrets` seals a secret for the store (never kept raw), bound to its account.
- `new_recovery_codes`, `normalize_recovery_code` and `recovery_code_hash` make the
  ten one-time codes shown once, and the hashes stored in their place.

Examples:
    >>> from datetime import datetime, timezone
    >>> import pyotp
    >>> secret = new_secret()
    >>> now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    >>> code = pyotp.TOTP(secret).at(now)  # what the user's app shows
    >>> matching_step(secret, code, now=now) == int(now.timestamp()) // 30
    True
    >>> matching_step(secret, "not a code", now=now) is None
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import re
import secrets
import unicodedata
from typing import TYPE_CHECKING, Final

from bpart_auth._secretbox import SecretBox
from bpart_auth.errors import InvalidInput, InvalidSecondFactor

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

__all__ = [
    "DIGITS",
    "PERIOD",
    "RECOVERY_CODE_COUNT",
    "TotpSecrets",
    "matching_step",
    "new_recovery_codes",
    "new_secret",
    "normalize_recovery_code",
    "provisioning_uri",
    "qr_svg",
    "recovery_code_hash",
]

DIGITS: Final = 6
"""Digits in a code."""

PERIOD: Final = 30
"""Seconds in a time step."""

RECOVERY_CODE_COUNT: Final = 10
"""Recovery codes made at a time."""

_SECRET_BYTES: Final = 20  # 160 bits, the HMAC-SHA1 block RFC 4226 recommends
_MAX_DRIFT: Final = 10
_MAX_CODE_INPUT: Final = 64  # a typed code with spaces; anything longer is not one
_CODE: Final = re.compile(r"[0-9]{6}")
_BASE32_SECRET: Final = re.compile(r"[A-Z2-7]{26,128}")  # 128 to 640 bits, no padding
_MAX_LABEL: Final = 200
_MAX_URI: Final = 1000  # a QR code of version 22 or so: still scans from a screen

# Crockford's base32: digits and lowercase letters without i, l, o, u, so nothing
# reads as something else; a typed o, i or l is taken for 0, 1, 1.
_RECOVERY_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_LENGTH: Final = 16  # 16 x 5 bits = 80 bits
_RECOVERY_GROUP: Final = 4
_RECOVERY_TYPOS: Final = str.maketrans("oil", "011", "-")
_RECOVERY_CODE: Final = re.compile(f"[{_RECOVERY_ALPHABET}]{{{_RECOVERY_LENGTH}}}")
_MAX_RECOVERY_INPUT: Final = 64

_SEAL_PURPOSE: Final = b"bpart_auth totp secret v1"


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits from `secrets`, as 32 base32 characters.

    Examples:
        >>> secret = new_secret()
        >>> len(secret), secret.isupper() or secret.isdigit()
        (32, True)
    """
    return _base32(secrets.token_bytes(_SECRET_BYTES))


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _check_label(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field=name, detail=f"{name} must be a non-empty str")
    if len(value) > _MAX_LABEL:
        raise InvalidInput(field=name, detail=f"{name} is over {_MAX_LABEL} characters")
    # Key Uri Format: neither part may hold a colon, the label's separator.
    if ":" in value or any(unicodedata.category(c) in {"Cc", "Cf"} for c in value):
        raise InvalidInput(field=name, detail=f"{name} has a colon or a control character")
    return value


def provisioning_uri(secret: str, *, account_name: str, issuer: str) -> str:
    """The `otpauth://totp/` URI an authenticator app reads (from a QR code or a link).

    SHA-1, 6 digits and 30-second steps, the defaults every app assumes, so the URI
    leaves them out (Google's Key Uri Format).

    Args:
        secret: The base32 secret from `new_secret`.
        account_name: Who the entry is for in the app, usually the email address.
        issuer: The app's name, shown above the code.

    Returns:
        The URI. It holds the secret: show it to the user once, never log it.

    Raises:
        InvalidInput: A secret that is not base32 of 128 bits or more; an empty or
            over-long name, or one with a colon or a control character.

    Examples:
        >>> provisioning_uri("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        ...                  account_name="ada@example.com", issuer="Back Office")
        'otpauth://totp/Back%20Office:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Back%20Office'
    """
    import pyotp  # noqa: PLC0415 - the mfa extra, never imported by `import bpart_auth`

    _check_secret(secret)
    return pyotp.TOTP(secret).provisioning_uri(
        name=_check_label("account_name", account_name),
        issuer_name=_check_label("issuer", issuer),
    )


def qr_svg(uri: str, *, scale: int = 4) -> str:
    """`uri` as a QR code in an SVG string, made by segno (no image library).

    Safe to put straight into an HTML page: paths and a white background only, no
    script, no text, no links. Dark modules on white, with the standard 4-module
    quiet zone, so it scans on a dark page too.

    Args:
        uri: The text to encode, usually from `provisioning_uri` (at most 1000
            characters).
        scale: Pixels per module.

    Returns:
        `<svg xmlns=... width=... height=...>...</svg>`, no XML declaration.

    Raises:
        InvalidInput: An empty or over-long `uri`, or a `scale` outside 1 to 20.

    Examples:
        >>> svg = qr_svg("otpauth://totp/Back%20Office:ada?secret=GEZDGNBVGY3TQOJQ")
        >>> svg.startswith("<svg "), "<script" in svg
        (True, False)
    """
    import segno  # noqa: PLC0415 - the mfa extra, never imported by `import bpart_auth`

    if not 0 < len(uri) <= _MAX_URI:
        raise InvalidInput(field="uri", detail=f"uri must be 1 to {_MAX_URI} characters")
    if not 1 <= scale <= 20:  # noqa: PLR2004 - the bounds
        raise InvalidInput(field="scale", detail="scale must be an int from 1 to 20")
    out = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=scale,
        dark="#000",
        light="#fff",
        svgclass=None,
        lineclass=None,
    )
    return out.getvalue().decode("utf-8")


def _normalize_code(code: object) -> str | None:
    if not isinstance(code, str) or len(code) > _MAX_CODE_INPUT:
        return None
    compact = "".join(code.split())  # "123 456" as some apps show it
    return compact if _CODE.fullmatch(compact) else None


def _check_secret(secret: str) -> None:
    if not _BASE32_SECRET.fullmatch(secret):
        raise InvalidInput(field="secret", detail="not a base32 TOTP secret of 128 bits or more")


def matching_step(secret: str, code: object, *, now: datetime, drift: int = 1) -> int | None:
    """The time step whose code `code` is, within `drift` steps of `now`; else None.

    The code is bounded and normalised first: spaces are dropped, then it must be
    exactly six ASCII digits; anything else (None, a number, Arabic-Indic digits,
    megabytes of text) is None, never an exception. Every candidate is compared in
    constant time, and all of them are computed whatever matches.

    The step is what makes a code single-use: consume (factor id, step) with the
    single-use guard, and refuse the code if it was consumed already. When a code
    matches two steps of the window (one chance in a million), the earliest is
    returned, so the same code gives the same step as the window moves on.

    Args:
        secret: The base32 secret (opened with `TotpSecrets.open`).
        code: What the user typed, unchecked.
        now: The current time, timezone-aware.
        drift: Steps accepted either side of now's (1: a code is good for about 90
            seconds, for clocks and typing); 0 to 10.

    Returns:
        The matching step counter (Unix time // 30), or None.

    Raises:
        InvalidInput: A naive `now`, a `drift` outside 0 to 10, or a secret that is
            not base32 of 128 bits or more (these are the caller's, not the user's).

    Examples:
        >>> from datetime import datetime, timezone
        >>> at = datetime(1970, 1, 1, 0, 0, 59, tzinfo=timezone.utc)
        >>> secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238's, base32
        >>> matching_step(secret, "287 082", now=at)  # its 59 s vector, 6 digits
        1
    """
    import pyotp  # noqa: PLC0415 - the mfa extra, never imported by `import bpart_auth`

    if now.utcoffset() is None:
        raise InvalidInput(field="now", detail="now must be a timezone-aware datetime")
    if not 0 <= drift <= _MAX_DRIFT:
        raise InvalidInput(field="drift", detail=f"drift must be an int from 0 to {_MAX_DRIFT}")
    _check_secret(secret)
    typed = _normalize_code(code)
    if typed is None:
        return None
    current = int(now.timestamp()) // PERIOD
    try:
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
        candidates = [
            (step, totp.generate_otp(step))
            for step in range(current - drift, current + drift + 1)
            if step >= 0
        ]
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput(field="secret", detail="the TOTP secret is unreadable") from exc
    found = None
    for step, expected in candidates:
        if hmac.compare_digest(expected.encode(), typed.encode()) and found is None:
            found = step
    return found


class TotpSecrets:
    """Seals TOTP secrets for the store, each bound to its account, and opens them.

    AES-256-GCM under a key HKDF-derived from `secret_key` for TOTP secrets only
    (see `SecretBox`); the account id is authenticated with it, so a sealed secret
    copied to another account's row does not open there.

    Args:
        secret_key: The app's secret (at least 32 bytes); seals and opens.
        fallback_secret_keys: Older secrets that still open, never seal. Unlike flow
            state, secrets sealed under an old key live until re-sealed: keep an old
            key as a fallback until every factor was re-sealed or re-enrolled.

    Raises:
        ConfigurationError: A key shorter than 32 bytes or of the wrong type.

    Examples:
        >>> box = TotpSecrets("an app secret of at least 32 bytes!")
        >>> sealed = box.seal("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", account_id="a1")
        >>> sealed.startswith("v1."), "GEZDGNBV" in sealed
        (True, False)
        >>> box.open(sealed, account_id="a1")
        'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
    """

    __slots__ = ("_box",)

    def __init__(
        self, secret_key: str | bytes, fallback_secret_keys: Sequence[str | bytes] = ()
    ) -> None:
        self._box = SecretBox(
            secret_key,
            fallback_secret_keys=fallback_secret_keys,
            purpose=_SEAL_PURPOSE,
            error=InvalidSecondFactor,
            noun="TOTP secret",
            max_plaintext_bytes=128,
        )

    def seal(self, secret: str, *, account_id: str) -> str:
        """The secret sealed for the store, bound to `account_id`.

        Raises:
            InvalidInput: Not a base32 secret of 128 to 640 bits.
        """
        _check_secret(secret)
        return self._box.seal(secret.encode("ascii"), associated=_account(account_id))

    def open(self, sealed: object, *, account_id: str) -> str:
        """The secret `seal` sealed for this same `account_id`.

        Raises:
            InvalidSecondFactor: Tampered with, sealed for another account or under
                an unknown key (a dropped fallback), or not a sealed secret at all;
                `detail` says which.
        """
        plaintext = self._box.open(sealed, associated=_account(account_id))
        secret = plaintext.decode("ascii", "replace")
        if not _BASE32_SECRET.fullmatch(secret):
            raise InvalidSecondFactor(detail="TOTP secret unreadable")
        return secret


def _account(account_id: str) -> bytes:
    return b"account\x00" + account_id.encode("utf-8", "surrogatepass")


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh, distinct recovery codes, to show once: `xxxx-xxxx-xxxx-xxxx`, 80 bits each.

    Lowercase Crockford base32 (no i, l, o, u), so none is misread. Store only
    `recovery_code_hash` of each.

    Raises:
        InvalidInput: `count` outside 1 to 100.

    Examples:
        >>> codes = new_recovery_codes()
        >>> len(codes), len(set(codes)), len(codes[0]), codes[0][4]
        (10, 10, 19, '-')
    """
    if not 1 <= count <= 100:  # noqa: PLR2004 - the bounds
        raise InvalidInput(field="count", detail="count must be an int from 1 to 100")
    codes: dict[str, None] = {}
    while len(codes) < count:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes[_grouped(raw)] = None
    return list(codes)


def _grouped(compact: str) -> str:
    step = _RECOVERY_GROUP
    return "-".join(compact[i : i + step] for i in range(0, len(compact), step))


def normalize_recovery_code(text: object) -> str | None:
    """A typed recovery code in its one canonical form (16 characters, no dashes), or None.

    Case, dashes and spaces do not matter, and o, i, l are read as 0, 1, 1. Anything
    that cannot be a code (not a str, over 64 characters, non-ASCII, wrong length or
    letters) is None.

    Examples:
        >>> normalize_recovery_code(" ABCD-efgh 2345-6789 ")
        'abcdefgh23456789'
        >>> normalize_recovery_code("0O1l-abcd-efgh-jkmn")
        '0011abcdefghjkmn'
        >>> normalize_recovery_code("abcd-efgh") is None
        True
    """
    if not isinstance(text, str) or len(text) > _MAX_RECOVERY_INPUT or not text.isascii():
        return None
    compact = "".join(text.split()).lower().translate(_RECOVERY_TYPOS)
    return compact if _RECOVERY_CODE.fullmatch(compact) else None


def recovery_code_hash(code: str) -> str:
    """The SHA-256 (hex) stored in place of a recovery code, of its normalised form.

    Prefixed with its purpose, as invitation and reset tokens are, so a recovery
    code's hash is never another token's. 80 random bits need no slow hash.

    Raises:
        InvalidSecondFactor: `code` is not a recovery code (see
            `normalize_recovery_code`).

    Examples:
        >>> recovery_code_hash("ABCD-EFGH-2345-6789") == recovery_code_hash("abcdefgh23456789")
        True
        >>> len(recovery_code_hash("abcd-efgh-2345-6789"))
        64
    """
    compact = normalize_recovery_code(code)
    if compact is None:
        raise InvalidSecondFactor(detail="not a recovery code")
    return hashlib.sha256(f"bpart_auth/recovery_code\x00{compact}".encode("ascii")).hexdigest()
