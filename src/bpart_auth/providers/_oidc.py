"""The OpenID Connect core every provider shares: discovery, PKCE, code, ID token."""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING, Any

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from bpart_auth._idtoken import validate_id_token
from bpart_auth._jwks import JWKSCache
from bpart_auth.errors import (
    ConfigurationError,
    InvalidFlowState,
    ProviderError,
    ProviderUnavailable,
)
from bpart_auth.flowstate import code_challenge

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bpart_auth._idtoken import IssuerCheck
    from bpart_auth.flowstate import FlowState

_MAX_METADATA_BYTES = 1 << 20


def require_credentials(provider: str, client_id: object, client_secret: object) -> None:
    """Refuse a provider configured without a client id or secret, at construction."""
    for name, value in (("client_id", client_id), ("client_secret", client_secret)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(detail=f"{provider}: {name} must be a non-empty str")


class OIDCClient:
    """Discovery, the authorization URL, the callback checks, the code exchange.

    Nothing touches the network before first use; discovery and keys are fetched
    lazily, cached, and every request has a timeout.

    Args:
        provider: The provider's name, for errors.
        client_id: The OAuth client id.
        client_secret: The OAuth client secret.
        metadata_url: The OpenID Connect discovery document's URL.
        scopes: The scopes to ask for.
        session: A `requests.Session` whose `verify`, `cert`, `proxies` and
            `trust_env` every request uses (a custom CA bundle, a proxy).
        timeout: Seconds per request.
    """

    def __init__(
        self,
        *,
        provider: str,
        client_id: str,
        client_secret: str,
        metadata_url: str,
        scopes: Sequence[str],
        session: requests.Session | None,
        timeout: float,
    ) -> None:
        require_credentials(provider, client_id, client_secret)
        if not metadata_url.startswith("https://"):
            raise ConfigurationError(detail=f"{provider}: metadata_url must be https")
        self.provider = provider
        self.client_id = client_id
        self._client_secret = client_secret
        self.metadata_url = metadata_url
        self.scopes = tuple(scopes)
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: JWKSCache | None = None

    def metadata(self) -> Mapping[str, Any]:
        """The discovery document, fetched once (then cached for the process)."""
        metadata = self._metadata
        if metadata is not None:
            return metadata
        with self._lock:
            if self._metadata is None:
                self._metadata = self._fetch_metadata()
            return self._metadata

    def keys(self) -> JWKSCache:
        """The provider's signing keys, from the discovery document's `jwks_uri`."""
        keys = self._keys
        if keys is None:
            jwks_uri = self.metadata()["jwks_uri"]
            with self._lock:
                if self._keys is None:
                    self._keys = JWKSCache(
                        jwks_uri,
                        provider=self.provider,
                        session=self._session,
                        timeout=self._timeout,
                    )
                keys = self._keys
        return keys

    def authorization_url(self, flow: FlowState, **extra: str) -> str:
        """The authorization request: code flow, state, nonce, PKCE S256."""
        oauth = OAuth2Session(
            self.client_id, redirect_uri=flow.redirect_uri, scope=list(self.scopes)
        )
        url, _ = oauth.authorization_url(
            self.metadata()["authorization_endpoint"],
            state=flow.state,
            nonce=flow.nonce,
            code_challenge=code_challenge(flow.code_verifier),
            code_challenge_method="S256",
            **extra,
        )
        return str(url)

    def check_issuer_parameter(self, params: Mapping[str, str], issuer: str) -> None:
        """Mix-up defence (RFC 9207): a callback's `iss` must be this provider's issuer.

        Required when the provider says it sends one; checked whenever present.
        """
        returned = params.get("iss")
        if returned is None:
            if self.metadata().get("authorization_response_iss_parameter_supported") is True:
                raise InvalidFlowState(detail=f"{self.provider}: callback without iss")
            return
        if not hmac.compare_digest(returned.encode("utf-8", "surrogatepass"), issuer.encode()):
            raise InvalidFlowState(
                detail=f"{self.provider}: callback iss {returned!r} is not {issuer!r}"
            )

    def exchange_code(self, flow: FlowState, params: Mapping[str, str]) -> str:
        """Trade the callback's code (with the PKCE verifier) for an ID token."""
        code = params.get("code")
        if not code:
            raise ProviderError(provider=self.provider, detail="callback without code or error")
        oauth = OAuth2Session(self.client_id, redirect_uri=flow.redirect_uri)
        for setting in ("verify", "cert", "proxies", "trust_env"):
            setattr(oauth, setting, getattr(self._session, setting))
        try:
            token = oauth.fetch_token(
                self.metadata()["token_endpoint"],
                code=code,
                client_secret=self._client_secret,
                code_verifier=flow.code_verifier,
                include_client_id=True,
                timeout=self._timeout,
                # A CA bundle path is valid here (requests); the stub says bool only.
                verify=self._session.verify,  # type: ignore[arg-type]
            )
        except OAuth2Error as exc:
            raise ProviderError(
                provider=self.provider,
                provider_code=exc.error,
                description=exc.description,
                detail=f"token endpoint refused the code: {exc.error}",
            ) from exc
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(
                provider=self.provider, detail=f"token request failed: {exc}"
            ) from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ProviderError(provider=self.provider, detail="token response without id_token")
        return id_token

    def validate(self, id_token: str, flow: FlowState, *, issuer: IssuerCheck) -> dict[str, Any]:
        """Validate the ID token against the cached keys and this flow's nonce."""
        return validate_id_token(
            id_token,
            keys=self.keys(),
            provider=self.provider,
            issuer=issuer,
            audience=self.client_id,
            nonce=flow.nonce,
        )

    def _fetch_metadata(self) -> dict[str, Any]:
        try:
            response = self._session.get(
                self.metadata_url, timeout=self._timeout, verify=self._session.verify
            )
            response.raise_for_status()
            metadata = response.json() if len(response.content) <= _MAX_METADATA_BYTES else None
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(
                provider=self.provider, detail=f"discovery at {self.metadata_url} failed: {exc}"
            ) from exc
        needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(metadata, dict) or not all(
            isinstance(metadata.get(name), str) for name in needed
        ):
            raise ProviderUnavailable(
                provider=self.provider, detail="discovery document lacks endpoints"
            )
        plain = [name for name in needed[1:] if not metadata[name].startswith("https://")]
        if plain:  # oauthlib would refuse them later with an exception of its own
            raise ProviderUnavailable(
                provider=self.provider,
                detail=f"discovery document's {', '.join(plain)} not https",
            )
        return metadata
