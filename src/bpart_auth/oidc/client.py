"""The OpenID Connect core every provider shares: discovery, PKCE, code, ID token.

What a provider sends is checked where it enters. The discovery document is not
trusted (OpenID Connect Discovery 1.0, section 4.3): its `issuer` must be the one
the provider pins, and its `authorization_endpoint`, `token_endpoint` and
`jwks_uri` must be https URLs on the provider's expected hosts; a refused document is
`ProviderUnavailable` and is not cached, so the next call asks again. The token
endpoint's answer is read within bounds (`bpart_auth.oidc.transport`) and its shape checked
(`token_answer`) before anyone uses it.
"""

from __future__ import annotations

import hmac
import re
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import WebApplicationClient

from bpart_auth._input import text_problem
from bpart_auth.errors import (
    ConfigurationError,
    InvalidFlowState,
    ProviderError,
    ProviderUnavailable,
)
from bpart_auth.oidc.flowstate import code_challenge
from bpart_auth.oidc.idtoken import validate_id_token
from bpart_auth.oidc.jwks import JWKSCache
from bpart_auth.oidc.transport import exchange, json_object

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from bpart_auth.oidc.flowstate import FlowState
    from bpart_auth.oidc.idtoken import IssuerCheck
    from bpart_auth.oidc.transport import Answer

IssuerPin: TypeAlias = frozenset[str] | re.Pattern[str]
"""The discovery issuers a provider accepts: exact strings, or a full-match pattern."""

ENDPOINTS: Final = ("authorization_endpoint", "token_endpoint", "jwks_uri")
"""The discovery document's endpoints we use, each checked against the expected hosts."""

_MAX_URL: Final = 2048
_MAX_ERROR_CODE: Final = 256
# Token endpoint members that must be JSON numbers of seconds when present (RFC 6749
# 5.1; Entra's ext_expires_in and refresh_in). msal does arithmetic on refresh_in.
_SECONDS_MEMBERS: Final = ("expires_in", "ext_expires_in", "refresh_in")
_MAX_SECONDS: Final = 10**9
_TEXT_MEMBERS: Final = (
    "access_token",
    "token_type",
    "scope",
    "id_token",
    "refresh_token",
    "error",
    "error_description",
    "error_uri",
)


