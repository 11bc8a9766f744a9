"""A provider's signing keys (its JWKS), fetched lazily and cached.

`JWKSCache.key_for(kid, alg)` answers from memory. It goes to the network only:

- on first use;
- when the key set has expired (`Cache-Control: max-age` of the last answer,
  clamped to [`min_refetch_interval`, one day], or `default_max_age` without one);
- when a token names a key id the cached set lacks (providers publish new keys ahead
  of use, but a cache may predate them). That refetch happens at most once per call,
  and at most once per `min_refetch_interval` overall, so a flood of tokens with
  made-up key ids cannot make us hammer the provider.

One fetch is in flight at a time: other threads needing the network wait for it and
reuse its result (keys or failure) instead of fetching again.

Keeping stale keys: when a refetch fails (network error, non-200, garbage), the last
good key set stays usable for `stale_if_error` seconds past its expiry, with no new
attempt before `min_refetch_interval` has passed, so a provider's brief outage does
not stop sign-ins whose tokens it signed earlier. Past that, or with no good set at
all, the failure surfaces as `ProviderUnavailable`. An unknown key id whose refetch
failed is also `ProviderUnavailable` (we could not look), not `InvalidIdToken`.

Only the signing keys Google and Microsoft use are kept: RSA (2048 bits or more, for
RS256) and EC on P-256 (for ES256). A key's public part comes from its `n`/`e` or
`x`/`y` members, or from the first certificate of its `x5c` chain (Entra publishes
both, and then they must agree); a key whose `use` is not `sig` is skipped, and so is
any malformed one or any other type. Private members a broken provider might publish
are ignored. Each key is converted once, when its set is parsed, into the PEM form
google-auth verifies with (`SigningKey.pem`): a token pays for no JWK decoding, only
for google-auth loading that PEM (about 4 us for RSA-2048, against 7 us for a
certificate, which is why an `x5c` key is handed over as its bare public key).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bpart_auth.errors import ConfigurationError, InvalidIdToken, ProviderUnavailable
from bpart_auth.oidc.transport import exchange

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["SUPPORTED_ALGORITHMS", "JWKSCache", "PublicKey", "SigningKey"]

PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
"""A verification key from a provider's JWKS."""

SUPPORTED_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
"""Every JWS algorithm a key from the cache can verify: the two Google and Entra use."""

