"""Provider keys (JWKSCache) and ID-token validation: every check, and every refusal.

Tokens are minted with PyJWT, an implementation independent of ours; the provider's
JWKS endpoint is served by `responses`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timezone

import google.auth._helpers
import jwt
import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from bpart_auth import ConfigurationError, InvalidIdToken, ProviderUnavailable
from bpart_auth.oidc import idtoken as _idtoken
from bpart_auth.oidc.idtoken import check_form, text_claim, validate_id_token
from bpart_auth.oidc.jwks import JWKSCache

JWKS_URI = "https://idp.example/jwks"
CLIENT_ID = "client-123"
ISSUER = "https://accounts.google.com"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_772_366_400  # 2026-03-01T12:00:00Z

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_P384_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def jwk(key, kid, **members):
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = json.loads(RSAAlgorithm.to_jwk(public))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = json.loads(ECAlgorithm.to_jwk(public))
    else:
        data = json.loads(OKPAlgorithm.to_jwk(public))
    return data | {"kid": kid, "use": "sig"} | members


def jwks(*keys):
    return {"keys": list(keys)}


def x5c(key):
    """The `x5c` member of a JWK: a one-certificate chain (base64 DER, not base64url)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2026, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=timezone.utc))
        .sign(key, hashes.SHA256())
    )
    return [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()]


# The Ed25519 and P-384 keys are skipped (only RS256 and ES256 are supported).
STANDARD_JWKS = jwks(
    jwk(RSA_KEY, "rsa1"),
    jwk(EC_KEY, "ec1"),
    jwk(ED_KEY, "ed1"),
    jwk(EC_P384_KEY, "ec384"),
)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides):
    values = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "10769150350006150715113082367",
        "exp": NOW + 3600,
        "iat": NOW - 10,
        "nonce": NONCE,
        "email": "ann@example.com",
    }
    values |= overrides
    return {name: value for name, value in values.items() if value is not ...}


def mint(payload=None, *, key=RSA_KEY, algorithm="RS256", kid="rsa1", headers=None):
    header = {"kid": kid} if kid is not None else {}
    return jwt.encode(
        claims() if payload is None else payload,
        key,
        algorithm=algorithm,
        headers=header | (headers or {}),
    )


@pytest.fixture(autouse=True)
def frozen_at_now(monkeypatch):
    """The system clock stops at NOW, for our checks and google-auth's alike."""
    monkeypatch.setattr(_idtoken, "_now", lambda: float(NOW))
    stopped = datetime.fromtimestamp(NOW, timezone.utc).replace(tzinfo=None)
    monkeypatch.setattr(google.auth._helpers, "utcnow", lambda: stopped)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve(http, document=STANDARD_JWKS, **options):
    http.upsert(responses.GET, JWKS_URI, json=document, **options)


@pytest.fixture
def cache(http, clock):
    serve(http)
    return JWKSCache(JWKS_URI, provider="google", clock=clock)


def validate(token, keys, **overrides):
    arguments = {
        "keys": keys,
        "provider": "google",
        "issuer": ISSUER,
        "audience": CLIENT_ID,
        "nonce": NONCE,
    }
    return validate_id_token(token, **(arguments | overrides))


# JWKSCache: fetching, caching, refetching


def test_nothing_is_fetched_at_construction(http):
    keys = JWKSCache(JWKS_URI, provider="google")
    assert keys.fetch_count == 0
    assert len(http.calls) == 0


def test_keys_are_fetched_once_then_served_from_memory(cache, http):
    first = cache.key_for("rsa1", "RS256")
    assert isinstance(first.public_key, rsa.RSAPublicKey)
    assert first.public_key.public_numbers() == RSA_KEY.public_key().public_numbers()
    for _ in range(10):
        assert cache.key_for("rsa1", "RS256") is first
        assert isinstance(cache.key_for("ec1", "ES256").public_key, ec.EllipticCurvePublicKey)
    assert cache.fetch_count == 1
    assert len(http.calls) == 1


def test_every_request_has_a_timeout(http, clock):
    serve(http)
    JWKSCache(JWKS_URI, provider="google", timeout=2.5, clock=clock).key_for("rsa1", "RS256")
    assert http.calls[0].request.req_kwargs["timeout"] == 2.5


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        pytest.param("public, max-age=120, must-revalidate", 120, id="max-age"),
        pytest.param('MAX-AGE="300"', 300, id="quoted-upper-case"),
        pytest.param(None, 3600, id="default-max-age"),
        pytest.param("no-cache", 60, id="no-cache-floors-at-min-interval"),
        pytest.param("max-age=0", 60, id="zero-floors-at-min-interval"),
        pytest.param("max-age=31536000", 86400, id="a-year-capped-at-a-day"),
    ],
)
def test_cache_control_max_age_decides_freshness(http, clock, cache_control, fresh_for):
    headers = {"Cache-Control": cache_control} if cache_control else {}
    serve(http, headers=headers)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    keys.key_for("rsa1", "RS256")
    clock.advance(fresh_for - 1)
    keys.key_for("rsa1", "RS256")
    assert keys.fetch_count == 1
    clock.advance(1)
    keys.key_for("rsa1", "RS256")
    assert keys.fetch_count == 2


