"""Sign in with Google: the OIDC core plus Google's issuers, `hd` and error codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bpart_auth._input import MAX_EMAIL_INPUT
from bpart_auth.errors import (
    ConfigurationError,
    ConsentDeclined,
    HostedDomainNotAllowed,
    ProviderError,
)
from bpart_auth.models import Identity, ProviderName, VerifiedIdentity
from bpart_auth.oidc.client import OIDCClient, endpoint_hosts_setting, https_authority
from bpart_auth.oidc.idtoken import text_claim

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import requests

    from bpart_auth.oidc.flowstate import FlowState

GOOGLE_METADATA_URL: Final = "https://accounts.google.com/.well-known/openid-configuration"
GOOGLE_ISSUER: Final = "https://accounts.google.com"
# Google's ID tokens carry either spelling (Google's OpenID Connect documentation).
GOOGLE_ISSUERS: Final = frozenset({GOOGLE_ISSUER, "accounts.google.com"})
GOOGLE_ENDPOINT_HOSTS: Final = frozenset(
    {
        # What Google's discovery document names: the authorization endpoint, the
        # token (and device, revocation) endpoints, the keys, and userinfo.
        "accounts.google.com",
        "oauth2.googleapis.com",
        "www.googleapis.com",
        "openidconnect.googleapis.com",
    }
)
_WELL_KNOWN: Final = "/.well-known/openid-configuration"
_MAX_DOMAIN: Final = 253  # RFC 1035: a domain name in text
_MAX_NAME: Final = 1024  # a display name; the store keeps its first 200 characters


def _pinned_issuer(metadata_url: str, issuer: str | None) -> str:
    """The issuer a discovery document must name (OpenID Connect Discovery 1.0, 4.3)."""
    if issuer is None:
        if metadata_url == GOOGLE_METADATA_URL:
            return GOOGLE_ISSUER
        if not metadata_url.endswith(_WELL_KNOWN):
            raise ConfigurationError(
                detail=f"google: metadata_url does not end with {_WELL_KNOWN}; pass issuer="
            )
        return metadata_url.removesuffix(_WELL_KNOWN)
    if issuer not in GOOGLE_ISSUERS and https_authority(issuer) is None:
        raise ConfigurationError(detail="google: issuer must be an https URL")
    return issuer


class GoogleProvider:
    """Sign in with Google (authorization code flow with PKCE S256, state and nonce).

    A Google identity is (issuer, `sub`). At first sign-in, when no account has the
    identity yet, an account whose email equals the token's email is found, but
    only when Google says `email_verified`; the identity is then remembered on it.

    Args:
        client_id: The OAuth client id from Google Cloud console.
        client_secret: Its secret.
        hosted_domains: When given, only Google Workspace accounts of these domains
            may sign in, checked against the ID token's `hd` claim (never against the
            email's domain: a gmail.com address can carry any name).
        metadata_url: The discovery document; Google's by default. Tests point it at
            a fake provider.
        issuer: The issuer the discovery document and the ID tokens must name.
            By default Google's (either spelling Google uses) with Google's
            discovery document, and with another `metadata_url` that URL without
            `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0,
            section 4.3). Give it for a provider that serves Google's documents
            elsewhere (`FakeGoogle` names Google's issuer).
        endpoint_hosts: The hosts (`host` or `host:port`) the discovery
            document's authorization, token and keys endpoints must be on. By
            default Google's own with Google's discovery document, and otherwise
            the host of `metadata_url`.
        session: A `requests.Session` for every request (CA bundle, proxy).
        timeout: Seconds per request.

    Attributes:
        issuer: The issuer stored in Google identities (`https://accounts.google.com`
            for Google, whichever spelling a token carries).

    Raises:
        ConfigurationError: Missing client id or secret, or a bad setting.

    Examples:
        >>> google = GoogleProvider(client_id="1234.apps.googleusercontent.com",
        ...                         client_secret="secret", hosted_domains=["example.com"])
        >>> google.name, google.issuer
        ('google', 'https://accounts.google.com')
    """

    email_sign_in: Final = True

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        hosted_domains: Collection[str] | None = None,
        metadata_url: str = GOOGLE_METADATA_URL,
        issuer: str | None = None,
        endpoint_hosts: Collection[str] | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        metadata_host = https_authority(metadata_url)
        if metadata_host is None:
            raise ConfigurationError(detail="google: metadata_url must be https")
        pinned = _pinned_issuer(metadata_url, issuer)
        if endpoint_hosts is not None:
            hosts = endpoint_hosts_setting("google", endpoint_hosts)
        elif metadata_url == GOOGLE_METADATA_URL:
            hosts = GOOGLE_ENDPOINT_HOSTS
        else:
            hosts = frozenset({metadata_host})
        self._issuers = GOOGLE_ISSUERS if pinned in GOOGLE_ISSUERS else frozenset({pinned})
        self._oidc = OIDCClient(
            provider="google",
            client_id=client_id,
            client_secret=client_secret,
            metadata_url=metadata_url,
            issuers=self._issuers,
            endpoint_hosts=hosts,
            scopes=("openid", "email", "profile"),
            session=session,
            timeout=timeout,
        )
        # The one spelling stored in identities, so both spellings are one person.
        self.issuer = GOOGLE_ISSUER if pinned in GOOGLE_ISSUERS else pinned
        if isinstance(hosted_domains, str):
            raise ConfigurationError(detail="google: hosted_domains must be a list of domains")
        self.hosted_domains = (
            None if hosted_domains is None else frozenset(d.lower() for d in hosted_domains)
        )
        if self.hosted_domains is not None and not self.hosted_domains:
            raise ConfigurationError(detail="google: hosted_domains is empty; pass None")

    @property
    def name(self) -> ProviderName:
        """Always `"google"`."""
        return "google"

    def authorization_url(self, flow: FlowState) -> tuple[str, Mapping[str, str]]:
        """See `Provider.authorization_url`; asks Google to show its account chooser."""
        extra = {"prompt": "select_account"}
        if self.hosted_domains is not None and len(self.hosted_domains) == 1:
            (extra["hd"],) = self.hosted_domains  # a hint for the chooser; `hd` is checked
        return self._oidc.authorization_url(flow, **extra), {}

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> VerifiedIdentity:
        """See `Provider.complete`."""
        self._oidc.check_issuer_parameter(params)
        error = params.get("error")
        if error is not None:
            description = params.get("error_description")
            if error == "access_denied":
                raise ConsentDeclined(
                    provider="google",
                    provider_code=error,
                    oauth_error=error,
                    description=description,
                )
            raise ProviderError(
                provider="google", provider_code=error, oauth_error=error, description=description
            )
        id_token = self._oidc.exchange_code(flow, params)
        claims = self._oidc.validate(id_token, flow, issuer=self._issuers)
        hosted_domain = text_claim(claims, "hd", limit=_MAX_DOMAIN)
        if self.hosted_domains is not None and (
            hosted_domain is None or hosted_domain.lower() not in self.hosted_domains
        ):
            raise HostedDomainNotAllowed(
                provider="google", detail=f"hd {hosted_domain!r} is not allowed"
            )
        verified = claims.get("email_verified")
        return VerifiedIdentity(
            identity=Identity("google", self.issuer, claims["sub"]),
            email=text_claim(claims, "email", limit=MAX_EMAIL_INPUT),
            # Exactly true: Google has sent a bool and the string "true"; `1 == True`
            # in Python, so neither 1 nor "True" nor "yes" counts.
            email_verified=verified is True or verified == "true",
            name=text_claim(claims, "name", limit=_MAX_NAME) or "",
            hosted_domain=hosted_domain,
            claims=claims,
        )