_P256_COORDINATE_BYTES: Final = 32
_MIN_RSA_BITS: Final = 2048  # NIST SP 800-131A
_MAX_AGE_CAP: Final = 86_400.0  # a key set is re-read at least daily, whatever it says
_MAX_RESPONSE_BYTES: Final = 1 << 20
_MAX_KEYS: Final = 100
_MAX_AGE: Final = re.compile(r"""(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?""", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*no-(?:cache|store)\b", re.IGNORECASE)
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def _base64url(value: object) -> bytes:
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One verification key of a provider, ready for google-auth.

    Attributes:
        kid: The JWK's key id, or None.
        algorithm: The JWK's own `alg`, which then must match the token's, or None.
        public_key: The key, as `cryptography` holds it.
        pem: The same key as a PEM SubjectPublicKeyInfo, what
            `google.auth.jwt.decode(certs=...)` takes.
    """

    kid: str | None
    algorithm: str | None
    public_key: PublicKey
    pem: str

    def fits(self, algorithm: str) -> bool:
        """Whether this key can verify a token signed with `algorithm`."""
        if self.algorithm is not None and self.algorithm != algorithm:
            return False
        if algorithm == "RS256":
            return isinstance(self.public_key, rsa.RSAPublicKey)
        return algorithm == "ES256" and isinstance(self.public_key, ec.EllipticCurvePublicKey)


def _from_members(jwk: Mapping[str, Any]) -> PublicKey:
    """The key its `n`/`e` (RSA) or `x`/`y` (EC P-256) members spell."""
    kty = jwk.get("kty")
    if kty == "RSA":
        modulus = int.from_bytes(_base64url(jwk.get("n")), "big")
        exponent = int.from_bytes(_base64url(jwk.get("e")), "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if kty == "EC" and jwk.get("crv") == "P-256":
        x, y = _base64url(jwk.get("x")), _base64url(jwk.get("y"))
        if len(x) != _P256_COORDINATE_BYTES or len(y) != _P256_COORDINATE_BYTES:
            raise ValueError("EC coordinates of the wrong size")
        # from_encoded_point refuses a point that is not on the curve.
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    raise ValueError("not an RS256 or ES256 signing key")


def _from_certificate(chain: object) -> PublicKey:
    """The key of the first certificate of an `x5c` chain (RFC 7517 4.7: base64 DER).

    The certificate only carries the key: nothing about it is trusted beyond what the
    JWKS, fetched over TLS from the provider, already says.
    """
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise ValueError("x5c is not a list of certificates")
    der = base64.b64decode(chain[0], validate=True)
    key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise TypeError("x5c certificate holds another type of key")
    return key


def _public_key(jwk: Mapping[str, Any]) -> PublicKey:
    """The public key of one JWK; ValueError (or TypeError) when it is not usable."""
    if "x5c" in jwk:
        key = _from_certificate(jwk["x5c"])
        members = "n" in jwk or "x" in jwk
        if members and _from_members(jwk).public_numbers() != key.public_numbers():
            raise ValueError("x5c certificate and key members disagree")
    else:
        key = _from_members(jwk)
    if isinstance(key, rsa.RSAPublicKey):
        if jwk.get("kty") != "RSA" or key.key_size < _MIN_RSA_BITS:
            raise ValueError("RSA key of another type or too short")
    elif jwk.get("kty") != "EC" or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("EC key of another type or curve")
    return key


def _signing_key(jwk: Mapping[str, Any], kid: str | None, algorithm: str | None) -> SigningKey:
    key = _public_key(jwk)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return SigningKey(kid, algorithm, key, pem)


def _parse_keys(document: object) -> dict[str | None, tuple[SigningKey, ...]]:
    """The usable signing keys of a JWKS document, by key id."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TypeError("not a JWK set")
    by_kid: dict[str | None, list[SigningKey]] = {}
    for jwk in document["keys"][:_MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid, algorithm = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, (str, type(None))) or not isinstance(algorithm, (str, type(None))):
            continue
        try:
            key = _signing_key(jwk, kid, algorithm)
        except (ValueError, TypeError, KeyError, OverflowError):
            continue  # one bad key does not spoil the others (binascii.Error: a ValueError)
        by_kid.setdefault(kid, []).append(key)
    if not by_kid:
        raise ValueError("no usable signing key")
    return {kid: tuple(keys) for kid, keys in by_kid.items()}


@dataclass(frozen=True, slots=True)
class _KeySet:
    by_kid: Mapping[str | None, tuple[SigningKey, ...]]
    fresh_until: float  # clock time: serve without asking before this
    usable_until: float  # clock time: may still serve when a refetch fails

    def find(self, kid: str | None, algorithm: str) -> SigningKey | None:
        if kid is not None:
            for candidate in self.by_kid.get(kid, ()):
                if candidate.fits(algorithm):
                    return candidate
            return None
        # OpenID Connect Core 10.1: a token may omit `kid` only when one key fits.
        fitting = [k for keys in self.by_kid.values() for k in keys if k.fits(algorithm)]
        return fitting[0] if len(fitting) == 1 else None


def _check_seconds(name: str, value: object, *, least: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(detail=f"{name} must be a number of seconds")
    if not least <= value < float("inf"):
        raise ConfigurationError(detail=f"{name} must be >= {least} and finite")


def _check_uri(jwks_uri: object) -> str:
    if not isinstance(jwks_uri, str):
        raise ConfigurationError(detail="jwks_uri must be a str")
    parts = urlsplit(jwks_uri)
    if parts.scheme == "https" and parts.hostname:
        return jwks_uri
    if parts.scheme == "http" and parts.hostname:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname in _LOOPBACK_NAMES
        if loopback:  # a local test provider
            return jwks_uri
    raise ConfigurationError(detail=f"jwks_uri must be an https URL, got {jwks_uri!r}")


class JWKSCache:
    """The signing keys of one provider, from its `jwks_uri`, cached in memory.

    Thread-safe. Nothing is fetched at construction.

    Args:
        jwks_uri: The provider's JWKS URL (https; http only on loopback, for tests).
        provider: The provider's name, for errors (`"google"`, `"microsoft"`).
        session: The `requests.Session` to fetch with; a new one by default.
        timeout: Seconds allowed to connect, and between bytes received, per request.
        min_refetch_interval: Least seconds between two network attempts, except
            when no usable key set is held at all.
        default_max_age: Seconds a key set is fresh when the answer has no
            `Cache-Control: max-age`.
        stale_if_error: Seconds past its expiry a key set stays usable while
            refetching it fails.
        clock: Monotonic seconds (`time.monotonic`); tests pass one they move.

    Attributes:
        fetch_count: Network requests made so far (for tests and benchmarks).

    Raises:
        ConfigurationError: A bad URL, name or interval.

    Examples:
        >>> keys = JWKSCache("https://www.googleapis.com/oauth2/v3/certs", provider="google")
        >>> keys.fetch_count
        0
    """

    def __init__(
        self,
        jwks_uri: str,
        *,
        provider: str,
        session: requests.Session | None = None,
        timeout: float = 5.0,
        min_refetch_interval: float = 60.0,
        default_max_age: float = 3600.0,
        stale_if_error: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = _check_uri(jwks_uri)
        if not isinstance(provider, str):
            raise ConfigurationError(detail="provider must be a non-empty str")
        if not provider:
            raise ConfigurationError(detail="provider must be a non-empty str")
        _check_seconds("timeout", timeout, least=1e-3)
        _check_seconds("min_refetch_interval", min_refetch_interval)
        _check_seconds("default_max_age", default_max_age)
        _check_seconds("stale_if_error", stale_if_error)
        if session is None:
            session = requests.Session()
        elif not isinstance(session, requests.Session):
            raise ConfigurationError(detail="session must be a requests.Session")
        if not callable(clock):
            raise ConfigurationError(detail="clock must be a callable returning seconds")
        self.provider = provider
        self.fetch_count = 0
        self._session = session
        self._timeout = float(timeout)
        self._min_refetch_interval = float(min_refetch_interval)
        self._default_max_age = float(default_max_age)
        self._stale_if_error = float(stale_if_error)
        self._clock = clock
        self._lock = threading.Lock()  # held by the one fetch in flight
        self._keys: _KeySet | None = None
        self._attempts = 0  # network attempts finished; waiters compare it
        self._last_attempt_at = -float("inf")
        self._last_error: ProviderUnavailable | None = None

    def key_for(self, kid: str | None, alg: str) -> SigningKey:
        """The key that verifies a token with header `kid` and `alg`.

        Args:
            kid: The token header's key id, or None when it has none (accepted only
                if exactly one key fits `alg`).
            alg: The token header's algorithm, one of `SUPPORTED_ALGORITHMS`.

        Returns:
            The key, of the type `alg` needs, with its PEM form for google-auth.

        Raises:
            InvalidIdToken: No key fits, even after the refetch this call may make
                (`detail` is "unknown key id"), or `alg` is not supported.
            ProviderUnavailable: The keys could not be fetched and no usable ones
                are held.
        """
        if alg not in SUPPORTED_ALGORITHMS:
            raise InvalidIdToken(provider=self.provider, detail=f"unsupported algorithm {alg!r}")
        attempts_seen = self._attempts  # before reading the keys: see _slow_key_for
        keys = self._keys
        if keys is not None and self._clock() < keys.fresh_until:
            key = keys.find(kid, alg)
            if key is not None:
                return key
        return self._slow_key_for(kid, alg, attempts_seen)

    def _slow_key_for(self, kid: str | None, alg: str, attempts_seen: int) -> SigningKey:
        with self._lock:
            now = self._clock()
            keys = self._keys
            if keys is not None and now < keys.fresh_until:
                key = keys.find(kid, alg)
                if key is not None:
                    return key  # another thread refreshed the set while we waited
            usable = keys is not None and now < keys.usable_until
            failed: ProviderUnavailable | None = None  # the attempt this call relies on
            if self._attempts != attempts_seen:
                # A fetch finished while we waited for the lock: reuse its outcome.
                failed = self._last_error
            elif not usable or now - self._last_attempt_at >= self._min_refetch_interval:
                failed = self._fetch(now)
            keys, now = self._keys, self._clock()
            if keys is not None and now < keys.usable_until:
                key = keys.find(kid, alg)
                if key is not None:
                    return key
                if now >= keys.fresh_until:
                    # A key set we could not refresh says nothing about a new kid.
                    failed = failed or self._last_error
                if failed is None:
                    raise InvalidIdToken(provider=self.provider, detail="unknown key id")
            failed = failed or self._last_error
            if failed is None:  # not reached: no usable keys means an attempt failed
                raise self._unavailable("no usable signing keys")
            # Each caller raises its own exception (threads share the stored one).
            raise self._unavailable_again(failed) from failed

    def _fetch(self, now: float) -> ProviderUnavailable | None:
        """One network attempt; on success replace the key set. Caller holds the lock."""
        self.fetch_count += 1
        error: ProviderUnavailable | None = None
        try:
            self._keys = self._download(now)
        except ProviderUnavailable as exc:
            error = exc
        self._last_attempt_at = now
        self._last_error = error
        self._attempts += 1
        return error

    def _download(self, now: float) -> _KeySet:
        # Bounded: a streamed read of at most _MAX_RESPONSE_BYTES, no redirects.
        answer = exchange(
            self._session,
            "GET",
            self.jwks_uri,
            provider=self.provider,
            what="JWKS",
            timeout=self._timeout,
            limit=_MAX_RESPONSE_BYTES,
            headers={"Accept": "application/json"},
        )
        if answer.status != HTTPStatus.OK:
            raise self._unavailable(f"HTTP {answer.status}")
        try:
            by_kid = _parse_keys(json.loads(answer.body))
        except (ValueError, TypeError, RecursionError) as exc:
            raise self._unavailable(f"not a usable JWK set: {exc}") from exc
        max_age = self._max_age(answer.headers)
        return _KeySet(
            by_kid=by_kid,
            fresh_until=now + max_age,
            usable_until=now + max_age + self._stale_if_error,
        )

    def _unavailable_again(self, failure: ProviderUnavailable) -> ProviderUnavailable:
        return ProviderUnavailable(provider=self.provider, detail=failure.detail)

    def _unavailable(self, why: str) -> ProviderUnavailable:
        return ProviderUnavailable(provider=self.provider, detail=f"JWKS {self.jwks_uri}: {why}")

    def _max_age(self, headers: Mapping[str, str]) -> float:
        control = headers.get("Cache-Control", "")
        if _NO_CACHE.search(control):
            seconds = 0.0
        elif match := _MAX_AGE.search(control):
            seconds = float(match.group(1)) - _age(headers)
            seconds = min(seconds, _MAX_AGE_CAP)
        else:
            seconds = self._default_max_age
        return max(seconds, self._min_refetch_interval)


def _age(headers: Mapping[str, str]) -> float:
    """Seconds the answer already spent in caches on its way (RFC 9111 `Age`)."""
    try:
        return max(0.0, float(int(headers.get("Age", "0"))))
    except ValueError:
        return 0.0