def test_age_header_shortens_freshness(http, clock):
    serve(http, headers={"Cache-Control": "max-age=600", "Age": "500"})
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    keys.key_for("rsa1", "RS256")
    clock.advance(100)
    keys.key_for("rsa1", "RS256")
    assert keys.fetch_count == 2


def test_an_unknown_kid_refetches_once_and_finds_a_rotated_key(cache, http, clock):
    cache.key_for("rsa1", "RS256")
    serve(http, jwks(jwk(RSA_KEY, "rsa1"), jwk(OTHER_RSA_KEY, "rsa2")))
    clock.advance(60)
    rotated = cache.key_for("rsa2", "RS256").public_key
    assert rotated.public_numbers() == OTHER_RSA_KEY.public_key().public_numbers()
    assert cache.fetch_count == 2


def test_an_unknown_kid_refetches_at_most_once_then_is_an_invalid_token(cache, clock):
    cache.key_for("rsa1", "RS256")
    clock.advance(60)
    with pytest.raises(InvalidIdToken) as caught:
        cache.key_for("nope", "RS256")
    assert caught.value.detail == "unknown key id"
    assert caught.value.provider == "google"
    assert cache.fetch_count == 2


def test_refetches_for_unknown_kids_are_rate_limited(cache, clock):
    cache.key_for("rsa1", "RS256")
    for number in range(100):
        with pytest.raises(InvalidIdToken):
            cache.key_for(f"random-{number}", "RS256")
        clock.advance(1)  # 100 seconds in all: one refetch allowed, at 60
    assert cache.fetch_count == 2


def test_an_unknown_kid_right_after_the_first_fetch_does_not_refetch(cache):
    with pytest.raises(InvalidIdToken):
        cache.key_for("nope", "RS256")
    assert cache.fetch_count == 1


def test_twenty_concurrent_first_calls_make_one_fetch(http, clock):
    def slow_jwks(_request):
        time.sleep(0.2)
        return 200, {}, json.dumps(STANDARD_JWKS)

    http.add_callback(responses.GET, JWKS_URI, callback=slow_jwks)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    found = []
    barrier = threading.Barrier(20)

    def first_call():
        barrier.wait()
        found.append(keys.key_for("rsa1", "RS256"))

    threads = [threading.Thread(target=first_call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 20
    assert len({id(key) for key in found}) == 1
    assert keys.fetch_count == 1
    assert len(http.calls) == 1


def test_concurrent_callers_share_one_failed_fetch(http, clock):
    def slow_failure(_request):
        time.sleep(0.2)
        return 503, {}, "busy"

    http.add_callback(responses.GET, JWKS_URI, callback=slow_failure)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    errors = []
    barrier = threading.Barrier(10)

    def first_call():
        barrier.wait()
        try:
            keys.key_for("rsa1", "RS256")
        except ProviderUnavailable as error:
            errors.append(error)

    threads = [threading.Thread(target=first_call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 10
    assert keys.fetch_count == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"body": requests.exceptions.ConnectTimeout("slow")}, id="connect-timeout"),
        pytest.param({"body": requests.exceptions.ReadTimeout("slow")}, id="read-timeout"),
        pytest.param({"body": requests.exceptions.ConnectionError("refused")}, id="refused"),
        pytest.param({"status": 500, "json": STANDARD_JWKS}, id="http-500"),
        pytest.param({"status": 503, "body": "busy"}, id="http-503"),
        pytest.param({"status": 404, "body": "not here"}, id="http-404"),
        pytest.param({"body": "<html>garbage</html>"}, id="not-json"),
        pytest.param({"json": ["keys"]}, id="json-not-an-object"),
        pytest.param({"json": {"keys": "rsa1"}}, id="keys-not-a-list"),
        pytest.param({"json": {"keys": []}}, id="no-keys"),
        pytest.param(
            {"json": jwks({"kty": "oct", "k": b64(b"s" * 32), "kid": "rsa1"})}, id="only-hmac"
        ),
        pytest.param({"body": b"x" * (1 << 20 + 1)}, id="too-large"),
        pytest.param({"status": 429, "json": STANDARD_JWKS}, id="http-429"),
        pytest.param(
            {"status": 302, "headers": {"Location": "https://evil.example/jwks"}},
            id="redirect-not-followed",
        ),
    ],
)
def test_fetch_failures_are_provider_unavailable(http, clock, answer):
    http.add(responses.GET, JWKS_URI, **answer)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    with pytest.raises(ProviderUnavailable) as caught:
        keys.key_for("rsa1", "RS256")
    assert caught.value.code == "provider_unavailable"
    assert caught.value.provider == "google"
    assert JWKS_URI in caught.value.detail


