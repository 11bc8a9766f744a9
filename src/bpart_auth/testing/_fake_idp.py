"""The in-process identity provider behind `FakeGoogle` and `FakeMicrosoft`.

Real discovery, a real RSA key set, authorization codes bound to PKCE S256 and the
redirect URI, and RS256-signed ID tokens. `routes()` are served in process (by
`fakes.py`, or through a `responses` mock with `install`), so the library's real
HTTP code path runs and nothing leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import responses
    from requests import PreparedRequest

_Reply = tuple[int, dict[str, str], str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class FakeAuthorizeError(AssertionError):
    """An authorization request the real provider would refuse (a bug in the caller)."""


@dataclass
class _Grant:
    claims: dict[str, Any]
    redirect_uri: str
    code_challenge: str


@dataclass
class FakeIdentityProvider:
    """One OpenID provider: discovery, JWKS, authorization and token endpoints."""

    base_url: str
    issuer: str  # the discovery document's; may hold "{tenantid}" (Entra's template)
    client_id: str
    client_secret: str
    # Each ID token's `iss`; "{tenantid}" is filled from the token's `tid`, as Entra
    # names the issuer of the account's own tenant. The discovery issuer by default.
    token_issuer: str | None = None
    token_lifetime: int = 3600
    metadata_path: str = "/.well-known/openid-configuration"
    authorization_path: str = "/o/oauth2/v2/auth"
    token_path: str = "/token"  # noqa: S105 - a URL path, not a secret
    jwks_path: str = "/oauth2/v3/certs"
    _key: rsa.RSAPrivateKey = field(init=False, repr=False)
    _kid: str = field(init=False)
    _grants: dict[str, _Grant] = field(init=False, default_factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    requests_seen: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)

    # URLs

    @property
    def metadata_url(self) -> str:
        """The discovery document's URL."""
        return f"{self.base_url}{self.metadata_path}"

    @property
    def authorization_endpoint(self) -> str:
        """Where the browser is sent."""
        return f"{self.base_url}{self.authorization_path}"

    def metadata(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": f"{self.base_url}{self.token_path}",
            "jwks_uri": f"{self.base_url}{self.jwks_path}",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self._kid,
                    "n": _uint(numbers.n),
                    "e": _uint(numbers.e),
                }
            ]
        }

    # The user's side

    def authorize(
        self,
        url: str,
        *,
        claims: Mapping[str, Any],
        error: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Play the user at the authorization URL; the callback's query parameters.

        Raises:
            FakeAuthorizeError: The request lacks what the real provider requires
                (client id, code flow, PKCE S256, state, nonce, redirect URI).
        """
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" != self.authorization_endpoint:
            raise FakeAuthorizeError(f"not this provider's authorization endpoint: {url}")
        query = dict(parse_qsl(parts.query))
        for name, expected in (
            ("client_id", self.client_id),
            ("response_type", "code"),
            ("code_challenge_method", "S256"),
        ):
            if query.get(name) != expected:
                raise FakeAuthorizeError(f"{name} is {query.get(name)!r}, not {expected!r}")
        for name in ("state", "nonce", "code_challenge", "redirect_uri", "scope"):
            if not query.get(name):
                raise FakeAuthorizeError(f"the authorization request has no {name}")
        if "openid" not in query["scope"].split():
            raise FakeAuthorizeError("scope lacks openid")
        if error is not None:
            return {**error, "state": query["state"]}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                claims={"nonce": query["nonce"], **claims},
                redirect_uri=query["redirect_uri"],
                code_challenge=query["code_challenge"],
            )
        return {"code": code, "state": query["state"]}

    def id_token(self, claims: Mapping[str, Any]) -> str:
        """An RS256 ID token with this provider's key; `claims` override the defaults."""
        now = int(time.time())
        payload = {
            "iss": (self.token_issuer or self.issuer).replace(
                "{tenantid}", str(claims.get("tid", ""))
            ),
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + self.token_lifetime,
            **claims,
        }
        header = {"alg": "RS256", "kid": self._kid, "typ": "JWT"}
        signing_input = (
            f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        ).encode("ascii")
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64(signature)}"

    # The server's side

    def routes(self) -> dict[tuple[str, str], Callable[[PreparedRequest], _Reply]]:
        """What the provider serves: `(method, URL without query) -> handler`."""
        metadata = self.metadata()
        return {
            ("GET", self.metadata_url): self._json(self.metadata),
            ("GET", metadata["jwks_uri"]): self._json(self.jwks),
            ("POST", metadata["token_endpoint"]): self._token,
        }

    def install(self, mock: responses.RequestsMock) -> None:
        """Serve discovery, keys and the token endpoint through `mock`."""
        for (method, url), handler in self.routes().items():
            mock.add_callback(method, url, callback=handler)

    def _json(self, document: Callable[[], Any]) -> Callable[[PreparedRequest], _Reply]:
        def reply(request: PreparedRequest) -> _Reply:
            self._count(request)
            headers = {"Content-Type": "application/json", "Cache-Control": "max-age=3600"}
            return 200, headers, json.dumps(document())

        return reply

    def _count(self, request: PreparedRequest) -> None:
        path = urlsplit(request.url or "").path
        with self._lock:
            self.requests_seen[path] = self.requests_seen.get(path, 0) + 1

    def _token(self, request: PreparedRequest) -> _Reply:
        self._count(request)
        body = request.body or ""
        form = dict(parse_qsl(body.decode() if isinstance(body, bytes) else body))
        if not self._client_authenticated(request, form):
            return _error(401, "invalid_client")
        if form.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # codes are single-use
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return _error(400, "invalid_grant")
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        if not hmac.compare_digest(challenge, grant.code_challenge):
            return _error(400, "invalid_grant")
        answer = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": "openid email profile",
            "id_token": self.id_token(grant.claims),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def _client_authenticated(self, request: PreparedRequest, form: Mapping[str, str]) -> bool:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and hmac.compare_digest(secret, self.client_secret)


def _error(status: int, code: str) -> _Reply:
    return status, {"Content-Type": "application/json"}, json.dumps({"error": code})
