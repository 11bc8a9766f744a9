"""An in-process transport for `requests`: a fake provider's endpoints, no socket.

`InProcessTransport` is a `requests.adapters.BaseAdapter`. Mounted on the
`requests.Session` a provider is given (`GoogleProvider(session=...)`,
`MicrosoftProvider(session=...)`), it answers discovery, keys and the token endpoint
from a `FakeGoogle` or `FakeMicrosoft` in this process. Everything above the socket
runs as in production: requests (request preparation, hooks, response handling),
the library's own code exchange (Google's), msal (Microsoft's), and the
fake's own token endpoint (client authentication, single-use code, PKCE S256).

The fake registers its endpoints through its public `install()`, which takes
anything with `add_callback(method, url, callback=...)` (it is written for
`responses.RequestsMock`); a callback takes the `PreparedRequest` and returns
`(status, headers, body)`. A request for any other URL fails with
`requests.ConnectionError`: nothing leaves the process.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from requests import PreparedRequest

    Callback = Callable[[PreparedRequest], tuple[int, Mapping[str, str], str | bytes]]


class InProcessTransport(BaseAdapter):
    """Answers requests from registered callbacks, keyed by method and URL (no query)."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[tuple[str, str], Callback] = {}
        self.requests_seen: Counter[str] = Counter()  # "POST https://.../token": count
        self.strays = 0  # requests that came from a session we were not mounted on

    def add_callback(self, method: str, url: str, callback: Callback, **_options: object) -> None:
        """Register `callback` for `method url` (the `responses.RequestsMock` spelling)."""
        self._routes[method.upper(), url] = callback

    @property
    def request_count(self) -> int:
        """Requests answered so far."""
        return sum(self.requests_seen.values())

    def send(  # noqa: PLR0917 - BaseAdapter.send's signature, positional as requests calls it
        self,
        request: PreparedRequest,
        stream: bool = False,  # noqa: FBT001, FBT002
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,  # noqa: FBT001, FBT002
        cert: str | tuple[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Answer `request` from its route; `requests.ConnectionError` without one."""
        del stream, timeout, verify, cert, proxies  # no socket, no TLS, no proxy
        method = (request.method or "GET").upper()
        base = (request.url or "").split("?", 1)[0]
        callback = self._routes.get((method, base))
        if callback is None:
            raise requests.ConnectionError(
                f"no in-process route for {method} {base}", request=request
            )
        self.requests_seen[f"{method} {base}"] += 1
        status, headers, body = callback(request)
        content = body.encode() if isinstance(body, str) else body
        response = requests.Response()
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers = CaseInsensitiveDict(headers)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        response.raw = io.BytesIO(content)
        response._content = content  # noqa: SLF001 - what HTTPAdapter leaves after reading
        response.connection = self
        return response

    def close(self) -> None:
        """Nothing to close: there is no connection."""

    def session(self) -> requests.Session:
        """A `requests.Session` on which every http(s) URL goes to this transport."""
        session = requests.Session()
        session.mount("https://", self)
        session.mount("http://", self)
        return session


@contextlib.contextmanager
def catch_strays(transport: InProcessTransport) -> Iterator[None]:
    """While active, every request of every `requests.Session` goes to `transport`.

    A provider should send every request through the session it is given. One that
    builds a session of its own (requests-oauthlib's `OAuth2Session` did, for
    Google's code exchange, before issue 16) would otherwise go to the network: here
    such a request still reaches the fake, through the same requests machinery, and
    is counted in `transport.strays` so the benchmark can say so. A request for a
    URL the fake does not serve fails, whichever session sends it: nothing leaves
    the process.
    """
    original = requests.Session.get_adapter

    def get_adapter(self: requests.Session, url: str) -> BaseAdapter:
        del url
        if transport not in self.adapters.values():
            transport.strays += 1
        return transport

    requests.Session.get_adapter = get_adapter  # type: ignore[method-assign]
    try:
        yield
    finally:
        requests.Session.get_adapter = original  # type: ignore[method-assign]


def install(fake: Any) -> InProcessTransport:  # noqa: ANN401 - FakeGoogle or FakeMicrosoft
    """A transport serving `fake`'s endpoints (registered by the fake's `install`)."""
    transport = InProcessTransport()
    fake.install(transport)
    return transport