def test_without_usable_keys_every_call_may_try_again(http, clock):
    http.add(responses.GET, JWKS_URI, status=503)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    with pytest.raises(ProviderUnavailable):
        keys.key_for("rsa1", "RS256")
    serve(http)
    assert isinstance(keys.key_for("rsa1", "RS256").public_key, rsa.RSAPublicKey)
    assert keys.fetch_count == 2


def test_stale_keys_serve_while_the_provider_is_down_then_expire(http, clock):
    serve(http, headers={"Cache-Control": "max-age=600"})
    keys = JWKSCache(JWKS_URI, provider="google", stale_if_error=1800, clock=clock)
    good = keys.key_for("rsa1", "RS256")
    http.upsert(responses.GET, JWKS_URI, status=503)
    clock.advance(601)
    assert keys.key_for("rsa1", "RS256") is good  # refetch failed: the stale key serves
    assert keys.fetch_count == 2
    clock.advance(30)
    assert keys.key_for("rsa1", "RS256") is good  # and no new attempt within a minute
    assert keys.fetch_count == 2
    with pytest.raises(ProviderUnavailable):  # an unknown kid could not be looked up
        keys.key_for("rsa9", "RS256")
    clock.advance(30)
    assert keys.key_for("rsa1", "RS256") is good
    assert keys.fetch_count == 3
    clock.advance(1800 - 60)
    with pytest.raises(ProviderUnavailable):
        keys.key_for("rsa1", "RS256")


# Breakable on purpose: the cache must refuse it.
SMALL_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


@pytest.mark.parametrize(
    ("entry", "kid", "alg"),
    [
        pytest.param(jwk(RSA_KEY, "x", use="enc"), "x", "RS256", id="use-enc"),
        pytest.param({"kty": "oct", "k": b64(b"k" * 32), "kid": "x"}, "x", "HS256", id="oct"),
        pytest.param(jwk(SMALL_RSA_KEY, "x"), "x", "RS256", id="rsa-1024"),
        pytest.param(jwk(EC_KEY, "x", y=b64(b"\x01" * 32)), "x", "ES256", id="ec-off-curve"),
        pytest.param(jwk(EC_KEY, "x", crv="P-999"), "x", "ES256", id="ec-unknown-curve"),
        pytest.param(jwk(RSA_KEY, "x", n="!!"), "x", "RS256", id="rsa-bad-base64"),
        pytest.param(jwk(RSA_KEY, "x", alg="RS512"), "x", "RS256", id="jwk-alg-differs"),
        pytest.param(jwk(RSA_KEY, "x"), "x", "ES256", id="rsa-key-for-es256"),
        pytest.param(jwk(EC_KEY, "x"), "x", "ES384", id="p256-key-for-es384"),
        pytest.param(jwk(EC_KEY, "x"), "x", "RS256", id="ec-key-for-rs256"),
        pytest.param(jwk(RSA_KEY, 7), 7, "RS256", id="kid-not-a-string"),
        pytest.param(jwk(EC_P384_KEY, "x"), "x", "ES256", id="p384-key-dropped"),
        pytest.param(jwk(EC_P384_KEY, "x", crv="P-256"), "x", "ES256", id="p384-as-p256"),
        pytest.param(jwk(ED_KEY, "x"), "x", "EdDSA", id="ed25519-dropped"),
        pytest.param(jwk(RSA_KEY, "x"), "x", "PS256", id="ps256-dropped"),
        pytest.param(jwk(RSA_KEY, "x", x5c=x5c(OTHER_RSA_KEY)), "x", "RS256", id="x5c-differs"),
        pytest.param(jwk(RSA_KEY, "x", x5c=x5c(EC_KEY)), "x", "RS256", id="x5c-another-type"),
        pytest.param(jwk(RSA_KEY, "x", x5c=["AAAA"]), "x", "RS256", id="x5c-not-a-certificate"),
        pytest.param(jwk(RSA_KEY, "x", x5c=["-_-_"]), "x", "RS256", id="x5c-base64url"),
        pytest.param(jwk(RSA_KEY, "x", x5c=[]), "x", "RS256", id="x5c-empty"),
        pytest.param(jwk(RSA_KEY, "x", x5c="MII"), "x", "RS256", id="x5c-not-a-list"),
        pytest.param(
            {"kty": "RSA", "kid": "x", "x5c": x5c(SMALL_RSA_KEY)}, "x", "RS256", id="x5c-rsa-1024"
        ),
        pytest.param(
            {"kty": "EC", "kid": "x", "x5c": x5c(RSA_KEY)}, "x", "ES256", id="x5c-kty-differs"
        ),
    ],
)
def test_unusable_keys_are_skipped(http, clock, entry, kid, alg):
    serve(http, jwks(entry, jwk(RSA_KEY, "good")))
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    with pytest.raises(InvalidIdToken) as caught:
        keys.key_for(kid, alg)
    assert caught.value.detail in {"unknown key id", f"unsupported algorithm {alg!r}"}
    assert isinstance(keys.key_for("good", "RS256").public_key, rsa.RSAPublicKey)


