"""The `Provider` Protocol: what `Auth` needs from an identity provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bpart_auth.models import ProviderName, VerifiedIdentity
    from bpart_auth.oidc.flowstate import FlowState


@runtime_checkable
class Provider(Protocol):
    """An OpenID Connect identity provider, driven through one redirect flow.

    `Auth` owns the flow state (sealing, expiry, single use, the `state` check);
    a provider builds the authorization URL and turns the callback into a fully
    validated `VerifiedIdentity`.
    """

    @property
    def name(self) -> ProviderName:
        """The provider's name (`"google"`, `"microsoft"`, `"gitlab"`), unique within an `Auth`.

        Lowercase and URL-safe (`[a-z0-9][a-z0-9_.-]*`, at most 50 characters): it
        is in the app's URLs and the store's identities.
        """
        ...

    @property
    def email_sign_in(self) -> bool:
        """Whether a verified email may find an existing account at first sign-in."""
        ...

    def authorization_url(self, flow: FlowState) -> tuple[str, Mapping[str, str]]:
        """The URL to send the browser to, and what the provider needs back later.

        The URL carries the flow's state, and a nonce and a PKCE challenge (the
        flow's, or the provider library's own). The mapping is sealed into the flow
        state as `extra` and comes back on the `flow` given to `complete`; keep it
        to a few short strings.
        """
        ...

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> VerifiedIdentity:
        """Check the callback, exchange the code and validate the ID token.

        `Auth` has already checked the state against `flow`; `params` holds only
        the callback parameters the library reads (`state`, `code`, `error`,
        `error_description`, `error_subcode`, `iss`, and Entra's admin-consent
        `admin_consent` and `tenant`), each a str of at most 16384 characters that
        UTF-8 can encode. Anything else the callback carried is not passed on.

        Raises:
            ConsentDeclined: The user declined.
            ProviderError: Any other error from the provider (a subclass when known).
            InvalidIdToken: The ID token failed validation.
            InvalidFlowState: The callback belongs to another provider (`iss`).
            ProviderUnavailable: The provider could not be reached.
        """
        ...
