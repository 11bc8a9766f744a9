"""`FakeGoogle` and `FakeMicrosoft`: in-process identity providers for an app's tests.

Inside `with FakeGoogle() as google:` the fake answers every `requests` call to its
own endpoints (discovery, keys, token), whoever makes it; every other URL goes where
it would have gone without the fake. The fakes serve at the level of
`requests.Session.get_adapter` (the adapter a session picks for a URL), one layer
above where `responses` mocks (`HTTPAdapter.send`), so they nest in any order:

- with each other: `with FakeGoogle() as google, FakeMicrosoft() as microsoft:`;
- with an app's own `responses` mock (`responses.RequestsMock()`,
  `@responses.activate`, `responses.start()`), started before or after a fake: the
  mock answers its own routes and never sees the fakes' requests;
- and they may be left in any order: leaving a fake's `with` removes its routes only.

Two fakes serving the same URL (two `FakeGoogle()` on the default host): the one
entered last answers until it is left.
"""

from __future__ import annotations

import io
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, final
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPResponse

from bpart_auth.errors import ConfigurationError
from bpart_auth.providers.google import GOOGLE_ISSUER, GoogleProvider
from bpart_auth.providers.microsoft import CONSUMER_TENANT, MicrosoftProvider
from bpart_auth.testing._fake_idp import FakeAuthorizeError, FakeIdentityProvider

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from types import TracebackType

    import responses

    from bpart_auth.testing._fake_idp import _Reply

    _Handler = Callable[[requests.PreparedRequest], _Reply]

__all__ = ["FakeAuthorizeError", "FakeGoogle", "FakeMicrosoft"]


def _route_url(url: str | bytes | None) -> str:
    """A URL as the fakes' routes name it: scheme, host and path; no query."""
    if isinstance(url, bytes):
        url = url.decode("utf-8", "replace")
    parts = urlsplit(url or "")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


class _FakeAdapter(BaseAdapter):
    """Answers a session's requests to one fake, in process."""

    def __init__(self, routes: Mapping[tuple[str, str], _Handler]) -> None:
        super().__init__()
        self._routes = {
            (method, _route_url(url)): handler for (method, url), handler in routes.items()
        }

    def serves(self, url: str) -> bool:
        return any(route_url == url for _, route_url in self._routes)

    def send(  # type: ignore[override]  # requests' own signature, loosely typed
        self, request: requests.PreparedRequest, **_options: object
    ) -> requests.Response:
        handler = self._routes.get(((request.method or "GET").upper(), _route_url(request.url)))
        if handler is None:
            status, headers, body = 405, {"Content-Type": "text/plain"}, "method not allowed"
        else:
            status, headers, body = handler(request)
        raw = HTTPResponse(
            body=io.BytesIO(body.encode()),
            headers=headers,
            status=status,
            preload_content=False,
            decode_content=False,
        )
        response = requests.Response()
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""