@pytest.mark.parametrize(
    ("entry", "key", "algorithm"),
    [
        pytest.param(jwk(RSA_KEY, "x", x5c=x5c(RSA_KEY)), RSA_KEY, "RS256", id="entra-n-e-x5c"),
        pytest.param(
            {"kty": "RSA", "use": "sig", "kid": "x", "x5c": x5c(RSA_KEY)},
            RSA_KEY,
            "RS256",
            id="rsa-x5c-only",
        ),
        pytest.param(
            {"kty": "EC", "kid": "x", "x5c": x5c(EC_KEY)}, EC_KEY, "ES256", id="ec-x5c-only"
        ),
    ],
)
def test_keys_from_an_x5c_certificate_verify_tokens(http, clock, entry, key, algorithm):
    serve(http, jwks(entry))
    keys = JWKSCache(JWKS_URI, provider="microsoft", clock=clock)
    found = keys.key_for("x", algorithm)
    assert found.public_key.public_numbers() == key.public_key().public_numbers()
    assert found.pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert validate(mint(key=key, algorithm=algorithm, kid="x"), keys) == claims()


def test_private_members_of_a_published_key_are_ignored(http, clock):
    private = json.loads(RSAAlgorithm.to_jwk(RSA_KEY)) | {"kid": "rsa1"}
    assert "d" in private
    serve(http, jwks(private))
    key = JWKSCache(JWKS_URI, provider="google", clock=clock).key_for("rsa1", "RS256")
    assert isinstance(key.public_key, rsa.RSAPublicKey)


def test_a_token_without_kid_uses_the_only_fitting_key(http, clock):
    serve(http, jwks(jwk(RSA_KEY, "rsa1"), jwk(EC_KEY, "ec1")))
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    assert isinstance(keys.key_for(None, "RS256").public_key, rsa.RSAPublicKey)
    serve(http, jwks(jwk(RSA_KEY, "rsa1"), jwk(OTHER_RSA_KEY, "rsa2")))
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    with pytest.raises(InvalidIdToken):
        keys.key_for(None, "RS256")


@pytest.mark.parametrize(
    ("uri", "options"),
    [
        pytest.param("http://idp.example/jwks", {}, id="plain-http"),
        pytest.param("ftp://idp.example/jwks", {}, id="ftp"),
        pytest.param("https:///jwks", {}, id="no-host"),
        pytest.param(JWKS_URI, {"provider": ""}, id="empty-provider"),
        pytest.param(JWKS_URI, {"timeout": 0}, id="zero-timeout"),
        pytest.param(JWKS_URI, {"timeout": float("nan")}, id="nan-timeout"),
        pytest.param(JWKS_URI, {"min_refetch_interval": -1}, id="negative-interval"),
        pytest.param(JWKS_URI, {"session": object()}, id="not-a-session"),
    ],
)
def test_jwks_cache_configuration_errors(uri, options):
    with pytest.raises(ConfigurationError):
        JWKSCache(uri, **({"provider": "google"} | options))


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"]
)
def test_plain_http_is_allowed_on_loopback(uri):
    assert JWKSCache(uri, provider="test").jwks_uri == uri


# validate_id_token: the refusals, one row each


def hs256_with_the_public_key_as_secret():
    # The classic key confusion: the RSA public key (public by definition) as the
    # HMAC secret, hoping the verifier feeds its "key" to whatever alg says.
    secret = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def payload_altered():
    header, _, signature = mint().split(".")
    forged = b64(json.dumps(claims(sub="someone-else")).encode())
    return f"{header}.{forged}.{signature}"


def alg_none():
    return jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa1"})


def token_with_header(header):
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims()).encode()), b64(b"sig")]
    )


