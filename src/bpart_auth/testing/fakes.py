"""`FakeGoogle`: an in-process Google for an app's own tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from bpart_auth.providers.google import GOOGLE_ISSUER, GoogleProvider
from bpart_auth.testing._fake_idp import FakeAuthorizeError, FakeIdentityProvider

if TYPE_CHECKING:
    from collections.abc import Collection
    from types import TracebackType

    import responses

__all__ = ["FakeAuthorizeError", "FakeGoogle"]


@final
class FakeGoogle:
    """Google, in process: real discovery, keys, codes with PKCE, signed ID tokens.

    Its endpoints are served through `responses` (installed with the `test` extra),
    so the library's real HTTP path runs and nothing leaves the process. Use it as a
    context manager, or `install` it into a `responses.RequestsMock` of your own.

    Args:
        client_id: The client id the fake accepts (and `provider()` uses).
        client_secret: Its secret.
        base_url: Where the fake's endpoints live (never contacted for real).

    Examples:
        >>> from bpart_auth import Auth, MemoryStore
        >>> from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle
        >>> with FakeGoogle() as google:
        ...     auth = Auth(MemoryStore(), secret_key="a test secret key, 32 bytes long!",
        ...                 providers=[google.provider()], password_hashing=CHEAP_FOR_TESTS)
        ...     ann = auth.create_account(email="ann@example.com")
        ...     start = auth.begin_sign_in("google", redirect_uri="https://app.test/cb")
        ...     params = google.authorize(start.url, email="ann@example.com")
        ...     outcome = auth.complete(state=start.state, params=params)
        >>> outcome.kind, outcome.account.id == ann.id
        ('signed_in', True)
    """

    def __init__(
        self,
        *,
        client_id: str = "fake-client.apps.googleusercontent.com",
        client_secret: str = "fake-google-secret",  # noqa: S107 - a fake's fixed secret
        base_url: str = "https://fake-google.test",
    ) -> None:
        self._idp = FakeIdentityProvider(
            base_url=base_url,
            issuer=GOOGLE_ISSUER,
            client_id=client_id,
            client_secret=client_secret,
        )
        self._mock: responses.RequestsMock | None = None

    @property
    def metadata_url(self) -> str:
        """The fake's discovery document URL (give it to `GoogleProvider`)."""
        return self._idp.metadata_url

    @property
    def requests_seen(self) -> dict[str, int]:
        """How many requests each endpoint path has served (keys, discovery, token)."""
        return self._idp.requests_seen

    def provider(self, *, hosted_domains: Collection[str] | None = None) -> GoogleProvider:
        """A `GoogleProvider` configured against this fake."""
        return GoogleProvider(
            client_id=self._idp.client_id,
            client_secret=self._idp.client_secret,
            hosted_domains=hosted_domains,
            metadata_url=self.metadata_url,
        )

    def authorize(
        self,
        url: str,
        *,
        email: str = "ann@example.com",
        email_verified: bool = True,
        sub: str | None = None,
        name: str = "",
        hd: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
        claims: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Play a Google user at the authorization URL; the callback's parameters.

        Args:
            url: `FlowStart.url`.
            email: The account's email.
            email_verified: Whether Google vouches for it.
            sub: Google's stable user id; derived from `email` when omitted.
            name: Display name.
            hd: The Google Workspace domain, or None for a consumer account.
            error: Answer with this OAuth error instead (`"access_denied"`).
            error_description: With `error`.
            claims: Extra or overriding ID-token claims (`{"iss": ...}` to forge).

        Raises:
            FakeAuthorizeError: The URL is not a request Google would accept.
        """
        if error is not None:
            answer = {"error": error}
            if error_description is not None:
                answer["error_description"] = error_description
            return self._idp.authorize(url, claims={}, error=answer)
        identity: dict[str, Any] = {
            "sub": sub if sub is not None else f"google-{email}",
            "email": email,
            "email_verified": email_verified,
            "name": name,
        }
        if hd is not None:
            identity["hd"] = hd
        return self._idp.authorize(url, claims={**identity, **(claims or {})})

    def install(self, mock: responses.RequestsMock) -> None:
        """Serve the fake's endpoints through a `responses.RequestsMock` you own."""
        self._idp.install(mock)

    def __enter__(self) -> FakeGoogle:
        import responses  # noqa: PLC0415 - only the fakes need it (the `test` extra)

        self._mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self._mock.start()
        self.install(self._mock)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock.reset()
            self._mock = None