def require_credentials(provider: str, client_id: object, client_secret: object) -> None:
    """Refuse a provider configured without a client id or secret, at construction."""
    for name, value in (("client_id", client_id), ("client_secret", client_secret)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(detail=f"{provider}: {name} must be a non-empty str")


def https_authority(url: object) -> str | None:
    """`host` or `host:port` (lowercase, no default port) of an https URL; else None.

    A URL with user info, another scheme or no host is None.

    Examples:
        >>> https_authority("https://Login.Example.com:443/common/v2.0")
        'login.example.com'
        >>> https_authority("https://127.0.0.1:8443/google"), https_authority("http://x.test/")
        ('127.0.0.1:8443', None)
        >>> https_authority("https://[::1]:8443/"), https_authority("https://u:p@x.test/")
        ('[::1]:8443', None)
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when it is not a port number
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme != "https" or not host or "@" in parts.netloc:
        return None
    if ":" in host:  # IPv6: keep the brackets, as the URL has them
        host = f"[{host}]"
    return host if port in (None, 443) else f"{host}:{port}"


def endpoint_hosts_setting(provider: str, hosts: Collection[str]) -> frozenset[str]:
    """Check an `endpoint_hosts=` setting: host names, each with an optional port."""
    if isinstance(hosts, str):
        raise ConfigurationError(detail=f"{provider}: endpoint_hosts must be a list of hosts")
    cleaned = set()
    for host in hosts:
        value = str(host).strip().lower()
        if not value or https_authority(f"https://{value}/") != value.removesuffix(":443"):
            raise ConfigurationError(
                detail=f"{provider}: endpoint_hosts entry {host!r} is not a host[:port]"
            )
        cleaned.add(value.removesuffix(":443"))
    if not cleaned:
        raise ConfigurationError(detail=f"{provider}: endpoint_hosts is empty")
    return frozenset(cleaned)


def _issuer_pinned(pin: IssuerPin, issuer: str) -> bool:
    if isinstance(pin, re.Pattern):
        return pin.fullmatch(issuer) is not None
    return issuer in pin


def _describe(pin: IssuerPin) -> str:
    return pin.pattern if isinstance(pin, re.Pattern) else " or ".join(sorted(pin))


def token_answer(answer: Answer, *, provider: str) -> dict[str, Any]:
    """A token endpoint's answer, checked: a JSON object whose members have sane types.

    `error`, `id_token` and the other text members, when present, are strings;
    `expires_in`, `ext_expires_in` and `refresh_in` are numbers of seconds from 0 to
    10**9. A 2xx answer or an OAuth error answer (RFC 6749 5.2) passes; what to do
    with an `error` is the caller's.

    Raises:
        ProviderUnavailable: An answer we cannot read: not a JSON object, a member
            of the wrong type, a number out of range, or a status other than 2xx
            without an OAuth `error`.
    """
    document = json_object(answer, provider=provider, what="token endpoint answer")

    def malformed(why: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            provider=provider, detail=f"token endpoint answer (HTTP {answer.status}): {why}"
        )

    for name in _TEXT_MEMBERS:
        if name in document and not isinstance(document[name], str):
            raise malformed(f"{name} is not a string")
    for name in _SECONDS_MEMBERS:
        value = document.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= _MAX_SECONDS
        ):
            raise malformed(f"{name} is not a number of seconds")
    error = document.get("error")
    if error is not None and not 0 < len(error) <= _MAX_ERROR_CODE:
        raise malformed("error is empty or too long")
    if error is None and not HTTPStatus.OK <= answer.status < HTTPStatus.MULTIPLE_CHOICES:
        raise malformed("an HTTP error without an OAuth error")
    return document


class OIDCClient:
    """Discovery, the authorization URL, the callback checks, the code exchange.

    Nothing touches the network before first use; discovery and keys are fetched
    lazily, cached, and every request has a timeout.

    Args:
        provider: The provider's name, for errors.
        client_id: The OAuth client id.
        client_secret: The OAuth client secret.
        metadata_url: The OpenID Connect discovery document's URL.
        issuers: The discovery `issuer` values accepted.
        endpoint_hosts: Where the document's endpoints may live (`host[:port]`).
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
        issuers: IssuerPin,
        endpoint_hosts: frozenset[str],
        scopes: Sequence[str],
        session: requests.Session | None,
        timeout: float,
    ) -> None:
        require_credentials(provider, client_id, client_secret)
        if https_authority(metadata_url) is None:
            raise ConfigurationError(detail=f"{provider}: metadata_url must be https")
        self.provider = provider
        self.client_id = client_id
        self._client_secret = client_secret
        self.metadata_url = metadata_url
        self.issuers = issuers
        self.endpoint_hosts = endpoint_hosts
        self.scopes = tuple(scopes)
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: JWKSCache | None = None

    def metadata(self) -> Mapping[str, Any]:
        """The checked discovery document, fetched once (then cached for the process).

        Raises:
            ProviderUnavailable: It could not be fetched, or was refused (`detail`
                names what did not match); nothing is cached then.
        """
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
                        session=self.session,
                        timeout=self.timeout,
                    )
                keys = self._keys
        return keys

    def authorization_url(self, flow: FlowState, *, nonce: str | None = None, **extra: str) -> str:
        """The authorization request: code flow, state, nonce, PKCE S256.

        Built by oauthlib's client alone: no `requests.Session` per sign-in.

        Args:
            flow: The flow being begun (its state, nonce, verifier, redirect URI).
            nonce: The `nonce` to send when it is not the flow's own (Microsoft
                sends a hash of it).
            extra: More query parameters (`prompt`, `hd`).
        """
        client = WebApplicationClient(self.client_id)
        url = client.prepare_request_uri(
            self.metadata()["authorization_endpoint"],
            redirect_uri=flow.redirect_uri,
            scope=list(self.scopes),
            state=flow.state,
            nonce=flow.nonce if nonce is None else nonce,
            code_challenge=code_challenge(flow.code_verifier),
            code_challenge_method="S256",
            **extra,
        )
        return str(url)

    def check_issuer_parameter(self, params: Mapping[str, str]) -> None:
        """Mix-up defence (RFC 9207): a callback's `iss` must be the discovery issuer.

        Required when the provider says it sends one; checked whenever present.
        """
        returned = params.get("iss")
        issuer = str(self.metadata()["issuer"])
        if returned is None:
            if self.metadata().get("authorization_response_iss_parameter_supported") is True:
                raise InvalidFlowState(detail=f"{self.provider}: callback without iss")
            return
        if not hmac.compare_digest(returned.encode(), issuer.encode()):
            raise InvalidFlowState(
                detail=f"{self.provider}: callback iss {returned[:200]!r} is not {issuer!r}"
            )

    def exchange_code(self, flow: FlowState, params: Mapping[str, str]) -> str:
        """Trade the callback's code (with the PKCE verifier) for an ID token.

        The request is RFC 6749 4.1.3 with the client's secret in the form (2.3.1)
        and the PKCE verifier (RFC 7636 4.5).

        Raises:
            ProviderError: The provider refused the code (`provider_code` and
                `oauth_error` are its OAuth `error`), or answered without an ID token.
            ProviderUnavailable: No answer, a 5xx or 429, or an answer we cannot read.
        """
        code = params.get("code")
        if not code:
            raise ProviderError(provider=self.provider, detail="callback without code or error")
        answer = exchange(
            self.session,
            "POST",
            self.metadata()["token_endpoint"],
            provider=self.provider,
            what="token request",
            timeout=self.timeout,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": flow.redirect_uri,
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "code_verifier": flow.code_verifier,
            },
            headers={"Accept": "application/json"},
        )
        token = token_answer(answer, provider=self.provider)
        error = token.get("error")
        if error is not None:
            raise ProviderError(
                provider=self.provider,
                provider_code=error,
                oauth_error=error,
                description=token.get("error_description"),
                detail=f"token endpoint refused the code: {error}",
            )
        id_token = token.get("id_token")
        if not id_token:
            raise ProviderError(provider=self.provider, detail="token response without id_token")
        return str(id_token)

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
        answer = exchange(
            self.session,
            "GET",
            self.metadata_url,
            provider=self.provider,
            what="discovery",
            timeout=self.timeout,
            headers={"Accept": "application/json"},
        )

        def refuse(why: str) -> ProviderUnavailable:
            return ProviderUnavailable(
                provider=self.provider, detail=f"discovery at {self.metadata_url}: {why}"
            )

        if answer.status != HTTPStatus.OK:
            raise refuse(f"HTTP {answer.status}")
        document = json_object(answer, provider=self.provider, what="discovery document")
        if not all(
            text_problem(document.get(name), limit=_MAX_URL) is None
            for name in ("issuer", *ENDPOINTS)
        ):
            raise refuse("the discovery document lacks the issuer or endpoints")
        issuer = document["issuer"]
        if not _issuer_pinned(self.issuers, issuer):
            raise refuse(f"issuer {issuer!r} is not {_describe(self.issuers)}")
        for name in ENDPOINTS:
            authority = https_authority(document[name])
            if authority is None:
                raise refuse(f"the discovery document's {name} is not a plain https URL")
            if authority not in self.endpoint_hosts:
                raise refuse(
                    f"the discovery document's {name} is on {authority}, "
                    f"not on {', '.join(sorted(self.endpoint_hosts))}"
                )
        return {
            "issuer": issuer,
            **{name: document[name] for name in ENDPOINTS},
            "authorization_response_iss_parameter_supported": document.get(
                "authorization_response_iss_parameter_supported"
            )
            is True,
        }