REFUSALS = [
    pytest.param(lambda: mint(claims(iss="https://evil.example")), "iss", id="wrong-iss"),
    pytest.param(lambda: mint(claims(iss=...)), "iss: missing", id="missing-iss"),
    pytest.param(lambda: mint(claims(aud="someone-else")), "aud", id="wrong-aud"),
    pytest.param(lambda: mint(claims(aud=...)), "aud", id="missing-aud"),
    pytest.param(lambda: mint(claims(aud=[])), "aud", id="empty-aud-list"),
    pytest.param(
        lambda: mint(claims(aud=[CLIENT_ID, "other"])), "azp", id="several-aud-without-azp"
    ),
    pytest.param(
        lambda: mint(claims(aud=[CLIENT_ID, "other"], azp="other")),
        "azp",
        id="several-aud-with-wrong-azp",
    ),
    pytest.param(lambda: mint(claims(azp="other")), "azp", id="one-aud-with-wrong-azp"),
    pytest.param(lambda: mint(claims(exp=NOW - 61)), "exp", id="expired"),
    pytest.param(lambda: mint(claims(exp=...)), "exp", id="missing-exp"),
    pytest.param(lambda: mint(claims(exp="tomorrow")), "exp", id="exp-not-a-number"),
    pytest.param(lambda: mint(claims(exp=True)), "exp", id="exp-a-boolean"),
    pytest.param(
        lambda: mint(claims(exp=10**400)), "exp: missing or not a time", id="exp-huge-int"
    ),
    pytest.param(
        lambda: mint(claims(exp=1e308)), "exp: missing or not a time", id="exp-huge-float"
    ),
    pytest.param(lambda: mint(claims(exp=-1)), "exp: missing or not a time", id="exp-before-1970"),
    pytest.param(
        lambda: mint(claims(exp=253_402_300_800)), "exp: missing or not a time", id="exp-past-9999"
    ),
    pytest.param(
        lambda: mint(claims(iat=10**400)), "iat: missing or not a time", id="iat-huge-int"
    ),
    pytest.param(
        lambda: mint(claims(iat=-(10**400))), "iat: missing or not", id="iat-huge-negative"
    ),
    pytest.param(lambda: mint(claims(iat="0")), "iat: missing or not a time", id="iat-a-string"),
    pytest.param(lambda: mint(claims(nbf=10**400)), "nbf: not a time", id="nbf-huge-int"),
    pytest.param(lambda: mint(claims(nbf=[NOW])), "nbf: not a time", id="nbf-a-list"),
    pytest.param(lambda: mint(claims(iat=NOW + 3600)), "iat", id="iat-far-in-the-future"),
    pytest.param(lambda: mint(claims(iat=...)), "iat: missing", id="missing-iat"),
    pytest.param(lambda: mint(claims(nbf=NOW + 3600)), "nbf", id="nbf-in-the-future"),
    pytest.param(lambda: mint(claims(nonce=...)), "nonce: missing", id="missing-nonce"),
    pytest.param(lambda: mint(claims(nonce="another")), "nonce", id="wrong-nonce"),
    pytest.param(lambda: mint(claims(nonce="é")), "nonce", id="non-ascii-nonce"),
    pytest.param(payload_altered, "signature", id="bad-signature-payload-altered"),
    pytest.param(lambda: mint(key=OTHER_RSA_KEY), "signature", id="other-key-with-the-same-kid"),
    pytest.param(
        lambda: mint(key=EC_KEY, algorithm="ES256", kid="ec1")[:-4] + "AAAA",
        "signature",
        id="es256-signature-altered",
    ),
    pytest.param(alg_none, "alg", id="alg-none"),
    # Neither Google nor Entra signs with these: refused like any other algorithm.
    pytest.param(lambda: mint(algorithm="RS384"), "alg: 'RS384'", id="rs384"),
    pytest.param(lambda: mint(algorithm="RS512"), "alg: 'RS512'", id="rs512"),
    pytest.param(lambda: mint(algorithm="PS256"), "alg: 'PS256'", id="ps256"),
    pytest.param(lambda: mint(algorithm="PS512"), "alg: 'PS512'", id="ps512"),
    pytest.param(
        lambda: mint(key=EC_P384_KEY, algorithm="ES384", kid="ec384"), "alg: 'ES384'", id="es384"
    ),
    pytest.param(
        lambda: mint(key=ec.generate_private_key(ec.SECP521R1()), algorithm="ES512", kid="x"),
        "alg: 'ES512'",
        id="es512",
    ),
    pytest.param(lambda: mint(key=ED_KEY, algorithm="EdDSA", kid="ed1"), "alg", id="eddsa"),
    pytest.param(
        lambda: (
            mint(key=EC_KEY, algorithm="ES256", kid="ec1").rsplit(".", 1)[0]
            + "."
            + b64(EC_KEY.sign(b"x", ec.ECDSA(hashes.SHA256())))
        ),
        "signature",
        id="es256-der-signature",
    ),
    pytest.param(hs256_with_the_public_key_as_secret, "alg", id="hs256-with-rsa-public-key"),
    pytest.param(lambda: token_with_header({"kid": "rsa1"}), "alg", id="no-alg"),
    pytest.param(
        lambda: token_with_header({"alg": "RS256", "kid": "rsa1", "crit": ["exp"]}),
        "crit",
        id="crit-header",
    ),
    pytest.param(
        lambda: token_with_header({"alg": "RS256", "kid": ["rsa1"]}), "kid", id="kid-not-str"
    ),
    pytest.param(lambda: mint(kid="unknown"), "unknown key id", id="unknown-kid"),
    pytest.param(
        lambda: mint(kid="rsa1", key=EC_KEY, algorithm="ES256"),
        "unknown key id",
        id="es256-token-naming-an-rsa-key",
    ),
    pytest.param(lambda: mint(claims(sub=...)), "sub", id="missing-sub"),
    pytest.param(lambda: mint(claims(sub="")), "sub", id="empty-sub"),
    pytest.param(lambda: mint(claims(sub=12)), "sub", id="sub-not-a-string"),
    pytest.param(lambda: mint(claims(sub="1" * 256)), "sub: longer than 255", id="sub-too-long"),
    pytest.param(lambda: mint(claims(sub="\ud800")), "sub: not valid Unicode", id="sub-surrogate"),
    pytest.param(lambda: "not a token", "malformed", id="garbage"),
    pytest.param(lambda: "a.b", "malformed", id="two-segments"),
    pytest.param(lambda: mint() + ".x", "malformed", id="four-segments"),
    pytest.param(lambda: "", "malformed", id="empty"),
    pytest.param(lambda: mint().replace(".", "=.", 1), "malformed", id="padded-header"),
    pytest.param(lambda: mint()[:-2] + "!!", "malformed", id="signature-not-base64url"),
    pytest.param(lambda: b64(b"[]") + ".e30.c2ln", "malformed", id="header-not-an-object"),
    pytest.param(
        lambda: token_with_header({"alg": "RS256"}).replace(".", ".\u00e9", 1),
        "malformed",
        id="non-ascii-payload",
    ),
    pytest.param(lambda: "e30." * 2 + "A" * 70_000, "malformed", id="too-long"),
    pytest.param(lambda: mint().encode(), "malformed", id="bytes-not-str"),
]


