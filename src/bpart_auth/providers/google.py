"""Sign in with Google: the OIDC core plus Google's issuers, `hd` and error codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bpart_auth.errors import (
    ConfigurationError,
    ConsentDeclined,
    HostedDomainNotAllowed,
    ProviderError,
)
from bpart_auth.models import Identity, ProviderName, VerifiedIdentity
from bpart_auth.providers._oidc import OIDCClient

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import requests

    from bpart_auth.flowstate import FlowState

GOOGLE_METADATA_URL: Final = "https://accounts.google.com/.well-known/openid-configuration"
GOOGLE_ISSUER: Final = "https://accounts.google.com"
# Google's ID tokens carry either spelling (Google's OpenID Connect documentation).
GOOGLE_ISSUERS: Final = frozenset({GOOGLE_ISSUER, "accounts.google.com"})


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
            a fake provider, whose `issuer` is then the only one accepted.
        session: A `requests.Session` for every request (CA bundle, proxy).
        timeout: Seconds per request.

    Raises:
        ConfigurationError: Missing client id or secret, or a bad setting.

    Examples:
        >>> google = GoogleProvider(client_id="1234.apps.googleusercontent.com",
        ...                         client_secret="secret", hosted_domains=["example.com"])
        >>> google.name
        'google'
    """

    email_sign_in: Final = True

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        hosted_domains: Collection[str] | None = None,
        metadata_url: str = GOOGLE_METADATA_URL,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._oidc = OIDCClient(
            provider="google",
            client_id=client_id,
            client_secret=client_secret,
            metadata_url=metadata_url,
            scopes=("openid", "email", "profile"),
            session=session,
            timeout=timeout,
        )
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
        issuer = self._issuer()
        self._oidc.check_issuer_parameter(params, issuer)
        error = params.get("error")
        if error is not None:
            description = params.get("error_description")
            if error == "access_denied":
                raise ConsentDeclined(
                    provider="google", provider_code=error, description=description
                )
            raise ProviderError(provider="google", provider_code=error, description=description)
        id_token = self._oidc.exchange_code(flow, params)
        claims = self._oidc.validate(id_token, flow, issuer=self._accepted_issuers())
        hosted_domain = claims.get("hd")
        if self.hosted_domains is not None and (
            not isinstance(hosted_domain, str) or hosted_domain.lower() not in self.hosted_domains
        ):
            raise HostedDomainNotAllowed(
                provider="google", detail=f"hd {hosted_domain!r} is not allowed"
            )
        email = claims.get("email")
        return VerifiedIdentity(
            identity=Identity("google", issuer, claims["sub"]),
            email=email if isinstance(email, str) else None,
            # Google has sent this claim as a bool and as the string "true".
            email_verified=claims.get("email_verified") in (True, "true"),
            name=str(claims.get("name") or ""),
            hosted_domain=hosted_domain if isinstance(hosted_domain, str) else None,
            claims=claims,
        )

    def _accepted_issuers(self) -> frozenset[str]:
        issuer = self._oidc.metadata()["issuer"]
        return GOOGLE_ISSUERS if issuer in GOOGLE_ISSUERS else frozenset({issuer})

    def _issuer(self) -> str:
        """The one spelling stored in identities, so both spellings are one person."""
        issuer = str(self._oidc.metadata()["issuer"])
        return GOOGLE_ISSUER if issuer in GOOGLE_ISSUERS else issuer
