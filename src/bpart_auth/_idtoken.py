"""ID-token validation shared by every provider (OpenID Connect Core 1.0, 3.1.3.7).

`validate_id_token` checks, in this order, and stops at the first failure with
`InvalidIdToken(detail="<check>: ...")`:

1. the token is a compact JWS: three canonical base64url segments, a JSON object
   header and a JSON object payload (strictly: no `NaN`, no padding, no stray bytes);
2. `alg` is in the allowed list, RS256 or ES256 (the algorithms Google and Entra sign
   with: never `none`, never `HS*`, so a public key can never serve as an HMAC
   secret); a `crit` header is refused (we understand no extension);
3. the key: the one the provider's JWKS holds for the header's `kid` (`JWKSCache`;
   keys embedded in the token, `jku`, `x5u`, are ignored);
4. `exp` and `iat` are present and numbers of seconds between 1970 and the end of
   year 9999 (OpenID Connect Core requires both), so that the next step, which does
   arithmetic on them, only ever sees such numbers; so is `nbf` when present;
5. the signature, `iat` and `exp`, by `google.auth.jwt.decode` with that key and
   `leeway` as its clock skew (against the system clock);
6. claims: `iss`, `aud` (the client id, alone or in a list), `azp` (required and
   equal to the client id when `aud` lists several; equal to it whenever present),
   `exp` again (RFC 7519 4.1.4: the token is refused from `exp + leeway` on,
   where google-auth still accepts that very second), `iat` (not in the future),
   `nbf` (when present), `nonce` (required, constant-time compare) and `sub` (a
   non-empty string of at most 255 characters, OpenID Connect Core 2).

Steps 1 to 4 run on the unverified token: they only decide how it is refused, never
whether one is accepted. Step 4 before the signature means a forged token with a
malformed `exp` is refused for its `exp`; google-auth would otherwise meet `"tomorrow"
+ 60` (a TypeError) or accept `exp: NaN`.

The claims a provider then converts (`email`, `name`, `hd`, `tid`, `oid`...) are
read through `text_claim`, which hands back only a bounded str that UTF-8 can
encode (JSON escapes can spell lone surrogates), and None for anything else.

Why google-auth, and not PyJWT or our own: it is the library the design names for
ID tokens, and over keys converted once per key set (`SigningKey.pem`) it costs
about twice the raw RSA verification; PyJWT 2.15's decode cost several times that
(it checks each base64 character in Python). Its `audience` check is not used: it
refuses an `aud` list that contains the client id, which OpenID Connect allows.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard

from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from bpart_auth._input import text_problem
from bpart_auth._jwks import SUPPORTED_ALGORITHMS
from bpart_auth.errors import ConfigurationError, InvalidIdToken

if TYPE_CHECKING:
    from bpart_auth._jwks import JWKSCache

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

_DEFAULT_ALLOWED: Final = frozenset(DEFAULT_ALGORITHMS)
_JWS_SEGMENTS: Final = 3
_MAX_TOKEN_LENGTH: Final = 64 * 1024  # Entra tokens with many groups still fit easily
_MAX_SUBJECT_LENGTH: Final = 255  # OpenID Connect Core 1.0, section 2 (`sub`)
_LATEST_TIME: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, as seconds since the epoch
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: json.loads takes them


def _decode_segment(segment: str) -> bytes:
    """Strict base64url without padding; ValueError otherwise (no two texts, one value).

    `binascii.Error` is a ValueError, so callers catch one type.
    """
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment.encode("ascii"):
        raise ValueError("not canonical base64url")
    return decoded


_JSON: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _json_object(segment: str) -> dict[str, Any]:
    value = _JSON.decode(_decode_segment(segment).decode("utf-8"))
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _split(token: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, strictly decoded (nothing verified)."""
    if not isinstance(token, str):
        raise TypeError("not a str")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise ValueError("too long")
    segments = token.split(".")
    if len(segments) != _JWS_SEGMENTS:
        raise ValueError(f"{len(segments)} segments, not {_JWS_SEGMENTS}")
    header_segment, payload_segment, signature_segment = segments
    header = _json_object(header_segment)
    try:
        payload = _json_object(payload_segment)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"payload: {exc}") from exc
    # google-auth decodes the signature leniently (stray characters are dropped): one
    # token has one spelling here.
    _decode_segment(signature_segment)
    return header, payload


def _now() -> float:
    """Seconds since the epoch: the system clock, which google-auth reads too."""
    return time.time()


def _verify(
    token: str,
    *,
    pem: str,
    leeway: float,
    claims: Mapping[str, Any],
    refuse: Callable[[str], InvalidIdToken],
) -> None:
    """The signature, `iat` and `exp`, by google-auth (the one boundary with it)."""
    try:
        # google-auth's jwt module has no annotations; it returns the payload we hold.
        google_jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=pem, audience=None, clock_skew_in_seconds=leeway
        )
    except google_exceptions.InvalidValue as exc:
        # Raised once the signature holds, for `iat` or `exp` outside the window; our
        # own check names which (and reads the clock a moment later, so may not).
        _check_window(claims, refuse=refuse, leeway=leeway, now=_now())
        raise refuse(f"exp or iat: {exc}") from exc
    except google_exceptions.MalformedError as exc:
        # The header, payload, `iat` and `exp` were checked above: what is left is
        # google-auth's "Could not verify token signature."
        raise refuse("signature: does not verify with the provider's key") from exc
    except (google_exceptions.GoogleAuthError, ValueError, TypeError, OverflowError) as exc:
        raise refuse(f"malformed token: google-auth: {exc}") from exc


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
        or not 0 <= leeway < math.inf
    ):
        raise ConfigurationError(detail="leeway must be a number of seconds >= 0")
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
        _split(token)
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
        header, claims = _split(token)
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
    _check_time_claims(claims, refuse=refuse)
    _verify(token, pem=key.pem, leeway=float(leeway), claims=claims, refuse=refuse)
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