@pytest.mark.parametrize(("make_token", "detail"), REFUSALS)
def test_refused_id_tokens(cache, make_token, detail):
    cache.key_for("rsa1", "RS256")  # warm, as after the first sign-in
    with pytest.raises(InvalidIdToken) as caught:
        validate(make_token(), cache)
    assert caught.value.code == "invalid_id_token"
    assert caught.value.provider == "google"
    assert detail in caught.value.detail


def test_exp_as_large_as_year_9999_is_accepted(cache):
    assert validate(mint(claims(exp=253_402_300_799)), cache)["exp"] == 253_402_300_799


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("ann@example.com", "ann@example.com", id="str"),
        pytest.param("", "", id="empty-str"),
        pytest.param(None, None, id="null"),
        pytest.param(["ann@example.com"], None, id="list"),
        pytest.param({"a": 1}, None, id="object"),
        pytest.param(12, None, id="number"),
        pytest.param(True, None, id="boolean"),
        pytest.param("a" * 101, None, id="too-long"),
        pytest.param("\ud800", None, id="lone-surrogate"),
        pytest.param(..., None, id="absent"),
    ],
)
def test_text_claim_hands_back_only_bounded_text(value, expected):
    claims = {} if value is ... else {"email": value}
    assert text_claim(claims, "email", limit=100) == expected


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="null"),
        pytest.param(["a.b.c"], id="list"),
        pytest.param("a.b", id="two-segments"),
        pytest.param("e30.W10.", id="payload-an-array"),
        pytest.param("e30.bnVsbA.", id="payload-null"),
        pytest.param("e30.!!!.", id="payload-not-base64url"),
        pytest.param("W10.e30.", id="header-an-array"),
        pytest.param("e30." + "A" * 70_000 + ".", id="too-long"),
    ],
)
def test_check_form_refuses_what_a_library_could_not_decode(token):
    with pytest.raises(InvalidIdToken) as caught:
        check_form(token, provider="microsoft")
    assert (caught.value.code, caught.value.provider) == ("invalid_id_token", "microsoft")
    assert caught.value.detail.startswith("malformed token")


def test_check_form_accepts_a_well_formed_token_without_checking_it():
    assert check_form(mint(claims(iss="https://evil.example")), provider="microsoft") is None


def test_exp_nan_is_refused():
    payload = b64(b'{"iss":"x","exp":NaN}')
    header = b64(json.dumps({"alg": "RS256", "kid": "rsa1"}).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = RSA_KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    keys = keys_for(jwks(jwk(RSA_KEY, "rsa1")))
    with pytest.raises(InvalidIdToken) as caught:
        validate(f"{header}.{payload}.{b64(signature)}", keys)
    assert "malformed token: payload" in caught.value.detail


@pytest.mark.parametrize(
    ("times", "detail"),
    [
        pytest.param(b'"exp":NaN,"iat":1772366390', "exp: missing or not a time", id="exp-nan"),
        pytest.param(b'"exp":Infinity,"iat":1772366390', "exp: missing or not", id="exp-inf"),
        pytest.param(b'"exp":1772370000,"iat":NaN', "iat: missing or not a time", id="iat-nan"),
        pytest.param(b'"exp":1772370000,"iat":-Infinity', "iat: missing or not", id="iat-minf"),
        pytest.param(
            b'"exp":1772370000,"iat":1772366390,"nbf":NaN', "nbf: not a time", id="nbf-nan"
        ),
    ],
)
def test_signed_non_finite_times_are_refused(times, detail):
    # google-auth's json.loads takes NaN and Infinity, and its time check lets NaN
    # through (every comparison is False): the claims checks after it refuse them.
    others = json.dumps(claims(exp=..., iat=...)).encode()[1:-1]
    payload = b64(b"{" + times + b"," + others + b"}")
    header = b64(json.dumps({"alg": "RS256", "kid": "rsa1"}).encode())
    signature = RSA_KEY.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidIdToken) as caught:
        validate(f"{header}.{payload}.{b64(signature)}", WARM_KEYS)
    assert caught.value.detail.startswith(detail)


