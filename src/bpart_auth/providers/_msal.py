"""msal, behind our boundary: its HTTP goes through our checks, its cache keeps nothing.

msal fetches the tenant's discovery document itself and posts the code to the token
endpoint it names, with its own `requests` calls, no size limit, no timeout when it
is given a session, and `json.loads` on whatever comes back. So msal gets an HTTP
client of ours (`MsalHttp`):

- its discovery request is answered with the document `OIDCClient` fetched and
  checked (issuer pinned, endpoints on the expected hosts), so msal posts only to a
  token endpoint we checked, and makes no second discovery request;
- its token request goes through `bpart_auth.oidc.transport.exchange` (timeout, size limit,
  5xx and 429 as `ProviderUnavailable`) and the answer must pass `token_answer`
  (a JSON object, sane member types and numbers) and, when it carries an ID token,
  `check_form`, before msal decodes it;
- any other request msal might make is refused: nothing unchecked reaches it.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from bpart_auth.errors import ProviderUnavailable
from bpart_auth.oidc.client import token_answer
from bpart_auth.oidc.idtoken import check_form
from bpart_auth.oidc.transport import exchange

if TYPE_CHECKING:
    from collections.abc import Mapping

    import msal

    from bpart_auth.oidc.client import OIDCClient

_WELL_KNOWN: Final = "/.well-known/openid-configuration"
_PROVIDER: Final = "microsoft"


class _Reply:
    """The response shape msal reads (`msal.oauth2cli.http.Response`)."""

    def __init__(self, status_code: int, text: str, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = headers

    def raise_for_status(self) -> None:
        if self.status_code >= HTTPStatus.BAD_REQUEST:
            raise ProviderUnavailable(provider=_PROVIDER, detail=f"HTTP {self.status_code}")


class MsalHttp:
    """The HTTP client msal is given (`http_client=`): see the module docstring.

    Args:
        oidc: The checked discovery document, keys and session of the provider.
    """

    def __init__(self, oidc: OIDCClient) -> None:
        self._oidc = oidc

    def get(self, url: str, **_: Any) -> _Reply:  # noqa: ANN401 - msal's interface
        """Answer msal's discovery request, answered with the checked document."""
        if not url.split("?", 1)[0].endswith(_WELL_KNOWN):
            raise ProviderUnavailable(
                provider=_PROVIDER, detail=f"msal asked for {url[:200]}, which we do not fetch"
            )
        metadata = self._oidc.metadata()
        return _Reply(HTTPStatus.OK, json.dumps(dict(metadata)), {})

    def post(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,  # noqa: ANN401 - msal's interface (its own timeout and such)
    ) -> _Reply:
        """Send msal's token request, bounded; check the answer before msal reads it."""
        token_endpoint = self._oidc.metadata()["token_endpoint"]
        if url != token_endpoint:
            raise ProviderUnavailable(
                provider=_PROVIDER, detail=f"msal posted to {url[:200]}, not {token_endpoint}"
            )
        answer = exchange(
            self._oidc.session,
            "POST",
            url,
            provider=_PROVIDER,
            what="token request",
            timeout=self._oidc.timeout,
            params=params,
            data=data,
            headers=headers,
        )
        document = token_answer(answer, provider=_PROVIDER)
        if "id_token" in document:
            check_form(document["id_token"], provider=_PROVIDER)
        return _Reply(answer.status, answer.body.decode("utf-8"), answer.headers)

    def close(self) -> None:
        """Nothing to close: the session belongs to the provider."""


def forgetful_cache(msal_module: Any) -> Any:  # noqa: ANN401 - msal is untyped
    """A token cache that keeps nothing: sign-in needs no stored tokens.

    msal's default in-memory cache keeps the access token, ID token and account of
    every sign-in for the life of the process: memory that only grows, and personal
    data kept for no purpose.
    """

    class ForgetfulCache(msal_module.TokenCache):  # type: ignore[misc]  # msal is untyped (Any base)
        def add(self, event: Any, **kwargs: Any) -> None:  # noqa: ANN401
            del event, kwargs

    return ForgetfulCache()


def new_application(
    oidc: OIDCClient, *, client_secret: str, authority: str, known_host: bool
) -> msal.ConfidentialClientApplication:
    """Build msal's application for `authority`, on our HTTP client and a forgetful cache.

    Raises:
        ValueError: msal refused the settings (the caller maps it).
        ProviderUnavailable: The discovery document could not be fetched or was refused.
    """
    import msal  # noqa: PLC0415 - imported late: sign-in with Microsoft may never happen

    return msal.ConfidentialClientApplication(
        oidc.client_id,
        client_credential=client_secret,
        authority=authority,
        http_client=MsalHttp(oidc),
        validate_authority=known_host,
        instance_discovery=None if known_host else False,
        exclude_scopes=["offline_access"],
        token_cache=forgetful_cache(msal),
    )
