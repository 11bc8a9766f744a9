"""ID-token validation shared by every provider (OpenID Connect Core 1.0, 3.1.3.7).

`validate_id_token` checks, in this order, and stops at the first failure with
`InvalidIdToken(detail="<check>: ...")`:

1. the token is a compact JWS: three canonical base64url segments (no padding, no
   stray characters, no non-zero unused bits: one token, one spelling) and a JSON
   object header (strictly: no `NaN`);
2. `alg` is in the allowed list, RS256 or ES256 (the algorithms Google and Entra sign
   with: never `none`, never `HS*`, so a public key can never serve as an HMAC
   secret); a `crit` header is refused (we understand no extension);
3. the key: the one the provider's JWKS holds for the header's `kid` (`JWKSCache`;
   keys embedded in the token, `jku`, `x5u`, are ignored);
4. the signature, then `iat` and `exp` (both required, as OpenID Connect Core
   requires), by `google.auth.jwt.decode` with that key and `leeway` as its clock
   skew, against the system clock;
5. claims, from the payload google-auth verified: `exp`, `iat` and `nbf` are numbers
   of seconds between 1970 and the end of year 9999; `iss`; `aud` (the client id,
   alone or in a list); `azp` (required and equal to the client id when `aud` lists
   several; equal to it whenever present); the time window again (RFC 7519 4.1.4:
   refused from `exp + leeway` on, a second google-auth still accepts; `iat` not in
   the future; `nbf` reached); `nonce` (required, constant-time compare) and `sub` (a
   non-empty string of at most 255 characters, OpenID Connect Core 2).

google-auth's errors do not say which check failed, and its time check does
arithmetic on whatever `iat` and `exp` hold (`"tomorrow" + 60` is a TypeError; it
lets `NaN` through): when it refuses a token, the payload is decoded strictly and
checked to name the refusal (`payload`, then `exp`/`iat`/`nbf` not a time, then
`exp`/`iat` outside the window, else `signature`). A token it accepts is checked
again by step 5, so nothing it lets through (a `NaN`, a time past year 9999) is
accepted.

The claims a provider then converts (`email`, `name`, `hd`, `tid`, `oid`...) are
read through `text_claim`, which hands back only a bounded str that UTF-8 can
encode (JSON escapes can spell lone surrogates), and None for anything else.

Why google-auth: the design names it for ID tokens, one verifier the Google
ecosystem already reviews. Over keys converted once per key set (`SigningKey.pem`)
its decode costs about 2.2 times the raw RSA verification; the payload is decoded
once (by google-auth) on the way to an accepted token, which keeps the whole
validation near 2.6 times (the benchmark's budget is 3). Its `audience` check is not
used: it refuses an `aud` list that contains the client id, which OpenID Connect
allows.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard

from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from bpart_auth._input import text_problem
from bpart_auth.errors import ConfigurationError, InvalidIdToken
from bpart_auth.oidc.jwks import SUPPORTED_ALGORITHMS

if TYPE_CHECKING:
    from bpart_auth.oidc.jwks import JWKSCache

__all__ = [
    "DEFAULT_ALGORITHMS",
    "IssuerCheck",
    "check_form",
    "text_claim",
    "validate_id_token",
]

IssuerCheck: TypeAlias = str | Collection[str] | Callable[[Mapping[str, Any]], bool]
"""An exact issuer, a set of accepted issuers, or a test of the (verified) claims."""

DEFAULT_ALGORITHMS: Final = ("RS256", "ES256")
"""The asymmetric JWS algorithms accepted unless told otherwise: all we support."""

_JWS_SEGMENTS: Final = 3
_MAX_TOKEN_LENGTH: Final = 64 * 1024  # Entra tokens with many groups still fit easily
_MAX_SUBJECT_LENGTH: Final = 255  # OpenID Connect Core 1.0, section 2 (`sub`)
_LATEST_TIME: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, as seconds since the epoch
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_COMPACT_JWS: Final = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_CANONICAL_LAST: Final = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: json.loads takes them


def _check_canonical(segment: str) -> None:
    """Base64url without padding, whose unused trailing bits are zero; else ValueError.

    So one value has one spelling. A segment 2 (or 3) characters past a multiple of
    4 ends in a character with 4 (or 2) unused low bits: `AQgw` (or every fourth one).
    """
    rest = len(segment) % 4
    if rest == 1 or (rest and segment[-1] not in _CANONICAL_LAST[rest]):
        raise ValueError("not canonical base64url")


def _decode_segment(segment: str) -> bytes:
    """Strict base64url without padding (`binascii.Error` is a ValueError)."""
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not base64url")
    _check_canonical(segment)
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


_JSON: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _json_object(segment: str) -> dict[str, Any]:
    value = _JSON.decode(_decode_segment(segment).decode("utf-8"))
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _split(token: object) -> tuple[str, str, str]:
    """The header, payload and signature segments of a compact JWS, each canonical.

    google-auth decodes leniently (stray characters are dropped, unused bits
    ignored): here one token has one text.
    """
    if not isinstance(token, str):
        raise TypeError("not a str")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise ValueError("too long")
    form = _COMPACT_JWS.fullmatch(token)
    if form is None:
        segments = token.count(".") + 1
        if segments != _JWS_SEGMENTS:
            raise ValueError(f"{segments} segments, not {_JWS_SEGMENTS}")
        raise ValueError("not base64url")
    header, payload, signature = form.groups()
    for segment in (header, payload, signature):
        _check_canonical(segment)
    return header, payload, signature


def _now() -> float:
    """Seconds since the epoch: the system clock, which google-auth reads too."""
    return time.time()


def _verify(
    token: str,
    *,
    payload_segment: str,
    pem: str,
    leeway: float,
    refuse: Callable[[str], InvalidIdToken],
) -> dict[str, Any]:
    """The claims, once google-auth has verified the signature, `iat` and `exp`.

    The one boundary with google-auth: whatever it raises becomes an `InvalidIdToken`.
    """
    try:
        # google-auth's jwt module has no annotations: it returns the payload, a dict.
        claims: dict[str, Any] = google_jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=pem, audience=None, clock_skew_in_seconds=leeway
        )
    except (
        google_exceptions.GoogleAuthError,  # MalformedError and InvalidValue among them
        ValueError,
        TypeError,  # `"tomorrow" + 60` in its time check
        OverflowError,
        RecursionError,  # json.loads of a deeply nested payload
    ) as exc:
        raise _refusal(exc, payload_segment, leeway=leeway, refuse=refuse) from exc
    return claims


def _refusal(
    exc: BaseException,
    payload_segment: str,
    *,
    leeway: float,
    refuse: Callable[[str], InvalidIdToken],
) -> InvalidIdToken:
    """What google-auth refused, named after the check that fails (the refusals only).

    google-auth's errors do not say which check failed, so the payload is decoded
    here, strictly, and checked in google-auth's order: a payload google-auth could
    not parse, `iat` or `exp` missing or not numbers (so its arithmetic failed), then
    its own verdict.
    """
    try:
        claims = _json_object(payload_segment)
    except (ValueError, TypeError, RecursionError) as problem:
        return refuse(f"malformed token: payload: {problem}")
    try:
        _check_time_claims(claims, refuse=refuse)
        if isinstance(exc, google_exceptions.InvalidValue):
            # Raised once the signature holds, for `iat` or `exp` outside the window;
            # our check names which (it reads the clock a moment later, so may not).
            _check_window(claims, refuse=refuse, leeway=leeway, now=_now())
            return refuse(f"exp or iat: {exc}")
    except InvalidIdToken as refusal:
        return refusal
    if isinstance(exc, google_exceptions.MalformedError):
        # Header, payload, `iat` and `exp` are well formed: what is left is google-auth's
        # "Could not verify token signature."
        return refuse("signature: does not verify with the provider's key")
    return refuse(f"malformed token: google-auth: {exc!r}")


def _is_time(value: object) -> TypeGuard[float]:
    """A JSON number of seconds since the epoch, from 1970 to the end of year 9999.

    The range is compared before any arithmetic: `math.isfinite(10**400)` and
    `10**400 + 60.0` raise OverflowError, and comparisons of ints with floats never do.
    """
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value <= _LATEST_TIME  # False for NaN too
    )


def _issuer_accepted(issuer: IssuerCheck, claims: Mapping[str, Any]) -> bool:
    if isinstance(issuer, str):
        return bool(claims["iss"] == issuer)
    if isinstance(issuer, Collection):
        return claims["iss"] in issuer
    return bool(issuer(claims))


MAX_LEEWAY: Final = 3600
"""The most clock skew `validate_id_token` allows, in seconds: an hour is a broken clock."""


def _check_arguments(
    *, audience: object, nonce: object, leeway: object, algorithms: Collection[str]
) -> None:
    if not isinstance(audience, str) or not audience:
        raise ConfigurationError(detail="audience must be the client id, a non-empty str")
    if not isinstance(nonce, str) or not nonce:
        raise ConfigurationError(detail="nonce must be a non-empty str")
    if (
        isinstance(leeway, bool)
        or not isinstance(leeway, (int, float))
        or not 0 <= leeway <= MAX_LEEWAY
    ):
        raise ConfigurationError(
            detail=f"leeway must be a number of seconds from 0 to {MAX_LEEWAY}"
        )
    if algorithms is not DEFAULT_ALGORITHMS and (
        isinstance(algorithms, str) or not algorithms or not set(algorithms) <= SUPPORTED_ALGORITHMS
    ):
        raise ConfigurationError(
            detail=f"algorithms must be a non-empty subset of {sorted(SUPPORTED_ALGORITHMS)}"
        )


def text_claim(claims: Mapping[str, Any], name: str, *, limit: int) -> str | None:
    """A claim's value when it is a str of at most `limit` characters UTF-8 can encode.

    Anything else (absent, another type, too long, a lone surrogate) is None: the
    caller treats it as missing, never converts it.

    Args:
        claims: Validated claims (from `validate_id_token`).
        name: The claim.
        limit: The most characters the value may have.

    Returns:
        The value, or None.

    Examples:
        >>> text_claim({"hd": "example.com"}, "hd", limit=253)
        'example.com'
        >>> text_claim({"hd": ["example.com"]}, "hd", limit=253) is None
        True
    """
    value = claims.get(name)
    if not isinstance(value, str) or text_problem(value, limit=limit) is not None:
        return None
    return value


def check_form(token: object, *, provider: str) -> None:
    """Refuse a token that is not a compact JWS with a JSON object header and payload.

    No signature or claim is checked: this is for a token that must pass through a
    library which decodes it, unverified, before `validate_id_token` runs (msal
    reads the payload for its own nonce check).

    Args:
        token: What the token endpoint returned as `id_token`.
        provider: The provider's name, for errors.

    Raises:
        InvalidIdToken: It is not such a token (`detail` starts "malformed token").

    Examples:
        >>> check_form("e30.e30.", provider="microsoft") is None
        True
    """
    try:
        header, payload, _ = _split(token)
        _json_object(header)
        _json_object(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidIdToken(provider=provider, detail=f"malformed token: {exc}") from exc


def validate_id_token(
    token: str,
    *,
    keys: JWKSCache,
    provider: str,
    issuer: IssuerCheck,
    audience: str,
    nonce: str,
    leeway: float = 60.0,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
) -> dict[str, Any]:
    """Validate an ID token completely and return its claims.

    Args:
        token: The ID token, as the token endpoint returned it.
        keys: The provider's signing keys.
        provider: The provider's name, for errors.
        issuer: The accepted `iss`: a string, a set of strings (Google has two
            spellings), or a callable given the verified claims that returns
            whether to accept them (Microsoft: the issuer of the token's own `tid`).
            The callable runs only once `iss` is known to be a string, and must not
            raise.
        audience: The client id: must be in `aud`, and equal `azp` when present.
        nonce: The nonce sent with the authorization request.
        leeway: Seconds of clock skew allowed on `exp`, `iat` and `nbf` (google-auth's
            `clock_skew_in_seconds`).
        algorithms: The JWS algorithms to accept (a subset of `DEFAULT_ALGORITHMS`).

    Returns:
        The claims, a fresh dict.

    Raises:
        InvalidIdToken: A check failed; `detail` names it ("iss: ...", "aud: ...",
            "signature: ...", "unknown key id", ...).
        ProviderUnavailable: The provider's keys could not be fetched.
        ConfigurationError: An empty audience or nonce, a negative leeway, or an
            algorithm other than RS256 and ES256.
    """
    _check_arguments(audience=audience, nonce=nonce, leeway=leeway, algorithms=algorithms)

    def refuse(detail: str) -> InvalidIdToken:
        return InvalidIdToken(provider=provider, detail=detail)

    try:
        header_segment, payload_segment, _ = _split(token)
        header = _json_object(header_segment)
    except (ValueError, TypeError, RecursionError) as exc:
        raise refuse(f"malformed token: {exc}") from exc

    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or algorithm not in algorithms:
        shown = algorithm[:20] if isinstance(algorithm, str) else "?"
        raise refuse(f"alg: {shown!r} is not allowed")
    if "crit" in header:
        raise refuse("crit: no critical header extension is supported")
    if kid is not None and not isinstance(kid, str):
        raise refuse("malformed token: kid is not a string")

    key = keys.key_for(kid, algorithm)
    claims = _verify(
        token, payload_segment=payload_segment, pem=key.pem, leeway=float(leeway), refuse=refuse
    )
    _check_time_claims(claims, refuse=refuse)
    _check_claims(
        claims,
        refuse=refuse,
        issuer=issuer,
        audience=audience,
        nonce=nonce,
        leeway=float(leeway),
        now=_now(),
    )
    return claims


def _check_claims(
    claims: Mapping[str, Any],
    *,
    refuse: Callable[[str], InvalidIdToken],
    issuer: IssuerCheck,
    audience: str,
    nonce: str,
    leeway: float,
    now: float,
) -> None:
    if not isinstance(claims.get("iss"), str):
        raise refuse("iss: missing")
    if not _issuer_accepted(issuer, claims):
        raise refuse(f"iss: {claims['iss'][:200]!r} is not an accepted issuer")
    _check_audience(claims, refuse=refuse, audience=audience)
    _check_window(claims, refuse=refuse, leeway=leeway, now=now)
    got = claims.get("nonce")
    if not isinstance(got, str):
        raise refuse("nonce: missing")
    if not hmac.compare_digest(got.encode("utf-8", "surrogatepass"), nonce.encode()):
        raise refuse("nonce: does not match the one sent")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise refuse("sub: missing or empty")
    problem = text_problem(subject, limit=_MAX_SUBJECT_LENGTH)
    if problem is not None:
        raise refuse(f"sub: {problem}")


def _check_audience(
    claims: Mapping[str, Any], *, refuse: Callable[[str], InvalidIdToken], audience: str
) -> None:
    aud = claims.get("aud")
    if isinstance(aud, str):
        audiences = {aud}
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        audiences = set(aud)
    else:
        raise refuse("aud: missing or malformed")
    if audience not in audiences:
        raise refuse("aud: does not contain the client id")
    azp = claims.get("azp")
    if azp is None and len(audiences) > 1:
        raise refuse("azp: missing although aud has several values")
    if azp is not None and azp != audience:
        raise refuse("azp: is not the client id")


def _check_time_claims(
    claims: Mapping[str, Any], *, refuse: Callable[[str], InvalidIdToken]
) -> None:
    """`exp` and `iat` are present and times; `nbf` too when present."""
    if not _is_time(claims.get("exp")):
        raise refuse("exp: missing or not a time (seconds from 1970 to 9999)")
    if not _is_time(claims.get("iat")):
        raise refuse("iat: missing or not a time (seconds from 1970 to 9999)")
    not_before = claims.get("nbf")
    if not_before is not None and not _is_time(not_before):
        raise refuse("nbf: not a time (seconds from 1970 to 9999)")


def _check_window(
    claims: Mapping[str, Any], *, refuse: Callable[[str], InvalidIdToken], leeway: float, now: float
) -> None:
    """The token is valid at `now`, give or take `leeway`; its times are checked ones."""
    if now >= claims["exp"] + leeway:
        raise refuse("exp: the token has expired")
    if claims["iat"] > now + leeway:
        raise refuse("iat: issued in the future")
    not_before = claims.get("nbf")
    if not_before is not None and not_before > now + leeway:
        raise refuse("nbf: the token is not valid yet")