class _Serving:
    """The fakes being served (a stack), and `Session.get_adapter` patched meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[_FakeAdapter] = []
        self._original: Callable[..., BaseAdapter] | None = None
        self._patched: Callable[..., BaseAdapter] | None = None

    def push(self, adapter: _FakeAdapter) -> None:
        with self._lock:
            if not self._active:
                self._patch()
            self._active.append(adapter)

    def remove(self, adapter: _FakeAdapter) -> None:
        with self._lock:
            self._active = [active for active in self._active if active is not adapter]
            if not self._active:
                self._unpatch()

    def adapter_for(self, url: str) -> _FakeAdapter | None:
        wanted = _route_url(url)
        with self._lock:
            for adapter in reversed(self._active):
                if adapter.serves(wanted):
                    return adapter
        return None

    def _patch(self) -> None:
        original = requests.Session.get_adapter
        serving = self

        def get_adapter(session: requests.Session, url: str) -> BaseAdapter:
            fake = serving.adapter_for(url)
            return fake if fake is not None else original(session, url)

        get_adapter.__wrapped__ = original  # type: ignore[attr-defined]
        self._original = original
        self._patched = get_adapter
        requests.Session.get_adapter = get_adapter  # type: ignore[assignment,method-assign]

    def _unpatch(self) -> None:
        # Put the original back only if no one patched over us meanwhile; else our
        # wrapper stays, and with no fake active it only calls the original.
        if self._original is not None and requests.Session.get_adapter is self._patched:
            requests.Session.get_adapter = self._original  # type: ignore[method-assign]
        self._original = None


_SERVING = _Serving()


class _FakeContext:
    """What both fakes share: their provider core, and serving it in process."""

    _idp: FakeIdentityProvider
    _adapter: _FakeAdapter | None = None

    @property
    def authorization_endpoint(self) -> str:
        """Where `FlowStart.url` sends the browser (`authorize` plays the user there)."""
        return self._idp.authorization_endpoint

    @property
    def requests_seen(self) -> dict[str, int]:
        """How many requests each endpoint path has served."""
        return self._idp.requests_seen

    def install(self, mock: responses.RequestsMock) -> None:
        """Serve the fake's endpoints through a `responses.RequestsMock` you own instead.

        For a test that wants the fake's requests in `mock.calls`, or to answer one
        of its URLs differently (`mock.replace`). Not needed to combine a fake with
        your own mock: `with` nests with it in either order.
        """
        self._idp.install(mock)

    def _start(self) -> None:
        if self._adapter is not None:
            raise ConfigurationError(detail="this fake is already being served: enter it once")
        adapter = _FakeAdapter(self._idp.routes())
        _SERVING.push(adapter)
        self._adapter = adapter

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._adapter is not None:
            _SERVING.remove(self._adapter)
            self._adapter = None


@final
class FakeGoogle(_FakeContext):
    """Google, in process: real discovery, keys, codes with PKCE, signed ID tokens.

    Use it as a context manager: inside, its endpoints answer every `requests` call
    in the process, so the library's real HTTP path runs and nothing leaves the
    process. It nests with `FakeMicrosoft` and with your own `responses` mocks, in
    any order (see the module docstring). Or `install` it into a
    `responses.RequestsMock` of your own.

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
        ...     outcome = auth.complete(sealed_flow=start.sealed_flow, params=params)
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

    @property
    def metadata_url(self) -> str:
        """The fake's discovery document URL (give it to `GoogleProvider`)."""
        return self._idp.metadata_url

    @property
    def issuer(self) -> str:
        """Google's issuer, which the fake's discovery document and ID tokens name."""
        return self._idp.issuer

    def provider(self, *, hosted_domains: Collection[str] | None = None) -> GoogleProvider:
        """A `GoogleProvider` configured against this fake.

        Its discovery document lives on the fake's host, names Google's issuer, and
        lists endpoints on the fake's host only: so `metadata_url=` and `issuer=`,
        and the discovery checks every app's provider runs.
        """
        return GoogleProvider(
            client_id=self._idp.client_id,
            client_secret=self._idp.client_secret,
            hosted_domains=hosted_domains,
            metadata_url=self.metadata_url,
            issuer=self.issuer,
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

    def __enter__(self) -> FakeGoogle:
        self._start()
        return self


def _discovery_tenant(tenant: str) -> str:
    """What Entra's discovery `issuer` names for an authority's tenant."""
    if tenant in {"common", "organizations"}:
        return "{tenantid}"
    if tenant == "consumers":
        return CONSUMER_TENANT
    if "." in tenant:  # a verified domain: Entra answers with the tenant's id
        return FakeMicrosoft.WORK_TENANT
    return tenant


@final
class FakeMicrosoft(_FakeContext):
    """Microsoft Entra ID, in process: tenant-style discovery and keys, msal-ready.

    One authority (`tenant`) with Entra's endpoint layout and discovery issuers:
    the `{tenantid}` template for `common` and `organizations`, the consumer
    tenant's issuer for `consumers`, the tenant's own for a tenant id, and
    `WORK_TENANT`'s for a domain (Entra names a domain's tenant by its id). RS256
    ID tokens with Entra's claim shapes (`tid`, `oid`, `preferred_username`, and
    the v2.0 issuer of the token's own `tid`); codes bound to PKCE and the redirect
    URI. Served in process like `FakeGoogle`, and nests like it.

    Args:
        tenant: The authority the app is configured with.
        client_id: The client id the fake accepts.
        client_secret: Its secret.
        authority_host: Where the fake's endpoints live (never contacted for real).
        consent_required_tenants: Tenant ids whose users get AADSTS65001 (the
            organization requires an admin to approve the app).

    Examples:
        >>> from bpart_auth import Auth, Identity, IdentityNotLinked, MemoryStore
        >>> with FakeMicrosoft() as microsoft:
        ...     auth = Auth(MemoryStore(), secret_key="a test secret key, 32 bytes long!",
        ...                 providers=[microsoft.provider()])
        ...     start = auth.begin_sign_in("microsoft", redirect_uri="https://app.test/cb")
        ...     params = microsoft.authorize(start.url, oid="oid-1")
        ...     try:
        ...         auth.complete(sealed_flow=start.sealed_flow, params=params)
        ...     except IdentityNotLinked as error:
        ...         print(error.code)
        identity_not_linked
    """

    WORK_TENANT = "11111111-2222-3333-4444-555555555555"

    def __init__(
        self,
        *,
        tenant: str = "organizations",
        client_id: str = "00000000-0000-0000-0000-00000000c11e",
        client_secret: str = "fake-microsoft-secret",  # noqa: S107 - a fake's fixed secret
        authority_host: str = "https://login.fake-microsoft.test",
        consent_required_tenants: Collection[str] = (),
    ) -> None:
        self.tenant = tenant
        self.authority_host = authority_host
        self._idp = FakeIdentityProvider(
            base_url=f"{authority_host}/{tenant}",
            issuer=f"{authority_host}/{_discovery_tenant(tenant)}/v2.0",
            token_issuer=f"{authority_host}/{{tenantid}}/v2.0",
            client_id=client_id,
            client_secret=client_secret,
            metadata_path="/v2.0/.well-known/openid-configuration",
            authorization_path="/oauth2/v2.0/authorize",
            token_path="/oauth2/v2.0/token",  # noqa: S106 - a URL path
            jwks_path="/discovery/v2.0/keys",
        )
        self.consent_required_tenants = frozenset(consent_required_tenants)

    def provider(self, *, allowed_tenants: Collection[str] | None = None) -> MicrosoftProvider:
        """A `MicrosoftProvider` configured against this fake."""
        return MicrosoftProvider(
            client_id=self._idp.client_id,
            client_secret=self._idp.client_secret,
            tenant=self.tenant,
            allowed_tenants=allowed_tenants,
            authority_host=self.authority_host,
        )

    def authorize(
        self,
        url: str,
        *,
        oid: str = "aaaaaaaa-0000-0000-0000-000000000001",
        tenant_id: str = WORK_TENANT,
        email: str | None = "ann@contoso.example",
        preferred_username: str = "ann@contoso.example",
        name: str = "",
        decline: bool = False,
        claims: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Play a Microsoft user at the authorization URL; the callback's parameters.

        Args:
            url: `FlowStart.url`.
            oid: The user's object id.
            tenant_id: The user's tenant (`CONSUMER_TENANT` for a personal account).
            email: The optional, unverified `email` claim.
            preferred_username: Shown by Entra; never an identifier.
            name: Display name.
            decline: The user cancels at the consent prompt (AADSTS65004).
            claims: Extra or overriding ID-token claims.

        Raises:
            FakeAuthorizeError: The URL is not a request Entra would accept.
        """
        if decline:
            error = {
                "error": "access_denied",
                "error_subcode": "cancel",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
            return self._idp.authorize(url, claims={}, error=error)
        if tenant_id in self.consent_required_tenants:
            error = {
                "error": "consent_required",
                "error_description": "AADSTS65001: The user or administrator has not "
                "consented to use the application.",
            }
            return self._idp.authorize(url, claims={}, error=error)
        identity: dict[str, Any] = {
            "sub": f"pairwise-{oid}",
            "oid": oid,
            "tid": tenant_id,
            "preferred_username": preferred_username,
            "name": name,
            "ver": "2.0",
        }
        if email is not None:
            identity["email"] = email
        return self._idp.authorize(url, claims={**identity, **(claims or {})})

    def __enter__(self) -> FakeMicrosoft:
        self._start()
        return self