def set_unused_bits(segment):
    """The same bytes, spelled with the last character's unused low bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in {2, 3}
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_second_spelling_of_a_segment_is_malformed(cache, position):
    segments = mint(claims(name="Ann")).split(".")
    if len(segments[position]) % 4 not in {2, 3}:  # make it end mid-group: pad a claim
        segments = mint(claims(name="Ann B")).split(".")
    segments[position] = set_unused_bits(segments[position])
    decoded = base64.urlsafe_b64decode(segments[position] + "==")
    assert b64(decoded) != segments[position]  # the same bytes, another text
    with pytest.raises(InvalidIdToken) as caught:
        validate(".".join(segments), cache)
    assert caught.value.detail.startswith("malformed token")


def keys_for(document):
    """A warm cache whose clock never moves: it never goes to the network again."""
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, JWKS_URI, json=document)
        keys = JWKSCache(JWKS_URI, provider="google", clock=lambda: 0.0)
        first = document["keys"][0]
        keys.key_for(first["kid"], {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[first["kty"]])
    return keys


def test_an_algorithm_outside_the_configured_list_is_refused(cache):
    with pytest.raises(InvalidIdToken) as caught:
        validate(mint(key=EC_KEY, algorithm="ES256", kid="ec1"), cache, algorithms=["RS256"])
    assert "alg" in caught.value.detail


def test_an_unknown_kid_is_refused_after_exactly_one_refetch(http, clock):
    serve(http)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    validate(mint(), keys)
    clock.advance(3600)
    with pytest.raises(InvalidIdToken) as caught:
        validate(mint(kid="rotated-away"), keys)
    assert caught.value.detail == "unknown key id"
    assert keys.fetch_count == 2


def test_provider_unavailable_passes_through(http, clock):
    http.add(responses.GET, JWKS_URI, status=502)
    keys = JWKSCache(JWKS_URI, provider="google", clock=clock)
    with pytest.raises(ProviderUnavailable):
        validate(mint(), keys)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"audience": ""}, id="empty-audience"),
        pytest.param({"nonce": ""}, id="empty-nonce"),
        pytest.param({"leeway": -1}, id="negative-leeway"),
        pytest.param({"leeway": 10**400}, id="huge-leeway"),
        pytest.param({"leeway": 3601}, id="leeway-over-an-hour"),
        pytest.param({"leeway": float("nan")}, id="nan-leeway"),
        pytest.param({"algorithms": ["HS256"]}, id="hmac-algorithm"),
        pytest.param({"algorithms": ["RS256", "PS256"]}, id="dropped-algorithm"),
        pytest.param({"algorithms": ["none"]}, id="none-algorithm"),
        pytest.param({"algorithms": []}, id="no-algorithm"),
        pytest.param({"algorithms": "RS256"}, id="algorithms-as-a-string"),
    ],
)
def test_bad_validation_arguments_are_configuration_errors(cache, overrides):
    with pytest.raises(ConfigurationError):
        validate(mint(), cache, **overrides)


# validate_id_token: accepted tokens


@pytest.mark.parametrize(
    ("key", "algorithm", "kid"),
    [
        pytest.param(RSA_KEY, "RS256", "rsa1", id="RS256"),
        pytest.param(EC_KEY, "ES256", "ec1", id="ES256"),
    ],
)
def test_valid_tokens_are_accepted(cache, key, algorithm, kid):
    result = validate(mint(key=key, algorithm=algorithm, kid=kid), cache)
    assert result == claims()


def test_both_google_issuer_spellings_are_accepted_as_a_set(cache):
    google = {"https://accounts.google.com", "accounts.google.com"}
    for spelling in sorted(google):
        assert validate(mint(claims(iss=spelling)), cache, issuer=google)["iss"] == spelling
    with pytest.raises(InvalidIdToken):
        validate(mint(claims(iss="https://accounts.google.com.evil")), cache, issuer=google)


def test_a_callable_issuer_checks_the_tenant_of_the_token(cache):
    tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

    def microsoft_issuer(token_claims):
        return (
            token_claims["iss"] == f"https://login.microsoftonline.com/{token_claims['tid']}/v2.0"
        )

    good = claims(iss=f"https://login.microsoftonline.com/{tenant}/v2.0", tid=tenant)
    assert validate(mint(good), cache, issuer=microsoft_issuer)["tid"] == tenant
    bad = good | {"tid": "another-tenant"}
    with pytest.raises(InvalidIdToken) as caught:
        validate(mint(bad), cache, issuer=microsoft_issuer)
    assert "iss" in caught.value.detail


def test_several_audiences_with_azp_the_client_id_are_accepted(cache):
    token = mint(claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))
    assert validate(token, cache)["aud"] == [CLIENT_ID, "other"]
    assert validate(mint(claims(aud=[CLIENT_ID])), cache)["aud"] == [CLIENT_ID]


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        pytest.param({"exp": NOW - 59}, True, id="expired-within-leeway"),
        pytest.param({"exp": NOW - 60}, False, id="expired-at-leeway"),
        pytest.param({"iat": NOW + 60}, True, id="iat-ahead-within-leeway"),
        pytest.param({"iat": NOW + 61}, False, id="iat-ahead-beyond-leeway"),
        pytest.param({"nbf": NOW + 60}, True, id="nbf-within-leeway"),
        pytest.param({"nbf": NOW + 61}, False, id="nbf-beyond-leeway"),
        pytest.param({"exp": NOW + 0.5, "iat": NOW - 0.5}, True, id="float-times"),
    ],
)
def test_leeway_bounds(cache, overrides, accepted):
    token = mint(claims(**overrides))
    if accepted:
        assert validate(token, cache)["sub"]
    else:
        with pytest.raises(InvalidIdToken):
            validate(token, cache)


def test_the_system_clock_decides(cache, monkeypatch):
    monkeypatch.undo()  # the real clock, for google-auth and for us
    real_now = int(time.time())
    arguments = {
        "keys": cache,
        "provider": "google",
        "issuer": ISSUER,
        "audience": CLIENT_ID,
        "nonce": NONCE,
    }
    fresh = mint(claims(exp=real_now + 600, iat=real_now))
    assert validate_id_token(fresh, **arguments)["exp"] == real_now + 600
    stale = mint(claims(exp=real_now - 120, iat=real_now - 700))
    with pytest.raises(InvalidIdToken) as caught:
        validate_id_token(stale, **arguments)
    assert "exp" in caught.value.detail


# Whatever the input, only our errors come out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "ES256", "none", "HS256", "EdDSA", "PS256"]) | json_values,
        "kid": st.sampled_from(["rsa1", "ec1", "ed1", "x"]) | json_values,
        "crit": json_values,
    },
)


WARM_KEYS = keys_for(STANDARD_JWKS)


@settings(max_examples=300, deadline=None)
@given(
    header=headers | json_values,
    payload=json_values,
    signature=st.binary(max_size=300),
    noise=st.text(max_size=40),
)
def test_only_invalid_id_token_ever_escapes(header, payload, signature, noise):
    keys = WARM_KEYS
    candidates = [
        ".".join(
            [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
        ),
        noise,
        noise + "." + noise + "." + noise,
    ]
    for token in candidates:
        with pytest.raises(InvalidIdToken):
            validate(token, keys)


times = (
    st.integers(min_value=NOW - 7200, max_value=NOW + 7200)
    | st.floats(min_value=NOW - 7200, max_value=NOW + 7200)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_values
)
hostile_claim = {
    name: st.just(...) | (times if name in {"exp", "iat", "nbf"} else json_values)
    for name in ["iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "sub"]
}
# A good token's claims, up to two of them replaced by hostile values or dropped (`...`).
signed_payloads = st.lists(st.sampled_from(sorted(hostile_claim)), max_size=2, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: hostile_claim[name] for name in names}).map(
        lambda overrides: claims(**overrides)
    )
)


@settings(max_examples=200, deadline=None)
@given(payload=signed_payloads, algorithm=st.sampled_from(["RS256", "ES256"]))
def test_signed_hostile_claims_are_refused_or_accepted_never_crash(payload, algorithm):
    # Signed with the provider's own key: google-auth's time checks and ours see the
    # hostile values (huge, negative, NaN-free floats, strings, lists, objects).
    if algorithm == "RS256":
        key, kid, signer = RSA_KEY, "rsa1", RSAAlgorithm(RSAAlgorithm.SHA256)
    else:
        key, kid, signer = EC_KEY, "ec1", ECAlgorithm(ECAlgorithm.SHA256)
    header = b64(json.dumps({"alg": algorithm, "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    signature = signer.sign(f"{header}.{body}".encode(), key)
    token = f"{header}.{body}.{b64(signature)}"
    try:
        accepted = validate(token, WARM_KEYS)
    except InvalidIdToken:
        return  # refused: the one error that may come out
    assert accepted == payload
    assert (accepted["iss"], accepted["nonce"]) == (ISSUER, NONCE)
    assert accepted["exp"] + 60 > NOW
    assert accepted["iat"] <= NOW + 60
    assert accepted.get("nbf", NOW) <= NOW + 60
