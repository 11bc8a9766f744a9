"""ID-token validation: warm cost against the raw RSA verify, and against google-auth.

`validate_id_token` verifies through `google.auth.jwt.decode` over the key cache's
PEM keys; the cases show what that costs against the raw RSA verification (the
budget: at most 3x), against bare `google.auth.jwt.decode` with the same key (what
our parsing and OIDC claim checks add), and against google-auth's own
`id_token.verify_token`, which downloads the certificates on every call.

The provider is a local HTTP server on 127.0.0.1 (no internet): it serves our JWKS
and Google-style x509 certificates, and counts the requests it gets, so each case
can say how many HTTP requests one verification costs.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from google.auth import jwt as google_jwt
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import id_token as google_id_token

from bench._harness import Case, Scale
from bpart_auth.oidc.idtoken import validate_id_token
from bpart_auth.oidc.jwks import JWKSCache

if TYPE_CHECKING:
    from collections.abc import Iterator

CLIENT_ID = "bench-client.apps.googleusercontent.com"
ISSUER = "https://accounts.google.com"
NONCE = "bench-nonce-0123456789"
KID = "bench-key-1"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class _Provider(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: both clients reuse their connection
    # One send per answer, no Nagle: loopback HTTP as fast as it gets, so google-auth's
    # per-call fetch is not charged a delayed-ACK stall it would not meet in production.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    documents: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        with self.lock:
            self.hits[self.path] = self.hits.get(self.path, 0) + 1
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "public, max-age=3600")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def benchmarks(scale: Scale) -> Iterator[Case]:
    del scale  # one token costs the same at any scale
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256"}
    _Provider.documents = {
        "/jwks": json.dumps(
            {"keys": [jwk | {"n": _b64(numbers.n), "e": _b64(numbers.e)}]}
        ).encode(),
        "/certs": json.dumps({KID: _certificate(key)}).encode(),
    }
    _Provider.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "sub": "110169484474386276334",
            "email": "ann@example.com",
            "email_verified": True,
            "iat": now,
            "exp": now + 86_400,
            "nonce": NONCE,
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
        signing_input, _, signature_text = token.rpartition(".")
        signature = base64.urlsafe_b64decode(signature_text + "=" * (-len(signature_text) % 4))
        public_key = key.public_key()

        keys = JWKSCache(f"{base}/jwks", provider="google")

        def ours() -> object:
            return validate_id_token(
                token, keys=keys, provider="google", issuer=ISSUER, audience=CLIENT_ID, nonce=NONCE
            )

        def raw_verify() -> None:
            public_key.verify(
                signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
            )

        pem = keys.key_for(KID, "RS256").pem  # the key as the cache hands it to google-auth

        def google_decode() -> object:
            return google_jwt.decode(token, certs=pem, audience=None, clock_skew_in_seconds=60)

        google_request = GoogleRequest(requests.Session())  # made once, reused: its best case

        def google_auth() -> object:
            return google_id_token.verify_token(
                token, google_request, audience=CLIENT_ID, certs_url=f"{base}/certs"
            )

        assert ours() == claims  # noqa: S101 - the cases must measure a success
        assert google_auth()["sub"] == claims["sub"]  # noqa: S101
        ours_fetches = _per_call(ours, lambda: keys.fetch_count)
        google_fetches = _per_call(google_auth, lambda: _Provider.hits.get("/certs", 0))

        yield Case(
            group="idtoken",
            name=f"validate_id_token RS256, warm ({ours_fetches:g} fetches/call)",
            subject=ours,
            baseline_name="cryptography RSA verify",
            baseline=raw_verify,
            high=3,
            note="strict parse, kid lookup, google-auth decode, iss/aud/azp/exp/iat/nonce/sub",
        )
        yield Case(
            group="idtoken",
            name="validate_id_token RS256, warm, vs google.auth.jwt.decode alone (same PEM key)",
            subject=ours,
            baseline_name="google.auth.jwt.decode",
            baseline=google_decode,
            note="what the strict parse, the key lookup and the OIDC claim checks add",
        )
        yield Case(
            group="idtoken",
            name=(
                f"validate_id_token ({ours_fetches:g} HTTP/call) vs google-auth verify_token "
                f"({google_fetches:g} HTTP/call, loopback)"
            ),
            subject=ours,
            baseline_name="google.oauth2.id_token.verify_token",
            baseline=google_auth,
            note="google-auth refetches and reparses the x509 certs on every call",
        )
    finally:
        if not sys.is_finalizing():  # at exit the daemon thread is gone: nothing to stop
            server.shutdown()
        server.server_close()


def _per_call(call: object, count: object) -> float:
    assert callable(call)  # noqa: S101
    assert callable(count)  # noqa: S101
    calls = 20
    before = count()
    for _ in range(calls):
        call()
    return (count() - before) / calls
